r"""Fast Geometric Ensembling of cResNet20 on CIFAR-10 (003 §5, §6 and A.9).

The recipe of configs/cifar10_standard.py for 80% of the budget (epoch 128;
003 A.9 runs FGE after epoch 125 of 150), then 003's triangular cycles between
α1 = 5·10⁻² and α2 = 5·10⁻⁴ with the ResNet cycle length c = 4 epochs, a
snapshot at each cycle's minimum: 8 members (epochs 130, 134, ..., 158).

CIFAR-10 comes from tensorflow_datasets: the first run needs network access.
Not run here. Estimated runtime on this 2-core CPU: about 8 hours (160 epochs
at ~3 minutes, DESIGN.md §4) plus ~5 minutes of evaluation.

    python -m tfsubspace.train --config=configs/cifar10_fge.py --workdir=runs/cifar10_fge
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar10_standard import cifar10_recipe  # noqa: E402


def get_config():
    config = cifar10_recipe()
    config.method = "fge"
    config.baseline.fge_start_fraction = 0.8
    config.baseline.fge_alpha_1 = 0.05
    config.baseline.fge_alpha_2 = 5e-4
    config.baseline.fge_cycle_epochs = 4.0
    return config
