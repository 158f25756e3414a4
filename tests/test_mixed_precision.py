"""Mixed precision: float32 copies and θ, layer math in the compute dtype, float32 penalties."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import conftest
import tfsubspace as ts
from tfsubspace import model as model_lib

POLICIES = ("mixed_float16", "mixed_bfloat16")
TOLERANCE = {"mixed_float16": 2e-3, "mixed_bfloat16": 2e-2}
COMPUTE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


@keras.saving.register_keras_serializable(package="tfsubspace_tests")
class DtypeProbe(keras.layers.Layer):
    """Identity that records the dtype of what flows through it (at trace time)."""

    seen = {}

    def call(self, x):
        DtypeProbe.seen[self.name] = keras.backend.standardize_dtype(x.dtype)
        return x


def probed_cnn(num_classes=4):
    """conftest.small_cnn with probes after the batch norm and the head."""
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, padding="same", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        DtypeProbe(name="after_bn"),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes, name="head"),
        DtypeProbe(name="logits"),
    ])


def _randomize_copies(layer):
    for stack in layer._stacks:
        stack.free.assign(RNG.normal(1.0, 0.5, stack.free.shape).astype("float32"))


LAYERS = {
    "dense": (lambda: keras.layers.Dense(16), (4, 16)),
    "conv2d": (lambda: keras.layers.Conv2D(4, 3), (2, 6, 6, 3)),
    "batch_norm": (lambda: keras.layers.BatchNormalization(), (4, 16)),
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_wrapped_layer_equals_the_stock_layer_holding_float32_theta(policy, kind):
    keras.mixed_precision.set_global_policy(policy)
    make, shape = LAYERS[kind]
    x = RNG.normal(size=shape).astype("float32")
    layer = ts.layers.Subspace(make(), num_points=2)
    layer(x)
    _randomize_copies(layer)
    layer.set_coefficients([0.3183, 0.6817])  # not representable in float16 / bfloat16
    stock = make()
    stock(x)
    for variable, theta in zip(stock.trainable_weights, layer.combined_weights().values()):
        variable.assign(theta)
    expected = stock(x, training=False)
    got = layer(x, training=False)
    assert keras.backend.standardize_dtype(got.dtype) == COMPUTE[policy] == keras.backend.standardize_dtype(expected.dtype)
    # The same float32 θ, cast to the compute dtype by the layer itself: the same bits.
    np.testing.assert_array_equal(np.float32(got), np.float32(expected))


@pytest.mark.parametrize("policy", POLICIES)
def test_wrapped_dense_with_equal_copies_equals_a_stock_dense(policy):
    keras.mixed_precision.set_global_policy(policy)
    x = RNG.normal(size=(4, 7)).astype("float32")
    stock = keras.layers.Dense(5)
    expected = np.float32(stock(x))
    layer = ts.layers.Subspace(stock, num_points=3, init="point")
    layer.set_coefficients([0.2, 0.3, 0.5])
    got = layer(x)
    assert keras.backend.standardize_dtype(got.dtype) == COMPUTE[policy]
    tolerance = TOLERANCE[policy]
    np.testing.assert_allclose(np.float32(got), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("policy", POLICIES)
def test_copies_coefficients_and_theta_stay_float32_inside_the_call(policy, monkeypatch):
    keras.mixed_precision.set_global_policy(policy)
    layer = ts.layers.Subspace(keras.layers.Dense(3), num_points=2)
    x = np.ones((2, 4), "float32")
    layer(x)
    seen = []
    original = type(layer._stacks[0]).theta

    def theta(stack, c):
        value = original(stack, c)
        seen.append((keras.backend.standardize_dtype(c.dtype), keras.backend.standardize_dtype(value.dtype)))
        return value

    monkeypatch.setattr(type(layer._stacks[0]), "theta", theta)
    layer(x)
    assert seen and set(seen) == {("float32", "float32")}
    assert {v.dtype for v in layer.weights} == {"float32"}
    assert layer.dtype_policy.name == policy


def test_convert_keeps_every_layers_dtype_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    base = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(3, dtype="float32"),
    ])
    model = ts.convert(base, ts.Line())
    assert [layer.dtype_policy.name for layer in model.network.layers] == ["mixed_bfloat16", "float32"]
    baked = model.bake(0.5)
    assert [layer.dtype_policy.name for layer in baked.layers] == ["mixed_bfloat16", "float32"]


def _recording(monkeypatch, module, name, log):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        value = original(*args, **kwargs)
        log.append(keras.backend.standardize_dtype(value.dtype))
        return value

    monkeypatch.setattr(module, name, wrapper)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("shape", [ts.Line(), ts.Simplex(3)], ids=["line", "simplex3"])
def test_two_training_steps_are_finite_with_float32_weights_and_compute_dtype_outputs(policy, shape, monkeypatch):
    keras.mixed_precision.set_global_policy(policy)
    cos2_dtypes, loss_dtypes = [], []
    _recording(monkeypatch, model_lib.regularizers, "pair_cos2", cos2_dtypes)
    original_loss = model_lib.SubspaceModel.compute_loss

    def compute_loss(self, *args, **kwargs):
        loss = original_loss(self, *args, **kwargs)
        loss_dtypes.append(keras.backend.standardize_dtype(loss.dtype))
        return loss

    monkeypatch.setattr(model_lib.SubspaceModel, "compute_loss", compute_loss)
    DtypeProbe.seen.clear()
    model = ts.convert(probed_cnn(), shape, beta=1.0, seed=0)
    model.point_weight_decay = 1e-3  # the other float32 penalty
    model.compile(ts.optimizers.SGD(0.05, momentum=0.9, weight_decay=1e-4),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    x, y = conftest.tiny_data(16)
    before = [v.numpy() for v in model.trainable_variables]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert int(model.optimizer.iterations) == 2
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["cos2"][0])
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert {v.dtype for v in model.variables} == {"float32"} | ({"int64"} & {v.dtype for v in model.variables})
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)
    assert DtypeProbe.seen == {"after_bn": COMPUTE[policy], "logits": COMPUTE[policy]}
    assert cos2_dtypes and set(cos2_dtypes) == {"float32"}
    assert loss_dtypes and set(loss_dtypes) == {"float32"}
    assert keras.backend.standardize_dtype(model.point_l2_penalty().dtype) == "float32"
    predictions = model.predict(x, verbose=0)
    assert np.all(np.isfinite(np.float32(predictions)))


def test_l2_weight_decay_applies_to_the_unscaled_gradient_under_loss_scaling():
    w = keras.Variable(np.full(3, 2.0, "float32"))
    sgd = keras.optimizers.LossScaleOptimizer(ts.optimizers.SGD(0.1, momentum=0.0, weight_decay=0.5),
                                              initial_scale=1024.0)
    scaled_gradient = np.full(3, 1.0 * 1024.0, "float32")  # ∇L = 1, times the loss scale
    sgd.apply([scaled_gradient], [w])
    # w − lr·(∇L + wd·w) = 2 − 0.1·(1 + 1) = 1.8; decaying the scaled gradient would give 2 − 0.1·1025.
    np.testing.assert_allclose(w.numpy(), 1.8, rtol=1e-6)


# -- the training binary ------------------------------------------------------

TINY = [
    "--config.train.epochs=2",
    "--config.train.warmup_epochs=1",
    "--config.dataset.train_subset=512",
    "--config.eval.batchnorm_steps=2",
    "--config.model.name=small_cnn",  # conv + batch norm
    "--config.model.kwargs.width=4",
    "--config.eval.alphas=(0.0, 0.5, 1.0)",
]


def _compile_config(workdir):
    import json
    import zipfile

    with zipfile.ZipFile(workdir / "model.keras") as archive:
        return json.loads(archive.read("config.json"))["compile_config"]


def test_binary_trains_in_mixed_bfloat16_with_finite_results_and_a_servable_savedmodel(tmp_path):
    import json

    conftest.run_binary("fashion_mnist_line.py", tmp_path, *TINY, "--config.train.precision=mixed_bfloat16")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["train"]["precision"] == "mixed_bfloat16"
    rows = results["subspace"]["along_subspace"] + [results["subspace"]["midpoint"]]
    for row in rows:
        assert all(np.isfinite(row[key]) for key in ("accuracy", "nll", "ece"))
    assert all(np.isfinite(loss) for loss in results["subspace"]["history"]["loss"])
    assert _compile_config(tmp_path)["jit_compile"] is False  # the default
    loaded = tf.saved_model.load(str(tmp_path / "savedmodel" / "1"))
    serve = loaded.signatures["serving_default"]
    (output,) = serve(tf.zeros((2, 28, 28, 1))).values()
    # The baked stock model keeps the policy: its scores come out in bfloat16.
    assert output.dtype == tf.bfloat16 and output.shape == (2, 10)
    assert np.all(np.isfinite(np.float32(output)))


def test_binary_passes_config_jit_compile_to_compile(tmp_path):
    conftest.run_binary(
        "fashion_mnist_line.py", tmp_path, "--config.train.epochs=1", "--config.train.warmup_epochs=0",
        "--config.dataset.train_subset=256", "--config.eval.batchnorm_steps=1", "--config.model.name=mlp",
        "--config.eval.alphas=(0.5,)", "--config.eval.export=False", "--config.train.jit_compile=True",
    )
    assert _compile_config(tmp_path)["jit_compile"] is True


@pytest.mark.parametrize("jit_compile", [False, True])
def test_compile_model_uses_config_jit_compile(jit_compile):
    from tfsubspace import config as config_lib
    from tfsubspace.experiments import common

    config = config_lib.base_config()
    config.train.jit_compile = jit_compile
    model = common.compile_model(ts.convert(conftest.small_cnn(), ts.Line()), config, steps_per_epoch=2)
    assert model.jit_compile is jit_compile


def test_precision_scope_sets_the_policy_and_restores_it_even_on_error():
    from tfsubspace import config as config_lib
    from tfsubspace.experiments import common

    config = config_lib.base_config()
    config.train.precision = "mixed_float16"
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # whatever was set before is restored
    with pytest.raises(RuntimeError):
        with common.precision(config):
            assert keras.mixed_precision.global_policy().name == "mixed_float16"
            model = common.compile_model(ts.convert(conftest.small_cnn(), ts.Line()), config, steps_per_epoch=2)
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
            assert isinstance(model.optimizer.inner_optimizer, ts.optimizers.SGD)
            raise RuntimeError("a failing run")
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def test_run_leaves_the_global_policy_as_it_found_it(tmp_path, monkeypatch):
    from tfsubspace import config as config_lib
    from tfsubspace import train

    config = config_lib.base_config()
    config.train.precision = "mixed_bfloat16"
    seen = []

    def failing_runner(config, datasets, workdir):
        seen.append(keras.mixed_precision.global_policy().name)
        raise ValueError("stop here")

    monkeypatch.setattr(train.experiments, "runner", lambda method: failing_runner)
    monkeypatch.setattr("tfsubspace.data.build_datasets", lambda *a, **k: type("D", (), {"source": {}})())
    with pytest.raises(ValueError, match="stop here"):
        train.run(config, str(tmp_path))
    assert seen == ["mixed_bfloat16"]
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("precision", "float16", "config.train.precision must be one of ('float32', 'mixed_float16', 'mixed_bfloat16')"),
        ("precision", "bfloat16", "config.train.precision must be one of"),
        ("jit_compile", None, "config.train.jit_compile must be True or False, got None."),
    ],
)
def test_config_refuses_a_bad_precision_or_jit_compile_in_one_line(key, value, message):
    from tfsubspace import config as config_lib

    config = config_lib.base_config()
    with config.unlocked():
        config.train[key] = value
    with pytest.raises(ValueError) as error:
        config_lib.validate(config)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("policy", POLICIES)
def test_baked_and_exported_model_keeps_the_policy_and_predicts_as_the_subspace_model(policy, tmp_path):
    keras.mixed_precision.set_global_policy(policy)
    model = ts.convert(conftest.small_cnn(), ts.Line(), seed=0)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = conftest.tiny_data(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.set_alpha(0.3)
    expected = np.float32(model.predict(x, verbose=0))
    baked = model.bake()
    assert {layer.dtype_policy.name for layer in baked.layers} == {policy}
    # The same bits: `model.call` writes the inference point in float32 (it used to pass through
    # the model's AutocastScope, which rounded α = 0.3 to 0.30004883 in float16).
    np.testing.assert_array_equal(np.float32(baked.predict(x, verbose=0)), expected)
    np.testing.assert_array_equal(model.subspace_layers[0].coefficients.numpy(), np.float32([0.7, 0.3]))
    path = model.export(str(tmp_path / "served"))
    served = tf.saved_model.load(path).signatures["serving_default"]
    (output,) = served(tf.constant(x)).values()
    assert output.dtype == COMPUTE[policy]
    np.testing.assert_array_equal(np.float32(output), expected)
