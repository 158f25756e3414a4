"""Evaluating a curve between two trained networks (paper 003 §4, A.4, Table 2).

`curve(model, train_data, test_data, points=61)` evaluates a curve-shaped
`ts.SubspaceModel` (e.g. from `ts.connectivity.connect`) on an even grid of t
in [0, 1], recomputing batch-norm statistics at every t (paper 003 A.2). Per t:

- train loss: cross-entropy plus the L2 term (weight_decay / 2)·‖θ(t)‖², the
  "ℓ2-regularized cross-entropy" of paper 003 (Figs. 1–2, Table 2);
- train error, test NLL and test error.

Each metric is summarised as paper 003 A.4 does: Min and Max over the grid,
"Int", the mean over the uniform distribution on the curve
∫ metric dφ / ∫ dφ (the trapezoidal rule in arc length: each grid interval
weighted by its length), and "Mean", ∫ metric(φ(t)) dt (the trapezoidal rule
in t). For a segment, or any constant-speed curve, Int equals Mean. The length
ratio is the curve's arc length ∫ ‖φ'(t)‖ dt, computed from the control points
by Gauss–Legendre quadrature, over the segment length ‖w_b − w_a‖.

The same is computed for the plain segment θ(t) = (1 − t)·w_a + t·w_b between
the curve's endpoints, without training anything: its points are written into
the same model as coefficients (1 − t, 0, …, 0, t) on the control points.

Example:

>>> import keras, numpy as np, tfsubspace as ts
>>> from tfsubspace import curve_evaluation
>>> from tfsubspace.connectivity import connect
>>> def network():
...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
>>> model = connect(network(), network(), ts.Bezier(1), seed=0)
>>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
>>> result = curve_evaluation.curve(model, (x, y), (x, y), points=3, weight_decay=0.0)
>>> [row["t"] for row in result.rows]
[0.0, 0.5, 1.0]
>>> round(result.summary["curve"]["length_ratio"], 6)  # bends still on the segment
1.0
"""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfsubspace.batchnorm import batchnorm_layers, preserved_point, recompute_batchnorm
from tfsubspace.shapes import Bezier, Line, PolyChain

#: The per-t metrics, in the order of paper 003 Table 2 (plus the train NLL).
METRICS = ("train_loss", "train_nll", "train_error", "test_nll", "test_error")

# Floor on probabilities before the log when the model outputs probabilities.
_PROB_FLOOR = 1e-12
# Quadrature for arc length: Gauss–Legendre nodes on each piece of a fine grid.
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)
_LENGTH_PIECES = 256


# -- inputs -------------------------------------------------------------------


def _as_dataset(data, batch_size, name):
    """A tf.data.Dataset of (x, y, ...) batches from a dataset or an (x, y) tuple."""
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return tf.data.Dataset.from_tensor_slices(tuple(data[:2])).batch(batch_size)
    raise ValueError(
        f"`{name}` must be a tf.data.Dataset of (x, y) batches or an (x, y) tuple of arrays, "
        f"got {type(data).__name__}."
    )


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _resolve_weight_decay(model, weight_decay):
    """An explicit weight decay, or (None) the compiled optimizer's, or 0."""
    if weight_decay is None:
        optimizer = getattr(model, "optimizer", None)
        value = getattr(optimizer, "weight_decay", None) if optimizer is not None else None
        return float(value) if value else 0.0
    if (
        isinstance(weight_decay, bool)
        or not isinstance(weight_decay, numbers.Real)
        or not np.isfinite(weight_decay)
        or weight_decay < 0
    ):
        raise ValueError(f"`weight_decay` must be None or a finite number >= 0, got {weight_decay!r}.")
    return float(weight_decay)


def _check_curve_model(model, name="model"):
    from tfsubspace.model import SubspaceModel

    if not isinstance(model, SubspaceModel):
        raise ValueError(f"`{name}` must be a ts.SubspaceModel on a curve, got {type(model).__name__}.")
    if model.subspace_shape.alpha_rank != 0:
        raise ValueError(
            f"`{name}` must be on a curve (ts.Line, ts.Bezier, ts.PolyChain), got {model.subspace_shape!r}."
        )


# -- geometry of the control points -------------------------------------------


