"""`ts.convert`: turn any Keras model into a SubspaceModel.

Sequential and functional models (operators and `keras.ops` calls in the
graph, shared layers and nested models included) are rebuilt with
`keras.models.clone_model`: every layer with trainable weights becomes
`ts.layers.Subspace(layer)` (same class, same config, m copies of its weights),
whatever the layer is (Dense, Conv, attention, recurrent, custom), and keeps its
name, so `model.get_layer(name)` finds it. Layers without trainable weights and
graph operations are kept.

A subclassed model (whose `call` is Python that refers to its layers by
attribute) is wrapped whole: one `Subspace(model)`, run by its own `call`
with θ in place of its weights. Its layers therefore share one α
(`per_layer` sampling draws one α for the whole model).

Example:

>>> import keras, tfsubspace as ts
>>> inputs = keras.Input((28, 28, 1))
>>> x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
>>> x = keras.ops.relu(keras.layers.BatchNormalization()(x)) + x
>>> outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
>>> model = ts.convert(keras.Model(inputs, outputs), ts.Simplex(3), beta=1.0, sampling="per_layer", seed=0)
>>> [type(layer.layer).__name__ for layer in model.subspace_layers]
['Conv2D', 'BatchNormalization', 'Dense']
"""

import keras

from tfsubspace.layers import Subspace
from tfsubspace.layers.subspace import INITS
from tfsubspace.model import SubspaceModel, check_beta
from tfsubspace.sampler import check_sampling, check_seed
from tfsubspace.shapes import get_shape


def is_graph_model(model):
    """True for Sequential and plain functional models (rebuilt layer by layer)."""
    return isinstance(model, keras.Sequential) or type(model).__name__ == "Functional"


def _is_subspace_candidate(layer):
    return isinstance(layer, keras.layers.Layer) and layer.trainable and bool(layer.trainable_weights)


def _cannot_rebuild(layer):
    """Why `layer` cannot be rebuilt from its config, or None."""
    try:
        type(layer).from_config(layer.get_config())
    except Exception as error:  # any failure means the layer cannot be copied
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120] if str(error).strip() else ''}"
    return None


def _check_convertible(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"`model` {model.name!r} is not built: give it a keras.Input or call it on data first."
        )
    if not model.trainable_weights:
        raise ValueError(f"`model` {model.name!r} has no trainable weights to place in a subspace.")
    candidates = [model] if not is_graph_model(model) else _graph_candidates(model)
    unsupported = []
    for layer in candidates:
        reason = _cannot_rebuild(layer)
        if reason:
            unsupported.append(f"{layer.name} ({type(layer).__name__}: {reason})")
    if unsupported:
        raise ValueError(
            "`model` has layers with trainable weights that ts.convert cannot place in a subspace, because "
            "they cannot be rebuilt from their config (give them a get_config that returns every "
            "__init__ argument): " + "; ".join(unsupported) + "."
        )


def _graph_candidates(model):
    """Weighted layers ts.convert will wrap: leaves, and subclassed models nested in the graph."""
    found = []
    for layer in model.layers:
        if is_graph_model(layer):
            found.extend(_graph_candidates(layer))
        elif _is_subspace_candidate(layer):
            found.append(layer)
    return found


def convert(model, shape, beta=1.0, sampling="per_batch", seed=None, init="independent"):
    """Returns a `ts.SubspaceModel` with every trainable weight of `model` on `shape`.

    Args:
        model: a built Keras model: Sequential, functional (nesting, shared
            layers, operators allowed) or subclassed (wrapped whole).
        shape: ts.Line(), ts.Bezier(n), ts.PolyChain(n) or ts.Simplex(m).
        beta: strength of the cos² diversity penalty (paper 001 Eq. 5).
        sampling: "per_batch" (one α per step) or "per_layer" (one per layer).
        seed: seed of the α sequence (None: random, then fixed).
        init: "independent" draws each endpoint afresh with the layer's own
            initializers (paper 001 §3); "point" starts every endpoint at
            `model`'s current weights (the shared "point init" of paper 000 §E).

    Non-trainable state (batch-norm moving statistics, frozen layers) is copied
    from `model`. The source model is left untouched.
    """
    shape = get_shape(shape)
    beta = check_beta(beta)
    sampling = check_sampling(sampling)
    seed = check_seed(seed)
    if init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")
    _check_convertible(model)
    m = shape.num_points
    pairs = []

    def to_subspace(layer):
        if not isinstance(layer, keras.layers.Layer) or not layer.weights:
            # Graph operations and stateless layers are reused: rebuilding a
            # Lambda fails in safe mode, and an operation has no config.
            return layer
        clone = type(layer).from_config(layer.get_config())
        new_layer = Subspace(clone, num_points=m, init=init) if _is_subspace_candidate(layer) else clone
        pairs.append((layer, new_layer))
        return new_layer

    if is_graph_model(model):
        network = keras.models.clone_model(model, clone_function=to_subspace, recursive=True)
    else:
        wrapper = to_subspace(model)
        network = keras.Sequential([keras.Input(batch_shape=_input_shape(model)), wrapper], name=model.name)
    for source, target in pairs:
        copy_weights(source, target, trainable=(init == "point"))
    return SubspaceModel(network, shape, beta=beta, sampling=sampling, seed=seed, name=f"{model.name}_subspace")


def _input_shape(model):
    config = model.get_build_config() or {}
    shape = config.get("input_shape")
    if shape is None or (isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple))):
        raise ValueError(
            f"`model` {model.name!r} is subclassed with several or unknown inputs; ts.convert wraps a "
            "subclassed model with one input tensor. Call it once on a batch first."
        )
    return tuple(shape)


def copy_weights(source, target, trainable=True):
    """Copies a stock layer's weights into its clone (every copy, if subspace).

    With `trainable=False` only the non-trainable state is copied.
    """
    if not isinstance(target, Subspace):
        target.set_weights(source.get_weights())
        return
    if trainable:
        for copies, value in zip(target.subspace_weights.values(), source.trainable_weights):
            for copy in copies:
                copy.assign(value)
    for variable, value in zip(target.layer.non_trainable_weights, source.non_trainable_weights):
        variable.assign(value)
