"""Train/validation/test splits, training subsets and label noise, assembled into `Datasets`.

>>> import numpy as np
>>> x, y = np.zeros((12, 4, 4, 1), np.uint8), np.arange(12) % 3
>>> from_arrays((x, y), (x[:4], y[:4]), batch_size=4, validation_size=2).train_size
10
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional, Union

import numpy as np
import tensorflow as tf

from tfsubspace.data import sources
from tfsubspace.data.record import Datasets, split_indices
from tfsubspace.data.pipeline import _build_pipeline, _PipelineConfig
from tfsubspace.data.validators import (
    ArrayPair,
    ImageShape,
    Stats,
    _check_arrays,
    _check_augment,
    _check_label_noise,
    _check_normalization,
    _check_pad_to,
    _check_positive_int,
    _check_seed,
    _check_split_args,
    _is_int,
)

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
        train_idx, validation_idx = split_indices(
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
            seed=seed if order_seed is None else _check_seed(order_seed, "order_seed"), augment=augment,
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
    image_size: Optional[int] = None,
    manual_dir: Union[str, os.PathLike, None] = None,
) -> Datasets:
    """Load a named dataset (see :func:`tfsubspace.data.load_arrays`) and build its :class:`Datasets`.

    "imagenet2012" and "tiny_imagenet" are streamed instead
    (:mod:`tfsubspace.data.streaming`): ImageNet from tensorflow_datasets
    (``data_dir``; prepared once from the tar files in ``manual_dir``),
    Tiny-ImageNet from the folder ``data_dir``. Their images come out at
    ``image_size`` (default 224 and 64), ``augment`` may also be
    "resized_crop_flip", and ``pad_to`` does not apply. ``image_size`` is
    only for them.

    Normalization comes from ``DATASET_INFO`` (Fashion-MNIST: mean 0.2860,
    std 0.3530; CIFAR-10: per-channel statistics; others: only /255). The other
    arguments are those of :func:`from_arrays`; they are checked before any
    data is loaded.

    >>> sets = build_datasets("fashion_mnist", batch_size=64, train_subset=640,
    ...                       validation_size=1000, augment="crop", pad_to=32)
    >>> sets.input_shape, sets.train_size, sets.validation_size, sets.test_size
    ((32, 32, 1), 640, 1000, 10000)
    """
    key = sources._canonical_name(name, streaming=True)
    # Fail fast on bad arguments, before the (possibly slow) load.
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(eval_batch_size, "eval_batch_size", allow_none=True)
    _check_seed(seed)
    _check_split_args(validation_size, train_subset)
    _check_label_noise(label_noise, label_noise_seed)
    if key in sources.STREAMING_DATASETS:
        return _build_streaming(key, batch_size=batch_size, eval_batch_size=eval_batch_size or batch_size, seed=seed,
                                augment=augment, validation_size=validation_size, train_subset=train_subset,
                                data_dir=data_dir, pad_to=pad_to, label_noise=label_noise,
                                label_noise_seed=label_noise_seed, image_size=image_size, manual_dir=manual_dir)
    _check_augment(augment, training=True)
    for value, argument in ((image_size, "image_size"), (manual_dir, "manual_dir")):
        if value is not None:
            raise ValueError(f"{argument} is only for the streamed datasets {tuple(sources.STREAMING_DATASETS)}, "
                             f"got {argument}={value!r} for {key!r}")
    info = sources.DATASET_INFO[key]
    _check_pad_to(pad_to, info.input_shape)
    (train, test), source = sources.load_with_source(key, data_dir)
    datasets = from_arrays(
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
    source = dict(source, train_examples=datasets.train_size, validation_examples=datasets.validation_size,
                  test_examples=datasets.test_size)
    return dataclasses.replace(datasets, source=source)


def _build_streaming(key, *, batch_size, eval_batch_size, seed, augment, validation_size, train_subset, data_dir,
                     pad_to, label_noise, label_noise_seed, image_size, manual_dir):
    """build_datasets for the streamed datasets: checks, then the source, then the pipeline."""
    from tfsubspace import checks
    from tfsubspace.data import streaming

    checks.one_of(augment, "`augment`", streaming.STREAM_AUGMENTATIONS)
    if pad_to is not None:
        raise ValueError(f"pad_to does not apply to {key!r} (its images are resized to image_size), got {pad_to!r}")
    image_size = checks.integer(image_size, "`image_size`", minimum=8, allow_none=True)
    image_size = image_size or sources.STREAMING_DATASETS[key][1]
    if key == "imagenet2012":
        if label_noise:
            raise ValueError(f"label_noise is not supported for {key!r} (streamed labels), got {label_noise!r}")
        from tfsubspace.data.imagenet import imagenet_source

        source = imagenet_source(data_dir=data_dir, manual_dir=manual_dir, validation_size=validation_size,
                                 train_subset=train_subset)
    else:
        if manual_dir is not None:
            raise ValueError(f"manual_dir is only for 'imagenet2012', got manual_dir={manual_dir!r} for {key!r}")
        from tfsubspace.data.tiny_imagenet import tiny_imagenet_source

        source = tiny_imagenet_source(data_dir=data_dir, seed=seed, validation_size=validation_size,
                                      train_subset=train_subset, label_noise=label_noise,
                                      label_noise_seed=label_noise_seed)
    return streaming.stream_datasets(source, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed,
                                     augment=augment, image_size=image_size)
