r"""A line vs standard training with 20% label noise on Fashion-MNIST (001 §4.3 Fig. 8, Fig. 12 left).

Before training, 20% of the training examples get a uniformly random label,
chosen by config.dataset.label_noise_seed (the same examples and labels for
every method and seed); test labels are clean. Trains a line (β = 1) and a
standard small CNN with the 10-epoch recipe, and records the standard model's
test accuracy after every epoch for the optimal-early-stopping oracle (best
test accuracy over the epochs, 001 §4.3).

Command (measured here 2026-11-22: 7.4 minutes on the 2 shared CPU cores, 2 × 10
epochs plus 5 points along the line; standard 90.0% (early-stopping oracle
90.0%, epoch 10), line midpoint 88.3% test accuracy):

    python -m tfsubspace.train --config=configs/fashion_mnist_label_noise.py --workdir=runs/label_noise

Other noise levels: --config.dataset.label_noise=0.4 (any value in [0, 1]).
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "subspace"
    config.subspace.shape = "line"
    config.subspace.beta = 1.0
    config.train.epochs = 10
    config.train.standard_baseline = True
    config.dataset.label_noise = 0.2
    config.dataset.label_noise_seed = 0
    config.eval.test_every_epoch = True
    return config
