r"""SWA, the SWA-checkpoint ensemble and SWAG for cResNet20 on CIFAR-10 (000 §D.4, 001 §4.3/§4.5 Fig. 7, 11).

The authors' protocol: the recipe of configs/cifar10_standard.py compressed
into the first 75% of training, annealed to 0 at epoch 120 where the first
checkpoint is taken, then the SWA learning rate 0.05 in 5 cosine cycles
(--config.baseline.swa_lr_schedule=constant for the high-constant variant),
6 checkpoints in all (epochs 120, 128, 136, 144, 152, 160;
--config.baseline.swa_protocol=paper for 126, 133, 140, 146, 153, 160 after a
cut schedule); reports the SWA average (batch norm recomputed), the 6-checkpoint
ensemble and an ensemble of 6 SWAG samples from those checkpoints, the
values of 000 §D.4.

CIFAR-10 comes from tensorflow_datasets: the first run needs network access.
Not run here. Estimated runtime on this 2-core CPU: about 8 hours (160 epochs
at ~3 minutes, DESIGN.md §4) plus ~5 minutes of evaluation.

    python -m tfsubspace.train --config=configs/cifar10_swa.py --workdir=runs/cifar10_swa
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar10_standard import cifar10_recipe  # noqa: E402


def get_config():
    config = cifar10_recipe()
    config.method = "swa"
    config.baseline.swa_start_fraction = 0.75
    config.baseline.swa_lr = 0.05
    config.baseline.swa_lr_schedule = "cyclic"
    config.baseline.swa_num_checkpoints = 6
    config.baseline.swag_samples = 6
    return config
