r"""A line of cResNet20s on CIFAR-10 (001 §4.2, Fig. 4-6) with the recipe of configs/cifar10_standard.py.

β = 1, one α per batch, 160 epochs; evaluated at 21 points along the line
with batch norm recomputed at each. The standard reference is
configs/cifar10_standard.py (or add --config.train.standard_baseline=True to
train it in the same run, +8 hours).

CIFAR-10 comes from tensorflow_datasets: the first run needs network access.
Not run here. Estimated runtime on this 2-core CPU: a line costs about one
standard epoch (~3 minutes, DESIGN.md §4) an epoch, so about 8-9 hours plus
~10 minutes of evaluation.

    python -m tfsubspace.train --config=configs/cifar10_line.py --workdir=runs/cifar10_line
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar10_standard import cifar10_recipe  # noqa: E402


def get_config():
    config = cifar10_recipe()
    config.method = "subspace"
    config.subspace.shape = "line"
    config.subspace.beta = 1.0
    config.subspace.sampling = "per_batch"
    config.eval.alphas = tuple(round(i / 20, 10) for i in range(21))
    return config
