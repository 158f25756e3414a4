"""cResNet20: the CIFAR ResNet-20 of open_lth used in paper 001 (He et al. 2016).

A 3×3 conv-BN-ReLU stem with 16 filters, three stages of three basic blocks with
16, 32 and 64 filters (scaled by `width / 16`), stride 2 at the first block of
stages 2 and 3 with a 1×1 conv + BN projection shortcut there, global average
pooling and a Dense classifier. Kaiming-normal initialisation (paper 001 §3),
no conv biases. About 0.27M parameters at width 16.

Example:

>>> from tfsubspace.models.cresnet20 import cresnet20
>>> model = cresnet20()
>>> model.output_shape, model.count_params() > 270_000
((None, 10), True)
"""

import numbers

import keras
from keras import layers

# PyTorch's BatchNorm defaults (momentum 0.1 == Keras 0.9, eps 1e-5), as in open_lth.
_BN = dict(momentum=0.9, epsilon=1e-5)
_INIT = "he_normal"
_OUTPUT_ACTIVATIONS = (None, "softmax")


def _conv(filters, kernel_size, strides, name):
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, kernel_initializer=_INIT, name=name
    )


def _block(x, filters, strides, name):
    shortcut = x
    x = _conv(filters, 3, strides, f"{name}_conv1")(x)
    x = layers.BatchNormalization(name=f"{name}_bn1", **_BN)(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = _conv(filters, 3, 1, f"{name}_conv2")(x)
    x = layers.BatchNormalization(name=f"{name}_bn2", **_BN)(x)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, f"{name}_shortcut_conv")(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn", **_BN)(shortcut)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_relu2")(x)


def cresnet20(input_shape=(32, 32, 3), num_classes=10, width=16, output_activation=None, name="cresnet20"):
    """Builds cResNet20; returns logits unless `output_activation="softmax"`.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: number of classes (>= 2).
        width: filters of the first stage (>= 1); stages use width, 2·width, 4·width.
        output_activation: None (logits) or "softmax".
        name: the model's name.

    Example:

    >>> model = cresnet20(width=8, num_classes=100)
    >>> model.get_layer("stage3_block1_conv1").filters
    32
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
        raise ValueError(f"`width` must be an integer >= 1, got {width!r}.")
    if output_activation not in _OUTPUT_ACTIVATIONS:
        raise ValueError(f"`output_activation` must be one of {_OUTPUT_ACTIVATIONS}, got {output_activation!r}.")
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels), got {input_shape!r}.")
    inputs = keras.Input(tuple(input_shape), name="input")
    x = _conv(width, 3, 1, "stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn", **_BN)(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for block in range(1, 4):
            strides = 2 if stage > 1 and block == 1 else 1
            x = _block(x, filters, strides, f"stage{stage}_block{block}")
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=_INIT, name="logits")(x)
    if output_activation == "softmax":
        outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(outputs)
    return keras.Model(inputs, outputs, name=name)
