r"""An ensemble of two independently seeded cResNet20s on CIFAR-10 (001 Fig. 4-6 "standard ensemble of two").

Each member is trained exactly like configs/cifar10_standard.py (160 epochs),
from seeds config.seed and config.seed + 1; --config.baseline.ensemble_size=k
for more members (k × 8 hours).

CIFAR-10 comes from tensorflow_datasets: the first run needs network access.
Not run here. Estimated runtime on this 2-core CPU: about 16 hours (2 × 160
epochs at ~3 minutes, DESIGN.md §4); each member checkpoints apart, so an
interrupted run resumes where it stopped.

    python -m tfsubspace.train --config=configs/cifar10_standard_ensemble.py --workdir=runs/cifar10_ensemble
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar10_standard import cifar10_recipe  # noqa: E402


def get_config():
    config = cifar10_recipe()
    config.method = "standard_ensemble"
    config.baseline.ensemble_size = 2
    return config
