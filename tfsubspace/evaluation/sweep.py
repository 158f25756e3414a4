"""Sweeps along a subspace: scores at many points α, batch norm recomputed at each.

`sweep` evaluates a SubspaceModel at many points α (paper 001 §4.1–4.2 and
Figs. 4–6): accuracy, NLL, ECE and Brier score at each α, each with batch-norm
statistics recomputed there (paper 000 §D.3), and, for one-dimensional
shapes, the ensemble of P(α) and P(1 − α) with the total-variation distance
between them. Each α's test predictions are computed once and reused.

Example:

>>> import numpy as np, keras, tensorflow as tf, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
...                          keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), seed=0)
>>> x, y = np.random.rand(64, 4).astype("float32"), np.arange(64) % 3
>>> data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
>>> result = ts.evaluate.sweep(model, data, batchnorm_data=data, alphas=[0.0, 0.5, 1.0])
>>> [row["alpha"] for row in result], len(result)
([0.0, 0.5, 1.0], 3)
>>> sorted(result[0])
['accuracy', 'alpha', 'brier', 'ece', 'nll', 'pair_accuracy', 'pair_brier', 'pair_ece', 'pair_nll', 'pair_tv']
"""

import json

import numpy as np

from tfsubspace.evaluation import heads
from tfsubspace.evaluation.batchnorm import preserved_point
from tfsubspace.evaluation.forward import (
    DEFAULT_BATCHNORM_STEPS,
    check_points,
    check_subspace_model,
    check_temperature,
    predict_at,
)
from tfsubspace.evaluation.points import default_points
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.reader import batches, check_int
from tfsubspace.evaluation.results import Table
from tfsubspace.evaluation.scores import ensemble_probabilities, scores, total_variation


def point_key(alpha):
    return json.dumps(np.round(np.asarray(alpha, dtype=np.float64), 10).tolist())


class Sweep(Table):
    """The result of `sweep`: one row per α; `probabilities(alpha)` gives its cached test probabilities."""

    def __init__(self, rows, cache, labels):
        super().__init__(rows)
        self._cache = cache
        self.labels = labels

    def probabilities(self, alpha):
        return self._cache[point_key(alpha)]


def sweep(
    model,
    test_data,
    *,
    batchnorm_data,
    alphas=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    ensemble_pairs=True,
    from_logits=None,
    num_bins=15,
    seed=0,
    temperature=1.0,
    verbose="auto",
):
    """Evaluates `model` at each α with batch norm recomputed there.

    Args:
        model: a `ts.SubspaceModel`.
        test_data: (x, y) batches to evaluate on: a tf.data.Dataset, an
            (x, y) tuple of arrays or a dict (see `tfsubspace.evaluation.reader`);
            integer or one-hot labels.
        batchnorm_data: training batches for the batch-norm recompute.
        alphas: the points; default `default_points(shape)`.
        batchnorm_steps: batches of `batchnorm_data` per recompute; the
            default, 20 batches (2,560 examples at batch size 128), scores
            within 0.2 accuracy points of a full pass at a seventh of its
            cost (benchmarks/sweep_cost.py); None uses all of it.
        ensemble_pairs: for curves, also score the ensemble of P(α) and
            P(1 − α) and their total-variation distance (paper 001 Fig. 5).
        from_logits: None reads it from the model (`evaluation.heads`);
            True/False overrides.
        num_bins: ECE bins.
        seed: seed of the random simplex points.
        temperature: T of softmax(logits / T) (see `fit_temperature`).
        verbose: "auto" (a progress bar in a terminal), 0 or 1.

    Returns:
        A `Sweep`; the model is left as it was: same inference α, same
        batch-norm statistics.
    """
    check_subspace_model(model)
    logits = heads.outputs_logits(model, from_logits)
    temperature = check_temperature(temperature)
    check_int(num_bins, "num_bins", 1)
    batchnorm_steps = check_int(batchnorm_steps, "batchnorm_steps", 1, allow_none=True)
    shape = model.subspace_shape
    points = default_points(shape, seed=seed) if alphas is None else check_points(model, alphas, "alphas")
    pairs = ensemble_pairs and shape.alpha_rank == 0
    test_data = batches(test_data, "test_data")
    cache, labels = {}, {}

    def probabilities(alpha):
        key = point_key(alpha)
        if key not in cache:
            cache[key], labels["y"] = predict_at(
                model, test_data, alpha=alpha, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps,
                from_logits=logits, temperature=temperature,
            )
        return cache[key]

    rows = []
    with preserved_point(model), Progress(len(points), verbose, title=f"sweep over {len(points)} points") as progress:
        for alpha in points:
            own = probabilities(alpha)
            row = {"alpha": alpha, **scores(own, labels["y"], num_bins)}
            if pairs:
                partner = probabilities(round(1.0 - float(alpha), 10))
                pair = scores(ensemble_probabilities([own, partner]), labels["y"], num_bins)
                row.update({f"pair_{name}": value for name, value in pair.items()})
                row["pair_tv"] = total_variation(own, partner)
            rows.append(row)
            progress.advance(accuracy=row["accuracy"])
    return Sweep(rows, cache, labels["y"])
