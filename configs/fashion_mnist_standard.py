r"""Standard training of the small CNN on Fashion-MNIST: the reference for every method.

Command (about 4 minutes on 2 CPU cores: 10 epochs at ~16-20 s; 91.1% test accuracy):

    python -m tfsubspace.train --config=configs/fashion_mnist_standard.py --workdir=runs/standard
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "standard"
    config.train.epochs = 10
    return config
