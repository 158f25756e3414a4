"""Volumes of simplexes by Cayley–Menger determinants (paper 004 §3.1, A.1).

For k = n + 1 vertices with squared distances D_ij, the Cayley–Menger matrix
is the (k+1)×(k+1) bordered matrix M = [[0, 1ᵀ], [1, D]] and the n-volume is

    V² = (−1)^(n+1) · det(M) / (2^n · (n!)²)              (004 Eq. A.1–A.2)

It needs only distances, so it works for k vertices in any dimension (a weight
space of millions of parameters included). Weight-space distances are large:
det(M) grows like s^n for squared distances of size s and overflows (or
underflows) float64 for a handful of vertices. Every function here therefore
works with the scaled matrix M(D/s), s = the largest squared distance, whose
determinant is O(1), and puts the scale back in log space:

    log V = ½ [log((−1)^(n+1) det M(D/s)) + n log s − n log 2 − 2 log n!]

(`det M(D) = s^n det M(D/s)`: scale the rows of D by s and the ones-column by
1/s). `log=True` returns log V, finite where V itself would overflow.

A degenerate simplex (a vertex in the affine hull of the others) has volume 0
and log-volume −inf, and log V has no finite gradient there. SPRO starts each
new vertex at the mean of the others — exactly such a point — so its volume
reward uses `jitter` > 0: every off-diagonal squared distance is increased by
`jitter`, which is the exact Cayley–Menger volume of the simplex whose vertex i
is also moved by √(jitter/2) along its own new orthogonal axis. That simplex is
never degenerate, its log-volume is finite with a finite gradient, and it
differs from the exact one only when edges are comparable to √jitter.

Example:

>>> import numpy as np, tfsubspace as ts
>>> triangle = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
>>> round(float(ts.volume.simplex_volume(triangle)), 12)
0.5
"""

import math

import numpy as np
import tensorflow as tf

# |det M(D/s)| below this counts as 0: with D/s in [0, 1] the determinant of a
# proper simplex is O(1) (k for a regular one), while rounding in float64
# leaves ~1e-16 on a degenerate one. It is a relative height of ~1e-6.
_DEGENERATE_RTOL = 1e-12
# Floor on the scale s so an all-zero distance matrix never divides by zero.
_TINY = 1e-300


def _check_squared_distances(squared_distances):
    matrix = tf.convert_to_tensor(squared_distances)
    if not matrix.dtype.is_floating:
        matrix = tf.cast(matrix, tf.float64)
    if matrix.shape.rank != 2 or matrix.shape[0] != matrix.shape[1] or (matrix.shape[0] or 0) < 2:
        raise ValueError(
            f"`squared_distances` must be a square [k, k] matrix with k >= 2 vertices, got shape {matrix.shape}."
        )
    return matrix


def _check_jitter(jitter):
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not np.isfinite(jitter) or jitter < 0:
        raise ValueError(f"`jitter` must be a finite number >= 0, got {jitter!r}.")
    return float(jitter)


def cayley_menger_volume(squared_distances, log=False, jitter=0.0):
    """The volume of a simplex from its [k, k] squared-distance matrix.

    Args:
        squared_distances: symmetric [k, k] tensor, D_ij = ‖v_i − v_j‖², k >= 2
            (zero diagonal; only the upper triangle is read).
        log: return log V instead of V (use it for simplexes in weight space,
            whose volume over- or underflows float64).
        jitter: added to every off-diagonal squared distance (see the module
            docstring): 0 gives the exact volume, > 0 a never-degenerate one
            with a finite gradient everywhere.

    Returns:
        A float64 scalar tensor, differentiable with respect to the distances;
        0 (log: −inf) for a degenerate simplex when `jitter` is 0.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> d2 = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 2.0], [1.0, 2.0, 0.0]])
    >>> round(float(ts.volume.cayley_menger_volume(d2)), 12)  # the unit right triangle
    0.5
    """
    matrix = _check_squared_distances(squared_distances)
    jitter = _check_jitter(jitter)
    log_volume = _log_volume(tf.cast(matrix, tf.float64), tf.constant(jitter, tf.float64), exact=jitter == 0.0)
    return log_volume if log else tf.exp(log_volume)


