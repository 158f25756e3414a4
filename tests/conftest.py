"""Shared test set-up: quiet TensorFlow, deterministic seeds, tiny models."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


def small_cnn(num_classes=4, synchronized=False, input_shape=(8, 8, 1)):
    """A tiny conv net with batch norm, enough to exercise every code path."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(4, 3, padding="same", name="conv"),
            keras.layers.BatchNormalization(synchronized=synchronized, name="bn"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, name="head"),
        ],
        name="tiny_cnn",
    )


def tiny_data(n=64, num_classes=4, input_shape=(8, 8, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *input_shape)).astype("float32")
    y = (np.arange(n) % num_classes).astype("int64")
    return x, y


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def binary_command(config_name, workdir, *overrides):
    """`python -m tfsubspace.train` with a repo config, a workdir and overrides."""
    return [
        sys.executable, "-m", "tfsubspace.train",
        f"--config={os.path.join(REPO, 'configs', config_name)}",
        f"--workdir={workdir}",
        *overrides,
    ]


BINARY_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_binary(config_name, workdir, *overrides, check=True, timeout=900):
    """Runs the training binary; with `check`, a failure shows the end of its stderr."""
    command = binary_command(config_name, workdir, *overrides)
    process = subprocess.run(command, capture_output=True, text=True, env=BINARY_ENV, timeout=timeout)
    if check and process.returncode:
        raise AssertionError(f"{' '.join(command)} failed:\n{process.stderr[-3000:]}")
    return process
