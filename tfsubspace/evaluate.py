"""Evaluating points of a subspace: sweeps along it, with batch norm recomputed.

`sweep` evaluates a SubspaceModel at many points α (paper 001 §4.1–4.2 and
Figs. 4–6): accuracy, NLL and ECE at each α, each with batch-norm statistics
recomputed there (paper 000 §D.3), and, for one-dimensional shapes, the
ensemble of P(α) and P(1 − α) with the total-variation distance between them.
Each α's test predictions are computed once and reused by every pair.

Example:

>>> import numpy as np, keras, tensorflow as tf, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
...                          keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), seed=0)
>>> x, y = np.random.rand(64, 4).astype("float32"), np.arange(64) % 3
>>> data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
>>> result = ts.evaluate.sweep(model, data, batchnorm_data=data, alphas=[0.0, 0.5, 1.0])
>>> [row["alpha"] for row in result.rows]
[0.0, 0.5, 1.0]
>>> sorted(result.rows[0])
['accuracy', 'alpha', 'ece', 'nll', 'pair_accuracy', 'pair_ece', 'pair_nll', 'pair_tv']
"""

import json

import numpy as np
import tensorflow as tf

from tfsubspace import metrics
from tfsubspace.batchnorm import preserved_point, recompute_batchnorm
from tfsubspace.curve_evaluation import curve  # noqa: F401  (ts.evaluate.curve, paper 003 Table 2)


def labels_of(data):
    """All labels of a tf.data.Dataset of (x, y[, w]) batches, as numpy."""
    return np.concatenate([np.asarray(batch[1]) for batch in data])


def predict_probabilities(model, data, from_logits=True, temperature=1.0):
    """Softmax(logits / temperature) of `model` on the x of every batch of `data`."""
    outputs = model.predict(data.map(lambda *batch: batch[0]), verbose=0)
    if from_logits:
        outputs = tf.nn.softmax(outputs.astype(np.float64) / temperature, axis=-1).numpy()
    return outputs


def _check_temperature(temperature, from_logits):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"`temperature` must be a number > 0, got {temperature!r}.")
    if temperature != 1.0 and not from_logits:
        raise ValueError("`temperature` needs logits: pass from_logits=True (the model must output logits).")


def fit_temperature(model_or_members, val_data, bounds=(0.05, 20.0), iterations=60):
    """The temperature T minimising validation NLL of softmax(logits / T) (003 A.6; Guo et al. 2017).

    `model_or_members` is a Keras model that outputs logits (a SubspaceModel at
    its current α included), or a list of such models: then one T is shared
    by all members and chosen for the NLL of their ensemble (mean of tempered
    probabilities). Golden-section search on log T within `bounds`.

    Example: `T = ts.evaluate.fit_temperature(model, val_ds)`, then
    `ts.evaluate.sweep(..., temperature=T)`.
    """
    members = list(model_or_members) if isinstance(model_or_members, (list, tuple)) else [model_or_members]
    if not members:
        raise ValueError("`model_or_members` must be a model or a non-empty list of models.")
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"`bounds` must be (low, high) with 0 < low < high, got {bounds!r}.")
    labels = labels_of(val_data)
    logits = [m.predict(val_data.map(lambda *batch: batch[0]), verbose=0).astype(np.float64) for m in members]

    def nll_at(log_temperature):
        temperature = np.exp(log_temperature)
        probabilities = np.mean([tf.nn.softmax(z / temperature, axis=-1).numpy() for z in logits], axis=0)
        return -np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-300, None)))

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


def ensemble_probabilities(member_probabilities):
    """The ensemble's prediction: the mean of the members' probabilities."""
    return np.mean(np.stack(member_probabilities), axis=0)


def probabilities_at(model, alpha, test_data, batchnorm_data, batchnorm_steps=None, from_logits=True, temperature=1.0):
    """Test probabilities of a SubspaceModel at α, batch norm recomputed there."""
    recompute_batchnorm(model, batchnorm_data, alpha=alpha, steps=batchnorm_steps)
    return predict_probabilities(model, test_data, from_logits=from_logits, temperature=temperature)


def _metric(metric, *args):
    metric.update_state(*args)
    return float(metric.result())


def scores(probabilities, labels, num_bins=15):
    """{"accuracy", "nll", "ece"} of predicted probabilities against labels."""
    probabilities = probabilities.astype(np.float32)
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, axis=-1) == labels)),
        "nll": _metric(metrics.NegativeLogLikelihood(), labels, probabilities),
        "ece": _metric(metrics.ExpectedCalibrationError(num_bins=num_bins), labels, probabilities),
    }


def total_variation(first, second):
    return _metric(metrics.TotalVariationDistance(), first.astype(np.float32), second.astype(np.float32))


