"""SubspaceModel: a Keras model whose weights are a subspace.

`train_step` is Algorithm 1 of paper 001: each step the model-level sampler
draws α (one for all layers, or one per layer) and writes each layer's
coefficients, the forward pass runs at θ(α), and the loss is the compiled loss
plus β·cos²(ω_j, ω_k) for a random pair j ≠ k (Eq. 5). Everything else (fit,
callbacks, distribution, evaluate, predict, save) is stock Keras.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
...                          keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), beta=1.0, seed=0)
>>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x, y = np.random.rand(32, 4).astype("float32"), np.arange(32) % 3
>>> sorted(model.fit(x, y, epochs=1, verbose=0).history)
['cos2', 'loss']
>>> model.set_alpha(0.25)
>>> model.predict(x, verbose=0).shape
(32, 3)
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfsubspace import checks, regularizers
from tfsubspace.layers import Subspace, sublayers
from tfsubspace.sampler import Sampler, check_sampling, check_seed
from tfsubspace.shapes import get_shape


def find_subspace_layers(network):
    """Every subspace layer inside `network` (nested models included), in order."""
    return [layer for layer in sublayers(network) if isinstance(layer, Subspace)]


def check_beta(beta):
    return checks.number(beta, "`beta`", minimum=0)


@keras.saving.register_keras_serializable(package="tfsubspace")
class SubspaceModel(keras.Model):
    """A model made of subspace layers, trained with Algorithm 1 of paper 001.

    Args:
        network: a built Keras model whose weighted layers are `ts.layers`
            subspace layers (from `ts.convert`, or built by hand).
        shape: the subspace geometry; its `num_points` must match the layers.
        beta: strength of the cos² penalty (paper 001 Eq. 5); 0 disables it.
        sampling: "per_batch" (one α per step) or "per_layer" (one per layer).
        seed: seed of the α / pair sequence; None picks one (see `self.seed`).
        alpha: the point used for inference; default `shape.center`.
        point_weight_decay: wd of an L2 term ½·wd·‖θ(α)‖² on the weights at
            the point sampled each training step (every subspace weight,
            normalization included), so copy i feels wd·cᵢ(α)·θ(α): the curve
            regularizer of paper 003's reference code, used with no optimizer
            weight decay by `ts.connect(..., weight_decay=wd)`. 0 (default): none.
    """

    def __init__(
        self, network, shape, beta=1.0, sampling="per_batch", seed=None, alpha=None, point_weight_decay=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.subspace_shape = get_shape(shape)
        self.beta = check_beta(beta)
        self.point_weight_decay = checks.number(point_weight_decay, "`point_weight_decay`", minimum=0)
        self.sampling = check_sampling(sampling)
        self.seed = check_seed(seed)
        if not isinstance(network, keras.Model):
            raise TypeError(f"`network` must be a keras.Model, got {type(network).__name__}.")
        layers = find_subspace_layers(network)
        if not layers:
            raise ValueError(
                "`network` has no subspace layers; build it from ts.layers or use ts.convert."
            )
        wrong = [layer.name for layer in layers if layer.num_points != self.subspace_shape.num_points]
        if wrong:
            raise ValueError(
                f"`shape` {self.subspace_shape!r} needs layers with num_points="
                f"{self.subspace_shape.num_points}; these differ: {wrong}."
            )
        self.network = network
        # Kept out of Keras' tracker: the layers are already tracked via network.
        object.__setattr__(self, "_subspace_layers", tuple(layers))
        self.sampler = Sampler(self.subspace_shape, len(layers), self.sampling, self.seed)
        self.alpha_coefficients = keras.Variable(
            np.zeros(self.subspace_shape.num_points, np.float32),
            trainable=False,
            name="alpha_coefficients",
            aggregation="only_first_replica",
            # `call` copies it into the layers inside the model's AutocastScope:
            # a mixed policy would otherwise round the point to float16/bfloat16.
            autocast=False,
        )
        # Not tracked as a Keras metric: it would show up as a meaningless
        # `val_cos2` in evaluation logs. train_step reports it by hand.
        object.__setattr__(self, "_cos2_tracker", keras.metrics.Mean(name="cos2"))
        self.set_alpha(self.subspace_shape.center if alpha is None else alpha)
        if network.built:
            self.built = True

    @property
    def subspace_layers(self):
        """The subspace layers, in the order the sampler's rows are written."""
        return self._subspace_layers

    # -- points of the subspace ---------------------------------------------

    @property
    def alpha(self):
        """The inference point set by `set_alpha` (default: the center)."""
        return self._alpha

    def set_alpha(self, alpha):
        """Fixes the point used by `predict`, `evaluate` and `model(x)`.

        Example: `model.set_alpha(0.5)`, or `[0.2, 0.3, 0.5]` for a simplex.
        """
        value = self.subspace_shape.validate_alpha(alpha)
        self._alpha = value.tolist() if np.ndim(value) else float(value)
        self.alpha_coefficients.assign(self.subspace_shape.coefficients(self._alpha))
        self.write_coefficients(self.alpha_coefficients)

    def set_point(self, alpha=None, coefficients=None):
        """Puts the model at α, or at raw coefficients c ∈ R^m (θ = Σ_i c_i·ω_i).

        The one way evaluation moves a model: `predict`, `evaluate`,
        `model(x)`, the layers and `alpha_coefficients` all follow. With `alpha`
        this is `set_alpha`. With `coefficients` (e.g. a point of a plane
        through three control points, off the shape's domain) `model.alpha`
        becomes None, since no α gives them; `bake()` then bakes those
        coefficients.

        Example:

        >>> import keras, tfsubspace as ts
        >>> model = ts.convert(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), ts.Line())
        >>> model.set_point(coefficients=[1.5, -0.5])
        >>> model.alpha is None, model.alpha_coefficients.numpy().tolist()
        (True, [1.5, -0.5])
        >>> model.set_point(alpha=0.25)
        >>> model.alpha, model.subspace_layers[0].coefficients.numpy().tolist()
        (0.25, [0.75, 0.25])
        """
        if (alpha is None) == (coefficients is None):
            raise ValueError("pass exactly one of `alpha` (a point of the shape) or `coefficients` (m numbers).")
        if alpha is not None:
            self.set_alpha(alpha)
            return
        m = self.subspace_shape.num_points
        if isinstance(coefficients, (str, bytes, bool)):
            raise ValueError(f"`coefficients` must be {m} finite numbers, got {coefficients!r}.")
        try:
            value = np.asarray(ops.convert_to_numpy(coefficients), np.float64)
        except (TypeError, ValueError):
            value = None
        if value is None or value.dtype == bool or value.shape != (m,) or not np.all(np.isfinite(value)):
            raise ValueError(f"`coefficients` must be {m} finite numbers, got {coefficients!r}.")
        self._alpha = None
        self.alpha_coefficients.assign(value.astype(np.float32))
        self.write_coefficients(self.alpha_coefficients)

    def freeze_points(self, indices):
        """Freezes copies `indices` of every subspace layer (others become trainable).

        Example: `model.freeze_points([0, model.subspace_shape.num_points - 1])`
        fixes the endpoints of a curve; training then leaves them bit-identical.
        It works before `compile` and after it until the first `fit` (the
        train step is traced again). Once the optimizer is built, a change is
        refused in one line: frozen and trainable copies live in separate
        stacked variables, so a change makes new variables the optimizer has
        no slots for; compile again with a new optimizer first.
        """
        indices = checks.point_indices(indices, self.subspace_shape.num_points)
        optimizer = getattr(self, "optimizer", None)
        if tuple(indices) != tuple(self.frozen_points) and optimizer is not None and optimizer.built:
            raise ValueError(
                f"`indices` {list(indices)} would change the frozen points {list(self.frozen_points)} after the "
                "optimizer is built (it keeps slots only for the variables it was built on); compile again with a "
                "new optimizer first."
            )
        for layer in self.subspace_layers:
            layer.freeze_points(indices)
        # The traced train step captured the old trainable variables.
        self.train_function = None

    @property
    def frozen_points(self):
        """Indices of the frozen copies (those of the first subspace layer)."""
        return self.subspace_layers[0].frozen_points if self.subspace_layers else ()

    def write_coefficients(self, coefficients):
        """Writes coefficients into every subspace layer: [m] (shared) or [L, m]."""
        coefficients = ops.convert_to_tensor(coefficients)
        layers = self.subspace_layers
        # One unstack, not a strided slice (and its three constants) per layer.
        rows = [coefficients] * len(layers) if len(coefficients.shape) == 1 else ops.unstack(coefficients, len(layers))
        for layer, row in zip(layers, rows):
            layer.coefficients.assign(row)

    # -- Keras hooks --------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """Keras' `compile`; then every `ts.metrics` metric left at `from_logits=None` reads the head.

        The head is read as the evaluation functions read it
        (`tfsubspace.evaluation.heads`): the loss just compiled, else the
        network's final activation (`ts.metrics.for_model`).
        """
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
                        weighted_metrics=weighted_metrics, **kwargs)
        from tfsubspace.metrics import for_model

        for_model(self, [metrics, weighted_metrics])

    def compile_from_config(self, config):
        # Keras' own version skips loading the compile state of any model that
        # overrides `compile` (it cannot know the override's arguments); ours
        # takes Keras' arguments, so restore it as Keras does for a stock model.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        if not training:
            self.write_coefficients(self.alpha_coefficients)
        return self.network(inputs, training=training)

    def fit(self, *args, **kwargs):
        try:
            return super().fit(*args, **kwargs)
        finally:
            # Leave the layers at the inference point, not at the last sampled α,
            # so `model.network` and `bake` see what `predict` sees.
            self.write_coefficients(self.alpha_coefficients)

    def train_step(self, data):
        step = self.optimizer.iterations
        self.write_coefficients(self.sampler.coefficients(step))
        logs = super().train_step(data)
        logs["cos2"] = self._cos2_tracker.result()
        return logs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if not training:
            return loss
        j, k = self.sampler.pair(self.optimizer.iterations)
        cos2 = regularizers.pair_cos2(self.subspace_layers, j, k)
        self._cos2_tracker.update_state(cos2)
        if self.beta > 0:
            # Divided by the number of replicas, as Keras does for its own
            # extra losses, so the penalty counts once after gradients are summed.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = loss + ops.cast(self.beta * cos2 / replicas, loss.dtype)
        if self.point_weight_decay > 0:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = loss + ops.cast(self.point_l2_penalty() / replicas, loss.dtype)
        return loss

    def point_l2_penalty(self):
        """½·point_weight_decay·‖θ‖² at the layers' current coefficients (see `point_weight_decay`)."""
        total = 0.0
        for layer in self.subspace_layers:
            for theta in layer.combined_weights().values():
                total = total + ops.sum(ops.square(ops.cast(theta, "float32")))
        return 0.5 * self.point_weight_decay * total

    def reset_metrics(self):
        super().reset_metrics()
        self._cos2_tracker.reset_state()

    # -- looking inside -----------------------------------------------------

    def get_layer(self, name=None, index=None):
        """The layer called `name` anywhere in the network (converted layers keep their names)."""
        if name is not None and index is None:
            for layer in sublayers(self.network):
                if layer.name == name and layer is not self.network:
                    return layer
            raise ValueError(f"`name` {name!r} is not a layer of this model; layers: "
                             f"{[layer.name for layer in self.network.layers]}.")
        return self.network.get_layer(name=name, index=index)

    def describe(self):
        """One paragraph on the subspace: shape, m, layers, parameters per copy."""
        per_copy = sum(
            int(np.prod(copies[0].shape))
            for layer in self.subspace_layers
            for copies in layer.subspace_weights.values()
        )
        m = self.subspace_shape.num_points
        frozen = f", frozen points {list(self.frozen_points)}" if self.frozen_points else ""
        return (
            f"Subspace: {self.subspace_shape!r}, m = {m} copies of every trainable weight, "
            f"{len(self.subspace_layers)} subspace layers, {per_copy:,} trainable parameters per copy "
            f"({m * per_copy:,} in all); sampling {self.sampling!r}, beta {self.beta:g}, "
            f"inference point alpha = {self.alpha}{frozen}."
        )

    def summary(self, *args, **kwargs):
        """What the subspace is (`describe`), then Keras' summary of the network."""
        print_fn = kwargs.get("print_fn") or print
        print_fn(self.describe())
        return self.network.summary(*args, **kwargs)

    # -- using a point ------------------------------------------------------

    def bake(self, alpha=None, coefficients=None):
        """A plain `keras.Model` of stock layers with the weights θ(α), or θ at raw `coefficients`.

        With neither, the current point: `self.alpha`, or the coefficients
        `set_point(coefficients=...)` put the model at (then `alpha` is None).
        """
        from tfsubspace.export import bake

        if alpha is None and coefficients is None:
            if self.alpha is None:
                coefficients = self.alpha_coefficients.numpy()
            else:
                alpha = self.alpha
        return bake(self, alpha, coefficients)

    def export(self, filepath, alpha=None, batchnorm_data=None, ensemble=None, batchnorm_grid=11,
               batchnorm_steps=None, batchnorm_resolution=None, **kwargs):
        """Writes a SavedModel of the subspace for TF Serving; returns the path.

        Signatures: `serving_default` (the point `alpha`, default
        `self.alpha`), `serve_at_alpha(inputs, alpha)` (any α, checked in the
        graph) and `serve_ensemble(inputs)` (mean probabilities over the points
        `ensemble`: an int k of evenly spaced α on a curve, a list of α, or
        None for 0, 0.5, 1 / the vertices). With `batchnorm_data` (training
        data), batch norm is recomputed at each point and at `batchnorm_grid`
        anchors of a curve, or the grid k/`batchnorm_resolution` of a simplex
        (None: adaptive), that `serve_at_alpha` interpolates
        (tfsubspace.batchnorm_grid);
        `batchnorm_steps` caps the batches. It needs neither tfsubspace nor
        Keras to load (`tf.saved_model.load`); see tfsubspace.serving.

        Example: `model.export("serving/1", alpha=0.5, batchnorm_data=train_ds, ensemble=5)`.
        """
        from tfsubspace.export import export

        return export(self, filepath, self.alpha if alpha is None else alpha, batchnorm_data=batchnorm_data,
                      ensemble=ensemble, batchnorm_grid=batchnorm_grid, batchnorm_steps=batchnorm_steps,
                      batchnorm_resolution=batchnorm_resolution, **kwargs)

    # -- serialization ------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "network": keras.saving.serialize_keras_object(self.network),
            "shape": keras.saving.serialize_keras_object(self.subspace_shape),
            "beta": self.beta,
            "sampling": self.sampling,
            "seed": self.seed,
            "alpha": self.alpha,
            "point_weight_decay": self.point_weight_decay,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(
            config["network"], custom_objects=custom_objects
        )
        config["shape"] = keras.saving.deserialize_keras_object(
            config["shape"], custom_objects=custom_objects
        )
        return cls(**config)
