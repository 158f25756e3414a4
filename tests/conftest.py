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


def make_tiny_imagenet(root, num_classes=3, per_class=4, num_val=6, size=64):
    """A tiny-imagenet-200 folder layout of random JPEGs (every 3rd val image grayscale); returns the wnids."""
    import tensorflow as tf

    root = os.fspath(root)
    wnids = [f"n{i:08d}" for i in range(num_classes)]
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "wnids.txt"), "w") as f:
        f.write("\n".join(reversed(wnids)) + "\n")  # unsorted, as in the real file
    for wnid in wnids:
        folder = os.path.join(root, "train", wnid, "images")
        os.makedirs(folder)
        for j in range(per_class):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            tf.io.write_file(os.path.join(folder, f"{wnid}_{j}.JPEG"), tf.io.encode_jpeg(image))
    os.makedirs(os.path.join(root, "val", "images"))
    lines = []
    for j in range(num_val):
        image = rng.integers(0, 256, (size, size, 1 if j % 3 == 0 else 3), dtype=np.uint8)
        tf.io.write_file(os.path.join(root, "val", "images", f"val_{j}.JPEG"), tf.io.encode_jpeg(image))
        lines.append(f"val_{j}.JPEG\t{wnids[(j * 2) % num_classes]}\t0\t0\t10\t10")
    with open(os.path.join(root, "val", "val_annotations.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return wnids


def freudenthal_numpy(alpha, resolution):
    """{grid counts k (tuple, sum r): weight} of α, found by solving for barycentric coordinates.

    An independent reference for tfsubspace.batchnorm_grid: it tries every
    cell of the Freudenthal (Kuhn) triangulation of the r-scaled simplex,
    cells written in cumulative coordinates z_j = k_1 + ... + k_j, and
    solves [vertices; 1]·λ = [r·α; 1] with numpy; the first cell with λ ≥ 0
    holds α.
    """
    import itertools

    alpha = np.asarray(alpha, np.float64)
    m = len(alpha)
    target = np.append(alpha * resolution, 1.0)
    for corner in itertools.product(range(resolution), repeat=m - 1):
        for order in itertools.permutations(range(m - 1)):
            z = [np.array(corner, np.float64)]
            for axis in order:
                z.append(z[-1] + np.eye(m - 1)[axis])
            counts = [np.diff(np.concatenate([[0.0], v, [resolution]])) for v in z]
            if min(c.min() for c in counts) < 0:
                continue  # a cell outside the simplex
            system = np.vstack([np.array(counts).T, np.ones(m)])
            weights = np.linalg.lstsq(system, target, rcond=None)[0]
            if weights.min() >= -1e-7 and np.allclose(system @ weights, target, atol=1e-6):
                return {tuple(int(round(v)) for v in c): w for c, w in zip(counts, weights) if abs(w) > 1e-9}
    raise AssertionError(f"no cell holds {alpha}")
