"""SPRO and ESPRO: low-loss simplexes grown from trained networks (paper 004).

A simplex (or a simplicial complex) of weights is a `SimplexModel`: a
`ts.SubspaceModel` whose m weight copies are the vertices and whose
`simplexes` lists which vertices form each simplex. A single simplex grown
from one trained model has `simplexes == ((0, 1, ..., m-1),)`; a complex
connecting M trained modes through c shared connecting vertices (004 §3.2,
§4.2) has vertices 0..M-1 = the modes (frozen) and M..M+c-1 = the connectors,
and one simplex per mode, `(i, M, ..., M+c-1)`: every simplex shares all the
connecting vertices.

Training a new vertex (004 Eq. 1, Eq. 3, A.2), one vertex at a time with every
other vertex frozen and the new one initialised at the mean of the others:

    loss = (1/S) Σ_s L(θ(α_s)) − λ_k · log V(complex)

with S points α_s drawn per step uniformly on the complex (a simplex picked
uniformly, then Dirichlet(1) on its vertices, 004 A.1); V is the sum of the
simplexes' Cayley–Menger volumes (`ts.volume`) and λ_k = λ / |log V(S̃_k)|, S̃_k
a randomly initialised complex of the same structure (004 Eq. A.3).

ESPRO (004 §5.2) ensembles points sampled from several simplexes, each grown
from an independently trained model; `ensemble` scores it next to the deep
ensemble of the base models, with batch norm recomputed at every point.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> from tfsubspace.connectivity import spro
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
>>> model = spro.grow(base, num_vertices=3, epochs_per_vertex=1, lmbda=0.1, samples=2,
...                   train_data=(x, y), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...                   seed=0)
>>> model.simplexes, model.frozen_points
(((0, 1, 2),), (0, 1))
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from tfsubspace import evaluate, volume
from tfsubspace.batchnorm import preserved_point
from tfsubspace.convert import convert
from tfsubspace.model import SubspaceModel, find_subspace_layers
from tfsubspace.sampler import Sampler, check_seed
from tfsubspace.shapes import Simplex

#: Relative jitter of the training volume reward (see `ts.volume`): a new
#: vertex starts on the others' affine hull, where the exact log-volume is −inf.
DEFAULT_JITTER = 1e-8

# Mixed into the model seed for the stream that picks a simplex of a complex,
# so it never shares a stateless key with the Dirichlet draws.
_CHOICE_SALT = 0x5F3759D


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return float(value)


def _check_simplexes(simplexes, num_points):
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
        self.simplexes = _check_simplexes(simplexes, shape.num_points)
        self.samples = _check_int(samples, "samples", 1)
        self.volume_weight = _check_non_negative(volume_weight, "volume_weight")
        self.jitter = _check_non_negative(jitter, "jitter")
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
        num = _check_int(num, "num", 1)
        seed = check_seed(seed)
        alphas = Simplex(len(self.simplexes[0])).sample(seed, num=num)
        choice_seed = tf.constant([(seed ^ _CHOICE_SALT) % (2**31 - 1), 1], tf.int64)
        points = self._embed(tf.cast(alphas, tf.float64), self._choices(choice_seed, num)).numpy()
        return (points / points.sum(axis=1, keepdims=True)).tolist()

    def vertex_point(self, index):
        """The one-hot point of vertex `index` (e.g. 0: the base model)."""
        index = _check_int(index, "index", 0)
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


def _fresh_optimizer(optimizer):
    """A new optimizer per vertex: Keras optimizers bind to one set of variables."""
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer()
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    return keras.optimizers.get(optimizer)


def _stock_template(model):
    """A stock Keras model with the architecture of `model` (vertex 0 for a SimplexModel)."""
    if isinstance(model, SubspaceModel):
        return model.bake(np.eye(model.subspace_shape.num_points)[0].tolist())
    if not isinstance(model, keras.Model):
        raise ValueError(f"`base_model`/`models` must be Keras models, got {type(model).__name__}.")
    return model


def _weight_signature(layers):
    return [
        (layer.name, type(layer).__name__, attribute, tuple(copies[0].shape))
        for layer in layers
        for attribute, copies in layer.subspace_weights.items()
    ]


def _vertex_values(layers, index):
    """Copy `index` of every subspace weight, in (layer, attribute) order, as numpy."""
    return [np.asarray(copies[index]) for layer in layers for copies in layer.subspace_weights.values()]


def _stock_values(model, reference_signature=None, name="models"):
    """A stock model's weights aligned with the subspace weights of its clones."""
    layers = find_subspace_layers(convert(model, Simplex(2), beta=0.0, seed=0, init="point").network)
    signature = _weight_signature(layers)
    if reference_signature is not None:
        for position, (expected, got) in enumerate(zip(reference_signature, signature)):
            if expected[1:] != got[1:]:
                raise ValueError(
                    f"`{name}` differ in architecture at weight {position} ({expected[0]}.{expected[2]}): "
                    f"{expected[1]} {expected[3]} vs {got[1]} {got[3]}."
                )
        if len(signature) != len(reference_signature):
            raise ValueError(f"`{name}` differ in architecture: {len(reference_signature)} vs {len(signature)} weights.")
    return _vertex_values(layers, 0), signature


