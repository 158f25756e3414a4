"""What the zoo models share: argument checks, batch-norm defaults, the output head.

Example:

>>> require_int("width", 8, minimum=1)
8
>>> require_image_shape("input_shape", [28, 28, 1], min_side=4)
(28, 28, 1)
"""

import numbers

from keras import layers

OUTPUT_ACTIVATIONS = (None, "softmax")

# PyTorch's BatchNorm defaults (momentum 0.1 == Keras momentum 0.9, eps 1e-5):
# Keras' 0.99 makes the moving statistics lag badly in short ~10-epoch runs.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def require_int(arg_name, value, minimum):
    """Returns value as an int if it is an integer >= minimum, else raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{arg_name}` must be an int >= {minimum}, got {value!r}.")
    return int(value)


def require_image_shape(arg_name, value, min_side):
    """Returns value as an (height, width, channels) int tuple, else raises ValueError."""
    message = f"`{arg_name}` must be (height, width, channels) with height, width >= {min_side}, got {value!r}."
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(message)
    shape = tuple(value)
    if len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in shape):
        raise ValueError(message)
    if shape[0] < min_side or shape[1] < min_side or shape[2] < 1:
        raise ValueError(message)
    return tuple(int(d) for d in shape)


def require_shape(arg_name, value):
    """Returns value as a non-empty tuple of positive ints, else raises ValueError."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"`{arg_name}` must be a non-empty tuple of ints >= 1, got {value!r}.")
    shape = tuple(value)
    if not shape or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape):
        raise ValueError(f"`{arg_name}` must be a non-empty tuple of ints >= 1, got {value!r}.")
    return tuple(int(d) for d in shape)


def check_dropout(dropout):
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a float in [0, 1), got {dropout!r}.")
    return float(dropout)


def check_name(name):
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty str, got {name!r}.")
    return name


def check_output_activation(output_activation):
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"`output_activation` must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}.")
    return output_activation


def output_head(logits, output_activation):
    """Logits as they are, or softmax probabilities when asked."""
    if output_activation == "softmax":
        # float32 keeps the probabilities well normalized under mixed precision.
        return layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return logits