class Sweep:
    """The result of `sweep`: `rows` (one dict per α) and the probabilities.

    `probabilities(alpha)` returns the cached test probabilities at α.
    """

    def __init__(self, rows, cache):
        self.rows = rows
        self._cache = cache

    def probabilities(self, alpha):
        return self._cache[_key(alpha)]

    def to_markdown(self):
        columns = list(self.rows[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in self.rows:
            lines.append("| " + " | ".join(_format(row[c]) for c in columns) + " |")
        return "\n".join(lines)


def _format(value):
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"{v:.3f}" for v in value) + "]"
    return f"{value:.4f}"


def _key(alpha):
    return json.dumps(np.round(np.asarray(alpha, dtype=np.float64), 10).tolist())


#: Training batches per batch-norm recompute in sweeps and ensembles. 20 batches
#: of 128 (2,560 examples) differ from a full pass by at most 0.2 accuracy points
#: over a 21-point sweep (benchmarks/README.md); pass None for a full pass.
DEFAULT_BATCHNORM_STEPS = 20


def default_points(shape, num_random=5, seed=0):
    """21 points on [0, 1] for curves; center, vertices and random points for simplexes."""
    if shape.alpha_rank == 0:
        return [round(float(a), 10) for a in np.linspace(0.0, 1.0, 21)]
    vertices = np.eye(shape.num_points).tolist()
    random_points = shape.sample(seed, num=num_random).numpy().astype(np.float64)
    random_points = (random_points / random_points.sum(axis=1, keepdims=True)).tolist()
    return [shape.center] + vertices + random_points


def sweep(
    model,
    test_data,
    *,
    batchnorm_data,
    alphas=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    ensemble_pairs=True,
    from_logits=True,
    num_bins=15,
    seed=0,
    temperature=1.0,
):
    """Evaluates `model` at each α with batch norm recomputed there.

    Args:
        model: a `ts.SubspaceModel`.
        test_data: a tf.data.Dataset of (x, y) batches to evaluate on.
        batchnorm_data: training batches for the batch-norm recompute.
        alphas: the points; default `default_points(shape)`.
        batchnorm_steps: batches of `batchnorm_data` per recompute; the
            default, 20 batches (2,560 examples at batch size 128), scores
            within 0.2 accuracy points of a full pass at a seventh of its
            cost (benchmarks/sweep_cost.py); None uses all of it.
        ensemble_pairs: for curves, also score the ensemble of P(α) and
            P(1 − α) and their total-variation distance (paper 001 Fig. 5).
        from_logits: whether the model outputs logits.
        num_bins: ECE bins.
        seed: seed of the random simplex points.
        temperature: divides the logits before the softmax (see
            `fit_temperature`); 1 leaves them as they are.

    Returns:
        A `Sweep`; the model is left as it was: same inference α, same
        batch-norm statistics.
    """
    _check_temperature(temperature, from_logits)
    shape = model.subspace_shape
    points = default_points(shape, seed=seed) if alphas is None else list(alphas)
    for alpha in points:
        shape.validate_alpha(alpha, name="alphas")
    pairs = ensemble_pairs and shape.alpha_rank == 0
    labels = labels_of(test_data)
    cache = {}

    def probabilities(alpha):
        key = _key(alpha)
        if key not in cache:
            cache[key] = probabilities_at(
                model, alpha, test_data, batchnorm_data, batchnorm_steps, from_logits, temperature
            )
        return cache[key]

    rows = []
    with preserved_point(model):
        for alpha in points:
            own = probabilities(alpha)
            row = {"alpha": alpha, **scores(own, labels, num_bins)}
            if pairs:
                partner = probabilities(round(1.0 - float(alpha), 10))
                pair = scores(ensemble_probabilities([own, partner]), labels, num_bins)
                row.update({f"pair_{name}": value for name, value in pair.items()})
                row["pair_tv"] = total_variation(own, partner)
            rows.append(row)
    return Sweep(rows, cache)


def random_points(model, k, seed=0):
    """k points drawn like the training sampler draws them (uniform on the domain, 001 §4.5).

    Example: `ts.evaluate.random_points(model, 5, seed=0)` → five α in [0, 1]
    for a curve, or five probability vectors for a simplex.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be an integer >= 1, got {k!r}.")
    points = model.subspace_shape.sample(seed, num=k).numpy().astype(np.float64)
    if model.subspace_shape.alpha_rank == 0:
        return [float(a) for a in points]
    return (points / points.sum(axis=1, keepdims=True)).tolist()


def ensemble(
    members,
    test_data,
    *,
    model=None,
    batchnorm_data=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    from_logits=True,
    num_bins=15,
    temperature=1.0,
):
    """Scores an ensemble (mean of member probabilities) and each member.

    Args:
        members: a list of Keras models, or, with `model`, a list of points α
            of that SubspaceModel (e.g. from `random_points`).
        test_data: a tf.data.Dataset of (x, y) batches.
        model: the SubspaceModel whose points `members` are.
        batchnorm_data: training batches for the per-point batch-norm
            recompute (required with `model`).
        batchnorm_steps, from_logits, num_bins, temperature: as in `sweep`.

    Returns:
        {"ensemble": {"accuracy", "nll", "ece"}, "members": [{"member", ...}]}.
    """
    members = list(members)
    if not members:
        raise ValueError("`members` must hold at least one model or point.")
    _check_temperature(temperature, from_logits)
    if model is not None:
        if batchnorm_data is None:
            raise ValueError("`batchnorm_data` is required when `members` are points of `model`.")
        for alpha in members:
            model.subspace_shape.validate_alpha(alpha, name="members")
        with preserved_point(model):
            member_probabilities = [
                probabilities_at(model, alpha, test_data, batchnorm_data, batchnorm_steps, from_logits, temperature)
                for alpha in members
            ]
        names = members
    else:
        member_probabilities = [predict_probabilities(m, test_data, from_logits, temperature) for m in members]
        names = [m.name for m in members]
    labels = labels_of(test_data)
    return {
        "ensemble": scores(ensemble_probabilities(member_probabilities), labels, num_bins),
        "members": [{"member": name, **scores(p, labels, num_bins)} for name, p in zip(names, member_probabilities)],
    }
