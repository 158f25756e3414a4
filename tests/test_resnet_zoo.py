"""The torchvision ResNets of the zoo: parameter counts, stems and downsampling, argument checks."""

import keras
import numpy as np
import pytest

from tfsubspace.models import get_model


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name, expected", [
    ("resnet18", 11_689_512), ("resnet50", 25_557_032), ("wide_resnet50_2", 68_883_240),
])
def test_parameter_counts_match_torchvision_at_1000_classes(name, expected):
    # Built at 32 px: the count does not depend on the input size.
    assert trainable_count(get_model(name, input_shape=(32, 32, 3), num_classes=1000)) == expected


def test_keras_applications_resnet50_differs_from_torchvision_by_its_conv_biases():
    # Why the zoo builds its own ResNet-50 (BUILD_NOTES.md): 53 convs with biases.
    ours = get_model("resnet50", input_shape=(32, 32, 3), num_classes=1000)
    theirs = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=1000)
    conv_biases = sum(layer.filters for layer in theirs.layers if isinstance(layer, keras.layers.Conv2D))
    assert trainable_count(theirs) == trainable_count(ours) + conv_biases == 25_557_032 + 26_560


def test_stems_and_downsampling():
    imagenet = get_model("resnet18", input_shape=(64, 64, 3), num_classes=10, width=4)
    small = get_model("resnet18", input_shape=(64, 64, 3), num_classes=10, width=4, small_input=True)
    # ImageNet stem: /4 before stage 1 (7x7 stride 2 + max-pool); small stem: none. Stages 2-4 halve.
    assert imagenet.get_layer("stage1_block2_relu").output.shape[1:3] == (16, 16)
    assert small.get_layer("stage1_block2_relu").output.shape[1:3] == (64, 64)
    assert small.get_layer("stage4_block1_relu").output.shape[1:3] == (8, 8)
    assert "stem_pool" not in [layer.name for layer in small.layers]
    wide = get_model("wide_resnet50_2", input_shape=(32, 32, 3), num_classes=10, width=4, blocks_per_stage=(1, 1, 1, 1))
    assert [wide.get_layer(f"stage3_block1_conv{i}").filters for i in (1, 2, 3)] == [32, 32, 64]


# Forward passes, logits/softmax heads and training steps of the three models at
# 32 px: tests/test_models.py; ts.convert of each in the binary (line, simplex,
# layerwise): the smoke runs of tests/test_paper_configs.py.


@pytest.mark.parametrize("kwargs, argument", [
    (dict(blocks_per_stage=(1, 1, 1)), "blocks_per_stage"),
    (dict(blocks_per_stage=(1, 0, 1, 1)), "blocks_per_stage"),
    (dict(small_input=1), "small_input"),
    (dict(width=0), "width"),
])
def test_bad_arguments_are_one_line_value_errors(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}` must"):
        get_model("resnet18", input_shape=(32, 32, 3), **kwargs)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "wide_resnet50_2"])
def test_batch_norm_is_synchronized_when_asked_and_by_the_binary_under_a_strategy(name):
    import tensorflow as tf

    from tfsubspace import config as config_lib
    from tfsubspace.experiments import common

    def flags(model):
        return {layer.synchronized for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}

    kwargs = dict(input_shape=(32, 32, 3), num_classes=10, width=2, blocks_per_stage=(1, 1, 1, 1))
    assert flags(get_model(name, **kwargs)) == {False}
    assert flags(get_model(name, synchronized=True, **kwargs)) == {True}
    config = config_lib.base_config()
    config.model.name = name
    config.model.kwargs.update(width=2, blocks_per_stage=(1, 1, 1, 1))
    datasets = type("Datasets", (), {"input_shape": (32, 32, 3), "num_classes": 10})()
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert flags(common.build_model(config, datasets)) == {True}
    with pytest.raises(ValueError, match="`synchronized` must be True or False"):
        get_model(name, synchronized=1, **kwargs)
