"""Baselines: SWA, SWAG, snapshot ensembles, FGE and label noise (issue 4)."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsubspace as ts
from conftest import small_cnn, tiny_data
from tfsubspace.baselines import (
    FGE,
    SWA,
    SWAG,
    FGESnapshots,
    SnapshotEnsemble,
    SWASchedule,
    corrupt_labels,
    snapshot_schedule,
)

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _compiled(learning_rate):
    model = small_cnn()
    model.compile(keras.optimizers.SGD(learning_rate, momentum=0.9), LOSS, jit_compile=False)
    return model


def _dataset(x, y, batch_size=16):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


class _RecordLR(keras.callbacks.Callback):
    """The learning rate used by each update, and the weights after chosen ones."""

    def __init__(self, keep_at=()):
        super().__init__()
        self.rates, self.kept, self.keep_at = [], {}, set(keep_at)

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))

    def on_train_batch_end(self, batch, logs=None):
        iterations = int(self.model.optimizer.iterations)
        if iterations in self.keep_at:
            self.kept[iterations] = self.model.get_weights()


def _fge_formula(i, alpha_1, alpha_2, c):
    """003 §5 α(i), written independently of the library (i is 1-based)."""
    t = ((i - 1) % c + 1) / c
    if t <= 0.5:
        return (1 - 2 * t) * alpha_1 + 2 * t * alpha_2
    return (2 - 2 * t) * alpha_2 + (2 * t - 1) * alpha_1


# --- SWA -------------------------------------------------------------------


def test_swa_paper_protocol_starts_at_75_percent_and_spreads_m_checkpoints_to_the_end():
    swa = SWA(epochs=160, num_checkpoints=6, protocol="paper")
    assert swa.start_epoch == 120
    assert swa.checkpoint_epochs == (126, 133, 140, 146, 153, 160)
    assert SWA(epochs=10, num_checkpoints=2, protocol="paper").checkpoint_epochs == (8, 10)


def test_swa_authors_protocol_takes_the_first_checkpoint_at_the_start_then_m_minus_1_cycles():
    swa = SWA(epochs=160, num_checkpoints=6)
    assert swa.protocol == "authors" and swa.start_epoch == 120
    assert swa.checkpoint_epochs == (120, 128, 136, 144, 152, 160)
    schedule = swa.learning_rate_schedule(0.1, steps_per_epoch=10)
    # Cycles end at the later checkpoints only; the first phase belongs to the base schedule.
    assert schedule.start_step == 1200 and schedule.boundaries == [1280, 1360, 1440, 1520, 1600]
    assert SWA(epochs=10, num_checkpoints=1).checkpoint_epochs == (10,)


def test_swa_authors_protocol_first_phase_anneals_to_zero_and_first_checkpoint_is_there():
    """The binary's SWA run: a cosine over the first phase reaches 0 at start, where checkpoint 1 is taken."""
    from tfsubspace import config as config_lib
    from tfsubspace.experiments import baselines as runners

    config = config_lib.base_config()
    config.method, config.train.epochs, config.train.warmup_epochs = "swa", 8, 1
    config.baseline.swa_num_checkpoints, config.baseline.swa_start_fraction = 3, 0.5
    swa, schedule = runners.swa_callback_and_schedule(config, steps_per_epoch=10)
    assert swa.checkpoint_epochs == (4, 6, 8)
    rates = [float(schedule(step)) for step in range(80)]
    assert rates[39] < 2e-3 and rates[30] > rates[39]  # annealing towards 0 at the end of epoch 4 (step 40)
    assert rates[40] == pytest.approx(config.baseline.swa_lr)  # then the first cycle restarts at swa_lr
    assert rates[59] < 1e-3 and rates[60] == pytest.approx(config.baseline.swa_lr)
    paper = config.copy_and_resolve_references()
    paper.baseline.swa_protocol = "paper"
    swa, schedule = runners.swa_callback_and_schedule(paper, steps_per_epoch=10)
    assert swa.checkpoint_epochs == (5, 6, 8) and float(schedule(39)) > 0.01  # cut, not annealed


