"""The model-level sampler: which point of the subspace each training step uses.

Every draw is a stateless function of (seed, step), where `step` is the
optimizer's iteration counter. That makes the sequence

- reproducible from `seed` (and resumable: the step is saved with the optimizer),
- identical on every replica under `tf.distribute` (all replicas see the same
  step), unlike `tf.random.uniform`, which draws per replica,
- fresh at every step inside a compiled `train_step` (unlike `np.random`, which
  is frozen into the graph when traced).

Example:

>>> import tfsubspace as ts
>>> sampler = ts.Sampler(ts.Line(), num_layers=3, sampling="per_layer", seed=0)
>>> sampler.coefficients(step=0).shape
TensorShape([3, 2])
"""

import tensorflow as tf

from tfsubspace import checks, counter_random
from tfsubspace.shapes import get_shape

SAMPLINGS = ("per_batch", "per_layer")

# Separate random streams for α and for the penalty's pair (j, k).
_ALPHA_STREAM = 0
_PAIR_STREAM = 1


def check_seed(seed):
    """None → a fresh random seed (then fixed); an int is kept; else ValueError."""
    return checks.seed(seed, allow_none=True)


def check_sampling(sampling):
    if sampling not in SAMPLINGS:
        raise ValueError(f"`sampling` must be one of {SAMPLINGS}, got {sampling!r}.")
    return sampling


class Sampler:
    """Draws subspace coefficients for every subspace layer at a training step.

    Args:
        shape: the subspace geometry (ts.Line(), ts.Simplex(m), ...).
        num_layers: how many subspace layers receive coefficients.
        sampling: "per_batch" (one α for all layers, Algorithm 1 of paper 001)
            or "per_layer" (an independent α for every layer, its layerwise
            variant).
        seed: an int; None picks one at random (then fixed, see `self.seed`).
    """

    def __init__(self, shape, num_layers, sampling="per_batch", seed=None):
        self.shape = get_shape(shape)
        self.num_layers = checks.integer(num_layers, "`num_layers`", minimum=1)
        self.sampling = check_sampling(sampling)
        self.seed = check_seed(seed)

    def _stateless_seed(self, step, stream):
        step = tf.cast(step, tf.int64)
        # Fold the stream into the step so the two streams never share a seed.
        counter = step * 2 + stream
        return tf.stack([tf.constant(self.seed, tf.int64), counter])

    def alphas(self, step):
        """α for each layer: [num_layers] (curves) or [num_layers, m] (simplexes)."""
        seed = self._stateless_seed(step, _ALPHA_STREAM)
        if self.sampling == "per_layer":
            return self.shape.sample(seed, num=self.num_layers)
        alpha = self.shape.sample(seed)
        return tf.stack([alpha] * self.num_layers)

    def coefficients(self, step):
        """Float32 [num_layers, m]: row i is written into subspace layer i."""
        return self.shape.coefficients(self.alphas(step))

    def pair(self, step):
        """A random pair (j, k), j ≠ k, of endpoint indices for the cos² penalty."""
        m = self.shape.num_points
        if m == 2:
            # A line has one pair: no draw, and ~45 fewer ops in the train graph.
            return tf.constant(0, tf.int64), tf.constant(1, tf.int64)
        seed = self._stateless_seed(step, _PAIR_STREAM)
        draws = counter_random.integers([2], seed, 2**30)
        first = draws[0] % m
        second = (first + 1 + draws[1] % (m - 1)) % m
        return first, second
