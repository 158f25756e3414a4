"""Bake a point of the subspace into stock Keras layers, and export it.

`bake(model, alpha)` returns a plain `keras.Model` of stock layers whose
weights are θ(α) = Σ_i c_i(α)·ω_i (and the model's current batch-norm
statistics, so recompute them at α first). `export` writes that model as a
SavedModel with a `serving_default` signature: TF Serving and
`tf.saved_model.load` read it without tfsubspace installed.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), seed=0)
>>> plain = model.bake(alpha=0.3)
>>> [type(layer).__name__ for layer in plain.layers]
['Dense']
>>> x = np.ones((2, 4), "float32")
>>> model.set_alpha(0.3)
>>> bool(np.allclose(plain(x), model(x), atol=1e-6))
True
"""

import os

import keras

from tfsubspace.layers import SubspaceLayer, stock_layer_class


def bake(model, alpha):
    """A stock `keras.Model` equal to the SubspaceModel `model` at `alpha`."""
    coefficients = model.subspace_shape.coefficients(model.subspace_shape.validate_alpha(alpha))
    pairs = []

    def to_stock(layer):
        if isinstance(layer, SubspaceLayer):
            config = layer.get_config()
            config.pop("num_points")
            config.pop("init")
            config.pop("frozen_points", None)
            new_layer = stock_layer_class(layer).from_config(config)
        elif not layer.weights:
            new_layer = layer  # stateless: shared, as in convert (a Lambda cannot be rebuilt in safe mode)
        else:
            new_layer = type(layer).from_config(layer.get_config())
        pairs.append((layer, new_layer))
        return new_layer

    plain = keras.models.clone_model(model.network, clone_function=to_stock, recursive=True)
    for source, target in pairs:
        if not isinstance(source, SubspaceLayer):
            target.set_weights(source.get_weights())
            continue
        for attribute, theta in source.combined_weights(coefficients).items():
            vars(target)[attribute].assign(theta)
        state = {v.name: v for v in source.non_trainable_weights}
        for variable in target.non_trainable_weights:
            variable.assign(state[variable.name])
    return plain


def _check_writable(filepath):
    """Fails early, in one line, instead of deep inside TensorFlow's file IO."""
    parent = os.path.dirname(os.path.abspath(os.fspath(filepath)))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"`filepath` {os.fspath(filepath)!r} is not writable: {parent!r} is a file.")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"`filepath` {os.fspath(filepath)!r} is not writable (no write access to {parent!r}).")


def export(model, filepath, alpha, **kwargs):
    """Writes a SavedModel of `model` at `alpha` to `filepath`; returns the path.

    Extra keyword arguments go to `keras.Model.export` (e.g. `input_signature`).
    """
    model.subspace_shape.validate_alpha(alpha)
    _check_writable(filepath)
    kwargs.setdefault("verbose", False)
    bake(model, alpha).export(os.fspath(filepath), format="tf_saved_model", **kwargs)
    return os.fspath(filepath)
