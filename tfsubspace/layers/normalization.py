"""Subspace versions of Keras' normalization layers.

The scale γ and offset β lie in the subspace; BatchNormalization keeps one set
of moving statistics, which `ts.recompute_batchnorm` recomputes exactly at the
α used for inference (paper 000 §D.3). These layers are excluded from the cos²
penalty and from the geometry metrics.
"""

import keras

from tfsubspace.layers.stock import StockSubspace


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceBatchNormalization(StockSubspace):
    """`keras.layers.BatchNormalization` with γ, β on the subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceBatchNormalization(num_points=2)
    >>> _ = layer(np.ones((2, 3), "float32"))
    >>> sorted(w.name for w in layer.non_trainable_weights)
    ['coefficients', 'moving_mean', 'moving_variance']
    """

    stock_class = keras.layers.BatchNormalization


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceLayerNormalization(StockSubspace):
    """`keras.layers.LayerNormalization` with γ, β on the subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tuple(ts.layers.SubspaceLayerNormalization(num_points=3)(np.ones((2, 3), "float32")).shape)
    (2, 3)
    """

    stock_class = keras.layers.LayerNormalization


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceGroupNormalization(StockSubspace):
    """`keras.layers.GroupNormalization` with γ, β on the subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tuple(ts.layers.SubspaceGroupNormalization(groups=2, num_points=2)(np.ones((1, 4), "float32")).shape)
    (1, 4)
    """

    stock_class = keras.layers.GroupNormalization
