"""bake / export / save: a point of the subspace leaves tfsubspace intact."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfsubspace as ts
from conftest import small_cnn, tiny_data


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    x, y = tiny_data(n=64)
    model = ts.convert(small_cnn(), ts.Bezier(1), seed=0)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    ts.recompute_batchnorm(model, x, alpha=0.3)
    return model, x


def stock_only(model):
    return all(type(layer).__module__.startswith("keras.") for layer in model._flatten_layers())


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_bake_is_stock_layers_equal_to_model_at_alpha(trained, alpha):
    model, x = trained
    plain = model.bake(alpha)
    assert stock_only(plain)
    assert [(3,) + tuple(w.shape) for w in plain.trainable_weights] == [tuple(w.shape) for w in model.trainable_weights]
    model.set_alpha(alpha)
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    model.set_alpha(0.3)


def test_bake_simplex_with_per_layer_training_uses_one_alpha_everywhere():
    x, y = tiny_data(n=32)
    model = ts.convert(small_cnn(), ts.Simplex(3), sampling="per_layer", seed=0)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    alpha = [0.2, 0.3, 0.5]
    model.set_alpha(alpha)
    for layer in model.subspace_layers:
        np.testing.assert_allclose(layer.coefficients.numpy(), alpha, atol=1e-7)
    np.testing.assert_allclose(model.bake(alpha)(x), model(x), atol=1e-5)


EXPORT_CHECK = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    serve = loaded.signatures["serving_default"]
    (name, spec), = serve.structured_input_signature[1].items()
    out = serve(**{name: tf.constant(np.load(sys.argv[2]))})
    np.save(sys.argv[3], list(out.values())[0].numpy())
    assert "tfsubspace" not in sys.modules, "the SavedModel pulled tfsubspace in"
    """
)


def test_exported_savedmodel_serves_the_same_outputs_without_tfsubspace(trained, tmp_path):
    model, x = trained
    path = model.export(tmp_path / "serving" / "1", alpha=0.3)
    model.set_alpha(0.3)
    expected = model.predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "check.py"
    script.write_text(EXPORT_CHECK)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # A fresh interpreter outside the repository, so tfsubspace cannot be imported by accident.
    subprocess.run(
        [sys.executable, str(script), path, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)


def test_keras_file_round_trip_with_safe_mode(trained, tmp_path):
    model, x = trained
    model.set_alpha(0.7)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded, ts.SubspaceModel)
    assert loaded.alpha == pytest.approx(0.7) and loaded.subspace_shape == ts.Bezier(1)
    assert loaded.seed == model.seed and loaded.beta == model.beta
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.set_alpha(0.3)


@pytest.mark.parametrize("bad", [1.5, -0.2, float("nan")])
def test_export_rejects_alpha_outside_domain(trained, tmp_path, bad):
    model, _ = trained
    with pytest.raises(ValueError, match="alpha"):
        model.export(tmp_path / "x", alpha=bad)


def test_export_rejects_unwritable_path(trained, tmp_path):
    model, _ = trained
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="filepath.*not writable"):
        model.export(blocker / "serving" / "1", alpha=0.5)


def test_bake_and_export_work_with_frozen_points(tmp_path):
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = ts.convert(base, ts.Bezier(num_bends=1), seed=0)
    model.freeze_points([0, 2])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model.set_alpha(0.3)
    np.testing.assert_allclose(model.bake(0.3).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    model.export(str(tmp_path / "served"), alpha=0.3)
    assert model.frozen_points == (0, 2)


def test_bake_follows_a_point_set_by_raw_coefficients():
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    model = ts.convert(base, ts.Line(), seed=0)
    x = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    model.set_point(coefficients=[1.5, -0.5])  # off the segment: no α gives it
    plain = model.bake()
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    explicit = model.bake(coefficients=[1.5, -0.5])
    np.testing.assert_allclose(explicit.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="`coefficients` must be 2 finite numbers"):
        model.bake(coefficients=[1.0, float("nan")])
    with pytest.raises(ValueError, match="exactly one of `alpha`"):
        model.bake(alpha=0.5, coefficients=[0.5, 0.5])