def random_log_volume(template, num_vertices, simplexes=None, include_normalization=True):
    """log V of a randomly initialised complex of this structure (004 Eq. A.3).

    Every vertex is drawn afresh with the layers' own initializers (as a new
    network would be), and the volume is exact (no jitter).

    Example:

    >>> import keras
    >>> from tfsubspace.connectivity import spro
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> bool(abs(spro.random_log_volume(base, 3)) > 0)
    True
    """
    num_vertices = _check_int(num_vertices, "num_vertices", 2)
    simplexes = _check_simplexes(simplexes, num_vertices)
    network = convert(_stock_template(template), Simplex(num_vertices), beta=0.0, seed=0, init="independent").network
    layers = find_subspace_layers(network)
    return float(volume.subspace_log_volume(layers, simplexes, include_normalization=include_normalization))


def normalized_lambda(lmbda, random_log_volume):
    """λ_k = λ / |log V(S̃_k)| (004 Eq. A.3).

    The paper divides by log V(S̃_k); a random simplex of a small network can
    have V < 1, where that quotient would turn the volume reward into a
    penalty, so the magnitude is used.

    Example:

    >>> from tfsubspace.connectivity import spro
    >>> spro.normalized_lambda(1.0, -4.0)
    0.25
    """
    lmbda = _check_non_negative(lmbda, "lmbda")
    if isinstance(random_log_volume, bool) or not isinstance(random_log_volume, (int, float, np.floating)):
        raise ValueError(f"`random_log_volume` must be a finite non-zero number, got {random_log_volume!r}.")
    if not np.isfinite(random_log_volume) or abs(random_log_volume) < 1e-6:
        raise ValueError(
            f"`random_log_volume` must be a finite number with |value| >= 1e-6, got {random_log_volume!r}; "
            "pass normalize_lambda=False to use `lmbda` as it is."
        )
    return lmbda / abs(float(random_log_volume))


def _train_vertex(
    template, vertices, simplexes, *, lmbda, normalize_lambda, samples, jitter, seed, train_args, history
):
    """Builds the complex with `vertices` (the last one new), trains the last vertex."""
    k = len(vertices)
    network = convert(template, Simplex(k), beta=0.0, seed=seed, init="point").network
    layers = find_subspace_layers(network)
    for index, values in enumerate(vertices):
        for variable, value in zip((c[index] for layer in layers for c in layer.subspace_weights.values()), values):
            variable.assign(value)
    if normalize_lambda and lmbda > 0:
        reference = random_log_volume(template, k, simplexes)
        weight = normalized_lambda(lmbda, reference)
    else:
        reference, weight = None, lmbda
    model = SimplexModel(network, simplexes=simplexes, samples=samples, volume_weight=weight, jitter=jitter, seed=seed)
    model.freeze_points(range(k - 1))
    model.compile(
        optimizer=_fresh_optimizer(train_args["optimizer"]), loss=train_args["loss"], metrics=train_args["metrics"]
    )
    fit_history = {}
    if train_args["epochs"] > 0:
        data = train_args["train_data"]
        # Arrays are shuffled by fit; a dataset is expected to be shuffled already.
        inputs = dict(x=data[0], y=data[1], batch_size=32) if isinstance(data, tuple) else dict(x=data, shuffle=False)
        fit_history = model.fit(
            **inputs,
            epochs=train_args["epochs"],
            steps_per_epoch=train_args["steps_per_epoch"],
            callbacks=train_args["callbacks"],
            verbose=train_args["verbose"],
        ).history
    history.append(
        {
            "vertex": k - 1,
            "random_log_volume": reference,
            "volume_weight": weight,
            "log_volume": float(model.log_volume(jitter=0.0)),
            "fit": fit_history,
        }
    )
    model.spro_history = history
    return model


