"""Loss and error on the 2-D plane through three weight points (paper 003 Fig. 1, 001 Fig. 2).

`plane(points, model, data)` takes three weight points w1, w2, w3 and builds an
orthonormal basis of their plane by Gram–Schmidt (paper 003 §1, footnote 1):
û = (w2 − w1)/‖w2 − w1‖, v̂ = the normalised part of w3 − w1 orthogonal to û.
A point with coordinates (x, y) is w1 + x·û + y·v̂. On a grid × grid lattice
covering the three points (and the curve, when `model` is one) plus `margin`
of their extent on every side, it evaluates the loss (cross-entropy plus the
L2 term (weight_decay / 2)·‖w‖², as paper 003 plots) and the error on `data`,
with batch-norm statistics recomputed at every grid point, and draws both as
filled contours in a PNG with the three points and the curve's projection.

A point is any of:

- a point α of `model`'s subspace (a number t for a curve, a probability
  vector for a simplex), e.g. 0.0, 0.5, 1.0 of a connected curve;
- a stock `keras.Model` with `model`'s architecture (matched by structure,
  names may differ), e.g. three independently trained networks (paper 003
  Fig. 1, left);
- a flat weight vector, or a list of arrays, in `flat_weights` order, e.g.
  `flat_weights(model, point=1)`, the bend of a curve (paper 003 Fig. 1,
  middle: the plane through both endpoints and the bend).

How grid points are evaluated: a scratch copy of the network is made by
`ts.convert(model.bake(), ts.Simplex(3), init="point")` with its three copies
set to w1, w2, w3; a grid point is the affine combination
(1 − a − b)·w1 + a·w2 + b·w3, written as that model's coefficients. The user's
model is not modified.

Example:

>>> import keras, numpy as np, tfsubspace as ts
>>> def network():
...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
>>> model = ts.connectivity.connect(network(), network(), ts.Bezier(1), seed=0)
>>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
>>> bend = ts.connectivity.flat_weights(model, point=1) + 0.1
>>> result = ts.connectivity.plane((0.0, 1.0, bend), model, (x, y), grid=3)
>>> result.loss.shape
(3, 3)
>>> np.round(result.point_coordinates[0], 6).tolist()
[0.0, 0.0]

Pass the two endpoints first to put them on the horizontal axis as paper 003
Fig. 1 does; `path="plane.png"` also writes the plot.
"""

import numbers
import os

import keras
import numpy as np

from tfsubspace.connectivity.matching import match_layers, weighted_layers
from tfsubspace.convert import convert
from tfsubspace.evaluation import heads
from tfsubspace.evaluation.curve import nll_and_error
from tfsubspace.evaluation.curve_geometry import control_point_grams, l2_term, resolve_weight_decay
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS, place
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.reader import batches, check_int
from tfsubspace.evaluation.results import Table
from tfsubspace.layers import Subspace
from tfsubspace.shapes import Simplex

_NUM_POINTS = 3


# -- weight points as flat vectors ---------------------------------------------


def _is_subspace_model(model):
    from tfsubspace.model import SubspaceModel

    return isinstance(model, SubspaceModel)


def _weight_groups(model):
    """Per weighted layer of the one walk (`weighted_layers`), its trainable weights.

    For a subspace model each entry is the list of copies [ω_0..ω_{m−1}] of a
    subspace weight; for a stock model, a trainable variable. This order is
    the order of `flat_weights`, for both kinds alike.
    """
    if _is_subspace_model(model):
        return [
            copies
            for _, layer in weighted_layers(model.network)
            if isinstance(layer, Subspace)
            for copies in layer.subspace_weights.values()
        ]
    return [variable for _, layer in weighted_layers(model) for variable in layer.trainable_weights]


def _slots(model):
    """[shape] of every trainable weight, in `flat_weights` order."""
    return [tuple((group[0] if isinstance(group, list) else group).shape) for group in _weight_groups(model)]


