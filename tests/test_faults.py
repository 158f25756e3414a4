"""The training binary under faults: changed configs, concurrent runs, damaged checkpoints, planted
symlinks, a full or read-only disk. Each ends in a correct result or one line and a non-zero exit."""

import json
import os
import shutil
import subprocess
import time

import conftest
import keras
import numpy as np
import pytest

import tfsubspace  # noqa: F401  (registers the classes model.keras holds)

RUN = [
    "--config.train.epochs=3",
    "--config.dataset.train_subset=256",
    "--config.eval.batchnorm_steps=1",
    "--config.eval.alphas=(0.0, 0.5, 1.0)",
    "--config.eval.export=False",
    "--config.train.standard_baseline=False",
    "--config.model.name=mlp",
]


def run(workdir, *overrides, check=False):
    return conftest.run_binary("fashion_mnist_line.py", workdir, *RUN, *overrides, check=check)


def last_line(process):
    return process.stderr.strip().splitlines()[-1]


def epochs_trained(process):
    return [line.split()[1] for line in process.stdout.splitlines() if line.startswith("Epoch ")]


def assert_one_line_error(process, *fragments):
    assert process.returncode == 1, (process.returncode, process.stderr[-2000:])
    line = last_line(process)
    assert line.startswith("tfsubspace.train: error: "), process.stderr[-2000:]
    for fragment in fragments:
        assert fragment in line, line
    assert "Traceback" not in process.stderr, process.stderr[-3000:]


def final_weights(workdir):
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    return [v.numpy() for v in model.weights]


def test_a_changed_config_is_refused_and_extending_or_restarting_is_explicit_and_recorded(tmp_path):
    workdir = tmp_path / "run"
    first = run(workdir, check=True)
    assert epochs_trained(first) == ["1/3", "2/3", "3/3"]
    results = (workdir / "results.json").read_text()

    for override, key in (("--config.train.learning_rate=0.01", "config.train.learning_rate=0.1"),
                          ("--config.train.epochs=2", "config.train.epochs=3"),
                          ("--config.subspace.beta=2.0", "config.subspace.beta=1.0"),
                          ("--config.seed=1", "config.seed=0")):
        refused = run(workdir, override)
        assert_one_line_error(refused, key, "--restart")
        assert (workdir / "results.json").read_text() == results  # nothing rewritten, nothing mixed

    # Evaluation-only keys may change: the finished run is evaluated again, not retrained.
    again = run(workdir, "--config.eval.alphas=(0.0, 0.25, 0.5, 1.0)", check=True)
    assert epochs_trained(again) == []
    assert len(json.loads((workdir / "results.json").read_text())["subspace"]["along_subspace"]) == 4

    extended = run(workdir, "--config.train.epochs=5", "--extend", check=True)
    assert epochs_trained(extended) == ["4/5", "5/5"]
    record = json.loads((workdir / "workdir.json").read_text())
    assert [e["event"] for e in record["events"]] == ["created", "extended"]
    assert record["events"][1]["from_epochs"] == 3 and record["events"][1]["to_epochs"] == 5
    results = json.loads((workdir / "results.json").read_text())
    assert len(results["subspace"]["history"]["loss"]) == 5 and results["workdir"]["events"] == record["events"]

    restarted = run(workdir, "--config.train.learning_rate=0.05", "--restart", check=True)
    assert epochs_trained(restarted) == ["1/3", "2/3", "3/3"]
    assert [e["event"] for e in json.loads((workdir / "workdir.json").read_text())["events"]] == ["created"]


