"""Subspace versions of Keras' convolution layers."""

import keras

from tfsubspace.layers.subspace_layer import SubspaceLayer


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv1D(SubspaceLayer, keras.layers.Conv1D):
    """`keras.layers.Conv1D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tuple(ts.layers.SubspaceConv1D(4, 3, num_points=2)(np.ones((1, 8, 2), "float32")).shape)
    (1, 6, 4)
    """


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv2D(SubspaceLayer, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceConv2D(8, 3, padding="same", num_points=3)
    >>> tuple(layer(np.ones((1, 6, 6, 2), "float32")).shape)
    (1, 6, 6, 8)
    >>> len(layer.trainable_weights)  # kernel and bias, 3 copies each
    6
    """


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv3D(SubspaceLayer, keras.layers.Conv3D):
    """`keras.layers.Conv3D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> tuple(ts.layers.SubspaceConv3D(2, 3, num_points=2)(np.ones((1, 4, 4, 4, 1), "float32")).shape)
    (1, 2, 2, 2, 2)
    """


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceConv2DTranspose(SubspaceLayer, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceConv2DTranspose(2, 3, strides=2, padding="same", num_points=2)
    >>> tuple(layer(np.ones((1, 4, 4, 1), "float32")).shape)
    (1, 8, 8, 2)
    """


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceDepthwiseConv2D(SubspaceLayer, keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceDepthwiseConv2D(3, padding="same", num_points=2)
    >>> tuple(layer(np.ones((1, 5, 5, 4), "float32")).shape)
    (1, 5, 5, 4)
    """


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceSeparableConv2D(SubspaceLayer, keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` whose depthwise/pointwise kernels lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceSeparableConv2D(6, 3, padding="same", num_points=2)
    >>> tuple(layer(np.ones((1, 5, 5, 4), "float32")).shape)
    (1, 5, 5, 6)
    """
