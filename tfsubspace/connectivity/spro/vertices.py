"""Vertices of simplexes as lists of arrays, shared by growing simplexes and connecting modes.

Example:

>>> import numpy as np
>>> from tfsubspace.connectivity.spro.vertices import mean_vertex
>>> [v.tolist() for v in mean_vertex([[np.zeros(2, "float32")], [np.ones(2, "float32")]])]
[[0.5, 0.5]]
"""


import keras
import numpy as np

from tfsubspace import checks
from tfsubspace.convert import convert
from tfsubspace.model import SubspaceModel, find_subspace_layers
from tfsubspace.shapes import Simplex

def check_int(value, name, minimum):
    return checks.integer(value, f"`{name}`", minimum=minimum)


def check_non_negative(value, name):
    return checks.number(value, f"`{name}`", minimum=0)


def fresh_optimizer(optimizer):
    """A new optimizer per vertex: Keras optimizers bind to one set of variables."""
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer()
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    return keras.optimizers.get(optimizer)


def stock_template(model):
    """A stock Keras model with the architecture of `model` (vertex 0 for a SimplexModel)."""
    if isinstance(model, SubspaceModel):
        return model.bake(np.eye(model.subspace_shape.num_points)[0].tolist())
    if not isinstance(model, keras.Model):
        raise ValueError(f"`base_model`/`models` must be Keras models, got {type(model).__name__}.")
    return model


def vertex_values(layers, index):
    """Copy `index` of every subspace weight, in (layer, attribute) order, as numpy."""
    return [np.asarray(copies[index]) for layer in layers for copies in layer.subspace_weights.values()]


def stock_values(model):
    """A stock model's trainable weights, in the order of the subspace weights of its converted clones."""
    layers = find_subspace_layers(convert(model, Simplex(2), beta=0.0, seed=0, init="point").network)
    return vertex_values(layers, 0)


def mean_vertex(vertices):
    """The mean of vertices (lists of arrays), in float64, cast back to each weight's dtype."""
    return [np.mean([v[i].astype(np.float64) for v in vertices], axis=0).astype(vertices[0][i].dtype) for i in range(len(vertices[0]))]
