"""Training-step time of subspace models relative to the standard model.

For each model of the zoo this builds three variants from one base network

- ``standard``: the stock Keras model,
- ``line``:     ``ts.convert(base, ts.Line())``,
- ``simplex6``: ``ts.convert(base, ts.Simplex(num_vertices=6))``,

all compiled alike (SGD lr 0.1 momentum 0.9, sparse categorical cross-entropy
on logits, ``jit_compile=False``; ``beta=1.0``, ``sampling="per_batch"``), and
times their training steps *interleaved in one process*: every round times
``steps`` steps of each variant, in a fresh random order. The goals of the
issue are checked against the ratio of the median step times: line <= 1.05x
and simplex(6) <= 1.10x for the small CNN and cResNet20; line <= 1.3x and
simplex(6) <= 1.6x for the MLP and the small Transformer (run those at batch
32: ``--models mlp,transformer --batch-size 32``). The first step (trace +
build + one step) of simplex(6) must take <= 2x the standard one.

``--memory`` instead runs each variant in a fresh subprocess (a few training
steps) and reports its peak RSS; the goal is line <= standard + 10% +
3·(m−1)·params·4 bytes.

Noise: on a shared 2-core machine absolute step times drift by tens of percent
within seconds, so only ratios measured in the same run mean anything, and the
defaults use many short rounds (a few steps each) rather than a few long ones:
long blocks let a burst of outside load land on one variant only (we saw
"ratios" of 1.6x from 5 rounds x 20 steps that were 1.02x when interleaved
finely). Each step is timed on its own and a round keeps the median of its
steps, so one disturbed step does not move it.

A step is one call of the compiled ``model.train_function`` on an iterator of
``tf.data.Dataset.from_tensors(batch).repeat()``: the function and calling
convention ``model.fit`` uses, without callbacks, progress bar or a real input
pipeline. Data are random (fixed seed) and live in memory.

Usage::

    python benchmarks/step_time.py
    python benchmarks/step_time.py --models small_cnn --rounds 40 --steps 4
    python benchmarks/step_time.py --batch-size 128 --rounds 25 --steps 2 --models cresnet20
    python benchmarks/step_time.py --models mlp,transformer --batch-size 32 --rounds 20 --steps 5
    python benchmarks/step_time.py --memory --models cresnet20,mlp

The exit code is always 0: this is a measurement, not a test.
"""

import argparse
import datetime
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfsubspace as ts  # noqa: E402

