"""Batch-norm statistics for any α, from exact recomputes at a few anchors.

Batch norm's moving statistics fit one point of the subspace
(`ts.recompute_batchnorm`); a server that takes α per request cannot
recompute them. `BatchNormGrid` recomputes them exactly at anchor points and
interpolates between them with weights w(α) ≥ 0 that sum to 1, computed in
the graph:

- curves: 11 evenly spaced α (0, 0.1, ..., 1) and linear interpolation
  between the two neighbours (hat functions, w_k = max(0, 1 − |10α − k|));
- simplexes: the regular grid of resolution r, the C(r + m − 1, m − 1)
  points k/r (k integers ≥ 0 summing to r; r = 1: the vertices), and
  barycentric interpolation in the cell of the Freudenthal triangulation
  that holds α (`freudenthal_weights`: sort the fractional parts of the
  cumulative coordinates). r defaults to the finest ≤ 8 with at most 64
  anchors (`default_resolution`: 8 for m ≤ 3, 5 for m = 4, 3 for m = 5-6,
  2 for m = 7-10, 1 beyond), since each anchor is one full batch-norm
  recompute at export; `batchnorm_resolution` overrides it.

Both are exact at the anchors and continuous in between, with weights ≥ 0
summing to 1 (at most m non-zero). The mean and the variance are
interpolated linearly (a mix of variances stays positive).

Measured gap to an exact recompute at off-grid points (tests/test_serving.py:
the small CNN, conv + BN + dense on 8×8 inputs, 96 examples whose brightness
tells one of 4 classes, 5 epochs, batch norm from the same 96 examples):

- Line, 11 anchors, α = 0.05, 0.33, 0.77, 0.95: largest probability
  difference 0.0010–0.0027 (mean ≤ 0.0008), top-1 agreement 100 %, accuracy
  unchanged at every α. Close enough to serve.
- Simplex(3), r = 8 (45 anchors; the recompute took 1.8 s here, 40 ms an
  anchor): α = [0.6, 0.3, 0.1]: largest difference 0.0029 (mean 0.0008),
  agreement 100 %; α = [0.1, 0.2, 0.7]: 0.0044 (mean 0.0012), agreement
  100 %, accuracy 0.917 as exact; α = [0.37, 0.21, 0.42]: 0.0113 (mean
  0.0033), agreement 95.8 % (accuracy 0.54 vs 0.50 exact: points near a
  decision boundary). The vertices alone (r = 1) gave 0.090, 0.110 and 0.120
  there (agreement 95 %, 64 %, 25 %); the former vertices + centre gave
  0.065 and 0.084 at the first two. By r on the same model, largest gap at
  [0.6, 0.3, 0.1] / [0.1, 0.2, 0.7]: r = 2: 0.036 / 0.052; 3: 0.022 / 0.015;
  4: 0.017 / 0.015; 6: 0.0079 / 0.0068; 8: 0.0029 / 0.0044, roughly the
  O(h²) of linear interpolation. At r = 8 a simplex(3) serves about as
  closely as a line; for m ≥ 7 the capped grid is coarse again: serve such
  points from `serve_ensemble` or `serving_default` (exact statistics at
  their points), export at the point (`model.export(path, alpha=...,
  batchnorm_data=...)`), or raise `batchnorm_resolution`.

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
>>> simplex = BatchNormGrid(ts.Simplex(3), default_anchors(ts.Simplex(3), resolution=2), {})
>>> simplex.anchors[:2]
[[0.0, 0.0, 1.0], [0.0, 0.5, 0.5]]
>>> [round(float(w), 3) for w in simplex.weights([0.1, 0.3, 0.6])]
[0.2, 0.6, 0.0, 0.2, 0.0, 0.0]
"""

import itertools
import math

import numpy as np
import tensorflow as tf

from tfsubspace import checks
from tfsubspace.evaluation.batchnorm import batchnorm_layers, preserved_point, recompute_batchnorm

#: Anchors of a curve: α = 0, 0.1, ..., 1.
CURVE_ANCHORS = 11
#: A simplex's default resolution r is the largest with at most this many anchors (and at most MAX_RESOLUTION).
MAX_SIMPLEX_ANCHORS = 64
MAX_RESOLUTION = 8


def num_simplex_anchors(num_vertices, resolution):
    """C(r + m − 1, m − 1): the points k/r of the m-vertex simplex (k integers ≥ 0 summing to r).

    >>> num_simplex_anchors(3, 8), num_simplex_anchors(6, 3)
    (45, 56)
    """
    return math.comb(resolution + num_vertices - 1, num_vertices - 1)


def default_resolution(num_vertices):
    """The finest r ≤ MAX_RESOLUTION with at most MAX_SIMPLEX_ANCHORS anchors (1: the vertices only).

    >>> [default_resolution(m) for m in (2, 3, 4, 6, 10, 12)]
    [8, 8, 5, 3, 2, 1]
    """
    resolution = 1
    while resolution < MAX_RESOLUTION and num_simplex_anchors(num_vertices, resolution + 1) <= MAX_SIMPLEX_ANCHORS:
        resolution += 1
    return resolution


def simplex_grid(num_vertices, resolution):
    """[C(r+m−1, m−1), m] integer counts k (sum r), lexicographic; the anchors are k / r.

    >>> simplex_grid(3, 2).tolist()
    [[0, 0, 2], [0, 1, 1], [0, 2, 0], [1, 0, 1], [1, 1, 0], [2, 0, 0]]
    """
    counts = [k for k in itertools.product(range(resolution + 1), repeat=num_vertices - 1) if sum(k) <= resolution]
    return np.array([list(k) + [resolution - sum(k)] for k in counts], dtype=np.int64)


