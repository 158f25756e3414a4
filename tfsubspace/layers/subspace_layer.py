"""The mixin that turns a stock Keras layer into a subspace layer.

A subspace layer keeps m copies ω_0..ω_{m-1} of each trainable weight of the
stock layer and a small non-trainable `coefficients` variable c ∈ R^m. In
`call` it forms θ = Σ_i c_i·ω_i for every weight and runs the stock layer's own
`call` with θ in place of its variable, so the stock op, its arguments and its
numerics are reused unchanged (paper 001 §3, Algorithm 1). The gradient that
reaches ω_i is therefore c_i·∂L/∂θ (Eq. 3).

Who writes `coefficients`: the model-level sampler each training step, and
`SubspaceModel.set_alpha` for inference (see tfsubspace/model.py). A layer used
on its own can be driven with `layer.set_coefficients(...)`.

How the copies are made: while the stock `build` runs, `add_weight` for a
trainable weight is intercepted and creates the m copies instead (each drawn
independently with the stock initializer, or all equal with `init="point"`),
returning copy 0 so the stock `build` keeps working. The attribute that ends up
holding copy 0 (e.g. `_kernel` for Dense, `gamma` for BatchNormalization) is the
one substituted during `call`.
"""

import functools
import inspect

import keras
import tensorflow as tf
from keras import ops

from tfsubspace import checks

INITS = ("independent", "point")

# Large odd stride so per-copy seeds of a seeded initializer never collide with
# the seeds of neighbouring layers that users typically number 0, 1, 2, ...
_SEED_STRIDE = 1_000_003


def _copy_initializer(initializer, index):
    """The initializer for copy `index`: same distribution, independent draw.

    Keras' random initializers hold a fixed seed (an unseeded one picks it once
    at construction), so calling one instance m times gives m equal tensors.
    Copy 0 keeps the stock initializer; copy i>0 gets a re-seeded clone.
    """
    initializer = keras.initializers.get(initializer)
    if index == 0 or not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    if "seed" not in config:
        return initializer  # deterministic (zeros, ones, constant): copies are equal
    base_seed = getattr(initializer, "_init_seed", config["seed"])
    config["seed"] = None if not isinstance(base_seed, int) else base_seed + index * _SEED_STRIDE
    return type(initializer).from_config(config)


