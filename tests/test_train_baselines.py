"""The baselines of issue 4 under the training binary, and the label options every method shares.

End-to-end runs use 512 real Fashion-MNIST images and the mlp (as
tests/test_train.py); several options are exercised in one run to keep the
file short.
"""

import json

import keras
import numpy as np
import conftest
import pytest
import tensorflow as tf

from tfsubspace import config as config_lib
from tfsubspace import data
from tfsubspace.baselines import SparseCategoricalCrossentropyWithLabelSmoothing, corrupt_labels
from tfsubspace.experiments import common, early_stopping

SMALL = [
    "--config.train.epochs=3",
    "--config.train.warmup_epochs=1",
    "--config.dataset.train_subset=512",
    "--config.eval.batchnorm_steps=2",
    "--config.model.name=mlp",
    "--config.eval.export=False",
]


def run_binary(config_name, workdir, *overrides, check=True):
    return conftest.run_binary(config_name, workdir, *SMALL, *overrides, check=check)


def in_range(scores):
    return 0.3 < scores["accuracy"] <= 1.0 and scores["nll"] > 0 and 0 <= scores["ece"] < 1


def results_of(workdir):
    return json.loads((workdir / "results.json").read_text())


# --- end to end: every baseline through python -m tfsubspace.train -----------------------------


def test_swa_run_reports_average_checkpoint_ensemble_and_swag_and_resumes_to_the_same_numbers(tmp_path):
    # Label smoothing and label noise ride along: they must work for any method.
    overrides = (
        "--config.baseline.swa_start_fraction=0.5",
        "--config.baseline.swa_protocol=paper",
        "--config.baseline.swa_num_checkpoints=2",
        "--config.baseline.swag_samples=2",
        "--config.train.label_smoothing=0.1",
        "--config.dataset.label_noise=0.1",
    )
    process = run_binary("fashion_mnist_swa.py", tmp_path, *overrides)
    swa = results_of(tmp_path)["swa"]
    assert swa["start_epoch"] == 1 and swa["checkpoint_epochs"] == [2, 3]
    for key in ("final", "average"):
        assert in_range(swa[key])
    assert in_range(swa["checkpoint_ensemble"]["ensemble"]) and len(swa["checkpoint_ensemble"]["members"]) == 2
    assert in_range(swa["swag_ensemble"]["ensemble"]) and len(swa["swag_ensemble"]["members"]) == 2
    assert swa["swag_rank"] == 2 and len(swa["history"]["loss"]) == 3
    names = [row["name"] for row in swa["table_rows"]]
    assert any(name.startswith("SWA average of 2") for name in names) and any("SWAG ensemble" in n for n in names)
    assert "SWA-checkpoint ensemble of 2" in process.stdout
    # The final model is the SWA average: saved, and it scores as reported.
    assert (tmp_path / "model.keras").exists()
    # Started again, the run resumes from its last checkpoint (callback state included) and reports the same.
    run_binary("fashion_mnist_swa.py", tmp_path, *overrides)
    again = results_of(tmp_path)["swa"]
    assert again["checkpoint_epochs"] == [2, 3]
    assert again["average"]["accuracy"] == pytest.approx(swa["average"]["accuracy"], abs=1e-6)
    assert again["checkpoint_ensemble"]["ensemble"]["nll"] == pytest.approx(
        swa["checkpoint_ensemble"]["ensemble"]["nll"], rel=1e-5
    )


def test_snapshot_and_fge_runs_report_their_ensembles(tmp_path):
    run_binary("fashion_mnist_snapshot.py", tmp_path / "snapshot", "--config.baseline.num_snapshots=2")
    snapshot = results_of(tmp_path / "snapshot")["snapshot"]
    # 512 examples / 128 = 4 steps per epoch, 12 steps, 2 cycles of 6: snapshots at the ends of the cycles.
    assert snapshot["cycle_steps"] == 6 and snapshot["collected_at_steps"] == [6, 12]
    assert in_range(snapshot["ensemble"]["ensemble"]) and len(snapshot["ensemble"]["members"]) == 2
    assert snapshot["last_snapshot"] == snapshot["ensemble"]["members"][-1]

    run_binary("fashion_mnist_fge.py", tmp_path / "fge", "--config.baseline.fge_start_fraction=0.5")
    fge = results_of(tmp_path / "fge")["fge"]
    # FGE from epoch round(0.5 · 3) = 2 (step 8), cycles of 0.5 epoch = 2 steps, snapshots at the minima: 9, 11.
    assert fge["start_epoch"] == 2 and fge["cycle_steps"] == 2
    assert fge["collected_at_steps"] == [9, 11]
    assert in_range(fge["ensemble"]["ensemble"]) and len(fge["ensemble"]["members"]) == 2
    assert [row["name"].split(" (")[0] for row in fge["table_rows"]] == ["last FGE snapshot", "FGE ensemble of 2"]