@pytest.fixture(scope="module")
def swa_run():
    """One short SWA fit shared by the tests that only read its results (keeps the file fast)."""
    keras.utils.set_random_seed(1234)
    x, y = tiny_data(n=64)
    swa = SWA(epochs=4, num_checkpoints=3, start_epoch=1, batchnorm_data=x, protocol="paper")
    # The optimizer gets the SWA callback's own schedule around a stock one.
    model = _compiled(swa.learning_rate_schedule(keras.optimizers.schedules.CosineDecay(0.05, 16), steps_per_epoch=4))
    recorder = _RecordLR(keep_at=(8,))  # 4 steps an epoch: epoch 2 ends at iteration 8
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[swa, recorder])
    return model, swa, recorder, x, y


def test_swa_averaged_weights_equal_mean_of_saved_checkpoints_and_bn_is_recomputed(swa_run):
    model, swa, recorder, x, _ = swa_run
    assert swa.collected_at == [2, 3, 4]
    for saved, kept in zip(swa.checkpoints[0], recorder.kept[8]):
        np.testing.assert_array_equal(saved, kept)
    for saved, final in zip(swa.checkpoints[-1], model.get_weights()):
        np.testing.assert_array_equal(saved, final)
    for j, averaged in enumerate(swa.averaged_weights()):
        expected = np.mean([c[j].astype(np.float64) for c in swa.checkpoints], axis=0)
        np.testing.assert_allclose(averaged, expected, rtol=1e-6, atol=1e-7)
    # The checkpoints really differ: the average is not any one of them.
    assert not np.allclose(swa.checkpoints[0][0], swa.checkpoints[-1][0])

    averaged = swa.averaged  # built at train end because batchnorm_data was given
    trainable = [w for w, t in zip(averaged.get_weights(), swa.trainable) if t]
    expected = [w for w, t in zip(swa.averaged_weights(), swa.trainable) if t]
    for got, want in zip(trainable, expected):
        np.testing.assert_array_equal(got, want)
    reference = ts.recompute_batchnorm(swa.averaged_model(), x)
    bn, reference_bn = averaged.get_layer("bn"), reference.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean, reference_bn.moving_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, reference_bn.moving_variance, rtol=1e-5, atol=1e-6)
    # Building the average leaves the trained model untouched.
    np.testing.assert_array_equal(model.get_weights()[0], swa.checkpoints[-1][0])


def test_swa_cyclic_lr_reaches_its_minimum_at_each_checkpoint(swa_run):
    _, swa, recorder, _, _ = swa_run
    rates = recorder.rates
    assert rates[4] == pytest.approx(0.05) and rates[8] == pytest.approx(0.05) and rates[12] == pytest.approx(0.05)
    for end in (8, 12, 16):  # the update right before each checkpoint has the cycle's lowest LR
        assert rates[end - 1] == pytest.approx(min(rates[end - 4 : end]))
        assert rates[end - 1] == pytest.approx(0.5 * 0.05 * (1 + math.cos(math.pi * 3 / 4)), rel=1e-5)


def test_swa_schedule_late_phase_values():
    base = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    cyclic = SWASchedule(base, start_step=40, swa_lr=0.05, boundaries=[50, 70])
    for step in (0, 17, 39):
        assert float(cyclic(step)) == pytest.approx(float(base(step)), rel=1e-6)
    for step, start, end in [(40, 40, 50), (45, 40, 50), (49, 40, 50), (50, 50, 70), (69, 50, 70), (75, 70, 90)]:
        expected = 0.5 * 0.05 * (1 + math.cos(math.pi * (step - start) / (end - start)))
        assert float(cyclic(step)) == pytest.approx(expected, rel=1e-5, abs=1e-8), step
    constant = SWASchedule(base, start_step=40, swa_lr=0.05, mode="constant")
    assert [float(constant(s)) for s in (40, 55, 1000)] == pytest.approx([0.05] * 3)
    assert float(constant(39)) == pytest.approx(float(base(39)), rel=1e-6)


