"""One walk over a model's layers in a stable order, over public Keras APIs.

`leaf_layers(model)` goes through `model.layers` (graph order for functional
models, the order of addition for Sequential ones), entering nested models
where they sit, and yields (path, layer) for every layer that is not itself a
model. Batch norm, matching two models by structure and placing weights on a
plane all use this one order.

Example:

>>> import keras
>>> from tfsubspace.evaluation.walk import leaf_layers
>>> inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")], name="inner")
>>> outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1, name="head")])
>>> [path for path, _ in leaf_layers(outer)]
['inner/d', 'head']
"""

import keras


def leaf_layers(model):
    """[(path, layer)] of every non-model layer of `model` (InputLayers left out), nested models entered."""
    found = []

    def walk(network, prefix):
        for layer in network.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            path = prefix + layer.name
            if isinstance(layer, keras.Model):
                walk(layer, path + "/")
            else:
                found.append((path, layer))

    walk(model, "")
    return found
