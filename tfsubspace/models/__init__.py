"""The model zoo: stock Keras models, converted into subspaces with `ts.convert`.

Every model is a plain functional ``keras.Model`` built from ``keras.layers``
only, returns logits (pass ``output_activation="softmax"`` for probabilities)
and names its layers deterministically, so weights can be matched between two
builds by variable path (e.g. ``"stage2_block1_conv1/kernel"``).

- ``mlp``: Flatten -> Dense+ReLU per hidden layer -> Dense, for 28x28 inputs.
- ``small_cnn``: a fast batch-normalized CNN for 28x28 inputs.
- ``cresnet20``: the CIFAR ResNet-20 of open_lth, for 32x32 inputs.
- ``resnet18``, ``resnet50``, ``wide_resnet50_2``: torchvision's ImageNet
  ResNets (``small_input=True``: the CIFAR/Tiny-ImageNet 3x3 stem).

Example:

>>> from tfsubspace.models import get_model
>>> get_model("small_cnn", width=8).output_shape
(None, 10)
"""

import inspect

from tfsubspace.models.cresnet20 import cresnet20
from tfsubspace.models.mlp import mlp
from tfsubspace.models.resnet import resnet18, resnet50, wide_resnet50_2
from tfsubspace.models.small_cnn import small_cnn

MODELS = {"mlp": mlp, "small_cnn": small_cnn, "cresnet20": cresnet20, "resnet18": resnet18, "resnet50": resnet50,
          "wide_resnet50_2": wide_resnet50_2}


def get_model(name, /, **kwargs):
    """Builds the zoo model registered as `name`, passing it `kwargs`.

    Args:
        name: One of ``MODELS``: "mlp", "small_cnn", "cresnet20", "resnet18",
            "resnet50" or "wide_resnet50_2".
        **kwargs: Keyword arguments of that model's builder function, e.g.
            ``input_shape``, ``num_classes``, ``width``.

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        ValueError: If `name` is not registered, or a keyword argument is out
            of range for that model.

    Example:

    >>> get_model("cresnet20", num_classes=100).output_shape
    (None, 100)
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"`name` must be one of {list(MODELS)}, got {name!r}.")
    allowed = list(inspect.signature(MODELS[name]).parameters)
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        raise TypeError(f"`{unknown[0]}` is not an argument of {name}; allowed: {allowed}.")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "cresnet20", "get_model", "mlp", "resnet18", "resnet50", "small_cnn", "wide_resnet50_2"]
