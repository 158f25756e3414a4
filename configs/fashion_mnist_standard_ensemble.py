r"""An ensemble of independently seeded standard small CNNs on Fashion-MNIST (001 §4, 003 §6 "Ind").

k = config.baseline.ensemble_size members, each trained exactly like
configs/fashion_mnist_standard.py (10 epochs) from seed config.seed + i; the
ensemble averages their test probabilities. Same data, schedule and epochs per
member as every other Fashion-MNIST config.

Command (measured here 2026-11-22: 9 minutes on the 2 shared CPU cores, 2 × ~4.5
minutes of training; ensemble of 2: 91.4% test accuracy, NLL 0.241, ECE 0.011;
members 91.2% and 90.8%):

    python -m tfsubspace.train --config=configs/fashion_mnist_standard_ensemble.py --workdir=runs/standard_ensemble
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "standard_ensemble"
    config.train.epochs = 10
    config.baseline.ensemble_size = 2  # the "standard ensemble of two" of 001 Fig. 4-6
    config.eval.test_every_epoch = True  # also report each member's optimal-early-stopping oracle
    return config
