"""Streaming Keras metrics for calibration and predictive disagreement.

`ExpectedCalibrationError` (Guo et al. 2017; paper 001 §4.4),
`NegativeLogLikelihood`, `BrierScore` and `TotalVariationDistance` between two
predictive distributions (paper 000 §E). Each keeps sufficient statistics as metric
variables, so feeding the data batch by batch gives the same value as one
call on all of it, and each works in `model.compile(metrics=[...])`.
All accept an optional per-example `sample_weight` (a weight of k counts an
example k times), and labels as class indices [N] / [N, 1] or one-hot rows
[N, C]. One prediction column is a binary head: p becomes [1 − p, p] (a
logit z, [0, z]), as in `tfsubspace.evaluation.heads`.

Logits or probabilities: `from_logits=None` (the default) reads it from the
model by the one rule of `tfsubspace.evaluation.heads` (the compiled loss's
`from_logits`, else a softmax/sigmoid final activation means probabilities).
Keras gives a metric no way to see its model, so the model tells it:
`SubspaceModel.compile` does so for every metric it compiles, and
`for_model(model, metrics)` does for a plain Keras model. A metric updated
without being told (standalone, or in a plain model not passed to
`for_model`) decides from each batch: non-negative rows summing to 1 (the
check `heads` applies) are probabilities, anything else logits, so logits are
never scored as probabilities. (A batch of logits that happens to pass the
check would be read as probabilities; `for_model` or an explicit value rules
that out.) `from_logits=True` or `False` always wins.

Example:

>>> import numpy as np, tfsubspace.metrics as tm
>>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], "float32")
>>> labels = np.array([0, 0, 0])
>>> m = tm.ExpectedCalibrationError(num_bins=5)
>>> m.update_state(labels[:2], probs[:2])
>>> m.update_state(labels[2:], probs[2:])
>>> round(float(m.result()), 4)
0.4333
"""

import numbers

import keras
from keras import ops

from tfsubspace.evaluation import heads

# Floor on probabilities before the log so a zero probability gives a large
# finite loss instead of inf.
_PROB_FLOOR = 1e-12


def _flat_labels(y_true, y_pred):
    """Class indices [N] from [N] / [N, 1] labels (ints or floats) or one-hot rows [N, C]."""
    y_true = ops.convert_to_tensor(y_true)
    classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) == 2 and classes not in (None, 1) and y_true.shape[-1] == classes:
        return ops.cast(ops.argmax(y_true, axis=-1), "int32")
    return ops.reshape(ops.cast(y_true, "int32"), [-1])


def _example_weights(sample_weight, num_examples, dtype):
    """Per-example weights of shape [N]; ones when none are given."""
    if sample_weight is None:
        return ops.ones([num_examples], dtype=dtype)
    # [N], [N, 1] or a scalar all become [N].
    weights = ops.reshape(ops.cast(sample_weight, dtype), [-1])
    return ops.broadcast_to(weights, [num_examples])


def _probabilities(y_pred, from_logits, dtype, log=False):
    """Probabilities [N, C] (or their logs) from predictions; from_logits None decides from the values."""
    y_pred = ops.cast(y_pred, dtype)
    as_probabilities = as_logits = y_pred
    if y_pred.shape[-1] == 1:  # a binary head
        as_probabilities = ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
        as_logits = ops.concatenate([ops.zeros_like(y_pred), y_pred], axis=-1)

    def from_logit_values():
        return ops.log_softmax(as_logits, axis=-1) if log else ops.softmax(as_logits, axis=-1)

    def from_probability_values():
        return ops.log(ops.clip(as_probabilities, _PROB_FLOOR, 1.0)) if log else as_probabilities

    if from_logits is None:
        # Both branches are cheap and finite for any input, so a select
        # (valid in a traced graph) is simpler than a cond.
        is_logits = ops.logical_not(heads.are_probabilities(as_probabilities))
        return ops.where(is_logits, from_logit_values(), from_probability_values())
    return from_logit_values() if from_logits else from_probability_values()


