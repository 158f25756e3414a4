"""`SimplexModel`: a simplex or simplicial complex of weights with a volume reward (paper 004 §3).

Example: see `SimplexModel`.
"""

import keras
import numpy as np
import tensorflow as tf

from tfsubspace import volume
from tfsubspace.connectivity.spro.vertices import check_int, check_non_negative
from tfsubspace.model import SubspaceModel, find_subspace_layers
from tfsubspace.sampler import Sampler, check_seed
from tfsubspace.shapes import Simplex

#: Relative jitter of the training volume reward (see `ts.volume`): a new
#: vertex starts on the others' affine hull, where the exact log-volume is −inf.
DEFAULT_JITTER = 1e-8

# Mixed into the model seed for the stream that picks a simplex of a complex,
# so it never shares a stateless key with the Dirichlet draws.
_CHOICE_SALT = 0x5F3759D


def check_simplexes(simplexes, num_points):
    if simplexes is None:
        return (tuple(range(num_points)),)
    try:
        result = tuple(tuple(int(v) for v in simplex) for simplex in simplexes)
    except (TypeError, ValueError):
        result = None
    if (
        not result
        or any(len(s) < 2 or len(set(s)) != len(s) or not all(0 <= v < num_points for v in s) for s in result)
        or len({len(s) for s in result}) != 1
        or len(set(result)) != len(result)
    ):
        raise ValueError(
            f"`simplexes` must be distinct tuples of the same length >= 2 of distinct vertex indices in "
            f"[0, {num_points - 1}], got {simplexes!r}."
        )
    return result


