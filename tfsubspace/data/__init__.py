"""Offline-first image-classification data for training and evaluation.

One module per idea: `idx` (IDX parsing, pinned checksums), `sources` (which
local copy or tensorflow_datasets), `validators` (argument checks),
`pipeline` (the tf.data pipeline), `record` (the `Datasets` record and the
seeded split), `splits` (holdouts, subsets, label noise, `build_datasets`),
`streaming`, `imagenet`, `tiny_imagenet` (datasets streamed from files),
`corrupted` (corrupted test sets for dataset shift). Every name below is
importable from `tfsubspace.data`.

Two layers:

* Raw arrays. :func:`load_arrays` returns ``((x_train, y_train), (x_test, y_test))``
  with uint8 NHWC images and int64 labels. Fashion-MNIST is read from local IDX
  files (the Debian package ``dataset-fashion-mnist`` installs them in
  ``/usr/share/datasets/fashion-mnist``) and checked against pinned SHA-256
  hashes, so no network is needed. Without a local copy, and always for MNIST,
  CIFAR-10 and CIFAR-100, the arrays come from ``tensorflow_datasets``, which
  needs network access the first time it sees a dataset.
* Streamed images. ImageNet (tensorflow_datasets' ``imagenet2012``, from a
  manual download) and Tiny-ImageNet (its official folder) do not fit in
  memory: :mod:`tfsubspace.data.streaming` decodes, augments (random-resized
  crop + flip for ImageNet, centre crop at evaluation) and batches them image
  by image into the same :class:`Datasets` record (``build_datasets``).
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

from tfsubspace.data.corrupted import (
    CORRUPTIONS,
    cifar10_corrupted,
    corrupted_sets,
    fashion_mnist_c,
    imagenet2012_corrupted,
)
from tfsubspace.data.idx import FASHION_MNIST_SHA256, parse_idx, read_idx
from tfsubspace.data.pipeline import CROP_PADDING, make_pipeline
from tfsubspace.data.sources import (
    DATA_DIR_ENV_VAR,
    DATASET_INFO,
    DEFAULT_FASHION_MNIST_DIR,
    STREAMING_DATASETS,
    DatasetInfo,
    describe,
    load_arrays,
    load_with_source,
)
from tfsubspace.data.record import Datasets
from tfsubspace.data.splits import build_datasets, from_arrays
from tfsubspace.data.streaming import IMAGENET_MEAN, IMAGENET_STD, STREAM_AUGMENTATIONS
from tfsubspace.data.validators import AUGMENTATIONS

__all__ = [
    "AUGMENTATIONS",
    "CORRUPTIONS",
    "CROP_PADDING",
    "DATASET_INFO",
    "DATA_DIR_ENV_VAR",
    "DEFAULT_FASHION_MNIST_DIR",
    "DatasetInfo",
    "Datasets",
    "FASHION_MNIST_SHA256",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "STREAMING_DATASETS",
    "STREAM_AUGMENTATIONS",
    "build_datasets",
    "cifar10_corrupted",
    "corrupted_sets",
    "describe",
    "fashion_mnist_c",
    "from_arrays",
    "imagenet2012_corrupted",
    "load_arrays",
    "load_with_source",
    "make_pipeline",
    "parse_idx",
    "read_idx",
]
