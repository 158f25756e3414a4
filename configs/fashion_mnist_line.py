r"""A line of small CNNs on Fashion-MNIST, next to standard training (paper 001 §4.2).

Command (measured 2026-11-22 from a fresh clone on 2 idle cores: 5 min 50 s
including set-up; 2 × 10 epochs at ~13-16 s each, then 21 points with batch
norm recomputed at each; line midpoint 89.78%, endpoint ensemble 89.73%,
standard 91.18% test accuracy; writes results.md, accuracy.png, geometry.png):

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
