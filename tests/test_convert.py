"""ts.convert on Sequential, functional, nested and keras.applications models."""

import keras
import numpy as np
import pytest

import tfsubspace as ts
from conftest import small_cnn, tiny_data


def functional_model():
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="b1")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Dropout(0.1)(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x), name="functional")


def nested_model():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="inner_dense")], name="inner")
    inputs = keras.Input((4,))
    x = inner(inputs)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(2, name="side")(inputs)])
    return keras.Model(inputs, keras.layers.Dense(2, name="top")(x), name="outer")


@pytest.mark.parametrize(
    "build, example",
    [
        (small_cnn, np.random.rand(4, 8, 8, 1)),
        (functional_model, np.random.rand(4, 8, 8, 1)),
        (nested_model, np.random.rand(4, 4)),
    ],
    ids=["sequential", "functional", "nested"],
)
def test_point_init_reproduces_the_source_model_at_every_alpha(build, example):
    source = build()
    x = example.astype("float32")
    expected = source(x, training=False)
    for shape in [ts.Line(), ts.Bezier(2), ts.Simplex(3)]:
        model = ts.convert(source, shape, init="point", seed=0)
        stock_weighted = [l for l in source._flatten_layers() if l.trainable_weights and not isinstance(l, keras.Model)]
        assert len(model.subspace_layers) == len(stock_weighted)
        for alpha in [shape.center, *(np.eye(3).tolist() if shape.alpha_rank else [0.0, 0.3, 1.0])]:
            model.set_alpha(alpha)
            np.testing.assert_allclose(model(x), expected, atol=1e-5)


def test_independent_init_gives_fresh_distinct_endpoints_and_keeps_source_untouched():
    source = small_cnn()
    before = [w.numpy() for w in source.weights]
    model = ts.convert(source, ts.Line(), seed=0)
    for layer in model.subspace_layers:
        for copies in layer.subspace_weights.values():
            if np.std(copies[0].numpy()) > 0:  # constant inits (zeros, ones) stay equal
                assert not np.allclose(copies[0], copies[1])
    for b, w in zip(before, source.weights):
        np.testing.assert_array_equal(b, w.numpy())


def test_convert_keras_applications_resnet50():
    source = keras.applications.ResNet50(weights=None, classes=10, input_shape=(32, 32, 3))
    model = ts.convert(source, ts.Line(), seed=0)
    assert len(model.subspace_layers) == len(
        [l for l in source.layers if l.trainable_weights]
    )
    # One stacked (2, ...) variable per stock weight.
    assert [tuple(w.shape) for w in model.trainable_weights] == [(2,) + tuple(w.shape) for w in source.trainable_weights]
    out = model.predict(np.random.rand(2, 32, 32, 3).astype("float32"), verbose=0)
    assert out.shape == (2, 10)


def test_trains_one_step_after_conversion_of_nested_model():
    model = ts.convert(nested_model(), ts.Simplex(3), sampling="per_layer", seed=0)
    model.compile("adam", "mse")
    history = model.fit(np.random.rand(16, 4), np.random.rand(16, 2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


class NoConfigScale(keras.layers.Layer):
    """A custom layer taking an object Keras cannot serialize and no get_config: it cannot be rebuilt."""

    def __init__(self, units, helper=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.helper = helper

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(self.units,), initializer="ones")

    def call(self, x):
        return x * self.scale


def test_unconvertible_layers_are_all_listed_by_name_and_class():
    inputs = keras.Input((3,))
    x = NoConfigScale(3, helper=object(), name="scale_a")(keras.layers.Dense(3)(inputs))
    x = NoConfigScale(3, helper=object(), name="scale_b")(keras.layers.PReLU()(x))
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match=r"scale_a \(NoConfigScale: .*scale_b \(NoConfigScale: ") as error:
        ts.convert(model, ts.Line())
    assert "prelu" not in str(error.value) and len(str(error.value).splitlines()) == 1


def test_frozen_layers_stay_stock_with_their_weights():
    source = small_cnn()
    source.get_layer("conv").trainable = False
    model = ts.convert(source, ts.Line(), seed=0)
    conv = model.network.get_layer("conv")
    assert type(conv) is keras.layers.Conv2D
    np.testing.assert_array_equal(conv.kernel.numpy(), source.get_layer("conv").kernel.numpy())


def test_batchnorm_moving_statistics_are_copied():
    source = small_cnn()
    source.get_layer("bn").moving_mean.assign(np.arange(4, dtype="float32"))
    model = ts.convert(source, ts.Line(), seed=0)
    np.testing.assert_array_equal(model.network.get_layer("bn").layer.moving_mean.numpy(), np.arange(4))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize(
    "make, kwargs, error, match",
    [
        (lambda: keras.Sequential([keras.layers.Dense(2)]), {}, ValueError, "not built"),
        (lambda: keras.Sequential([keras.Input((3,)), keras.layers.ReLU()]), {}, ValueError, "no trainable weights"),
        (Subclassed, {}, ValueError, "subclassed"),
        (small_cnn, {"beta": -1.0}, ValueError, "beta"),
        (small_cnn, {"sampling": "per_epoch"}, ValueError, "sampling.*per_batch"),
        (small_cnn, {"init": "zeros"}, ValueError, "init.*independent"),
        (small_cnn, {"seed": -3}, ValueError, "seed"),
        (small_cnn, {"shape": "torus"}, ValueError, "shape"),
        (lambda: "not a model", {}, TypeError, "model"),
    ],
)
def test_bad_convert_arguments_raise_clear_errors(make, kwargs, error, match):
    kwargs = {"shape": ts.Line(), **kwargs}
    with pytest.raises(error, match=match):
        ts.convert(make(), **kwargs)


def test_convert_fit_evaluate_predict_end_to_end():
    x, y = tiny_data(n=64)
    model = ts.convert(small_cnn(), ts.Line(), beta=1.0, sampling="per_batch", seed=0)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=16, validation_data=(x, y), verbose=0)
    ts.recompute_batchnorm(model, x, alpha=0.5)
    model.set_alpha(0.5)
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "accuracy"}
    assert model.predict(x, verbose=0).shape == (64, 4)