def test_a_second_run_on_a_busy_workdir_stops_in_one_line_and_the_first_finishes(tmp_path):
    workdir = tmp_path / "run"
    first = subprocess.Popen(conftest.binary_command("fashion_mnist_line.py", workdir, *RUN),
                             env=conftest.BINARY_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (workdir / "workdir.json").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    second = run(workdir)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert_one_line_error(second, f"another run (pid {first.pid}) is using --workdir")
    assert json.loads((workdir / "results.json").read_text())["subspace"]["history"]["loss"]


def test_damaged_latest_weights_resume_from_the_previous_epoch_and_planted_symlinks_are_not_followed(tmp_path):
    workdir = tmp_path / "run"
    run(workdir, check=True)
    reference = final_weights(workdir)
    checkpoints = workdir / "checkpoints" / "subspace"
    weights = checkpoints / "epoch-00003" / "model.weights.h5"
    content = bytearray(weights.read_bytes())
    middle = len(content) // 2
    content[middle:middle + 4096] = os.urandom(len(content[middle:middle + 4096]))  # 4 KiB garbled in a kernel
    weights.write_bytes(bytes(content))
    outside = tmp_path / "outside"
    outside.write_text("precious")
    for name in ("results.json.tmp", "results.md.tmp", "model.keras.tmp.keras", "accuracy.png.tmp.png"):
        os.symlink(outside, workdir / name)
    os.symlink(outside, checkpoints / "latest.tmp")

    resumed = run(workdir, check=True)
    assert "epoch-00003/model.weights.h5 is damaged: its SHA-256 does not match manifest.json" in resumed.stderr
    assert "Resuming subspace from" in resumed.stderr and "epoch-00002" in resumed.stderr
    assert epochs_trained(resumed) == ["3/3"]
    for a, b in zip(final_weights(workdir), reference, strict=True):
        np.testing.assert_array_equal(a, b)  # epoch 3 trained again gives the same model, never NaN
    assert outside.read_text() == "precious"
    assert not any(name.endswith(".tmp") or ".tmp." in name for name in os.listdir(workdir))
    rows = json.loads((workdir / "results.json").read_text())["subspace"]["along_subspace"]
    assert all(np.isfinite(row["nll"]) for row in rows)

    # Every checkpoint damaged: one line, no training from scratch, no results.
    for path in checkpoints.glob("epoch-*/model.weights.h5"):
        path.write_bytes(b"garbage")
    (workdir / "results.json").unlink()
    stopped = run(workdir)
    assert_one_line_error(stopped, "no usable checkpoint in", "start afresh with --restart")
    assert epochs_trained(stopped) == [] and not (workdir / "results.json").exists()


def test_a_checkpoint_directory_that_is_a_file_stops_before_training(tmp_path):
    workdir = tmp_path / "run"
    run(workdir, check=True)
    checkpoints = workdir / "checkpoints" / "subspace"
    shutil.rmtree(checkpoints)
    checkpoints.write_text("not a directory")
    stopped = run(workdir)
    assert_one_line_error(stopped, "checkpoints/subspace must be a directory of checkpoints")
    assert epochs_trained(stopped) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (we run as root); skipped with the reason when mounting is not permitted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_is_one_line_naming_the_path_and_keeps_the_last_good_checkpoint(tiny_disk):
    workdir = tiny_disk / "run"
    # The small CNN's checkpoints (~0.3 MB each, two kept) fill 1 MiB within a few epochs.
    full = conftest.run_binary("fashion_mnist_line.py", workdir, *RUN[1:], "--config.model.name=small_cnn",
                               "--config.train.epochs=6", check=False)
    assert full.returncode == 1, (full.returncode, full.stderr[-2000:])  # not 139 (a segfault)
    line = last_line(full)
    assert line.startswith("tfsubspace.train: error: cannot write ") and "the disk is full" in line, line
    assert str(workdir) in line
    checkpoints = workdir / "checkpoints" / "subspace"
    if (checkpoints / "latest").exists():  # the last good checkpoint is intact and verifies
        from tfsubspace import checkpointing

        checkpointing.verify(checkpointing.latest_checkpoint(str(checkpoints)))


def test_a_read_only_workdir_is_one_line_naming_the_path(tiny_disk):
    workdir = tiny_disk / "run"
    workdir.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    try:
        stopped = run(workdir)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    assert_one_line_error(stopped, f"cannot write {workdir}", "read-only")


def test_a_full_disk_while_exporting_and_reporting_is_one_line_naming_the_path(tmp_path, tiny_disk):
    small = ["--config.train.epochs=1", "--config.dataset.train_subset=256", "--config.eval.batchnorm_steps=1",
             "--config.model.kwargs.width=4"]
    conftest.run_binary("fashion_mnist_standard.py", tmp_path / "run", *small)
    workdir = tiny_disk / "run"
    shutil.copytree(tmp_path / "run" / "checkpoints", workdir / "checkpoints")
    shutil.copy(tmp_path / "run" / "workdir.json", workdir / "workdir.json")
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 48 * 1024))  # room for less than model.keras
    stopped = conftest.run_binary("fashion_mnist_standard.py", workdir, *small, check=False)
    assert_one_line_error(stopped, f"cannot write {workdir}/", "the disk is full")
    assert not any(".tmp" in name for name in os.listdir(workdir))  # no half-written file left


# -- SPRO's own vertex checkpoints (grow_simplex), in process on a tiny model --------------------


