"""Where the arrays come from: local Fashion-MNIST IDX files first, then tensorflow_datasets.

`load_arrays` returns the arrays; `load_with_source` also says which copy was
used (`describe` renders that as one log line), so the binary can log and
record the data it actually trained on.

>>> DATASET_INFO["fashion_mnist"].input_shape
(28, 28, 1)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import types
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from tfsubspace.data.idx import FASHION_MNIST_SHA256, read_verified
from tfsubspace.data.validators import ArrayPair, ImageShape

DATA_DIR_ENV_VAR = "TFSUBSPACE_DATA_DIR"
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a supported dataset.

    ``mean`` and ``std`` are the per-channel statistics of the training images
    scaled to [0, 1], or None when the dataset is only divided by 255.

    >>> DATASET_INFO["cifar10"].num_classes, DATASET_INFO["cifar10"].input_shape
    (10, (32, 32, 3))
    """

    num_classes: int
    input_shape: ImageShape
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None


DATASET_INFO = types.MappingProxyType(
    {
        "fashion_mnist": DatasetInfo(10, (28, 28, 1), mean=(0.2860,), std=(0.3530,)),
        "mnist": DatasetInfo(10, (28, 28, 1)),
        "cifar10": DatasetInfo(
            10, (32, 32, 3), mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)
        ),
        # The published CIFAR-100 training-set statistics (no copy here to recompute them: BUILD_NOTES.md).
        "cifar100": DatasetInfo(
            100, (32, 32, 3), mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)
        ),
    }
)

#: Datasets too large for memory, streamed image by image (tfsubspace.data.streaming):
#: name -> (number of classes, default image size).
STREAMING_DATASETS = types.MappingProxyType({"imagenet2012": (1000, 224), "tiny_imagenet": (200, 64)})



def _canonical_name(name: str, streaming: bool = False) -> str:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    known = [*DATASET_INFO, *STREAMING_DATASETS] if streaming else list(DATASET_INFO)
    if key not in known:
        allowed = ", ".join(repr(n) for n in known)
        raise ValueError(f"Unknown dataset name {name!r}; allowed names: {allowed}")
    return key


def _find_idx_file(directory: Path, stem: str) -> Optional[Path]:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _fashion_mnist_search_dirs(data_dir) -> list:
    """(description, directory) pairs in search order."""
    if data_dir is not None:
        return [("data_dir", Path(data_dir))]  # asked for: never silently replaced by another copy
    dirs = []
    env_dir = os.environ.get(DATA_DIR_ENV_VAR)
    if env_dir:
        dirs.append((f"${DATA_DIR_ENV_VAR}", Path(env_dir)))
    dirs.append(("default", Path(DEFAULT_FASHION_MNIST_DIR)))
    return dirs


def _find_local_fashion_mnist(data_dir) -> Optional[Path]:
    """The first searched directory holding all four IDX files, or None.

    A directory holding only some of them is an error rather than a reason to
    look further: it is almost certainly a broken copy the user meant to use.
    """
    for description, directory in _fashion_mnist_search_dirs(data_dir):
        found = {stem: _find_idx_file(directory, stem) for stem in FASHION_MNIST_SHA256}
        missing = [stem for stem, path in found.items() if path is None]
        if not missing:
            return directory.resolve()
        if len(missing) < len(found):
            raise FileNotFoundError(
                f"{directory} ({description}) holds only part of Fashion-MNIST: missing "
                f"{', '.join(missing)} (plain or .gz). Add the missing files, e.g. from "
                "`apt-get install dataset-fashion-mnist`, or point "
                f"{description} at a complete copy."
            )
    return None


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist_dir(directory: str) -> Tuple[ArrayPair, ArrayPair]:
    """Parse and verify the four IDX files of one directory (cached per directory)."""

    def split(prefix: str) -> ArrayPair:
        images = read_verified(_find_idx_file(Path(directory), f"{prefix}-images-idx3-ubyte"))
        labels = read_verified(_find_idx_file(Path(directory), f"{prefix}-labels-idx1-ubyte"))
        labels = labels.astype(np.int64)
        labels.setflags(write=False)  # cached: callers must not change it under others
        return images[..., np.newaxis], labels

    return split("train"), split("t10k")


