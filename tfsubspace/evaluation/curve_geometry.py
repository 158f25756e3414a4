"""Geometry of a curve's control points: Gram matrices, arc length, length ratio (paper 003 Table 2).

The length of φ(t) = Σ_i c_i(t)·ω_i is ∫ ‖φ'(t)‖ dt, computed from the Gram
matrix of the control points by Gauss–Legendre quadrature on a fine grid
(float64); the length ratio divides it by the segment length ‖ω_{m−1} − ω_0‖.

Example:

>>> import keras, tfsubspace as ts
>>> from tfsubspace.evaluation.curve_geometry import length_ratio
>>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, use_bias=False)])
>>> round(length_ratio(ts.convert(net, ts.Line())), 6)
1.0
"""

import math

import numpy as np
import tensorflow as tf

from tfsubspace import checks
from tfsubspace.shapes import Bezier, Line, PolyChain

# Quadrature for arc length: Gauss–Legendre nodes on each piece of a fine grid.
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)
_LENGTH_PIECES = 256


def check_curve_model(model, name="model"):
    from tfsubspace.model import SubspaceModel

    if not isinstance(model, SubspaceModel):
        raise ValueError(f"`{name}` must be a ts.SubspaceModel on a curve, got {type(model).__name__}.")
    if model.subspace_shape.alpha_rank != 0:
        raise ValueError(
            f"`{name}` must be on a curve (ts.Line, ts.Bezier, ts.PolyChain), got {model.subspace_shape!r}."
        )


def resolve_weight_decay(model, weight_decay):
    """An explicit weight decay, or (None) the compiled optimizer's, or 0."""
    if weight_decay is None:
        optimizer = getattr(model, "optimizer", None)
        value = getattr(optimizer, "weight_decay", None) if optimizer is not None else None
        return float(value) if value else 0.0
    return checks.number(weight_decay, "`weight_decay`", minimum=0, allow_none=True)


def l2_term(gram, coefficients, weight_decay):
    """(weight_decay / 2)·‖θ‖² at coefficients c, from the Gram matrix of the control points."""
    c = np.asarray(coefficients, np.float64)
    return 0.5 * weight_decay * float(c @ gram @ c)


def control_point_grams(model):
    """(G, D): G_ij = ⟨ω_i, ω_j⟩ and D_ij = ⟨ω_i − ω_0, ω_j − ω_0⟩ over all subspace weights.

    Float64. D avoids the cancellation of forming differences from G when the
    control points are close compared with their norms.
    """
    m = model.subspace_shape.num_points
    gram, difference_gram = np.zeros((m, m)), np.zeros((m, m))
    for layer in model.subspace_layers:
        for copies in layer.subspace_weights.values():
            points = np.stack([np.asarray(copy.numpy(), np.float64).ravel() for copy in copies])
            differences = points - points[0]
            gram += points @ points.T
            difference_gram += differences @ differences.T
    return gram, difference_gram


def _coefficient_derivatives(shape, t):
    """dc/dt [len(t), m] in float64 (φ'(t) = Σ_i c_i'(t)·ω_i)."""
    t = np.asarray(t, np.float64).reshape(-1)
    m = shape.num_points
    derivatives = np.zeros((t.size, m))
    if isinstance(shape, Bezier):
        # d/dt of a degree-n Bernstein sum: n·Σ_i (ω_{i+1} − ω_i)·B_{i,n−1}(t).
        degree = shape.num_bends + 1
        powers = np.arange(degree)
        binomials = np.array([math.comb(degree - 1, i) for i in powers], np.float64)
        basis = binomials * t[:, None] ** powers * (1.0 - t[:, None]) ** (degree - 1 - powers)
        derivatives[:, 1:] += degree * basis
        derivatives[:, :-1] -= degree * basis
    elif isinstance(shape, (PolyChain, Line)):
        pieces = m - 1
        index = np.clip(np.floor(t * pieces).astype(int), 0, pieces - 1)
        rows = np.arange(t.size)
        derivatives[rows, index] = -pieces
        derivatives[rows, index + 1] = pieces
    else:  # any other curve shape: central differences of its coefficients
        step = 1e-3
        low, high = np.clip(t - step, 0.0, 1.0), np.clip(t + step, 0.0, 1.0)
        c_low = np.asarray(shape.coefficients(tf.constant(low, tf.float32)), np.float64)
        c_high = np.asarray(shape.coefficients(tf.constant(high, tf.float32)), np.float64)
        derivatives = (c_high - c_low) / (high - low)[:, None]
    return derivatives


