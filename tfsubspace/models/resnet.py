"""ImageNet ResNets in torchvision's layout: ResNet-18 (basic blocks), ResNet-50 and WideResNet-50-2 (bottlenecks).

The papers train torchvision's models (000 §C: "the ImageNet models are from
PyTorch"), so these follow torchvision's ``resnet.py`` layer for layer: a 7x7
stride-2 conv + BN + ReLU + 3x3 stride-2 max-pool stem, four stages of
[2, 2, 2, 2] basic or [3, 4, 6, 3] bottleneck blocks with 64/128/256/512
planes, the stride on the 3x3 conv of a bottleneck (ResNet v1.5), 1x1 conv + BN
projection shortcuts, global average pooling and a Dense classifier. Convs
have no bias. ``wide_resnet50_2`` doubles the inner 3x3 width of every
bottleneck (torchvision's ``width_per_group=128``). Trainable parameters at
1000 classes: 11,689,512 / 25,557,032 / 68,883,240, torchvision's figures.

``small_input=True`` swaps the stem for a 3x3 stride-1 conv and no max-pool
(the CIFAR/Tiny-ImageNet ResNet-18 of Tanaka et al. 2020, used by paper 000
for Tiny-ImageNet). ``width`` scales every stage (64 = the standard nets), so
tests and smoke runs can build tiny ones.

keras.applications.ResNet50 is not used: its convs carry biases (26,560 more
parameters), its stride sits on the first 1x1 conv (ResNet v1), it has no
small-input stem and it needs inputs of at least 32 px (BUILD_NOTES.md).

>>> resnet18(input_shape=(32, 32, 3), num_classes=10, width=8, small_input=True).output_shape
(None, 10)
"""

import keras
from keras import layers

from tfsubspace.models.common import (
    BN_EPSILON,
    BN_MOMENTUM,
    check_name,
    check_output_activation,
    output_head,
    require_image_shape,
    require_int,
)

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv.
_CONV_INIT = keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def resnet18(input_shape=(224, 224, 3), num_classes=1000, width=64, small_input=False, blocks_per_stage=(2, 2, 2, 2),
             output_activation=None, synchronized=False,
             name="resnet18"):
    """Builds torchvision's ResNet-18 (basic blocks [2, 2, 2, 2]).

    Layer names: "stem_conv", "stem_bn", "stem_relu" (and "stem_pool" unless
    ``small_input``); then for stage s in 1..4 and block b "stage{s}_block{b}_conv1",
    "..._bn1", "..._conv2", "..._bn2", "..._add", "..._relu" (plus
    "..._shortcut_conv", "..._shortcut_bn" where the shape changes); then
    "global_pool" and "logits".

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: Number of output classes (>= 2).
        width: Planes of the first stage (>= 1); the others use 2x, 4x, 8x.
            64 gives the standard network.
        small_input: 3x3 stride-1 stem without max-pool, for 32-64 px images.
        blocks_per_stage: Blocks in each of the four stages; fewer than the
            standard ones give shallow variants for smoke runs.
        output_activation: None for logits, or "softmax" for probabilities.
        synchronized: BatchNorm statistics over the global batch of all
            replicas under a `tf.distribute` strategy (the binary sets it
            there, so 4 GPUs see the statistics of one batch of 256).
        name: Name of the returned model.

    Returns:
        An uncompiled ``keras.Model`` of logits (or probabilities).

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> model = resnet18(input_shape=(64, 64, 3), num_classes=200, width=8, small_input=True)
    >>> model.get_layer("stage2_block1_shortcut_conv").strides, model.output_shape
    ((2, 2), (None, 200))
    """
    return _resnet("basic", blocks_per_stage, 1, input_shape, num_classes, width, small_input, output_activation,
                   synchronized, name)


def resnet50(input_shape=(224, 224, 3), num_classes=1000, width=64, small_input=False, blocks_per_stage=(3, 4, 6, 3),
             output_activation=None, synchronized=False,
             name="resnet50"):
    """Builds torchvision's ResNet-50 (bottleneck blocks [3, 4, 6, 3], stride on the 3x3 conv).

    Arguments and layer names as :func:`resnet18`; a bottleneck block has
    "..._conv1" (1x1), "..._conv2" (3x3), "..._conv3" (1x1, 4x the planes)
    and their "..._bn1/2/3".

    Example:

    >>> model = resnet50(input_shape=(32, 32, 3), num_classes=10, width=4)
    >>> model.get_layer("stage4_block1_conv3").filters
    128
    """
    return _resnet("bottleneck", blocks_per_stage, 1, input_shape, num_classes, width, small_input, output_activation,
                   synchronized, name)


