"""Offline-first image-classification data for training and evaluation.

Two layers:

* Raw arrays. :func:`load_arrays` returns ``((x_train, y_train), (x_test, y_test))``
  with uint8 NHWC images and int64 labels. Fashion-MNIST is read from local IDX
  files (the Debian package ``dataset-fashion-mnist`` installs them in
  ``/usr/share/datasets/fashion-mnist``) and checked against pinned SHA-256
  hashes, so no network is needed. Without a local copy, and always for MNIST,
  CIFAR-10 and CIFAR-100, the arrays come from ``tensorflow_datasets``, which
  needs network access the first time it sees a dataset.
* ``tf.data`` pipelines. :func:`make_pipeline` turns arrays into batched,
  normalized and, for training, shuffled and optionally augmented datasets.
  :func:`from_arrays` and :func:`build_datasets` assemble the train,
  validation, test and train-eval pipelines into one :class:`Datasets` record.

Shuffling and augmentation depend only on ``seed``: two pipelines built with
the same seed yield the same batches, epoch after epoch, while every epoch gets
a fresh order and fresh crops and flips.

Example:

>>> from tfsubspace import data
>>> sets = data.build_datasets("fashion_mnist", batch_size=128, train_subset=1024)
>>> images, labels = next(iter(sets.train))
>>> images.shape, images.dtype.name, labels.dtype.name
(TensorShape([128, 28, 28, 1]), 'float32', 'int64')
>>> sets.steps_per_epoch, sets.num_classes
(8, 10)
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import logging
import math
import os
import types
import zlib
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

__all__ = [
    "AUGMENTATIONS",
    "DATASET_INFO",
    "DATA_DIR_ENV_VAR",
    "DEFAULT_FASHION_MNIST_DIR",
    "DatasetInfo",
    "Datasets",
    "FASHION_MNIST_SHA256",
    "build_datasets",
    "from_arrays",
    "load_arrays",
    "make_pipeline",
    "parse_idx",
    "read_idx",
]

DATA_DIR_ENV_VAR = "TFSUBSPACE_DATA_DIR"
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# SHA-256 of the *unzipped* IDX files of the official Fashion-MNIST release,
# so that gzipped and plain copies verify alike.
FASHION_MNIST_SHA256 = types.MappingProxyType(
    {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
)

AUGMENTATIONS = (None, "crop", "flip_crop")
CROP_PADDING = 4  # pixels of zero padding around an image before a random crop

_logger = logging.getLogger(__name__)

ImageShape = Tuple[int, int, int]
ArrayPair = Tuple[np.ndarray, np.ndarray]
Stats = Union[float, Sequence[float], None]


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
        "cifar100": DatasetInfo(100, (32, 32, 3)),
    }
)


@dataclasses.dataclass(frozen=True)
class Datasets:
    """The pipelines and sizes of one experiment's data.

    ``train`` is shuffled (and augmented if asked); ``train_eval`` holds the
    same training examples without shuffling or augmentation, batched like the
    evaluation sets, for batch-norm recomputation and train-loss evaluation.
    ``validation`` is None unless a validation holdout was requested.
    ``input_shape`` is the shape of one image as the model sees it (after
    ``pad_to``).

    >>> sets = from_arrays((np.zeros((10, 8, 8, 1), np.uint8), np.arange(10) % 2),
    ...                    (np.zeros((4, 8, 8, 1), np.uint8), np.arange(4) % 2),
    ...                    batch_size=4)
    >>> sets.train_size, sets.steps_per_epoch, sets.num_classes, sets.input_shape
    (10, 3, 2, (8, 8, 1))
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    train_eval: tf.data.Dataset
    num_classes: int
    input_shape: ImageShape
    train_size: int
    validation_size: int
    test_size: int
    steps_per_epoch: int
    #: ``train_epochs(initial_epoch, order_seed=None)``: the endless stream of
    #: training epochs ``initial_epoch``, ``initial_epoch + 1``, ..., each of
    #: ``steps_per_epoch`` batches, its order and augmentation keyed by (seed,
    #: epoch number); ``order_seed`` replaces the seed for the order and
    #: augmentation only (the examples, split and label noise stay), e.g. for
    #: independently trained ensemble members. Fit it with ``steps_per_epoch=``
    #: and ``initial_epoch=``: a run resumed at epoch k then sees the batches an
    #: uninterrupted run sees at epoch k.
    train_epochs: Optional[Callable[[int], tf.data.Dataset]] = None


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

