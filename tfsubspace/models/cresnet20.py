"""CIFAR ResNet-20 (He et al. 2016, Sec. 4.2), as implemented in open_lth.

A 3x3 conv-BN-ReLU stem, three stages of three basic residual blocks with
``width``, ``2 * width`` and ``4 * width`` filters (16/32/64 by default), global
average pooling and a Dense classifier: 1 + 3 * 3 * 2 + 1 = 20 weight layers.
The first block of stages 2 and 3 halves the resolution with a stride-2 conv,
and its shortcut is a 1x1 stride-2 conv + BN projection, as in open_lth's
``cifar_resnet_20`` (the paper's option A zero-pads the identity instead).
All kernels use Kaiming-normal ("he_normal") initialization, and the convs
have no bias because each one is followed by BatchNorm. About 0.27M parameters
at the default width.

The model is a plain Keras functional model built from stock ``keras.layers``
only, so that it can later be converted layer by layer into a subspace model.
It returns logits unless ``output_activation="softmax"`` is requested.

Example:
    >>> from tfsubspace.models.cresnet20 import cresnet20
    >>> model = cresnet20(input_shape=(32, 32, 3), num_classes=10)
    >>> model.output_shape
    (None, 10)
"""

import keras
from keras import layers

from tfsubspace.models.common import (
    BN_EPSILON,
    BN_MOMENTUM,
    check_output_activation,
    output_head,
    require_image_shape,
    require_int,
)

_BLOCKS_PER_STAGE = 3


def cresnet20(
    input_shape=(32, 32, 3),
    num_classes=10,
    width=16,
    output_activation=None,
    name="cresnet20",
    synchronized=False,
):
    """Builds the CIFAR ResNet-20.

    Layer names are deterministic and unique, so weights can be matched
    between two builds of the same configuration by variable path:
    "stem_conv", "stem_bn", "stem_relu"; then for stage s in 1..3 and block b
    in 1..3 "stage{s}_block{b}_conv1", "..._bn1", "..._relu1", "..._conv2",
    "..._bn2", "..._add", "..._relu" (plus "..._pad1" before a stride-2 conv1
    and "..._shortcut_conv", "..._shortcut_bn" on projection shortcuts); then
    "global_pool" and "logits".

    Args:
        input_shape: (height, width, channels) of one image, 32x32x3 for
            CIFAR; each stride-2 stage halves odd sizes rounding up, as in
            PyTorch.
        num_classes: Number of output classes (>= 2).
        width: Filters in the stem and first stage (>= 1); stages 2 and 3 use
            2x and 4x as many. 16 gives the standard ResNet-20.
        output_activation: None for logits, or "softmax" for probabilities.
        name: Name of the returned model.
        synchronized: BatchNorm statistics over the global batch of all
            replicas under a `tf.distribute` strategy (the binary sets it
            when training on more than one replica).

    Returns:
        An uncompiled ``keras.Model`` mapping ``(batch, *input_shape)`` images
        to ``(batch, num_classes)`` logits (or probabilities).

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> model = cresnet20(width=8)
        >>> model.get_layer("stage3_block1_shortcut_conv").strides
        (2, 2)
    """
    input_shape = require_image_shape("input_shape", input_shape, min_side=1)
    num_classes = require_int("num_classes", num_classes, minimum=2)
    width = require_int("width", width, minimum=1)
    check_output_activation(output_activation)
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty str, got {name!r}.")

    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv3x3(width, strides=1, name="stem_conv")(inputs)
    x = _batch_norm("stem_bn", synchronized)(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for block in range(1, _BLOCKS_PER_STAGE + 1):
            downsample = stage > 1 and block == 1
            x = _basic_block(x, filters, downsample, prefix=f"stage{stage}_block{block}",
                             synchronized=synchronized)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer="he_normal", name="logits")(x)
    return keras.Model(inputs, output_head(outputs, output_activation), name=name)


def _basic_block(x, filters, downsample, prefix, synchronized=False):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU (open_lth's Block)."""
    shortcut = x
    if downsample:
        # PyTorch's padding=1 pads both sides; Keras "same" with stride 2 pads
        # only bottom/right, which would sample odd pixels while the 1x1
        # shortcut samples even ones. Explicit padding keeps them aligned.
        x = layers.ZeroPadding2D(1, name=f"{prefix}_pad1")(x)
        x = _conv3x3(filters, strides=2, padding="valid", name=f"{prefix}_conv1")(x)
    else:
        x = _conv3x3(filters, strides=1, name=f"{prefix}_conv1")(x)
    x = _batch_norm(f"{prefix}_bn1", synchronized)(x)
    x = layers.ReLU(name=f"{prefix}_relu1")(x)
    x = _conv3x3(filters, strides=1, name=f"{prefix}_conv2")(x)
    x = _batch_norm(f"{prefix}_bn2", synchronized)(x)

    # open_lth projects whenever the shape changes (only at a downsampling
    # block here, since the stem already has `width` filters).
    if downsample or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters,
            1,
            strides=2 if downsample else 1,
            use_bias=False,
            kernel_initializer="he_normal",
            name=f"{prefix}_shortcut_conv",
        )(shortcut)
        shortcut = _batch_norm(f"{prefix}_shortcut_bn", synchronized)(shortcut)
    x = layers.Add(name=f"{prefix}_add")([x, shortcut])
    return layers.ReLU(name=f"{prefix}_relu")(x)


def _conv3x3(filters, strides, name, padding="same"):
    # No bias: the BatchNorm beta that always follows makes it redundant.
    return layers.Conv2D(
        filters,
        3,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _batch_norm(name, synchronized=False):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=synchronized, name=name)

