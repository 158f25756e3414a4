r"""WideResNet-50-2 on ImageNet (001 §4, Fig. 9): standard, line, layerwise line or simplex, 100 epochs.

The recipe of configs/imagenet_resnet50.py (paper 001 §4: batch 256, weight
decay 5e-5, SGD lr 0.1, momentum 0.9, cosine after 5 warm-up epochs,
random-resized crop 224 + flip, resize 256 + centre crop 224 at evaluation)
for 100 epochs, as 001 §4.4 trains the WideResNet50. torchvision's
wide_resnet50_2 (68.9M parameters).

Data: as configs/imagenet_resnet50.py (--config.dataset.manual_dir with the
two ILSVRC2012 tar files the first time, --config.dataset.data_dir).

Hardware and time (an estimate, not run): 4 GPUs in the paper (000 §C).
WRN-50-2 needs ~2.8x ResNet-50's multiply-adds per image (11.4 vs 4.1 G), so
100 epochs cost ~1.4x the 200 ResNet-50 epochs of configs/imagenet_resnet50.py:
about 3-3.5 days on 4 V100s in fp32. Out of reach on this 2-core CPU.

    python -m tfsubspace.train --config=configs/imagenet_wrn50_2.py:layerwise --workdir=runs/in_wrn_layerwise \
        --config.dataset.manual_dir=/data/imagenet-tars --config.dataset.data_dir=/data/tfds

Arguments: standard, line, layerwise, simplex, or "<method>_smoke".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_methods  # noqa: E402
from imagenet_resnet50 import imagenet_recipe  # noqa: E402


def get_config(arg="line"):
    method, smoke = paper_methods.parse(arg)
    config = paper_methods.apply(imagenet_recipe("wide_resnet50_2", epochs=100), method)
    return paper_methods.smoke(config) if smoke else config