def flat_weights(model, alpha=None, *, point=None):
    """The trainable weights of `model` as one float64 vector.

    For a `ts.SubspaceModel`: θ(α) (default: the inference point
    `model.alpha`), or the control point ω_`point` (e.g. a curve's bend).
    For a stock Keras model: its trainable weights. Order: layers in model
    order (nested models included), each layer's weights in creation order,
    which is the order of the stock model's `trainable_weights` (for a
    subspace model, of `model.bake().trainable_weights`).

    Example:

    >>> import keras, numpy as np, tfsubspace as ts
    >>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    >>> flat_weights(net).shape
    (3,)
    >>> model = ts.convert(net, ts.Line(), init="point")
    >>> bool(np.array_equal(flat_weights(model, point=1), flat_weights(net)))
    True
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model or a ts.SubspaceModel, got {type(model).__name__}.")
    if not _is_subspace_model(model):
        if alpha is not None or point is not None:
            raise ValueError("`alpha` and `point` are only meaningful for a ts.SubspaceModel; pass neither.")
        return np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in _weight_groups(model)])
    shape = model.subspace_shape
    if point is not None:
        if alpha is not None:
            raise ValueError("pass either `alpha` or `point`, not both.")
        if isinstance(point, bool) or not isinstance(point, numbers.Integral) or not 0 <= point < shape.num_points:
            raise ValueError(f"`point` must be a control-point index in [0, {shape.num_points - 1}], got {point!r}.")
        parts = [copies[int(point)] for copies in _weight_groups(model)]
        return np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in parts])
    if alpha is None and model.alpha is None:
        raise ValueError("`model` sits at raw coefficients (no α): pass `alpha` or `point`.")
    alpha = model.alpha if alpha is None else alpha
    c = np.asarray(shape.coefficients(shape.validate_alpha(alpha)), np.float64)
    parts = [sum(ci * np.asarray(copy.numpy(), np.float64) for ci, copy in zip(c, copies)) for copies in _weight_groups(model)]
    return np.concatenate([part.ravel() for part in parts])


def _template(model):
    """A stock Keras model with `model`'s architecture (the scratch copy is built from it)."""
    if not _is_subspace_model(model):
        return model
    return model.bake(model.alpha)


def _point_vector(point, index, model, template, slots, size):
    name = f"points[{index}]"
    if isinstance(point, keras.Model):
        if _is_subspace_model(point):
            raise ValueError(f"`{name}` is a ts.SubspaceModel; pass one of its points, e.g. {name}.bake(alpha).")
        match_layers(template, point, names=("model", name))
        return flat_weights(point)
    if isinstance(point, (list, tuple)) and len(point) == len(slots) and all(np.ndim(p) >= 1 for p in point):
        shapes = [tuple(np.shape(p)) for p in point]
        expected = list(slots)
        if shapes != expected:
            raise ValueError(f"`{name}` as a list of arrays must have shapes {expected}, got {shapes}.")
        return np.concatenate([np.asarray(p, np.float64).ravel() for p in point])
    array = np.asarray(point, np.float64) if not isinstance(point, (str, bytes)) else None
    if array is not None and array.ndim == 1 and array.size == size:
        return array
    if _is_subspace_model(model) and array is not None:
        model.subspace_shape.validate_alpha(point, name=name)
        return flat_weights(model, point)
    raise ValueError(
        f"`{name}` must be a point α of `model`, a keras.Model like `model`, a flat weight vector of "
        f"size {size} or a list of {len(slots)} arrays, got {type(point).__name__}."
    )


def _label(point, index, model):
    if isinstance(point, keras.Model):
        return point.name
    if _is_subspace_model(model) and np.ndim(point) <= model.subspace_shape.alpha_rank:
        value = np.asarray(point, np.float64)
        if value.ndim == 0:
            return f"t = {float(value):g}"
        return "α = (" + ", ".join(f"{v:.2g}" for v in value) + ")"
    return f"w{index + 1}"


# -- the plane -------------------------------------------------------------------


