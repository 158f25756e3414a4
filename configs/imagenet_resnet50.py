r"""ResNet-50 on ImageNet (001 §4, Fig. 9): standard, line, layerwise line or simplex, 200 epochs.

The recipe is paper 001 §4's: ImageNet follows Xie et al. (2019) with batch
256 and weight decay 5e-5 (PyTorch-style L2, config.train.weight_decay_mode
"l2"); SGD lr 0.1 (001 §4's 0.1, also the authors' ImageNet configs), momentum
0.9, cosine annealing after 5 warm-up epochs; 200 epochs for ResNet-50 (001
§4.4: at 100 epochs the ResNet-50 subspace falls slightly below standard
training). Random-resized crop 224 + flip for training, resize 256 + centre
crop 224 for evaluation. β = 1; the simplex has 3 vertices; layerwise = an
independent α per layer (001 §3). torchvision's layout (25.6M parameters).

Data: ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from
image-net.org, registration needed) in the folder given as
--config.dataset.manual_dir; the first run prepares tensorflow_datasets' copy
(~150 GB) in --config.dataset.data_dir.

Hardware and time (an estimate, not run): the paper trains ImageNet models on
4 GPUs (000 §C, PyTorch 1.6, fp32). At the ~300-400 images/s per V100 usually
reported for fp32 ResNet-50 training, 200 epochs x 1.28M images take about
2-2.5 days on 4 V100s (a line or simplex costs about as much: one forward per
batch, m weight copies combined per layer). On this 2-core CPU it is out of
reach (see BUILD_NOTES.md for the measured step time).

    python -m tfsubspace.train --config=configs/imagenet_resnet50.py:line --workdir=runs/in_r50_line \
        --config.dataset.manual_dir=/data/imagenet-tars --config.dataset.data_dir=/data/tfds

Arguments: standard, line, layerwise, simplex; "<method>_smoke" runs a few
steps at 32 px with width 4 (tests, on tfds.testing.mock_data).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_methods  # noqa: E402

from tfsubspace.config import base_config  # noqa: E402


def imagenet_recipe(model_name, epochs):
    """001 §4's ImageNet recipe for a torchvision ResNet."""
    config = base_config()
    config.dataset.name = "imagenet2012"
    config.dataset.augment = "resized_crop_flip"
    config.model.name = model_name
    config.train.epochs = epochs
    config.train.batch_size = 256
    config.train.learning_rate = 0.1
    config.train.momentum = 0.9
    config.train.weight_decay = 5e-5
    config.train.weight_decay_mode = "l2"
    config.train.warmup_epochs = 5
    config.eval.batch_size = 250
    config.eval.batchnorm_steps = 12  # 3,000 training images, as the CIFAR runs (config.py)
    # The paper's 4 GPUs (000 §C): every visible GPU, synchronized batch norm over the global batch.
    config.distribution = "mirrored"
    return config


def get_config(arg="line"):
    method, smoke = paper_methods.parse(arg)
    config = paper_methods.apply(imagenet_recipe("resnet50", epochs=200), method)
    return paper_methods.smoke(config) if smoke else config