_IDX_UNSIGNED_BYTE = 0x08


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (unzipped) IDX file holding unsigned bytes.

    The format is strict: two zero bytes, the data-type code 0x08, the number of
    dimensions, one big-endian uint32 per dimension, then exactly
    ``prod(dims)`` bytes. Anything else raises ValueError naming ``source``.
    The result is a read-only view of ``data``.

    >>> parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
    array([[1, 2, 3],
           [4, 5, 6]], dtype=uint8)
    """
    size = len(data)
    if size < 4:
        raise ValueError(
            f"{source}: not an IDX file: {size} bytes is shorter than the 4-byte magic number"
        )
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{source}: bad IDX magic number 0x{bytes(data[:4]).hex()}: "
            "the first two bytes must be zero"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code != _IDX_UNSIGNED_BYTE:
        raise ValueError(
            f"{source}: unsupported IDX data type code 0x{dtype_code:02x}; "
            "only 0x08 (unsigned byte) is supported"
        )
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if size < header_size:
        raise ValueError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header_size} "
            f"header bytes, the file has {size} bytes"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_size = header_size + math.prod(dims)
    if size != expected_size:
        problem = "is truncated" if size < expected_size else "has trailing bytes"
        raise ValueError(
            f"{source}: IDX file {problem}: its header declares shape {dims}, "
            f"so it should be {expected_size} bytes long, but it is {size} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def _read_unzipped_bytes(path: Path) -> bytes:
    """Return a file's bytes, gunzipped if they are gzip data (whatever the name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # IDX files start with 0x0000, gzip with 0x1f8b
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from err


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an IDX file of unsigned bytes, gzipped or not, into a read-only array.

    Raises ValueError naming the file when it is corrupt or truncated.

    >>> x_test = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    >>> x_test.shape, x_test.dtype.name
    ((10000, 28, 28), 'uint8')
    """
    path = Path(path)
    return parse_idx(_read_unzipped_bytes(path), str(path))


# --------------------------------------------------------------------------
# Raw arrays
# --------------------------------------------------------------------------


def _canonical_name(name: str) -> str:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    if key not in DATASET_INFO:
        allowed = ", ".join(repr(n) for n in DATASET_INFO)
        raise ValueError(f"Unknown dataset name {name!r}; allowed names: {allowed}")
    return key


def _find_idx_file(directory: Path, stem: str) -> Optional[Path]:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _fashion_mnist_search_dirs(data_dir) -> list:
    """(description, directory) pairs in search order."""
    dirs = []
    if data_dir is not None:
        dirs.append(("data_dir", Path(data_dir)))
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


def _read_verified(path: Path) -> np.ndarray:
    data = _read_unzipped_bytes(path)
    stem = path.name[:-3] if path.name.endswith(".gz") else path.name
    expected = FASHION_MNIST_SHA256[stem]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{path}: SHA-256 of the unzipped contents does not match Fashion-MNIST: "
            f"expected {expected}, actual {actual}. The file is corrupt or not the "
            "official release; reinstall dataset-fashion-mnist or fix the data directory."
        )
    return parse_idx(data, str(path))


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist_dir(directory: str) -> Tuple[ArrayPair, ArrayPair]:
    """Parse and verify the four IDX files of one directory (cached per directory)."""

    def split(prefix: str) -> ArrayPair:
        images = _read_verified(_find_idx_file(Path(directory), f"{prefix}-images-idx3-ubyte"))
        labels = _read_verified(_find_idx_file(Path(directory), f"{prefix}-labels-idx1-ubyte"))
        labels = labels.astype(np.int64)
        labels.setflags(write=False)  # cached: callers must not change it under others
        return images[..., np.newaxis], labels

    return split("train"), split("t10k")


def _load_from_tfds(name: str, data_dir: Optional[str] = None) -> Tuple[ArrayPair, ArrayPair]:
    """Load train and test splits as numpy arrays with tensorflow_datasets."""
    import tensorflow_datasets as tfds  # slow import, and only needed here

    train, test = tfds.load(
        name, split=["train", "test"], batch_size=-1, as_supervised=True, data_dir=data_dir
    )
    return tfds.as_numpy(train), tfds.as_numpy(test)


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
    key = _canonical_name(name)
    if key == "fashion_mnist":
        local_dir = _find_local_fashion_mnist(data_dir)
        if local_dir is not None:
            return _load_fashion_mnist_dir(str(local_dir))
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
        return _load_tfds_cached(key, tfds_dir)
    except Exception as err:  # tfds fails in many ways offline; all mean "not available"
        raise FileNotFoundError(_not_available_message(key, data_dir, err)) from err


# --------------------------------------------------------------------------
# Argument checks (plain Python, so bad arguments fail before TF sees them)
# --------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_positive_int(value, argument: str, *, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if not _is_int(value) or value <= 0:
        allowed = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{argument} must be {allowed}, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    if not _is_int(seed) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _check_augment(augment, training: bool) -> Optional[str]:
    if not (augment is None or (isinstance(augment, str) and augment in AUGMENTATIONS)):
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    if augment is not None and not training:
        raise ValueError(f"augment={augment!r} needs training=True; evaluation data is never augmented")
    return augment


def _check_training(training) -> bool:
    if not isinstance(training, (bool, np.bool_)):
        raise ValueError(f"training must be True or False, got {training!r}")
    return bool(training)


def _check_arrays(images, labels, what: str = "") -> ArrayPair:
    """Validate one split; add a channel axis to [N, H, W] images."""
    images, labels = np.asarray(images), np.asarray(labels)
    images_arg, labels_arg = f"{what}images", f"{what}labels"
    if images.dtype != np.uint8:
        raise ValueError(f"{images_arg} must be uint8 (values 0..255), got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or 0 in images.shape:
        raise ValueError(
            f"{images_arg} must have shape [N, H, W, C] or [N, H, W] with no empty axis, "
            f"got {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{labels_arg} must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_arg} and {labels_arg} must have the same length, "
            f"got {len(images)} images and {len(labels)} labels"
        )
    if labels.min() < 0:
        raise ValueError(f"{labels_arg} must be >= 0, got minimum {labels.min()}")
    return images, labels.astype(np.int64, copy=False)


def _check_pad_to(pad_to, image_shape: ImageShape) -> Optional[int]:
    if pad_to is None:
        return None
    height, width = image_shape[:2]
    if not _is_int(pad_to) or pad_to < max(height, width):
        raise ValueError(
            f"pad_to must be None or an integer >= the image size {height}x{width}, got {pad_to!r}"
        )
    return int(pad_to)


def _check_normalization(mean: Stats, std: Stats, channels: int):
    """Return (mean, std) as float32 arrays of shape [channels], or None."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError(f"mean and std must be given together, got mean={mean!r}, std={std!r}")
    stats = []
    for argument, value in (("mean", mean), ("std", std)):
        try:
            array = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{argument} must be a float or a sequence of floats, got {value!r}") from err
        if array.ndim != 1 or array.size not in (1, channels) or not np.all(np.isfinite(array)):
            raise ValueError(
                f"{argument} must be a finite float or {channels} per-channel floats, got {value!r}"
            )
        stats.append(np.broadcast_to(array, (channels,)).astype(np.float32))
    if np.any(stats[1] <= 0):
        raise ValueError(f"std must be positive, got {std!r}")
    return stats[0], stats[1]