class Plane(Table):
    """The result of `plane`: grids, coordinates, and the plot.

    Iterating gives one row {"x", "y", "loss", "nll", "error"} per grid point
    (`to_markdown()` tabulates them).

    Attributes:
        x, y: grid coordinates [grid] along û and v̂ (weight-space distances).
        loss, nll, error: [grid, grid] arrays; entry [j, i] is at (x[i], y[j])
            (loss = nll + L2 term; error is a fraction in [0, 1]).
        point_coordinates: [3, 2] coordinates of w1, w2, w3.
        curve_coordinates: [K, 2] projection of the curve θ(t) at `curve_t`,
            or None when `model` is not a curve.
        origin: w1 [D]; basis: [2, D], the rows û and v̂.
        labels: the three points' names in the plot.
        weight_decay: coefficient of the L2 term in `loss`.
        path: the PNG written by `plane`, or None.
    """

    def __init__(self, x, y, loss, nll, error, point_coordinates, curve_t, curve_coordinates,
                 origin, basis, labels, weight_decay, path=None):
        super().__init__(
            {"x": float(x[i]), "y": float(y[j]), "loss": float(loss[j, i]), "nll": float(nll[j, i]),
             "error": float(error[j, i])}
            for j in range(len(y)) for i in range(len(x))
        )
        self.x, self.y = x, y
        self.loss, self.nll, self.error = loss, nll, error
        self.point_coordinates = point_coordinates
        self.curve_t = curve_t
        self.curve_coordinates = curve_coordinates
        self.origin, self.basis = origin, basis
        self.labels = labels
        self.weight_decay = weight_decay
        self.path = path

    def weights_at(self, x, y):
        """The flat weight vector w1 + x·û + y·v̂ (in `flat_weights` order)."""
        return self.origin + float(x) * self.basis[0] + float(y) * self.basis[1]

    def coordinates_of(self, weights):
        """(x, y) of the orthogonal projection of a flat weight vector onto the plane."""
        offset = np.asarray(weights, np.float64) - self.origin
        return self.basis @ offset

    def to_dict(self):
        """The grids and coordinates as JSON-ready lists (without the basis vectors)."""
        curve = None if self.curve_coordinates is None else self.curve_coordinates.tolist()
        return {
            "x": self.x.tolist(), "y": self.y.tolist(),
            "loss": self.loss.tolist(), "nll": self.nll.tolist(), "error": self.error.tolist(),
            "point_coordinates": self.point_coordinates.tolist(), "labels": list(self.labels),
            "curve_t": None if self.curve_t is None else self.curve_t.tolist(), "curve_coordinates": curve,
            "weight_decay": self.weight_decay, "path": self.path,
        }

    def plot(self, path, title=None):
        """Writes loss and error contours with the points and the curve as a PNG; returns `path`."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure

        path = os.fspath(path)
        figure = Figure(figsize=(11.0, 4.6), layout="constrained")
        FigureCanvasAgg(figure)
        loss_label = "loss (CE" + (f" + {self.weight_decay:g}/2·‖w‖²)" if self.weight_decay else ")")
        panels = [(self.loss, loss_label, "viridis"), (self.error * 100.0, "error (%)", "magma")]
        for axes, (values, label, colormap) in zip(figure.subplots(1, 2), panels):
            low, high = float(np.min(values)), float(np.max(values))
            if high - low < 1e-9 * max(1.0, abs(high)):
                low, high = low - 1e-6, high + 1e-6
            if low > 0 and high / low > 10.0:
                levels, norm = np.geomspace(low, high, 21), LogNorm(low, high)
            else:
                levels, norm = np.linspace(low, high, 21), None
            filled = axes.contourf(self.x, self.y, values, levels=levels, norm=norm, cmap=colormap)
            axes.contour(self.x, self.y, values, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
            colorbar = figure.colorbar(filled, ax=axes, label=label)
            colorbar.ax.minorticks_off()
            colorbar.set_ticks(levels[::4], labels=[f"{level:.3g}" for level in levels[::4]])
            if self.curve_coordinates is not None:
                axes.plot(*self.curve_coordinates.T, color="white", linewidth=2.0, linestyle="--", label="curve")
            markers = ("o", "s", "^")
            for (px, py), marker, name in zip(self.point_coordinates, markers, self.labels):
                axes.plot(px, py, marker=marker, markersize=9, color="white", markeredgecolor="black",
                          linestyle="none", label=name)
            axes.set_xlabel("x: along w2 − w1 (weight-space distance)")
            axes.set_ylabel("y: orthogonal direction towards w3")
            axes.set_title(label)
            axes.legend(loc="upper right", fontsize=8, framealpha=0.7)
        if title:
            figure.suptitle(title)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        figure.savefig(path, dpi=110)
        return path


def _basis(vectors):
    """Gram–Schmidt: origin w1, unit û, v̂, and the affine map (x, y) → coefficients on w1, w2, w3."""
    first, second, third = vectors
    u = second - first
    w = third - first
    u_norm = float(np.linalg.norm(u))
    if u_norm == 0.0:
        raise ValueError("`points` must be three distinct weight points; points[0] and points[1] are equal.")
    kappa = float(w @ u) / u_norm**2
    v = w - kappa * u
    v_norm = float(np.linalg.norm(v))
    if v_norm <= 1e-9 * max(float(np.linalg.norm(w)), u_norm):
        raise ValueError("`points` must not be collinear: points[2] lies on the line through points[0] and points[1].")
    return u / u_norm, v / v_norm, u_norm, v_norm, kappa


def _axis(values, margin, grid):
    low, high = float(np.min(values)), float(np.max(values))
    extent = high - low
    return np.linspace(low - margin * extent, high + margin * extent, grid)


def plane(
    points,
    model,
    data,
    grid=21,
    margin=0.2,
    *,
    batchnorm_data=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    path=None,
    curve_points=61,
    weight_decay=None,
    labels=None,
    title=None,
    batch_size=128,
    from_logits=None,
    verbose="auto",
):
    """Loss and error on the plane through three weight points; optionally a PNG.

    Args:
        points: three weight points (see the module docstring): α of `model`,
            keras.Models like `model`, flat vectors or lists of arrays.
        model: a `ts.SubspaceModel` (any shape) or a stock Keras model; gives
            the architecture, and the curve drawn when it is a curve.
        data: a tf.data.Dataset of (x, y) batches or an (x, y) tuple of
            arrays to compute loss and error on (paper 003 plots train loss).
        grid: grid points per axis (>= 2).
        margin: fraction of the points' extent added on every side (>= 0).
        batchnorm_data: data for the batch-norm recompute at every grid point
            (default `data`); ignored for models without batch norm.
        batchnorm_steps: batches of it per recompute (default 20, as
            everywhere; None: all).
        path: where to write the PNG (None: no file; see `Plane.plot`).
        curve_points: points of the curve's projection drawn when `model` is a
            curve (0: none).
        weight_decay: coefficient of the L2 term; None takes `model`'s compiled
            optimizer's `weight_decay` (0 if none).
        labels: three names for the points in the plot (default from them).
        title: the figure title.
        batch_size: batch size for array inputs.
        from_logits: None reads it from `model` (`evaluation.heads`);
            True/False overrides.
        verbose: "auto" (a progress bar in a terminal), 0 or 1.

    Returns:
        A `Plane`. Raises a ValueError for coincident or collinear points.

    Example:

    >>> import keras, numpy as np, tfsubspace as ts
    >>> def network(seed):
    ...     init = keras.initializers.GlorotUniform(seed)
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, kernel_initializer=init, name="d")])
    >>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> nets = [network(seed) for seed in range(3)]
    >>> result = ts.connectivity.plane(nets, nets[0], (x, y), grid=2, margin=0.0)
    >>> result.x.shape, result.error.shape, result.curve_coordinates is None, len(result)
    ((2,), (2, 2), True, 4)
    """
    if isinstance(points, (str, bytes)) or not hasattr(points, "__len__") or len(points) != _NUM_POINTS:
        count = len(points) if hasattr(points, "__len__") else type(points).__name__
        raise ValueError(f"`points` must be a sequence of three weight points, got {count}.")
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a ts.SubspaceModel or a keras.Model, got {type(model).__name__}.")
    grid = check_int(grid, "grid", 2)
    curve_points = check_int(curve_points, "curve_points", 0)
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not np.isfinite(margin) or margin < 0:
        raise ValueError(f"`margin` must be a finite number >= 0, got {margin!r}.")
    batchnorm_steps = check_int(batchnorm_steps, "batchnorm_steps", 1, allow_none=True)
    logits = heads.outputs_logits(model, from_logits)
    if labels is not None and (isinstance(labels, str) or len(labels) != _NUM_POINTS):
        raise ValueError(f"`labels` must be None or three names, got {labels!r}.")
    weight_decay = resolve_weight_decay(model, weight_decay)
    evaluation_data = batches(data, "data", batch_size)
    batchnorm_data = evaluation_data if batchnorm_data is None else batches(batchnorm_data, "batchnorm_data", batch_size)

    template = _template(model)
    slots = _slots(model)
    size = sum(int(np.prod(shape)) for shape in slots)
    vectors = [_point_vector(p, k, model, template, slots, size) for k, p in enumerate(points)]
    labels = list(labels) if labels is not None else [_label(p, k, model) for k, p in enumerate(points)]
    u_hat, v_hat, u_norm, v_norm, kappa = _basis(vectors)
    basis = np.stack([u_hat, v_hat])
    origin = vectors[0]
    point_coordinates = np.stack([basis @ (vector - origin) for vector in vectors])

    curve_t = curve_coordinates = None
    if _is_subspace_model(model) and model.subspace_shape.alpha_rank == 0 and curve_points > 0:
        curve_t = np.linspace(0.0, 1.0, curve_points)
        controls = np.stack([flat_weights(model, point=i) for i in range(model.subspace_shape.num_points)])
        projected = (controls - origin) @ basis.T  # [m, 2]; θ(t) − w1 = Σ c_i(t)(ω_i − w1)
        coefficients = np.asarray(model.subspace_shape.coefficients(curve_t.astype(np.float32)), np.float64)
        curve_coordinates = coefficients @ projected
    extent = point_coordinates if curve_coordinates is None else np.concatenate([point_coordinates, curve_coordinates])
    xs, ys = _axis(extent[:, 0], margin, grid), _axis(extent[:, 1], margin, grid)

    # A scratch simplex with copies w1, w2, w3, filled in the one walk's order (that of `flat_weights`).
    scratch = convert(template, Simplex(_NUM_POINTS), beta=0.0, seed=0, init="point")
    offset = 0
    for copies, shape in zip(_weight_groups(scratch), slots):
        size = int(np.prod(shape))
        for copy, vector in zip(copies, vectors):
            copy.assign(vector[offset : offset + size].reshape(shape).astype(copy.dtype))
        offset += size

    gram, _ = control_point_grams(scratch)
    loss, nll, error = (np.zeros((grid, grid)) for _ in range(3))
    with Progress(grid * grid, verbose, title=f"plane on a {grid} x {grid} grid") as progress:
        for j, y in enumerate(ys):
            for i, x in enumerate(xs):
                b = y / v_norm
                a = x / u_norm - kappa * b
                coefficients = np.array([1.0 - a - b, a, b])
                place(scratch, coefficients=coefficients, batchnorm_data=batchnorm_data, batchnorm_steps=batchnorm_steps)
                nll[j, i], error[j, i] = nll_and_error(scratch, evaluation_data, logits, "data")
                loss[j, i] = nll[j, i] + l2_term(gram, coefficients, weight_decay)
                progress.advance()

    result = Plane(xs, ys, loss, nll, error, point_coordinates, curve_t, curve_coordinates,
                   origin, basis, labels, weight_decay)
    if path is not None:
        result.path = result.plot(path, title=title)
    return result
