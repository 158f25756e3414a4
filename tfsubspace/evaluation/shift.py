"""Dataset shift: accuracy, NLL and ECE under every corruption and severity.

`shift(model, corrupted_sets, clean_data=...)` scores a model on corrupted
copies of its test set (paper 004 §6.2, after Ovadia et al. 2019: accuracy,
NLL and ECE per corruption and severity) and the relative change in
*accuracy* against the clean test set, (b − a) / a for clean accuracy a and
corrupted accuracy b (paper 000 §G; negative = a drop). For several points α
of a subspace (paper 001 §4.4, 000 §G Fig. 20) it also picks, per corruption,
the best α: the one with the largest relative change at `best_severity`
(default 3, the paper's ImageNet-C severity). As in the paper, that choice is
made on the corrupted *test* data itself, so it is an optimistic oracle, not a
held-out selection.

`corrupted_sets` is a mapping {corruption name: {severity 1..5: data}}, the
data in any form `evaluation.reader` accepts ((x, y) arrays, tf.data batches,
dicts; sparse or one-hot labels), e.g. what `tfsubspace.data.fashion_mnist_c`,
`cifar10_corrupted` or `imagenet2012_corrupted` return. The inputs must be
preprocessed as the model expects (the binary applies the clean test set's
normalization).

Batch norm: each point α is placed once with its statistics recomputed on
`batchnorm_data` (clean training data, as every evaluation here does), never
on the corrupted data, and that one placement scores the clean set and every
corrupted set. This equals `sweep` on each set (tested) without recomputing
batch norm once per set.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
>>> x, y = np.random.default_rng(0).normal(size=(32, 2)).astype("float32"), np.arange(32) % 2
>>> noisy = {"noise": {1: (x + 0.1, y), 3: (x + 1.0, y)}}
>>> result = ts.evaluate.shift(net, noisy, clean_data=(x, y))
>>> [(row["corruption"], row["severity"]) for row in result]
[('noise', 1), ('noise', 3)]
>>> sorted(result[0])
['accuracy', 'corruption', 'ece', 'nll', 'relative_change', 'severity']
>>> sorted(result.keys())
['by_severity', 'clean']
"""

import collections.abc

import numpy as np

from tfsubspace import checks
from tfsubspace.evaluation import heads
from tfsubspace.evaluation.batchnorm import batchnorm_layers, preserved_point, recompute_batchnorm
from tfsubspace.evaluation.forward import (
    DEFAULT_BATCHNORM_STEPS,
    check_keras_model,
    check_points,
    check_subspace_model,
    check_temperature,
    place,
    predict,
)
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.reader import check_int
from tfsubspace.evaluation.results import Table
from tfsubspace.evaluation.scores import scores

#: The severities of the corruption benchmarks (Hendrycks & Dietterich 2019).
SEVERITIES = (1, 2, 3, 4, 5)
SHIFT_SCORES = ("accuracy", "nll", "ece")


def relative_change(corrupted, clean):
    """(b − a) / a of a corrupted accuracy b against a clean accuracy a (NaN when a = 0).

    >>> relative_change(0.25, 0.5)
    -0.5
    """
    return float((corrupted - clean) / clean) if clean else float("nan")


