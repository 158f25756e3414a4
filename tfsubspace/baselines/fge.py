"""Fast Geometric Ensembling (paper 003 §5, Algorithm 1 and §A.9).

Starting from a network pre-trained for about 80% of the budget (003 §5),
FGE trains with a triangular cyclic learning rate, per iteration i = 1..n
(one iteration = one mini-batch),

    t(i) = (mod(i − 1, c) + 1) / c,
    α(i) = (1 − 2t(i)) α1 + 2t(i) α2          for 0 < t(i) ≤ ½,
    α(i) = (2 − 2t(i)) α2 + (2t(i) − 1) α1    for ½ < t(i) ≤ 1,

with α1 > α2 and an even cycle length c, and collects the weights after every
iteration with mod(i, c) = c/2, where α(i) = α2 is the cycle's minimum; the
ensemble averages the collected models' predictions. 003 §6/A.9 use
c = 2–4 epochs, α1 = 5·10⁻², α2 = 5·10⁻⁴ for ResNets (10⁻², 5·10⁻⁴ for VGG).

`FGE` is the schedule (a Keras `LearningRateSchedule`: step = optimizer
iterations, so i = step − start_step + 1) and `FGESnapshots` the callback.

Example:

>>> import numpy as np, keras, tensorflow as tf
>>> from tfsubspace.baselines import FGE, FGESnapshots
>>> schedule = FGE(alpha_1=0.1, alpha_2=0.01, cycle_steps=4)
>>> [round(float(schedule(step)), 4) for step in range(6)]
[0.055, 0.01, 0.055, 0.1, 0.055, 0.01]
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model.compile(keras.optimizers.SGD(schedule), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 3
>>> fge = FGESnapshots(schedule)
>>> _ = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[fge])
>>> fge.collected_at
[2, 6, 10]
>>> test = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
>>> len(fge.ensemble(test)["members"])
3
"""

import keras
import tensorflow as tf

from tfsubspace.baselines.snapshot import StepCollector
from tfsubspace.baselines.checkpoints import _check_int, _check_number
from tfsubspace.baselines.swa import (
    _check_base,
    deserialize_schedule,
    evaluate_schedule,
    serialize_schedule,
)


@keras.saving.register_keras_serializable(package="tfsubspace")
class FGE(keras.optimizers.schedules.LearningRateSchedule):
    """003's FGE learning rate α(i): triangular cycles between α1 and α2 (§5, Alg. 1).

    For step ≥ `start_step`, with i = step − start_step + 1 and
    t(i) = (mod(i − 1, c) + 1)/c:
    α(i) = (1 − 2t)α1 + 2tα2 if t ≤ ½, else (2 − 2t)α2 + (2t − 1)α1.
    So each cycle falls linearly from α1 to α2 at its midpoint i ≡ c/2
    (mod c) and climbs back to α1 at i ≡ 0. Before `start_step` the LR is
    `base` (the pre-training schedule, or α1 if None), so one `fit` can run
    the ~80% pre-training and FGE.

    Args:
        alpha_1: the high LR α1.
        alpha_2: the low LR α2 (0 ≤ α2 < α1).
        cycle_steps: c, iterations per cycle (even, ≥ 2).
        start_step: the iteration where FGE begins.
        base: float or LearningRateSchedule for steps < start_step.

    Example:

    >>> from tfsubspace.baselines import FGE
    >>> schedule = FGE(alpha_1=0.05, alpha_2=0.0005, cycle_steps=4, start_step=10, base=0.1)
    >>> [round(float(schedule(s)), 5) for s in (9, 10, 11, 12, 13)]
    [0.1, 0.02525, 0.0005, 0.02525, 0.05]
    >>> FGE.from_config(schedule.get_config()).get_config() == schedule.get_config()
    True
    """

    def __init__(self, alpha_1=0.05, alpha_2=5e-4, cycle_steps=2, start_step=0, base=None, name=None):
        super().__init__()
        _check_number(alpha_1, "alpha_1", strict=True)
        _check_number(alpha_2, "alpha_2")
        if not alpha_2 < alpha_1:
            raise ValueError(f"`alpha_2` must be < alpha_1 ({alpha_1}) (003 §5: α1 > α2), got {alpha_2!r}.")
        _check_int(cycle_steps, "cycle_steps", 2)
        if cycle_steps % 2:
            raise ValueError(f"`cycle_steps` must be an even integer >= 2 (003 §5), got {cycle_steps!r}.")
        _check_int(start_step, "start_step", 0)
        _check_base(base)
        self.alpha_1 = float(alpha_1)
        self.alpha_2 = float(alpha_2)
        self.cycle_steps = int(cycle_steps)
        self.start_step = int(start_step)
        self.base = base
        self.name = name

    def __call__(self, step):
        with tf.name_scope(self.name or "FGE"):
            step = tf.cast(step, tf.float64)
            c = float(self.cycle_steps)
            i = step - self.start_step + 1.0
            t = (tf.math.floormod(i - 1.0, c) + 1.0) / c
            falling = (1.0 - 2.0 * t) * self.alpha_1 + 2.0 * t * self.alpha_2
            rising = (2.0 - 2.0 * t) * self.alpha_2 + (2.0 * t - 1.0) * self.alpha_1
            rate = tf.cast(tf.where(t <= 0.5, falling, rising), tf.float32)
            before = evaluate_schedule(self.alpha_1 if self.base is None else self.base, step)
            return tf.where(step < self.start_step, before, rate)

    def get_config(self):
        return {
            "alpha_1": self.alpha_1,
            "alpha_2": self.alpha_2,
            "cycle_steps": self.cycle_steps,
            "start_step": self.start_step,
            "base": serialize_schedule(self.base),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base"] = deserialize_schedule(config["base"])
        return cls(**config)


class FGESnapshots(StepCollector):
    """Collects the weights at each FGE cycle's minimum (003 Alg. 1: mod(i, c) = c/2).

    After the update of iteration i = iterations − start_step with
    mod(i, c) = c/2, i.e. the one made at α(i) = α2, the weights are saved;
    `ensemble(test_data, batchnorm_data)` scores them with
    `ts.evaluate.ensemble` (batch norm recomputed per member when
    `batchnorm_data` is given, 003 A.2).

    Args:
        schedule: the optimizer's `FGE` schedule (gives c and the start).

    Example:

    >>> from tfsubspace.baselines import FGE, FGESnapshots
    >>> callback = FGESnapshots(FGE(cycle_steps=4, start_step=100))
    >>> [callback.due_count(i) for i in (100, 101, 102, 105, 106, 110)]
    [0, 0, 1, 1, 2, 3]
    """

    def __init__(self, schedule):
        super().__init__()
        if not isinstance(schedule, FGE):
            raise ValueError(f"`schedule` must be a tfsubspace.baselines.FGE, got {type(schedule).__name__}.")
        self.schedule = schedule

    def due_count(self, iterations):
        c, half = self.schedule.cycle_steps, self.schedule.cycle_steps // 2
        i = iterations - self.schedule.start_step
        return 0 if i < half else (i - half) // c + 1
