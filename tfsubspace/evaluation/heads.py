"""Logits or probabilities: decided once, here, for every evaluation.

A Keras model's head is read in this order:

1. the `from_logits` argument when the caller gives one (True or False);
2. the compiled loss: its `from_logits` (a loss object, or a name such as
   "sparse_categorical_crossentropy", whose Keras default is False);
3. the output layer: a softmax or sigmoid final activation (or a `Softmax`
   layer) means probabilities, anything else logits.

Outputs said to be probabilities are checked (non-negative rows summing to
1), so a head read wrongly fails loudly instead of scoring silently wrong.
The same check, in `keras.ops` (`are_probabilities`), lets `ts.metrics` that
were never told the head decide from the values. One output column is a
binary head: p (or a logit) becomes [1 − p, p].

Example:

>>> import keras
>>> from tfsubspace.evaluation import heads
>>> soft = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
>>> heads.outputs_logits(soft)
False
>>> soft.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> heads.outputs_logits(soft), heads.outputs_logits(soft, from_logits=False)
(True, False)
"""

import keras
import numpy as np

# Loss names whose Keras functions take `from_logits` (default False).
_PROBABILISTIC_LOSS_NAMES = {
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
}
_PROBABILITY_ACTIVATIONS = {"softmax", "sigmoid"}
# Probabilities may dip this far below 0 and their rows may miss a sum of 1 by
# this much (float32 softmax rounding); anything further is not probabilities.
_NEGATIVE_TOLERANCE = 1e-6
_SUM_TOLERANCE = 1e-3


def check_from_logits(from_logits):
    if from_logits is not None and not isinstance(from_logits, (bool, np.bool_)):
        raise ValueError(f"`from_logits` must be None (read from the model), True or False, got {from_logits!r}.")
    return None if from_logits is None else bool(from_logits)


def _loss_from_logits(loss):
    """True/False from a compiled loss, or None when it does not say."""
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    if isinstance(loss, str):
        return False if loss in _PROBABILISTIC_LOSS_NAMES else None
    value = getattr(loss, "from_logits", None)
    if isinstance(value, bool):
        return value
    name = getattr(loss, "__name__", None)  # a loss function such as keras.losses.sparse_categorical_crossentropy
    return False if name in _PROBABILISTIC_LOSS_NAMES else None


def _output_layer(model):
    """The layer that produces the model's (single) output, inside nested models."""
    network = model
    while True:
        layer = None
        outputs = getattr(network, "outputs", None)
        if outputs is not None and len(outputs) == 1:
            # Functional and Sequential models record the producing layer on
            # their symbolic outputs (keras.src.ops.Operation._keras_history).
            history = getattr(outputs[0], "_keras_history", None)
            layer = history[0] if history is not None else None
        if layer is None and getattr(network, "layers", None):
            layer = network.layers[-1]
        if isinstance(layer, keras.Model) and layer is not network:
            network = layer
            continue
        return layer


def _activation_name(layer):
    from tfsubspace.layers import Subspace

    while isinstance(layer, Subspace):  # a subspace wrapper computes with its inner layer's activation
        layer = layer.layer
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def outputs_logits(model, from_logits=None, loss=None):
    """Whether `model` outputs logits (True) or probabilities (False); see the module docstring.

    `loss`, when given, is read instead of `model.loss`: the loss about to be
    compiled, to decide before `compile` has run.
    """
    from_logits = check_from_logits(from_logits)
    if from_logits is not None:
        return from_logits
    decided = _loss_from_logits(getattr(model, "loss", None) if loss is None else loss)
    if decided is not None:
        return decided
    from tfsubspace.model import SubspaceModel

    network = model.network if isinstance(model, SubspaceModel) else model
    return _activation_name(_output_layer(network)) not in _PROBABILITY_ACTIVATIONS


def are_probabilities(rows):
    """A scalar boolean tensor: whether every row of `rows` [N, C] is a probability vector.

    The check `to_probabilities` applies, in `keras.ops` so that it runs
    inside a traced `tf.function` (a metric's `update_state`). No rows pass.

    >>> import numpy as np
    >>> bool(are_probabilities(np.array([[0.25, 0.75]]))), bool(are_probabilities(np.array([[2.0, -1.0]])))
    (True, False)
    """
    rows = keras.ops.convert_to_tensor(rows)
    non_negative = keras.ops.all(rows >= -_NEGATIVE_TOLERANCE)
    sums_to_one = keras.ops.all(keras.ops.abs(keras.ops.sum(rows, axis=-1) - 1.0) <= _SUM_TOLERANCE)
    return keras.ops.logical_and(non_negative, sums_to_one)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def to_probabilities(outputs, logits, temperature=1.0, name="model"):
    """Float64 probabilities [N, C] from a model's outputs, tempered by `temperature`.

    Logits z give softmax(z / T). Probabilities p give softmax(log p / T),
    which equals softmax(z / T) for the logits z behind them, so temperature
    scaling means the same for both heads.
    """
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim != 2:
        raise ValueError(f"`{name}` must output [batch, classes] scores, got outputs of shape {outputs.shape}.")
    binary = outputs.shape[-1] == 1
    if logits:
        z = np.concatenate([np.zeros_like(outputs), outputs], axis=-1) if binary else outputs
        return _softmax(z / temperature)
    if binary:
        outputs = np.concatenate([1.0 - outputs, outputs], axis=-1)
    low, sums = float(outputs.min(initial=0.0)), outputs.sum(axis=-1)
    if low < -_NEGATIVE_TOLERANCE or (sums.size and float(np.max(np.abs(sums - 1.0))) > _SUM_TOLERANCE):
        raise ValueError(
            f"`{name}` outputs are not probabilities (min {low:.3g}, row sums up to "
            f"{float(np.max(sums)):.3g}) though its loss/activation says so; pass from_logits=True."
        )
    if temperature == 1.0:
        return np.clip(outputs, 0.0, None)
    return _softmax(np.log(np.clip(outputs, 1e-300, None)) / temperature)