def _load_from_tfds(name: str, data_dir: Optional[str] = None) -> Tuple[ArrayPair, ArrayPair]:
    """Load train and test splits as numpy arrays with tensorflow_datasets."""
    import tensorflow_datasets as tfds  # slow import, and only needed here

    splits = tfds.load(name, split=["train", "test"], as_supervised=True, data_dir=data_dir)

    # Chunks, not batch_size=-1: that reads the split size from the dataset
    # info, which tfds.testing.mock_data leaves empty (the process aborts).
    def as_arrays(split):
        chunks = list(tfds.as_numpy(split.batch(10_000)))
        return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])

    return tuple(as_arrays(split) for split in splits)


@functools.lru_cache(maxsize=4)
def _load_tfds_cached(name: str, data_dir: Optional[str]) -> Tuple[ArrayPair, ArrayPair]:
    splits = _load_from_tfds(name, data_dir)
    expected_shape = DATASET_INFO[name].input_shape
    result = []
    for split_name, (images, labels) in zip(("train", "test"), splits):
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim == 3:
            images = images[..., np.newaxis]
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if images.shape[1:] != expected_shape or len(images) != len(labels):
            raise ValueError(
                f"tensorflow_datasets returned unexpected {name!r} {split_name} arrays: "
                f"images {images.shape}, labels {labels.shape}; expected images "
                f"[N, {', '.join(map(str, expected_shape))}] and N labels"
            )
        images.setflags(write=False)
        labels.setflags(write=False)
        result.append((images, labels))
    return result[0], result[1]


def _short_error(err: Exception) -> str:
    text = str(err).strip().splitlines()
    first_line = text[0] if text else ""
    if len(first_line) > 200:
        first_line = first_line[:200] + "..."
    return f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__


def _not_available_message(name: str, data_dir, err: Exception) -> str:
    if name == "fashion_mnist":
        searched = "; ".join(
            f"{directory} ({description})"
            for description, directory in _fashion_mnist_search_dirs(data_dir)
        )
        files = ", ".join(FASHION_MNIST_SHA256)
        return (
            "Fashion-MNIST is not available: no directory holds the four IDX files "
            f"({files}, plain or .gz) - searched {searched} - and downloading it with "
            f"tensorflow_datasets failed ({_short_error(err)}). To fix it, run "
            "`apt-get install dataset-fashion-mnist`, or set "
            f"{DATA_DIR_ENV_VAR} to a folder holding the four IDX files, or run once "
            "with network access so tensorflow_datasets can download and cache it."
        )
    where = f"data_dir {data_dir}" if data_dir is not None else "$TFDS_DATA_DIR or ~/tensorflow_datasets"
    return (
        f"Dataset {name!r} is not available: loading it with tensorflow_datasets failed "
        f"({_short_error(err)}). It has no offline copy here; run once with network "
        f"access so tensorflow_datasets can download and cache it (in {where})."
    )


def load_arrays(name: str, data_dir: Union[str, os.PathLike, None] = None):
    """Load a dataset as ``((x_train, y_train), (x_test, y_test))`` numpy arrays.

    Images are uint8 NHWC (Fashion-MNIST and MNIST get a channel axis:
    ``[N, 28, 28, 1]``), labels are int64 ``[N]``. The arrays are cached in
    process and read-only; copy them before changing them in place.

    ``name`` is one of ``DATASET_INFO``: 'fashion_mnist', 'mnist', 'cifar10',
    'cifar100'. For Fashion-MNIST, local IDX files are searched in ``data_dir``,
    then ``$TFSUBSPACE_DATA_DIR``, then ``/usr/share/datasets/fashion-mnist``,
    and verified against ``FASHION_MNIST_SHA256`` (ValueError on mismatch); if
    none is found, tensorflow_datasets is tried. The other datasets come from
    tensorflow_datasets, with ``data_dir`` as its data directory if given.
    FileNotFoundError says what to do when the data cannot be had.

    >>> (x_train, y_train), (x_test, y_test) = load_arrays("fashion_mnist")
    >>> x_train.shape, x_train.dtype.name, y_test.shape, y_test.dtype.name
    ((60000, 28, 28, 1), 'uint8', (10000,), 'int64')
    """
    return load_with_source(name, data_dir)[0]


