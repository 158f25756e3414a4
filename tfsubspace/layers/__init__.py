"""Subspace layers: stock Keras layers with m copies of their trainable weights.

`SUBSPACE_LAYERS` maps each supported stock class to its subspace subclass;
`ts.convert` uses it to rewrite a model.
"""

import keras

from tfsubspace.layers.convolutional import (
    SubspaceConv1D,
    SubspaceConv2D,
    SubspaceConv2DTranspose,
    SubspaceConv3D,
    SubspaceDepthwiseConv2D,
    SubspaceSeparableConv2D,
)
from tfsubspace.layers.core import SubspaceDense, SubspaceEinsumDense, SubspaceEmbedding
from tfsubspace.layers.normalization import (
    SubspaceBatchNormalization,
    SubspaceGroupNormalization,
    SubspaceLayerNormalization,
)
from tfsubspace.layers.subspace_layer import SubspaceLayer, stock_layer_class

SUBSPACE_LAYERS = {
    keras.layers.Dense: SubspaceDense,
    keras.layers.EinsumDense: SubspaceEinsumDense,
    keras.layers.Embedding: SubspaceEmbedding,
    keras.layers.Conv1D: SubspaceConv1D,
    keras.layers.Conv2D: SubspaceConv2D,
    keras.layers.Conv3D: SubspaceConv3D,
    keras.layers.Conv2DTranspose: SubspaceConv2DTranspose,
    keras.layers.DepthwiseConv2D: SubspaceDepthwiseConv2D,
    keras.layers.SeparableConv2D: SubspaceSeparableConv2D,
    keras.layers.BatchNormalization: SubspaceBatchNormalization,
    keras.layers.LayerNormalization: SubspaceLayerNormalization,
    keras.layers.GroupNormalization: SubspaceGroupNormalization,
}

__all__ = [cls.__name__ for cls in SUBSPACE_LAYERS.values()] + [
    "SUBSPACE_LAYERS",
    "SubspaceLayer",
    "stock_layer_class",
]