class SubspaceLayer:
    """Mixin for `class SubspaceX(SubspaceLayer, keras.layers.X)`.

    Args:
        num_points: m, the number of weight copies (the shape's `num_points`).
        init: "independent" draws every copy with the stock initializer;
            "point" gives all copies one shared initial value (paper 000 §E).
        frozen_points: indices of copies that training must not change (the
            fixed endpoints of a curve between trained models, paper 003 §3;
            the existing vertices while SPRO grows a simplex, paper 004 §3).
        **kwargs: every argument of the stock layer.
    """

    #: Normalization layers are excluded from the cos² penalty (paper 000 §D.3).
    is_normalization = False

    def __init__(self, *args, num_points=2, init="independent", frozen_points=(), **kwargs):
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"`num_points` must be an integer >= 1, got {num_points!r}.")
        if init not in INITS:
            raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")
        frozen_points = check_point_indices(frozen_points, num_points, "frozen_points")
        super().__init__(*args, **kwargs)
        self.num_points = num_points
        self.init = init
        self.frozen_points = frozen_points
        # Bookkeeping kept out of Keras' tracker (it would re-track the copies).
        object.__setattr__(self, "_subspace_groups", [])  # [(attribute, [copies])]
        object.__setattr__(self, "_pending_copies", [])
        object.__setattr__(self, "_copying", False)

    # -- building -----------------------------------------------------------

    def build(self, input_shape):
        self.coefficients = self.add_weight(
            name="coefficients",
            shape=(self.num_points,),
            initializer=keras.initializers.Constant(1.0 / self.num_points),
            trainable=False,
            # Written inside train_step; every replica writes the same value.
            aggregation="only_first_replica",
        )
        object.__setattr__(self, "_copying", True)
        try:
            super().build(input_shape)
        finally:
            object.__setattr__(self, "_copying", False)
        groups = [(self._attribute_holding(copies[0]), copies) for copies in self._pending_copies]
        object.__setattr__(self, "_subspace_groups", groups)
        object.__setattr__(self, "_pending_copies", [])
        self.freeze_points(self.frozen_points)

    def add_weight(self, *args, **kwargs):
        if not self._copying or not kwargs.get("trainable", True):
            return super().add_weight(*args, **kwargs)
        if args:
            raise TypeError(
                f"{type(self).__name__}: pass add_weight arguments by keyword while building."
            )
        name = kwargs.pop("name", None) or "weight"
        initializer = kwargs.pop("initializer", None)
        copies = []
        for index in range(self.num_points):
            if self.init == "point" and copies:
                shared_value = ops.convert_to_tensor(copies[0])
                copy_init = lambda shape, dtype=None, v=shared_value: ops.cast(v, dtype)  # noqa: E731
            else:
                copy_init = _copy_initializer(initializer, index)
            copies.append(super().add_weight(name=f"{name}_{index}", initializer=copy_init, **kwargs))
        self._pending_copies.append(copies)
        return copies[0]

    def _attribute_holding(self, variable):
        for attribute, value in vars(self).items():
            if value is variable:
                return attribute
        raise TypeError(
            f"{type(self).__name__}: the stock build created weight {variable.name!r} but did "
            "not store it on an attribute, so it cannot be placed in a subspace."
        )

    # -- the subspace -------------------------------------------------------

    @property
    def subspace_weights(self):
        """{attribute name: [ω_0, ..., ω_{m-1}]} for every subspace weight."""
        return {attribute: list(copies) for attribute, copies in self._subspace_groups}

    def freeze_points(self, indices):
        """Makes copies `indices` non-trainable (and every other copy trainable).

        Frozen copies leave `trainable_weights`, so neither the optimizer nor
        weight decay touches them; θ still uses them with their coefficient.
        Call before `compile`/`fit`: Keras builds the optimizer's slots from
        the trainable weights it sees then.
        """
        self.frozen_points = check_point_indices(indices, self.num_points, "indices")
        for _, copies in self._subspace_groups:
            for index, copy in enumerate(copies):
                copy.trainable = index not in self.frozen_points

    def set_coefficients(self, coefficients):
        """Writes c ∈ R^m (e.g. `shape.coefficients(alpha)`) used by `call`."""
        self.coefficients.assign(ops.cast(ops.reshape(coefficients, (self.num_points,)), "float32"))

    def combined_weights(self, coefficients=None):
        """{attribute name: θ = Σ_i c_i ω_i}; c defaults to `self.coefficients`."""
        if coefficients is None:
            coefficients = self.coefficients
        # One unstack per layer and one n-ary add per weight: fewer graph ops
        # than slicing c[i] per copy and chaining adds (benchmarks/README.md).
        c = tf.unstack(tf.convert_to_tensor(coefficients), num=self.num_points)
        combined = {}
        for attribute, copies in self._subspace_groups:
            values = [tf.convert_to_tensor(copy) for copy in copies]
            terms = [tf.cast(ci, value.dtype) * value for ci, value in zip(c, values)]
            combined[attribute] = tf.add_n(terms)
        return combined

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        stock_call = stock_layer_class(cls).call

        # Keras reads `call`'s signature to route shapes to `build` and to
        # decide whether to pass `training`/`mask`: expose the stock one.
        @functools.wraps(stock_call)
        def call(self, *args, **kwargs):
            return SubspaceLayer._subspace_call(self, *args, **kwargs)

        call.__signature__ = inspect.signature(stock_call)
        cls.call = call

    def _subspace_call(self, *args, **kwargs):
        # Substitute θ for the stock variables only for the duration of the
        # stock call; object.__setattr__ bypasses Keras' variable tracking.
        saved = {attribute: vars(self)[attribute] for attribute, _ in self._subspace_groups}
        try:
            for attribute, theta in self.combined_weights().items():
                object.__setattr__(self, attribute, theta)
            return super(SubspaceLayer, self).call(*args, **kwargs)
        finally:
            for attribute, variable in saved.items():
                object.__setattr__(self, attribute, variable)

    # -- serialization ------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update({"num_points": self.num_points, "init": self.init})
        if self.frozen_points:
            config["frozen_points"] = list(self.frozen_points)
        return config

    def save_own_variables(self, store):
        # Some stock layers (Dense, Conv, Embedding) save only their single
        # kernel; save every copy and the coefficients instead.
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} cannot be quantized; bake the model at an α first "
            "(`model.bake(alpha)`) and quantize the stock model."
        )


def check_point_indices(indices, num_points, name):
    """`indices` as a sorted tuple of distinct ints in [0, num_points)."""
    return checks.point_indices(indices, num_points, f"`{name}`")


def stock_layer_class(layer):
    """The stock Keras class a subspace layer (or class) extends, e.g. Dense."""
    klass = layer if isinstance(layer, type) else type(layer)
    for klass in klass.__mro__:
        if klass is not SubspaceLayer and not issubclass(klass, SubspaceLayer):
            return klass
    raise TypeError(f"{type(layer).__name__} has no stock Keras base class.")