class _HeadMetric(keras.metrics.Metric):
    """A metric of predictions that are logits or probabilities (see the module docstring)."""

    def __init__(self, from_logits=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = heads.check_from_logits(from_logits)
        # Given as None: `for_model` (re)reads it, also for a second model.
        self._reads_model = self.from_logits is None

    def get_config(self):
        # The value in use: a metric read from its model saves what it read.
        return {**super().get_config(), "from_logits": self.from_logits}


def for_model(model, metrics, loss=None):
    """Tells every ts.metric in `metrics` whether `model` outputs logits; returns `metrics`.

    Applies the rule of `tfsubspace.evaluation.heads` (the compiled loss's
    `from_logits`, else the final activation) to the metrics created with
    `from_logits=None`; explicit values, Keras metrics and names are left as
    they are. `SubspaceModel.compile` calls this itself; use it for a plain
    Keras model, after `compile` or inside it with the `loss` being compiled,
    before the first `fit`/`evaluate` (which traces the metrics).

    Args:
        model: the Keras model whose predictions the metrics will see.
        metrics: a metric, or a list, tuple or dict of them (nested), as
            given to `compile(metrics=...)`.
        loss: the loss about to be compiled, read instead of `model.loss`.

    Example:

    >>> import keras, tfsubspace as ts
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> net.compile("sgd", loss, metrics=ts.metrics.for_model(net, [ts.metrics.NegativeLogLikelihood()], loss=loss))
    >>> nll = ts.metrics.NegativeLogLikelihood()
    >>> net.compile("sgd", "sparse_categorical_crossentropy", metrics=[nll])
    >>> ts.metrics.for_model(net, nll).from_logits
    False
    """
    logits = None
    for metric in keras.tree.flatten(metrics):
        if isinstance(metric, _HeadMetric) and metric._reads_model:
            if logits is None:
                logits = heads.outputs_logits(model, loss=loss)
            metric.from_logits = logits
    return metrics


@keras.saving.register_keras_serializable(package="tfsubspace")
class ExpectedCalibrationError(_HeadMetric):
    """Expected calibration error with equal-width confidence bins on [0, 1].

    Confidence is the largest predicted probability and the prediction its
    argmax. Bin b of B holds confidences in (b/B, (b+1)/B]; a confidence of
    exactly 0 goes to bin 0. ECE = Σ_b (n_b/N)·|acc_b − conf_b|, where empty
    bins contribute 0.

    Args:
        num_bins: number of bins B, an int >= 1.
        from_logits: whether `y_pred` holds logits (softmax is applied) rather
            than probabilities; None (default) reads it from the model (see
            the module docstring).
        name: metric name.
        dtype: dtype of the state variables.

    `update_state(y_true, y_pred, sample_weight=None)` takes integer labels of
    shape [N] or [N, 1] and predictions of shape [N, C].

    Example:

    >>> import numpy as np, tfsubspace.metrics as tm
    >>> m = tm.ExpectedCalibrationError(num_bins=10)
    >>> m.update_state([0, 1], np.array([[0.7, 0.3], [0.7, 0.3]], "float32"))
    >>> round(float(m.result()), 4)  # one bin: accuracy 0.5, confidence 0.7
    0.2
    """

    def __init__(self, num_bins=15, from_logits=None, name="ece", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)
        if isinstance(num_bins, bool) or not isinstance(num_bins, numbers.Integral) or num_bins < 1:
            raise ValueError(f"num_bins must be an int >= 1, got {num_bins!r}")
        self.num_bins = int(num_bins)
        # Per-bin sums rather than a running ECE: ECE is not additive over
        # batches, but these sums are, so streaming equals one-shot.
        self.bin_counts = self.add_variable(
            shape=(self.num_bins,), initializer="zeros", dtype=self.dtype, name="bin_counts"
        )
        self.bin_confidence = self.add_variable(
            shape=(self.num_bins,), initializer="zeros", dtype=self.dtype, name="bin_confidence"
        )
        self.bin_correct = self.add_variable(
            shape=(self.num_bins,), initializer="zeros", dtype=self.dtype, name="bin_correct"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        probs = _probabilities(y_pred, self.from_logits, self.dtype)
        labels = _flat_labels(y_true, probs)
        confidence = ops.max(probs, axis=-1)
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(probs, axis=-1), "int32"), labels), self.dtype)
        weights = _example_weights(sample_weight, ops.shape(confidence)[0], self.dtype)
        # The bin index is the number of interior edges strictly below the
        # confidence: an edge value goes to the lower bin and 0 to bin 0, with
        # edges in the same dtype as the confidences (ceil(conf * B) - 1 can
        # round an edge into the wrong bin).
        interior_edges = ops.cast(ops.arange(1, self.num_bins) / self.num_bins, self.dtype)
        bin_index = ops.sum(ops.cast(confidence[:, None] > interior_edges[None, :], "int32"), axis=1)
        membership = ops.one_hot(bin_index, self.num_bins, dtype=self.dtype) * weights[:, None]
        self.bin_counts.assign_add(ops.sum(membership, axis=0))
        self.bin_confidence.assign_add(ops.sum(membership * confidence[:, None], axis=0))
        self.bin_correct.assign_add(ops.sum(membership * correct[:, None], axis=0))

    def result(self):
        # (n_b/N)·|acc_b − conf_b| = |Σcorrect_b − Σconf_b| / N, which is 0
        # for an empty bin without dividing by n_b.
        gaps = ops.sum(ops.abs(self.bin_correct - self.bin_confidence))
        return ops.divide_no_nan(gaps, ops.sum(self.bin_counts))

    def reset_state(self):
        for variable in (self.bin_counts, self.bin_confidence, self.bin_correct):
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins}