def test_standard_ensemble_scores_members_and_ensemble_and_reports_the_early_stopping_oracle(tmp_path):
    run_binary(
        "fashion_mnist_standard_ensemble.py",
        tmp_path,
        "--config.baseline.ensemble_size=2",
        "--config.eval.test_every_epoch=True",
    )
    results = results_of(tmp_path)
    ensemble = results["standard_ensemble"]
    assert ensemble["size"] == 2 and in_range(ensemble)
    members = ensemble["members"]
    assert [m["seed"] for m in members] == [0, 1]
    assert (
        members[0]["test_accuracy"] != members[1]["test_accuracy"] or members[0]["test_nll"] != members[1]["test_nll"]
    )
    for member in members:
        per_epoch = member["history"]["epoch_test_accuracy"]
        assert len(per_epoch) == 3
        assert member["early_stopping_accuracy"] == max(per_epoch)
        assert member["early_stopping_epoch"] == int(np.argmax(per_epoch)) + 1
    assert "| standard ensemble of 2 |" in (tmp_path / "results.md").read_text()
    assert "optimal early stopping (oracle" in (tmp_path / "results.md").read_text()
    # The mlp has no batch norm, so the last epoch's test accuracy is the final test accuracy.
    assert members[0]["history"]["epoch_test_accuracy"][-1] == pytest.approx(members[0]["test_accuracy"], abs=1e-6)


def test_bad_baseline_values_fail_in_one_line(tmp_path):
    process = run_binary("fashion_mnist_swa.py", tmp_path, "--config.baseline.swa_num_checkpoints=3", check=False)
    assert process.returncode != 0 and "Traceback" not in process.stderr
    assert "config.baseline.swa_num_checkpoints must be <= train.epochs - SWA start epoch = 1 + 1 for the checkpoint" in process.stderr


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("dataset.label_noise", 1.5, "config.dataset.label_noise must be a number in [0, 1]"),
        ("dataset.label_noise_seed", -1, "config.dataset.label_noise_seed must be an integer >= 0"),
        ("train.label_smoothing", 1.0, "config.train.label_smoothing must be a number in [0, 1)"),
        ("baseline.swag_samples", -1, "config.baseline.swag_samples must be an integer >= 0"),
        ("baseline.ensemble_size", 0, "config.baseline.ensemble_size must be an integer >= 1"),
        ("baseline.swa_lr_schedule", "step", "config.baseline.swa_lr_schedule must be one of ('cyclic', 'constant')"),
        ("baseline.fge_alpha_2", 0.1, "config.baseline.fge_alpha_2 must be < baseline.fge_alpha_1"),
        ("baseline.swa_start_fraction", 1.0, "config.baseline.swa_start_fraction must be a number in [0, 1)"),
    ],
)
def test_validate_names_the_bad_baseline_or_label_key(key, value, message):
    config = config_lib.base_config()
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ValueError) as error:
        config_lib.validate(config)
    assert message in str(error.value)


def test_fge_needs_a_pretraining_epoch_and_an_fge_epoch():
    config = config_lib.base_config()
    config.method = "fge"
    config.train.epochs = 2
    config.baseline.fge_start_fraction = 0.1
    with pytest.raises(ValueError, match="config.baseline.fge_start_fraction must leave at least one"):
        config_lib.validate(config)


# --- label noise in the data ----------------------------------------------------------------------


def _arrays(n_train=200, n_test=50, seed=0):
    rng = np.random.default_rng(seed)
    train = (rng.integers(0, 256, (n_train, 6, 6, 1), dtype=np.uint8), np.arange(n_train) % 10)
    test = (rng.integers(0, 256, (n_test, 6, 6, 1), dtype=np.uint8), np.arange(n_test) % 10)
    return train, test


def _labels(dataset):
    return np.concatenate([y.numpy() for _, y in dataset])