def _control_point_grams(model):
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


def _interval_lengths(shape, difference_gram, grid):
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
    _check_curve_model(model)
    _, difference_gram = _control_point_grams(model)
    return float(_interval_lengths(model.subspace_shape, difference_gram, [0.0, 1.0]).sum())


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
    _check_curve_model(model)
    _, difference_gram = _control_point_grams(model)
    segment = math.sqrt(max(difference_gram[-1, -1], 0.0))
    if segment == 0.0:
        raise ValueError("`model` has equal endpoints, so the length ratio is undefined.")
    return curve_length(model) / segment


def summarize(t, values, lengths=None):
    """{"min", "int", "mean", "max"} of a metric on a grid of t (paper 003 A.4).

    "mean" is the trapezoidal rule for ∫ metric dt over the grid (divided by
    its extent); "int" is the trapezoidal rule in arc length, each interval
    weighted by `lengths` (its arc length; None: equal to "mean").

    Example:

    >>> summarize([0.0, 0.5, 1.0], [1.0, 3.0, 1.0])
    {'min': 1.0, 'int': 2.0, 'mean': 2.0, 'max': 3.0}
    >>> summarize([0.0, 0.5, 1.0], [1.0, 3.0, 1.0], lengths=[3.0, 1.0])["int"]
    2.0
    >>> summarize([0.0, 0.5, 1.0], [1.0, 3.0, 5.0], lengths=[3.0, 1.0])["int"]
    2.5
    """
    t, values = np.asarray(t, np.float64), np.asarray(values, np.float64)
    if t.ndim != 1 or t.shape != values.shape or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError(
            f"`t` and `values` must be 1-D of equal length >= 2 with t increasing, got shapes {t.shape}, {values.shape}."
        )
    trapezoids = (values[:-1] + values[1:]) / 2.0
    mean = float(np.sum(trapezoids * np.diff(t)) / (t[-1] - t[0]))
    integral = mean
    if lengths is not None:
        lengths = np.asarray(lengths, np.float64)
        if lengths.shape != (t.size - 1,) or np.any(lengths < 0):
            raise ValueError(f"`lengths` must hold {t.size - 1} non-negative interval lengths, got {lengths.shape}.")
        if lengths.sum() > 0:
            integral = float(np.sum(trapezoids * lengths) / lengths.sum())
    return {"min": float(values.min()), "int": integral, "mean": mean, "max": float(values.max())}


# -- scoring arbitrary points of a subspace model -------------------------------


def _labels(y, logits):
    y = np.asarray(y)
    if y.ndim == logits.ndim and y.shape[-1] == logits.shape[-1] and y.shape[-1] > 1:
        return np.argmax(y, axis=-1)  # one-hot labels
    return y.reshape(-1).astype(np.int64)


class _PointScorer:
    """Scores a SubspaceModel at any coefficient vector c ∈ R^m (θ = Σ c_i ω_i).

    c need not be a point of the model's domain (a plane through three points
    leaves it): it is written into `model.alpha_coefficients`, which the
    batch-norm recompute and inference both read. Callers restore the model
    with `batchnorm.preserved_point`.
    """

    def __init__(self, model, batchnorm_data, batchnorm_steps, from_logits, weight_decay):
        self.model = model
        self.batchnorm_data = batchnorm_data
        self.batchnorm_steps = batchnorm_steps
        self.from_logits = from_logits
        self.weight_decay = weight_decay
        self.gram, self.difference_gram = _control_point_grams(model)
        self.batchnorm = batchnorm_layers(model)
        network = model.network
        self._forward = tf.function(lambda x: network(x, training=False), reduce_retracing=True)

    def set_point(self, coefficients):
        self.model.alpha_coefficients.assign(np.asarray(coefficients, np.float32))
        self.model.write_coefficients(self.model.alpha_coefficients)
        if self.batchnorm:
            recompute_batchnorm(self.model, self.batchnorm_data, steps=self.batchnorm_steps)

    def l2(self, coefficients):
        """(weight_decay / 2)·‖θ‖² at c, from the Gram matrix of the control points."""
        c = np.asarray(coefficients, np.float64)
        return 0.5 * self.weight_decay * float(c @ self.gram @ c)

    def score(self, data):
        """(mean NLL, error rate) of the model at the current point on `data`."""
        total, wrong, count = 0.0, 0, 0
        for batch in data:
            outputs = np.asarray(self._forward(batch[0]), np.float64)
            labels = _labels(batch[1], outputs)
            if self.from_logits:
                shifted = outputs - outputs.max(axis=-1, keepdims=True)
                log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
            else:
                log_probabilities = np.log(np.clip(outputs, _PROB_FLOOR, 1.0))
            total -= float(log_probabilities[np.arange(labels.size), labels].sum())
            wrong += int(np.sum(np.argmax(outputs, axis=-1) != labels))
            count += labels.size
        if count == 0:
            raise ValueError("the evaluation data yielded no examples.")
        return total / count, wrong / count