def _log_volume(matrix, jitter, exact):
    """log V from float64 squared distances; `exact` maps degenerate to −inf."""
    k = matrix.shape[0]
    n = k - 1
    off_diagonal = 1.0 - tf.eye(k, dtype=tf.float64)
    # Symmetric with a zero diagonal, read from the upper triangle; negative
    # rounding noise of a Gram-derived matrix is clipped.
    upper = tf.linalg.band_part(tf.maximum(matrix, 0.0), 0, -1)
    distances = (upper + tf.transpose(upper) + jitter) * off_diagonal
    # s is a constant of the identity det M(D) = s^n det M(D/s): the gradient
    # of log V is exact without differentiating through it.
    scale = tf.stop_gradient(tf.maximum(tf.reduce_max(distances), _TINY))
    ones = tf.ones([1, k], tf.float64)
    bordered = tf.concat(
        [
            tf.concat([tf.zeros([1, 1], tf.float64), ones], axis=1),
            tf.concat([tf.transpose(ones), distances / scale], axis=1),
        ],
        axis=0,
    )
    sign, log_abs_det = tf.linalg.slogdet(bordered)
    constant = n * math.log(2.0) + 2.0 * math.lgamma(n + 1)
    log_volume = 0.5 * (log_abs_det + n * tf.math.log(scale) - constant)
    if exact:
        signed = sign * (-1.0) ** (n + 1)
        degenerate = tf.logical_or(signed <= 0.0, log_abs_det < math.log(_DEGENERATE_RTOL))
        log_volume = tf.where(degenerate, tf.constant(-np.inf, tf.float64), log_volume)
    return log_volume


