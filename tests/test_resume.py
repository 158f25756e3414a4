"""Checkpoints survive a kill, resuming reproduces the uninterrupted run, NaN stops cleanly."""

import json
import os
import signal
import subprocess
import time

import conftest
import keras
import numpy as np
import pytest

import tfsubspace as ts
from tfsubspace import checkpointing
from tfsubspace.callbacks import NonFiniteLossError, StopOnNonFiniteLoss

RUN = [
    "--config.train.epochs=6",
    "--config.train.warmup_epochs=1",
    "--config.dataset.train_subset=1024",
    "--config.eval.batchnorm_steps=2",
    "--config.eval.alphas=(0.0, 0.5, 1.0)",
    "--config.eval.export=False",
    "--config.train.standard_baseline=False",
    "--config.model.name=mlp",
    "--config.model.dropout=0.2",  # dropout: its RNG state must be checkpointed too
]


def command(workdir, *overrides):
    return conftest.binary_command("fashion_mnist_line.py", workdir, *RUN, *overrides)


ENV = conftest.BINARY_ENV


def final_weights(workdir):
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    return {v.path: v.numpy() for v in model.weights}


def test_sigkill_after_first_checkpoint_then_restart_equals_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = killed / "checkpoints" / "subspace" / "latest"
    deadline = time.time() + 600
    while not latest.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    epoch_at_kill = json.loads((killed / "checkpoints" / "subspace" / (latest.read_text()) / "state.json").read_text())
    assert 1 <= epoch_at_kill["epoch"] < 6
    assert not (killed / "results.json").exists()

    resumed = subprocess.run(command(killed), env=ENV, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming subspace from" in resumed.stderr

    uninterrupted = tmp_path / "uninterrupted"
    subprocess.run(command(uninterrupted), env=ENV, capture_output=True, text=True, timeout=900, check=True)

    a, b = final_weights(killed), final_weights(uninterrupted)
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_allclose(a[path], b[path], atol=1e-6, err_msg=path)
    results = json.loads((killed / "results.json").read_text())
    reference = json.loads((uninterrupted / "results.json").read_text())
    assert len(results["subspace"]["history"]["loss"]) == 6  # epochs before the kill are kept
    np.testing.assert_allclose(results["subspace"]["history"]["loss"], reference["subspace"]["history"]["loss"],
                               rtol=1e-5)
    assert [r["accuracy"] for r in results["subspace"]["along_subspace"]] == pytest.approx(
        [r["accuracy"] for r in reference["subspace"]["along_subspace"]], abs=1e-6)

    # Started once more, the finished run trains nothing and reports the same.
    again = subprocess.run(command(killed), env=ENV, capture_output=True, text=True, timeout=900, check=True)
    assert "Epoch 1/" not in again.stdout and "Epoch 6/" not in again.stdout


def _tiny_model(seed=0):
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dropout(0.3, seed=seed), keras.layers.Dense(3)])
    model = ts.convert(base, ts.Line(), seed=seed)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
Y = np.arange(32) % 3


def test_a_crash_while_writing_leaves_latest_on_the_previous_complete_checkpoint(tmp_path, monkeypatch):
    model = _tiny_model()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    assert checkpointing.latest_checkpoint(tmp_path).endswith("epoch-00002")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(checkpointing.np, "savez", crash)  # dies after the weights file is written
    with pytest.raises(KeyboardInterrupt):
        checkpointing.save(model, tmp_path, {"epoch": 3, "history": {}})
    assert checkpointing.latest_checkpoint(tmp_path).endswith("epoch-00002")
    assert not (tmp_path / ".tmp-epoch-00003").exists()  # an exception cleans the half-written one up
    monkeypatch.undo()
    (tmp_path / ".tmp-epoch-00003").mkdir()  # what a SIGKILL mid-write leaves behind
    (tmp_path / ".tmp-epoch-00003" / "model.weights.h5").write_bytes(b"half")
    checkpointing.save(model, tmp_path, {"epoch": 3, "history": {}})  # a retry cleans it up
    assert checkpointing.latest_checkpoint(tmp_path).endswith("epoch-00003")
    assert sorted(os.listdir(tmp_path)) == ["epoch-00002", "epoch-00003", "latest"]


