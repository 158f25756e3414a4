"""Stochastic Weight Averaging (Izmailov et al. 2018) as a Keras callback.

The SWA baseline of paper 001 (§2 Observation 5, §4.3 Fig. 7, §4.5 Fig. 11)
with the settings of appendix 000 §D.4 and §F: train normally until
`start_epoch` (default 75% of training), then use either a cyclic or a high
constant learning rate (`swa_lr`, default 0.05) while saving m checkpoints; the
SWA solution is their average, with batch-norm statistics recomputed on
training data (000 §D.3, `ts.recompute_batchnorm`). The same checkpoints give
the SWA-checkpoint ensemble of Fig. 11 (`SWA.ensemble`) and the Gaussian of
SWAG (`tfsubspace.baselines.SWAG`).

Two protocols place the m checkpoints (`protocol=`):

- "authors" (default; the reference code of paper 001): the first phase is
  annealed to 0 at `start` (give the optimizer a base schedule that ends
  there), the first checkpoint is taken there, then m − 1 cycles follow, each
  ending in a checkpoint: epochs start, start + ⌊k·(epochs − start)/(m − 1)⌋
  for k = 1..m−1.
- "paper" (the text of 000 §D.4, the earlier default here): the schedule is cut
  at `start` and all m checkpoints end m equal stretches of the late phase,
  epochs `start + ⌊k·(epochs − start)/m⌋` for k = 1..m.

With the cyclic LR each late stretch is one cosine cycle from `swa_lr` down to
`min_lr`, so each checkpoint is taken at a low LR; with the constant LR each is
taken at `swa_lr`.

Checkpoints live in memory as numpy arrays (`model.weights` order), so
`get_state()` / `set_state()` can store them with the model for resuming.

Example:

>>> import numpy as np, keras
>>> from tfsubspace.baselines import SWA
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(), keras.layers.Dense(3)])
>>> model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x, y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), np.arange(32) % 3
>>> swa = SWA(epochs=4, num_checkpoints=2, start_epoch=2)
>>> swa.start_epoch, swa.checkpoint_epochs
(2, (2, 4))
>>> _ = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[swa])
>>> len(swa.checkpoints), swa.collected_at
(2, [2, 4])
>>> averaged = swa.averaged_model(batchnorm_data=x)
>>> bool(np.allclose(averaged.layers[1].kernel, np.mean([c[4] for c in swa.checkpoints], axis=0)))
True
"""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from tfsubspace.baselines.checkpoints import CheckpointCollector, _check_int, _check_number, model_with_weights
from tfsubspace.evaluation.forward import DEFAULT_BATCHNORM_STEPS

LR_SCHEDULES = ("cyclic", "constant", None)
MODES = ("cyclic", "constant")
PROTOCOLS = ("authors", "paper")


def _check_base(base, name="base"):
    if base is None or isinstance(base, keras.optimizers.schedules.LearningRateSchedule):
        return
    _check_number(base, name, strict=True)


def serialize_schedule(schedule):
    """A float, None or a LearningRateSchedule as a JSON-compatible value."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return keras.optimizers.schedules.serialize(schedule)
    return schedule


def deserialize_schedule(value):
    if isinstance(value, dict):
        return keras.optimizers.schedules.deserialize(value)
    return value


def evaluate_schedule(schedule, step, dtype=tf.float32):
    """`schedule(step)` for a LearningRateSchedule, the constant otherwise."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return tf.cast(schedule(step), dtype)
    return tf.constant(schedule, dtype)


