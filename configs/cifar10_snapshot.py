r"""A snapshot ensemble of cResNet20 on CIFAR-10 (Huang et al. 2017; 001 §4.5 Fig. 11, 003 §6).

160 epochs with the data, weight decay, momentum and batch size of
configs/cifar10_standard.py, but the LR restarts a cosine from α0 = 0.1 six
times (cycles of ~26.7 epochs, no warm-up) and the weights at the end of each
cycle are the 6 members, as the "6 model Snapshot Ensemble" of 001 Fig. 11
(003 §6 found M = 4 best for ResNets: --config.baseline.num_snapshots=4).

CIFAR-10 comes from tensorflow_datasets: the first run needs network access.
Not run here. Estimated runtime on this 2-core CPU: about 8 hours (160 epochs
at ~3 minutes, DESIGN.md §4) plus ~5 minutes of evaluation.

    python -m tfsubspace.train --config=configs/cifar10_snapshot.py --workdir=runs/cifar10_snapshot
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar10_standard import cifar10_recipe  # noqa: E402


def get_config():
    config = cifar10_recipe()
    config.method = "snapshot"
    config.baseline.num_snapshots = 6
    return config