def _train_args(train_data, loss, optimizer, metrics, epochs, steps_per_epoch, callbacks, verbose):
    if loss is None:
        raise ValueError("`loss` must be given (a Keras loss, as for `compile`).")
    if isinstance(train_data, list):
        train_data = tuple(train_data)
    if isinstance(train_data, tuple) and len(train_data) != 2:
        raise ValueError(f"`train_data` must be a tf.data.Dataset or an (x, y) tuple, got {len(train_data)} arrays.")
    return {
        "train_data": train_data,
        "loss": loss,
        "optimizer": optimizer,
        "metrics": metrics,
        "epochs": _check_int(epochs, "epochs_per_vertex", 0),
        "steps_per_epoch": steps_per_epoch,
        "callbacks": callbacks,
        "verbose": verbose,
    }


def grow(
    base_model,
    num_vertices,
    epochs_per_vertex,
    lmbda,
    samples=5,
    *,
    train_data,
    loss,
    optimizer="sgd",
    metrics=None,
    seed=None,
    normalize_lambda=True,
    jitter=DEFAULT_JITTER,
    steps_per_epoch=None,
    callbacks=None,
    verbose=0,
):
    """Grows a low-loss simplex from one trained model, vertex by vertex (SPRO, 004 §5.1).

    Vertex 0 is `base_model`'s weights. For k = 2..num_vertices: a simplex of
    k vertices is built, the existing k−1 vertices are copied and frozen, the
    new vertex starts at their mean (004 A.2), and it is trained for
    `epochs_per_vertex` epochs on the mean over `samples` points per step of
    the loss minus λ_k · log V, λ_k = `normalized_lambda(lmbda,
    random_log_volume(...))` (or `lmbda` with `normalize_lambda=False`).

    Args:
        base_model: a trained Sequential/functional Keras model, or a
            single-simplex `SimplexModel` to grow further.
        num_vertices: vertices of the final simplex (>= 2, more than
            `base_model` has).
        epochs_per_vertex: epochs per new vertex (0 only initialises it).
        lmbda: λ of 004 Eq. A.3, >= 0.
        samples: points per step (004: 5).
        train_data: a tf.data.Dataset of (x, y) batches (shuffled already), or
            an (x, y) tuple of arrays (shuffled and batched by 32 by `fit`).
        loss, optimizer, metrics: as for `compile`; `optimizer` may be a
            name, an instance (re-created from its config for every vertex) or
            a zero-argument callable returning a new optimizer.
        seed: seed of the point sequence (vertex k uses seed + k).
        jitter: relative jitter of the volume reward (`ts.volume`).
        steps_per_epoch, callbacks, verbose: passed to `fit`.

    Returns:
        The trained `SimplexModel`; `spro_history` lists per vertex its
        random reference log-volume, λ_k, the exact final log-volume and the
        `fit` history.

    Example: see the module docstring.
    """
    num_vertices = _check_int(num_vertices, "num_vertices", 2)
    lmbda = _check_non_negative(lmbda, "lmbda")
    samples = _check_int(samples, "samples", 1)
    seed = check_seed(seed)
    train_args = _train_args(train_data, loss, optimizer, metrics, epochs_per_vertex, steps_per_epoch, callbacks, verbose)
    template = _stock_template(base_model)
    if isinstance(base_model, SimplexModel):
        m = base_model.subspace_shape.num_points
        if base_model.simplexes != (tuple(range(m)),):
            raise ValueError("`base_model` must be a single-simplex SimplexModel (from `grow`), not a complex.")
        vertices = [_vertex_values(base_model.subspace_layers, index) for index in range(m)]
        history = list(getattr(base_model, "spro_history", []))
    else:
        vertices, _ = _stock_values(template, name="base_model")
        vertices = [vertices]
        history = []
    if num_vertices <= len(vertices):
        raise ValueError(f"`num_vertices` must be > {len(vertices)} (the vertices `base_model` has), got {num_vertices}.")
    model = None
    while len(vertices) < num_vertices:
        vertices = vertices + [_mean_vertex(vertices)]
        k = len(vertices)
        model = _train_vertex(
            template,
            vertices,
            (tuple(range(k)),),
            lmbda=lmbda,
            normalize_lambda=normalize_lambda,
            samples=samples,
            jitter=jitter,
            seed=(seed + k) % (2**31 - 1),
            train_args=train_args,
            history=history,
        )
        vertices = [_vertex_values(model.subspace_layers, index) for index in range(k)]
    return model


