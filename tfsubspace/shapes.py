"""Geometry of a subspace: how m endpoint weights combine into one point θ.

A shape maps a point α of its domain Λ to coefficients c(α) ∈ R^m with
θ = Σ_i c_i(α)·ω_i (papers 001 §3 and 003 §3.2/A.3). Control points are ordered
start, bends..., end for the one-dimensional shapes.

Example:

>>> import tfsubspace as ts
>>> ts.Line().coefficients(0.25).numpy().tolist()
[0.75, 0.25]
>>> ts.Bezier(num_bends=1).coefficients(0.5).numpy().tolist()
[0.25, 0.5, 0.25]
>>> ts.Simplex(num_vertices=3).center
[0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
"""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from tfsubspace import counter_random

# Tolerance for "α is on the probability simplex" with float32 inputs.
_SIMPLEX_ATOL = 1e-5


def _as_stateless_seed(seed):
    """An int or a [2] integer tensor → a [2] int32 seed for stateless ops."""
    if isinstance(seed, numbers.Integral):
        return tf.constant([int(seed) % (2**31 - 1), 0], dtype=tf.int32)
    return tf.cast(tf.reshape(seed, [2]), tf.int32)


def _holds_bool(alpha):
    """True if α is or contains a bool: True is not 1.0 here, it is a mistaken argument."""
    if isinstance(alpha, (bool, np.bool_)):
        return True
    if isinstance(alpha, np.ndarray):
        return alpha.dtype == np.bool_
    if isinstance(alpha, (list, tuple)):
        return any(_holds_bool(a) for a in alpha)
    return False


def _alpha_array(shape, alpha, name="alpha"):
    """A concrete α as float64 numpy; a non-numeric α is a one-line ValueError."""
    try:
        if alpha is None or isinstance(alpha, (str, bytes)):
            raise TypeError
        if isinstance(alpha, (tf.Tensor, tf.Variable)):
            alpha = alpha.numpy()  # eager only: callers skip symbolic tensors
        if _holds_bool(alpha):
            raise TypeError
        return np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        allowed = (
            "a number in [0, 1]"
            if shape.alpha_rank == 0
            else f"a vector of {shape.num_points} non-negative weights summing to 1"
        )
        raise ValueError(f"`{name}` for {shape!r} must be {allowed}, got {alpha!r}.") from None


class Shape:
    """Base class of subspace geometries (do not instantiate)."""

    #: Dimension of α passed to `coefficients` (0: a scalar, 1: a vector).
    alpha_rank = 0

    @property
    def num_points(self):
        """m, the number of endpoint/control-point weight copies."""
        raise NotImplementedError

    @property
    def center(self):
        """The midpoint of the domain, used for inference by default."""
        raise NotImplementedError

    def coefficients(self, alpha):
        """Float32 tensor [m] (or [..., m] for a batch of α): θ = Σ c_i ω_i."""
        raise NotImplementedError

    def sample(self, seed, num=None):
        """α drawn uniformly on the domain from a stateless `seed`.

        `num=None` draws one α; an int draws a batch of `num` independent α.
        """
        raise NotImplementedError

    def validate_alpha(self, alpha, name="alpha"):
        """Checks a concrete α and returns it as numpy; raises ValueError."""
        raise NotImplementedError

    def assert_alpha(self, alpha):
        """α as a float32 tensor after in-graph checks that it lies in the domain.

        For a server taking α per request: a bad α is an InvalidArgumentError
        at serve time, with the same rule as `validate_alpha`.
        """
        raise NotImplementedError

    def _validate_points(self, alpha):
        """Validates one α or a batch [..., α] of concrete points."""
        if isinstance(alpha, (tf.Tensor, tf.Variable)) and not tf.executing_eagerly():
            return  # symbolic (inside a traced step): only the library's own samples get here
        value = _alpha_array(self, alpha)
        if value.ndim <= self.alpha_rank:
            self.validate_alpha(value)
            return
        for point in value.reshape((-1,) + value.shape[value.ndim - self.alpha_rank :]):
            self.validate_alpha(point)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _Curve(Shape):
    """A one-dimensional shape: α is a scalar in [0, 1]."""

    alpha_rank = 0

    @property
    def center(self):
        return 0.5

    def validate_alpha(self, alpha, name="alpha"):
        if isinstance(alpha, (tf.Tensor, tf.Variable)) and not tf.executing_eagerly():
            return alpha
        value = _alpha_array(self, alpha, name)
        if value.ndim != 0:
            raise ValueError(
                f"`{name}` for {self!r} must be a scalar in [0, 1], got shape {value.shape}."
            )
        if not np.isfinite(value) or value < 0.0 or value > 1.0:
            raise ValueError(f"`{name}` for {self!r} must be in [0, 1], got {float(value)}.")
        return value

    def assert_alpha(self, alpha):
        alpha = tf.convert_to_tensor(alpha, tf.float32)
        # NaN fails both comparisons, so it is refused too.
        inside = tf.logical_and(alpha >= 0.0, alpha <= 1.0)
        check = tf.debugging.Assert(inside, [f"`alpha` for {self!r} must be in [0, 1], got", alpha])
        with tf.control_dependencies([check]):
            return tf.identity(alpha)

    def sample(self, seed, num=None):
        shape = [] if num is None else [num]
        # Counter-based: the same α under XLA and on every device (counter_random).
        return counter_random.uniform(shape, _as_stateless_seed(seed))

    def coefficients(self, alpha):
        self._validate_points(alpha)
        alpha = tf.cast(alpha, tf.float32)
        return self._curve_coefficients(alpha[..., None])

    def _curve_coefficients(self, t):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="tfsubspace")
