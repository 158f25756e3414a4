r"""ResNet-18 on Tiny-ImageNet (001 §4, Fig. 4-7): standard, line, layerwise line or simplex, 160 epochs.

Paper 001 §4: Tiny-ImageNet follows Frankle et al. (2020), 160 epochs of SGD
with lr 0.1, momentum 0.9, weight decay 1e-4 and batch 128, cosine annealing
after 5 warm-up epochs. The model is the ResNet-18 of Tanaka et al. (2020)
(000 §C): torchvision's with a 3x3 stride-1 stem and no max-pool
(small_input=True), 200 classes. Augmentation "random crop and horizontal flip"
(000 §C): 4-pixel padding, 64-px crop, flip, and the normalization of the
authors' loader (apple/learning-subspaces data/tinyimagenet.py).

Data: unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip and pass the
tiny-imagenet-200 folder as --config.dataset.data_dir.

Hardware and time (an estimate, not run): the paper trains it on one GPU
(000 §C). With the stride-1 stem, 64-px ResNet-18 needs ~2.3 G multiply-adds
per image (~0.56x a 224-px ResNet-50), so ~600-700 images/s on a V100 in fp32:
160 epochs x 100k images in about 7 hours. On this 2-core CPU, weeks (see
BUILD_NOTES.md for the measured step time); not run here.

    python -m tfsubspace.train --config=configs/tiny_imagenet_resnet18.py:simplex --workdir=runs/tin_simplex \
        --config.dataset.data_dir=/data/tiny-imagenet-200

Arguments: standard, line, layerwise, simplex, or "<method>_smoke" (a few
steps at 32 px, width 4, on a generated folder in the tests).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_methods  # noqa: E402

from tfsubspace.config import base_config  # noqa: E402


def get_config(arg="line"):
    method, smoke = paper_methods.parse(arg)
    config = base_config()
    config.dataset.name = "tiny_imagenet"
    config.dataset.augment = "flip_crop"
    config.model.name = "resnet18"
    config.model.kwargs.small_input = True
    config.train.epochs = 160
    config.train.batch_size = 128
    config.train.learning_rate = 0.1
    config.train.momentum = 0.9
    config.train.weight_decay = 1e-4
    config.train.warmup_epochs = 5
    config = paper_methods.apply(config, method)
    return paper_methods.smoke(config) if smoke else config