@keras.saving.register_keras_serializable(package="tfsubspace")
class SWASchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The SWA learning rate: `base` until `start_step`, then cyclic or high constant.

    000 §D.4/§F: the late phase of SWA uses either a high constant LR
    (`mode="constant"`: lr(step) = swa_lr) or a cyclic one (`mode="cyclic"`):
    cycle k runs from `boundaries[k-1]` (from `start_step` for k = 0) to
    `boundaries[k]` and anneals with a cosine,

        lr(step) = min_lr + ½ (swa_lr − min_lr) (1 + cos(π (step − b_start) / (b_end − b_start))),

    so a checkpoint taken at a boundary sits at the bottom of a cycle. Past
    the last boundary cycles continue with the last cycle's length. `step` is
    `optimizer.iterations` (0 for the first update).

    Args:
        base: the LR before `start_step`: a float or a LearningRateSchedule
            (e.g. the standard cosine schedule of the run).
        start_step: first iteration of the late phase.
        swa_lr: the SWA learning rate (0.05 in 000 §D.4).
        mode: "cyclic" or "constant".
        boundaries: increasing iterations > start_step where cycles end
            (required for "cyclic", ignored for "constant").
        min_lr: the LR at the end of each cycle.

    Example:

    >>> from tfsubspace.baselines import SWASchedule
    >>> schedule = SWASchedule(0.1, start_step=4, swa_lr=0.05, boundaries=[8, 12])
    >>> [round(float(schedule(s)), 4) for s in (0, 3, 4, 6, 7, 8, 10)]
    [0.1, 0.1, 0.05, 0.025, 0.0073, 0.05, 0.025]
    >>> round(float(SWASchedule(0.1, start_step=4, mode="constant")(9)), 4)
    0.05
    """

    def __init__(self, base, start_step, swa_lr=0.05, mode="cyclic", boundaries=None, min_lr=0.0, name=None):
        super().__init__()
        _check_base(base)
        _check_int(start_step, "start_step", 0)
        _check_number(swa_lr, "swa_lr", strict=True)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
        _check_number(min_lr, "min_lr")
        if not min_lr < swa_lr:
            raise ValueError(f"`min_lr` must be < swa_lr ({swa_lr}), got {min_lr!r}.")
        if mode == "cyclic":
            points = [start_step] + list(boundaries or [])
            if (
                len(points) < 2
                or any(isinstance(b, bool) or not isinstance(b, numbers.Integral) for b in points)
                or any(b <= a for a, b in zip(points, points[1:]))
            ):
                raise ValueError(
                    f"`boundaries` must be a non-empty increasing list of integers > start_step ({start_step}) "
                    f"for mode='cyclic', got {boundaries!r}."
                )
            boundaries = [int(b) for b in boundaries]
        else:
            boundaries = None
        self.base = base
        self.start_step = int(start_step)
        self.swa_lr = float(swa_lr)
        self.mode = mode
        self.boundaries = boundaries
        self.min_lr = float(min_lr)
        self.name = name

    def __call__(self, step):
        with tf.name_scope(self.name or "SWASchedule"):
            step = tf.cast(step, tf.float64)
            if self.mode == "constant":
                late = tf.constant(self.swa_lr, tf.float64)
            else:
                starts = tf.constant([self.start_step] + self.boundaries[:-1], tf.float64)
                ends = tf.constant(self.boundaries, tf.float64)
                cycle = tf.searchsorted(ends, tf.reshape(step, [1]), side="right")[0]
                cycle = tf.minimum(cycle, len(self.boundaries) - 1)
                length = tf.gather(ends, cycle) - tf.gather(starts, cycle)
                # mod: identity inside the planned cycles, repeats the last one after.
                position = tf.math.floormod(step - tf.gather(starts, cycle), length) / length
                late = self.min_lr + 0.5 * (self.swa_lr - self.min_lr) * (1.0 + tf.cos(math.pi * position))
            late = tf.cast(late, tf.float32)
            if self.base is None:
                return late
            return tf.where(step < self.start_step, evaluate_schedule(self.base, step), late)

    def get_config(self):
        return {
            "base": serialize_schedule(self.base),
            "start_step": self.start_step,
            "swa_lr": self.swa_lr,
            "mode": self.mode,
            "boundaries": self.boundaries,
            "min_lr": self.min_lr,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base"] = deserialize_schedule(config["base"])
        return cls(**config)


class SWA(CheckpointCollector):
    """Stochastic Weight Averaging: m checkpoints in the late phase, averaged (000 §D.4).

    Saves a checkpoint at the end of each epoch in `checkpoint_epochs` (m
    epochs spread over [start_epoch, epochs] by `protocol`, the last one at
    the end of training), keeps their running average, and builds the SWA model with
    batch norm recomputed. The late-phase LR comes from
    `learning_rate_schedule(base, steps_per_epoch)` (an `SWASchedule` to
    give the optimizer), or, if the optimizer has a plain float LR, is set by
    this callback each batch; `lr_schedule=None` leaves the LR alone.

    Args:
        epochs: the total number of training epochs (as given to `fit`).
        num_checkpoints: m, checkpoints to save and average (6 for SWAG in
            000 §D.4; m = the simplex's vertices for parity in 001 §4.3).
        start_epoch: epochs of ordinary training before the late phase;
            default ⌊0.75·epochs⌋ (000 §D.4: 40 of 160 epochs before the end).
        swa_lr: the late-phase learning rate (0.05).
        lr_schedule: "cyclic", "constant" (high constant) or None.
        min_lr: the LR at the end of each cycle ("cyclic").
        batchnorm_data: if given, `on_train_end` builds `self.averaged`,
            the SWA model with batch norm recomputed on this training data.
        batchnorm_steps: batches of `batchnorm_data` for the recompute.
        protocol: "authors" (first checkpoint at start_epoch, where the base
            schedule has annealed to 0, then m − 1 cycles) or "paper" (m
            cycles after a schedule cut at start_epoch); see the module doc.

    Example:

    >>> from tfsubspace.baselines import SWA
    >>> swa = SWA(epochs=160, num_checkpoints=6)
    >>> swa.start_epoch, swa.checkpoint_epochs
    (120, (120, 128, 136, 144, 152, 160))
    >>> schedule = swa.learning_rate_schedule(0.1, steps_per_epoch=10)
    >>> schedule.start_step, schedule.boundaries[:2], round(float(schedule(1200)), 4)
    (1200, [1280, 1360], 0.05)
    >>> SWA(epochs=160, num_checkpoints=6, protocol="paper").checkpoint_epochs
    (126, 133, 140, 146, 153, 160)
    """

    def __init__(
        self,
        epochs,
        num_checkpoints=6,
        start_epoch=None,
        swa_lr=0.05,
        lr_schedule="cyclic",
        min_lr=0.0,
        batchnorm_data=None,
        batchnorm_steps=DEFAULT_BATCHNORM_STEPS,
        protocol="authors",
    ):
        super().__init__()
        _check_int(epochs, "epochs", 1)
        _check_int(num_checkpoints, "num_checkpoints", 1)
        if protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {PROTOCOLS}, got {protocol!r}.")
        if start_epoch is None:
            # "authors" with one checkpoint: it is the annealed end of training.
            start_epoch = epochs if (protocol == "authors" and num_checkpoints == 1) else int(0.75 * epochs)
        # "authors" takes its first checkpoint at the end of epoch start_epoch.
        _check_int(start_epoch, "start_epoch", 1 if protocol == "authors" else 0)
        cycles = num_checkpoints - 1 if protocol == "authors" else num_checkpoints
        if epochs - start_epoch < cycles or (protocol == "authors" and cycles == 0 and epochs != start_epoch):
            need = "0 (one checkpoint is taken at start_epoch)" if cycles == 0 else f">= {cycles}"
            raise ValueError(
                f"`num_checkpoints` must fit the late phase: epochs - start_epoch = {epochs - start_epoch} must be "
                f"{need} with protocol={protocol!r} (one checkpoint per epoch at most), got num_checkpoints="
                f"{num_checkpoints}; lower start_epoch or num_checkpoints."
            )
        _check_number(swa_lr, "swa_lr", strict=True)
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"`lr_schedule` must be one of {LR_SCHEDULES}, got {lr_schedule!r}.")
        _check_number(min_lr, "min_lr")
        if not min_lr < swa_lr:
            raise ValueError(f"`min_lr` must be < swa_lr ({swa_lr}), got {min_lr!r}.")
        _check_int(batchnorm_steps, "batchnorm_steps", 1, allow_none=True)
        self.epochs = epochs
        self.num_checkpoints = num_checkpoints
        self.start_epoch = start_epoch
        self.swa_lr = float(swa_lr)
        self.lr_schedule = lr_schedule
        self.min_lr = float(min_lr)
        self.batchnorm_data = batchnorm_data
        self.batchnorm_steps = batchnorm_steps
        self.protocol = protocol
        late = epochs - start_epoch
        first = (start_epoch,) if protocol == "authors" else ()
        self.checkpoint_epochs = first + tuple(start_epoch + (k * late) // cycles for k in range(1, cycles + 1))
        self.averaged = None
        self._mean = None  # running average, float64
        self._count = 0
        self._assigned = None  # SWASchedule driving a plain-float LR

    def learning_rate_schedule(self, base, steps_per_epoch):
        """The `SWASchedule` matching this callback: `base` first, then the late phase.

        Args:
            base: the LR before `start_epoch` (float or LearningRateSchedule);
                with protocol "authors" it should anneal to 0 at start_epoch
                (e.g. a cosine over start_epoch epochs), as the reference does.
            steps_per_epoch: optimizer updates per epoch.
        """
        _check_int(steps_per_epoch, "steps_per_epoch", 1)
        late_ends = [e for e in self.checkpoint_epochs if e > self.start_epoch]
        mode = (self.lr_schedule or "constant") if late_ends else "constant"
        return SWASchedule(
            base,
            start_step=self.start_epoch * steps_per_epoch,
            swa_lr=self.swa_lr,
            mode=mode,
            boundaries=[e * steps_per_epoch for e in late_ends] if mode == "cyclic" else None,
            min_lr=self.min_lr,
        )

    def on_train_begin(self, logs=None):
        if self.lr_schedule is None:
            return
        optimizer = self.model.optimizer
        # Keras 3 keeps a schedule, or a variable for a float LR, in `_learning_rate`.
        current = getattr(optimizer, "_learning_rate", None)
        if isinstance(current, SWASchedule):
            return
        if isinstance(current, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                f"SWA(lr_schedule={self.lr_schedule!r}) cannot change the optimizer's {type(current).__name__}: "
                "give the optimizer swa.learning_rate_schedule(that_schedule, steps_per_epoch), or pass lr_schedule=None."
            )
        steps = (self.params or {}).get("steps")
        if not steps:
            raise ValueError(
                "SWA needs the number of steps per epoch to set the LR: use a dataset of known length, "
                "`steps_per_epoch`, or give the optimizer swa.learning_rate_schedule(base, steps_per_epoch)."
            )
        base = self._assigned.base if self._assigned is not None else float(np.asarray(optimizer.learning_rate))
        self._assigned = self.learning_rate_schedule(base, int(steps))

    def on_train_batch_begin(self, batch, logs=None):
        if self._assigned is not None:
            optimizer = self.model.optimizer
            optimizer.learning_rate = float(self._assigned(int(optimizer.iterations)))

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.checkpoint_epochs and epoch + 1 not in self.collected_at:
            self.collect(epoch + 1)

    def collect(self, when):
        super().collect(when)
        latest = self.checkpoints[-1]
        if self._mean is None:
            self._mean = [np.zeros(w.shape, np.float64) for w in latest]
        self._count += 1
        for mean, value in zip(self._mean, latest):
            if np.issubdtype(value.dtype, np.floating):
                mean += (value.astype(np.float64) - mean) / self._count

    def on_train_end(self, logs=None):
        if self.batchnorm_data is not None and self._count:
            self.averaged = self.averaged_model(self.batchnorm_data, self.batchnorm_steps)

    def averaged_weights(self):
        """The running average of the checkpoints, in `model.weights` order and dtypes.

        Non-float weights (none in stock layers) keep the latest checkpoint's
        value. Batch-norm moving statistics are averaged too; recompute them
        (`averaged_model(batchnorm_data)`) for the real SWA model.
        """
        if not self._count:
            raise ValueError("SWA has no checkpoints yet: train past the first of checkpoint_epochs first.")
        latest = self.checkpoints[-1] if self.checkpoints else None
        return [
            mean.astype(value.dtype) if np.issubdtype(value.dtype, np.floating) else value.copy()
            for mean, value in zip(self._mean, latest)
        ]

    def averaged_model(self, batchnorm_data=None, batchnorm_steps=DEFAULT_BATCHNORM_STEPS, model=None):
        """A clone of the model with the averaged weights, batch norm recomputed on `batchnorm_data`.

        Args:
            batchnorm_data: training data (dataset or arrays); None keeps the
                averaged moving statistics (not recommended, 000 §D.3).
            batchnorm_steps: batches of `batchnorm_data` for the recompute.
            model: the architecture, if this callback was not used in `fit`.
        """
        return model_with_weights(self._template(model), self.averaged_weights(), batchnorm_data, batchnorm_steps)

    def get_state(self):
        state = super().get_state()
        state["mean"] = None if self._mean is None else [m.copy() for m in self._mean]
        state["count"] = self._count
        state["base_lr"] = None if self._assigned is None else self._assigned.base
        return state

    def set_state(self, state):
        super().set_state(state)
        self._mean = None if state["mean"] is None else [np.array(m, np.float64) for m in state["mean"]]
        self._count = int(state["count"])
        if state.get("base_lr") is not None:
            # Keeps the pre-SWA LR of a float-LR optimizer across a resume.
            self._assigned = SWASchedule(float(state["base_lr"]), start_step=0, mode="constant")
