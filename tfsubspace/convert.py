"""`ts.convert`: turn a stock Keras model into a SubspaceModel.

Every layer with trainable weights is swapped for its subspace subclass (same
config, plus `num_points`); weightless layers are kept. Sequential, functional
and nested models are supported through `keras.models.clone_model`.

Example:

>>> import keras, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3),
...                          keras.layers.BatchNormalization(), keras.layers.ReLU(),
...                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
>>> model = ts.convert(base, ts.Simplex(3), beta=1.0, sampling="per_layer", seed=0)
>>> [type(layer).__name__ for layer in model.subspace_layers]
['SubspaceConv2D', 'SubspaceBatchNormalization', 'SubspaceDense']
"""

import keras

from tfsubspace.layers import SUBSPACE_LAYERS, SubspaceLayer
from tfsubspace.layers.subspace_layer import INITS
from tfsubspace.model import SubspaceModel, check_beta
from tfsubspace.sampler import check_sampling, check_seed
from tfsubspace.shapes import get_shape


def leaf_layers(model):
    """All non-model layers inside `model`, nested models flattened."""
    return [layer for layer in model._flatten_layers(include_self=False) if not isinstance(layer, keras.Model)]


def _check_convertible(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    if not isinstance(model, (keras.Sequential, keras.src.models.functional.Functional)):
        raise ValueError(
            f"`model` must be a Sequential or functional keras.Model; {type(model).__name__} is "
            "subclassed, so build it from ts.layers and wrap it in ts.SubspaceModel instead."
        )
    if not model.built:
        raise ValueError(
            f"`model` {model.name!r} is not built: give it a keras.Input or call it on data first."
        )
    if not model.trainable_weights:
        raise ValueError(f"`model` {model.name!r} has no trainable weights to place in a subspace.")
    unsupported = [
        f"{layer.name} ({type(layer).__name__})"
        for layer in leaf_layers(model)
        if layer.trainable_weights and type(layer) not in SUBSPACE_LAYERS
    ]
    if unsupported:
        raise ValueError(
            "`model` has layers with trainable weights that ts.convert cannot place in a subspace: "
            + ", ".join(unsupported)
            + f". Supported: {sorted(cls.__name__ for cls in SUBSPACE_LAYERS)}."
        )


def convert(model, shape, beta=1.0, sampling="per_batch", seed=None, init="independent"):
    """Returns a `ts.SubspaceModel` with every weighted layer on `shape`.

    Args:
        model: a built Sequential or functional Keras model (nesting allowed).
        shape: ts.Line(), ts.Bezier(n), ts.PolyChain(n) or ts.Simplex(m).
        beta: strength of the cos² diversity penalty (paper 001 Eq. 5).
        sampling: "per_batch" (one α per step) or "per_layer" (one per layer).
        seed: seed of the α sequence (None: random, then fixed).
        init: "independent" draws each endpoint afresh with the layer's own
            initializer (paper 001 §3); "point" starts every endpoint at
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

    pairs = []

    def to_subspace(layer):
        if type(layer) in SUBSPACE_LAYERS and layer.trainable_weights:
            config = layer.get_config()
            config.update(num_points=shape.num_points, init=init)
            new_layer = SUBSPACE_LAYERS[type(layer)].from_config(config)
        elif not layer.weights:
            # Nothing to copy: reuse the layer. Rebuilding it from its config
            # would fail for a Lambda (safe mode) or an unregistered custom layer.
            new_layer = layer
        else:
            new_layer = type(layer).from_config(layer.get_config())
        pairs.append((layer, new_layer))
        return new_layer

    network = keras.models.clone_model(model, clone_function=to_subspace, recursive=True)
    for source, target in pairs:
        copy_weights(source, target, trainable=(init == "point"))
    return SubspaceModel(network, shape, beta=beta, sampling=sampling, seed=seed, name=f"{model.name}_subspace")


def copy_weights(source, target, trainable=True):
    """Copies a stock layer's weights into its clone (every copy, if subspace).

    With `trainable=False` only the non-trainable state is copied.
    """
    if not isinstance(target, SubspaceLayer):
        target.set_weights(source.get_weights())
        return
    for attribute, copies in target.subspace_weights.items():
        if trainable:
            value = vars(source)[attribute]
            for copy in copies:
                copy.assign(value)
    own = {v.name: v for v in source.non_trainable_weights}
    for variable in target.non_trainable_weights:
        if variable.name in own:
            variable.assign(own[variable.name])
