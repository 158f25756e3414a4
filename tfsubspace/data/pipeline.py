"""The one `tf.data` pipeline: batching, normalisation, seeded shuffling and augmentation.

>>> import numpy as np
>>> dataset = make_pipeline(np.zeros((5, 8, 8), np.uint8), np.arange(5), batch_size=2, training=False)
>>> [int(x.shape[0]) for x, _ in dataset]
[2, 2, 1]
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tfsubspace.data.validators import (
    ImageShape,
    Stats,
    _check_arrays,
    _check_augment,
    _check_normalization,
    _check_pad_to,
    _check_positive_int,
    _check_seed,
    _check_training,
)

CROP_PADDING = 4  # pixels of zero padding around an image before a random crop


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

