r"""Two trained small CNNs on Fashion-MNIST connected by a Bezier curve and a polygonal chain (paper 003).

Trains two standard models (seeds 0 and 1, the standard recipe), a one-bend
Bezier curve and a one-bend polygonal chain between them (endpoints frozen,
t ~ U(0, 1) per batch), evaluates both on 61 values of t with batch norm
recomputed at each (train metrics on 10,000 training examples), writes the
paper 003 Table 2 style summary (segment vs Bezier vs PolyChain) into
results.md, the test loss/error plane through (w_a, w_b, Bezier bend) as
plane_bezier.png, and runs Fast Geometric Ensembling from endpoint 0
(4 cycles of 2 epochs, α1 = 0.05, α2 = 5e-4: 003 A.9) next to the ensembles
along the curves.

Command (full settings; measured here 2026-11-22: 21 minutes on the 2 CPU cores,
with the test suite running beside it for 9 of them):

    python -m tfsubspace.train --config=configs/fashion_mnist_connect.py --workdir=runs/connect

It gave (test error %, Min / Int / Max over 61 values of t; endpoints 8.82 and
8.90): segment 8.76 / 34.76 / 82.49, Bezier 8.82 / 9.83 / 11.44 (length ratio
1.06), PolyChain 8.82 / 9.70 / 10.65 (length ratio 1.17); test accuracy:
endpoint ensemble 91.61%, 5 points along the Bezier 91.03%, along the
PolyChain 91.22%, FGE from endpoint 0 (4 snapshots) 91.53%.

Reduced run measured here (2026-11-22, 2 shared cores: 16.8 minutes; endpoints
6.3, curve training 2.1 + 1.8, curve evaluation 2.4 + 1.6, plane 0.8, FGE 0.9):

    python -m tfsubspace.train --config=configs/fashion_mnist_connect.py --workdir=runs/connect \
        --config.train.epochs=5 --config.connect.epochs=4 --config.connect.points=31 \
        --config.connect.train_examples=5000 --config.connect.plane_grid=11 \
        --config.connect.plane_examples=1000 --config.connect.fge_cycles=2 --config.connect.fge_cycle_epochs=1

It gave (test error %, Min / Int / Max over t; endpoints 9.92 and 10.33):
segment 9.92 / 30.72 / 74.12, Bezier 9.92 / 11.24 / 13.41 (length ratio 1.04),
PolyChain 9.92 / 11.06 / 12.18 (length ratio 1.12); test accuracy: endpoint
ensemble 90.21%, 5 points along the Bezier 89.69%, along the PolyChain 89.80%,
FGE (2 snapshots from endpoint 0) 90.11%.

Quick smoke run (~2 minutes):

    python -m tfsubspace.train --config=configs/fashion_mnist_connect.py --workdir=runs/smoke \
        --config.train.epochs=2 --config.connect.epochs=2 --config.dataset.train_subset=4096 \
        --config.connect.points=11 --config.connect.plane_grid=5 --config.connect.fge_cycles=1
"""

from tfsubspace.config import base_config


def get_config():
    config = base_config()
    config.method = "connect"
    config.train.epochs = 10
    config.connect.shapes = ("bezier", "polychain")
    config.connect.num_bends = 1
    config.connect.epochs = 10
    config.connect.points = 61
    config.connect.train_examples = 10000
    config.connect.ensemble_points = 5
    config.connect.plane_grid = 15
    config.connect.plane_examples = 2000
    config.connect.plane_batchnorm_steps = 1
    config.connect.fge_cycles = 4
    config.connect.fge_cycle_epochs = 2
    return config
