"""The streaming pipeline: datasets too large for memory (ImageNet, Tiny-ImageNet), decoded image by image.

A source (:mod:`tfsubspace.data.imagenet`, :mod:`tfsubspace.data.tiny_imagenet`)
hands over ``(key, label)`` examples in a fixed order and a ``load`` function
turning a key into encoded image bytes (the bytes themselves for
tensorflow_datasets, a file path for a folder). This module shuffles them
(keyed on the seed and the epoch number, like the array pipeline, so a resumed
run sees the batches of an uninterrupted one), decodes, augments, normalizes
with the ImageNet statistics, batches and prefetches, and assembles the same
:class:`tfsubspace.data.Datasets` record the array datasets give.

Augmentations: "resized_crop_flip" (Inception-style random-resized crop,
area (0.08, 1), aspect ratio (3/4, 4/3), to ``image_size``, then a random
horizontal flip: torchvision's ImageNet training transform), "flip_crop" /
"crop" (zero-pad 4 pixels, random ``image_size`` crop, flip: the CIFAR-style
augmentation used for Tiny-ImageNet). Images are normalized with the
source's statistics (ImageNet's by default). Evaluation resizes the shorter side to
``image_size / 0.875`` and centre-crops ``image_size`` (256 -> 224), or, for
sources whose images already have the final size, just resizes.

>>> import numpy as np
>>> image = tf.constant(np.full((40, 60, 3), 255, np.uint8))
>>> tuple(eval_image(image, 16, center_crop=True).shape)
(16, 16, 3)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import tensorflow as tf

from tfsubspace.data.pipeline import CROP_PADDING
from tfsubspace.data.record import Datasets

# torchvision's ImageNet statistics, of images scaled to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Evaluation: resize the shorter side to image_size / 0.875, centre-crop image_size (256 -> 224).
EVAL_CROP_FRACTION = 0.875
STREAM_AUGMENTATIONS = (None, "crop", "flip_crop", "resized_crop_flip")


@dataclasses.dataclass(frozen=True)
class StreamSource:
    """Examples of one streamed dataset, already split; built by a source module.

    ``train``, ``validation`` and ``test`` yield ``(key, int64 label)`` in a
    fixed order; ``load(key)`` gives the encoded image bytes. ``center_crop``:
    evaluation resizes and centre-crops (ImageNet) instead of only resizing.
    ``shuffle_buffer``: training examples are permuted in consecutive blocks
    of this many (the whole split when its keys are cheap paths, blocks of
    encoded images otherwise).
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    load: Callable[[tf.Tensor], tf.Tensor]
    num_classes: int
    train_size: int
    validation_size: int
    test_size: int
    center_crop: bool
    shuffle_buffer: int
    source: dict
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD


