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
import numpy as np

from tfsubspace import checks
from tfsubspace.batchnorm_grid import CURVE_ANCHORS
from tfsubspace.layers import Subspace

# The input signature keras.Model.export derives; used so `serving_default` is
# exactly what it was before the other signatures joined it.
from keras.src.export.export_utils import get_input_signature  # noqa: E402


def _stock_clone(layer):
    return type(layer).from_config(layer.get_config())


def _assign_point(source, target, coefficients):
    """Writes θ(c) of the Subspace `source` and its inner state into the stock `target`."""
    theta = {id(stack_inner): value for stack_inner, value in zip(
        source.stock_weights, source.combined_weights(coefficients).values())}
    for variable, clone_variable in zip(source.layer.weights, target.weights):
        value = theta.get(id(variable), variable)
        clone_variable.assign(value)


def _whole_model(network):
    """A subclassed model converted whole (one Subspace around a keras.Model): bake rebuilds its class."""
    whole = [layer for layer in network.layers if isinstance(layer, Subspace)]
    return isinstance(network, keras.Sequential) and len(network.layers) == 1 and bool(whole) and isinstance(
        whole[0].layer, keras.Model)


def has_stock_twin(network):
    """Whether `bake` can rebuild `network` from stock classes (graph models, whole-model wrappers)."""
    if isinstance(network, keras.Sequential) or type(network).__name__ == "Functional":
        return True
    return False


def point_coefficients(model, alpha=None, coefficients=None):
    """c ∈ R^m for `alpha`, or `coefficients` checked (m finite numbers): exactly one of the two."""
    if (alpha is None) == (coefficients is None):
        raise ValueError("pass exactly one of `alpha` (a point of the shape) or `coefficients` (m numbers).")
    if alpha is not None:
        return model.subspace_shape.coefficients(model.subspace_shape.validate_alpha(alpha))
    m = model.subspace_shape.num_points
    values = np.asarray(coefficients, dtype=np.float64) if not isinstance(coefficients, (str, bytes)) else None
    if values is None or values.shape != (m,) or not np.all(np.isfinite(values)):
        raise ValueError(f"`coefficients` must be {m} finite numbers (one per point of the subspace), got {coefficients!r}.")
    return values.astype(np.float32)


def bake(model, alpha=None, coefficients=None):
    """A stock `keras.Model` equal to the SubspaceModel `model` at `alpha` (or at raw `coefficients`).

    Built only from the original layers' own classes: every `Subspace` gives
    back a fresh layer of the class it wraps, holding θ = Σ_i c_i·ω_i.
    """
    return baked_with_sources(model, point_coefficients(model, alpha, coefficients))[0]


def baked_with_sources(model, coefficients):
    """`bake` at checked `coefficients`, and the (source layer, stock layer) pairs it copied.

    The pairs let a server recompute a stock layer's weights from its source's
    copies at another point (tfsubspace.serving).
    """
    network = model.network
    if _whole_model(network):
        # A subclassed model converted whole: give back that model's own class.
        source = network.layers[0]
        plain = _stock_clone(source.layer)
        build_config = source.layer.get_build_config()
        if build_config is not None:
            plain.build_from_config(build_config)
            shape = build_config.get("input_shape")
            if not plain.built and shape is not None:
                # A subclassed model counts as built once it has been called.
                plain(np.zeros([1 if d is None else d for d in shape], network.inputs[0].dtype))
        _assign_point(source, plain, coefficients)
        return plain, [(source, plain)]
    if not has_stock_twin(network):
        raise ValueError(
            f"`model`'s network {network.name!r} is subclassed and built from ts.layers, so it has no "
            "stock twin to bake into (export works); write it from stock layers and convert it with ts.convert."
        )
    pairs = []

    def to_stock(layer):
        if not isinstance(layer, keras.layers.Layer) or not layer.weights:
            return layer  # operations and stateless layers are shared, as in convert
        new_layer = _stock_clone(layer.layer if isinstance(layer, Subspace) else layer)
        pairs.append((layer, new_layer))
        return new_layer

    plain = keras.models.clone_model(network, clone_function=to_stock, recursive=True)
    for source, target in pairs:
        if isinstance(source, Subspace):
            _assign_point(source, target, coefficients)
        else:
            target.set_weights(source.get_weights())
    return plain, pairs