def _mean_vertex(vertices):
    return [np.mean([v[i].astype(np.float64) for v in vertices], axis=0).astype(vertices[0][i].dtype) for i in range(len(vertices[0]))]


def connect_modes(
    models,
    num_connecting,
    epochs_per_vertex,
    lmbda,
    samples=5,
    *,
    train_data,
    loss,
    optimizer="sgd",
    metrics=None,
    seed=None,
    normalize_lambda=True,
    jitter=DEFAULT_JITTER,
    steps_per_epoch=None,
    callbacks=None,
    verbose=0,
):
    """A simplicial complex of low loss joining trained modes through shared vertices (004 §3.2, §4.2).

    Vertices 0..M−1 are the M `models` (frozen throughout); vertices
    M..M+c−1 are the c = `num_connecting` connecting points, trained one at a
    time. While connector j is trained the complex is
    {(i, M, ..., M+j) : i < M}: each mode forms a simplex with all the
    connectors so far (the complex C(w_0..w_{M−1}, θ_0..θ_j) of §3.2). Connector
    j starts at the mean of all previous vertices (004 A.2) and is trained on
    the mean over `samples` points of the complex per step (a simplex picked
    uniformly, then Dirichlet(1)) minus λ_j · log Σ_i V(simplex i), λ_j
    normalised by a random complex of the same structure.

    Args:
        models: >= 2 trained Keras models of one architecture (weights matched
            by the position of their weighted layers; a mismatch names the
            first differing weight). Non-trainable state (batch-norm
            statistics) comes from models[0]; recompute it per point.
        num_connecting: c >= 1.
        Other arguments: as in `grow`.

    Returns:
        A `SimplexModel` with m = M + c vertices and `simplexes`
        ((0, M..M+c−1), (1, M..M+c−1), ...).

    Example:

    >>> import numpy as np, keras
    >>> from tfsubspace.connectivity import spro
    >>> make = lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
    >>> complex_ = spro.connect_modes([make(), make()], num_connecting=1, epochs_per_vertex=1, lmbda=0.1,
    ...                               samples=2, train_data=(x, y), seed=0,
    ...                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> complex_.simplexes, complex_.frozen_points
    (((0, 2), (1, 2)), (0, 1))
    """
    models = list(models) if isinstance(models, (list, tuple)) else None
    if not models or len(models) < 2:
        raise ValueError("`models` must be a list of at least 2 trained Keras models.")
    num_connecting = _check_int(num_connecting, "num_connecting", 1)
    lmbda = _check_non_negative(lmbda, "lmbda")
    samples = _check_int(samples, "samples", 1)
    seed = check_seed(seed)
    train_args = _train_args(train_data, loss, optimizer, metrics, epochs_per_vertex, steps_per_epoch, callbacks, verbose)
    template = _stock_template(models[0])
    vertices, signature = _stock_values(template, name="models")
    vertices = [vertices]
    for model in models[1:]:
        values, _ = _stock_values(_stock_template(model), signature, name="models")
        vertices.append(values)
    num_modes = len(models)
    history = []
    complex_model = None
    for j in range(num_connecting):
        vertices = vertices + [_mean_vertex(vertices)]
        k = len(vertices)
        connectors = tuple(range(num_modes, k))
        complex_model = _train_vertex(
            template,
            vertices,
            tuple((mode,) + connectors for mode in range(num_modes)),
            lmbda=lmbda,
            normalize_lambda=normalize_lambda,
            samples=samples,
            jitter=jitter,
            seed=(seed + k) % (2**31 - 1),
            train_args=train_args,
            history=history,
        )
        vertices = [_vertex_values(complex_model.subspace_layers, index) for index in range(k)]
    return complex_model


