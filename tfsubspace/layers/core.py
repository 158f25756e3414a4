"""Subspace versions of Keras' core layers with weights."""

import keras

from tfsubspace.layers.stock import StockSubspace


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceDense(StockSubspace):
    """`keras.layers.Dense` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceDense(4, num_points=2)
    >>> y = layer(np.ones((1, 3), "float32"))
    >>> [w.name for w in layer.trainable_weights]
    ['kernel_copies', 'bias_copies']
    """

    stock_class = keras.layers.Dense


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceEinsumDense(StockSubspace):
    """`keras.layers.EinsumDense` whose kernel and bias lie in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceEinsumDense("ab,bc->ac", output_shape=4, num_points=3)
    >>> tuple(layer(np.ones((2, 3), "float32")).shape)
    (2, 4)
    """

    stock_class = keras.layers.EinsumDense


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceEmbedding(StockSubspace):
    """`keras.layers.Embedding` whose table lies in a subspace.

    Example:

    >>> import numpy as np, tfsubspace as ts
    >>> layer = ts.layers.SubspaceEmbedding(10, 4, num_points=2)
    >>> tuple(layer(np.array([[1, 2]])).shape)
    (1, 2, 4)
    """

    stock_class = keras.layers.Embedding
