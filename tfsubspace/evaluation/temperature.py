"""Temperature scaling (paper 003 A.6; Guo et al. 2017) for logits and probabilities heads alike.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
>>> x, y = np.random.rand(64, 2).astype("float32"), np.arange(64) % 3
>>> T = ts.evaluate.fit_temperature(net, (x, y))
>>> 0.05 < T < 20.0
True
"""

import numpy as np

from tfsubspace.evaluation.forward import predict
from tfsubspace.evaluation.heads import check_from_logits
from tfsubspace.evaluation.reader import batches, check_int


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def fit_temperature(model_or_members, val_data, bounds=(0.05, 20.0), iterations=60, *, from_logits=None):
    """The temperature T minimising validation NLL of softmax(logits / T).

    `model_or_members` is a Keras model (a SubspaceModel at its current point
    included) or a list of them: one T is then shared by all members and
    chosen for the NLL of their ensemble (mean of tempered probabilities).
    Probabilities heads are tempered through their log-probabilities, which
    gives the same T as the logits behind them. Golden-section search on
    log T within `bounds`.
    """
    members = list(model_or_members) if isinstance(model_or_members, (list, tuple)) else [model_or_members]
    if not members:
        raise ValueError("`model_or_members` must be a model or a non-empty list of models.")
    check_from_logits(from_logits)
    iterations = check_int(iterations, "iterations", 1)
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"`bounds` must be (low, high) with 0 < low < high, got {bounds!r}.") from None
    if not 0 < low < high:
        raise ValueError(f"`bounds` must be (low, high) with 0 < low < high, got {bounds!r}.")
    val_data = batches(val_data, "val_data")
    predictions = [predict(m, val_data, from_logits=from_logits, name="val_data") for m in members]
    labels = predictions[0][1]
    # log p at T = 1; softmax(log p / T) = softmax(z / T) for either head.
    log_probabilities = [_log_softmax(np.log(np.clip(p, 1e-300, None))) for p, _ in predictions]
    rows = np.arange(len(labels))

    def nll_at(log_temperature):
        temperature = np.exp(log_temperature)
        probabilities = np.mean([np.exp(_log_softmax(z / temperature)) for z in log_probabilities], axis=0)
        return -np.mean(np.log(np.clip(probabilities[rows, labels], 1e-300, None)))

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = np.log(low), np.log(high)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll_at(c), nll_at(d)
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll_at(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll_at(d)
    return float(np.exp((a + b) / 2.0))
