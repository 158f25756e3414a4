"""The conversion matrix: real architectures convert, train, bake and round-trip.

Each case converts a model (line, independent endpoints), trains two steps,
bakes it at α = 0.3 (equal to the model there to 1e-5, built only from the
original model's own layer classes) and round-trips a `.keras` file. Inputs are
small (32×32) so the keras.applications models stay cheap to build on a CPU.
Runtime here (2 shared cores, under load): ConvNeXtTiny ~230 s, ResNet50
~210 s, EfficientNetB0 ~140 s, MobileNetV2 ~90 s, the others 4–11 s each.
"""

import importlib.util

import keras
import numpy as np
import pytest

import tfsubspace as ts

ALPHA = 0.3


def _image_input(builder):
    return builder(weights=None, input_shape=(32, 32, 3), classes=4)


def transformer_classifier():
    tokens = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(50, 16)(tokens)
    attended = keras.layers.MultiHeadAttention(2, 8, dropout=0.1)(x, x)
    x = keras.layers.LayerNormalization()(x + attended)
    hidden = keras.layers.Dense(32, activation="relu")(x)
    x = keras.layers.LayerNormalization()(x + keras.layers.Dense(16)(hidden))
    return keras.Model(tokens, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x)))


def lstm_classifier():
    tokens = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=True)(tokens)
    return keras.Model(tokens, keras.layers.Dense(3)(keras.layers.LSTM(6)(x)))


def bidirectional_gru_classifier():
    tokens = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(50, 8)(tokens)
    x = keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True))(x)
    x = keras.layers.SimpleRNN(4)(x)
    return keras.Model(tokens, keras.layers.Dense(3)(x))


def ops_graph():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(6)(inputs)
    h = keras.ops.relu(h) + inputs
    h = keras.ops.concatenate([keras.ops.tanh(h), h * 2.0], axis=-1)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


