"""Counter-based random numbers that are the same on every device, with or without XLA.

TensorFlow's stateless ops do not keep their stream across compile settings:
`tf.random.stateless_uniform` gives other numbers under `jit_compile=True`
even with `alg="philox"` and explicit keys (XLA's Philox is another variant;
measured on TF 2.21). The subspace's α sequence must be a function of
(seed, step) only, so it is drawn here from SplitMix64, a hash made of integer
multiplies, shifts and xors, which every backend computes exactly.

Example:

>>> import tensorflow as tf
>>> from tfsubspace.counter_random import uniform
>>> values = uniform([3], tf.constant([7, 1], tf.int64))
>>> bool(tf.reduce_all((values > 0) & (values < 1)))
True
"""

import tensorflow as tf

_GOLDEN = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB


def _constant(value):
    return tf.constant(value, tf.uint64)


def _mixer():
    """SplitMix64's finalizer, a bijection of uint64 with good avalanche.

    Its five constants are made once per `bits` call, not once per use: the
    train graph holds the sampler's draws, and each op in it costs trace time.
    """
    shift_30, shift_27, shift_31 = _constant(30), _constant(27), _constant(31)
    mix_1, mix_2 = _constant(_MIX_1), _constant(_MIX_2)

    def mix(x):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift_30)) * mix_1
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift_27)) * mix_2
        return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, shift_31))

    return mix


def bits(shape, seed):
    """uint64 hashes of (seed[0], seed[1], position) for every position of `shape`."""
    seed = tf.cast(tf.reshape(seed, [2]), tf.int64)
    mix = _mixer()
    key = mix(tf.bitcast(seed[0], tf.uint64) + _constant(_GOLDEN))
    key = mix(tf.bitwise.bitwise_xor(key, tf.bitcast(seed[1], tf.uint64)))
    size = 1
    for dim in shape:
        size *= int(dim)
    positions = tf.range(1, size + 1, dtype=tf.int64)
    values = mix(key + tf.bitcast(positions, tf.uint64) * _constant(_GOLDEN))
    return tf.reshape(values, shape)


def uniform(shape, seed):
    """float32 uniform in the open interval (0, 1): 24 random bits, centred."""
    top = tf.cast(tf.bitwise.right_shift(bits(shape, seed), _constant(40)), tf.float32)
    return (top + 0.5) * (1.0 / 2**24)


def integers(shape, seed, maxval):
    """int64 uniform in [0, maxval) for maxval <= 2**30 (up to a 2**-30 bias)."""
    top = tf.cast(tf.bitwise.right_shift(bits(shape, seed), _constant(34)), tf.int64)
    return top % maxval