VARIANTS = ("standard", "line", "simplex6")
# Goals of the issue: step time of the variant / step time of the standard model.
GOALS = {"line": 1.05, "simplex6": 1.10}
# Small dense models are dominated by per-op overhead: their goals are looser.
DENSE_GOALS = {"line": 1.3, "simplex6": 1.6}
DENSE_MODELS = ("mlp", "transformer")
FIRST_STEP_GOAL = 2.0
MEMORY_STEPS = 5
DEFAULT_ROUNDS = 25
# Per-model default of --steps. cResNet20 takes ~0.4-0.6 s per batch of 128 on
# 2 cores (~200-300 img/s), the small CNN ~0.15-0.3 s; with 25 rounds the
# defaults time ~300 + ~150 steps and the whole run takes ~5 minutes.
DEFAULT_STEPS = {"small_cnn": 4, "cresnet20": 2}
FALLBACK_STEPS = 3
WARMUP_STEPS = 3
# The first step is one measurement per build: a burst of outside load moves it
# by 2x, so it is repeated on fresh builds, interleaved like the steps.
DEFAULT_FIRST_STEP_ROUNDS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help=f"interleaved rounds (default {DEFAULT_ROUNDS})"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per variant per round (default: "
        + ", ".join(f"{name} {steps}" for name, steps in DEFAULT_STEPS.items())
        + f", others {FALLBACK_STEPS})",
    )
    parser.add_argument(
        "--models", default="small_cnn,cresnet20", help="comma-separated zoo names (default small_cnn,cresnet20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, data and round orders")
    parser.add_argument(
        "--first-step-rounds",
        type=int,
        default=DEFAULT_FIRST_STEP_ROUNDS,
        help=f"rounds of fresh builds timing the first step (default {DEFAULT_FIRST_STEP_ROUNDS}; 0 = only the cold one)",
    )
    parser.add_argument("--memory", action="store_true", help="measure peak RSS per variant instead of step time")
    parser.add_argument("--memory-child", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    if args.first_step_rounds < 0:
        parser.error("--first-step-rounds must be >= 0")
    for option in ("batch_size", "rounds"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    if not args.models:
        parser.error("--models is empty")
    return args


def compile_model(model):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    return model


def transformer(vocabulary=1000, length=32, width=64, heads=4, num_classes=10):
    """A small Transformer encoder classifier: Embedding, attention, LayerNorm, residual +."""
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, width)(tokens)
    attended = keras.layers.MultiHeadAttention(heads, width // heads)(x, x)
    x = keras.layers.LayerNormalization()(x + attended)
    hidden = keras.layers.Dense(2 * width, activation="relu")(x)
    x = keras.layers.LayerNormalization()(x + keras.layers.Dense(width)(hidden))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(num_classes)(x), name="transformer")


def base_model(name):
    if name == "transformer":
        return transformer()
    from tfsubspace.models import get_model

    return get_model(name)


def build_variant(name, variant, seed, base=None):
    keras.utils.set_random_seed(seed)
    base = base_model(name) if base is None else base
    if variant == "standard":
        return compile_model(base)
    shape = ts.Line() if variant == "line" else ts.Simplex(num_vertices=6)
    return compile_model(ts.convert(base, shape, beta=1.0, sampling="per_batch", seed=seed))


def build_variants(name, seed):
    """{variant: compiled model}, the subspace models converted from one base."""
    keras.utils.set_random_seed(seed)
    base = base_model(name)
    # ts.convert leaves `base` untouched, so it can serve as the standard model.
    models = {variant: build_variant(name, variant, seed, base) for variant in VARIANTS if variant != "standard"}
    models["standard"] = compile_model(base)
    return {variant: models[variant] for variant in VARIANTS}


def random_batch(model, batch_size, seed):
    """A fixed random (inputs, labels) batch matching the model's input/output."""
    rng = np.random.default_rng(seed)
    input_shape = tuple(model.input_shape[1:])
    num_classes = int(model.output_shape[-1])
    if "int" in str(model.inputs[0].dtype):
        x = rng.integers(0, 1000, size=(batch_size,) + input_shape).astype(np.int32)
        y = rng.integers(0, num_classes, size=(batch_size,), dtype=np.int64)
        return x, y
    x = rng.random((batch_size,) + input_shape, dtype=np.float32)
    y = rng.integers(0, num_classes, size=(batch_size,), dtype=np.int64)
    return x, y


class Stepper:
    """Runs training steps of one model the way `fit` does, on a fixed batch."""

    def __init__(self, model, batch):
        self.model = model
        model.make_train_function()
        self.function = model.train_function
        self.iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
        self.logs = None

    def run(self, steps):
        for _ in range(steps):
            self.logs = self.function(self.iterator)
        # Reading a value waits for the last step to finish.
        return float(self.logs["loss"])

    def time_per_step(self, steps):
        """Median duration of `steps` individually timed steps, in seconds.

        A compiled step runs synchronously on CPU, and reading the loss makes
        sure of it; the median drops steps hit by a burst of outside load.
        """
        durations = []
        for _ in range(steps):
            start = time.perf_counter()
            self.run(1)
            durations.append(time.perf_counter() - start)
        return statistics.median(durations)


def count_params(model):
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def measure(name, args):
    """{variant: [seconds per step, one per round]} for one model."""
    steps = args.steps or DEFAULT_STEPS.get(name, FALLBACK_STEPS)
    setup_start = time.perf_counter()
    models = build_variants(name, args.seed)
    batch = random_batch(models["standard"], args.batch_size, args.seed)
    steppers = {}
    first_step = {}
    for variant in VARIANTS:
        start = time.perf_counter()
        steppers[variant] = Stepper(models[variant], batch)
        steppers[variant].run(1)  # traces, builds the optimizer, runs one step
        first_step[variant] = time.perf_counter() - start
        loss = steppers[variant].run(WARMUP_STEPS)
        if not np.isfinite(loss):
            print(f"  warning: {name}/{variant} warm-up loss is {loss}")
        print(f"  {name}/{variant}: cold first step (trace + build + step) {first_step[variant]:.1f} s")
    print(
        f"  {name}: cold first-step ratio simplex6/standard {first_step['simplex6'] / first_step['standard']:.2f}, "
        f"line/standard {first_step['line'] / first_step['standard']:.2f} (one build each; the standard one "
        "also pays the process's first trace)"
    )
    params = {variant: count_params(models[variant]) for variant in VARIANTS}
    print(
        f"  {name}: {params['standard']:,} trainable parameters (line {params['line']:,}, "
        f"simplex6 {params['simplex6']:,}); setup {time.perf_counter() - setup_start:.1f} s; "
        f"timing {args.rounds} rounds x {steps} steps"
    )
    order_rng = random.Random(args.seed)
    times = {variant: [] for variant in VARIANTS}
    timing_start = time.perf_counter()
    for round_index in range(args.rounds):
        order = list(VARIANTS)
        order_rng.shuffle(order)
        for variant in order:
            times[variant].append(steppers[variant].time_per_step(steps))
        summary = "  ".join(f"{v} {times[v][-1] * 1e3:.0f}" for v in VARIANTS)
        print(f"  round {round_index + 1:2d}/{args.rounds}: ms/step {summary}   (order {','.join(order)})")
    print(f"  {name}: timed in {time.perf_counter() - timing_start:.0f} s")
    if args.first_step_rounds:
        measure_first_steps(name, args, batch, order_rng)
    return times


def first_step_time(name, variant, seed, batch):
    """Seconds from a freshly converted and compiled model to the end of its first step."""
    model = build_variant(name, variant, seed)
    start = time.perf_counter()
    Stepper(model, batch).run(1)  # traces, builds the optimizer, runs one step
    return time.perf_counter() - start


def measure_first_steps(name, args, batch, order_rng):
    """First-step time of fresh builds, variants interleaved; checks simplex6 / standard."""
    times = {variant: [] for variant in VARIANTS}
    for _ in range(args.first_step_rounds):
        order = list(VARIANTS)
        order_rng.shuffle(order)
        for variant in order:
            times[variant].append(first_step_time(name, variant, args.seed, batch))
    medians = {variant: statistics.median(values) for variant, values in times.items()}
    per_round = {
        variant: statistics.median(t / s for t, s in zip(times[variant], times["standard"])) for variant in VARIANTS
    }
    print(
        f"  {name}: first step of fresh builds ({args.first_step_rounds} interleaved rounds), median s: "
        + ", ".join(f"{variant} {medians[variant]:.2f}" for variant in VARIANTS)
    )
    ratio = medians["simplex6"] / medians["standard"]
    met = ratio <= FIRST_STEP_GOAL
    print(
        f"  {'MET   ' if met else 'MISSED'} {name}: first-step ratio simplex6/standard {ratio:.2f} "
        f"{'<=' if met else '>'} {FIRST_STEP_GOAL} (per-round median {per_round['simplex6']:.2f}); "
        f"line/standard {medians['line'] / medians['standard']:.2f} (per-round median {per_round['line']:.2f})"
    )


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def summarize(name, times, batch_size):
    """Rows of the result table of one model."""
    standard = statistics.median(times["standard"])
    rows = []
    for variant in VARIANTS:
        median = statistics.median(times[variant])
        per_round = [t / s for t, s in zip(times[variant], times["standard"])]
        rows.append(
            {
                "model": name,
                "variant": variant,
                "ms": median * 1e3,
                "images_per_s": batch_size / median,
                "ratio": median / standard,
                "paired": statistics.median(per_round),
                "iqr": quartiles(per_round),
                "range": (min(per_round), max(per_round)),
            }
        )
    return rows


def print_table(rows):
    header = (
        f"{'model':<10} {'variant':<9} {'ms/step':>8} {'img/s':>6} {'ratio':>6}   "
        f"{'per-round ratios: median  IQR  min-max':<40}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        line = f"{row['model']:<10} {row['variant']:<9} {row['ms']:8.1f} {row['images_per_s']:6.0f} "
        if row["variant"] == "standard":
            print(line + f"{'1.00':>6}")
            continue
        (q1, q3), (low, high) = row["iqr"], row["range"]
        print(
            line + f"{row['ratio']:6.3f}   {row['paired']:.3f}  {q1:.2f}-{q3:.2f}  {low:.2f}-{high:.2f}"
        )


def print_goals(rows):
    print("\nGoals (ratio of median step times):")
    for row in rows:
        goal = (DENSE_GOALS if row["model"] in DENSE_MODELS else GOALS).get(row["variant"])
        if goal is None:
            continue
        met = row["ratio"] <= goal
        q1, q3 = row["iqr"]
        note = ""
        if q1 <= goal < q3:
            note = "  [middle half of per-round ratios straddles the goal: noisy, rerun with more --rounds]"
        print(
            f"  {'MET   ' if met else 'MISSED'} {row['model']}/{row['variant']}: "
            f"{row['ratio']:.3f} {'<=' if met else '>'} {goal:.2f}{note}"
        )


def peak_rss_child(name, variant, args):
    """Builds and trains one variant for a few steps; prints its peak RSS (MiB) and parameters."""
    model = build_variant(name, variant, args.seed)
    batch = random_batch(base_model(name), args.batch_size, args.seed)  # shapes of the stock model
    stepper = Stepper(model, batch)
    stepper.run(MEMORY_STEPS)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"RESULT {peak:.1f} {count_params(model)}")


def measure_memory(args):
    """Peak RSS of each variant in its own process; checks line against the memory goal."""
    for name in args.models:
        peaks, params = {}, {}
        for variant in VARIANTS:
            command = [sys.executable, os.path.abspath(__file__), "--memory-child", name, variant,
                       "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
            output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
            result = [line for line in output.splitlines() if line.startswith("RESULT")]
            if not result:
                print(f"  {name}/{variant}: failed")
                continue
            _, peak, count = result[0].split()
            peaks[variant], params[variant] = float(peak), int(count)
            print(f"  {name}/{variant}: peak RSS {float(peak):.0f} MiB ({int(count):,} trainable parameters)")
        if "standard" in peaks and "line" in peaks:
            allowance = 0.10 * peaks["standard"] + 3 * (2 - 1) * params["standard"] * 4 / 2**20
            goal = peaks["standard"] + allowance
            met = peaks["line"] <= goal
            print(
                f"  {'MET   ' if met else 'MISSED'} {name}/line peak RSS {peaks['line']:.0f} MiB "
                f"{'<=' if met else '>'} {goal:.0f} MiB (standard {peaks['standard']:.0f} + 10% + 3·(m−1)·params·4 B)"
            )


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        peak_rss_child(*args.memory_child, args)
        return 0
    if args.memory:
        measure_memory(args)
        return 0
    print(
        f"step_time: {datetime.date.today()}  python {platform.python_version()}  "
        f"tensorflow {tf.__version__}  keras {keras.__version__}  tfsubspace {ts.__version__}  "
        f"cpus {os.cpu_count()}  batch {args.batch_size}  rounds {args.rounds}"
    )
    start = time.perf_counter()
    rows = []
    for name in args.models:
        print(f"\n{name}:")
        try:
            times = measure(name, args)
        except Exception as error:  # a measurement: report and carry on
            print(f"  {name}: skipped ({type(error).__name__}: {error})")
            continue
        rows += summarize(name, times, args.batch_size)
        keras.backend.clear_session()

    if rows:
        print(
            f"\nMedian over rounds of the per-round step time (batch {args.batch_size}); ratio = "
            "median / median of standard; per-round ratios = round time / standard's time in that round."
        )
        print_table(rows)
        print_goals(rows)
    print(f"\nTotal time {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
