"""Matching two models by structure: one walk over the weighted layers, in graph order.

`weighted_layers(model)` takes the layers holding weights from the one walk
(`tfsubspace.evaluation.walk.leaf_layers`: graph order, nested models entered
where they sit), with their paths of names for messages. Two models match when
their walks agree layer by layer on class, configuration apart from names and
initializers, and weight shapes and trainability. Names are never compared:
Keras numbers them per process (`conv2d`, then `conv2d_1`), so two models
built by one function never share them.

Example:

>>> import keras
>>> from tfsubspace.connectivity.matching import match_layers
>>> make = lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
>>> pairs = match_layers(make(), make())
>>> len(pairs), pairs[0][0].name != pairs[0][1].name
(2, True)
"""

from tfsubspace.evaluation.walk import leaf_layers

# Config entries that do not change where a weight goes or what it computes.
_IGNORED_CONFIG = ("name", "seed")


def weighted_layers(model):
    """[(path, layer)] of every layer with weights, in `leaf_layers` order."""
    return [(path, layer) for path, layer in leaf_layers(model) if layer.weights]


def _structural_config(config):
    if isinstance(config, dict):
        return {
            key: _structural_config(value)
            for key, value in config.items()
            if key not in _IGNORED_CONFIG and not key.endswith("_initializer")
        }
    if isinstance(config, (list, tuple)):
        return [_structural_config(value) for value in config]
    return config


def _difference(layer_a, layer_b, compare_classes):
    """A short description of how `layer_b` differs from `layer_a`, or None."""
    if compare_classes and type(layer_a) is not type(layer_b):
        return f"{type(layer_b).__name__} vs {type(layer_a).__name__}"
    if compare_classes:
        config_a, config_b = _structural_config(layer_a.get_config()), _structural_config(layer_b.get_config())
        for key in config_a:
            if config_a[key] != config_b.get(key):
                return f"{key}={config_b.get(key)!r} vs {config_a[key]!r}"
    if len(layer_a.weights) != len(layer_b.weights):
        return f"{len(layer_b.weights)} weights vs {len(layer_a.weights)}"
    for weight_a, weight_b in zip(layer_a.weights, layer_b.weights):
        if tuple(weight_a.shape) != tuple(weight_b.shape):
            return f"weight {weight_a.name!r} has shape {tuple(weight_b.shape)} vs {tuple(weight_a.shape)}"
        if weight_a.trainable != weight_b.trainable:
            return f"weight {weight_a.name!r} has trainable={weight_b.trainable} vs {weight_a.trainable}"
    return None


def match_layers(model_a, model_b, names=("model_a", "model_b")):
    """[(layer_a, layer_b)] of the two models' weighted layers, checked to have the same structure.

    Raises a one-line ValueError naming the first difference, e.g.
    "`model_b` does not match `model_a` at weighted layer 2 ('dense_3' vs 'dense_1'): units=5 vs 2".
    """
    first, second = names
    walk_a, walk_b = weighted_layers(model_a), weighted_layers(model_b)
    prefix = f"`{second}` does not match `{first}`"
    for index, ((path_a, layer_a), (path_b, layer_b)) in enumerate(zip(walk_a, walk_b)):
        difference = _difference(layer_a, layer_b, compare_classes=True)
        if difference is not None:
            raise ValueError(f"{prefix} at weighted layer {index} ({path_b!r} vs {path_a!r}): {difference}.")
    if len(walk_a) != len(walk_b):
        raise ValueError(f"{prefix}: {len(walk_b)} weighted layers in {second} vs {len(walk_a)} in {first}.")
    return [(layer_a, layer_b) for (_, layer_a), (_, layer_b) in zip(walk_a, walk_b)]


def check_same_architecture(model_a, model_b, names=("model_a", "model_b")):
    """Raises a one-line ValueError naming the first structural difference (see `match_layers`).

    Example:

    >>> import keras
    >>> a = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    >>> b = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, name="e")])
    >>> check_same_architecture(a, b)
    Traceback (most recent call last):
    ...
    ValueError: `model_b` does not match `model_a` at weighted layer 0 ('e' vs 'd'): units=5 vs 2.
    """
    match_layers(model_a, model_b, names)
