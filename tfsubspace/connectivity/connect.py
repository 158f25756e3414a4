"""Curves between two trained networks with fixed endpoints (paper 003 §3).

`connect(model_a, model_b, shape)` returns a `ts.SubspaceModel` on a curve
(`ts.Bezier(n)`, `ts.PolyChain(n)` or `ts.Line()`) whose first control point
ω_0 holds `model_a`'s weights and whose last ω_{m-1} holds `model_b`'s. Both
are frozen (`model.freeze_points([0, m - 1])`), so `fit` trains only the bends
and leaves the endpoints bit-identical. Training is stock `fit`: the model's
sampler draws t ~ U(0, 1) each batch, which minimises loss (2) of paper 003,
∫ L(φ(t)) dt.

The two models are matched by structure (`connectivity.matching`): their
weighted layers in graph order, nested models included, must agree on class,
configuration apart from names, and weight shapes, so two models built by one
function match although Keras numbers their layer names apart; the first
difference is named in one line.

The bends start on the segment: bend i of m control points is
ω_i = (1 − i/(m−1))·ω_0 + (i/(m−1))·ω_{m−1}, the linear initialisation of
Garipov et al.'s reference code (paper 003 §4 initialises the one bend "at the
center of the line segment connecting the endpoints"). With control points
evenly spaced on the segment, both a Bezier curve and a polygonal chain start
out as exactly the segment θ(t) = (1 − t)·w_a + t·w_b.

Batch-norm moving statistics: a subspace model keeps one set, which cannot be
both endpoints' at once. The connected model starts with `model_a`'s (so before
training, θ(0) reproduces `model_a` exactly). After training they fit no t;
evaluate any point, the endpoints included, after
`ts.recompute_batchnorm(model, train_data, alpha=t)` (paper 003 A.2), as
`ts.evaluate.curve` does. At t = 0 and t = 1 the weights are exactly the
trained models', so with recomputed statistics the outputs equal those of the
trained models with statistics recomputed on the same data.

Example:

>>> import keras, tfsubspace as ts
>>> def network():
...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> a, b = network(), network()  # their layers are named "dense" and "dense_1"
>>> model = ts.connectivity.connect(a, b, ts.Bezier(num_bends=1), seed=0)
>>> model.frozen_points
(0, 2)
>>> import numpy as np
>>> kernel = model.subspace_layers[0].subspace_weights["kernel"]
>>> bool(np.allclose(kernel[1], (a.layers[0].kernel + b.layers[0].kernel) / 2))
True
"""

import keras
import numpy as np

from tfsubspace import checks
from tfsubspace.connectivity.matching import match_layers, weighted_layers
from tfsubspace.convert import convert
from tfsubspace.layers import Subspace
from tfsubspace.shapes import Bezier, get_shape

#: The curve `connect` uses by default: a quadratic Bezier curve (one bend).
DEFAULT_SHAPE = Bezier(num_bends=1)


def _check_model(model, name):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`{name}` must be a trained keras.Model, got {type(model).__name__}.")
    from tfsubspace.model import SubspaceModel

    if isinstance(model, SubspaceModel):
        raise ValueError(f"`{name}` is a ts.SubspaceModel; pass a stock model, e.g. `{name}.bake(alpha)`.")
    if not model.built:
        raise ValueError(f"`{name}` {model.name!r} is not built: give it a keras.Input or call it on data first.")


def _check_curve_shape(shape):
    shape = get_shape(shape)
    if shape.alpha_rank != 0:
        raise ValueError(
            f"`shape` must be a curve (ts.Line(), ts.Bezier(n) or ts.PolyChain(n)), got {shape!r}."
        )
    return shape


def connect(model_a, model_b, shape=DEFAULT_SHAPE, *, beta=0.0, sampling="per_batch", seed=None, weight_decay=0.0):
    """A curve from `model_a` (t = 0) to `model_b` (t = 1) with frozen endpoints.

    Args:
        model_a: the trained model at t = 0 (built Sequential or functional).
        model_b: the trained model at t = 1, same architecture (names may differ).
        shape: ts.Bezier(n), ts.PolyChain(n) or ts.Line() (or "bezier", ...).
        beta: strength of the cos² penalty between control points (paper 001
            Eq. 5); 0, the default, trains the plain loss (2) of paper 003.
        sampling: "per_batch" (one t per step, paper 003) or "per_layer".
        seed: seed of the t sequence (None: random, then fixed).
        weight_decay: wd of the reference code's curve regularizer
            ½·wd·‖θ(t)‖² at the sampled t (each bend feels wd·cᵢ(t)·θ(t));
            compile with an optimizer without weight decay to follow it.

    Returns:
        An uncompiled `ts.SubspaceModel` with control points ω_0 = w_a,
        bends on the segment, ω_{m-1} = w_b, points 0 and m − 1 frozen, and
        `model_a`'s batch-norm moving statistics (see the module docstring).
        Neither input model is changed.

    Example:

    >>> import keras, numpy as np, tfsubspace as ts
    >>> def network():
    ...     return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    >>> a, b = network(), network()
    >>> model = ts.connectivity.connect(a, b, ts.PolyChain(num_bends=1), seed=0)
    >>> x = np.ones((1, 2), "float32")
    >>> model.set_alpha(1.0)
    >>> bool(np.array_equal(model.predict(x, verbose=0), b.predict(x, verbose=0)))
    True
    """
    shape = _check_curve_shape(shape)
    _check_model(model_a, "model_a")
    _check_model(model_b, "model_b")
    pairs = match_layers(model_a, model_b)
    model = convert(model_a, shape, beta=beta, sampling=sampling, seed=seed, init="point")
    last = shape.num_points - 1
    # convert keeps the structure, so its walk lines up with model_a's, hence model_b's.
    for (path, layer), (_, source) in zip(weighted_layers(model.network), pairs):
        if not isinstance(layer, Subspace):
            _check_fixed_layer(path, layer, source)
            continue
        for copies, end_variable in zip(layer.subspace_weights.values(), source.trainable_weights):
            start = np.asarray(copies[0].numpy(), np.float64)
            copies[last].assign(end_variable)
            end = np.asarray(end_variable.numpy(), np.float64)
            for index in range(1, last):
                fraction = index / last
                copies[index].assign(((1.0 - fraction) * start + fraction * end).astype(copies[index].dtype))
    model.freeze_points([0, last])
    model.point_weight_decay = checks.number(weight_decay, "`weight_decay`", minimum=0)
    return model


def _check_fixed_layer(path, layer, source):
    """A layer left out of the subspace (frozen in `model_a`) must be equal in both models."""
    for variable, other in zip(layer.weights, source.weights):
        if not np.array_equal(variable.numpy(), other.numpy()):
            raise ValueError(
                f"`model_b` differs from `model_a` at variable '{path}/{variable.name}' of a frozen layer, "
                "which cannot move along the curve; make the layer trainable, or equal in both models."
            )
