"""The paper configs (ImageNet ResNet-50/WRN-50-2, Tiny-ImageNet ResNet-18, CIFAR-100 cResNet20): recipe, smoke."""

import importlib.util
import os

import pytest
import tensorflow_datasets as tfds

import conftest
from tfsubspace import config as config_lib
from tfsubspace import train
from tfsubspace.data import sources

FILES = ("imagenet_resnet50", "imagenet_wrn50_2", "tiny_imagenet_resnet18", "cifar100_cresnet20")
METHODS = ("standard", "line", "layerwise", "simplex")
# (dataset, model, epochs, batch, weight decay, augmentation): 001 §4 and §4.4.
RECIPES = {
    "imagenet_resnet50": ("imagenet2012", "resnet50", 200, 256, 5e-5, "resized_crop_flip"),
    "imagenet_wrn50_2": ("imagenet2012", "wide_resnet50_2", 100, 256, 5e-5, "resized_crop_flip"),
    "tiny_imagenet_resnet18": ("tiny_imagenet", "resnet18", 160, 128, 1e-4, "flip_crop"),
    "cifar100_cresnet20": ("cifar100", "cresnet20", 160, 128, 1e-4, "flip_crop"),
}


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(conftest.REPO, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", FILES)
def test_every_method_follows_the_papers_recipe_and_validates(name):
    module = load(name)
    dataset, model, epochs, batch, weight_decay, augment = RECIPES[name]
    for method in METHODS:
        config = config_lib.validate(module.get_config(method))
        assert (config.dataset.name, config.model.name, config.dataset.augment) == (dataset, model, augment)
        assert (config.train.epochs, config.train.batch_size, config.train.weight_decay) == (epochs, batch,
                                                                                             weight_decay)
        assert (config.train.learning_rate, config.train.momentum, config.train.warmup_epochs) == (0.1, 0.9, 5)
        assert config.train.weight_decay_mode == "l2"
        assert config.method == ("standard" if method == "standard" else "subspace")
        if method != "standard":
            expected = ("simplex" if method == "simplex" else "line",
                        "per_layer" if method == "layerwise" else "per_batch", 1.0)
            assert (config.subspace.shape, config.subspace.sampling, config.subspace.beta) == expected
        smoke = config_lib.validate(module.get_config(f"{method}_smoke"))
        assert (smoke.method, smoke.subspace.sampling, smoke.model.name) == (config.method, config.subspace.sampling,
                                                                             model)
        assert smoke.train.epochs == 1 and smoke.model.kwargs.width == 4
        # ImageNet trains on every visible GPU (the paper's 4); the smoke runs stay in this process.
        assert config.distribution == ("mirrored" if dataset == "imagenet2012" else "none")
        assert smoke.distribution == "none"
    assert "Hardware and time (an estimate" in module.__doc__ or "(an estimate, not run)" in module.__doc__
    with pytest.raises(ValueError, match="config argument must be one of 'standard'"):
        module.get_config("lines")


def test_tiny_imagenet_uses_the_small_input_stem():
    assert load("tiny_imagenet_resnet18").get_config("line").model.kwargs.small_input is True


@pytest.fixture
def clear_tfds_cache():
    sources._load_tfds_cached.cache_clear()  # mock arrays must not outlive the test
    yield
    sources._load_tfds_cached.cache_clear()


# Each file's smoke variant once, each method once: the binary's whole run (train, evaluate, report).
@pytest.mark.parametrize("name, method", [
    ("imagenet_resnet50", "line"),
    ("imagenet_wrn50_2", "simplex"),
    ("tiny_imagenet_resnet18", "layerwise"),
    ("cifar100_cresnet20", "standard"),
])
def test_smoke_variant_runs_through_the_binary(tmp_path, clear_tfds_cache, name, method):
    config = load(name).get_config(f"{method}_smoke")
    if name.startswith("tiny"):
        conftest.make_tiny_imagenet(tmp_path / "tiny", per_class=3)
        config.dataset.data_dir = str(tmp_path / "tiny")
    with tfds.testing.mock_data(num_examples=8):
        results = train.run(config, str(tmp_path / "run"), title=name)
    assert results["data"]["train_examples"] == 8
    assert results["data"]["name"] == config.dataset.name
    section = "standard" if method == "standard" else "subspace"
    assert section in results and os.path.exists(tmp_path / "run" / "results.json")
