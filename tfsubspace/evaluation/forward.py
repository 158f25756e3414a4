"""The one forward pass of evaluation: a model at a point, on test data.

`predict(model, data)` runs `model(x, training=False)` over every batch once
(one traced function per model, reused at every point), turns the outputs into
float64 probabilities (logits or probabilities decided by `heads`) and the
labels into class indices (`reader`). `predict_at` first puts a
`ts.SubspaceModel` at a point with `model.set_point` and recomputes batch norm
there.

Example:

>>> import numpy as np, keras
>>> from tfsubspace.evaluation.forward import predict
>>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
>>> probabilities, labels = predict(net, (np.ones((4, 2), "float32"), np.array([0, 1, 2, 1])))
>>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1.0)), labels.tolist()
((4, 3), True, [0, 1, 2, 1])
"""


import keras
import numpy as np
import tensorflow as tf

from tfsubspace import checks
from tfsubspace.evaluation import heads, reader
from tfsubspace.evaluation.batchnorm import batchnorm_layers, recompute_batchnorm
from tfsubspace.evaluation.progress import Progress

#: Training batches per batch-norm recompute in every evaluation (sweeps,
#: ensembles, curves, planes, ESPRO, callbacks). 20 batches of 128 (2,560
#: examples) differ from a full pass by at most 0.2 accuracy points over a
#: 21-point sweep (benchmarks/README.md); pass None for a full pass.
DEFAULT_BATCHNORM_STEPS = 20


def check_temperature(temperature):
    return checks.number(temperature, "`temperature`", minimum=0, minimum_open=True)


def check_keras_model(model, name="model"):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`{name}` must be a keras.Model, got {type(model).__name__}.")
    return model


def check_subspace_model(model, name="model"):
    from tfsubspace.model import SubspaceModel

    if not isinstance(model, SubspaceModel):
        kind = "a plain keras.Model" if isinstance(model, keras.Model) else type(model).__name__
        raise ValueError(
            f"`{name}` must be a ts.SubspaceModel (points α need a subspace), got {kind}; "
            "convert it with ts.convert or score plain models with ts.evaluate.ensemble([model], data)."
        )
    return model


def check_points(model, points, name="alphas"):
    """A non-empty list of validated points α of `model` (numbers or vectors; no bools)."""
    if isinstance(points, (str, bytes)) or not hasattr(points, "__iter__"):
        raise ValueError(f"`{name}` must be a list of points α, got {points!r}.")
    points = list(points)
    if not points:
        raise ValueError(f"`{name}` must hold at least one point α, got an empty list.")
    checked = []
    for point in points:
        if isinstance(point, (tf.Tensor, tf.Variable)):
            point = point.numpy()
        if isinstance(point, (bool, np.bool_)) or (np.ndim(point) and np.asarray(point).dtype == bool):
            raise ValueError(f"`{name}` must hold numbers α, got the bool {point!r}.")
        value = model.subspace_shape.validate_alpha(point, name=name)
        checked.append(value.tolist() if np.ndim(value) else float(value))
    return checked


def _float32(outputs):
    """Float outputs as float32: a mixed-precision model may end in float16/bfloat16 scores."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, outputs)


def _forward(model):
    """`model(x, training=False)` traced once per model (kept on the model, not tracked by Keras)."""
    forward = getattr(model, "_tfsubspace_forward", None)
    if forward is None:
        forward = tf.function(lambda x: _float32(model(x, training=False)), reduce_retracing=True)
        object.__setattr__(model, "_tfsubspace_forward", forward)
    return forward


def _run(model, data, name, verbose, with_labels):
    forward = _forward(model)
    outputs, labels = [], []
    cardinality = int(data.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"`{name}` is infinite (e.g. `.repeat()`); evaluate on a finite dataset, e.g. `.take(n)`.")
    with Progress(cardinality if cardinality >= 0 else None, verbose) as progress:
        for element in data:
            x = element[0] if with_labels else element
            result = forward(x)
            if isinstance(result, (list, tuple, dict)):
                raise ValueError(f"`model` must have one output of class scores, got {type(result).__name__} outputs.")
            outputs.append(np.asarray(result))
            if with_labels:
                labels.append(np.asarray(element[1]))
            progress.advance()
    if not outputs:
        raise ValueError(f"`{name}` yielded no batches to evaluate on.")
    return np.concatenate(outputs), (np.concatenate(labels) if with_labels else None)


def outputs_and_labels(model, data, name="test_data", verbose=0):
    """Raw outputs [N, C] and raw labels of `model` at its current point on (x, y) batches."""
    return _run(model, data, name, verbose, with_labels=True)


def predict_inputs(model, data, *, from_logits=None, temperature=1.0, name="data", verbose=0):
    """Probabilities [N, C] of `model` at its current point on inputs alone (labels, if any, unused)."""
    check_keras_model(model)
    logits = heads.outputs_logits(model, from_logits)
    temperature = check_temperature(temperature)
    outputs, _ = _run(model, reader.inputs(data, name), name, verbose, with_labels=False)
    return heads.to_probabilities(outputs, logits, temperature, name=f"model {model.name!r}")


def predict(model, data, *, from_logits=None, temperature=1.0, name="test_data", verbose=0):
    """(probabilities [N, C] float64, labels [N]) of `model` at its current point on `data`."""
    check_keras_model(model)
    logits = heads.outputs_logits(model, from_logits)
    temperature = check_temperature(temperature)
    outputs, raw_labels = outputs_and_labels(model, reader.batches(data, name), name, verbose)
    probabilities = heads.to_probabilities(outputs, logits, temperature, name=f"model {model.name!r}")
    return probabilities, reader.sparse_labels(raw_labels, probabilities.shape[-1], name)


def place(model, alpha=None, coefficients=None, batchnorm_data=None, batchnorm_steps=DEFAULT_BATCHNORM_STEPS):
    """Puts a SubspaceModel at α (or raw coefficients), batch norm recomputed there on `batchnorm_data`."""
    model.set_point(alpha=alpha, coefficients=coefficients)
    if batchnorm_data is not None and batchnorm_layers(model):
        recompute_batchnorm(model, batchnorm_data, steps=batchnorm_steps)


def predict_at(model, test_data, *, alpha=None, coefficients=None, batchnorm_data=None,
               batchnorm_steps=DEFAULT_BATCHNORM_STEPS, from_logits=None, temperature=1.0, name="test_data"):
    """`predict` of a SubspaceModel at α (or coefficients), batch norm recomputed there."""
    place(model, alpha, coefficients, batchnorm_data, batchnorm_steps)
    return predict(model, test_data, from_logits=from_logits, temperature=temperature, name=name)