# -- the curve evaluation -------------------------------------------------------


class CurveEvaluation:
    """The result of `curve`: per-t rows and paper 003 Table 2 summaries.

    Attributes:
        rows: one dict per t on the curve: "t" and every name in `METRICS`
            (errors are fractions in [0, 1]).
        segment_rows: the same for the segment between the endpoints (empty
            when `curve(..., segment=False)`).
        summary: {"curve": ..., "segment": ..., "single": ...}. "curve" and
            "segment" hold "length_ratio" and, per metric, {"min", "int",
            "mean", "max"}; "single" holds, per metric, {"min", "max"} over
            the two endpoints (t = 0 and t = 1, batch norm recomputed there
            like at every t).
        length, segment_length: arc lengths in weight space.
        name: the curve's label in `to_markdown` (e.g. "Bezier").
        weight_decay: the coefficient of the L2 term in "train_loss".
    """

    def __init__(self, rows, segment_rows, summary, length, segment_length, name, weight_decay):
        self.rows = rows
        self.segment_rows = segment_rows
        self.summary = summary
        self.length = length
        self.segment_length = segment_length
        self.name = name
        self.weight_decay = weight_decay

    def to_dict(self):
        """Everything as JSON-ready Python values."""
        return {
            "name": self.name,
            "weight_decay": self.weight_decay,
            "length": self.length,
            "segment_length": self.segment_length,
            "summary": self.summary,
            "rows": self.rows,
            "segment_rows": self.segment_rows,
        }

    def to_markdown(self):
        """The summary as a paper 003 Table 2 style table (errors in %)."""
        columns = [
            ("train_loss", ("min", "int", "mean", "max"), 1.0, "Train loss"),
            ("train_error", ("min", "int", "max"), 100.0, "Train error (%)"),
            ("test_nll", ("min", "int", "max"), 1.0, "Test NLL"),
            ("test_error", ("min", "int", "max"), 100.0, "Test error (%)"),
        ]
        header = ["Curve", "Length ratio"]
        for _, stats, _, title in columns:
            header += [f"{title} {stat.capitalize()}" for stat in stats]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        entries = [("Single", self.summary["single"])]
        if "segment" in self.summary:
            entries.append(("Segment", self.summary["segment"]))
        entries.append((self.name, self.summary["curve"]))
        for label, summary in entries:
            ratio = summary.get("length_ratio")
            cells = [label, "—" if ratio is None else f"{ratio:.2f}"]
            for metric, stats, scale, _ in columns:
                for stat in stats:
                    value = summary[metric].get(stat)
                    cells.append("—" if value is None else _format(value * scale, scale))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __repr__(self):
        return f"CurveEvaluation(name={self.name!r}, points={len(self.rows)}, length_ratio={self.summary['curve']['length_ratio']:.3f})"


def _format(value, scale):
    return f"{value:.2f}" if scale != 1.0 else f"{value:.4f}"


def _segment_coefficients(t, m):
    coefficients = np.zeros(m)
    coefficients[0], coefficients[-1] = 1.0 - t, t
    return coefficients


def _summaries(rows, grid, lengths, ratio):
    summary = {"length_ratio": ratio}
    for metric in METRICS:
        summary[metric] = summarize(grid, [row[metric] for row in rows], lengths)
    return summary


