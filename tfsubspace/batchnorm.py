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


def _batches(data, steps, batch_size):
    """Input batches x from a tf.data.Dataset, (x, y[, w]) tuples, or arrays."""
    if not isinstance(data, tf.data.Dataset):
        if isinstance(data, (tuple, list)):
            data = data[0]
        data = tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
    data = data.map(lambda *element: element[0])
    if steps is not None:
        data = data.take(steps)
    return data


def batchnorm_layers(model):
    network = getattr(model, "network", model)
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
    from tfsubspace.model import SubspaceModel

    statistics = [
        (variable, variable.numpy())
        for layer in batchnorm_layers(model)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]
    subspace = isinstance(model, SubspaceModel)
    coefficients = model.alpha_coefficients.numpy() if subspace else None
    alpha = model.alpha if subspace else None
    try:
        yield model
    finally:
        if subspace:
            # Restore the exact coefficients too: callers may have written arbitrary ones.
            model.set_alpha(alpha)
            model.alpha_coefficients.assign(coefficients)
            model.write_coefficients(model.alpha_coefficients)
        for variable, value in statistics:
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


def recompute_batchnorm(model, data, alpha=None, steps=None, batch_size=128):
    """Recomputes every batch-norm layer's moving mean/variance at `alpha`.

    Args:
        model: a `ts.SubspaceModel` or any Keras model.
        data: training data: a `tf.data.Dataset` of x or (x, y, ...) batches,
            or arrays (batched with `batch_size`).
        alpha: the point to recompute at; it becomes the model's inference
            point (`set_alpha`). None keeps the current one. Only for
            subspace models.
        steps: use only the first `steps` batches (None: all of `data`).

    Returns:
        `model`, for chaining.
    """
    from tfsubspace.model import SubspaceModel

    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"`steps` must be None or an integer >= 1, got {steps!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}.")
    if isinstance(model, SubspaceModel):
        if alpha is not None:
            model.set_alpha(alpha)
        model.write_coefficients(model.alpha_coefficients)
    elif alpha is not None:
        raise ValueError("`alpha` is only meaningful for a ts.SubspaceModel; pass alpha=None.")
    layers = batchnorm_layers(model)
    if not layers:
        return model
    network = getattr(model, "network", model)

    sums, square_sums, count, accumulate = _accumulator(network, layers)
    for variable in (*sums, *square_sums, count):
        variable.assign(tf.zeros_like(variable))

    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        for x in _batches(data, steps, batch_size):
            accumulate(x)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if count.numpy() == 0:
        raise ValueError("`data` yielded no batches to recompute batch norm with.")
    for layer, total, square_total in zip(layers, sums, square_sums):
        mean = total / count
        variance = tf.maximum(square_total / count - tf.square(mean), 0.0)
        layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
        layer.moving_variance.assign(tf.cast(variance, layer.moving_variance.dtype))
    return model