@dataclasses.dataclass(frozen=True)
class _PipelineConfig:
    """Validated pipeline settings shared by every split of one experiment."""

    image_shape: ImageShape  # of the stored images, before pad_to
    pad_to: Optional[int]
    normalization: Optional[Tuple[np.ndarray, np.ndarray]]

    @property
    def output_shape(self) -> ImageShape:
        height, width, channels = self.image_shape
        if self.pad_to is None:
            return (height, width, channels)
        return (self.pad_to, self.pad_to, channels)


# --------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------


def _pad_centered(images: tf.Tensor, config: _PipelineConfig) -> tf.Tensor:
    """Zero-pad [H, W, C] or [B, H, W, C] uint8 images to pad_to x pad_to."""
    if config.pad_to is None:
        return images
    height, width = config.image_shape[:2]
    top, left = (config.pad_to - height) // 2, (config.pad_to - width) // 2
    return tf.image.pad_to_bounding_box(images, top, left, config.pad_to, config.pad_to)


def _to_float(images: tf.Tensor, config: _PipelineConfig) -> tf.Tensor:
    """uint8 -> float32 in [0, 1], then (x - mean) / std when statistics are given."""
    images = tf.cast(images, tf.float32) * (1.0 / 255.0)
    if config.normalization is not None:
        mean, std = config.normalization
        images = (images - tf.constant(mean)) / tf.constant(std)
    return images


