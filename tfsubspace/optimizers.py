"""SGD with the papers' weight decay.

The papers train with PyTorch's SGD, whose weight decay is an L2 term added to
the gradient *before* momentum:

    g ← ∇L + wd·w;   v ← μ·v + g;   w ← w − lr·v        (Nesterov: w ← w − lr·(g + μ·v))

Keras' `SGD(weight_decay=wd)` is *decoupled*: it shrinks the weights directly,
w ← w − lr·wd·w, outside the momentum buffer. With μ = 0.9 the momentum
amplifies the coupled form about 1/(1 − μ) = 10× (BUILD_NOTES.md), so the same
number means a ten times weaker decay in Keras. `ts.optimizers.SGD` offers
both: `weight_decay_mode="l2"` (default, the papers') follows PyTorch's update
exactly, velocity in gradient units, so the learning rate of the current step
scales the whole velocity as in PyTorch; `"decoupled"` is Keras' own SGD.

Every trainable variable is decayed in "l2" mode, as PyTorch SGD does with
`model.parameters()`; frozen subspace copies are not trainable, so they are not
touched.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> w = keras.Variable(np.ones(2, "float32"))
>>> sgd = ts.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.5)
>>> sgd.apply([np.zeros(2, "float32")], [w])   # g = 0 + 0.5·w = 0.5; v = 0.5; w = 1 − 0.05
>>> [round(float(v), 4) for v in w.numpy()]
[0.95, 0.95]
"""

import numbers

import keras
import numpy as np
from keras import ops

WEIGHT_DECAY_MODES = ("l2", "decoupled")


def _check_number(value, name, upper=None):
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and np.isfinite(value)
    if not ok or value < 0 or (upper is not None and value > upper):
        allowed = f"in [0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"`{name}` must be a finite number {allowed}, got {value!r}.")
    return float(value)


def check_weight_decay_mode(mode):
    if mode not in WEIGHT_DECAY_MODES:
        raise ValueError(f"`weight_decay_mode` must be one of {WEIGHT_DECAY_MODES}, got {mode!r}.")
    return mode


@keras.saving.register_keras_serializable(package="tfsubspace")
class SGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` with a choice of weight decay: PyTorch's L2 or Keras' decoupled.

    Args:
        learning_rate, momentum, nesterov: as `keras.optimizers.SGD`.
        weight_decay: the decay coefficient wd (None or 0: none).
        weight_decay_mode: "l2" (default): wd·w joins the gradient before
            momentum and the update is PyTorch's `torch.optim.SGD` step;
            "decoupled": Keras' `SGD(weight_decay=wd)`, unchanged.
        **kwargs: the other arguments of `keras.optimizers.SGD` (clipnorm, ...).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        weight_decay_mode="l2",
        **kwargs,
    ):
        check_weight_decay_mode(weight_decay_mode)
        decay = 0.0 if weight_decay is None else _check_number(weight_decay, "weight_decay")
        momentum = _check_number(momentum, "momentum", upper=1.0)
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            # Keras applies its decoupled decay whenever `self.weight_decay` is set.
            weight_decay=(decay or None) if weight_decay_mode == "decoupled" else None,
            **kwargs,
        )
        self.weight_decay_mode = weight_decay_mode
        self.l2_weight_decay = decay if weight_decay_mode == "l2" else 0.0

    @property
    def decay_coefficient(self):
        """wd, whichever the mode (0.0 for none)."""
        return self.l2_weight_decay if self.weight_decay_mode == "l2" else float(self.weight_decay or 0.0)

    def update_step(self, gradient, variable, learning_rate):
        if self.weight_decay_mode == "decoupled":
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2_weight_decay:
            gradient = gradient + ops.cast(self.l2_weight_decay, variable.dtype) * variable
        if self.momentum == 0:
            self.assign_sub(variable, learning_rate * gradient)
            return
        velocity = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(velocity, momentum * velocity + gradient)
        step = gradient + momentum * velocity if self.nesterov else velocity
        self.assign_sub(variable, learning_rate * step)

    def get_config(self):
        config = super().get_config()
        config.update(weight_decay=self.decay_coefficient or None, weight_decay_mode=self.weight_decay_mode)
        return config