def test_label_noise_reassigns_the_exact_fraction_of_training_labels_only():
    train, test = _arrays()
    sets = data.from_arrays(train, test, batch_size=32, num_classes=10, validation_size=40, label_noise=0.25)
    clean = data.from_arrays(train, test, batch_size=32, num_classes=10, validation_size=40)
    noisy_train, clean_train = _labels(sets.train_eval), _labels(clean.train_eval)
    # round(0.25 · 160) = 40 examples reassigned, as corrupt_labels does it on the training labels.
    expected, chosen = corrupt_labels(clean_train, 0.25, num_classes=10, seed=0, return_indices=True)
    assert len(chosen) == 40 and np.array_equal(noisy_train, expected)
    unchosen = np.setdiff1d(np.arange(160), chosen)
    assert np.array_equal(noisy_train[unchosen], clean_train[unchosen])
    assert 0 < np.sum(noisy_train != clean_train) <= 40
    # Validation and test labels are untouched.
    assert np.array_equal(_labels(sets.test), test[1])
    assert np.array_equal(_labels(sets.validation), _labels(clean.validation))
    # The shuffled training stream carries the noisy labels (same multiset per epoch).
    epoch = np.concatenate([y.numpy() for _, y in sets.train_epochs(0).take(sets.steps_per_epoch)])
    assert np.array_equal(np.sort(epoch), np.sort(noisy_train))


def test_label_noise_is_the_same_for_every_training_seed_and_changes_only_with_its_own_seed():
    train, test = _arrays()
    by_seed = [
        _labels(data.from_arrays(train, test, batch_size=32, seed=s, label_noise=0.3).train_eval) for s in (0, 7)
    ]
    assert np.array_equal(by_seed[0], by_seed[1])
    other = _labels(data.from_arrays(train, test, batch_size=32, label_noise=0.3, label_noise_seed=1).train_eval)
    assert not np.array_equal(other, by_seed[0])
    with pytest.raises(ValueError, match="label_noise must be a number in"):
        data.from_arrays(train, test, batch_size=32, label_noise=-0.1)


def test_build_datasets_applies_label_noise_to_real_fashion_mnist_training_labels():
    kwargs = dict(batch_size=128, train_subset=1000, eval_batch_size=1000)
    noisy = data.build_datasets("fashion_mnist", label_noise=0.2, label_noise_seed=3, **kwargs)
    clean = data.build_datasets("fashion_mnist", **kwargs)
    noisy_train, clean_train = _labels(noisy.train_eval), _labels(clean.train_eval)
    _, chosen = corrupt_labels(clean_train, 0.2, num_classes=10, seed=3, return_indices=True)
    changed = np.flatnonzero(noisy_train != clean_train)
    assert len(chosen) == 200 and set(changed) <= set(chosen) and 150 < len(changed) <= 200
    assert np.array_equal(_labels(noisy.test), _labels(clean.test))


# --- label smoothing -----------------------------------------------------------------------------------


def test_label_smoothing_loss_equals_the_direct_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 10)).astype("float32")
    labels = rng.integers(0, 10, 16)
    epsilon = 0.2
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    direct = np.mean((1 - epsilon) * -log_p[np.arange(16), labels] + epsilon / 10 * -log_p.sum(axis=1))
    loss = SparseCategoricalCrossentropyWithLabelSmoothing(label_smoothing=epsilon)
    assert float(loss(labels, logits)) == pytest.approx(direct, rel=1e-5)
    assert float(loss(labels.reshape(-1, 1), logits)) == pytest.approx(direct, rel=1e-5)  # [B, 1] labels too
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(SparseCategoricalCrossentropyWithLabelSmoothing(0.0)(labels, logits)) == pytest.approx(
        float(plain), rel=1e-5
    )
    clone = SparseCategoricalCrossentropyWithLabelSmoothing.from_config(loss.get_config())
    assert clone.label_smoothing == epsilon and clone.from_logits


def test_compile_model_uses_label_smoothing_from_the_config_and_trains_with_it():
    config = config_lib.base_config()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    common.compile_model(model, config, steps_per_epoch=2)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    config.train.label_smoothing = 0.1
    common.compile_model(model, config, steps_per_epoch=2)
    assert isinstance(model.loss, SparseCategoricalCrossentropyWithLabelSmoothing) and model.loss.label_smoothing == 0.1
    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype("float32"), np.arange(8) % 3
    logs = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0]) and "accuracy" in logs


# --- early stopping ----------------------------------------------------------------------------------


def test_test_every_epoch_callback_logs_scores_and_summary_picks_the_best_epoch():
    x, y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), np.arange(32) % 2
    test = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[early_stopping.TestEveryEpoch(test)]).history
    assert all(len(history[key]) == 3 for key in early_stopping.KEYS)
    summary = early_stopping.summary(history)
    assert summary["early_stopping_accuracy"] == max(history["epoch_test_accuracy"])
    assert history["epoch_test_nll"][summary["early_stopping_epoch"] - 1] == summary["early_stopping_nll"]
    with pytest.raises(ValueError, match="test_every_epoch=True"):
        early_stopping.summary({"loss": [1.0]})