class Line(_Curve):
    """The segment θ = (1 − α)·ω_0 + α·ω_1, α ∈ [0, 1] (paper 001 §3).

    Example:

    >>> import tfsubspace as ts
    >>> line = ts.Line()
    >>> line.num_points, line.center
    (2, 0.5)
    >>> line.coefficients(0.0).numpy().tolist()
    [1.0, 0.0]
    """

    @property
    def num_points(self):
        return 2

    def _curve_coefficients(self, t):
        return tf.concat([1.0 - t, t], axis=-1)


def _check_num_bends(num_bends):
    if isinstance(num_bends, bool) or not isinstance(num_bends, numbers.Integral) or num_bends < 0:
        raise ValueError(f"`num_bends` must be an integer >= 0, got {num_bends!r}.")
    return int(num_bends)


@keras.saving.register_keras_serializable(package="tfsubspace")
class Bezier(_Curve):
    """Bezier curve with n bends: θ = Σ_i C(n+1, i) t^i (1−t)^(n+1−i) ω_i.

    Control points are ordered start ω_0, bends ω_1..ω_n, end ω_{n+1}
    (paper 003 A.3; `num_bends=1` is the quadratic curve of paper 001 §3).

    Example:

    >>> import tfsubspace as ts
    >>> ts.Bezier(num_bends=2).coefficients(0.5).numpy().tolist()
    [0.125, 0.375, 0.375, 0.125]
    """

    def __init__(self, num_bends=1):
        self.num_bends = _check_num_bends(num_bends)
        degree = self.num_bends + 1
        # numpy, not tf.constant: a Shape made at import time (connect.DEFAULT_SHAPE) must not
        # initialise TensorFlow's devices before the binary picks its strategy (distribution.py).
        self._binomials = np.array([math.comb(degree, i) for i in range(degree + 1)], dtype=np.float32)
        self._powers = np.arange(degree + 1, dtype=np.float32)

    @property
    def num_points(self):
        return self.num_bends + 2

    def _curve_coefficients(self, t):
        degree = float(self.num_bends + 1)
        # tf.pow(0., 0.) == 1, which is what the Bernstein basis needs at t ∈ {0, 1}.
        return self._binomials * tf.pow(t, self._powers) * tf.pow(1.0 - t, degree - self._powers)

    def get_config(self):
        return {"num_bends": self.num_bends}


@keras.saving.register_keras_serializable(package="tfsubspace")
class PolyChain(_Curve):
    """Polygonal chain through ω_0, bends ω_1..ω_n, ω_{n+1} (paper 003 A.3).

    On [i/(n+1), (i+1)/(n+1)] the point moves linearly from ω_i to ω_{i+1};
    equivalently c_j(t) = max(0, 1 − |(n+1)·t − j|).

    Example:

    >>> import tfsubspace as ts
    >>> ts.PolyChain(num_bends=1).coefficients(0.25).numpy().tolist()
    [0.5, 0.5, 0.0]
    """

    def __init__(self, num_bends=1):
        self.num_bends = _check_num_bends(num_bends)
        self._knots = tf.range(self.num_bends + 2, dtype=tf.float32)

    @property
    def num_points(self):
        return self.num_bends + 2

    def _curve_coefficients(self, t):
        scaled = t * float(self.num_bends + 1)
        return tf.maximum(0.0, 1.0 - tf.abs(scaled - self._knots))

    def get_config(self):
        return {"num_bends": self.num_bends}


