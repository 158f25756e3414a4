r"""How cheap can a line be? The least work a line step must do, against ts.convert's line.

    PYTHONPATH=. .venv/bin/python benchmarks/line_floor.py               # MLP at batch 32
    PYTHONPATH=. .venv/bin/python benchmarks/line_floor.py --batch-size 128 --rounds 30

Issue #10 asks for a line step of the 535k-parameter MLP at batch 32 within
1.3x a standard step. This script measures, interleaved in one run (ratios to
the standard step of the same round, as benchmarks/step_time.py does):

- `standard`: the stock MLP;
- `hand line`: the same MLP written by hand as a line with nothing else: each
  Dense holds two kernels and two biases, θ = (1 − α)·ω₀ + α·ω₁ with one α per
  step drawn by `keras.random.uniform`, no cos² penalty, no wrapper, no
  stateless scope: the floor of any line implementation on this stack
  (twice the parameters for the optimizer, θ formed and its gradient split
  into both copies every step);
- `hand line + cos²`: the same plus the cos²(ω₀, ω₁) penalty of paper 001
  Eq. 5 over all kernels (β = 1), written by hand;
- `ts line β=0` and `ts line β=1`: `ts.convert(mlp, ts.Line(), beta=...)`.

All use SGD(0.1, momentum 0.9), logits, `jit_compile=False` (Keras' default
on CPU). If `hand line` alone is above 1.3x, no line implementation meets the
goal here; the gap between `hand line + cos²` and `ts line β=1` is what the
library's generic mechanism costs.
"""

import argparse
import os
import statistics
import sys

import keras
import numpy as np
from keras import ops

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_time  # noqa: E402  (its Stepper and batch helpers)

import tfsubspace as ts  # noqa: E402


class HandLineDense(keras.layers.Layer):
    """Dense with two copies of its weights, mixed at the α its model last drew."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation = units, keras.activations.get(activation)

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self.kernels = [self.add_weight(shape=(fan_in, self.units), initializer="glorot_uniform") for _ in range(2)]
        self.biases = [self.add_weight(shape=(self.units,), initializer="zeros") for _ in range(2)]

    def call(self, x, alpha):
        kernel = (1.0 - alpha) * self.kernels[0] + alpha * self.kernels[1]
        bias = (1.0 - alpha) * self.biases[0] + alpha * self.biases[1]
        return self.activation(ops.matmul(x, kernel) + bias)


class HandLineMLP(keras.Model):
    """Flatten -> 512 ReLU -> 256 ReLU -> 10 logits as a hand-written line; one α per step."""

    def __init__(self, cos2=False, units=(512, 256), num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.cos2 = cos2
        self.flatten = keras.layers.Flatten()
        self.dense = [HandLineDense(u, "relu") for u in units] + [HandLineDense(num_classes)]
        self.seed = keras.random.SeedGenerator(0)

    def call(self, x, training=False):
        alpha = keras.random.uniform((), seed=self.seed) if training else 0.5
        x = self.flatten(x)
        for layer in self.dense:
            x = layer(x, alpha=alpha)
        if self.cos2 and training:
            dot = sum(ops.sum(layer.kernels[0] * layer.kernels[1]) for layer in self.dense)
            norm0 = sum(ops.sum(ops.square(layer.kernels[0])) for layer in self.dense)
            norm1 = sum(ops.sum(ops.square(layer.kernels[1])) for layer in self.dense)
            self.add_loss(ops.square(dot) / (norm0 * norm1 + 1e-12))
        return x


def build(variant, input_shape):
    keras.utils.set_random_seed(0)
    if variant.startswith("hand"):
        model = HandLineMLP(cos2=variant.endswith("cos²"))
        model(np.zeros((1,) + input_shape, "float32"))
    else:
        base = step_time.base_model("mlp")
        if variant == "standard":
            model = base
        else:
            model = ts.convert(base, ts.Line(), beta=float(variant[-1]), sampling="per_batch", seed=0)
    return step_time.compile_model(model)


VARIANTS = ("standard", "hand line", "hand line + cos²", "ts line β=0", "ts line β=1")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant per round (median kept)")
    args = parser.parse_args(argv)

    reference = step_time.base_model("mlp")
    batch = step_time.random_batch(reference, args.batch_size, 0)
    input_shape = tuple(reference.input_shape[1:])
    steppers = {}
    for variant in VARIANTS:
        steppers[variant] = step_time.Stepper(build(variant, input_shape), batch)
        steppers[variant].run(3)  # trace and warm up
    rounds = {variant: [] for variant in VARIANTS}
    rng = np.random.default_rng(0)
    for _ in range(args.rounds):
        for variant in rng.permutation(VARIANTS):
            rounds[variant].append(steppers[variant].time_per_step(args.steps))
    base = statistics.median(rounds["standard"])
    print(f"MLP (535k parameters) at batch {args.batch_size}, {args.rounds} interleaved rounds x {args.steps} steps")
    print(f"{'variant':<18} {'ms/step':>8} {'ratio':>6} {'round ratios: median [IQR]':>30}")
    for variant in VARIANTS:
        per_round = [v / s for v, s in zip(rounds[variant], rounds["standard"])]
        q1, q2, q3 = np.percentile(per_round, [25, 50, 75])
        median = statistics.median(rounds[variant])
        print(f"{variant:<18} {median * 1e3:8.2f} {median / base:6.2f} {q2:14.2f} [{q1:.2f}, {q3:.2f}]")


if __name__ == "__main__":
    main()
