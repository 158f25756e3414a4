"""Callbacks that track the geometry of a subspace during training.

`SubspaceGeometry` logs, at the end of every epoch, how far apart the
subspace's points ω_0..ω_{m-1} are and how aligned they are (paper 001 Fig. 3,
paper 000 Fig. 15-16): for every pair j < k the L2 distance ‖ω_j − ω_k‖₂ and
cos²(ω_j, ω_k) = ⟨ω_j, ω_k⟩² / (‖ω_j‖² ‖ω_k‖²). Each ω is the concatenation of
all subspace weights of non-normalization layers, the same vectors that enter
the cos² penalty (`ts.regularizers.penalized_groups`; batch/layer norm
parameters are excluded). `geometry(model)` gives the same numbers outside
training.

Example:

>>> import numpy as np, keras, tfsubspace as ts
>>> from tfsubspace.callbacks import SubspaceGeometry, geometry
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model = ts.convert(base, ts.Line(), seed=0)
>>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
>>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[SubspaceGeometry()])
>>> sorted(k for k in history.history if k[:2] in ("l2", "co"))
['cos2', 'cos2_0_1', 'cos2_mean', 'l2_0_1', 'l2_mean']
>>> len(history.history["l2_0_1"])
2
>>> stats = geometry(ts.convert(base, ts.Line(), seed=0, init="point"))
>>> round(stats["l2_0_1"], 6), round(stats["cos2_0_1"], 6)
(0.0, 1.0)
"""

import keras
import numpy as np

from tfsubspace import regularizers

PAIRS = ("all", "mean")


def _check_model(model, who="SubspaceGeometry"):
    # Lazy import: tfsubspace.model imports regularizers, and a module-level
    # import here would tie the callbacks module into that import order.
    from tfsubspace.model import SubspaceModel

    if not isinstance(model, SubspaceModel):
        raise TypeError(
            f"{who} needs a ts.SubspaceModel (from ts.convert or "
            f"ts.SubspaceModel(...)), got {type(model).__name__}."
        )


def gram_matrix(layers):
    """G[j, k] = ⟨ω_j, ω_k⟩ over all penalized weights of `layers`, float64 [m, m].

    One Gram matrix gives every pairwise distance and cosine, so the weights
    are read once per call instead of once per pair.
    """
    gram = None
    for copies in regularizers.penalized_groups(layers):
        stacked = np.asarray(copies, np.float64).reshape(copies.shape[0], -1)
        group = stacked @ stacked.T
        gram = group if gram is None else gram + group
    return gram


def geometry(model, pairs="all"):
    """{"l2_j_k", "cos2_j_k" for j < k, "l2_mean", "cos2_mean"} of a SubspaceModel.

    Args:
        model: a `ts.SubspaceModel`.
        pairs: "all" returns every pair and the means; "mean" only the means.

    Values are Python floats. A subspace without penalized weights (or with a
    single point) returns an empty dict.
    """
    _check_model(model)
    if pairs not in PAIRS:
        raise ValueError(f"`pairs` must be one of {PAIRS}, got {pairs!r}.")
    gram = gram_matrix(model.subspace_layers)
    if gram is None or len(gram) < 2:
        return {}
    j, k = np.triu_indices(len(gram), k=1)
    squared_norms = np.diag(gram)
    # Clip: rounding can make ‖ω_j − ω_k‖² slightly negative for equal points.
    l2 = np.sqrt(np.maximum(squared_norms[j] + squared_norms[k] - 2.0 * gram[j, k], 0.0))
    denominator = squared_norms[j] * squared_norms[k]
    # An all-zero endpoint has no direction: report 0, as the penalty does.
    with np.errstate(divide="ignore", invalid="ignore"):
        cos2 = np.where(denominator > 0, np.square(gram[j, k]) / denominator, 0.0)
    stats = {}
    if pairs == "all":
        for a, b, distance, cosine in zip(j, k, l2, cos2):
            stats[f"l2_{a}_{b}"] = float(distance)
            stats[f"cos2_{a}_{b}"] = float(cosine)
    stats["l2_mean"] = float(np.mean(l2))
    stats["cos2_mean"] = float(np.mean(cos2))
    return stats


