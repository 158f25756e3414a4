"""Multi-layer perceptron for small image classification tasks (e.g. MNIST).

The model is a plain Keras functional model built from stock ``keras.layers``
only, so that it can later be converted layer by layer into a subspace model.
It returns logits unless ``output_activation="softmax"`` is requested.

Example:
    >>> from tfsubspace.models.mlp import mlp
    >>> model = mlp(input_shape=(28, 28, 1), num_classes=10, hidden_units=(64,))
    >>> model.output_shape
    (None, 10)
"""

import keras
from keras import layers

from tfsubspace.models.common import (
    check_dropout,
    check_name,
    check_output_activation,
    output_head,
    require_int,
    require_shape,
)


def mlp(
    input_shape=(28, 28, 1),
    num_classes=10,
    hidden_units=(512, 256),
    dropout=0.0,
    output_activation=None,
    name="mlp",
):
    """Builds a fully connected classifier: Flatten -> [Dense+ReLU]* -> Dense.

    Layer names are deterministic ("flatten", "dense1", "dense1_relu",
    "dense1_dropout", ..., "logits"), so weights can be matched between two
    builds of the same configuration by variable path.

    Args:
        input_shape: Shape of one example, without the batch dimension.
        num_classes: Number of output classes (>= 2).
        hidden_units: Width of each hidden layer, in order; may be empty,
            which gives a linear (multinomial logistic regression) model.
        dropout: Dropout rate applied after every hidden ReLU, in [0, 1).
            No Dropout layer is created when it is 0.
        output_activation: None for logits, or "softmax" for probabilities.
        name: Name of the returned model.

    Returns:
        An uncompiled ``keras.Model`` mapping a batch of inputs to
        ``(batch, num_classes)`` logits (or probabilities).

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> model = mlp(hidden_units=(128,), dropout=0.1)
        >>> [layer.name for layer in model.layers][1:]
        ['flatten', 'dense1', 'dense1_relu', 'dense1_dropout', 'logits']
    """
    input_shape = require_shape("input_shape", input_shape)
    num_classes = require_int("num_classes", num_classes, minimum=2)
    if isinstance(hidden_units, (str, bytes)) or not hasattr(hidden_units, "__iter__"):
        raise ValueError(f"`hidden_units` must be a sequence of ints >= 1, got {hidden_units!r}.")
    hidden_units = tuple(
        require_int(f"hidden_units[{index}]", units, minimum=1) for index, units in enumerate(hidden_units)
    )
    dropout = check_dropout(dropout)
    check_output_activation(output_activation)
    check_name(name)

    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Flatten(name="flatten")(inputs)
    for index, units in enumerate(hidden_units, start=1):
        # he_normal suits the ReLU that follows; the activation is a separate
        # layer so each Dense can be swapped for a subspace Dense on its own.
        x = layers.Dense(units, kernel_initializer="he_normal", name=f"dense{index}")(x)
        x = layers.ReLU(name=f"dense{index}_relu")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"dense{index}_dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, output_head(outputs, output_activation), name=name)