@keras.saving.register_keras_serializable(package="tfsubspace")
class Simplex(Shape):
    """Convex hull of m vertices: θ = Σ_i α_i ω_i, α on the probability simplex.

    Sampling is uniform on the simplex, Dirichlet(1), by normalising m
    exponential draws (paper 000 §D.1).

    Example:

    >>> import tfsubspace as ts
    >>> simplex = ts.Simplex(num_vertices=3)
    >>> [round(float(c), 6) for c in simplex.coefficients([0.2, 0.3, 0.5])]
    [0.2, 0.3, 0.5]
    >>> float(simplex.sample(seed=0).numpy().sum())  # doctest: +ELLIPSIS
    1.0...
    """

    alpha_rank = 1

    def __init__(self, num_vertices=3):
        if (
            isinstance(num_vertices, bool)
            or not isinstance(num_vertices, numbers.Integral)
            or num_vertices < 2
        ):
            raise ValueError(f"`num_vertices` must be an integer >= 2, got {num_vertices!r}.")
        self.num_vertices = int(num_vertices)

    @property
    def num_points(self):
        return self.num_vertices

    @property
    def center(self):
        return [1.0 / self.num_vertices] * self.num_vertices

    def validate_alpha(self, alpha, name="alpha"):
        if isinstance(alpha, (tf.Tensor, tf.Variable)) and not tf.executing_eagerly():
            return alpha
        value = _alpha_array(self, alpha, name)
        m = self.num_vertices
        if value.shape != (m,):
            raise ValueError(
                f"`{name}` for {self!r} must be a vector of {m} non-negative weights summing "
                f"to 1, got shape {value.shape}."
            )
        if not np.all(np.isfinite(value)) or np.any(value < -_SIMPLEX_ATOL):
            raise ValueError(
                f"`{name}` for {self!r} must have finite non-negative entries, got {value.tolist()}."
            )
        if abs(value.sum() - 1.0) > _SIMPLEX_ATOL * m:
            raise ValueError(
                f"`{name}` for {self!r} must sum to 1 (a point of the probability simplex), "
                f"got sum {value.sum():.6g}."
            )
        return value

    def assert_alpha(self, alpha):
        alpha = tf.convert_to_tensor(alpha, tf.float32)
        m = self.num_vertices
        on_simplex = tf.logical_and(
            tf.reduce_all(alpha >= -_SIMPLEX_ATOL),
            tf.abs(tf.reduce_sum(alpha) - 1.0) <= _SIMPLEX_ATOL * m,
        )
        check = tf.debugging.Assert(
            on_simplex,
            [f"`alpha` for {self!r} must be {m} non-negative weights summing to 1, got", alpha],
        )
        with tf.control_dependencies([check]):
            return tf.identity(alpha)

    def coefficients(self, alpha):
        self._validate_points(alpha)
        return tf.cast(alpha, tf.float32)

    def sample(self, seed, num=None):
        # Dirichlet(1) = the spacings of m - 1 sorted uniforms on [0, 1]: only
        # sorting and subtraction, so the draw is bit-identical under XLA
        # (a log, as in the exponential trick, differs there in the last bit).
        m = self.num_vertices
        shape = [m - 1] if num is None else [num, m - 1]
        cuts = tf.sort(counter_random.uniform(shape, _as_stateless_seed(seed)), axis=-1)
        zeros = tf.zeros_like(cuts[..., :1])
        edges = tf.concat([zeros, cuts, zeros + 1.0], axis=-1)
        return edges[..., 1:] - edges[..., :-1]

    def get_config(self):
        return {"num_vertices": self.num_vertices}


SHAPES = {"line": Line, "bezier": Bezier, "polychain": PolyChain, "simplex": Simplex}


def get_shape(identifier):
    """A Shape from an instance, a config dict, or a name such as "line".

    Example:

    >>> get_shape("bezier")
    Bezier(num_bends=1)
    """
    if isinstance(identifier, Shape):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier.lower() in SHAPES:
        return SHAPES[identifier.lower()]()
    raise ValueError(
        f"`shape` must be a tfsubspace shape (ts.Line(), ts.Bezier(n), ts.PolyChain(n), "
        f"ts.Simplex(m)) or one of {sorted(SHAPES)}, got {identifier!r}."
    )
