r"""Standard training with dropout 0.1 on Fashion-MNIST (001 §4.3, Fig. 8 baseline).

The recipe of configs/fashion_mnist_standard.py (10 epochs) with dropout 0.1
before the small CNN's classifier. The paper tries {0.05, 0.1, 0.2, 0.4, 0.8}
and reports the best: --config.model.dropout=0.2 etc.

Command (measured here 2026-11-22: 3.6 minutes on the 2 shared CPU cores; 90.7% test
accuracy, NLL 0.264, ECE 0.008):

    python -m tfsubspace.train --config=configs/fashion_mnist_dropout.py --workdir=runs/dropout
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "standard"
    config.train.epochs = 10
    config.model.dropout = 0.1
    return config