class _TinyData:
    """What `grow_simplex` reads of `Datasets`: 64 examples of 5 features, 3 classes, 2 steps an epoch."""

    steps_per_epoch = 2

    def train_epochs(self, start, order_seed=None):
        import tensorflow as tf

        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(64, 5)).astype("float32"), np.arange(64) % 3
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()


def _spro_run(workdir, num_vertices=3):
    """Grows a 5-6-3 MLP to `num_vertices` vertices in `workdir` (one epoch of two steps a vertex)."""
    from tfsubspace import config as config_lib
    from tfsubspace.experiments import connectivity

    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3)])
    base.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    config = config_lib.base_config()
    config.spro.num_vertices, config.spro.epochs_per_vertex, config.spro.samples = num_vertices, 1, 2
    return connectivity.grow_simplex(base, config, _TinyData(), str(workdir), 0)


def _simplex_weights(model):
    return [v.numpy() for v in model.weights]


def _vertex_checkpoint(workdir, num_vertices):
    return workdir / "checkpoints" / "spro_0" / f"vertices-{num_vertices:05d}"


def test_spro_resumes_from_verified_vertex_checkpoints_without_retraining(tmp_path, caplog):
    grown = _simplex_weights(_spro_run(tmp_path))
    checkpoint = _vertex_checkpoint(tmp_path, 3)
    assert {p.name for p in checkpoint.iterdir()} == {"model.weights.h5", "state.json", "manifest.json"}
    with caplog.at_level("INFO", logger="absl"):  # absl may sit at WARNING after other tests
        resumed = _spro_run(tmp_path)
    assert any("Resuming SPRO simplex 0 from 3 vertices" in r.getMessage() for r in caplog.records)
    assert [entry["vertex"] for entry in resumed.spro_history] == [1, 2]
    for a, b in zip(_simplex_weights(resumed), grown, strict=True):
        np.testing.assert_array_equal(a, b)


def _garble(path):
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle:middle + 512] = os.urandom(len(content[middle:middle + 512]))
    path.write_bytes(bytes(content))


def _nan_weights_with_a_matching_manifest(checkpoint):
    """Non-finite weights that pass the SHA-256 check: only the finite check can stop them."""
    import h5py

    from tfsubspace import checkpointing, files

    with h5py.File(checkpoint / "model.weights.h5", "r+") as f:
        datasets = []
        f.visititems(lambda name, item: datasets.append(item) if isinstance(item, h5py.Dataset) else None)
        largest = max(datasets, key=lambda d: d.size)
        largest[...] = np.full(largest.shape, np.nan, largest.dtype)
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["sha256"]["model.weights.h5"] = files.sha256(checkpoint / "model.weights.h5")
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def _inconsistent_state_with_a_matching_manifest(checkpoint):
    from tfsubspace import checkpointing, files

    state = json.loads((checkpoint / "state.json").read_text())
    state["num_vertices"] = 7
    (checkpoint / "state.json").write_text(json.dumps(state))
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["sha256"]["state.json"] = files.sha256(checkpoint / "state.json")
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, reason", [
    (lambda c: _garble(c / "model.weights.h5"), "model.weights.h5 is damaged: its SHA-256 does not match"),
    (lambda c: (c / "state.json").write_text("{\"num_vertices\": 3, \"hist"), "state.json is damaged"),
    (lambda c: (c / "manifest.json").unlink(), "manifest.json is missing"),
    (_nan_weights_with_a_matching_manifest, "holds non-finite values"),
    (_inconsistent_state_with_a_matching_manifest, "`num_vertices` must be 3"),
], ids=["garbled weights", "truncated state", "no manifest", "nan weights", "inconsistent state"])
def test_a_damaged_spro_vertex_checkpoint_is_skipped_with_a_warning_and_its_vertex_grown_again(
        tmp_path, caplog, damage, reason):
    grown = _simplex_weights(_spro_run(tmp_path))
    damage(_vertex_checkpoint(tmp_path, 3))
    with caplog.at_level("INFO", logger="absl"):  # absl may sit at WARNING after other tests
        resumed = _spro_run(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "SPRO" in r.getMessage()]
    assert len(warnings) == 1 and "vertices-00003" in warnings[0] and reason in warnings[0], warnings
    assert "resuming from 2 vertices" in warnings[0], warnings
    assert [entry["vertex"] for entry in resumed.spro_history] == [1, 2]
    weights = _simplex_weights(resumed)
    assert all(np.all(np.isfinite(w)) for w in weights)
    for a, b in zip(weights, grown, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # vertex 3 grown again: the same simplex
    from tfsubspace import checkpointing, files

    checkpointing.verify(str(_vertex_checkpoint(tmp_path, 3)), parts=("model.weights.h5", "state.json"))


def test_spro_checkpoints_never_follow_planted_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    workdir = tmp_path / "run"
    spro_directory = workdir / "checkpoints" / "spro_0"
    spro_directory.mkdir(parents=True)
    os.symlink(outside / "precious", spro_directory / ".tmp-vertices-00002")
    os.symlink(outside / "precious", spro_directory / "vertices-00003")
    _spro_run(workdir)
    assert (outside / "precious").read_text() == "keep me" and os.listdir(outside) == ["precious"]
    assert not (spro_directory / "vertices-00003").is_symlink()

    (workdir / "checkpoints" / "spro_1").symlink_to(outside, target_is_directory=True)
    from tfsubspace import checkpointing, config as config_lib
    from tfsubspace.experiments import connectivity

    config = config_lib.base_config()
    with pytest.raises(checkpointing.CheckpointError) as error:
        connectivity.grow_simplex(keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)]), config,
                                  _TinyData(), str(workdir), 1)
    assert "\n" not in str(error.value) and "checkpoints/spro_1 must be a directory" in str(error.value)
    assert os.listdir(outside) == ["precious"]


