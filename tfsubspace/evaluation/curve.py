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
>>> from tfsubspace.connectivity import connect
>>> def network():
...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
>>> model = connect(network(), network(), ts.Bezier(1), seed=0)
>>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
>>> result = ts.evaluate.curve(model, (x, y), (x, y), points=3, weight_decay=0.0)
>>> [row["t"] for row in result.rows]
[0.0, 0.5, 1.0]
>>> round(result.summary["curve"]["length_ratio"], 6)  # bends still on the segment
1.0
"""

import math

import numpy as np

from tfsubspace.evaluation import heads
from tfsubspace.evaluation.batchnorm import preserved_point
from tfsubspace.evaluation.curve_geometry import (
    check_curve_model,
    control_point_grams,
    interval_lengths,
    l2_term,
    resolve_weight_decay,
)
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS, place, predict
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.reader import batches, check_int
from tfsubspace.evaluation.results import Table
from tfsubspace.evaluation.scores import scores

#: The per-t metrics, in the order of paper 003 Table 2 (plus the train NLL).
METRICS = ("train_loss", "train_nll", "train_error", "test_nll", "test_error")


def nll_and_error(model, data, logits, name):
    """(NLL, error rate) of `model` at its current point on `data`."""
    probabilities, labels = predict(model, data, from_logits=logits, name=name)
    scored = scores(probabilities, labels)
    return scored["nll"], 1.0 - scored["accuracy"]


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


# -- the curve evaluation -------------------------------------------------------


class CurveEvaluation(Table):
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
        super().__init__(rows, summary=summary)
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

    def to_markdown(self):  # noqa: D401 -- the Table 2 layout, not the row table
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
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    weight_decay=None,
    segment=True,
    batch_size=128,
    from_logits=None,
    name=None,
    verbose="auto",
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
        batchnorm_steps: batches of `train_data` per recompute (default 20,
            as everywhere; None: all).
        weight_decay: coefficient of the L2 term (weight_decay / 2)·‖θ(t)‖² in
            the train loss over all subspace weights. None takes the compiled
            optimizer's `weight_decay` (0 if none).
        segment: also evaluate the segment between the same endpoints.
        batch_size: batch size for array inputs.
        from_logits: None reads it from the model (`evaluation.heads`);
            True/False overrides.
        name: the curve's label in the table; default the shape's class name.
        verbose: "auto" (a progress bar in a terminal), 0 or 1.

    Returns:
        A `CurveEvaluation`. The model is left at its original inference α
        with its original batch-norm statistics.

    Example:

    >>> import keras, numpy as np, tfsubspace as ts
    >>> from tfsubspace.connectivity import connect
    >>> def network():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    >>> model = connect(network(), network(), ts.PolyChain(1), seed=0)
    >>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> result = ts.evaluate.curve(model, (x, y), (x, y), points=5, weight_decay=1e-4)
    >>> sorted(result.summary["curve"]["test_error"])
    ['int', 'max', 'mean', 'min']
    >>> result.to_markdown().splitlines()[2].split(" | ")[0]
    '| Single'
    """
    check_curve_model(model)
    points = check_int(points, "points", 2)
    batchnorm_steps = check_int(batchnorm_steps, "batchnorm_steps", 1, allow_none=True)
    if not isinstance(segment, bool):
        raise ValueError(f"`segment` must be True or False, got {segment!r}.")
    logits = heads.outputs_logits(model, from_logits)
    weight_decay = resolve_weight_decay(model, weight_decay)
    train = batches(train_data, "train_data", batch_size)
    test = batches(test_data, "test_data", batch_size)
    shape = model.subspace_shape
    grid = np.linspace(0.0, 1.0, points)
    gram, difference_gram = control_point_grams(model)
    cache = {}

    def row_at(t, coefficients):
        key = tuple(np.round(np.asarray(coefficients, np.float64), 12).tolist())
        if key not in cache:
            place(model, coefficients=coefficients, batchnorm_data=train, batchnorm_steps=batchnorm_steps)
            train_nll, train_error = nll_and_error(model, train, logits, "train_data")
            test_nll, test_error = nll_and_error(model, test, logits, "test_data")
            cache[key] = {
                "train_loss": train_nll + l2_term(gram, coefficients, weight_decay),
                "train_nll": train_nll,
                "train_error": train_error,
                "test_nll": test_nll,
                "test_error": test_error,
            }
        progress.advance()
        return {"t": round(float(t), 10), **cache[key]}

    total = points * (2 if segment else 1)
    with preserved_point(model), Progress(total, verbose, title=f"curve at {points} points") as progress:
        rows = [row_at(t, np.asarray(shape.coefficients(float(t)), np.float64)) for t in grid]
        segment_rows = [row_at(t, _segment_coefficients(t, shape.num_points)) for t in grid] if segment else []

    segment_length = math.sqrt(max(difference_gram[-1, -1], 0.0))
    lengths = interval_lengths(shape, difference_gram, grid)
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