# -- ESPRO ----------------------------------------------------------------------


def ensemble(
    simplexes,
    samples_per_simplex,
    test_data,
    *,
    batchnorm_data=None,
    batchnorm_steps=None,
    seed=0,
    from_logits=True,
    num_bins=15,
    temperature=1.0,
):
    """ESPRO (004 §5.2, Eq. 5) next to the deep ensemble of the base models.

    Draws `samples_per_simplex` points uniformly from each `SimplexModel`
    (simplex i with seed `seed + i`), predicts at each with batch norm
    recomputed there on `batchnorm_data` (004 §5.4, A.2), and averages the
    probabilities of all points of all simplexes. The deep ensemble averages
    vertex 0 of each simplex (its base model), batch norm recomputed there too.

    Args:
        simplexes: a non-empty list of `SimplexModel`s (e.g. from `grow`).
        samples_per_simplex: points per simplex, >= 1 (004 uses 25).
        test_data: a tf.data.Dataset of (x, y) batches.
        batchnorm_data: training batches for the recompute; required when a
            model has batch norm.
        batchnorm_steps, from_logits, num_bins, temperature: as in
            `ts.evaluate.sweep`.

    Returns:
        {"espro": {"accuracy", "nll", "ece"}, "deep_ensemble": {...},
        "simplexes": [scores of each simplex's own ensemble], "points":
        [the points of each simplex]}. Each model is left at its original α.

    Example:

    >>> import numpy as np, keras, tensorflow as tf, tfsubspace as ts
    >>> from tfsubspace.connectivity import spro
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> simplex = spro.SimplexModel(ts.convert(base, ts.Simplex(3), seed=0).network, seed=0)
    >>> data = tf.data.Dataset.from_tensor_slices((np.random.rand(16, 4).astype("float32"),
    ...                                            np.arange(16) % 3)).batch(8)
    >>> sorted(spro.ensemble([simplex], 2, data)["espro"])
    ['accuracy', 'ece', 'nll']
    """
    simplexes = list(simplexes) if isinstance(simplexes, (list, tuple)) else None
    if not simplexes or not all(isinstance(s, SimplexModel) for s in simplexes):
        raise ValueError("`simplexes` must be a non-empty list of SimplexModel (from grow or connect_modes).")
    samples_per_simplex = _check_int(samples_per_simplex, "samples_per_simplex", 1)
    seed = check_seed(seed)
    needs_batchnorm = any(
        isinstance(layer, keras.layers.BatchNormalization) for s in simplexes for layer in s.network._flatten_layers()
    )
    if needs_batchnorm and batchnorm_data is None:
        raise ValueError("`batchnorm_data` is required: the models have batch norm, recomputed at every point.")
    bn_data = batchnorm_data if batchnorm_data is not None else test_data
    labels = evaluate.labels_of(test_data)

    def probabilities(model, alpha):
        return evaluate.probabilities_at(model, alpha, test_data, bn_data, batchnorm_steps, from_logits, temperature)

    all_members, base_members, per_simplex, points = [], [], [], []
    for index, model in enumerate(simplexes):
        drawn = model.sample_points(samples_per_simplex, seed=(seed + index) % (2**31 - 1))
        with preserved_point(model):
            members = [probabilities(model, alpha) for alpha in drawn]
            base_members.append(probabilities(model, model.vertex_point(0)))
        per_simplex.append(evaluate.scores(evaluate.ensemble_probabilities(members), labels, num_bins))
        all_members.extend(members)
        points.append(drawn)
    return {
        "espro": evaluate.scores(evaluate.ensemble_probabilities(all_members), labels, num_bins),
        "deep_ensemble": evaluate.scores(evaluate.ensemble_probabilities(base_members), labels, num_bins),
        "simplexes": per_simplex,
        "points": points,
    }