# -- every output path of the binary stays inside the workdir ---------------------------------------


def test_a_planted_tensorboard_symlink_leaving_the_workdir_stops_before_training(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    workdir = tmp_path / "run"
    workdir.mkdir()
    os.symlink(outside, workdir / "tensorboard")
    stopped = run(workdir)
    assert_one_line_error(stopped, f"{workdir}/tensorboard", "outside the workdir")
    assert epochs_trained(stopped) == [] and os.listdir(outside) == []


@pytest.mark.parametrize("planted", ["tensorboard", "tensorboard/subspace", "savedmodel", "savedmodel/1",
                                     "checkpoints/subspace/epoch-00001", "results.json", "model.keras"])
def test_an_output_path_symlinked_outside_the_workdir_is_refused_in_one_line(tmp_path, planted):
    from tfsubspace import config as config_lib, workdir as workdir_lib

    outside = tmp_path / "outside"
    outside.mkdir()
    workdir = tmp_path / "run"
    (workdir / planted).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, workdir / planted)
    with pytest.raises(workdir_lib.WorkdirError) as error:
        with workdir_lib.open_workdir(str(workdir), config_lib.base_config()):
            pass
    message = str(error.value)
    assert "\n" not in message and f"{workdir / planted} " in message and "outside the workdir" in message, message
    assert os.listdir(outside) == []


def test_output_symlinks_inside_the_workdir_are_accepted_and_restart_removes_those_leaving_it(tmp_path):
    from tfsubspace import config as config_lib, workdir as workdir_lib

    workdir = tmp_path / "run"
    (workdir / "logs").mkdir(parents=True)
    os.symlink(workdir / "logs", workdir / "tensorboard")
    with workdir_lib.open_workdir(str(workdir), config_lib.base_config()):
        pass
    (workdir / "tensorboard").unlink()
    os.symlink(tmp_path, workdir / "tensorboard")
    with workdir_lib.open_workdir(str(workdir), config_lib.base_config(), restart=True):
        assert not os.path.lexists(workdir / "tensorboard")


def test_moving_imagenets_tar_files_does_not_change_a_workdirs_config_but_a_training_key_does(tmp_path):
    # manual_dir is read once, to prepare tfds' copy: a resumed run must not be refused over it.
    from tfsubspace import config as config_lib, workdir as workdir_lib

    def imagenet(manual_dir, learning_rate=0.1):
        config = config_lib.base_config()
        config.dataset.name, config.dataset.manual_dir = "imagenet2012", manual_dir
        config.train.learning_rate = learning_rate
        return config

    workdir = str(tmp_path / "run")
    with workdir_lib.open_workdir(workdir, imagenet("/tars/a")):
        pass
    os.makedirs(os.path.join(workdir, "checkpoints", "subspace", "epoch-00001"))  # as if a run had trained
    with workdir_lib.open_workdir(workdir, imagenet("/elsewhere/b")):
        pass
    with pytest.raises(workdir_lib.WorkdirError, match="learning_rate"):
        with workdir_lib.open_workdir(workdir, imagenet("/elsewhere/b", learning_rate=0.2)):
            pass
