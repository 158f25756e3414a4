"""`config.distribution` in the training binary: MirroredStrategy on 2 logical CPUs and two
MultiWorkerMirroredStrategy workers on 127.0.0.1 train a tiny subspace to the weights of one
process, with one α per step on every replica, synchronized batch norm, chief-only writing and
resume. The binary runs instrumented by tests/distributed_binary.py (α and weights recorded).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

import conftest
from tfsubspace import config as config_lib
from tfsubspace import distribution

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = [
    f"--config={conftest.REPO}/configs/fashion_mnist_line.py",
    "--config.train.epochs=2",
    "--config.train.warmup_epochs=1",
    "--config.dataset.train_subset=256",
    "--config.train.batch_size=64",  # 4 steps an epoch, 32 examples a replica
    "--config.eval.batchnorm_steps=1",
    "--config.model.name=small_cnn",  # batch norm: its synchronization is tested
    "--config.model.kwargs.width=2",
    "--config.eval.alphas=(0.0, 1.0)",
    "--config.eval.export=False",
    "--config.train.standard_baseline=False",
]
STEPS = 8
TIMEOUT = 300
# Against one replica with the same (synchronized) batch norm, trainable weights agree to 1e-5
# (measured 6.5e-6) and moving statistics to 1e-4 (measured 4.5e-5). Against config.distribution
# "none" (unsynchronized batch norm: two-pass moments where Keras' synchronized ones are one-pass
# E[x²] - E[x]², rounding that grows over 8 steps at lr 0.1) to 1e-4 (measured 6.7e-5). Without
# synchronized batch norm 2 replicas are 2.2e-3 (weights) and 1.3e-2 (statistics) off. BUILD_NOTES.md.
WEIGHT_TOLERANCE = 1e-5
STATISTICS_TOLERANCE = 1e-4
NONE_TOLERANCE = 1e-4


def command(workdir, *overrides):
    return [sys.executable, os.path.join(HERE, "distributed_binary.py"), *TINY, f"--workdir={workdir}", *overrides]


def start(workdir, record, *overrides, tf_config=None, tmpdir=None):
    os.makedirs(record, exist_ok=True)
    env = {**conftest.BINARY_ENV, "RECORD_DIR": str(record), "PYTHONPATH": conftest.REPO}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen(command(workdir, *overrides), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(processes):
    """Waits for every process (one shared timeout); kills them all if one fails or hangs."""
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT))
            if process.returncode:
                raise AssertionError(f"exit {process.returncode}:\n{outputs[-1][1][-3000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [stderr for _, stderr in outputs]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def two_workers(workdir, record, tmpdir):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = [start(workdir, record, "--config.distribution=multi_worker", tmpdir=tmpdir,
                       tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}})
                 for index in range(2)]
    return finish(processes)


def weights(record, task=0):
    with np.load(os.path.join(record, f"subspace-{task}.npz")) as saved:
        return {key: saved[key] for key in saved.files}


def alphas(record, task=0):
    """{(step, replica): α row} drawn in training steps (replica -1: outside a replica context)."""
    rows = {}
    with open(os.path.join(record, f"alpha-{task}.txt")) as f:
        for line in f:
            step, replica, values = line.split(" ", 2)
            if int(replica) >= 0:
                rows[(int(step), int(replica))] = [float(v) for v in values.strip(" []\n").split()]
    return rows


def assert_same_weights(expected, actual, weight_tolerance=WEIGHT_TOLERANCE):
    assert list(expected) == list(actual)
    for key in expected:
        tolerance = STATISTICS_TOLERANCE if "moving_" in key else weight_tolerance
        difference = float(np.abs(expected[key] - actual[key]).max())
        assert difference <= tolerance, (key, difference)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """Two one-process references: "none", and "mirrored" on one device (synchronized batch norm)."""
    root = tmp_path_factory.mktemp("single")
    finish([start(root / "none", root / "none_record"),
            start(root / "one", root / "one_record", "--config.distribution=mirrored",
                  "--config.distribution_devices=1")])
    return root


def assert_matches_one_process(single, record):
    one, none, actual = weights(single / "one_record"), weights(single / "none_record"), weights(record)
    moved = max(float(np.abs(v).max()) for k, v in one.items() if "beta_copies" in k)
    assert moved > 1e-3  # training moved the weights (beta starts at 0)
    assert_same_weights(one, actual)
    assert_same_weights(none, actual, weight_tolerance=NONE_TOLERANCE)


def test_mirrored_on_two_logical_cpus_matches_one_device_with_one_alpha_per_step(single, tmp_path):
    finish([start(tmp_path / "run", tmp_path / "record", "--config.distribution=mirrored",
                  "--config.distribution_devices=2")])
    assert_matches_one_process(single, tmp_path / "record")
    drawn, expected = alphas(tmp_path / "record"), alphas(single / "none_record")
    assert alphas(single / "one_record") == expected
    assert sorted(drawn) == [(step, replica) for step in range(STEPS) for replica in (0, 1)]
    for (step, replica), row in drawn.items():
        assert row == expected[(step, 0)], (step, replica)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["distribution"] == "mirrored"


def test_two_workers_match_one_process_write_only_on_the_chief_and_resume(single, tmp_path):
    workdir, tmpdir = tmp_path / "run", tmp_path / "tmp"
    tmpdir.mkdir()
    logs = two_workers(workdir, tmp_path / "record", tmpdir)
    assert_matches_one_process(single, tmp_path / "record")
    chief, other = weights(tmp_path / "record", 0), weights(tmp_path / "record", 1)
    for key in chief:  # every worker holds the same weights, batch-norm statistics included
        np.testing.assert_array_equal(chief[key], other[key], err_msg=key)
    expected = alphas(single / "none_record")
    for task in (0, 1):
        drawn = alphas(tmp_path / "record", task)
        assert sorted(drawn) == [(step, task) for step in range(STEPS)]
        assert all(row == expected[(step, 0)] for (step, _), row in drawn.items()), task
    # Only the chief wrote the workdir; the other worker wrote into a temporary directory, now gone.
    assert "Not the chief" not in logs[0]
    temporary = re.search(r"Not the chief: this worker writes into (\S+) ", logs[1]).group(1)
    assert os.path.dirname(temporary) == str(tmpdir) and not os.path.exists(temporary)
    assert (workdir / "results.json").exists() and (workdir / "model.keras").exists()
    assert os.listdir(tmpdir) == []
    checkpoints = workdir / "checkpoints" / "subspace"
    assert (checkpoints / "latest").read_text().strip() == "epoch-00002"

    # Resume: back to the epoch-1 checkpoint, both workers restore it from the chief's workdir.
    shutil.rmtree(checkpoints / "epoch-00002")
    (checkpoints / "latest").write_text("epoch-00001")
    (workdir / "results.json").unlink()
    shutil.move(tmp_path / "record", tmp_path / "first")
    logs = two_workers(workdir, tmp_path / "record", tmpdir)
    for log in logs:
        assert "Resuming subspace from" in log and "epoch-00001" in log
    for task in (0, 1):
        assert sorted(alphas(tmp_path / "record", task)) == [(step, task) for step in range(STEPS // 2, STEPS)]
        resumed, uninterrupted = weights(tmp_path / "record", task), weights(tmp_path / "first", task)
        for key in resumed:
            np.testing.assert_allclose(resumed[key], uninterrupted[key], rtol=0, atol=1e-6, err_msg=key)
    assert (workdir / "results.json").exists() and os.listdir(tmpdir) == []


@pytest.mark.parametrize(
    "distribution, devices, message",
    [
        ("horovod", None, "config.distribution must be one of ('none', 'mirrored', 'multi_worker'), got 'horovod'"),
        ("mirrored", -1, "config.distribution_devices must be an integer >= 0 or None, got -1"),
        ("mirrored", 2.5, "config.distribution_devices must be an integer >= 0 or None, got 2.5"),
        ("none", 2, "config.distribution_devices (logical CPU devices) applies to distribution='mirrored' only"),
    ],
)
def test_bad_distribution_config_is_one_line_error(distribution, devices, message):
    config = config_lib.base_config()
    config.distribution = distribution
    with config.ignore_type():
        config.distribution_devices = devices
    with pytest.raises(ValueError) as error:
        config_lib.validate(config)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "config.distribution='multi_worker' needs the TF_CONFIG environment variable"),
        ("{not json", "the TF_CONFIG environment variable is not JSON"),
        ('{"cluster": {"worker": ["h:1"]}}', "must be an object with `cluster` and `task` objects"),
        ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "cluster.ps must be a non-empty list"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}', "task.type must be one of"),
        ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "cluster must list `worker`"),
        ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}',
         "task.index must be an integer in [0, 1]"),
    ],
)
def test_multi_worker_without_a_valid_tf_config_is_one_line_error(monkeypatch, tf_config, message):
    config = config_lib.base_config()
    config.distribution = "multi_worker"
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError) as error:
        distribution.make_strategy(config)  # refused before any strategy is created
    assert message in str(error.value) and "\n" not in str(error.value)


def test_logical_cpus_after_tensorflow_started_is_one_line_error():
    import tensorflow as tf

    tf.constant(0.0) + 1.0  # TensorFlow's devices are initialised from here on
    config = config_lib.base_config()
    config.distribution, config.distribution_devices = "mirrored", 2
    with pytest.raises(ValueError, match=r"^config.distribution_devices=2: TensorFlow's devices are already "
                                         r"initialised in this process; choose the strategy before"):
        distribution.make_strategy(config)


def test_tf_config_with_a_chief_task_counts_the_chief_among_the_tasks():
    assert distribution.parse_tf_config(
        '{"cluster": {"chief": ["h:0"], "worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}') == ("chief", 0, 2)
