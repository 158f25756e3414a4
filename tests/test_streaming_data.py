"""Streamed datasets (ImageNet on tfds.testing.mock_data, a generated Tiny-ImageNet folder) and CIFAR on mock data."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import conftest
from tfsubspace import config as config_lib
from tfsubspace import data
from tfsubspace.data import sources, streaming, tiny_imagenet


@pytest.fixture
def tiny(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    return root, conftest.make_tiny_imagenet(root)


def labels_of(dataset):
    return np.concatenate([y.numpy() for _, y in dataset])


def images_of(dataset):
    return np.concatenate([x.numpy() for x, _ in dataset])


def test_tiny_imagenet_folder_sizes_labels_and_normalization(tiny):
    root, wnids = tiny
    sets = data.build_datasets("tiny_imagenet", batch_size=4, data_dir=root, augment="flip_crop", image_size=32,
                               validation_size=3, eval_batch_size=5)
    assert (sets.train_size, sets.validation_size, sets.test_size) == (9, 3, 6)
    assert (sets.num_classes, sets.input_shape, sets.steps_per_epoch) == (3, (32, 32, 3), 3)
    # Labels number the sorted wnids; val labels come from val_annotations.txt, in file order.
    assert labels_of(sets.test).tolist() == [(j * 2) % 3 for j in range(6)]
    assert sorted(labels_of(sets.train).tolist() + labels_of(sets.validation).tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    test_images = images_of(sets.test)
    assert test_images.shape == (6, 32, 32, 3) and test_images.dtype == np.float32
    # Grayscale val_0 decodes to three equal channels before the per-channel normalization.
    mean, std = np.array(tiny_imagenet.TINY_IMAGENET_MEAN), np.array(tiny_imagenet.TINY_IMAGENET_STD)
    raw = test_images[0] * std + mean
    np.testing.assert_allclose(raw[..., 0], raw[..., 2], atol=1e-5)
    assert [x.shape[0] for x, _ in sets.train] == [4, 4, 1]
    # The batch-norm data is not in folder (class) order, so a few batches of it hold every class.
    train_eval_labels = labels_of(sets.train_eval).tolist()
    assert train_eval_labels != sorted(train_eval_labels)
    assert sets.source["origin"] == "folder" and sets.source["train_examples"] == 9


def test_streamed_training_order_is_keyed_on_seed_and_epoch(tiny):
    root, _ = tiny
    sets = data.build_datasets("tiny_imagenet", batch_size=12, data_dir=root, augment="flip_crop", image_size=16)
    first = next(iter(sets.train_epochs(3)))
    again = next(iter(sets.train_epochs(3)))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())  # resume at epoch 3: the same batch
    epochs = sets.train_epochs(0).take(2)
    (x0, y0), (x1, y1) = [(x.numpy(), y.numpy()) for x, y in epochs]
    assert sorted(y0.tolist()) == sorted(y1.tolist()) and not np.array_equal(x0, x1)
    other = next(iter(data.build_datasets("tiny_imagenet", batch_size=12, data_dir=root, augment="flip_crop",
                                          image_size=16, seed=1).train_epochs(3)))
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def test_tiny_imagenet_missing_or_incomplete_folder_says_what_to_download(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="needs config.dataset.data_dir: download .*tiny-imagenet-200.zip"):
        data.build_datasets("tiny_imagenet", batch_size=4)
    with pytest.raises(FileNotFoundError, match="no wnids.txt at .*tiny-imagenet-200.zip"):
        data.build_datasets("tiny_imagenet", batch_size=4, data_dir=tmp_path / "empty")
    root, _ = tiny
    (root / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match="no val/val_annotations.txt"):
        data.build_datasets("tiny_imagenet", batch_size=4, data_dir=root)


def test_imagenet_on_mock_data_crops_batches_and_holds_out():
    with tfds.testing.mock_data(num_examples=5):
        sets = data.build_datasets("imagenet2012", batch_size=2, augment="resized_crop_flip", image_size=32,
                                   validation_size=1, train_subset=3)
        assert (sets.train_size, sets.validation_size, sets.test_size) == (3, 1, 5)
        assert (sets.num_classes, sets.input_shape, sets.steps_per_epoch) == (1000, (32, 32, 3), 2)
        assert [tuple(x.shape) for x, _ in sets.train] == [(2, 32, 32, 3), (1, 32, 32, 3)]
        test = images_of(sets.test)
        np.testing.assert_array_equal(test, images_of(sets.test))  # evaluation is deterministic
        assert test.shape == (5, 32, 32, 3) and np.all(np.isfinite(test))
        assert len(labels_of(sets.train_eval)) == 3
        assert re.match(r"imagenet2012 from tensorflow_datasets \d+\.\d+\.\d+ at .*, 3 train / 1 validation / 5 test",
                        data.describe(sets.source))


def test_eval_view_is_the_centre_crop_of_the_resized_image():
    # Three vertical bands: the 0.875 centre crop of a 3:1 image lies in the middle band.
    band = np.zeros((40, 120, 3), np.uint8)
    band[:, :40, 0] = band[:, 40:80, 1] = band[:, 80:, 2] = 255
    view = streaming.eval_image(tf.constant(band), 16, center_crop=True).numpy()
    assert view.shape == (16, 16, 3)
    np.testing.assert_allclose(view[..., 1], 255, atol=1e-3)
    np.testing.assert_allclose(view[..., [0, 2]], 0, atol=1e-3)


def test_random_resized_crop_is_keyed_on_its_seed():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    crops = [streaming.random_resized_crop(image, 24, seed=[0, s]).numpy() for s in (1, 1, 2)]
    np.testing.assert_array_equal(crops[0], crops[1])
    assert crops[0].shape == (24, 24, 3) and not np.array_equal(crops[0], crops[2])


def test_imagenet_not_prepared_or_bad_manual_dir_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared in .*ILSVRC2012_img_train.tar.*manual_dir"):
        data.build_datasets("imagenet2012", batch_size=4, data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="manual_dir '.*nowhere' does not exist: download ILSVRC2012"):
        data.build_datasets("imagenet2012", batch_size=4, data_dir=tmp_path, manual_dir=tmp_path / "nowhere")


@pytest.fixture
def clear_tfds_cache():
    sources._load_tfds_cached.cache_clear()  # mock arrays must not outlive the test
    yield
    sources._load_tfds_cached.cache_clear()


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_on_mock_data_is_augmented_and_normalized_with_its_statistics(clear_tfds_cache, name, classes):
    with tfds.testing.mock_data(num_examples=6):
        (_, _), (x_test, _) = data.load_arrays(name)
        sets = data.build_datasets(name, batch_size=4, augment="flip_crop")
    info = data.DATASET_INFO[name]
    assert (sets.num_classes, sets.train_size, sets.input_shape) == (classes, 6, (32, 32, 3))
    expected = (x_test / 255.0 - np.array(info.mean)) / np.array(info.std)
    np.testing.assert_allclose(images_of(sets.test), expected, atol=1e-5)
    assert [tuple(x.shape) for x, _ in sets.train] == [(4, 32, 32, 3), (2, 32, 32, 3)]


@pytest.mark.parametrize("kwargs, argument", [
    (dict(name="cifar10", image_size=32), "image_size"),
    (dict(name="cifar10", augment="resized_crop_flip"), "augment"),
    (dict(name="tiny_imagenet", augment="mixup"), "augment"),
    (dict(name="tiny_imagenet", pad_to=72), "pad_to"),
    (dict(name="tiny_imagenet", image_size=4), "image_size"),
    (dict(name="tiny_imagenet", manual_dir="/x"), "manual_dir"),
    (dict(name="imagenet2012", label_noise=0.1), "label_noise"),
])
def test_bad_streaming_arguments_fail_before_loading(monkeypatch, kwargs, argument):
    monkeypatch.setattr(sources, "load_with_source", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(ValueError, match=argument):
        data.build_datasets(batch_size=4, **kwargs)


@pytest.mark.parametrize("overrides, key", [
    (dict(name="cifar10", image_size=32), "dataset.image_size"),
    (dict(name="cifar10", augment="resized_crop_flip"), "dataset.augment"),
    (dict(name="tiny_imagenet", manual_dir="/x"), "dataset.manual_dir"),
    (dict(name="imagenet2012", pad_to=256), "dataset.pad_to"),
    (dict(name="imagenet2012", image_size=4), "dataset.image_size"),
    (dict(name="imagenet2012", label_noise=0.2), "dataset.label_noise"),
])
def test_config_rejects_streaming_keys_where_they_do_not_apply(overrides, key):
    config = config_lib.base_config()
    config.dataset.update(overrides)
    with pytest.raises(ValueError, match=f"^config.{key} "):
        config_lib.validate(config)


@pytest.mark.parametrize("value", [8, 64, 7, 0, True, 8.0, "32"])
def test_image_size_passes_config_validate_exactly_when_it_passes_build_datasets(value):
    config = config_lib.base_config()
    config.dataset.name = "tiny_imagenet"
    try:
        with config.unlocked():
            config.dataset.image_size = value
        config_lib.validate(config)
        config_ok = True
    except (ValueError, TypeError):
        config_ok = False
    try:
        data.build_datasets("tiny_imagenet", batch_size=4, image_size=value)
        library_ok = True  # unreachable: no data_dir
    except FileNotFoundError:  # the checks passed; only the data is missing
        library_ok = True
    except ValueError:
        library_ok = False
    assert config_ok == library_ok == (value in (8, 64) and not isinstance(value, (bool, float, str)))