def curve(
    model,
    train_data,
    test_data,
    points=61,
    *,
    batchnorm_steps=None,
    weight_decay=None,
    segment=True,
    batch_size=128,
    from_logits=True,
    name=None,
):
    """Evaluates a curve model per t, with batch norm recomputed at every t.

    Args:
        model: a `ts.SubspaceModel` on a curve (e.g. from `ts.connectivity.connect`)
            whose network outputs class logits (or probabilities, see
            `from_logits`).
        train_data: training data: a tf.data.Dataset of (x, y) batches or an
            (x, y) tuple of arrays. Used for the train metrics and for the
            batch-norm recompute (pass it without augmentation).
        test_data: test data, in the same forms.
        points: size of the even grid of t on [0, 1] (paper 003: 61 or 121).
        batchnorm_steps: batches of `train_data` per recompute (None: all).
        weight_decay: coefficient of the L2 term (weight_decay / 2)·‖θ(t)‖² in
            the train loss over all subspace weights. None takes the compiled
            optimizer's `weight_decay` (0 if none).
        segment: also evaluate the segment between the same endpoints.
        batch_size: batch size for array inputs.
        from_logits: whether the network outputs logits.
        name: the curve's label in the table; default the shape's class name.

    Returns:
        A `CurveEvaluation`. The model is left at its original inference α
        with its original batch-norm statistics.

    Example:

    >>> import keras, numpy as np, tfsubspace as ts
    >>> from tfsubspace import curve_evaluation
    >>> from tfsubspace.connectivity import connect
    >>> def network():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    >>> model = connect(network(), network(), ts.PolyChain(1), seed=0)
    >>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> result = curve_evaluation.curve(model, (x, y), (x, y), points=5, weight_decay=1e-4)
    >>> sorted(result.summary["curve"]["test_error"])
    ['int', 'max', 'mean', 'min']
    >>> result.to_markdown().splitlines()[2].split(" | ")[0]
    '| Single'
    """
    _check_curve_model(model)
    points = _check_int(points, "points", 2)
    if batchnorm_steps is not None:
        _check_int(batchnorm_steps, "batchnorm_steps", 1)
    if not isinstance(segment, bool):
        raise ValueError(f"`segment` must be True or False, got {segment!r}.")
    if not isinstance(from_logits, bool):
        raise ValueError(f"`from_logits` must be True or False, got {from_logits!r}.")
    batch_size = _check_int(batch_size, "batch_size", 1)
    weight_decay = _resolve_weight_decay(model, weight_decay)
    train = _as_dataset(train_data, batch_size, "train_data")
    test = _as_dataset(test_data, batch_size, "test_data")
    shape = model.subspace_shape
    grid = np.linspace(0.0, 1.0, points)
    scorer = _PointScorer(model, train, batchnorm_steps, from_logits, weight_decay)
    cache = {}

    def row_at(t, coefficients):
        key = tuple(np.round(np.asarray(coefficients, np.float64), 12).tolist())
        if key not in cache:
            scorer.set_point(coefficients)
            train_nll, train_error = scorer.score(train)
            test_nll, test_error = scorer.score(test)
            cache[key] = {
                "train_loss": train_nll + scorer.l2(coefficients),
                "train_nll": train_nll,
                "train_error": train_error,
                "test_nll": test_nll,
                "test_error": test_error,
            }
        return {"t": round(float(t), 10), **cache[key]}

    with preserved_point(model):
        rows = [row_at(t, np.asarray(shape.coefficients(float(t)), np.float64)) for t in grid]
        segment_rows = [row_at(t, _segment_coefficients(t, shape.num_points)) for t in grid] if segment else []

    segment_length = math.sqrt(max(scorer.difference_gram[-1, -1], 0.0))
    lengths = _interval_lengths(shape, scorer.difference_gram, grid)
    length = float(lengths.sum())
    summary = {"curve": _summaries(rows, grid, lengths, length / segment_length if segment_length else float("nan"))}
    if segment:
        summary["segment"] = _summaries(segment_rows, grid, None, 1.0)
    summary["single"] = {
        metric: {"min": min(rows[0][metric], rows[-1][metric]), "max": max(rows[0][metric], rows[-1][metric])}
        for metric in METRICS
    }
    return CurveEvaluation(
        rows, segment_rows, summary, length, segment_length, name or type(shape).__name__, weight_decay
    )
