"""tfsubspace: neural-network subspaces for Keras 3 / TensorFlow.

Lines, Bezier curves, polygonal chains and simplexes of weights trained in one
run (Wortsman et al. 2021), curves between trained networks (Garipov et al.
2018) and simplexes grown from trained networks (Benton et al. 2021).

Example:

>>> import keras, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), beta=1.0, sampling="per_batch", seed=0)
>>> model.subspace_shape
Line()
"""

from tfsubspace import baselines, callbacks, connectivity, evaluate, evaluation, layers, metrics, optimizers, regularizers, volume
from tfsubspace.evaluation.batchnorm import recompute_batchnorm
from tfsubspace.connectivity import connect, plane, spro
from tfsubspace.convert import convert
from tfsubspace.model import SubspaceModel
from tfsubspace.reporting import report
from tfsubspace.sampler import Sampler
from tfsubspace.saving import load_model
from tfsubspace.shapes import Bezier, Line, PolyChain, Shape, Simplex, get_shape

__version__ = "0.1.0"

__all__ = [
    "Bezier",
    "Line",
    "PolyChain",
    "Sampler",
    "Shape",
    "Simplex",
    "SubspaceModel",
    "baselines",
    "callbacks",
    "connect",
    "connectivity",
    "convert",
    "evaluate",
    "evaluation",
    "get_shape",
    "layers",
    "load_model",
    "metrics",
    "optimizers",
    "plane",
    "recompute_batchnorm",
    "regularizers",
    "report",
    "spro",
    "volume",
]
