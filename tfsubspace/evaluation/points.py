"""Which points of a subspace to evaluate: default grids and random draws.

Example:

>>> import tfsubspace as ts
>>> from tfsubspace.evaluation.points import default_points
>>> len(default_points(ts.Line())), default_points(ts.Simplex(3), num_random=0)[0]
(21, [0.3333333333333333, 0.3333333333333333, 0.3333333333333333])
"""

import numpy as np

from tfsubspace.evaluation.forward import check_subspace_model
from tfsubspace.evaluation.reader import check_int


def default_points(shape, num_random=5, seed=0):
    """21 points on [0, 1] for curves; center, vertices and random points for simplexes."""
    if shape.alpha_rank == 0:
        return [round(float(a), 10) for a in np.linspace(0.0, 1.0, 21)]
    vertices = np.eye(shape.num_points).tolist()
    if not num_random:
        return [shape.center] + vertices
    random_points = shape.sample(seed, num=num_random).numpy().astype(np.float64)
    random_points = (random_points / random_points.sum(axis=1, keepdims=True)).tolist()
    return [shape.center] + vertices + random_points


def random_points(model, k, seed=0):
    """k points drawn like the training sampler draws them (uniform on the domain, 001 §4.5).

    Example:

    >>> import keras, tfsubspace as ts
    >>> model = ts.convert(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), ts.Line())
    >>> points = ts.evaluate.random_points(model, 5, seed=0)
    >>> len(points), all(0.0 <= t <= 1.0 for t in points)
    (5, True)
    """
    check_subspace_model(model)
    k = check_int(k, "k", 1)
    points = model.subspace_shape.sample(seed, num=k).numpy().astype(np.float64)
    if model.subspace_shape.alpha_rank == 0:
        return [float(a) for a in points]
    return (points / points.sum(axis=1, keepdims=True)).tolist()