def _knots(shape):
    """Points of [0, 1] where φ' may jump (the bends of a polygonal chain)."""
    if isinstance(shape, (PolyChain, Line)):
        return np.linspace(0.0, 1.0, shape.num_points)
    return np.array([0.0, 1.0])


def interval_lengths(shape, difference_gram, grid):
    """Arc length of φ between consecutive grid points: [len(grid) − 1], float64."""
    grid = np.asarray(grid, np.float64)
    fine = np.concatenate([grid, _knots(shape), np.linspace(grid[0], grid[-1], _LENGTH_PIECES + 1)])
    fine = np.unique(fine[(fine >= grid[0]) & (fine <= grid[-1])])
    low, high = fine[:-1], fine[1:]
    half = (high - low) / 2.0
    nodes = ((low + high) / 2.0)[:, None] + half[:, None] * _GAUSS_NODES
    derivatives = _coefficient_derivatives(shape, nodes)
    squared = np.einsum("ki,ij,kj->k", derivatives, difference_gram, derivatives)
    speeds = np.sqrt(np.maximum(squared, 0.0)).reshape(nodes.shape)
    piece_lengths = half * (speeds @ _GAUSS_WEIGHTS)
    owner = np.searchsorted(grid, (low + high) / 2.0, side="right") - 1
    return np.bincount(owner, weights=piece_lengths, minlength=grid.size - 1)[: grid.size - 1]


def curve_length(model):
    """Arc length ∫₀¹ ‖φ'(t)‖ dt of a curve model, from its control points (float64).

    Example:

    >>> import keras, tfsubspace as ts
    >>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, use_bias=False, name="d")])
    >>> model = ts.convert(net, ts.PolyChain(num_bends=1), init="point")
    >>> copies = model.subspace_layers[0].subspace_weights["kernel"]
    >>> for copy, value in zip(copies, [[[0.0, 0.0]], [[3.0, 4.0]], [[6.0, 0.0]]]):
    ...     _ = copy.assign(value)
    >>> round(curve_length(model), 6)  # two legs of length 5
    10.0
    """
    check_curve_model(model)
    _, difference_gram = control_point_grams(model)
    return float(interval_lengths(model.subspace_shape, difference_gram, [0.0, 1.0]).sum())


def length_ratio(model):
    """Curve length over the segment length ‖ω_{m−1} − ω_0‖ (1 for a segment; paper 003 Table 2).

    Example:

    >>> import keras, tfsubspace as ts
    >>> net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, use_bias=False, name="d")])
    >>> model = ts.convert(net, ts.PolyChain(num_bends=1), init="point")
    >>> copies = model.subspace_layers[0].subspace_weights["kernel"]
    >>> for copy, value in zip(copies, [[[0.0, 0.0]], [[3.0, 4.0]], [[6.0, 0.0]]]):
    ...     _ = copy.assign(value)
    >>> round(length_ratio(model), 6)  # 10 / 6
    1.666667
    """
    check_curve_model(model)
    _, difference_gram = control_point_grams(model)
    segment = math.sqrt(max(difference_gram[-1, -1], 0.0))
    if segment == 0.0:
        raise ValueError("`model` has equal endpoints, so the length ratio is undefined.")
    return curve_length(model) / segment