def _check_data_dir(data_dir):
    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data_dir {os.fspath(data_dir)!r} does not exist or is not a directory")


def _arrays_sha256(splits):
    digest = {}
    for split_name, (images, labels) in zip(("train", "test"), splits):
        digest[split_name] = hashlib.sha256(
            np.ascontiguousarray(images).tobytes() + np.ascontiguousarray(labels).tobytes()
        ).hexdigest()
    return digest


def load_with_source(name: str, data_dir: Union[str, os.PathLike, None] = None):
    """:func:`load_arrays`, plus a dict saying which copy of the data it read.

    The dict holds the dataset ``name``, ``origin`` ("idx files" or
    "tensorflow_datasets"), the ``path`` read, and ``sha256``: of each IDX
    file (verified against the pinned release) or of each split's arrays.
    A ``data_dir`` that does not exist is a FileNotFoundError; a given
    ``data_dir`` is the only local directory searched.

    >>> _, source = load_with_source("fashion_mnist")
    >>> source["origin"], sorted(source["sha256"])[0]
    ('idx files', 't10k-images-idx3-ubyte')
    """
    key = _canonical_name(name)
    _check_data_dir(data_dir)
    if key == "fashion_mnist":
        local_dir = _find_local_fashion_mnist(data_dir)
        if local_dir is not None:
            source = {"name": key, "origin": "idx files", "path": str(local_dir),
                      "sha256": dict(FASHION_MNIST_SHA256)}
            return _load_fashion_mnist_dir(str(local_dir)), source
        # Offline, tensorflow_datasets retries its downloads for minutes before
        # failing: say what is happening rather than hang silently.
        _logger.warning(
            "No local Fashion-MNIST IDX files found; trying tensorflow_datasets, which "
            "needs network access. Offline this can take minutes to fail; "
            "`apt-get install dataset-fashion-mnist` avoids it."
        )
        tfds_dir = None  # data_dir named a folder of IDX files, not a tfds cache
    else:
        tfds_dir = None if data_dir is None else str(data_dir)
    try:
        splits = _load_tfds_cached(key, tfds_dir)
    except Exception as err:  # tfds fails in many ways offline; all mean "not available"
        raise FileNotFoundError(_not_available_message(key, data_dir, err)) from err
    source = {"name": key, "origin": "tensorflow_datasets", "path": tfds_dir or "tensorflow_datasets' default",
              "sha256": _arrays_sha256(splits)}
    return splits, source


def describe(source):
    """One line saying which data a run used (from :func:`build_datasets`' ``Datasets.source``).

    >>> describe({"name": "mnist", "origin": "tensorflow_datasets", "path": "/d", "sha256": {"train": "ab" * 32},
    ...           "train_examples": 5, "validation_examples": 0, "test_examples": 2})
    'mnist from tensorflow_datasets at /d (SHA-256 train abababababab…), 5 train / 0 validation / 2 test examples'
    """
    if not source:
        return "in-memory arrays"
    hashes = ", ".join(f"{part} {digest[:12]}…" for part, digest in sorted(source.get("sha256", {}).items()))
    hashes = f" (SHA-256 {hashes})" if hashes else ""  # none for a streamed tfds copy (too large to hash)
    sizes = (f", {source['train_examples']} train / {source['validation_examples']} validation / "
             f"{source['test_examples']} test examples" if "train_examples" in source else "")
    return f"{source['name']} from {source['origin']} at {source['path']}{hashes}{sizes}"
