"""`WeightCopy`: one endpoint ω_i of a subspace weight, read and written as a variable.

A subspace layer stores the m copies of each weight stacked in one `(m, ...)`
variable (or two, when some copies are frozen: see `Subspace.freeze_points`).
`WeightCopy` is the view of row i that tools read (`.numpy()`, `np.asarray`,
`tf.convert_to_tensor`) and write (`.assign`) as if it were its own variable.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> layer = ts.layers.Subspace(keras.layers.Dense(2), num_points=3)
>>> _ = layer(np.ones((1, 4), "float32"))
>>> copy = layer.subspace_weights["kernel"][1]
>>> copy.shape, copy.trainable
((4, 2), True)
>>> _ = copy.assign(np.zeros((4, 2)))
>>> float(np.abs(layer.subspace_weights["kernel"][1]).sum())
0.0
"""

import numpy as np
from keras import ops


class WeightCopy:
    """Row `row` of the stacked variable `variable` (copy `index` of a weight)."""

    def __init__(self, variable, row, index):
        self.variable = variable
        self.row = row
        self.index = index

    @property
    def shape(self):
        return tuple(self.variable.shape[1:])

    @property
    def dtype(self):
        return self.variable.dtype

    @property
    def trainable(self):
        return self.variable.trainable

    @property
    def value(self):
        return self.variable[self.row]

    def numpy(self):
        return np.asarray(self.variable.numpy()[self.row])

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        return value if dtype is None else value.astype(dtype)

    def __tf_tensor__(self, dtype=None, name=None):
        import tensorflow as tf

        return tf.convert_to_tensor(self.value, dtype=dtype, name=name)

    # Arithmetic reads the copy's value, as it would on a variable.
    def __add__(self, other):
        return self.value + other

    def __radd__(self, other):
        return other + self.value

    def __sub__(self, other):
        return self.value - other

    def __rsub__(self, other):
        return other - self.value

    def __mul__(self, other):
        return self.value * other

    def __rmul__(self, other):
        return other * self.value

    def __neg__(self):
        return -self.value

    def assign(self, value):
        value = ops.cast(ops.reshape(ops.convert_to_tensor(value), (1,) + self.shape), self.dtype)
        start = [self.row] + [0] * len(self.shape)
        self.variable.assign(ops.slice_update(self.variable, start, value))
        return self

    def __repr__(self):
        return f"<WeightCopy {self.variable.name}[{self.row}] (copy {self.index}) shape={self.shape}>"