def wide_resnet50_2(input_shape=(224, 224, 3), num_classes=1000, width=64, small_input=False,
                    blocks_per_stage=(3, 4, 6, 3), output_activation=None, synchronized=False,
                    name="wide_resnet50_2"):
    """Builds torchvision's WideResNet-50-2: :func:`resnet50` with twice as wide 1x1/3x3 inner convs.

    Example:

    >>> model = wide_resnet50_2(input_shape=(32, 32, 3), num_classes=10, width=4)
    >>> model.get_layer("stage1_block1_conv2").filters, model.get_layer("stage1_block1_conv3").filters
    (8, 16)
    """
    return _resnet("bottleneck", blocks_per_stage, 2, input_shape, num_classes, width, small_input, output_activation,
                   synchronized, name)


def _resnet(block, blocks_per_stage, width_factor, input_shape, num_classes, width, small_input, output_activation,
            synchronized, name):
    input_shape = require_image_shape("input_shape", input_shape, min_side=1)
    message = f"`blocks_per_stage` must be 4 ints >= 1, got {blocks_per_stage!r}."
    if isinstance(blocks_per_stage, (str, bytes)) or not hasattr(blocks_per_stage, "__iter__"):
        raise ValueError(message)
    blocks_per_stage = tuple(blocks_per_stage)
    if len(blocks_per_stage) != 4:
        raise ValueError(message)
    blocks_per_stage = tuple(require_int("blocks_per_stage", b, minimum=1) for b in blocks_per_stage)
    num_classes = require_int("num_classes", num_classes, minimum=2)
    width = require_int("width", width, minimum=1)
    if not isinstance(small_input, bool):
        raise ValueError(f"`small_input` must be True or False, got {small_input!r}.")
    if not isinstance(synchronized, bool):
        raise ValueError(f"`synchronized` must be True or False, got {synchronized!r}.")

    def batch_norm(name):
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=synchronized,
                                         name=name)

    check_output_activation(output_activation)
    check_name(name)

    inputs = keras.Input(shape=input_shape, name="input")
    if small_input:
        x = _conv(width, 3, 1, "stem_conv")(inputs)
    else:
        x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
        x = _conv(width, 7, 2, "stem_conv", padding="valid")(x)
    x = batch_norm("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if not small_input:
        # torchvision pads with -inf; after the ReLU zeros pool the same.
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    for stage, num_blocks in enumerate(blocks_per_stage, start=1):
        planes = width * 2 ** (stage - 1)
        for index in range(1, num_blocks + 1):
            strides = 2 if stage > 1 and index == 1 else 1
            prefix = f"stage{stage}_block{index}"
            if block == "basic":
                x = _basic_block(x, planes, strides, prefix, batch_norm)
            else:
                x = _bottleneck(x, planes, planes * width_factor, strides, prefix, batch_norm)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, output_head(outputs, output_activation), name=name)


def _basic_block(x, planes, strides, prefix, batch_norm):
    shortcut = x
    x = _conv3x3(x, planes, strides, f"{prefix}_conv1")
    x = layers.ReLU(name=f"{prefix}_relu1")(batch_norm(f"{prefix}_bn1")(x))
    x = batch_norm(f"{prefix}_bn2")(_conv3x3(x, planes, 1, f"{prefix}_conv2"))
    return _merge(x, shortcut, planes, strides, prefix, batch_norm)


def _bottleneck(x, planes, inner, strides, prefix, batch_norm):
    shortcut = x
    x = layers.ReLU(name=f"{prefix}_relu1")(batch_norm(f"{prefix}_bn1")(_conv(inner, 1, 1, f"{prefix}_conv1")(x)))
    x = _conv3x3(x, inner, strides, f"{prefix}_conv2")
    x = layers.ReLU(name=f"{prefix}_relu2")(batch_norm(f"{prefix}_bn2")(x))
    x = batch_norm(f"{prefix}_bn3")(_conv(4 * planes, 1, 1, f"{prefix}_conv3")(x))
    return _merge(x, shortcut, 4 * planes, strides, prefix, batch_norm)


def _merge(x, shortcut, filters, strides, prefix, batch_norm):
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, f"{prefix}_shortcut_conv", padding="valid")(shortcut)
        shortcut = batch_norm(f"{prefix}_shortcut_bn")(shortcut)
    x = layers.Add(name=f"{prefix}_add")([x, shortcut])
    return layers.ReLU(name=f"{prefix}_relu")(x)


def _conv3x3(x, filters, strides, name):
    if strides == 1:
        return _conv(filters, 3, 1, name)(x)
    # PyTorch's padding=1 pads both sides; Keras "same" at stride 2 pads only
    # bottom/right and would misalign with the 1x1 stride-2 shortcut.
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return _conv(filters, 3, strides, name, padding="valid")(x)


def _conv(filters, kernel_size, strides, name, padding="same"):
    return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                         kernel_initializer=_CONV_INIT, name=name)

