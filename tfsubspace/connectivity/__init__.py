"""Connecting trained networks: fixed-endpoint curves and loss-surface planes.

`connect(model_a, model_b, shape)` builds a curve between two trained networks
whose endpoints stay fixed while `fit` trains the bends (paper 003 §3);
`plane(points, model, data)` evaluates loss and error on the 2-D plane through
three weight points and draws it (paper 003 Fig. 1, paper 001 Fig. 2);
`spro` grows simplexes and simplicial complexes of low loss from trained
networks and ensembles them (paper 004, SPRO and ESPRO). Curve
metrics in the style of paper 003 Table 2 are `ts.evaluate.curve`.

Example:

>>> import keras, tfsubspace as ts
>>> def network():
...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
>>> model = ts.connectivity.connect(network(), network(), ts.Bezier(num_bends=1), seed=0)
>>> model.subspace_shape, model.frozen_points
(Bezier(num_bends=1), (0, 2))
"""

from tfsubspace.connectivity.connect import connect
from tfsubspace.connectivity.matching import check_same_architecture, match_layers
from tfsubspace.connectivity.plane import Plane, flat_weights, plane
from tfsubspace.connectivity import spro

__all__ = ["Plane", "check_same_architecture", "connect", "flat_weights", "match_layers", "plane", "spro"]