def decode(encoded):
    """Encoded JPEG/PNG bytes -> uint8 [H, W, 3] (grayscale images get three channels)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def random_resized_crop(image, size, seed):
    """A random crop of 8-100 % of the area and aspect ratio 3/4-4/3, resized to size x size (float, 0-255).

    >>> image = tf.zeros((50, 30, 3), tf.uint8)
    >>> tuple(random_resized_crop(image, 8, seed=[1, 2]).shape)
    (8, 8, 3)
    """
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True,
    )  # after 10 failed attempts the whole image (torchvision falls back to a centre crop)
    crop = tf.slice(image, begin, extent)
    return tf.image.resize(crop, [size, size], method="bilinear")


def eval_image(image, size, center_crop):
    """Evaluation view: shorter side to size / 0.875 then centre crop, or a plain resize (float, 0-255)."""
    if not center_crop:
        return tf.image.resize(image, [size, size], method="bilinear")
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = round(size / EVAL_CROP_FRACTION) / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    resized = tf.image.resize(image, new_shape, method="bilinear")
    top, left = (new_shape[0] - size) // 2, (new_shape[1] - size) // 2
    return tf.image.crop_to_bounding_box(resized, top, left, size, size)


def train_image(image, size, augment, center_crop, seed):
    """Training view of one decoded image under `augment` (float, 0-255), random ops keyed on `seed`."""
    crop_seed, flip_seed = tf.unstack(tf.random.split(seed, num=2))
    if augment == "resized_crop_flip":
        image = random_resized_crop(image, size, crop_seed)
    else:
        image = eval_image(image, size, center_crop)
        if augment in ("crop", "flip_crop"):
            padding = [[CROP_PADDING, CROP_PADDING], [CROP_PADDING, CROP_PADDING], [0, 0]]
            image = tf.image.stateless_random_crop(tf.pad(image, padding), [size, size, 3], seed=crop_seed)
    if augment in ("flip_crop", "resized_crop_flip"):
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def _normalize(image, source):
    return (tf.cast(image, tf.float32) / 255.0 - tf.constant(source.mean)) / tf.constant(source.std)


def _evaluation(examples, source, size, batch_size):
    def prepare(key, label):
        return _normalize(eval_image(decode(source.load(key)), size, source.center_crop), source), label

    return examples.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _training(source, size, augment, batch_size, seed, initial_epoch):
    def one_epoch(epoch_key):
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch_key, tf.int64)])
        order_seed = tf.random.experimental.stateless_fold_in(epoch_seed, 0)

        def prepare(index, example):
            key, label = example
            # Keyed on (seed, epoch, position in the split): reproducible, new every epoch.
            example_seed = tf.random.experimental.stateless_fold_in(epoch_seed, index + 1)
            image = train_image(decode(source.load(key)), size, augment, source.center_crop, example_seed)
            return _normalize(image, source), label

        def shuffle_block(block_index, block):
            # A stateless permutation of each block of shuffle_buffer keys: unlike
            # Dataset.shuffle (whose tensor seed fails once a global seed is
            # set), keyed on (seed, epoch, block) alone.
            block_seed = tf.random.experimental.stateless_fold_in(order_seed, block_index)
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block[0])[0]), seed=block_seed)
            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda t: tf.gather(t, order), block))

        # Shuffle the keys (cheap) before loading and decoding the images.
        examples = source.train.enumerate().batch(source.shuffle_buffer).enumerate().flat_map(shuffle_block)
        return examples.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)

    if initial_epoch is None:
        epoch_keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    else:
        epoch_keys = tf.data.Dataset.range(initial_epoch, 2**62)
    return epoch_keys.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)


def stream_datasets(source: StreamSource, *, batch_size, eval_batch_size, seed, augment, image_size):
    """The :class:`tfsubspace.data.Datasets` of a streamed source (arguments checked by the caller)."""
    from tfsubspace.data.validators import _check_seed, _is_int

    def training(initial_epoch=None, order_seed=None):
        if initial_epoch is not None and (not _is_int(initial_epoch) or initial_epoch < 0):
            raise ValueError(f"initial_epoch must be an integer >= 0, got {initial_epoch!r}")
        return _training(source, image_size, augment, batch_size,
                         seed if order_seed is None else _check_seed(order_seed, "order_seed"), initial_epoch)

    return Datasets(
        train=training(),
        train_epochs=training,
        test=_evaluation(source.test, source, image_size, eval_batch_size),
        validation=None if source.validation is None else _evaluation(source.validation, source, image_size,
                                                                       eval_batch_size),
        train_eval=_evaluation(source.train, source, image_size, eval_batch_size),
        num_classes=source.num_classes,
        input_shape=(image_size, image_size, 3),
        train_size=source.train_size,
        validation_size=source.validation_size,
        test_size=source.test_size,
        steps_per_epoch=math.ceil(source.train_size / batch_size),
        source=dict(source.source, train_examples=source.train_size, validation_examples=source.validation_size,
                    test_examples=source.test_size),
    )
