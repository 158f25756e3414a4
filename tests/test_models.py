"""The model zoo: shapes, logits, names, parameter counts, training, validation."""

import keras
import numpy as np
import pytest

from tfsubspace.models import MODELS, cresnet20, get_model, mlp, resnet18, resnet50, small_cnn, wide_resnet50_2

# Small widths keep the suite fast; the architecture (and so the naming and
# wiring under test) is the same at every width.
BUILDERS = {
    "mlp": lambda **kw: mlp(hidden_units=(32, 16), **kw),
    "small_cnn": lambda **kw: small_cnn(width=4, **kw),
    "cresnet20": lambda **kw: cresnet20(width=4, **kw),
    # The ImageNet ResNets shallow and narrow at 32 px (full counts: tests/test_resnet_zoo.py).
    "resnet18": lambda **kw: resnet18(input_shape=(32, 32, 3), num_classes=kw.pop("num_classes", 10), width=4,
                                      small_input=True, **kw),
    "resnet50": lambda **kw: resnet50(input_shape=(32, 32, 3), num_classes=kw.pop("num_classes", 10), width=4,
                                      blocks_per_stage=(1, 1, 1, 1), **kw),
    "wide_resnet50_2": lambda **kw: wide_resnet50_2(input_shape=(32, 32, 3), num_classes=kw.pop("num_classes", 10),
                                                    width=4, blocks_per_stage=(1, 1, 1, 1), small_input=True, **kw),
}
INPUT_SHAPES = {"mlp": (28, 28, 1), "small_cnn": (28, 28, 1), "cresnet20": (32, 32, 3), "resnet18": (32, 32, 3),
                "resnet50": (32, 32, 3), "wide_resnet50_2": (32, 32, 3)}
# Defaults of get_model(name): the ImageNet ResNets are 224 px, 1000 classes.
DEFAULTS = {"resnet18": ((224, 224, 3), 1000), "resnet50": ((224, 224, 3), 1000),
            "wide_resnet50_2": ((224, 224, 3), 1000)}

# CIFAR ResNet-20 with 1x1 projection shortcuts, counted by hand:
# convs 432 + 13,824 + 51,200 + 204,800; BN gamma/beta 1,568; Dense 650.
CRESNET20_TRAINABLE_PARAMS = 272_474


def random_images(model_name, batch_size=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch_size, *INPUT_SHAPES[model_name])).astype("float32")