class _WeightedMean(_HeadMetric):
    """A weighted mean of per-example values: the state NLL, TV and Brier need."""

    def __init__(self, from_logits=None, name=None, dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="count")

    def _add(self, values, sample_weight):
        """Adds per-example `values` [N] with their weights."""
        weights = _example_weights(sample_weight, ops.shape(values)[0], self.dtype)
        self.total.assign_add(ops.sum(weights * values))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="tfsubspace")
class NegativeLogLikelihood(_WeightedMean):
    """Mean negative log-likelihood −log p(y_true) of integer labels.

    Probabilities are floored at 1e-12 before the log; logits go through
    log-softmax (stable for large logits).

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities;
            None (default) reads it from the model (see the module docstring).
        name: metric name.
        dtype: dtype of the state variables.

    Example:

    >>> import numpy as np, tfsubspace.metrics as tm
    >>> m = tm.NegativeLogLikelihood()
    >>> m.update_state([0, 1], np.array([[0.5, 0.5], [0.75, 0.25]], "float32"))
    >>> round(float(m.result()), 4)  # (log 2 + log 4) / 2
    1.0397
    """

    def __init__(self, from_logits=None, name="nll", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        log_probs = _probabilities(y_pred, self.from_logits, self.dtype, log=True)
        labels = _flat_labels(y_true, log_probs)
        picked = ops.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
        self._add(-picked, sample_weight)


@keras.saving.register_keras_serializable(package="tfsubspace")
class TotalVariationDistance(_WeightedMean):
    """Mean total variation distance ½‖p1 − p2‖₁ between two predictive distributions.

    Called as `update_state(p1, p2, sample_weight=None)` with two [N, C]
    arrays, e.g. the predictions of two points of a subspace (paper 000 §E).
    With `from_logits=True` both are logits and go through softmax.

    Args:
        from_logits: whether `p1` and `p2` hold logits rather than
            probabilities; None (default) reads it from the model, or else
            decides for each of them from its values.
        name: metric name.
        dtype: dtype of the state variables.

    Example:

    >>> import numpy as np, tfsubspace.metrics as tm
    >>> m = tm.TotalVariationDistance()
    >>> p1 = np.array([[1.0, 0.0], [0.5, 0.5]], "float32")
    >>> p2 = np.array([[0.0, 1.0], [0.5, 0.5]], "float32")
    >>> m.update_state(p1, p2)
    >>> round(float(m.result()), 4)  # (1 + 0) / 2
    0.5
    """

    def __init__(self, from_logits=None, name="tv_distance", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        p1 = _probabilities(y_true, self.from_logits, self.dtype)
        p2 = _probabilities(y_pred, self.from_logits, self.dtype)
        # Broadcasting would silently compare one row with every row.
        if p1.shape != p2.shape and None not in p1.shape and None not in p2.shape:
            raise ValueError(f"p1 and p2 must have the same shape, got {p1.shape} and {p2.shape}")
        self._add(0.5 * ops.sum(ops.abs(p1 - p2), axis=-1), sample_weight)


@keras.saving.register_keras_serializable(package="tfsubspace")
class BrierScore(_WeightedMean):
    """Mean Brier score Σ_c (p_c − [c = y])² of integer (or one-hot) labels.

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities;
            None (default) reads it from the model (see the module docstring).
        name: metric name.
        dtype: dtype of the state variables.

    Example:

    >>> import numpy as np, tfsubspace.metrics as tm
    >>> m = tm.BrierScore()
    >>> m.update_state([0, 1], np.array([[0.5, 0.5], [0.75, 0.25]], "float32"))
    >>> round(float(m.result()), 4)  # (0.25 + 0.25 + 0.5625 + 0.5625) / 2
    0.8125
    """

    def __init__(self, from_logits=None, name="brier", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        probs = _probabilities(y_pred, self.from_logits, self.dtype)
        labels = _flat_labels(y_true, probs)
        target = ops.one_hot(labels, ops.shape(probs)[-1], dtype=self.dtype)
        self._add(ops.sum(ops.square(probs - target), axis=-1), sample_weight)