def check_corrupted_sets(corrupted_sets, name="corrupted_sets"):
    """{corruption: {severity: data}} with string names and severities in 1..5, checked in one line each.

    >>> check_corrupted_sets({"fog": {3: None}})
    {'fog': {3: None}}
    >>> check_corrupted_sets({"fog": {6: None}})
    Traceback (most recent call last):
    ...
    ValueError: `corrupted_sets['fog']` severities must be an integer in [1, 5], got 6.
    """
    if not isinstance(corrupted_sets, collections.abc.Mapping) or not corrupted_sets:
        raise ValueError(
            f"`{name}` must be a non-empty mapping {{corruption: {{severity: data}}}}, got {corrupted_sets!r:.80}."
        )
    checked = {}
    for corruption, by_severity in corrupted_sets.items():
        if not isinstance(corruption, str) or not corruption:
            raise ValueError(f"`{name}` keys must be corruption names (non-empty strings), got {corruption!r}.")
        if not isinstance(by_severity, collections.abc.Mapping) or not by_severity:
            raise ValueError(
                f"`{name}[{corruption!r}]` must be a non-empty mapping {{severity: data}}, got {by_severity!r:.80}."
            )
        checked[corruption] = {
            checks.integer(severity, f"`{name}[{corruption!r}]` severities", minimum=1, maximum=5): data
            for severity, data in by_severity.items()
        }
    return checked


def _check_best_severity(best_severity, corrupted_sets):
    if best_severity is None:
        return None
    best_severity = checks.integer(best_severity, "`best_severity`", minimum=1, maximum=5, allow_none=True)
    missing = sorted(c for c, sets in corrupted_sets.items() if best_severity not in sets)
    if missing:
        raise ValueError(
            f"`best_severity` must be a severity every corruption has, or None (mean over severities); "
            f"{best_severity} is missing for {missing}."
        )
    return best_severity


def _scores(probabilities, labels, num_bins):
    return {key: value for key, value in scores(probabilities, labels, num_bins).items() if key in SHIFT_SCORES}


def _evaluate_here(model, corrupted_sets, clean_data, logits, temperature, num_bins):
    """Rows of one point (the model as it is now) and its clean scores."""
    def run(data, name):
        return _scores(*predict(model, data, from_logits=logits, temperature=temperature, name=name), num_bins)

    clean = run(clean_data, "clean_data")
    rows = []
    for corruption, by_severity in corrupted_sets.items():
        for severity in sorted(by_severity):
            row = run(by_severity[severity], f"corrupted_sets[{corruption!r}][{severity}]")
            rows.append({"corruption": corruption, "severity": severity, **row,
                         "relative_change": relative_change(row["accuracy"], clean["accuracy"])})
    return clean, rows


def _by_severity(rows):
    """Per severity: the mean over corruptions of every score and of the relative change."""
    severities = sorted({row["severity"] for row in rows})
    means = []
    for severity in severities:
        chosen = [row for row in rows if row["severity"] == severity]
        means.append({"severity": severity, "corruptions": len(chosen),
                      **{key: float(np.mean([row[key] for row in chosen])) for key in (*SHIFT_SCORES, "relative_change")}})
    return means


def _best_alphas(rows, corruptions, points, best_severity):
    """Per corruption: the α with the largest relative change (at best_severity, or its mean over severities)."""
    best = {}
    for corruption in corruptions:
        candidates = []
        for index, alpha in enumerate(points):
            chosen = [row for row in rows if row["point"] == index and row["corruption"] == corruption
                      and (best_severity is None or row["severity"] == best_severity)]
            candidates.append((float(np.mean([row["relative_change"] for row in chosen])),
                               float(np.mean([row["accuracy"] for row in chosen])), alpha))
        # Ties (and NaNs from a clean accuracy of 0) go to the earliest α.
        values = np.array([c[0] for c in candidates])
        index = int(np.nanargmax(values)) if not np.all(np.isnan(values)) else 0
        change, accuracy, alpha = candidates[index]
        best[corruption] = {"alpha": alpha, "relative_change": change, "accuracy": accuracy}
    return best


