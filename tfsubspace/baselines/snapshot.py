"""Snapshot ensembles (Huang et al. 2017): cosine cycles with restarts, one model per cycle.

The baseline of paper 001 §4.5 (Fig. 11, "6 model Snapshot Ensemble") and of
003 §6. Huang et al.'s learning rate over T iterations and M cycles is

    α(t) = α0/2 · (cos(π · mod(t − 1, ⌈T/M⌉) / ⌈T/M⌉) + 1),

which is exactly the stock `keras.optimizers.schedules.CosineDecayRestarts`
with `first_decay_steps = ⌈T/M⌉`, `t_mul = m_mul = 1`, `alpha = 0` at
`step = t − 1` (`snapshot_schedule` builds it). `SnapshotEnsemble` saves the
weights at the end of every cycle, where the LR has annealed to ≈ 0, just
before the restart.

Example:

>>> import numpy as np, keras, tensorflow as tf
>>> from tfsubspace.baselines import SnapshotEnsemble, snapshot_schedule
>>> schedule = snapshot_schedule(0.1, total_steps=12, num_snapshots=3)
>>> [round(float(schedule(s)), 3) for s in (0, 2, 3, 4)]
[0.1, 0.05, 0.015, 0.1]
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model.compile(keras.optimizers.SGD(schedule), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 3
>>> snapshots = SnapshotEnsemble(schedule)
>>> _ = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[snapshots])
>>> snapshots.collected_at
[4, 8, 12]
>>> test = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
>>> len(snapshots.ensemble(test)["members"])
3
"""

import math

import keras
import numpy as np

from tfsubspace.baselines.checkpoints import CheckpointCollector, _check_int, _check_number


def snapshot_schedule(learning_rate, total_steps, num_snapshots):
    """Huang et al.'s cyclic cosine schedule: `num_snapshots` cycles of ⌈T/M⌉ steps.

    Args:
        learning_rate: α0, the LR at the start of each cycle (0.1 in 003 §6).
        total_steps: T, the optimizer updates of the whole run.
        num_snapshots: M, the number of cycles (= snapshots).

    Returns:
        A `keras.optimizers.schedules.CosineDecayRestarts`.

    Example:

    >>> from tfsubspace.baselines import snapshot_schedule
    >>> schedule = snapshot_schedule(0.2, total_steps=100, num_snapshots=4)
    >>> schedule.first_decay_steps, round(float(schedule(25)), 3), round(float(schedule(50)), 3)
    (25, 0.2, 0.2)
    """
    _check_number(learning_rate, "learning_rate", strict=True)
    _check_int(total_steps, "total_steps", 1)
    _check_int(num_snapshots, "num_snapshots", 1)
    if num_snapshots > total_steps:
        raise ValueError(f"`num_snapshots` must be <= total_steps ({total_steps}), got {num_snapshots}.")
    return keras.optimizers.schedules.CosineDecayRestarts(
        initial_learning_rate=float(learning_rate),
        first_decay_steps=math.ceil(total_steps / num_snapshots),
        t_mul=1.0,
        m_mul=1.0,
        alpha=0.0,
    )


class StepCollector(CheckpointCollector):
    """Saves a checkpoint after each update listed by `due_count`.

    Subclasses define `due_count(iterations)`: how many checkpoints are due
    once `iterations` updates are done. Reading `optimizer.iterations` (not
    counting batches) keeps the checkpoints in the right place when `fit`
    resumes from `initial_epoch` (restore `set_state` first). With
    `steps_per_execution > 1` a checkpoint is taken at the first batch end at
    or after its iteration.
    """

    def due_count(self, iterations):
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        self._seen = int(self.model.optimizer.iterations)

    def on_train_batch_end(self, batch, logs=None):
        iterations = int(self.model.optimizer.iterations)
        if self.due_count(iterations) > self.due_count(self._seen):
            self.collect(iterations)
        self._seen = iterations


class SnapshotEnsemble(StepCollector):
    """Collects a snapshot at the end of every cycle of a `CosineDecayRestarts` schedule.

    Cycle k (k = 1, 2, ...) ends after `first_decay_steps · Σ_{j<k} t_mul^j`
    updates (every `first_decay_steps` updates when `t_mul = 1`, as in
    Huang et al. 2017); the snapshot is the weights right after that update,
    taken at the LR's minimum. `ensemble(test_data, batchnorm_data)` scores
    the snapshots (the `last` M of them) with `ts.evaluate.ensemble`.

    Args:
        schedule: the optimizer's `CosineDecayRestarts` (see
            `snapshot_schedule`).

    Example:

    >>> import keras
    >>> from tfsubspace.baselines import SnapshotEnsemble
    >>> schedule = keras.optimizers.schedules.CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0)
    >>> callback = SnapshotEnsemble(schedule)
    >>> [callback.due_count(i) for i in (9, 10, 29, 30, 70)]
    [0, 1, 1, 2, 3]
    """

    def __init__(self, schedule):
        super().__init__()
        if not isinstance(schedule, keras.optimizers.schedules.CosineDecayRestarts):
            raise ValueError(
                f"`schedule` must be a keras.optimizers.schedules.CosineDecayRestarts "
                f"(e.g. from snapshot_schedule), got {type(schedule).__name__}."
            )
        config = schedule.get_config()
        self.schedule = schedule
        self.cycle_steps = float(config["first_decay_steps"])
        self.t_mul = float(config["t_mul"])
        if not self.cycle_steps > 0 or not self.t_mul > 0:
            raise ValueError("`schedule` must have first_decay_steps > 0 and t_mul > 0.")

    def due_count(self, iterations):
        if self.t_mul == 1.0:
            # Small tolerance: float cycle lengths must not lose an exact boundary.
            return int(np.floor(iterations / self.cycle_steps + 1e-9))
        count, end, length = 0, self.cycle_steps, self.cycle_steps
        while end <= iterations + 1e-9:
            count += 1
            length *= self.t_mul
            end += length
        return count
