"""The model zoo: stock Keras models, converted into subspaces with `ts.convert`.

Every model returns logits (pass `output_activation="softmax"` for
probabilities) and names its layers deterministically, so weights can be
matched between two builds by path.

Example:

>>> from tfsubspace.models import get_model
>>> get_model("small_cnn", width=8).output_shape
(None, 10)
"""

from tfsubspace.models.cresnet20 import cresnet20
from tfsubspace.models.mlp import mlp
from tfsubspace.models.small_cnn import small_cnn

MODELS = {"mlp": mlp, "small_cnn": small_cnn, "cresnet20": cresnet20}


def get_model(name, **kwargs):
    """Builds the zoo model `name` with its keyword arguments."""
    if name not in MODELS:
        raise ValueError(f"`name` must be one of {sorted(MODELS)}, got {name!r}.")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "cresnet20", "get_model", "mlp", "small_cnn"]
