"""`Subspace`: any Keras layer with m copies of its trainable weights.

The one generic mechanism of tfsubspace (paper 001 §3, Algorithm 1). The
wrapper keeps, for every trainable weight w of the inner layer, the m copies
ω_0..ω_{m-1} stacked in one `(m, *w.shape)` variable, and a small
non-trainable `coefficients` variable c ∈ R^m. In `call` it forms
θ_w = tensordot(c, ω_w) and runs the inner layer's own `__call__` inside a
`keras.StatelessScope` that maps each w to θ_w: the stock op, its masks,
`training` handling and numerics are reused unchanged, for any layer (Dense,
attention, recurrent, custom, a whole subclassed model). The gradient of copy
i is therefore c_i·∂L/∂θ (Eq. 3). State the inner layer updates (batch-norm
statistics, dropout seeds) is written back after the call.

The inner layer's own trainable variables are hidden from the wrapper's
`weights`/`variables` (the optimizer never sees them); they only serve as the
keys of the stateless mapping.

Frozen copies (`freeze_points`) live in a second, non-trainable stacked
variable, so neither momentum nor weight decay can touch them.

Mixed precision: the wrapper takes its dtype policy from the inner layer. The
copies and `coefficients` are float32 variables created with
`autocast=False`, so θ is formed in float32 even inside the call's
`AutocastScope`; the inner layer then reads θ exactly as a stock layer reads
its own float32 variable (a kernel is cast to the compute dtype, batch-norm
gamma/beta stay float32). The wrapped layer at θ gives the bits of the stock
layer holding θ (tests/test_mixed_precision.py).

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> layer = ts.layers.Subspace(keras.layers.Dense(4), num_points=3)
>>> tuple(layer(np.ones((2, 5), "float32")).shape)
(2, 4)
>>> [(w.name, tuple(w.shape)) for w in layer.trainable_weights]
[('kernel_copies', (3, 5, 4)), ('bias_copies', (3, 4))]
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfsubspace.layers.copies import WeightCopy

INITS = ("independent", "point")

# Large odd stride so per-copy seeds of a seeded initializer never collide with
# the seeds of neighbouring layers that users typically number 0, 1, 2, ...
_SEED_STRIDE = 1_000_003

NORMALIZATION_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization")
    if hasattr(keras.layers, name)
)


def check_point_indices(indices, num_points, name):
    """`indices` as a sorted tuple of distinct ints in [0, num_points)."""
    try:
        values = [int(index) for index in indices]
    except (TypeError, ValueError):
        values = None
    if values is None or any(isinstance(i, bool) for i in indices) or any(
        not 0 <= index < num_points for index in values
    ):
        raise ValueError(
            f"`{name}` must be a list of point indices in [0, {num_points - 1}], got {indices!r}."
        )
    return tuple(sorted(set(values)))


def sublayers(layer):
    """`layer` and every layer inside it, depth first (Keras' own walk)."""
    return list(layer._flatten_layers(include_self=True, recursive=True))


def _reseeded(config, index):
    """`config` with every seeded initializer's seed moved to seed + index·stride.

    Unseeded initializers pick a fresh seed when rebuilt from the config, so a
    clone draws independent values; seeded ones would draw the same values.
    """
    if isinstance(config, dict):
        out = {key: _reseeded(value, index) for key, value in config.items()}
        inner = out.get("config")
        if str(out.get("module", "")).startswith("keras.initializers") and isinstance(inner, dict):
            seed = inner.get("seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                out["config"] = {**inner, "seed": seed + index * _SEED_STRIDE}
        return out
    if isinstance(config, list):
        return [_reseeded(value, index) for value in config]
    return config


class _PerCopy(keras.constraints.Constraint):
    """Applies a weight's constraint to each copy of its stack separately."""

    def __init__(self, constraint):
        self.constraint = constraint

    def __call__(self, w):
        return ops.stack([self.constraint(w[i]) for i in range(w.shape[0])])


class _Stack:
    """The copies of one inner weight: free (trainable) and frozen rows.

    A plain object, so Keras' tracker (locked after build) never sees these
    variables and `freeze_points` can replace them; the layer lists them in
    `weights`/`variables` and saves them itself.
    """

    def __init__(self, key, inner, is_normalization):
        self.key = key
        self.inner = inner  # the inner layer's own variable: the stateless key
        self.is_normalization = is_normalization
        self.free = None
        self.frozen = None
        self.free_rows = ()
        self.frozen_rows = ()
        self.regularizer = None
        self.constraint = None

    def copies_variables(self):
        return [v for v in (self.free, self.frozen) if v is not None]

    def full(self):
        """All m copies in index order, (m, ...)."""
        parts = [(rows, v) for rows, v in ((self.free_rows, self.free), (self.frozen_rows, self.frozen)) if rows]
        if len(parts) == 1:
            return ops.convert_to_tensor(parts[0][1])
        order = np.argsort(np.concatenate([np.asarray(rows) for rows, _ in parts]))
        return ops.take(ops.concatenate([ops.convert_to_tensor(v) for _, v in parts], axis=0), order, axis=0)

    def theta(self, coefficients):
        total = None
        for rows, variable in ((self.free_rows, self.free), (self.frozen_rows, self.frozen)):
            if not rows:
                continue
            c = coefficients if len(rows) == coefficients.shape[0] else ops.take(coefficients, list(rows))
            c = ops.cast(c, variable.dtype)
            # One matmul [1, n] x [n, size]: fewer graph ops than tensordot.
            flat = ops.reshape(variable, (len(rows), -1))
            term = ops.reshape(ops.matmul(ops.expand_dims(c, 0), flat), variable.shape[1:])
            total = term if total is None else total + term
        return total

    def copy(self, index):
        if index in self.free_rows:
            return WeightCopy(self.free, self.free_rows.index(index), index)
        return WeightCopy(self.frozen, self.frozen_rows.index(index), index)


@keras.saving.register_keras_serializable(package="tfsubspace")
class Subspace(keras.layers.Layer):
    """Wraps any Keras layer so its trainable weights lie in a subspace.

    Args:
        layer: the layer to wrap (built or not): a stock layer, a custom layer
            with its own `add_weight`, or a whole (subclassed) model.
        num_points: m, the number of weight copies (the shape's `num_points`).
        init: "independent" draws every copy with the layer's own initializers
            (copy 0 is what the stock layer draws); "point" gives all copies
            the inner layer's value (paper 000 §E).
        frozen_points: indices of copies that training must not change (the
            fixed endpoints of a curve between trained models, paper 003 §3;
            the existing vertices while SPRO grows a simplex, paper 004 §3).
        **kwargs: Layer arguments (`name` defaults to the inner layer's).

    Example:

    >>> import numpy as np, keras, tfsubspace as ts
    >>> attention = ts.layers.Subspace(keras.layers.MultiHeadAttention(2, 4), num_points=2)
    >>> x = np.ones((1, 3, 8), "float32")
    >>> tuple(attention(x, x).shape)
    (1, 3, 8)
    >>> attention.set_coefficients([1.0, 0.0])  # θ = copy 0
    """

    def __init__(self, layer, num_points=2, init="independent", frozen_points=(), **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"`layer` must be a keras.layers.Layer, got {type(layer).__name__}.")
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"`num_points` must be an integer >= 1, got {num_points!r}.")
        if init not in INITS:
            raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")
        frozen_points = check_point_indices(frozen_points, num_points, "frozen_points")
        kwargs.setdefault("name", layer.name)
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(**kwargs)
        self.layer = layer
        self.num_points = num_points
        self.init = init
        self.frozen_points = frozen_points
        self.supports_masking = layer.supports_masking
        # Created now (not in build) so a model can be put at a point before
        # its first call.
        self.coefficients = self.add_weight(
            name="coefficients",
            shape=(num_points,),
            initializer=keras.initializers.Constant(1.0 / num_points),
            trainable=False,
            # Written inside train_step; every replica writes the same value.
            aggregation="only_first_replica",
            # Read in float32 under a mixed policy too (see "Mixed precision").
            autocast=False,
        )
        self._stacks = []
        self._strategy = None
        # A layer can be `built` with no weights yet (it makes its sublayers'
        # weights in its first call, as keras-cv's squeeze-excite does after
        # `build_from_config` on load): then the first call makes the copies.
        if layer.built and layer.trainable_weights:
            self._create_copies(None, None)

    # -- building -----------------------------------------------------------

    def __call__(self, *args, **kwargs):
        # The first call builds the inner layer through its own `__call__`, so
        # its own shape routing applies (one input, query/value/key, ...), and
        # then makes the copies; the wrapper itself needs no `build`.
        if not self._stacks:
            self.layer(*args, **kwargs)
            self._create_copies(args, kwargs)
        return super().__call__(*args, **kwargs)

    def _create_copies(self, args, kwargs):
        weights = list(self.layer.trainable_weights)
        if not weights:
            raise ValueError(
                f"`layer` {self.layer.name!r} ({type(self.layer).__name__}) has no trainable weights "
                "to place in a subspace."
            )
        clones = []
        if self.init == "independent" and self.num_points > 1:
            config = self.layer.get_config()
            build_config = self.layer.get_build_config()
            for index in range(1, self.num_points):
                clone = type(self.layer).from_config(_reseeded(config, index))
                if args is not None:
                    clone(*args, **kwargs)
                elif build_config is not None:
                    clone.build_from_config(build_config)
                else:
                    raise ValueError(
                        f"`layer` {self.layer.name!r} was built without a build config; pass it unbuilt "
                        "or use init='point'."
                    )
                clones.append(clone.trainable_weights)
        owners = sublayers(self.layer)
        keys = []
        for position, weight in enumerate(weights):
            key = self._key(weight, keys)
            keys.append(key)
            # The innermost layer holding the weight says what kind of weight it is.
            owner = min((l for l in owners if any(w is weight for w in l.weights)), key=lambda l: len(l.weights))
            stack = _Stack(key, weight, isinstance(owner, NORMALIZATION_LAYERS))
            rows = [weight] + [clone[position] for clone in clones]

            def initial(rows=rows):
                # Eager values: the wrapper may be building inside a scratch graph.
                with tf.init_scope():
                    values = [np.asarray(r.numpy()) for r in rows]
                return np.stack(values + [values[0]] * (self.num_points - len(values)))

            self._allocate(stack, initial, weight)
            self._stacks.append(stack)
        self._strategy = tf.distribute.get_strategy()

    def _key(self, weight, taken):
        # The weight's path below the inner layer: "kernel", "query/kernel", ...
        parts = weight.path.split("/")
        key = "/".join(parts[parts.index(self.layer.name) + 1:]) if self.layer.name in parts[:-1] else weight.name
        base, n = key, 1
        while key in taken:
            key, n = f"{base}_{n}", n + 1
        return key

    def _allocate(self, stack, initial, weight=None):
        """(Re)creates the stack's variables from `initial()` -> (m, ...) values."""
        m = self.num_points
        source = stack.inner
        shape = (m,) + tuple(stack.inner.shape)
        if weight is not None:
            regularizer, constraint = weight.regularizer, weight.constraint
        else:
            regularizer, constraint = stack.regularizer, stack.constraint
        if weight is not None:
            # The copies carry the regularizer now; the hidden stock variable must not.
            weight.regularizer = None
            if constraint is not None:
                constraint = _PerCopy(constraint)
                weight.constraint = None
        frozen = tuple(i for i in range(m) if i in self.frozen_points)
        free = tuple(i for i in range(m) if i not in self.frozen_points)
        name = stack.key.replace("/", "_")
        variables = {}
        for kind, rows in (("free", free), ("frozen", frozen)):
            if not rows:
                variables[kind] = None
                continue
            suffix = "copies" if kind == "free" and not frozen else f"{kind}_copies"

            def init(shape_, dtype=None, rows=rows):
                return ops.cast(np.asarray(initial())[list(rows)], dtype)

            variables[kind] = keras.Variable(
                initializer=init,
                shape=(len(rows),) + shape[1:],
                dtype=source.dtype,
                trainable=kind == "free",
                name=f"{name}_{suffix}",
                # Storage, not an operand: θ is formed from the float32 copies
                # and the inner layer casts θ to its compute dtype itself.
                autocast=False,
            )
        stack.free, stack.frozen = variables["free"], variables["frozen"]
        stack.free_rows, stack.frozen_rows = free, frozen
        stack.regularizer, stack.constraint = regularizer, constraint
        if stack.free is not None:
            stack.free.regularizer = regularizer
            stack.free.constraint = constraint

    # -- the weights Keras sees ---------------------------------------------

    def _hidden(self):
        return {id(stack.inner) for stack in self._stacks}

    @property
    def weights(self):
        hidden = self._hidden()
        own = [v for v in super().weights if id(v) not in hidden]
        return own[:1] + [v for stack in self._stacks for v in stack.copies_variables()] + own[1:]

    @property
    def variables(self):
        hidden = self._hidden()
        own = [v for v in super().variables if id(v) not in hidden]
        return own[:1] + [v for stack in self._stacks for v in stack.copies_variables()] + own[1:]

    # -- the subspace -------------------------------------------------------

    @property
    def is_normalization(self):
        """True when every subspace weight belongs to a normalization layer."""
        return bool(self._stacks) and all(stack.is_normalization for stack in self._stacks)

    @property
    def weight_is_normalization(self):
        """{key: whether that weight belongs to a normalization layer}."""
        return {stack.key: stack.is_normalization for stack in self._stacks}

    @property
    def subspace_weights(self):
        """{key: [ω_0, ..., ω_{m-1}]} (`WeightCopy` views), in the inner layer's weight order."""
        return {stack.key: [stack.copy(i) for i in range(self.num_points)] for stack in self._stacks}

    def stacked_weights(self, include_normalization=True):
        """[(m, ...) tensor of all copies] per weight, normalization ones optional."""
        return [s.full() for s in self._stacks if include_normalization or not s.is_normalization]

    @property
    def stock_weights(self):
        """The inner layer's own trainable variables, in the order of `subspace_weights`."""
        return [stack.inner for stack in self._stacks]

    def freeze_points(self, indices):
        """Makes copies `indices` non-trainable (and every other copy trainable).

        Frozen copies move to a non-trainable variable, so neither the
        optimizer nor weight decay touches them; θ still uses them with their
        coefficient. Call before the first training step: Keras' optimizer
        builds its slots from the trainable variables it sees then.
        """
        indices = check_point_indices(indices, self.num_points, "indices")
        if indices == self.frozen_points:
            return
        self.frozen_points = indices
        strategy = self._strategy or tf.distribute.get_strategy()
        with strategy.scope():
            for stack in self._stacks:
                values = np.asarray(ops.convert_to_numpy(stack.full()))
                self._allocate(stack, lambda values=values: values)

    def set_coefficients(self, coefficients):
        """Writes c ∈ R^m (e.g. `shape.coefficients(alpha)`) used by `call`."""
        self.coefficients.assign(ops.cast(ops.reshape(coefficients, (self.num_points,)), "float32"))

    def combined_weights(self, coefficients=None):
        """{key: θ = Σ_i c_i ω_i}; c defaults to `self.coefficients`."""
        c = ops.convert_to_tensor(self.coefficients if coefficients is None else coefficients)
        c = ops.cast(ops.reshape(c, (self.num_points,)), "float32")
        return {stack.key: stack.theta(c) for stack in self._stacks}

    # -- calling ------------------------------------------------------------

    def call(self, *args, **kwargs):
        c = ops.convert_to_tensor(self.coefficients)
        mapping = [(stack.inner, stack.theta(c)) for stack in self._stacks]
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True, initialize_variables=False) as scope:
            outputs = self.layer(*args, **kwargs)
        for variable in self.layer.non_trainable_variables:
            value = scope.get_current_value(variable)
            if value is not None:
                variable.assign(value)
        for loss in scope.losses:
            self.add_loss(loss)
        return outputs

    def compute_output_spec(self, *args, **kwargs):
        return self.layer.compute_output_spec(*args, **kwargs)

    def compute_output_shape(self, *args, **kwargs):
        return self.layer.compute_output_shape(*args, **kwargs)

    def compute_mask(self, *args, **kwargs):
        return self.layer.compute_mask(*args, **kwargs)

    # -- serialization ------------------------------------------------------

    def get_config(self):
        config = {
            **super().get_config(),
            "layer": keras.saving.serialize_keras_object(self.layer),
            "num_points": self.num_points,
            "init": self.init,
        }
        if self.frozen_points:
            config["frozen_points"] = list(self.frozen_points)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"], custom_objects=custom_objects)
        return cls(**config)

    def save_own_variables(self, store):
        # Every copy in index order, whatever is frozen: files do not depend on it.
        store["coefficients"] = np.asarray(self.coefficients.numpy())
        for index, stack in enumerate(self._stacks):
            store[f"copies_{index}"] = np.asarray(ops.convert_to_numpy(stack.full()))

    def load_own_variables(self, store):
        expected = 1 + len(self._stacks)
        if len(store.keys()) != expected:
            raise ValueError(
                f"Layer {self.name!r} expects {expected} saved arrays (coefficients and one stack per "
                f"weight), the file has {len(store.keys())}; files of tfsubspace < 0.2 do not load."
            )
        self.coefficients.assign(store["coefficients"])
        for index, stack in enumerate(self._stacks):
            values = np.asarray(store[f"copies_{index}"])
            for kind, rows in (("free", stack.free_rows), ("frozen", stack.frozen_rows)):
                if rows:
                    getattr(stack, kind).assign(values[list(rows)])

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} cannot be quantized; bake the model at an α first "
            "(`model.bake(alpha)`) and quantize the stock model."
        )