def test_restore_brings_back_optimizer_slots_iterations_and_dropout_rng(tmp_path):
    model = _tiny_model()
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    restored = _tiny_model(seed=0)
    restored.fit(X, Y, epochs=1, batch_size=8, verbose=0)  # different state, to be overwritten
    checkpointing.restore(restored, checkpointing.latest_checkpoint(tmp_path))
    assert int(restored.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 4
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # One more identical epoch from both: same sampled α, same dropout masks, same weights.
    model.fit(X, Y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    restored.fit(X, Y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_restore_of_a_corrupt_or_mismatched_checkpoint_names_the_file(tmp_path):
    model = _tiny_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    path = checkpointing.latest_checkpoint(tmp_path)
    other = ts.convert(keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(3)]), ts.Line())
    other.compile("sgd", "mse")
    with pytest.raises(checkpointing.CheckpointError, match="cannot load .*model.weights.h5 into this model"):
        checkpointing.restore(other, path)
    with open(os.path.join(path, "model.weights.h5"), "wb") as f:
        f.write(b"not an hdf5 file")
    with pytest.raises(checkpointing.CheckpointError, match="model.weights.h5 is damaged: its SHA-256 does not match"):
        checkpointing.restore(_tiny_model(), path)
    (tmp_path / "latest").write_text("epoch-00009")
    with pytest.raises(checkpointing.CheckpointError, match="latest names .epoch-00009., which is not a checkpoint directory"):
        checkpointing.latest_checkpoint(tmp_path)


def test_non_finite_loss_stops_before_the_epoch_end_checkpoint(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    x = np.ones((16, 2), "float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    good = [v.numpy() for v in model.weights]
    model.optimizer.learning_rate.assign(1e30)
    bad_x = np.full((16, 2), 1e20, "float32")
    with pytest.raises(NonFiniteLossError, match=r"training loss became (nan|inf) at epoch 2, batch 1"):
        model.fit(bad_x, bad_x[:, :1], epochs=3, initial_epoch=1, verbose=0,
                  callbacks=[StopOnNonFiniteLoss(), checkpointing.EpochCheckpoint(tmp_path)])
    assert checkpointing.latest_checkpoint(tmp_path).endswith("epoch-00001")
    fresh = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    fresh.compile(keras.optimizers.SGD(0.01), "mse")
    checkpointing.restore(fresh, checkpointing.latest_checkpoint(tmp_path))
    for v, value in zip(fresh.weights, good, strict=True):
        np.testing.assert_array_equal(v.numpy(), value)


def test_the_binary_exits_non_zero_with_one_line_on_a_diverging_run(tmp_path):
    result = subprocess.run(
        command(tmp_path, "--config.train.learning_rate=1e30", "--config.train.epochs=2"),
        env=ENV, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tfsubspace.train: error: training loss became") and "epoch 1" in last
    assert not (tmp_path / "results.json").exists()


class _ArrayState(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.saved = {"weights": [np.arange(6, dtype=np.float32).reshape(2, 3)], "count": 3, "tag": "x"}

    def get_state(self):
        return self.saved

    def set_state(self, state):
        self.saved = state


def test_callback_arrays_are_checkpointed_as_arrays_not_json(tmp_path):
    model = _tiny_model()
    callback = _ArrayState()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[callback, checkpointing.EpochCheckpoint(tmp_path, callbacks=[callback])])
    path = checkpointing.latest_checkpoint(tmp_path)
    assert "arange" not in (tmp_path / path / "state.json").read_text() and "[0.0" not in (
        tmp_path / path / "state.json").read_text()
    fresh = _ArrayState()
    fresh.saved = None
    checkpointing.restore(_tiny_model(), path, [fresh])
    assert fresh.saved["count"] == 3 and fresh.saved["tag"] == "x"
    restored = fresh.saved["weights"][0]
    assert isinstance(restored, np.ndarray) and restored.dtype == np.float32
    np.testing.assert_array_equal(restored, np.arange(6).reshape(2, 3))


def test_restore_latest_skips_a_damaged_newest_checkpoint_for_the_newest_good_one(tmp_path, caplog):
    model = _tiny_model()
    model.fit(X, Y, epochs=2, batch_size=16, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    newest = tmp_path / "epoch-00002" / checkpointing.WEIGHTS
    content = bytearray(newest.read_bytes())
    content[len(content) // 2: len(content) // 2 + 4096] = b"\xff" * min(4096, len(content) - len(content) // 2)
    newest.write_bytes(bytes(content[: len(newest.read_bytes())]))
    fresh = _tiny_model()
    with caplog.at_level("WARNING"):
        path, state = checkpointing.restore_latest(fresh, tmp_path, steps_per_epoch=2)
    assert path.endswith("epoch-00001") and state["epoch"] == 1
    assert int(fresh.optimizer.iterations.numpy()) == 2
    assert all(np.all(np.isfinite(v.numpy())) for v in fresh.weights)
    assert any("epoch-00002/model.weights.h5 is damaged" in r.getMessage() for r in caplog.records)


def test_restore_latest_of_an_empty_directory_starts_afresh_but_of_damaged_ones_stops(tmp_path):
    assert checkpointing.restore_latest(_tiny_model(), tmp_path / "none") == (None, None)
    model = _tiny_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    (tmp_path / "epoch-00001" / checkpointing.STATE).write_text('{"epoch": 1}')
    with pytest.raises(checkpointing.CheckpointError, match=r"no usable checkpoint .*state\.json is damaged"):
        checkpointing.restore_latest(_tiny_model(), tmp_path)


def test_a_latest_pointing_outside_is_ignored_and_the_checkpoints_inside_are_used(tmp_path):
    inside, outside = tmp_path / "ckpt", tmp_path / "outside"
    model = _tiny_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(inside)])
    other = _tiny_model(seed=5)
    other.fit(X, Y, epochs=3, verbose=0, callbacks=[checkpointing.EpochCheckpoint(outside)])
    (inside / "latest").write_text("epoch-00001/../../outside/epoch-00003")
    fresh = _tiny_model()
    path, state = checkpointing.restore_latest(fresh, inside)
    assert path == str(inside / "epoch-00001") and state["epoch"] == 1
    os.symlink(outside / "epoch-00003", inside / "epoch-00004")  # a planted symlinked "checkpoint"
    (inside / "latest").write_text("epoch-00004")
    path, _ = checkpointing.restore_latest(_tiny_model(), inside)
    assert path == str(inside / "epoch-00001")


def test_planted_symlinks_at_temporary_names_are_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    directory = tmp_path / "ckpt"
    directory.mkdir()
    os.symlink(victim, directory / "latest.tmp")
    os.symlink(tmp_path, directory / ".tmp-epoch-00001")  # a temporary checkpoint dir planted as a symlink
    model = _tiny_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(directory)])
    assert victim.read_text() == "precious" and sorted(os.listdir(tmp_path)) == ["ckpt", "victim"]
    assert checkpointing.latest_checkpoint(directory).endswith("epoch-00001")
    assert sorted(os.listdir(directory)) == ["epoch-00001", "latest"]


def test_a_full_disk_during_a_checkpoint_is_one_oserror_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    model = _tiny_model()
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(tmp_path)])
    monkeypatch.setattr(checkpointing, "_OVERHEAD_BYTES", 1 << 62)  # as if the disk had no room left
    with pytest.raises(OSError, match="No space left on device") as info:
        checkpointing.save(model, tmp_path, {"epoch": 2, "history": {}})
    assert info.value.errno == 28 and str(tmp_path) in info.value.filename
    assert checkpointing.latest_checkpoint(tmp_path).endswith("epoch-00001")
    assert sorted(os.listdir(tmp_path)) == ["epoch-00001", "latest"]