@pytest.mark.parametrize("lr_schedule", ["cyclic", "constant"])
def test_swa_sets_late_phase_lr_of_a_float_optimizer(lr_schedule):
    x, y = tiny_data(n=32)
    model = _compiled(0.1)
    swa = SWA(epochs=4, num_checkpoints=2, start_epoch=2, lr_schedule=lr_schedule, swa_lr=0.05, protocol="paper")
    recorder = _RecordLR()
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[swa, recorder])
    expected = swa.learning_rate_schedule(0.1, steps_per_epoch=2)
    assert recorder.rates[:4] == pytest.approx([0.1] * 4)
    assert recorder.rates == pytest.approx([float(expected(s)) for s in range(8)], rel=1e-6)
    if lr_schedule == "constant":
        assert recorder.rates[4:] == pytest.approx([0.05] * 4)
    else:
        assert recorder.rates[4:] == pytest.approx([0.05, 0.025, 0.05, 0.025], rel=1e-6)


def test_swa_refuses_to_override_a_foreign_schedule():
    x, y = tiny_data(n=32)
    swa = SWA(epochs=2, num_checkpoints=1, protocol="paper")
    model = _compiled(keras.optimizers.schedules.CosineDecay(0.1, 10))
    with pytest.raises(ValueError, match="learning_rate_schedule"):
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[swa])


def test_swa_state_round_trip_resumes_without_duplicates():
    x, y = tiny_data(n=32)
    model = _compiled(0.05)
    first = SWA(epochs=4, num_checkpoints=3, start_epoch=1, protocol="paper")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[first])
    state = first.get_state()
    assert first.collected_at == [2]

    # As tfsubspace.checkpointing stores it: JSON, arrays as lists.
    stored = json.loads(json.dumps(state, default=lambda a: a.tolist()))
    resumed = SWA(epochs=4, num_checkpoints=3, start_epoch=1, protocol="paper")
    resumed.set_state(stored)
    assert [w.dtype for w in resumed.checkpoints[0]] == [w.dtype for w in state["checkpoints"][0]]
    model.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, verbose=0, callbacks=[resumed])
    assert resumed.collected_at == [2, 3, 4]
    np.testing.assert_array_equal(resumed.checkpoints[0][0], state["checkpoints"][0][0])
    for j, averaged in enumerate(resumed.averaged_weights()):
        np.testing.assert_allclose(averaged, np.mean([c[j] for c in resumed.checkpoints], axis=0), rtol=1e-6, atol=1e-7)


def test_swa_checkpoint_ensemble_end_to_end(swa_run):
    _, swa, _, x, y = swa_run
    result = swa.ensemble(_dataset(x, y, 32), batchnorm_data=x)
    assert [m["member"] for m in result["members"]] == ["tiny_cnn_checkpoint_0", "tiny_cnn_checkpoint_1", "tiny_cnn_checkpoint_2"]
    assert 0.0 <= result["ensemble"]["accuracy"] <= 1.0
    assert np.isfinite(result["ensemble"]["nll"])


# --- SWAG ------------------------------------------------------------------