def shift(
    model,
    corrupted_sets,
    *,
    clean_data,
    alpha=None,
    alphas=None,
    batchnorm_data=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    best_severity=3,
    from_logits=None,
    num_bins=15,
    temperature=1.0,
    verbose="auto",
):
    """Accuracy, NLL, ECE and relative change per corruption and severity (see the module docstring).

    Args:
        model: a Keras model (scored as it is, batch norm recomputed first
            when `batchnorm_data` is given) or a `ts.SubspaceModel` (at
            `alpha`, at each of `alphas`, or at its current point).
        corrupted_sets: {corruption: {severity: data}} (module docstring).
        clean_data: the clean test set (accuracy a of (b − a) / a): the
            same examples the corrupted sets were made from, uncorrupted.
        alpha: one point of a SubspaceModel to score, batch norm recomputed
            there on `batchnorm_data`.
        alphas: several points of a SubspaceModel (a line's grid, say): rows
            for each, plus the best α per corruption.
        batchnorm_data: clean training batches for the batch-norm recompute
            (required with `alpha`/`alphas` when the model has batch norm).
        batchnorm_steps: batches of `batchnorm_data` per recompute (None: all).
        best_severity: the severity the best α is chosen at (paper 000 §G:
            3); None chooses by the mean relative change over all severities.
        from_logits, num_bins, temperature, verbose: as in `sweep`.

    Returns:
        A `Table`: rows {"corruption", "severity", "accuracy", "nll", "ece",
        "relative_change"} (with "alpha" first when `alphas` is given); named
        parts "clean" (scores on clean_data; a list of rows with "alpha" for
        `alphas`), "by_severity" (means over corruptions, per severity, and
        per α for `alphas`) and, for `alphas`, "best_alpha" {corruption:
        {"alpha", "relative_change", "accuracy"}} plus "best_severity". The
        model is left as it was (point and batch-norm statistics).
    """
    check_keras_model(model)
    corrupted_sets = check_corrupted_sets(corrupted_sets)
    logits = heads.outputs_logits(model, from_logits)
    temperature = check_temperature(temperature)
    check_int(num_bins, "num_bins", 1)
    batchnorm_steps = check_int(batchnorm_steps, "batchnorm_steps", 1, allow_none=True)
    if alpha is not None and alphas is not None:
        raise ValueError("`alpha` and `alphas` are exclusive: pass one point or a list of points, not both.")
    if alpha is None and alphas is None:
        with preserved_point(model):
            if batchnorm_data is not None and batchnorm_layers(model):
                recompute_batchnorm(model, batchnorm_data, steps=batchnorm_steps)
            clean, rows = _evaluate_here(model, corrupted_sets, clean_data, logits, temperature, num_bins)
        return Table(rows, clean=clean, by_severity=_by_severity(rows))
    check_subspace_model(model)
    single = alphas is None
    points = check_points(model, [alpha] if single else alphas, "alpha" if single else "alphas")
    if not single:
        best_severity = _check_best_severity(best_severity, corrupted_sets)
    if batchnorm_data is None and batchnorm_layers(model):
        raise ValueError("`batchnorm_data` is required: the model has batch norm, recomputed (on clean data) at every α.")
    cleans, rows = [], []
    with preserved_point(model), Progress(len(points), verbose, title=f"shift at {len(points)} points") as progress:
        for index, point in enumerate(points):
            place(model, alpha=point, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps)
            clean, point_rows = _evaluate_here(model, corrupted_sets, clean_data, logits, temperature, num_bins)
            cleans.append({"alpha": point, **clean})
            rows.extend({"alpha": point, "point": index, **row} for row in point_rows)
            progress.advance(accuracy=clean["accuracy"])
    if single:
        rows = [{k: v for k, v in row.items() if k not in ("alpha", "point")} for row in rows]
        return Table(rows, clean=clean, by_severity=_by_severity(rows), alpha=points[0])
    by_severity = [{"alpha": point, **mean} for index, point in enumerate(points)
                   for mean in _by_severity([row for row in rows if row["point"] == index])]
    best = _best_alphas(rows, list(corrupted_sets), points, best_severity)
    rows = [{k: v for k, v in row.items() if k != "point"} for row in rows]
    return Table(rows, clean=cleans, by_severity=by_severity, best_alpha=best, best_severity=best_severity)
