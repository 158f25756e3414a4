"""Subspace layers: any Keras layer with m copies of its trainable weights.

`Subspace(layer, num_points)` is the one mechanism; `SubspaceDense`,
`SubspaceConv2D`, ... are `Subspace` around the stock layer they name, for
networks written by hand. `SUBSPACE_LAYERS` maps each of those stock classes to
its named subspace class.
"""

from tfsubspace.layers.convolutional import (
    SubspaceConv1D,
    SubspaceConv2D,
    SubspaceConv2DTranspose,
    SubspaceConv3D,
    SubspaceDepthwiseConv2D,
    SubspaceSeparableConv2D,
)
from tfsubspace.layers.copies import WeightCopy
from tfsubspace.layers.core import SubspaceDense, SubspaceEinsumDense, SubspaceEmbedding
from tfsubspace.layers.normalization import (
    SubspaceBatchNormalization,
    SubspaceGroupNormalization,
    SubspaceLayerNormalization,
)
from tfsubspace.layers.stock import StockSubspace
from tfsubspace.layers.subspace import Subspace, sublayers

#: Kept for code written against tfsubspace 0.1: every subspace layer is a `Subspace`.
SubspaceLayer = Subspace

SUBSPACE_LAYERS = {
    cls.stock_class: cls
    for cls in (
        SubspaceDense,
        SubspaceEinsumDense,
        SubspaceEmbedding,
        SubspaceConv1D,
        SubspaceConv2D,
        SubspaceConv3D,
        SubspaceConv2DTranspose,
        SubspaceDepthwiseConv2D,
        SubspaceSeparableConv2D,
        SubspaceBatchNormalization,
        SubspaceLayerNormalization,
        SubspaceGroupNormalization,
    )
}


def stock_layer_class(layer):
    """The Keras class a subspace layer wraps (e.g. Dense); `layer` may be a named subspace class."""
    if isinstance(layer, type):
        return layer.stock_class
    return type(layer.layer)


__all__ = [cls.__name__ for cls in SUBSPACE_LAYERS.values()] + [
    "SUBSPACE_LAYERS",
    "StockSubspace",
    "Subspace",
    "SubspaceLayer",
    "WeightCopy",
    "stock_layer_class",
    "sublayers",
]
