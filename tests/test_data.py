"""Tests for tfsubspace.data: IDX loading, checksums, fallbacks and tf.data pipelines.

The real Fashion-MNIST files come from the Debian package dataset-fashion-mnist,
installed here and on CI. Nothing touches the network: every tensorflow_datasets
call is replaced by a fake.
"""

import doctest
import gzip
import struct

import numpy as np
import pytest

from tfsubspace import data

FASHION_FILES = tuple(data.FASHION_MNIST_SHA256)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX, independently of the parser under test."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_fake_fashion_mnist(directory, *, gz=True, num_train=6, num_test=4, skip=()):
    """Valid IDX files under the Fashion-MNIST names, with non-official contents."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, num_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, num_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        if stem in skip:
            continue
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array)))
        else:
            (directory / stem).write_bytes(idx_bytes(array))
    return arrays


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No local Fashion-MNIST anywhere, and a tensorflow_datasets that fails like offline."""
    calls = []

    def failing_tfds(name, data_dir=None):
        calls.append((name, data_dir))
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'")

    monkeypatch.delenv(data.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setattr(data.sources, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "no-default"))
    monkeypatch.setattr(data.sources, "_load_from_tfds", failing_tfds)
    data.sources._load_tfds_cached.cache_clear()
    yield calls
    data.sources._load_tfds_cached.cache_clear()


