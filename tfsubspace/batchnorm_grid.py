"""Batch-norm statistics for any α, from exact recomputes at a few anchors.

Batch norm's moving statistics fit one point of the subspace
(`ts.recompute_batchnorm`); a server that takes α per request cannot
recompute them. `BatchNormGrid` recomputes them exactly at anchor points and
interpolates between them with weights w(α) ≥ 0 that sum to 1, computed in
the graph:

- curves: 11 evenly spaced α (0, 0.1, ..., 1) and linear interpolation
  between the two neighbours (hat functions, w_k = max(0, 1 − |10α − k|));
- simplexes: the m vertices and the centre (`batchnorm_grid` does not
  apply), interpolated barycentrically in
  the sub-simplex (centre + m − 1 vertices) that holds α: with
  μ = min_i α_i, vertex i weighs α_i − μ and the centre m·μ.

Both are exact at the anchors and continuous in between. The mean and the
variance are interpolated linearly (a mix of variances stays positive).

Measured gap to an exact recompute at off-grid points (tests/test_serving.py:
the small CNN, conv + BN + dense on 8×8 inputs, 96 examples whose brightness
tells one of 4 classes, 5 epochs, batch norm from the same 96 examples):

- Line, 11 anchors, α = 0.05, 0.33, 0.77, 0.95: largest probability
  difference 0.0010–0.0027 (mean ≤ 0.0008), top-1 agreement 100 %, accuracy
  unchanged at every α. Close enough to serve.
- Simplex(3), 4 anchors, α = [0.6, 0.3, 0.1]: largest difference 0.065 (mean
  0.017), agreement 100 %; α = [0.1, 0.2, 0.7]: largest 0.084 (mean 0.021),
  agreement 66 %, accuracy 0.74 instead of 0.92. Four anchors are too coarse
  for a simplex: serve such points from `serve_ensemble` or
  `serving_default` (exact statistics at their points), or export at the
  point (`model.export(path, alpha=..., batchnorm_data=...)`).

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> from tfsubspace.batchnorm_grid import BatchNormGrid
>>> base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
>>> model = ts.convert(base, ts.Line(), seed=0)
>>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
>>> grid = BatchNormGrid.recompute(model, x, num_anchors=3)
>>> grid.anchors
[0.0, 0.5, 1.0]
>>> [round(float(w), 3) for w in grid.weights(0.25)]
[0.5, 0.5, 0.0]
"""

import numpy as np
import tensorflow as tf

from tfsubspace import checks
from tfsubspace.evaluation.batchnorm import batchnorm_layers, preserved_point, recompute_batchnorm

#: Anchors of a curve: α = 0, 0.1, ..., 1.
CURVE_ANCHORS = 11


def default_anchors(shape, num_anchors=CURVE_ANCHORS):
    """Anchor points: evenly spaced α for a curve; the vertices then the centre for a simplex."""
    if shape.alpha_rank == 0:
        num_anchors = checks.integer(num_anchors, "`batchnorm_grid`", minimum=2)
        return np.linspace(0.0, 1.0, num_anchors).tolist()
    return np.eye(shape.num_points).tolist() + [shape.center]


def statistics_variables(model):
    """Every batch-norm moving mean and variance of `model`, in a stable order."""
    return [v for layer in batchnorm_layers(model) for v in (layer.moving_mean, layer.moving_variance)]


def statistics_at(model, points, data, steps=None, batch_size=128):
    """{id(variable): [len(points), ...] array}: exact statistics at each point; the model is left as it was."""
    variables = statistics_variables(model)
    values = {id(v): [] for v in variables}
    with preserved_point(model):
        for point in points:
            recompute_batchnorm(model, data, alpha=point, steps=steps, batch_size=batch_size)
            for v in variables:
                values[id(v)].append(np.asarray(v.numpy()))
    return {key: np.stack(rows) for key, rows in values.items()}


class BatchNormGrid:
    """Batch-norm statistics at anchor points, and their interpolation at any α."""

    def __init__(self, shape, anchors, statistics):
        self.shape = shape
        self.anchors = [a if np.ndim(a) == 0 else list(a) for a in anchors]
        self.statistics = statistics  # {id(variable): [num_anchors, ...] array}

    @classmethod
    def recompute(cls, model, data, num_anchors=CURVE_ANCHORS, steps=None, batch_size=128):
        anchors = default_anchors(model.subspace_shape, num_anchors)
        return cls(model.subspace_shape, anchors, statistics_at(model, anchors, data, steps, batch_size))

    def weights(self, alpha):
        """w(α) [num_anchors] as a float32 tensor (works on symbolic α)."""
        alpha = tf.cast(alpha, tf.float32)
        if self.shape.alpha_rank == 0:
            scaled = alpha * float(len(self.anchors) - 1)
            return tf.maximum(0.0, 1.0 - tf.abs(scaled - tf.range(len(self.anchors), dtype=tf.float32)))
        lowest = tf.reduce_min(alpha)
        return tf.concat([alpha - lowest, [float(self.shape.num_points) * lowest]], axis=0)

    def values_at(self, alpha):
        """{id(variable): tensor}: the interpolated statistics at α."""
        w = self.weights(alpha)
        return {
            key: tf.tensordot(w, tf.constant(stack, tf.float32), axes=1) for key, stack in self.statistics.items()
        }