def _build_pipeline(
    images: tf.Tensor,
    labels: tf.Tensor,
    config: _PipelineConfig,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    augment: Optional[str],
    shuffle_buffer: Optional[int],
    drop_remainder: bool,
    initial_epoch: Optional[int] = None,
) -> tf.data.Dataset:
    """The one pipeline behind make_pipeline, from_arrays and build_datasets.

    It walks example *indices* and gathers images from one in-memory tensor, so
    a full-size shuffle buffer costs 8 bytes per example instead of a copy of
    every image, and the train and train-eval pipelines share one tensor.

    Training order and augmentation are a pure function of (seed, epoch key):
    with ``initial_epoch=None`` the pipeline is one epoch whose key is drawn
    anew from ``seed`` on every iteration (a new order each epoch, the same
    sequence for every pipeline built with this seed); with an integer
    ``initial_epoch`` it is the endless stream of epochs ``initial_epoch``,
    ``initial_epoch + 1``, ... keyed by their number, so a run resumed at
    epoch k sees exactly the batches an uninterrupted run sees there.
    """
    num_examples = int(images.shape[0])
    autotune = tf.data.AUTOTUNE
    if not training:
        return _batches_of(tf.data.Dataset.range(num_examples), images, labels, config,
                           batch_size, drop_remainder, augment=None, epoch_seed=None)

    def one_epoch(epoch_key):
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch_key, tf.int64)])
        if shuffle_buffer is None:
            order = tf.random.experimental.stateless_shuffle(tf.range(num_examples, dtype=tf.int64), seed=epoch_seed)
            indices = tf.data.Dataset.from_tensor_slices(order)
        else:
            buffer_seed = tf.random.experimental.stateless_fold_in(epoch_seed, 0)[0]
            indices = tf.data.Dataset.range(num_examples).shuffle(shuffle_buffer, seed=buffer_seed)
        return _batches_of(indices, images, labels, config, batch_size, drop_remainder, augment, epoch_seed)

    if initial_epoch is None:
        epoch_keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    else:
        epoch_keys = tf.data.Dataset.range(initial_epoch, 2**62)
    return epoch_keys.flat_map(one_epoch).prefetch(autotune)


def _batches_of(indices, images, labels, config, batch_size, drop_remainder, augment, epoch_seed):
    """(float images, labels) batches of the examples `indices` lists, in that order."""
    autotune = tf.data.AUTOTUNE
    if augment is None:
        # Gather whole batches: much cheaper than one map call per example.
        dataset = indices.batch(batch_size, drop_remainder=drop_remainder).map(
            lambda batch: (
                _to_float(_pad_centered(tf.gather(images, batch), config), config),
                tf.gather(labels, batch),
            ),
            num_parallel_calls=autotune,
        )
        return dataset.prefetch(autotune)

    flip = augment == "flip_crop"
    crop_size = list(config.output_shape)
    crop_padding = [[CROP_PADDING, CROP_PADDING], [CROP_PADDING, CROP_PADDING], [0, 0]]

    def augment_example(index):
        # Stateless ops keyed on (seed, epoch, example index): reproducible,
        # different across epochs and examples, independent of map scheduling.
        example_seed = tf.random.experimental.stateless_fold_in(epoch_seed, index)
        crop_seed, flip_seed = tf.unstack(tf.random.split(example_seed, num=2))
        image = _pad_centered(tf.gather(images, index), config)
        image = tf.image.stateless_random_crop(
            tf.pad(image, crop_padding), size=crop_size, seed=crop_seed
        )
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return image, tf.gather(labels, index)

    dataset = (
        # Crop each example on its own, before batching: a batch-level crop
        # (like keras.layers.RandomCrop) would use one offset for the batch.
        indices.map(augment_example, num_parallel_calls=autotune)
        .batch(batch_size, drop_remainder=drop_remainder)
        .map(lambda image, label: (_to_float(image, config), label), num_parallel_calls=autotune)
    )
    return dataset.prefetch(autotune)