@keras.saving.register_keras_serializable(package="tfsubspace")
class SimplexModel(SubspaceModel):
    """A simplex or simplicial complex of weights trained with SPRO (paper 004).

    Each training step draws `samples` points uniformly on the complex (from
    `sample_coefficients(optimizer.iterations)`: stateless, the same on every
    replica), runs one forward pass at each, and minimises the MEAN of their
    compiled losses minus `volume_weight` · log V (004 Eq. 1/3). The volume
    term goes through `compute_loss`, divided by the number of replicas, so it
    is counted once under `tf.distribute`. Compiled metrics are measured on the
    last sample's predictions; the logs add `log_volume` (with the jitter).

    Args:
        network: a built Keras model of subspace layers (m copies = vertices).
        shape: `ts.Simplex(m)` or None (inferred from the layers).
        simplexes: tuples of vertex indices, all of one length >= 2; None is
            one simplex of all m vertices.
        samples: S, the points drawn per step (004 uses 5).
        volume_weight: λ_k, the (already normalised) weight of −log V; 0
            trains without the volume reward.
        jitter: relative jitter of the volume reward (`ts.volume`).
        seed: seed of the point sequence; None picks one.
        alpha: inference point over the m vertices; default the centre of the
            first simplex (the centre of all m vertices may lie outside a
            complex).

    Freeze the existing vertices with `freeze_points` before `compile`.

    Example:

    >>> import numpy as np, keras, tfsubspace as ts
    >>> from tfsubspace.connectivity import spro
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> network = ts.convert(base, ts.Simplex(3), seed=0).network
    >>> model = spro.SimplexModel(network, samples=2, volume_weight=0.01, seed=0)
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> sorted(model.fit(x, y, epochs=1, verbose=0).history)
    ['log_volume', 'loss']
    """

    def __init__(
        self,
        network,
        shape=None,
        simplexes=None,
        samples=5,
        volume_weight=0.0,
        jitter=DEFAULT_JITTER,
        seed=None,
        alpha=None,
        **kwargs,
    ):
        layers = find_subspace_layers(network) if isinstance(network, keras.Model) else []
        num_points = layers[0].num_points if layers else 2
        if shape is None:
            shape = Simplex(num_points)
        if not isinstance(shape, Simplex):
            raise ValueError(f"`shape` must be None or a ts.Simplex, got {shape!r}.")
        self.simplexes = check_simplexes(simplexes, shape.num_points)
        self.samples = check_int(samples, "samples", 1)
        self.volume_weight = check_non_negative(volume_weight, "volume_weight")
        self.jitter = check_non_negative(jitter, "jitter")
        if alpha is None:
            alpha = np.zeros(shape.num_points)
            alpha[list(self.simplexes[0])] = 1.0 / len(self.simplexes[0])
            alpha = alpha.tolist()
        super().__init__(network, shape, beta=0.0, sampling="per_batch", seed=seed, alpha=alpha, **kwargs)
        size = len(self.simplexes[0])
        # One independent Dirichlet(1) draw per sample: the stock sampler with
        # "per_layer" sampling over S rows is exactly that.
        self.point_sampler = Sampler(Simplex(size), num_layers=self.samples, sampling="per_layer", seed=self.seed)
        self._simplex_table = tf.constant(self.simplexes, tf.int32)
        object.__setattr__(self, "_log_volume_tracker", keras.metrics.Mean(name="log_volume"))

    # -- points -------------------------------------------------------------

    def _embed(self, alphas, choices):
        """[S, size] barycentric α on simplexes `choices` [S] → [S, m] coefficients."""
        vertices = tf.gather(self._simplex_table, choices)
        one_hot = tf.one_hot(vertices, self.subspace_shape.num_points, dtype=alphas.dtype)
        return tf.einsum("sv,svm->sm", alphas, one_hot)

    def _choices(self, seed, num):
        if len(self.simplexes) == 1:
            return tf.zeros([num], tf.int32)
        return tf.random.stateless_uniform([num], seed, minval=0, maxval=len(self.simplexes), dtype=tf.int32)

    def sample_coefficients(self, step):
        """Float32 [samples, m]: the points the training step `step` uses.

        Example: `model.sample_coefficients(model.optimizer.iterations)`.
        """
        step = tf.cast(step, tf.int64)
        choice_seed = tf.stack([tf.constant((self.seed ^ _CHOICE_SALT) % (2**31 - 1), tf.int64), step])
        alphas = self.point_sampler.alphas(step)
        return tf.cast(self._embed(alphas, self._choices(choice_seed, self.samples)), tf.float32)

    def sample_points(self, num, seed=0):
        """`num` points drawn uniformly on the complex, as lists over the m vertices.

        Example: `model.sample_points(5, seed=0)`; each point is a valid
        `set_alpha` argument.
        """
        num = check_int(num, "num", 1)
        seed = check_seed(seed)
        alphas = Simplex(len(self.simplexes[0])).sample(seed, num=num)
        choice_seed = tf.constant([(seed ^ _CHOICE_SALT) % (2**31 - 1), 1], tf.int64)
        points = self._embed(tf.cast(alphas, tf.float64), self._choices(choice_seed, num)).numpy()
        return (points / points.sum(axis=1, keepdims=True)).tolist()

    def vertex_point(self, index):
        """The one-hot point of vertex `index` (e.g. 0: the base model)."""
        index = check_int(index, "index", 0)
        if index >= self.subspace_shape.num_points:
            raise ValueError(f"`index` must be in [0, {self.subspace_shape.num_points - 1}], got {index}.")
        return np.eye(self.subspace_shape.num_points)[index].tolist()

    def log_volume(self, jitter=None):
        """log of the complex's volume Σ_j V(simplex j), float64 (`jitter`: default `self.jitter`)."""
        return volume.subspace_log_volume(
            self.subspace_layers, self.simplexes, jitter=self.jitter if jitter is None else jitter
        )

    # -- Keras hooks --------------------------------------------------------

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        coefficients = self.sample_coefficients(self.optimizer.iterations)
        with tf.GradientTape() as tape:
            losses = []
            for index in range(self.samples):
                self.write_coefficients(coefficients[index])
                y_pred = self(x, training=True)
                losses.append(self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True))
            # The volume term is the same in every sample's loss, so the mean
            # is mean data loss − λ log V.
            loss = tf.add_n(losses) / float(self.samples)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            batch_size = tf.shape(tf.nest.flatten(x)[0])[0]
            self._loss_tracker.update_state(loss * float(replicas), sample_weight=batch_size)
            scaled = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        logs["log_volume"] = self._log_volume_tracker.result()
        return logs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = keras.Model.compute_loss(self, x, y, y_pred, sample_weight, training=training)
        if not training:
            return loss
        log_volume = self.log_volume()
        self._log_volume_tracker.update_state(log_volume)
        if self.volume_weight > 0:
            # Divided by the number of replicas by Keras: counted once overall.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync  # as Keras scales its extra losses
            loss = loss + tf.cast(-self.volume_weight * log_volume / replicas, loss.dtype)
        return loss

    def reset_metrics(self):
        super().reset_metrics()
        self._log_volume_tracker.reset_state()

    def get_config(self):
        config = super().get_config()
        config.pop("beta")
        config.pop("sampling")
        config.update(
            simplexes=[list(s) for s in self.simplexes],
            samples=self.samples,
            volume_weight=self.volume_weight,
            jitter=self.jitter,
        )
        return config


# -- building simplexes -------------------------------------------------------
