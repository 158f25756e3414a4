"""Subspace versions of Keras' convolution layers."""

import keras

from tfsubspace.layers.stock import StockSubspace


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv1D(StockSubspace):
    """`keras.layers.Conv1D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tuple(ts.layers.SubspaceConv1D(4, 3, num_points=2)(np.ones((1, 8, 2), "float32")).shape)
    (1, 6, 4)
    """

    stock_class = keras.layers.Conv1D


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv2D(StockSubspace):
    """`keras.layers.Conv2D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceConv2D(8, 3, padding="same", num_points=3)
    >>> tuple(layer(np.ones((1, 6, 6, 2), "float32")).shape)
    (1, 6, 6, 8)
    >>> [tuple(w.shape) for w in layer.trainable_weights]  # kernel and bias, 3 copies each
    [(3, 3, 3, 2, 8), (3, 8)]
    """

    stock_class = keras.layers.Conv2D


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv3D(StockSubspace):
    """`keras.layers.Conv3D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tuple(ts.layers.SubspaceConv3D(2, 3, num_points=2)(np.ones((1, 4, 4, 4, 1), "float32")).shape)
    (1, 2, 2, 2, 2)
    """

    stock_class = keras.layers.Conv3D


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv2DTranspose(StockSubspace):
    """`keras.layers.Conv2DTranspose` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceConv2DTranspose(2, 3, strides=2, padding="same", num_points=2)
    >>> tuple(layer(np.ones((1, 4, 4, 1), "float32")).shape)
    (1, 8, 8, 2)
    """

    stock_class = keras.layers.Conv2DTranspose


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceDepthwiseConv2D(StockSubspace):
    """`keras.layers.DepthwiseConv2D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceDepthwiseConv2D(3, padding="same", num_points=2)
    >>> tuple(layer(np.ones((1, 5, 5, 4), "float32")).shape)
    (1, 5, 5, 4)
    """

    stock_class = keras.layers.DepthwiseConv2D


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceSeparableConv2D(StockSubspace):
    """`keras.layers.SeparableConv2D` whose depthwise/pointwise kernels lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceSeparableConv2D(6, 3, padding="same", num_points=2)
    >>> tuple(layer(np.ones((1, 5, 5, 4), "float32")).shape)
    (1, 5, 5, 6)
    """

    stock_class = keras.layers.SeparableConv2D
