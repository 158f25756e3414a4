"""Exact batch-norm statistics at a point of the subspace (paper 000 §D.3).

Batch norm keeps one set of moving statistics, gathered during training at
ever-changing α; they fit no single point. `recompute_batchnorm` resets them and
recomputes them at the chosen α with one pass over training data in training
mode (as SWA's `update_bn`, Izmailov et al. 2018), but pooling the batches
exactly rather than with momentum 0.99: the moving mean becomes the mean of the
layer's input over all examples seen, and the moving variance the pooled
population variance Σ_b n_b (var_b + mean_b²) / N − mean², where each batch's
input is normalized with its own batch statistics as in training.

Works for any Keras model (e.g. an SWA average), not only subspace models.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
>>> x = np.random.default_rng(0).normal(2.0, 3.0, (256, 3)).astype("float32")
>>> _ = ts.recompute_batchnorm(base, x, batch_size=64)
>>> bool(np.allclose(base.layers[0].moving_mean, x.mean(0), atol=1e-4))
True
"""

import contextlib

import keras
import tensorflow as tf

from tfsubspace import checks
from tfsubspace.evaluation.progress import Progress
from tfsubspace.evaluation.reader import inputs


def _batches(model, data, steps, batch_size):
    """Input batches x from a tf.data.Dataset, (x, y[, w]) tuples, dicts or arrays; checked first."""
    if isinstance(data, tf.data.Dataset) and steps is None and data.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError("`data` is infinite (e.g. `.repeat()`): pass `steps`, the number of batches to use.")
    batches = inputs(data, "data", batch_size)
    network = getattr(model, "network", model)
    model_inputs = getattr(network, "inputs", None) or []
    expected = [tuple(tensor.shape) for tensor in model_inputs]
    spec = batches.element_spec
    if isinstance(spec, dict) and model_inputs:
        names = {getattr(tensor, "name", None) for tensor in model_inputs}
        if not set(spec) <= names:
            raise ValueError(
                f"`data` yields dicts with keys {sorted(spec)}, which are not the model's inputs {sorted(map(str, names))}; "
                "pass (x, y) batches, or a dict with a 'label' key next to the inputs."
            )
    if len(expected) == 1 and isinstance(spec, tf.TensorSpec) and spec.shape.rank is not None:
        if spec.shape.rank == len(expected[0]) - 1:
            raise ValueError(
                f"`data` is not batched: its elements have shape {tuple(spec.shape)} and the model takes "
                f"{expected[0]}; call `.batch(batch_size)` on it."
            )
    if steps is not None:
        batches = batches.take(steps)
    return batches


def batchnorm_layers(model):
    network = getattr(model, "network", model)
    # Keras' private flattening also finds batch norm inside custom layers,
    # which the public `model.layers` walk cannot enter; order is irrelevant here.
    return [
        layer
        for layer in network._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


@contextlib.contextmanager
def preserved_point(model):
    """Puts back `model`'s inference point and batch-norm statistics on exit.

    Evaluations that visit many points (sweeps, ensembles, curves, callbacks
    during training) use it so the model the user holds is left exactly as it
    was, whatever statistics it had (a full-pass recompute, training's running
    averages), instead of being re-estimated.

    >>> base = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    >>> with preserved_point(base):
    ...     _ = base.layers[0].moving_mean.assign([1.0, 2.0, 3.0])
    >>> base.layers[0].moving_mean.numpy().tolist()
    [0.0, 0.0, 0.0]
    """
    snapshot = _Snapshot(model)
    try:
        yield model
    finally:
        snapshot.restore()


class _Snapshot:
    """A model's point (α or raw coefficients) and batch-norm statistics, to put back."""

    def __init__(self, model):
        from tfsubspace.model import SubspaceModel

        self.model = model
        self.statistics = [
            (variable, variable.numpy())
            for layer in batchnorm_layers(model)
            for variable in (layer.moving_mean, layer.moving_variance)
        ]
        self.subspace = isinstance(model, SubspaceModel)
        self.coefficients = model.alpha_coefficients.numpy() if self.subspace else None
        self.alpha = model.alpha if self.subspace else None

    def restore(self):
        if self.subspace:
            # set_point is the one owner of the point: α when there was one, else the raw coefficients.
            if self.alpha is not None:
                self.model.set_point(alpha=self.alpha)
            else:
                self.model.set_point(coefficients=self.coefficients)
        for variable, value in self.statistics:
            variable.assign(value)


def _accumulator(network, layers):
    """Accumulators and the traced pass, built once per network and reused.

    Sweeps recompute batch norm at many α: re-tracing the pass every time
    would cost more than the pass itself on small data.
    """
    cached = getattr(network, "_tfsubspace_batchnorm_accumulator", None)
    if cached is not None and cached[0] == [id(layer) for layer in layers]:
        return cached[1]
    sums = [tf.Variable(tf.zeros(l.moving_mean.shape, tf.float64), trainable=False) for l in layers]
    square_sums = [tf.Variable(tf.zeros(l.moving_mean.shape, tf.float64), trainable=False) for l in layers]
    count = tf.Variable(0.0, dtype=tf.float64, trainable=False)

    @tf.function(reduce_retracing=True)
    def accumulate(x):
        network(x, training=True)
        n = tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.float64)
        for layer, total, square_total in zip(layers, sums, square_sums):
            # With momentum 0 the moving statistics are exactly this batch's.
            mean = tf.cast(layer.moving_mean, tf.float64)
            variance = tf.cast(layer.moving_variance, tf.float64)
            total.assign_add(n * mean)
            square_total.assign_add(n * (variance + tf.square(mean)))
        count.assign_add(n)

    state = (sums, square_sums, count, accumulate)
    # Not a Keras-tracked attribute: these variables are scratch space.
    object.__setattr__(network, "_tfsubspace_batchnorm_accumulator", ([id(l) for l in layers], state))
    return state