@keras.saving.register_keras_serializable(package="tfsubspace_tests")
class TwoTower(keras.Model):
    """A subclassed model: its `call` is Python over attributes."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.left = keras.layers.Dense(units, activation="relu")
        self.right = keras.layers.Dense(units)
        self.norm = keras.layers.BatchNormalization()
        self.head = keras.layers.Dense(3)

    def call(self, x, training=None):
        return self.head(self.norm(self.left(x) * self.right(x), training=training))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def subclassed_model():
    model = TwoTower()
    model(np.zeros((1, 6), "float32"))
    return model


CASES = {
    "resnet50": (lambda: _image_input(keras.applications.ResNet50), "image"),
    "mobilenet_v2": (lambda: _image_input(keras.applications.MobileNetV2), "image"),
    "efficientnet_b0": (lambda: _image_input(keras.applications.EfficientNetB0), "image"),
    "convnext_tiny": (lambda: _image_input(keras.applications.ConvNeXtTiny), "image"),
    "transformer": (transformer_classifier, "tokens12"),
    "lstm": (lstm_classifier, "tokens10"),
    "bidirectional_gru": (bidirectional_gru_classifier, "tokens10"),
    "subclassed": (subclassed_model, "vector"),
    "keras_ops_graph": (ops_graph, "vector"),
}


def example_data(kind, n=4):
    rng = np.random.default_rng(0)
    if kind == "image":
        return rng.random((n, 32, 32, 3), dtype=np.float32)
    if kind.startswith("tokens"):
        tokens = rng.integers(1, 50, size=(n, int(kind[6:]))).astype("int32")
        tokens[:, -3:] = 0  # padding, masked where the model masks
        return tokens
    return rng.normal(size=(n, 6)).astype("float32")


def only_source_classes(model, source):
    """Every layer class of the baked `model` is one of `source`'s own (Keras', keras-cv's, the user's)."""
    source_classes = {type(layer) for layer in ts.layers.sublayers(source)}
    return all(type(layer) in source_classes and not type(layer).__module__.startswith("tfsubspace")
               for layer in ts.layers.sublayers(model) if layer is not model)


def check_case(source, x, tmp_path, custom_objects=None):
    model = ts.convert(source, ts.Line(), beta=1.0, seed=0)
    num_classes = int(source(x[:1]).shape[-1])
    y = np.arange(len(x)) % num_classes
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, batch_size=len(x) // 2, epochs=1, verbose=0)  # two steps
    assert all(np.all(np.isfinite(w.numpy())) for w in model.trainable_weights)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))

    model.set_alpha(ALPHA)
    expected = np.asarray(model(x, training=False))  # eager: no trace of a large graph
    plain = model.bake(ALPHA)
    assert only_source_classes(plain, source)
    assert not any(isinstance(layer, ts.layers.Subspace) for layer in ts.layers.sublayers(plain))
    np.testing.assert_allclose(plain(x, training=False), expected, atol=1e-5)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = ts.load_model(path, custom_objects=custom_objects)
    assert loaded.alpha == pytest.approx(ALPHA)
    np.testing.assert_allclose(loaded(x, training=False), expected, atol=1e-6)
    return model


@pytest.mark.parametrize("name", list(CASES))
def test_model_converts_trains_two_steps_bakes_to_stock_layers_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    build, kind = CASES[name]
    check_case(build(), example_data(kind), tmp_path)


def test_subclassed_model_is_one_subspace_layer_and_bakes_and_exports_as_its_own_class(tmp_path):
    import tensorflow as tf

    model = ts.convert(subclassed_model(), ts.Simplex(3), seed=0)
    assert [type(layer.layer) for layer in model.subspace_layers] == [TwoTower]
    alpha = [0.2, 0.3, 0.5]
    baked = model.bake(alpha)
    assert type(baked) is TwoTower
    x = example_data("vector")
    model.set_alpha(alpha)
    path = model.export(str(tmp_path / "served"), alpha=alpha)
    loaded = tf.saved_model.load(path)  # keep it alive: its variables die with it
    np.testing.assert_allclose(loaded.serve(tf.constant(x)), model(x), atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("keras_cv") is None,
                    reason="keras-cv (the optional [cv] extra) is not installed")
@pytest.mark.parametrize("backbone", ["ResNetBackbone", "MobileNetV3Backbone"])
def test_keras_cv_backbones_without_presets_convert_train_bake_and_round_trip(backbone, tmp_path):
    import keras_cv

    if backbone == "ResNetBackbone":
        base = keras_cv.models.ResNetBackbone(stackwise_filters=[8, 16], stackwise_blocks=[1, 1],
                                              stackwise_strides=[1, 2], include_rescaling=False,
                                              input_shape=(32, 32, 3))
    else:
        base = keras_cv.models.MobileNetV3Backbone(stackwise_expansion=[1, 4], stackwise_filters=[8, 16],
                                                   stackwise_kernel_size=[3, 3], stackwise_stride=[2, 2],
                                                   stackwise_se_ratio=[0.25, None],
                                                   stackwise_activation=["relu", "hard_swish"],
                                                   include_rescaling=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(base(inputs)))
    check_case(keras.Model(inputs, outputs), example_data("image"), tmp_path, custom_objects=_keras_cv_fixes())


def _keras_cv_fixes():
    """keras-cv 0.9's HardSigmoidActivation (MobileNetV3's squeeze-excite) takes no `name`, so a
    model holding it layer by layer cannot load, with or without tfsubspace (BUILD_NOTES.md)."""
    from keras_cv.src.models.backbones.mobilenet_v3 import mobilenet_v3_backbone

    class HardSigmoidActivation(mobilenet_v3_backbone.HardSigmoidActivation):
        def __init__(self, **kwargs):
            keras.layers.Layer.__init__(self, **kwargs)

    return {"HardSigmoidActivation": HardSigmoidActivation}
