r"""Standard training of the small CNN on Fashion-MNIST: the reference for every method.

Command (about 3 minutes on 2 CPU cores: 10 epochs at ~15-20 s):

    python -m tfsubspace.train --config=configs/fashion_mnist_standard.py --workdir=runs/standard
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "standard"
    config.train.epochs = 10
    return config