def num_params(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_registry_lists_every_model():
    assert MODELS == {"mlp": mlp, "small_cnn": small_cnn, "cresnet20": cresnet20, "resnet18": resnet18,
                      "resnet50": resnet50, "wide_resnet50_2": wide_resnet50_2}


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_default_build_has_expected_output_shape(model_name):
    model = get_model(model_name)
    input_shape, num_classes = DEFAULTS.get(model_name, (INPUT_SHAPES[model_name], 10))
    assert model.name == model_name
    assert model.input_shape == (None, *input_shape)
    assert model.output_shape == (None, num_classes)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_returns_unnormalized_logits(model_name):
    model = BUILDERS[model_name](num_classes=7)
    logits = keras.ops.convert_to_numpy(model(random_images(model_name), training=False))
    assert logits.shape == (4, 7)
    assert model.layers[-1].name == "logits"
    assert model.layers[-1].activation is keras.activations.linear
    # Softmax output would be non-negative with rows summing to one.
    assert logits.min() < 0
    assert not np.allclose(logits.sum(axis=-1), 1.0)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_softmax_output_gives_probabilities(model_name):
    model = BUILDERS[model_name](num_classes=5, output_activation="softmax")
    probabilities = keras.ops.convert_to_numpy(model(random_images(model_name), training=False))
    assert model.layers[-1].name == "probabilities"
    assert probabilities.shape == (4, 5)
    assert probabilities.min() >= 0
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_layer_and_weight_names_are_unique_and_deterministic(model_name):
    first, second = BUILDERS[model_name](), BUILDERS[model_name]()
    layer_names = [layer.name for layer in first.layers]
    weight_paths = [weight.path for weight in first.weights]
    assert len(set(layer_names)) == len(layer_names)
    assert len(set(weight_paths)) == len(weight_paths)
    # A second build in the same session would get "dense_1" etc. if any
    # layer relied on Keras' auto-naming.
    assert [layer.name for layer in second.layers] == layer_names
    assert [weight.path for weight in second.weights] == weight_paths


def test_cresnet20_has_about_0_27m_parameters():
    model = cresnet20()
    trainable = num_params(model.trainable_weights)
    assert trainable == CRESNET20_TRAINABLE_PARAMS
    assert abs(trainable - 270_000) / 270_000 < 0.03
    # The rest are the BN moving means and variances.
    assert model.count_params() == trainable + 1_568


def test_cresnet20_structure():
    model = cresnet20()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    shortcuts = [layer.name for layer in convs if layer.kernel_size == (1, 1)]
    # 20 weight layers: 19 3x3 convs and the Dense, plus 2 projection shortcuts.
    assert len(convs) - len(shortcuts) == 19
    assert shortcuts == ["stage2_block1_shortcut_conv", "stage3_block1_shortcut_conv"]
    assert all(not conv.use_bias for conv in convs)
    assert all(isinstance(conv.kernel_initializer, keras.initializers.HeNormal) for conv in convs)
    assert isinstance(model.get_layer("logits").kernel_initializer, keras.initializers.HeNormal)
    assert [model.get_layer(f"stage{s}_block3_relu").output.shape for s in (1, 2, 3)] == [
        (None, 32, 32, 16),
        (None, 16, 16, 32),
        (None, 8, 8, 64),
    ]


def test_cresnet20_downsampling_conv_samples_the_same_pixels_as_the_shortcut():
    # PyTorch pads a stride-2 3x3 conv by one pixel on every side, so its
    # centre tap reads pixels (2i, 2j), exactly those the 1x1 shortcut reads.
    model = cresnet20(width=2)
    conv = model.get_layer("stage2_block1_conv1")
    kernel = np.zeros(conv.kernel.shape, "float32")
    for channel in range(2):
        kernel[1, 1, channel, channel] = 1.0
    conv.kernel.assign(kernel)
    main_path = keras.Model(model.get_layer("stage2_block1_pad1").input, conv.output)
    shortcut_conv = model.get_layer("stage2_block1_shortcut_conv")
    shortcut_conv.kernel.assign(kernel[1:2, 1:2])
    shortcut = keras.Model(shortcut_conv.input, shortcut_conv.output)

    x = np.random.default_rng(0).normal(size=(1, 32, 32, 2)).astype("float32")
    expected = np.concatenate([x[:, ::2, ::2], np.zeros((1, 16, 16, 2), "float32")], axis=-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(main_path(x)), expected, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(shortcut(x)), expected, atol=1e-6)


def test_small_cnn_stages_double_the_width():
    model = small_cnn(width=8)
    assert [model.get_layer(f"stage{s}_conv").filters for s in (1, 2, 3)] == [8, 16, 32]
    assert model.get_layer("stage2_pool").output.shape == (None, 7, 7, 16)
    assert model.get_layer("stage3_relu").output.shape == (None, 7, 7, 32)


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_mlp_layers_follow_hidden_units(dropout):
    model = mlp(hidden_units=(64, 32, 16), dropout=dropout)
    assert [model.get_layer(f"dense{i}").units for i in (1, 2, 3)] == [64, 32, 16]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == (3 if dropout else 0)
    assert mlp(hidden_units=()).count_params() == 28 * 28 * 10 + 10


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_training_steps_lower_the_loss(model_name):
    model = BUILDERS[model_name]()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.02),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = random_images(model_name, batch_size=16)
    y = np.arange(16) % 10
    before = [w.numpy().copy() for w in model.trainable_weights]
    # train_on_batch reports the loss before its update; on a fixed batch
    # (batch-norm in training mode) small SGD steps must lower it.
    losses = [float(model.train_on_batch(x, y)) for _ in range(4)]
    assert losses[-1] < losses[0]
    after = [w.numpy() for w in model.trainable_weights]
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.mark.parametrize(
    "builder, kwargs, argument",
    [
        (mlp, {"num_classes": 1}, "num_classes"),
        (mlp, {"num_classes": 2.0}, "num_classes"),
        (mlp, {"num_classes": True}, "num_classes"),
        (mlp, {"hidden_units": 128}, "hidden_units"),
        (mlp, {"hidden_units": (128, 0)}, r"hidden_units\[1\]"),
        (mlp, {"dropout": 1.0}, "dropout"),
        (mlp, {"dropout": -0.1}, "dropout"),
        (mlp, {"input_shape": ()}, "input_shape"),
        (mlp, {"input_shape": (28, 0)}, "input_shape"),
        (mlp, {"output_activation": "relu"}, "output_activation"),
        (mlp, {"name": ""}, "name"),
        (small_cnn, {"width": 0}, "width"),
        (small_cnn, {"width": 8.5}, "width"),
        (small_cnn, {"num_classes": 0}, "num_classes"),
        (small_cnn, {"input_shape": (28, 28)}, "input_shape"),
        (small_cnn, {"input_shape": (3, 3, 1)}, "input_shape"),
        (small_cnn, {"dropout": 1.5}, "dropout"),
        (small_cnn, {"output_activation": "sigmoid"}, "output_activation"),
        (cresnet20, {"width": 0}, "width"),
        (cresnet20, {"num_classes": 1}, "num_classes"),
        (cresnet20, {"input_shape": (32, 32)}, "input_shape"),
        (cresnet20, {"input_shape": "32x32x3"}, "input_shape"),
        (cresnet20, {"output_activation": "softmax2"}, "output_activation"),
        (cresnet20, {"name": None}, "name"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(builder, kwargs, argument):
    with pytest.raises(ValueError, match=f"^`{argument}` must be"):
        builder(**kwargs)


def test_get_model_passes_keyword_arguments():
    model = get_model("cresnet20", input_shape=(28, 28, 1), num_classes=3, width=2, name="tiny")
    assert (model.name, model.input_shape, model.output_shape) == ("tiny", (None, 28, 28, 1), (None, 3))


@pytest.mark.parametrize("name", ["resnet101", "MLP", None])
def test_get_model_rejects_unknown_names_listing_the_known_ones(name):
    with pytest.raises(ValueError, match="`name` must be one of") as error:
        get_model(name)
    assert all(known in str(error.value) for known in MODELS)