def batches(dataset):
    """All batches of one pass as numpy (images, labels) lists."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return list(images), list(labels)


def one_pass_labels(dataset):
    return np.concatenate([y.numpy() for _, y in dataset])


# ---------------------------------------------------------------- real data


def test_real_fashion_mnist_loads_from_debian_package(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV_VAR, raising=False)
    (x_train, y_train), (x_test, y_test) = data.load_arrays("fashion_mnist")
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for labels in (y_train, y_test):
        assert labels.min() == 0 and labels.max() == 9
        assert np.all(np.bincount(labels) == len(labels) // 10)  # balanced classes
    # Normalization constants match the data they normalize.
    assert abs(x_train.mean() / 255 - 0.2860) < 1e-3
    assert abs(x_train.std() / 255 - 0.3530) < 1e-3
    # Cached in process: a second load returns the very same arrays.
    assert data.load_arrays("fashion-mnist")[0][0] is x_train
    assert not x_train.flags.writeable and not y_train.flags.writeable


def test_unzipped_copy_loads_identically(tmp_path):
    for stem in FASHION_FILES:
        with gzip.open(f"{data.DEFAULT_FASHION_MNIST_DIR}/{stem}.gz") as packed:
            (tmp_path / stem).write_bytes(packed.read())
    (x_train, y_train), (x_test, y_test) = data.load_arrays("fashion_mnist", data_dir=tmp_path)
    (rx_train, ry_train), (rx_test, ry_test) = data.load_arrays("fashion_mnist")
    assert x_train is not rx_train  # a separate cache entry for a separate directory
    np.testing.assert_array_equal(x_train, rx_train)
    np.testing.assert_array_equal(y_test, ry_test)


def test_build_datasets_on_real_fashion_mnist():
    sets = data.build_datasets(
        "fashion_mnist", batch_size=100, seed=3, train_subset=1000, validation_size=500,
        eval_batch_size=250, augment="flip_crop",
    )
    assert (sets.num_classes, sets.input_shape) == (10, (28, 28, 1))
    assert (sets.train_size, sets.validation_size, sets.test_size) == (1000, 500, 10000)
    assert sets.steps_per_epoch == 10
    images, labels = next(iter(sets.train))
    assert images.shape == (100, 28, 28, 1) and images.dtype.name == "float32"
    assert labels.shape == (100,) and labels.dtype.name == "int64"
    # Standardized: min is the normalized black pixel, max the normalized white one.
    assert np.isclose(images.numpy().min(), -0.2860 / 0.3530, atol=1e-5)
    assert images.numpy().max() <= (1 - 0.2860) / 0.3530 + 1e-5
    assert [x.shape[0] for x, _ in sets.validation] == [250, 250]
    assert sum(int(x.shape[0]) for x, _ in sets.train_eval) == 1000
    eval_images = np.concatenate([x.numpy() for x, _ in sets.train_eval])
    assert abs(eval_images.mean()) < 0.1 and abs(eval_images.std() - 1) < 0.1


def test_doc_examples_of_every_data_module_run():
    attempted = 0
    for module in (data, data.idx, data.sources, data.validators, data.pipeline, data.splits):
        results = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert results.failed == 0, module.__name__
        attempted += results.attempted
    assert attempted > 10


# ---------------------------------------------------------------- IDX parser


@pytest.mark.parametrize("shape", [(5,), (3, 4, 5), (2, 1, 3, 2)])
def test_idx_round_trip(tmp_path, shape):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(array)), array)
    (tmp_path / "plain").write_bytes(idx_bytes(array))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "plain"), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "packed.gz"), array)


def test_truncated_idx_file_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.ones((3, 4, 4)))[:-5])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        data.read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(100)))[:-12])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz.*gzip"):
        data.read_idx(path)


@pytest.mark.parametrize(
    "payload, problem",
    [
        (b"\x00\x00", "shorter than the 4-byte magic"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "magic number"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x07\x07\x07\x07", "data type code 0x0d"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02\x07\x07\x07", "trailing bytes"),
    ],
)
def test_malformed_idx_is_rejected(payload, problem):
    with pytest.raises(ValueError, match=f"some-file.*{problem}"):
        data.parse_idx(payload, "some-file")


# ---------------------------------------------------------------- loading and fallbacks


@pytest.mark.parametrize("gz", [True, False])
def test_checksum_mismatch_is_reported(tmp_path, offline, gz):
    write_fake_fashion_mnist(tmp_path, gz=gz)
    with pytest.raises(ValueError) as info:
        data.load_arrays("fashion_mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "-idx" in message
    first_file = message.split(":")[0].rsplit("/", 1)[-1].removesuffix(".gz")
    assert data.FASHION_MNIST_SHA256[first_file] in message  # the expected hash
    assert "actual" in message
    assert offline == []  # a bad local copy is an error, not a reason to download


def test_env_var_directory_is_searched(tmp_path, monkeypatch, offline):
    write_fake_fashion_mnist(tmp_path / "env")
    monkeypatch.setenv(data.DATA_DIR_ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(ValueError, match="SHA-256"):  # found, hence verified
        data.load_arrays("fashion_mnist")


def test_partial_copy_names_the_missing_files(tmp_path, offline):
    write_fake_fashion_mnist(tmp_path, skip={"t10k-labels-idx1-ubyte"})
    with pytest.raises(FileNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        data.load_arrays("fashion_mnist", data_dir=tmp_path)


def test_missing_files_and_failed_download_say_what_to_do(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as info:
        data.load_arrays("fashion_mnist", data_dir=tmp_path)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert data.DATA_DIR_ENV_VAR in message and "network" in message
    assert str(tmp_path) in message and "ConnectionError" in message
    assert offline == [("fashion_mnist", None)]


def test_other_datasets_failed_download_says_what_to_do(offline):
    with pytest.raises(FileNotFoundError, match="'cifar10'.*network access"):
        data.load_arrays("cifar10")
    assert offline == [("cifar10", None)]


def test_tfds_fallback_arrays_are_normalized(tmp_path, monkeypatch, offline):
    rng = np.random.default_rng(0)

    def fake_tfds(name, data_dir=None):
        images = rng.integers(0, 256, (7, 28, 28, 1), dtype=np.uint8)
        return (images, np.arange(7, dtype=np.int32)), (images[:3, ..., 0], np.arange(3))

    monkeypatch.setattr(data.sources, "_load_from_tfds", fake_tfds)
    for name in ("fashion_mnist", "mnist"):
        (x_train, y_train), (x_test, y_test) = data.load_arrays(name, data_dir=tmp_path)
        assert x_train.shape == (7, 28, 28, 1) and x_test.shape == (3, 28, 28, 1)
        assert y_train.dtype == np.int64 and y_test.dtype == np.int64


def test_unknown_dataset_name_lists_allowed_names():
    with pytest.raises(ValueError, match="'imagenet'.*'fashion_mnist', 'mnist', 'cifar10', 'cifar100'"):
        data.load_arrays("imagenet")
    with pytest.raises(ValueError, match="allowed names"):
        data.build_datasets("svhn", batch_size=8)


def test_dataset_info():
    assert data.DATASET_INFO["fashion_mnist"].input_shape == (28, 28, 1)
    assert data.DATASET_INFO["cifar100"].num_classes == 100
    assert data.DATASET_INFO["cifar10"].std == (0.2470, 0.2435, 0.2616)


# ---------------------------------------------------------------- pipelines


def test_values_and_batch_shapes():
    images = np.random.default_rng(0).integers(0, 256, (10, 6, 6, 3), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    dataset = data.make_pipeline(images, np.arange(10), batch_size=4, training=False)
    xs, ys = batches(dataset)
    assert [x.shape for x in xs] == [(4, 6, 6, 3), (4, 6, 6, 3), (2, 6, 6, 3)]
    assert xs[0].dtype == np.float32 and ys[0].dtype == np.int64
    assert xs[0].min() == 0.0 and xs[0].max() == 1.0
    np.testing.assert_allclose(np.concatenate(xs), images / 255, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate(ys), np.arange(10))  # no shuffling

    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    dataset = data.make_pipeline(images, np.arange(10), batch_size=10, training=False, mean=mean, std=std)
    (x,), _ = batches(dataset)
    np.testing.assert_allclose(x, (images / 255 - np.array(mean)) / np.array(std), rtol=1e-5, atol=1e-5)

    dataset = data.make_pipeline(images, np.arange(10), batch_size=4, training=True, drop_remainder=True)
    assert [x.shape[0] for x, _ in dataset] == [4, 4]


def test_pad_to_32_centers_the_image():
    images = np.full((3, 28, 28), 255, np.uint8)
    (x,), _ = batches(data.make_pipeline(images, np.zeros(3, int), batch_size=3, training=False, pad_to=32))
    assert x.shape == (3, 32, 32, 1)
    assert np.all(x[:, 2:30, 2:30] == 1.0)
    assert x.sum() == 3 * 28 * 28  # the 2-pixel border on every side is zero


def test_shuffling_is_seeded_and_changes_every_epoch():
    images = np.zeros((50, 4, 4, 1), np.uint8)

    def first_two_epochs(seed, augment=None):
        dataset = data.make_pipeline(images, np.arange(50), batch_size=8, training=True,
                                     seed=seed, augment=augment)
        return one_pass_labels(dataset), one_pass_labels(dataset)

    epoch1, epoch2 = first_two_epochs(seed=7)
    assert sorted(epoch1) == list(range(50)) and sorted(epoch2) == list(range(50))
    assert not np.array_equal(epoch1, np.arange(50))
    assert not np.array_equal(epoch1, epoch2)
    again1, again2 = first_two_epochs(seed=7)
    np.testing.assert_array_equal(epoch1, again1)
    np.testing.assert_array_equal(epoch2, again2)
    assert not np.array_equal(epoch1, first_two_epochs(seed=8)[0])
    # Augmentation must not change the order a seed gives.
    np.testing.assert_array_equal(epoch1, first_two_epochs(seed=7, augment="crop")[0])


def test_crops_are_per_example_and_reproducible():
    pattern = np.random.default_rng(0).integers(1, 256, (12, 12, 1), dtype=np.uint8)
    images = np.stack([pattern] * 16)  # identical images

    def epochs(seed, augment):
        dataset = data.make_pipeline(images, np.zeros(16, int), batch_size=16, training=True,
                                     seed=seed, augment=augment)
        return [batches(dataset)[0][0] for _ in range(2)]

    distinct = []
    for seed in range(3):
        first, second = epochs(seed, "crop")
        assert first.shape == (16, 12, 12, 1)
        distinct.append(len({x.tobytes() for x in first}))
        assert not np.array_equal(first, second)  # new crops every epoch
        again_first, again_second = epochs(seed, "crop")
        np.testing.assert_array_equal(first, again_first)
        np.testing.assert_array_equal(second, again_second)
    assert max(distinct) > 1 and sum(distinct) > 3 * 8  # not one crop for the whole batch

    # Every crop is a shifted window of the zero-padded image, at most 4 pixels off.
    padded = np.pad(pattern[..., 0], 4)
    windows = {padded[i:i + 12, j:j + 12].tobytes() for i in range(9) for j in range(9)}

    def as_pixels(image):
        return np.round(image[..., 0] * 255).astype(np.uint8)

    first, _ = epochs(0, "crop")
    assert all(as_pixels(x).tobytes() in windows for x in first)

    # flip_crop also flips some examples: some outputs are mirrored windows.
    first, _ = epochs(0, "flip_crop")
    mirrored = [as_pixels(x)[:, ::-1].tobytes() in windows and as_pixels(x).tobytes() not in windows
                for x in first]
    assert any(mirrored) and not all(mirrored)


def test_from_arrays_holdout_and_subset_are_disjoint_and_seeded():
    images = np.zeros((100, 4, 4, 1), np.uint8)
    ids = np.arange(100)  # labels double as example ids
    test = (images[:10], ids[:10])

    def split(seed, train_subset=None):
        sets = data.from_arrays((images, ids), test, batch_size=16, seed=seed, validation_size=20,
                                train_subset=train_subset, eval_batch_size=7)
        return sets, set(one_pass_labels(sets.train_eval)), set(one_pass_labels(sets.validation))

    sets, train_ids, validation_ids = split(seed=1)
    assert (sets.train_size, sets.validation_size, sets.steps_per_epoch) == (80, 20, 5)
    assert len(validation_ids) == 20 and not train_ids & validation_ids
    assert train_ids | validation_ids == set(range(100))
    assert set(one_pass_labels(sets.train)) == train_ids
    assert np.array_equal(one_pass_labels(sets.train_eval), sorted(train_ids))  # unshuffled
    assert [x.shape[0] for x, _ in sets.test] == [7, 3]
    assert sets.num_classes == 100

    subset_sets, subset_ids, subset_validation = split(seed=1, train_subset=30)
    assert subset_sets.train_size == 30 and subset_ids < train_ids
    assert subset_validation == validation_ids  # the holdout does not depend on the subset
    assert split(seed=1)[2] == validation_ids and split(seed=2)[2] != validation_ids


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-3), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(augment="rotate"), "augment"),
        (dict(augment="crop", training=False), "augment"),
        (dict(training="yes"), "training"),
        (dict(seed=-1), "seed"),
        (dict(pad_to=20), "pad_to"),
        (dict(shuffle_buffer=0), "shuffle_buffer"),
        (dict(mean=0.5), "mean and std"),
        (dict(mean=(0.1, 0.2), std=0.3), "mean"),
        (dict(mean=0.1, std=0.0), "std"),
        (dict(labels=np.arange(9)), "same length"),
        (dict(images=np.zeros((10, 28, 28, 1), np.float32)), "uint8"),
        (dict(labels=np.zeros(10)), "integer"),
    ],
)
def test_bad_pipeline_arguments(kwargs, argument):
    arguments = dict(images=np.zeros((10, 28, 28, 1), np.uint8), labels=np.zeros(10, int),
                     batch_size=4, training=True)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        data.make_pipeline(**arguments)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(eval_batch_size=0), "eval_batch_size"),
        (dict(validation_size=-1), "validation_size"),
        (dict(validation_size=10), "validation_size"),
        (dict(train_subset=0), "train_subset"),
        (dict(validation_size=4, train_subset=7), "train_subset"),
        (dict(num_classes=3), "num_classes"),
        (dict(test=(np.zeros((2, 5, 5, 1), np.uint8), np.zeros(2, int))), "test images"),
    ],
)
def test_bad_from_arrays_arguments(kwargs, argument):
    arguments = dict(train=(np.zeros((10, 4, 4, 1), np.uint8), np.arange(10) % 5),
                     test=(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(2, int)), batch_size=4)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        data.from_arrays(**arguments)


def test_build_datasets_checks_arguments_before_loading(monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("data loaded before arguments were checked")

    monkeypatch.setattr(data.sources, "load_with_source", must_not_load)
    bad_arguments = [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=8, augment="mixup"), "augment"),
        (dict(batch_size=8, pad_to=16), "pad_to"),
    ]
    for kwargs, argument in bad_arguments:
        with pytest.raises(ValueError, match=argument):
            data.build_datasets("fashion_mnist", **kwargs)


def test_train_epochs_resumes_the_exact_batches_of_an_uninterrupted_stream():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (30, 8, 8, 1), dtype=np.uint8)
    y = np.arange(30) % 3
    sets = data.from_arrays((x, y), (x[:5], y[:5]), batch_size=8, seed=5, augment="crop")
    steps = sets.steps_per_epoch
    assert steps == 4

    def take(dataset, count):
        return [(np.asarray(a), np.asarray(b)) for a, b in dataset.take(count)]

    uninterrupted = take(sets.train_epochs(0), 3 * steps)
    resumed = take(sets.train_epochs(2), steps)  # a fresh process resuming at epoch 2
    for (xa, ya), (xb, yb) in zip(uninterrupted[2 * steps:], resumed):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # Each epoch is one full pass in its own order with its own crops; batches never straddle epochs.
    assert [len(b) for _, b in uninterrupted[:steps]] == [8, 8, 8, 6]
    first, second = (np.concatenate([b[0] for b in uninterrupted[e * steps:(e + 1) * steps]]) for e in (0, 1))
    assert not np.array_equal(first, second)
    # The same examples every epoch: the multiset of labels per epoch is the whole training set.
    for epoch in range(3):
        labels = np.concatenate([b for _, b in uninterrupted[epoch * steps:(epoch + 1) * steps]])
        assert sorted(labels.tolist()) == sorted(y.tolist())
    with pytest.raises(ValueError, match="initial_epoch must be an integer >= 0"):
        sets.train_epochs(-1)


def test_order_seed_changes_only_the_order_not_the_examples_or_labels():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (40, 6, 6, 1), dtype=np.uint8)
    y = rng.integers(0, 4, 40)
    sets = data.from_arrays((x, y), (x[:5], y[:5]), batch_size=8, seed=1, train_subset=30, label_noise=0.5,
                            num_classes=4)

    def epoch_labels(order_seed):
        return np.concatenate([np.asarray(b) for _, b in sets.train_epochs(0, order_seed=order_seed).take(4)])

    default, same, other = epoch_labels(None), epoch_labels(1), epoch_labels(2)
    np.testing.assert_array_equal(default, same)  # order_seed=seed is the default order
    assert not np.array_equal(default, other)
    assert sorted(default.tolist()) == sorted(other.tolist())  # same (noisy) labels, other order