class SubspaceGeometry(keras.callbacks.Callback):
    """Adds the subspace's pairwise L2 distances and cos² to the epoch logs.

    Keys: `l2_{j}_{k}` and `cos2_{j}_{k}` for each pair j < k of points, and
    `l2_mean` / `cos2_mean` (means over pairs). They go into the `logs` dict of
    `on_epoch_end`, so `History` records them, and so does a
    `keras.callbacks.TensorBoard` (or CSVLogger) placed *after* this callback
    in the `callbacks` list.

    Args:
        pairs: "all" (default) logs every pair and the means; "mean" logs only
            the means, which keeps logs short for large simplexes or curves.

    Example:

    >>> import numpy as np, keras, tfsubspace as ts
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model = ts.convert(base, ts.Simplex(3), seed=0)
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> from tfsubspace.callbacks import SubspaceGeometry
    >>> callback = SubspaceGeometry(pairs="mean")
    >>> logs = model.fit(x, y, epochs=1, verbose=0, callbacks=[callback]).history
    >>> "l2_mean" in logs, "l2_0_1" in logs, 0.0 <= logs["cos2_mean"][0] <= 1.0
    (True, False, True)
    """

    def __init__(self, pairs="all"):
        super().__init__()
        if pairs not in PAIRS:
            raise ValueError(f"`pairs` must be one of {PAIRS}, got {pairs!r}.")
        self.pairs = pairs

    def on_train_begin(self, logs=None):
        # Fail before the first epoch rather than after a full epoch of work.
        _check_model(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        # Mutate in place: later callbacks in the list receive this same dict.
        logs.update(geometry(self.model, self.pairs))


class MidpointEvaluation(keras.callbacks.Callback):
    """Every `every` epochs, scores the subspace's center with batch norm recomputed.

    Training logs report the loss at random α; this shows how the point you
    will use (the center, paper 001 §4) is doing. Batch norm is recomputed at
    the center on `batchnorm_steps` training batches, the validation data is
    scored, and the model's moving statistics and inference α are restored, so
    training and other callbacks see no change. Logged like `val_*` metrics:
    `val_midpoint_accuracy`, `val_midpoint_nll`, `val_midpoint_ece`,
    `val_midpoint_brier` (into `History`, and TensorBoard when it comes after
    this callback).

    Args:
        validation_data: (x, y) batches (see `tfsubspace.evaluation.reader`).
        batchnorm_data: training batches for the batch-norm recompute.
        every: evaluate after every `every`-th epoch (and not in between).
        batchnorm_steps: batches of `batchnorm_data` per recompute (None:
            `ts.evaluate.DEFAULT_BATCHNORM_STEPS`, 20, as everywhere).
        from_logits: None reads it from the model (`evaluation.heads`).

    Example:

    >>> import numpy as np, keras, tensorflow as tf, tfsubspace as ts
    >>> base = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    >>> model = ts.convert(base, ts.Line(), seed=0)
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> data = tf.data.Dataset.from_tensor_slices((np.random.rand(32, 4).astype("float32"), np.arange(32) % 3)).batch(8)
    >>> callback = ts.callbacks.MidpointEvaluation(data, data, every=2, batchnorm_steps=2)
    >>> history = model.fit(data, epochs=2, verbose=0, callbacks=[callback])
    >>> [v is None for v in history.history.get("val_midpoint_accuracy", [None])]
    [False]
    """

    def __init__(self, validation_data, batchnorm_data, every=1, batchnorm_steps=None, from_logits=None):
        super().__init__()
        from tfsubspace.evaluation import forward, heads, reader

        every = reader.check_int(every, "every", 1)
        if batchnorm_steps is None:
            batchnorm_steps = forward.DEFAULT_BATCHNORM_STEPS
        reader.check_int(batchnorm_steps, "batchnorm_steps", 1)
        heads.check_from_logits(from_logits)
        self.validation_data = reader.batches(validation_data, "validation_data")
        self.batchnorm_data = batchnorm_data
        self.every = every
        self.batchnorm_steps = batchnorm_steps
        self.from_logits = from_logits

    def on_train_begin(self, logs=None):
        _check_model(self.model, who="MidpointEvaluation")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        from tfsubspace.evaluation.batchnorm import preserved_point
        from tfsubspace.evaluation import predict_at, scores as score

        model = self.model
        # Training goes on after this: leave its α and running statistics untouched.
        with preserved_point(model):
            probabilities, labels = predict_at(
                model, self.validation_data, alpha=model.subspace_shape.center, batchnorm_data=self.batchnorm_data,
                batchnorm_steps=self.batchnorm_steps, from_logits=self.from_logits, name="validation_data",
            )
        scores = score(probabilities, labels)
        if logs is not None:
            logs.update({f"val_midpoint_{name}": value for name, value in scores.items()})


class NonFiniteLossError(RuntimeError):
    """Raised by `StopOnNonFiniteLoss` at the first NaN or infinite training loss."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first non-finite loss by raising `NonFiniteLossError`.

    Unlike `keras.callbacks.TerminateOnNaN`, which lets the epoch end (so an
    epoch-end checkpoint would save the broken weights) and returns normally,
    this raises inside the batch: no later callback runs, the last checkpoint
    stays the last good one, and a training script exits with an error.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(1e30), "mse")
    >>> x = np.full((8, 2), 1e20, "float32")
    >>> try:
    ...     model.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[StopOnNonFiniteLoss()])
    ... except NonFiniteLossError as error:
    ...     print(str(error)[:40])
    training loss became inf at epoch 1, bat
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"training loss became {float(loss)} at epoch {getattr(self, '_epoch', 0) + 1}, batch {batch + 1}; "
                "stopped before saving it (lower the learning rate or check the data)."
            )
