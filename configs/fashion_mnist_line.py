r"""A line of small CNNs on Fashion-MNIST, next to standard training (paper 001 §4.2).

Command (about 8 minutes on 2 CPU cores: 2 × 10 epochs at ~16-20 s each, plus
evaluation at 21 points with batch norm recomputed at each; writes results.md,
accuracy.png and geometry.png; measured 2026-11-21 with 5 points: line
midpoint 89.6%, endpoint ensemble 89.7%, standard 91.1% test accuracy):

    python -m tfsubspace.train --config=configs/fashion_mnist_line.py --workdir=runs/line

Quick smoke run (~1 minute):

    python -m tfsubspace.train --config=configs/fashion_mnist_line.py --workdir=runs/smoke \
        --config.train.epochs=2 --config.dataset.train_subset=4096
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "subspace"
    config.subspace.shape = "line"
    config.subspace.beta = 1.0
    config.subspace.sampling = "per_batch"
    config.train.epochs = 10
    config.train.standard_baseline = True
    # The 21-point grid of paper 001 Fig. 4-5, for the report's plots.
    config.eval.alphas = tuple(round(i / 20, 10) for i in range(21))
    return config