def make_pipeline(
    images,
    labels,
    *,
    batch_size: int,
    training: bool,
    seed: int = 0,
    augment: Optional[str] = None,
    pad_to: Optional[int] = None,
    shuffle_buffer: Optional[int] = None,
    drop_remainder: bool = False,
    mean: Stats = None,
    std: Stats = None,
) -> tf.data.Dataset:
    """Build a batched ``tf.data`` pipeline of ``(float32 images, int64 labels)``.

    ``images`` are uint8 ``[N, H, W, C]`` (or ``[N, H, W]``), ``labels`` integer
    ``[N]``. Images are scaled to [0, 1], then standardized as
    ``(x - mean) / std`` if ``mean`` and ``std`` (floats or per-channel
    sequences) are given. ``pad_to`` zero-pads images, centered, to a square
    (e.g. 28x28 -> 32x32). With ``training=True`` the examples are shuffled
    (over all of them unless ``shuffle_buffer`` is given), a new order each
    epoch, reproducibly for a given ``seed``; ``augment`` may then be "crop"
    (random crop after 4 pixels of zero padding, per example) or "flip_crop"
    (the same plus a random horizontal flip). Bad arguments raise ValueError.

    >>> images = np.zeros((10, 28, 28), np.uint8)
    >>> dataset = make_pipeline(images, np.arange(10), batch_size=4, training=True,
    ...                         seed=1, augment="flip_crop", pad_to=32)
    >>> [tuple(x.shape) for x, _ in dataset]
    [(4, 32, 32, 1), (4, 32, 32, 1), (2, 32, 32, 1)]
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    shuffle_buffer = _check_positive_int(shuffle_buffer, "shuffle_buffer", allow_none=True)
    training = _check_training(training)
    seed = _check_seed(seed)
    augment = _check_augment(augment, training)
    images, labels = _check_arrays(images, labels)
    image_shape = tuple(int(d) for d in images.shape[1:])
    config = _PipelineConfig(
        image_shape=image_shape,
        pad_to=_check_pad_to(pad_to, image_shape),
        normalization=_check_normalization(mean, std, image_shape[-1]),
    )
    return _build_pipeline(
        tf.convert_to_tensor(images),
        tf.convert_to_tensor(labels),
        config,
        batch_size=batch_size,
        training=training,
        seed=seed,
        augment=augment,
        shuffle_buffer=shuffle_buffer,
        drop_remainder=bool(drop_remainder),
    )


def _split_indices(num_examples: int, *, seed: int, validation_size: int, train_subset):
    """Sorted (train, validation) indices from one seeded permutation.

    The validation holdout is drawn first, so it does not depend on
    ``train_subset``, and subsets of growing size are nested.
    """
    order = np.random.default_rng(seed).permutation(num_examples)
    validation = np.sort(order[:validation_size])
    remaining = order[validation_size:]
    train = np.sort(remaining if train_subset is None else remaining[:train_subset])
    return train, validation


def _check_split_args(validation_size, train_subset):
    if not _is_int(validation_size) or validation_size < 0:
        raise ValueError(f"validation_size must be a non-negative integer, got {validation_size!r}")
    return int(validation_size), _check_positive_int(train_subset, "train_subset", allow_none=True)


def _check_label_noise(label_noise, label_noise_seed):
    number = isinstance(label_noise, (int, float, np.number)) and not isinstance(label_noise, bool)
    if not number or not 0 <= label_noise <= 1:
        raise ValueError(f"label_noise must be a number in [0, 1], got {label_noise!r}")
    if not _is_int(label_noise_seed) or not 0 <= label_noise_seed < 2**63:
        raise ValueError(f"label_noise_seed must be an integer in [0, 2**63), got {label_noise_seed!r}")
    return float(label_noise), int(label_noise_seed)


def from_arrays(
    train: ArrayPair,
    test: ArrayPair,
    *,
    batch_size: int,
    num_classes: Optional[int] = None,
    seed: int = 0,
    augment: Optional[str] = None,
    validation_size: int = 0,
    train_subset: Optional[int] = None,
    eval_batch_size: Optional[int] = None,
    pad_to: Optional[int] = None,
    mean: Stats = None,
    std: Stats = None,
    label_noise: float = 0.0,
    label_noise_seed: int = 0,
) -> Datasets:
    """Build :class:`Datasets` from in-memory ``(images, labels)`` pairs.

    Uses the same pipeline as :func:`make_pipeline`. ``validation_size``
    examples are held out of the training set (a fixed permutation drawn from
    ``seed``); ``train_subset`` then keeps that many of the remaining training
    examples. ``eval_batch_size`` (default ``batch_size``) batches the test,
    validation and train-eval pipelines. ``num_classes`` defaults to the
    largest label + 1.

    ``label_noise`` = c in [0, 1] reassigns round(c·n) of the n training
    examples (those left after ``validation_size`` and ``train_subset``) a
    uniformly random label with :func:`tfsubspace.baselines.corrupt_labels`
    (paper 001 §4.3). The choice depends only on ``label_noise_seed``, not on
    ``seed``, so every method and every ensemble member trains on the same
    noisy labels; the validation and test labels are never touched (the
    train-eval pipeline shows the noisy training labels).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, (100, 8, 8, 3), dtype=np.uint8)
    >>> y = rng.integers(0, 5, 100)
    >>> sets = from_arrays((x, y), (x[:20], y[:20]), batch_size=16, num_classes=5,
    ...                    validation_size=10, train_subset=50, augment="crop")
    >>> sets.train_size, sets.validation_size, sets.steps_per_epoch
    (50, 10, 4)
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    eval_batch_size = _check_positive_int(eval_batch_size, "eval_batch_size", allow_none=True)
    eval_batch_size = eval_batch_size or batch_size
    seed = _check_seed(seed)
    augment = _check_augment(augment, training=True)
    validation_size, train_subset = _check_split_args(validation_size, train_subset)
    label_noise, label_noise_seed = _check_label_noise(label_noise, label_noise_seed)
    x_train, y_train = _check_arrays(*train, what="train ")
    x_test, y_test = _check_arrays(*test, what="test ")
    image_shape = tuple(int(d) for d in x_train.shape[1:])
    if tuple(x_test.shape[1:]) != image_shape:
        raise ValueError(
            f"test images must have the train image shape {image_shape}, got {tuple(x_test.shape[1:])}"
        )
    max_label = int(max(y_train.max(), y_test.max()))
    if num_classes is None:
        num_classes = max_label + 1
    elif not _is_int(num_classes) or num_classes <= max_label:
        raise ValueError(
            f"num_classes must be an integer > the largest label {max_label}, got {num_classes!r}"
        )
    available = len(x_train) - validation_size
    if available < 1:
        raise ValueError(
            f"validation_size must leave at least one training example: got {validation_size} "
            f"for {len(x_train)} training examples"
        )
    if train_subset is not None and train_subset > available:
        raise ValueError(
            f"train_subset must be at most {available} (training examples left after "
            f"validation_size={validation_size}), got {train_subset}"
        )
    config = _PipelineConfig(
        image_shape=image_shape,
        pad_to=_check_pad_to(pad_to, image_shape),
        normalization=_check_normalization(mean, std, image_shape[-1]),
    )

    validation_images = validation_labels = None
    if validation_size or train_subset is not None:
        train_idx, validation_idx = _split_indices(
            len(x_train), seed=seed, validation_size=validation_size, train_subset=train_subset
        )
        if validation_size:
            validation_images, validation_labels = x_train[validation_idx], y_train[validation_idx]
        x_train, y_train = x_train[train_idx], y_train[train_idx]
    if label_noise:
        from tfsubspace.baselines.label_noise import corrupt_labels

        y_train = corrupt_labels(np.asarray(y_train), label_noise, int(num_classes), seed=label_noise_seed)

    def evaluation(images, labels):
        return _build_pipeline(
            images, labels, config, batch_size=eval_batch_size, training=False, seed=seed,
            augment=None, shuffle_buffer=None, drop_remainder=False,
        )

    # One tensor per split, shared by the pipelines that read it.
    train_images, train_labels = tf.convert_to_tensor(x_train), tf.convert_to_tensor(y_train)

    def training(initial_epoch=None, order_seed=None):
        if initial_epoch is not None and (not _is_int(initial_epoch) or initial_epoch < 0):
            raise ValueError(f"initial_epoch must be an integer >= 0, got {initial_epoch!r}")
        return _build_pipeline(
            train_images, train_labels, config, batch_size=batch_size, training=True,
            seed=seed if order_seed is None else _check_seed(order_seed), augment=augment,
            shuffle_buffer=None, drop_remainder=False, initial_epoch=initial_epoch,
        )

    return Datasets(
        train=training(),
        train_epochs=training,
        test=evaluation(tf.convert_to_tensor(x_test), tf.convert_to_tensor(y_test)),
        validation=(
            None
            if validation_images is None
            else evaluation(tf.convert_to_tensor(validation_images), tf.convert_to_tensor(validation_labels))
        ),
        train_eval=evaluation(train_images, train_labels),
        num_classes=int(num_classes),
        input_shape=config.output_shape,
        train_size=len(x_train),
        validation_size=validation_size,
        test_size=len(x_test),
        steps_per_epoch=math.ceil(len(x_train) / batch_size),
    )


