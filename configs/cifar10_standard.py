r"""Standard training of cResNet20 on CIFAR-10 with the paper's recipe (001 §4, 000 §C).

160 epochs of SGD (lr 0.1, momentum 0.9, weight decay 1e-4, batch 128), cosine
decay after 5 linear warm-up epochs, random crop (4-pixel padding) and
horizontal flip. The reference for configs/cifar10_*.py, which all share this
recipe (`cifar10_recipe`).

CIFAR-10 comes from tensorflow_datasets: the first run needs `pip install
tensorflow-datasets` and network access (it downloads and caches ~170 MB).
Not run here. Estimated runtime on this 2-core CPU: cResNet20 trains at about
3 minutes an epoch (DESIGN.md §4), so about 8 hours.

    python -m tfsubspace.train --config=configs/cifar10_standard.py --workdir=runs/cifar10_standard

Runs checkpoint every epoch; the same command resumes an interrupted run.
Add --config.eval.test_every_epoch=True for the optimal-early-stopping oracle
(about 10 s more an epoch).
"""

from tfsubspace.config import base_config


def cifar10_recipe():
    """The config every CIFAR-10 cResNet20 experiment starts from."""
    config = base_config()
    config.dataset.name = "cifar10"
    config.dataset.augment = "flip_crop"
    config.model.name = "cresnet20"
    config.train.epochs = 160
    config.train.batch_size = 128
    config.train.learning_rate = 0.1
    config.train.momentum = 0.9
    config.train.weight_decay = 1e-4
    config.train.warmup_epochs = 5
    return config


def get_config():
    config = cifar10_recipe()
    config.method = "standard"
    return config
