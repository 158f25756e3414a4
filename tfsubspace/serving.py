"""The serving signatures of an exported subspace: one point, any α, an ensemble.

`model.export(path, ...)` writes one SavedModel with

- `serving_default`: the baked stock model at the chosen α (midpoint by
  default), exactly what `model.bake(alpha)` computes;
- `serve_at_alpha(inputs, alpha)`: α per request. The graph checks α (in
  [0, 1] for a curve, on the simplex for a simplex: otherwise an
  InvalidArgumentError naming the rule), computes c(α) with the shape's own
  formula, forms θ = Σ c_i ω_i from the stacked copies and runs the stock
  network on θ with `stateless_call`: serving assigns no variable. Batch norm
  comes from `BatchNormGrid` (statistics recomputed at anchor α and
  interpolated; its docstring gives the measured gap to an exact recompute);
- `serve_ensemble(inputs)`: the mean probabilities of k fixed points, each
  with its own exactly recomputed batch norm. Logits or probabilities are
  read once, by `heads.outputs_logits`.

Without `batchnorm_data`, every signature uses the model's current batch-norm
statistics, as `bake` does.

Example:

>>> import numpy as np, keras, tensorflow as tf, tfsubspace as ts
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), seed=0)
>>> import tempfile, os
>>> path = model.export(os.path.join(tempfile.mkdtemp(), "1"), ensemble=[0.0, 1.0])
>>> served = tf.saved_model.load(path)
>>> x = np.ones((2, 4), "float32")
>>> model.set_alpha(0.25)
>>> bool(np.allclose(served.serve_at_alpha(x, 0.25), model(x), atol=1e-6))
True
>>> served.serve_ensemble(x).shape
TensorShape([2, 3])
"""

import keras
import numpy as np
import tensorflow as tf

from tfsubspace import checks
from tfsubspace.batchnorm_grid import CURVE_ANCHORS, BatchNormGrid, statistics_at, statistics_variables
from tfsubspace.evaluation.heads import outputs_logits
from tfsubspace.layers import Subspace


def ensemble_points(shape, ensemble):
    """The α of `serve_ensemble`: an int k (curves: k evenly spaced α) or a list of points; None: the default.

    The default is α = 0, 0.5, 1 on a curve and the vertices of a simplex.
    """
    if ensemble is None:
        return np.linspace(0.0, 1.0, 3).tolist() if shape.alpha_rank == 0 else np.eye(shape.num_points).tolist()
    if checks.is_integer(ensemble):
        if shape.alpha_rank != 0:
            raise ValueError(f"`ensemble` for {shape!r} must be a list of points of the simplex, got {ensemble!r}.")
        return np.linspace(0.0, 1.0, checks.integer(ensemble, "`ensemble`", minimum=1)).tolist()
    if isinstance(ensemble, (str, bytes)) or not hasattr(ensemble, "__len__") or len(ensemble) == 0:
        raise ValueError(f"`ensemble` must be an int (number of points) or a non-empty list of α, got {ensemble!r}.")
    points = [shape.validate_alpha(point, name="ensemble") for point in ensemble]
    return [float(p) if np.ndim(p) == 0 else np.asarray(p).tolist() for p in points]


def probabilities(outputs, logits):
    """[batch, classes] probabilities; a one-column head p becomes [1 − p, p], as heads.to_probabilities."""
    outputs = tf.cast(outputs, tf.float32)
    if outputs.shape[-1] == 1:
        p = tf.sigmoid(outputs) if logits else outputs
        return tf.concat([1.0 - p, p], axis=-1)
    return tf.nn.softmax(outputs, axis=-1) if logits else outputs


class PointNetwork:
    """Runs the baked stock network at any coefficients, with no variable assigned.

    `pairs` are (source layer of the subspace model, stock layer of `plain`)
    from `baked_with_sources`. A stock variable fed by a subspace weight gets
    θ(c) from the source's stacked copies; a batch-norm statistic gets the
    value passed in; anything else keeps the baked value.
    """

    def __init__(self, plain, pairs):
        self.plain = plain
        self._theta = {}  # id(stock variable) -> (subspace layer, weight key)
        self._source = {}  # id(stock variable) -> the subspace model's variable it copies
        for source, target in pairs:
            if isinstance(source, Subspace):
                keys = dict(zip([id(v) for v in source.stock_weights], source.weight_is_normalization))
                for from_variable, variable in zip(source.layer.weights, target.weights):
                    if id(from_variable) in keys:
                        self._theta[id(variable)] = (source, keys[id(from_variable)])
                    else:
                        self._source[id(variable)] = from_variable
            else:
                for from_variable, variable in zip(source.weights, target.weights):
                    self._source[id(variable)] = from_variable

    def __call__(self, inputs, coefficients, statistics):
        """Outputs at θ(`coefficients`) with batch norm `statistics` {id(model variable): tensor}."""
        thetas = {}

        def value(variable):
            if id(variable) in self._theta:
                source, key = self._theta[id(variable)]
                if id(source) not in thetas:
                    thetas[id(source)] = source.combined_weights(coefficients)
                return thetas[id(source)][key]
            source_variable = self._source.get(id(variable))
            if source_variable is not None and id(source_variable) in statistics:
                return statistics[id(source_variable)]
            return variable.value

        trainable = [value(v) for v in self.plain.trainable_variables]
        non_trainable = [value(v) for v in self.plain.non_trainable_variables]
        outputs, _ = self.plain.stateless_call(trainable, non_trainable, inputs, training=False)
        return outputs


def add_signatures(archive, model, network, input_signature, batchnorm_data=None, ensemble=None,
                   batchnorm_grid=CURVE_ANCHORS, batchnorm_steps=None, batchnorm_resolution=None):
    """Adds `serve_at_alpha` and `serve_ensemble` to the `keras.export.ExportArchive` `archive`."""
    shape = model.subspace_shape
    points = ensemble_points(shape, ensemble)
    if batchnorm_data is not None and statistics_variables(model):
        grid = BatchNormGrid.recompute(model, batchnorm_data, batchnorm_grid, steps=batchnorm_steps,
                                       resolution=batchnorm_resolution)
        member_statistics = statistics_at(model, points, batchnorm_data, steps=batchnorm_steps)
    else:
        # No statistics to interpolate: any valid grid does (a simplex's coarsest, its vertices).
        grid = BatchNormGrid(shape, [shape.center] if shape.alpha_rank == 0 else np.eye(shape.num_points).tolist(), {})
        member_statistics = {}
    member_coefficients = [np.asarray(shape.coefficients(point)) for point in points]  # eager, before tracing
    logits = outputs_logits(model)
    archive.track(model)
    alpha_shape = [] if shape.alpha_rank == 0 else [shape.num_points]

    def serve_at_alpha(inputs, alpha):
        alpha = shape.assert_alpha(alpha)
        return network(inputs, shape.coefficients(alpha), grid.values_at(alpha))

    def serve_ensemble(inputs):
        members = []
        for index, coefficients in enumerate(member_coefficients):
            statistics = {key: tf.constant(stack[index], tf.float32) for key, stack in member_statistics.items()}
            outputs = network(inputs, tf.constant(coefficients, tf.float32), statistics)
            members.append(probabilities(outputs, logits))
        return tf.add_n(members) / float(len(members))

    archive.add_endpoint(
        "serve_at_alpha", serve_at_alpha,
        input_signature=[*input_signature, tf.TensorSpec(alpha_shape, tf.float32, name="alpha")],
    )
    archive.add_endpoint("serve_ensemble", serve_ensemble, input_signature=list(input_signature))
    return archive