def _check_writable(filepath):
    """Fails early, in one line, instead of deep inside TensorFlow's file IO."""
    parent = os.path.dirname(os.path.abspath(os.fspath(filepath)))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"`filepath` {os.fspath(filepath)!r} is not writable: {parent!r} is a file.")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"`filepath` {os.fspath(filepath)!r} is not writable (no write access to {parent!r}).")


def export(model, filepath, alpha, batchnorm_data=None, ensemble=None, batchnorm_grid=CURVE_ANCHORS,
           batchnorm_steps=None, batchnorm_resolution=None, **kwargs):
    """Writes a SavedModel of `model` to `filepath`; returns the path.

    Signatures (tfsubspace.serving): `serving_default` at `alpha`,
    `serve_at_alpha(inputs, alpha)` and `serve_ensemble(inputs)` over the
    points `ensemble`. With `batchnorm_data`, batch norm is recomputed exactly
    at `alpha` and at every ensemble point, and at `batchnorm_grid` anchors
    (a curve) or the grid of resolution `batchnorm_resolution` (a simplex;
    None: `batchnorm_grid.default_resolution`) for `serve_at_alpha`; without it every signature uses the model's current
    statistics. Extra keyword arguments go to the `serving_default` endpoint
    as in `keras.Model.export` (e.g. `input_signature`).
    """
    from tfsubspace.evaluation.batchnorm import preserved_point, recompute_batchnorm
    from tfsubspace.serving import PointNetwork, add_signatures, ensemble_points

    model.subspace_shape.validate_alpha(alpha)
    _check_writable(filepath)
    verbose = kwargs.pop("verbose", False)
    if not has_stock_twin(model.network):
        if batchnorm_data is not None or ensemble is not None:
            raise ValueError(
                f"`ensemble` and `batchnorm_data` need a network with a stock twin; {model.network.name!r} is "
                "subclassed from ts.layers, so only `serving_default` is written (pass neither)."
            )
        # A network written by hand from ts.layers has no stock twin: serve the
        # model itself at α. A SavedModel holds only graphs and variable values, so
        # it still loads without tfsubspace.
        previous = model.alpha
        model.set_alpha(alpha)
        try:
            keras.Model.export(model, os.fspath(filepath), format="tf_saved_model", verbose=verbose, **kwargs)
        finally:
            model.set_alpha(previous)
        return os.fspath(filepath)
    ensemble_points(model.subspace_shape, ensemble)  # every check before the long recomputes
    batchnorm_grid = checks.integer(batchnorm_grid, "`batchnorm_grid`", minimum=2)
    if batchnorm_resolution is not None:
        batchnorm_resolution = checks.integer(batchnorm_resolution, "`batchnorm_resolution`", minimum=1)
    with preserved_point(model):
        if batchnorm_data is not None:
            recompute_batchnorm(model, batchnorm_data, alpha=alpha, steps=batchnorm_steps)
        plain, pairs = baked_with_sources(model, point_coefficients(model, alpha))
    input_signature = kwargs.pop("input_signature", None) or get_input_signature(plain)
    if len(input_signature) != 1:
        raise ValueError(f"`input_signature` must hold one input structure (a tensor, list or dict), got {input_signature!r}.")
    archive = keras.export.ExportArchive()
    # First endpoint: ExportArchive makes it `serving_default`, as keras.Model.export does.
    archive.track_and_add_endpoint("serve", plain, input_signature, **kwargs)
    add_signatures(archive, model, PointNetwork(plain, pairs), input_signature, batchnorm_data, ensemble,
                   batchnorm_grid, batchnorm_steps, batchnorm_resolution)
    archive.write_out(os.fspath(filepath), verbose=verbose)
    return os.fspath(filepath)