def default_anchors(shape, num_anchors=CURVE_ANCHORS, resolution=None):
    """Anchor points: evenly spaced α for a curve; the grid k/r of a simplex (r: `resolution`, None: adaptive).

    >>> from tfsubspace.shapes import Line, Simplex
    >>> default_anchors(Line(), num_anchors=3), len(default_anchors(Simplex(4)))
    ([0.0, 0.5, 1.0], 56)
    """
    if shape.alpha_rank == 0:
        num_anchors = checks.integer(num_anchors, "`batchnorm_grid`", minimum=2)
        return np.linspace(0.0, 1.0, num_anchors).tolist()
    if resolution is None:
        resolution = default_resolution(shape.num_points)
    resolution = checks.integer(resolution, "`batchnorm_resolution`", minimum=1)
    return (simplex_grid(shape.num_points, resolution) / resolution).tolist()


def freudenthal_weights(alpha, anchors, resolution):
    """Barycentric weights [num_anchors] of α in the Freudenthal sub-simplex that holds it (tf ops).

    In cumulative coordinates z_j = r·(α_1 + ... + α_j), j < m, the grid
    points are the integer z with 0 ≤ z_1 ≤ ... ≤ z_{m−1} ≤ r, and the
    Freudenthal triangulation is Kuhn's: with c = ⌊z⌋ and the fractional parts
    f sorted in decreasing order (σ), α lies in the simplex with vertices
    c, c + e_σ1, c + e_σ1 + e_σ2, ..., with weights 1 − f_σ1, f_σ1 − f_σ2,
    ..., f_σ(m−1): ≥ 0, summing to 1, exact at grid points, continuous.

    >>> from tfsubspace.shapes import Simplex
    >>> anchors = default_anchors(Simplex(3), resolution=2)
    >>> [round(float(w), 3) for w in freudenthal_weights([0.5, 0.5, 0.0], anchors, 2)]
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """
    anchors = np.asarray(anchors, np.float64)
    m = anchors.shape[1]
    anchor_z = tf.constant(np.rint(np.cumsum(anchors, axis=1)[:, :-1] * resolution), tf.float32)  # [A, m−1]
    alpha = tf.maximum(tf.cast(alpha, tf.float32), 0.0)  # rounding could make a cumulative sum decrease
    z = tf.clip_by_value(tf.cumsum(alpha)[:-1] * float(resolution), 0.0, float(resolution))
    corner = tf.minimum(tf.floor(z), float(resolution - 1))  # z = r lies in the last cell, with f = 1
    fraction = z - corner
    order = tf.argsort(fraction, direction="DESCENDING", stable=True)
    sorted_fraction = tf.gather(fraction, order)
    lambdas = tf.concat([1.0 - sorted_fraction[:1], sorted_fraction[:-1] - sorted_fraction[1:], sorted_fraction[-1:]],
                        axis=0)  # [m]
    # Vertex k adds e_σ1 + ... + e_σk to the corner.
    steps = tf.cumsum(tf.one_hot(order, m - 1, dtype=tf.float32), axis=0)  # [m−1, m−1], row k: vertex k+1
    vertices = corner[None, :] + tf.concat([tf.zeros([1, m - 1]), steps], axis=0)  # [m, m−1]
    matches = tf.reduce_all(tf.equal(vertices[:, None, :], anchor_z[None, :, :]), axis=-1)  # [m, A]
    return tf.tensordot(lambdas, tf.cast(matches, tf.float32), axes=1)


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
        if shape.alpha_rank != 0:
            # Anchors of a simplex are a grid k/r: r is 1 / the smallest non-zero coordinate.
            smallest = min(float(c) for a in self.anchors for c in a if c > 0)
            self.resolution = int(round(1.0 / smallest))
            expected = sorted(map(tuple, simplex_grid(shape.num_points, self.resolution) / self.resolution))
            given = sorted(map(tuple, self.anchors))
            if len(given) != len(expected) or not np.allclose(expected, given, atol=1e-9):
                raise ValueError(f"`anchors` of a simplex must be the whole grid k/r, got {anchors!r}.")

    @classmethod
    def recompute(cls, model, data, num_anchors=CURVE_ANCHORS, steps=None, batch_size=128, resolution=None):
        """Exact statistics at the default anchors (`num_anchors` on a curve, resolution r on a simplex)."""
        anchors = default_anchors(model.subspace_shape, num_anchors, resolution)
        return cls(model.subspace_shape, anchors, statistics_at(model, anchors, data, steps, batch_size))

    def weights(self, alpha):
        """w(α) [num_anchors] as a float32 tensor (works on symbolic α)."""
        alpha = tf.cast(alpha, tf.float32)
        if self.shape.alpha_rank == 0:
            scaled = alpha * float(len(self.anchors) - 1)
            return tf.maximum(0.0, 1.0 - tf.abs(scaled - tf.range(len(self.anchors), dtype=tf.float32)))
        return freudenthal_weights(alpha, self.anchors, self.resolution)

    def values_at(self, alpha):
        """{id(variable): tensor}: the interpolated statistics at α."""
        w = self.weights(alpha)
        return {
            key: tf.tensordot(w, tf.constant(stack, tf.float32), axes=1) for key, stack in self.statistics.items()
        }