def squared_distances(vertices):
    """The [k, k] squared distances between the rows of `vertices` [k, d].

    Computed from the Gram matrix of the vertices centred on their mean, in
    float64: no cancellation of the (large) common part of weight vectors.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> ts.volume.squared_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).numpy().tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    vertices = tf.convert_to_tensor(vertices)
    if vertices.shape.rank != 2:
        raise ValueError(f"`vertices` must be a [k, d] matrix (one vertex a row), got shape {vertices.shape}.")
    centred = tf.cast(vertices, tf.float64)
    centred = centred - tf.reduce_mean(centred, axis=0, keepdims=True)
    return _distances_from_gram(tf.matmul(centred, centred, transpose_b=True))


def _distances_from_gram(gram):
    norms = tf.linalg.diag_part(gram)
    distances = norms[:, None] + norms[None, :] - 2.0 * gram
    return tf.maximum(distances, 0.0) * (1.0 - tf.eye(tf.shape(gram)[0], dtype=gram.dtype))


def simplex_volume(vertices, log=False, jitter=0.0):
    """The volume of the simplex whose vertices are the rows of `vertices` [k, d].

    `log` and `jitter` as in `cayley_menger_volume`; d may be far above k − 1.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tetrahedron = np.vstack([np.zeros(3), np.eye(3)])   # unit right 3-simplex
    >>> round(float(ts.volume.simplex_volume(tetrahedron)), 12)  # 1/3!
    0.166666666667
    """
    vertices = tf.convert_to_tensor(vertices)
    if vertices.shape.rank != 2 or (vertices.shape[0] or 0) < 2:
        raise ValueError(f"`vertices` must be a [k, d] matrix with k >= 2 vertices, got shape {vertices.shape}.")
    return cayley_menger_volume(squared_distances(vertices), log=log, jitter=jitter)


def _check_points(points, num_points):
    if points is None:
        return tuple(range(num_points))
    try:
        values = tuple(int(p) for p in points)
    except (TypeError, ValueError):
        values = None
    if (
        values is None
        or len(values) < 2
        or len(set(values)) != len(values)
        or any(isinstance(p, bool) or not 0 <= p < num_points for p in points)
    ):
        raise ValueError(
            f"`points` must be None or at least 2 distinct copy indices in [0, {num_points - 1}], got {points!r}."
        )
    return values


def subspace_squared_distances(layers, points=None, include_normalization=True):
    """Squared distances between copies `points` of the subspace layers' weights.

    Vertex i is the concatenation of copy `points[i]` of every subspace weight
    of `layers`. Paper 004 (and its code) measures the whole parameter vector,
    normalization parameters included; `include_normalization=False` leaves
    out batch/layer-norm γ, β (as the cos² penalty of paper 000 §D.3 does).

    Returns:
        (float64 [k, k] squared distances, float64 mean squared norm of the
        k vertices) — the second is the scale `subspace_log_volume` uses for
        its relative jitter.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceDense(2, num_points=3)
    >>> _ = layer(np.ones((1, 2), "float32"))
    >>> ts.volume.subspace_squared_distances([layer])[0].shape
    TensorShape([3, 3])
    """
    layers = list(layers)
    if not layers:
        raise ValueError("`layers` must hold at least one subspace layer.")
    num_points = layers[0].num_points
    if any(layer.num_points != num_points for layer in layers):
        raise ValueError(f"`layers` must all have the same num_points, got {[l.num_points for l in layers]}.")
    points = _check_points(points, num_points)
    k = len(points)
    gram = tf.zeros([k, k], tf.float64)
    square_norm = tf.zeros([], tf.float64)
    for layer in layers:
        for copies in layer.stacked_weights(include_normalization=include_normalization):
            stacked = tf.reshape(tf.cast(tf.gather(copies, list(points)), tf.float64), [k, -1])
            square_norm += tf.reduce_sum(tf.square(stacked)) / k
            centred = stacked - tf.reduce_mean(stacked, axis=0, keepdims=True)
            gram += tf.matmul(centred, centred, transpose_b=True)
    return _distances_from_gram(gram), square_norm


def _as_simplexes(points, num_points):
    """None, one index sequence, or a sequence of them → a list of index tuples."""
    if points is None:
        return [tuple(range(num_points))]
    points = list(points)
    if points and all(isinstance(p, (list, tuple, np.ndarray)) for p in points):
        return [_check_points(simplex, num_points) for simplex in points]
    return [_check_points(points, num_points)]


def subspace_log_volume(layers, points=None, jitter=0.0, include_normalization=True):
    """log V of the simplex (or complex) spanned by copies of the layers' weights.

    Args:
        layers: subspace layers with the same num_points (vertex i is copy i of
            every subspace weight; see `subspace_squared_distances`).
        points: None (all copies: one simplex), a sequence of copy indices (one
            simplex), or a sequence of such sequences: a simplicial complex,
            whose volume is the sum of its simplexes' volumes (004 §3.1),
            returned as log Σ_j V_j.
        jitter: relative here: the absolute jitter added to the squared
            distances is `jitter` × the vertices' mean squared norm, so one
            value suits any network. SPRO trains with a small positive jitter
            (a new vertex starts on the others' affine hull, where the exact
            log-volume is −inf); 0 gives the exact log-volume.
        include_normalization: include batch/layer-norm γ, β (paper 004 does).

    Differentiable with respect to the copies; gradients reach only the
    trainable ones.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceDense(2, num_points=3, init="point")
    >>> _ = layer(np.ones((1, 2), "float32"))
    >>> float(ts.volume.subspace_log_volume([layer]))  # three equal copies
    -inf
    >>> bool(np.isfinite(ts.volume.subspace_log_volume([layer], jitter=1e-8)))
    True
    """
    layers = list(layers)
    if not layers:
        raise ValueError("`layers` must hold at least one subspace layer.")
    jitter = _check_jitter(jitter)
    simplexes = _as_simplexes(points, layers[0].num_points)
    union = sorted(set().union(*simplexes))
    distances, square_norm = subspace_squared_distances(layers, union, include_normalization)
    position = {point: index for index, point in enumerate(union)}
    absolute = tf.stop_gradient(jitter * tf.maximum(square_norm, _TINY))
    logs = []
    for simplex in simplexes:
        indices = [position[point] for point in simplex]
        block = tf.gather(tf.gather(distances, indices, axis=0), indices, axis=1)
        logs.append(_log_volume(block, absolute, exact=jitter == 0.0))
    return logs[0] if len(logs) == 1 else tf.reduce_logsumexp(tf.stack(logs))