def test_swag_samples_have_the_fitted_mean_and_variance():
    rng = np.random.default_rng(0)
    num_checkpoints, dim = 5, 40
    checkpoints = [[rng.normal(size=(dim // 4, 4)), rng.normal(size=(1,))] for _ in range(num_checkpoints)]
    swag = SWAG(checkpoints)
    stacked = np.stack([np.concatenate([w.reshape(-1) for w in c]) for c in checkpoints])
    mean, variance = stacked.mean(0), stacked.var(0)
    np.testing.assert_allclose(np.concatenate([m.reshape(-1) for m in swag.mean]), mean)
    np.testing.assert_allclose(np.concatenate([v.reshape(-1) for v in swag.variance]), variance, atol=1e-12)

    # θ̃ ~ N(θ_SWA, ½ Σ_diag + ½ D Dᵀ / (K − 1)): per-coordinate variance below.
    deviations = stacked - mean
    expected_variance = 0.5 * variance + 0.5 * np.sum(deviations**2, axis=0) / (num_checkpoints - 1)
    sample_rng = np.random.default_rng(1)
    samples = np.stack(
        [np.concatenate([w.reshape(-1) for w in swag.sample_weights(rng=sample_rng)]) for _ in range(6000)]
    )
    standard_error = np.sqrt(expected_variance / len(samples))
    assert np.all(np.abs(samples.mean(0) - mean) < 5 * standard_error)
    # Sample variance of a Gaussian: relative standard error sqrt(2 / n) ≈ 1.8%.
    np.testing.assert_allclose(samples.var(0), expected_variance, rtol=0.1)
    # The low-rank part correlates coordinates exactly as ½ D Dᵀ / (K − 1).
    expected_covariance = 0.5 * deviations.T @ deviations / (num_checkpoints - 1)
    covariance = np.cov(samples.T)
    off_diagonal = ~np.eye(stacked.shape[1], dtype=bool)
    assert np.max(np.abs(covariance - expected_covariance)[off_diagonal]) < 0.1 * np.max(expected_variance)


def test_swag_low_rank_uses_only_the_last_k_checkpoints():
    checkpoints = [[np.full(3, float(v))] for v in (0.0, 10.0, 1.0, 2.0)]
    swag = SWAG(checkpoints, max_rank=2)
    np.testing.assert_allclose(swag.deviations, np.array([[1.0] * 3, [2.0] * 3]) - 3.25)
    np.testing.assert_array_equal(swag.sample_weights(seed=4)[0], swag.sample_weights(seed=4)[0])


def test_swag_end_to_end_samples_trainable_weights_and_recomputes_bn(swa_run):
    model, swa, _, x, y = swa_run
    swag = SWAG.from_swa(swa)
    assert sum(not t for t in swa.trainable) == 2  # the moving mean and variance are not sampled
    sampled = swag.sample_model(model, seed=0, batchnorm_data=x)
    np.testing.assert_array_equal(sampled.get_layer("conv").kernel, swag.sample_weights(seed=0)[0])
    reference = keras.models.clone_model(model)
    reference.set_weights(sampled.get_weights())
    ts.recompute_batchnorm(reference, x)
    np.testing.assert_allclose(sampled.get_layer("bn").moving_mean, reference.get_layer("bn").moving_mean, atol=1e-6)
    result = swag.ensemble(_dataset(x, y, 32), num_samples=2, model=model, batchnorm_data=x)
    assert len(result["members"]) == 2 and np.isfinite(result["ensemble"]["nll"])


# --- snapshot ensembles ----------------------------------------------------


def test_snapshot_schedule_restarts_with_huang_et_al_formula():
    schedule = snapshot_schedule(0.1, total_steps=30, num_snapshots=3)
    for t in range(1, 31):  # Huang et al. count iterations from 1
        expected = 0.1 / 2 * (math.cos(math.pi * ((t - 1) % 10) / 10) + 1)
        assert float(schedule(t - 1)) == pytest.approx(expected, rel=1e-5, abs=1e-8)
    assert [float(schedule(s)) for s in (0, 10, 20)] == pytest.approx([0.1] * 3)
    assert snapshot_schedule(0.1, total_steps=31, num_snapshots=3).first_decay_steps == 11


def test_snapshot_ensemble_collects_at_each_cycle_end():
    x, y = tiny_data(n=32)
    schedule = snapshot_schedule(0.05, total_steps=12, num_snapshots=3)
    model = _compiled(schedule)
    snapshots = SnapshotEnsemble(schedule)
    recorder = _RecordLR(keep_at=(4, 8))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[snapshots, recorder])
    assert snapshots.collected_at == [4, 8, 12]
    for iterations, checkpoint in zip((4, 8), snapshots.checkpoints):
        for saved, kept in zip(checkpoint, recorder.kept[iterations]):
            np.testing.assert_array_equal(saved, kept)
    # Each snapshot follows the cycle's smallest LR, and the next cycle restarts.
    assert recorder.rates[3] == pytest.approx(min(recorder.rates[:4]))
    assert recorder.rates[4] == pytest.approx(0.05)
    result = snapshots.ensemble(_dataset(x, y), batchnorm_data=x, last=2)
    assert len(result["members"]) == 2


# --- FGE -------------------------------------------------------------------


def test_fge_schedule_equals_003_formula():
    for start_step in (0, 7):
        schedule = FGE(alpha_1=0.05, alpha_2=5e-4, cycle_steps=8, start_step=start_step, base=0.3)
        for i in [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 100, 1003]:
            got = float(schedule(start_step + i - 1))  # Keras passes optimizer.iterations = i − 1
            assert got == pytest.approx(_fge_formula(i, 0.05, 5e-4, 8), rel=1e-5), (start_step, i)
        for k in range(4):
            assert float(schedule(start_step + k * 8 + 3)) == pytest.approx(5e-4, rel=1e-5)  # i ≡ c/2: minimum
            assert float(schedule(start_step + k * 8 + 7)) == pytest.approx(0.05, rel=1e-5)  # i ≡ 0: maximum
    assert float(schedule(6)) == pytest.approx(0.3)  # before start_step: the base LR


def test_fge_snapshots_land_at_the_minima():
    x, y = tiny_data(n=32)
    schedule = FGE(alpha_1=0.05, alpha_2=0.001, cycle_steps=4, start_step=2, base=0.02)
    model = _compiled(schedule)
    fge = FGESnapshots(schedule)
    recorder = _RecordLR(keep_at=(4, 8))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[fge, recorder])  # 12 iterations
    # mod(i, c) = c/2 with i = iterations − start_step: iterations 4, 8, 12.
    assert fge.collected_at == [4, 8, 12]
    for iterations in fge.collected_at:
        assert recorder.rates[iterations - 1] == pytest.approx(0.001, rel=1e-5)
    assert min(recorder.rates[2:]) == pytest.approx(0.001, rel=1e-5)
    for iterations, checkpoint in zip((4, 8), fge.checkpoints):
        for saved, kept in zip(checkpoint, recorder.kept[iterations]):
            np.testing.assert_array_equal(saved, kept)
    result = fge.ensemble(_dataset(x, y), batchnorm_data=x)
    assert len(result["members"]) == 3 and np.isfinite(result["ensemble"]["nll"])

    state = fge.get_state()
    restored = FGESnapshots(schedule)
    restored.set_state(state)
    assert restored.collected_at == [4, 8, 12]
    np.testing.assert_array_equal(restored.checkpoints[2][0], fge.checkpoints[2][0])


# --- serialization ---------------------------------------------------------


def test_schedules_get_config_round_trip():
    schedules = [
        FGE(alpha_1=0.05, alpha_2=5e-4, cycle_steps=4, start_step=3, base=keras.optimizers.schedules.CosineDecay(0.1, 9)),
        FGE(cycle_steps=2),
        SWASchedule(keras.optimizers.schedules.CosineDecay(0.1, 20), start_step=5, boundaries=[9, 15], min_lr=0.001),
        SWASchedule(0.1, start_step=5, mode="constant"),
    ]
    steps = [0, 3, 4, 6, 9, 14, 21]
    for schedule in schedules:
        config = keras.optimizers.schedules.serialize(schedule)
        assert config["registered_name"].startswith("tfsubspace>")
        restored = keras.optimizers.schedules.deserialize(config)
        assert type(restored) is type(schedule)
        assert restored.get_config() == schedule.get_config()
        np.testing.assert_allclose([float(restored(s)) for s in steps], [float(schedule(s)) for s in steps])
        optimizer = keras.optimizers.SGD.from_config(keras.optimizers.SGD(schedule).get_config())
        assert type(optimizer._learning_rate) is type(schedule)


# --- label noise -----------------------------------------------------------


def test_label_noise_fraction_is_exact_and_deterministic():
    labels = np.arange(1000) % 10
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.8, 1.0):
        noisy, chosen = corrupt_labels(labels, fraction, num_classes=10, seed=7, return_indices=True)
        assert len(chosen) == len(np.unique(chosen)) == round(fraction * 1000), fraction
        untouched = np.setdiff1d(np.arange(1000), chosen)
        np.testing.assert_array_equal(noisy[untouched], labels[untouched])
        assert noisy.min() >= 0 and noisy.max() < 10
        for _ in range(2):  # the same for every call with the same seed
            again, again_chosen = corrupt_labels(labels, fraction, num_classes=10, seed=7, return_indices=True)
            np.testing.assert_array_equal(again, noisy)
            np.testing.assert_array_equal(again_chosen, chosen)
    np.testing.assert_array_equal(labels, np.arange(1000) % 10)  # the input is not modified


def test_label_noise_random_labels_are_uniform_and_may_keep_the_original():
    labels = np.zeros(20000, dtype=np.int64)
    noisy, chosen = corrupt_labels(labels, 0.5, num_classes=4, seed=0, return_indices=True)
    counts = np.bincount(noisy[chosen], minlength=4) / len(chosen)
    np.testing.assert_allclose(counts, 0.25, atol=0.02)  # class 0 (the original) included
    other = corrupt_labels(labels, 0.5, num_classes=4, seed=1)
    assert not np.array_equal(noisy, other)


def test_label_noise_sets_are_nested_across_fractions():
    labels = np.arange(500) % 5
    small, small_chosen = corrupt_labels(labels, 0.2, num_classes=5, seed=3, return_indices=True)
    large, large_chosen = corrupt_labels(labels, 0.4, num_classes=5, seed=3, return_indices=True)
    assert set(small_chosen) <= set(large_chosen)
    np.testing.assert_array_equal(small[small_chosen], large[small_chosen])


# --- argument checks -------------------------------------------------------


BAD_ARGUMENTS = [
    (lambda: corrupt_labels(np.zeros(4, int), -0.1, 3), "`fraction` must be a number in \\[0, 1\\]"),
    (lambda: corrupt_labels(np.zeros(4, int), True, 3), "`fraction`"),
    (lambda: corrupt_labels(np.array([0, 5]), 0.5, 3), "`labels` must lie in"),
    (lambda: corrupt_labels(np.zeros(4, int), 0.5, 1), "`num_classes`"),
    (lambda: FGE(cycle_steps=3), "`cycle_steps` must be an even integer"),
    (lambda: FGE(alpha_1=0.01, alpha_2=0.05), "`alpha_2` must be < alpha_1"),
    (lambda: FGE(start_step=-1), "`start_step`"),
    (lambda: FGESnapshots(0.1), "`schedule` must be a tfsubspace.baselines.FGE"),
    (lambda: SWA(epochs=10, num_checkpoints=5), "`num_checkpoints` must fit the late phase: epochs - start_epoch = 3 must be >= 4"),
    (lambda: SWA(epochs=10, num_checkpoints=2, protocol="swa"), "`protocol` must be one of"),
    (lambda: SWA(epochs=10, num_checkpoints=1, lr_schedule="cosine"), "`lr_schedule` must be one of"),
    (lambda: SWA(epochs=0), "`epochs`"),
    (lambda: SWA(epochs=10, num_checkpoints=1, swa_lr=0), "`swa_lr`"),
    (lambda: SWA(epochs=10, num_checkpoints=1).learning_rate_schedule(0.1, 0), "`steps_per_epoch`"),
    (lambda: SWASchedule(0.1, start_step=5, boundaries=[5]), "`boundaries` must be"),
    (lambda: SWASchedule(0.1, start_step=5, mode="linear"), "`mode` must be one of"),
    (lambda: SWASchedule("0.1", start_step=5), "`base` must be a finite number > 0"),
    (lambda: SnapshotEnsemble(keras.optimizers.schedules.CosineDecay(0.1, 5)), "CosineDecayRestarts"),
    (lambda: snapshot_schedule(0.1, total_steps=2, num_snapshots=3), "`num_snapshots` must be <="),
    (lambda: SWAG([[np.zeros(2)]]), "at least 2 checkpoints"),
    (lambda: SWAG([[np.zeros(2)]] * 3, max_rank=4), "`max_rank` must be <="),
    (lambda: SWA(epochs=2, num_checkpoints=1).averaged_weights(), "no checkpoints yet"),
]


def test_bad_arguments_raise_one_line_value_errors():
    # One test for all cases: each test costs a Keras session reset here.
    for build, message in BAD_ARGUMENTS:
        with pytest.raises(ValueError, match=message) as error:
            build()
        assert "\n" not in str(error.value), message
