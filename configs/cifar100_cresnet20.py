r"""cResNet20 on CIFAR-100: standard, line, layerwise line or simplex, 160 epochs.

Paper 001 trains no CIFAR-100 model (its CIFAR runs are CIFAR-10 cResNet20,
§4); this applies its CIFAR recipe unchanged to CIFAR-100, as issue #14
asks: 160 epochs of SGD, lr 0.1, momentum 0.9, weight decay 1e-4, batch 128,
cosine annealing after 5 warm-up epochs (001 §4, following Frankle et al.
2020), random crop (4-pixel padding) + flip (000 §C), open_lth's cResNet20
with 100 outputs. The numbers are the CIFAR-10 recipe's, not tuned for
CIFAR-100.

CIFAR-100 comes from tensorflow_datasets: the first run needs network access
(~160 MB). Hardware and time (an estimate, not run): cResNet20 on 32 px trains
at ~3 minutes an epoch on this 2-core CPU (DESIGN.md §4; 100 classes change
only the last layer), so ~8 hours for standard and about as much for a line
(one forward per batch); minutes on one GPU.

    python -m tfsubspace.train --config=configs/cifar100_cresnet20.py:line --workdir=runs/c100_line

Arguments: standard, line, layerwise, simplex, or "<method>_smoke" (a few
steps on tfds.testing.mock_data in the tests).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_methods  # noqa: E402
from cifar10_standard import cifar10_recipe  # noqa: E402


def get_config(arg="line"):
    method, smoke = paper_methods.parse(arg)
    config = cifar10_recipe()
    config.dataset.name = "cifar100"
    config = paper_methods.apply(config, method)
    return paper_methods.smoke(config) if smoke else config
