"""ImageNet (ILSVRC 2012) from tensorflow_datasets' `imagenet2012`, prepared once from a manual download.

ImageNet cannot be downloaded automatically: register at
https://image-net.org/download-images, put ``ILSVRC2012_img_train.tar`` and
``ILSVRC2012_img_val.tar`` in a folder (``manual_dir``), and the first run
prepares the tensorflow_datasets copy in ``data_dir`` (default
``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``; about 150 GB, hours). Later
runs read that copy and need neither the tar files nor the network. The
"validation" split (50,000 images) is the test set, as in the papers;
``validation_size`` holds out the first examples of the (already shuffled by
tensorflow_datasets) train split.

>>> IMAGENET_NAME, IMAGENET_NUM_CLASSES
('imagenet2012', 1000)
"""

from __future__ import annotations

import os

from tfsubspace.data.streaming import StreamSource

IMAGENET_NAME = "imagenet2012"
IMAGENET_NUM_CLASSES = 1000
# Encoded training images (~110 kB each) shuffled at once: about 1 GB of memory.
# tensorflow_datasets shuffles the examples when it writes the files, so a
# window suffices (BUILD_NOTES.md).
IMAGENET_SHUFFLE_BUFFER = 10_000

_DOWNLOAD = ("download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org/download-images "
             "(registration needed) into one folder and set config.dataset.manual_dir to it; the first run then "
             "prepares tensorflow_datasets' copy in config.dataset.data_dir")


def _split(builder, split):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    examples = builder.as_dataset(split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    examples = examples.map(lambda example: (example["image"], tf.cast(example["label"], tf.int64)))
    try:
        size = builder.info.splits[split].num_examples
    except KeyError:  # tfds.testing.mock_data records no split sizes
        size = int(examples.cardinality())
    return examples, size


def imagenet_source(*, data_dir=None, manual_dir=None, validation_size=0, train_subset=None):
    """The :class:`StreamSource` of ImageNet; FileNotFoundError says what to download where when it is missing.

    >>> imagenet_source(manual_dir="/no/such/folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: manual_dir '/no/such/folder' does not exist: download ILSVRC2012_img_train.tar ...
    """
    if manual_dir is not None and not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"manual_dir {os.fspath(manual_dir)!r} does not exist: {_DOWNLOAD}.")
    import tensorflow_datasets as tfds

    builder = tfds.builder(IMAGENET_NAME, data_dir=None if data_dir is None else os.fspath(data_dir))
    try:
        train, train_size = _split(builder, "train")
        test, test_size = _split(builder, "validation")
    except Exception as err:  # not prepared: tfds raises AssertionError (or others) from as_dataset
        if manual_dir is None:
            raise FileNotFoundError(
                f"ImageNet ({IMAGENET_NAME}) is not prepared in {builder.data_dir}: {_DOWNLOAD}."
            ) from err
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
        train, train_size = _split(builder, "train")
        test, test_size = _split(builder, "validation")
    validation = None
    if validation_size:
        if validation_size >= train_size:
            raise ValueError(f"validation_size must be < the {train_size} training examples, got {validation_size}")
        validation, train = train.take(validation_size), train.skip(validation_size)
    train_size -= validation_size
    if train_subset is not None:
        if train_subset > train_size:
            raise ValueError(f"train_subset must be at most {train_size}, got {train_subset}")
        train, train_size = train.take(train_subset), train_subset
    return StreamSource(
        train=train, test=test, validation=validation, load=lambda encoded: encoded,
        num_classes=IMAGENET_NUM_CLASSES, train_size=train_size, validation_size=validation_size,
        test_size=test_size, center_crop=True, shuffle_buffer=min(IMAGENET_SHUFFLE_BUFFER, train_size),
        # No SHA-256: hashing ~150 GB per run is too slow; the tfds version names the copy.
        source={"name": IMAGENET_NAME, "origin": f"tensorflow_datasets {builder.info.version}",
                "path": str(builder.data_dir), "sha256": {}},
    )
