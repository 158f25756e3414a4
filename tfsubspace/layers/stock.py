"""`StockSubspace`: the base of `SubspaceDense`, `SubspaceConv2D`, ...

Each is `Subspace(keras.layers.X(...))` under a name of its own, taking the
stock layer's arguments directly: `SubspaceDense(8, num_points=2)` is
`Subspace(keras.layers.Dense(8), num_points=2)`. They use the one generic
mechanism of `Subspace`; they exist so that networks written by hand read
like stock Keras.

Example:

>>> import numpy as np, tfsubspace as ts
>>> layer = ts.layers.SubspaceDense(8, activation="relu", num_points=2, name="hidden")
>>> type(layer.layer).__name__, layer.name
('Dense', 'hidden')
"""

from tfsubspace.layers.subspace import Subspace

_WRAPPER_ARGUMENTS = ("name", "trainable", "dtype")


class StockSubspace(Subspace):
    """`Subspace` around a fresh `stock_class(*args, **kwargs)`.

    Args:
        *args, **kwargs: the arguments of `stock_class`.
        num_points, init, frozen_points: as for `ts.layers.Subspace`.
        layer: an existing `stock_class` layer instead (used by `from_config`).

    Example:

    >>> import tfsubspace as ts
    >>> ts.layers.SubspaceConv2D(4, 3, num_points=3).num_points
    3
    """

    stock_class = None

    def __init__(self, *args, num_points=2, init="independent", frozen_points=(), layer=None, **kwargs):
        wrapper_kwargs = {}
        if layer is None:
            layer = self.stock_class(*args, **kwargs)
        else:
            if not isinstance(layer, self.stock_class):
                raise ValueError(
                    f"`layer` must be a {self.stock_class.__name__}, got {type(layer).__name__}."
                )
            wrapper_kwargs = kwargs
        super().__init__(layer, num_points=num_points, init=init, frozen_points=frozen_points, **wrapper_kwargs)
