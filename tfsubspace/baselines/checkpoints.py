"""Weight checkpoints: collecting them during training and ensembling them.

`CheckpointCollector` is the base of the callbacks that save weight
checkpoints (`SWA`, `SnapshotEnsemble`, `FGESnapshots`); `model_with_weights`
turns a checkpoint into a model with batch norm recomputed, and
`ensemble_checkpoints` scores their ensemble with `ts.evaluate.ensemble`.

Example:

>>> import numpy as np, keras
>>> from tfsubspace.baselines.checkpoints import weight_values
>>> [w.shape for w in weight_values(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))]
[(2, 1), (1,)]
"""


import keras
import numpy as np

from tfsubspace import checks
from tfsubspace.evaluation.ensemble import ensemble
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS


def _check_int(value, name, minimum, allow_none=False):
    return checks.integer(value, f"`{name}`", minimum=minimum, allow_none=allow_none)


def _check_number(value, name, minimum=0.0, strict=False):
    return checks.number(value, f"`{name}`", minimum=minimum, minimum_open=strict)


def weight_values(model):
    """Copies of all of `model.weights` (trainable and non-trainable) as numpy."""
    return [np.array(value) for value in model.get_weights()]


def model_with_weights(model, weights, batchnorm_data=None, batchnorm_steps=DEFAULT_BATCHNORM_STEPS, batch_size=128):
    """A clone of `model` holding `weights`, batch norm recomputed on `batchnorm_data`.

    `model` is only the architecture template (a Sequential or functional
    Keras model); it is left unchanged. With `batchnorm_data` (training data:
    a tf.data.Dataset or arrays, as for `ts.recompute_batchnorm`) the clone's
    moving statistics are recomputed exactly at the new weights (000 §D.3);
    without, it keeps those in `weights`.

    Example:

    >>> import numpy as np, keras
    >>> from tfsubspace.baselines.checkpoints import model_with_weights
    >>> base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    >>> clone = model_with_weights(base, [np.ones((2, 1), "float32")])
    >>> clone.predict(np.array([[1.0, 2.0]]), verbose=0).tolist()
    [[3.0]]
    """
    from tfsubspace.evaluation.batchnorm import recompute_batchnorm

    clone = keras.models.clone_model(model)
    if not clone.built:
        clone.build(model.input_shape if hasattr(model, "input_shape") else None)
    clone.set_weights(weights)
    if batchnorm_data is not None:
        recompute_batchnorm(clone, batchnorm_data, steps=batchnorm_steps, batch_size=batch_size)
    return clone


def ensemble_checkpoints(
    checkpoints,
    test_data,
    *,
    model,
    batchnorm_data=None,
    batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
    from_logits=None,
    num_bins=15,
    temperature=1.0,
    verbose="auto",
):
    """Scores the ensemble of weight checkpoints with `ts.evaluate.ensemble`.

    Each checkpoint (a list of arrays in `model.weights` order, as saved by
    `SWA`, `SnapshotEnsemble`, `FGESnapshots` or sampled by `SWAG`) becomes a
    clone of `model`; with `batchnorm_data` its batch norm is recomputed
    (000 §D.3) before predicting. `model` is the architecture (keyword, as
    everywhere). Returns the `Table` of `ts.evaluate.ensemble` (rows; parts
    "ensemble" and "members").

    Example:

    >>> import numpy as np, keras, tensorflow as tf
    >>> from tfsubspace.baselines.checkpoints import ensemble_checkpoints
    >>> base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)], name="base")
    >>> checkpoints = [base.get_weights(), [w + 0.1 for w in base.get_weights()]]
    >>> test = tf.data.Dataset.from_tensor_slices((np.eye(2, dtype="float32"), np.arange(2))).batch(2)
    >>> result = ensemble_checkpoints(checkpoints, test, model=base)
    >>> [row["member"] for row in result]
    ['ensemble', 'base_checkpoint_0', 'base_checkpoint_1']
    """
    checkpoints = list(checkpoints)
    if not checkpoints:
        raise ValueError("`checkpoints` must hold at least one checkpoint; none were collected yet.")
    members = [model_with_weights(model, weights, batchnorm_data, batchnorm_steps) for weights in checkpoints]
    for index, member in enumerate(members):
        # evaluate.ensemble names members by model name; clones share one.
        member.name = f"{model.name}_checkpoint_{index}"
    return ensemble(
        members, test_data, from_logits=from_logits, num_bins=num_bins, temperature=temperature, verbose=verbose
    )


class CheckpointCollector(keras.callbacks.Callback):
    """Base of the callbacks that save weight checkpoints during training.

    Keeps `checkpoints` (lists of numpy arrays in `model.weights` order),
    `collected_at` (the epoch or iteration of each) and `trainable` (which
    weights are trainable), and turns them into models or an ensemble.
    Subclasses decide when to call `collect`.

    Example:

    >>> import numpy as np, keras
    >>> from tfsubspace.baselines.checkpoints import CheckpointCollector
    >>> collector = CheckpointCollector()
    >>> collector.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    >>> collector.collect(7)
    >>> collector.collected_at, [w.shape for w in collector.checkpoints[0]], collector.trainable
    ([7], [(2, 1), (1,)], [True, True])
    """

    def __init__(self):
        super().__init__()
        self.checkpoints = []
        self.collected_at = []
        self.trainable = None

    def collect(self, when):
        """Saves a copy of the model's weights, recorded as taken at `when`."""
        if self.trainable is None:
            self.trainable = [bool(v.trainable) for v in self.model.weights]
        self.checkpoints.append(weight_values(self.model))
        self.collected_at.append(int(when))

    def get_state(self):
        """The collected state as plain Python/numpy (for saving with the model)."""
        return {
            "checkpoints": [[np.array(w) for w in c] for c in self.checkpoints],
            # JSON turns arrays into lists: keep the dtypes to restore them.
            "dtypes": [str(w.dtype) for w in self.checkpoints[0]] if self.checkpoints else None,
            "collected_at": list(self.collected_at),
            "trainable": None if self.trainable is None else list(self.trainable),
        }

    def set_state(self, state):
        """Restores what `get_state` returned, also after a JSON round trip (e.g. before resuming `fit`)."""
        dtypes = state.get("dtypes")
        self.checkpoints = [
            [np.asarray(w, dtype=dtypes[j] if dtypes else None) for j, w in enumerate(c)] for c in state["checkpoints"]
        ]
        self.collected_at = [int(s) for s in state["collected_at"]]
        self.trainable = None if state["trainable"] is None else [bool(t) for t in state["trainable"]]

    def _template(self, model):
        template = model if model is not None else self.model
        if template is None:
            raise ValueError("`model` is required: this callback was not used in `fit` (pass the architecture).")
        return template

    def _selected(self, last):
        _check_int(last, "last", 1, allow_none=True)
        return self.checkpoints if last is None else self.checkpoints[-last:]

    def members(self, batchnorm_data=None, batchnorm_steps=DEFAULT_BATCHNORM_STEPS, last=None, model=None):
        """One model per checkpoint (the `last` ones), batch norm recomputed on `batchnorm_data`."""
        template = self._template(model)
        return [model_with_weights(template, w, batchnorm_data, batchnorm_steps) for w in self._selected(last)]

    def ensemble(self, test_data, *, model=None, batchnorm_data=None, batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
                 last=None, **kwargs):
        """`ensemble_checkpoints` of the collected checkpoints (the `last` ones)."""
        return ensemble_checkpoints(
            self._selected(last),
            test_data,
            model=self._template(model),
            batchnorm_data=batchnorm_data,
            batchnorm_steps=batchnorm_steps,
            **kwargs,
        )