def build_datasets(
    name: str,
    *,
    batch_size: int,
    seed: int = 0,
    augment: Optional[str] = None,
    validation_size: int = 0,
    train_subset: Optional[int] = None,
    data_dir: Union[str, os.PathLike, None] = None,
    eval_batch_size: Optional[int] = None,
    pad_to: Optional[int] = None,
    label_noise: float = 0.0,
    label_noise_seed: int = 0,
) -> Datasets:
    """Load a named dataset (see :func:`load_arrays`) and build its :class:`Datasets`.

    Normalization comes from ``DATASET_INFO`` (Fashion-MNIST: mean 0.2860,
    std 0.3530; CIFAR-10: per-channel statistics; others: only /255). The other
    arguments are those of :func:`from_arrays`; they are checked before any
    data is loaded.

    >>> sets = build_datasets("fashion_mnist", batch_size=64, train_subset=640,
    ...                       validation_size=1000, augment="crop", pad_to=32)
    >>> sets.input_shape, sets.train_size, sets.validation_size, sets.test_size
    ((32, 32, 1), 640, 1000, 10000)
    """
    key = _canonical_name(name)
    # Fail fast on bad arguments, before the (possibly slow) load.
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(eval_batch_size, "eval_batch_size", allow_none=True)
    _check_seed(seed)
    _check_augment(augment, training=True)
    _check_split_args(validation_size, train_subset)
    _check_label_noise(label_noise, label_noise_seed)
    info = DATASET_INFO[key]
    _check_pad_to(pad_to, info.input_shape)
    train, test = load_arrays(key, data_dir)
    return from_arrays(
        train,
        test,
        batch_size=batch_size,
        num_classes=info.num_classes,
        seed=seed,
        augment=augment,
        validation_size=validation_size,
        train_subset=train_subset,
        eval_batch_size=eval_batch_size,
        pad_to=pad_to,
        mean=info.mean,
        std=info.std,
        label_noise=label_noise,
        label_noise_seed=label_noise_seed,
    )