def recompute_batchnorm(model, data, alpha=None, steps=None, batch_size=128, verbose=0):
    """Recomputes every batch-norm layer's moving mean/variance at `alpha`.

    Args:
        model: a `ts.SubspaceModel` or any Keras model.
        data: training data: a `tf.data.Dataset` of x or (x, y, ...) batches,
            or arrays (batched with `batch_size`).
        alpha: the point to recompute at; it becomes the model's inference
            point (`set_alpha`). None keeps the current one. Only for
            subspace models.
        steps: use only the first `steps` batches (None: all of `data`;
            required for an infinite dataset).
        batch_size: batch size for arrays.
        verbose: 1 shows a progress bar over the batches ("auto": in a
            terminal); evaluations that recompute at many points show one
            bar over the points instead.

    Raises ValueError, leaving the model as it was, for data without batches,
    unbatched or infinite data, a generator (wrap it in
    `tf.data.Dataset.from_generator`) or non-finite inputs (refused: one NaN
    would make every statistic NaN).

    Returns:
        `model`, for chaining.
    """
    from tfsubspace.model import SubspaceModel

    steps = checks.integer(steps, "`steps`", minimum=1, allow_none=True)
    batch_size = checks.integer(batch_size, "`batch_size`", minimum=1)
    subspace = isinstance(model, SubspaceModel)
    if not subspace and alpha is not None:
        raise ValueError("`alpha` is only meaningful for a ts.SubspaceModel; pass alpha=None.")
    if subspace and alpha is not None:
        model.subspace_shape.validate_alpha(alpha)
    batches = _batches(model, data, steps, batch_size)  # every check before the model moves
    layers = batchnorm_layers(model)
    # A failure part-way leaves the model at its old point and statistics.
    snapshot = _Snapshot(model)
    try:
        if subspace:
            if alpha is not None:
                model.set_point(alpha=alpha)
            model.write_coefficients(model.alpha_coefficients)
        if not layers:
            return model
        network = getattr(model, "network", model)
        sums, square_sums, count, accumulate = _accumulator(network, layers)
        for variable in (*sums, *square_sums, count):
            variable.assign(tf.zeros_like(variable))
        momenta = [layer.momentum for layer in layers]
        cardinality = int(batches.cardinality())
        try:
            for layer in layers:
                layer.momentum = 0.0
            with Progress(cardinality if cardinality >= 0 else None, verbose) as progress:
                for x in batches:
                    accumulate(x)
                    progress.advance()
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
        if count.numpy() == 0:
            raise ValueError("`data` yielded no batches to recompute batch norm with.")
        if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in (*sums, *square_sums)):
            raise ValueError(
                "`data` holds non-finite inputs (NaN or inf): batch-norm statistics would be NaN, so they are "
                "refused and the model is left as it was; clean the data first."
            )
        for layer, total, square_total in zip(layers, sums, square_sums):
            mean = total / count
            variance = tf.maximum(square_total / count - tf.square(mean), 0.0)
            layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
            layer.moving_variance.assign(tf.cast(variance, layer.moving_variance.dtype))
    except BaseException:
        snapshot.restore()
        raise
    return model
