"""Checks a machine trains subspaces on all its GPUs, with and without XLA and mixed precision.

Prints the TensorFlow and Keras versions and every physical device, builds one
`tf.distribute.MirroredStrategy` over the GPUs, and for each variant of

    {standard, line} x {jit off, jit on} x {float32, mixed precision}

builds cResNet20 (`tfsubspace.models.get_model("cresnet20")`, every batch norm
`synchronized=True` so the replicas share statistics; the line is
`ts.convert(base, ts.Line())`), compiles it with the papers' SGD
(`ts.optimizers.SGD`, lr 0.1, momentum 0.9, L2 weight decay 1e-4 as in
`config.train`) and trains `--steps` steps on synthetic in-memory 32x32x3
batches, timed after `--warmup` steps. One table follows: img/s, the step-time
ratio line/standard at the same (jit, precision), and the first step (trace +
optimizer build + one step).

Without a GPU it runs in tiny mode (`--tiny`, chosen automatically) on 2
logical CPU devices, configured before TensorFlow initialises, so the
MirroredStrategy path runs in CI. Two things differ on CPU, and the table says
which ran where:

- mixed precision runs as "mixed_float16" (what a GPU uses, with loss
  scaling) and also "mixed_bfloat16", the half type CPUs with AVX512_BF16
  compute natively (measured 2.7x float32 here, float16 about float32's speed:
  benchmarks/README.md); `--precisions` can ask for any list;
- jit runs on ONE device: XLA under MirroredStrategy on logical CPU devices
  fails (DESIGN.md §4). `--jit-mirrored` tries it anyway.

A variant that fails prints its error in its row; the others still run, and
the exit code is 1 if any failed (0 otherwise).

Usage::

    bash benchmarks/gpu_check.sh                 # GPU: ~300 steps per variant
    bash benchmarks/gpu_check.sh --tiny          # the CPU check CI runs
    python benchmarks/gpu_check.py --steps 100 --batch-size 256 --precisions float32,mixed_float16
"""

import argparse
import math
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

MODELS = ("standard", "line")
JIT = (False, True)
GPU_PRECISIONS = ("float32", "mixed_float16")
# CPU: the GPU's pair (so CI runs the float16 loss-scaling path) plus bfloat16, this CPU's native half type.
CPU_PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Full size (GPU): 300 timed steps of 128 images per replica, cResNet20 at width 16.
FULL = {"steps": 300, "warmup": 20, "batch_size": 128, "width": 16}
# Tiny (CPU, CI): the smallest sizes that still run every path: 2 steps of 2 images per replica.
TINY = {"steps": 2, "warmup": 1, "batch_size": 2, "width": 2}
CPU_REPLICAS = 2
ZOO = ("cresnet20", "small_cnn")
ERROR_WIDTH = 100


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", default=None,
                        help="tiny sizes (default: on when no GPU is visible)")
    parser.add_argument("--steps", type=int,
                        help=f"timed steps per variant (full {FULL['steps']}, tiny {TINY['steps']})")
    parser.add_argument("--warmup", type=int,
                        help=f"untimed steps after the first (full {FULL['warmup']}, tiny {TINY['warmup']})")
    parser.add_argument("--batch-size", type=int,
                        help=f"images per replica per step (full {FULL['batch_size']}, tiny {TINY['batch_size']})")
    parser.add_argument("--width", type=int, help=f"cResNet20 width (full {FULL['width']}, tiny {TINY['width']})")
    parser.add_argument("--precisions", help="comma-separated Keras dtype policies "
                        f"(GPU: {','.join(GPU_PRECISIONS)}; CPU: {','.join(CPU_PRECISIONS)})")
    parser.add_argument("--model", default="cresnet20", choices=ZOO,
                        help="zoo model on 32x32x3 inputs (default cresnet20; small_cnn: ~3.5x less CPU, for CI)")
    parser.add_argument("--jit-mirrored", action="store_true",
                        help="on CPU, run jit under MirroredStrategy too (fails there: DESIGN.md §4)")
    parser.add_argument("--fail", default="", help=argparse.SUPPRESS)  # variant names, comma-separated, that raise
    args = parser.parse_args(argv)
    for option in ("steps", "batch_size", "width"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def configure_devices():
    """(GPUs, replica device names). Without GPUs, splits the CPU in 2 logical devices before TF initialises."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)  # else TF takes all memory before the first variant
        return gpus, [f"/gpu:{i}" for i in range(len(gpus))]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS)
    return gpus, [f"/cpu:{i}" for i in range(CPU_REPLICAS)]


def variant_name(model, jit, precision):
    return f"{model}/jit {'on' if jit else 'off'}/{precision}"


def build(model_name, width, zoo_name="cresnet20", seed=0):
    """cResNet20 (or `zoo_name`) or its line, every batch norm synchronized across replicas."""
    import keras

    import tfsubspace as ts
    from tfsubspace.evaluation.batchnorm import batchnorm_layers
    from tfsubspace.models import get_model

    keras.utils.set_random_seed(seed)
    base = get_model(zoo_name, input_shape=(32, 32, 3), width=width)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True  # read at call time; without it replicas' statistics diverge (DESIGN §4)
    model = base if model_name == "standard" else ts.convert(base, ts.Line(), seed=seed)
    unsynchronized = [layer.name for layer in batchnorm_layers(model) if not layer.synchronized]
    if unsynchronized:
        raise RuntimeError(f"batch norm not synchronized across replicas: {unsynchronized}")
    return model


def run_variant(strategy, devices, model_name, jit, precision, sizes, fail=None):
    """{"img/s", "first_step", "loss"} of one variant, trained under `strategy`."""
    import keras

    import tfsubspace as ts

    if variant_name(model_name, jit, precision) in (fail or "").split(","):
        raise RuntimeError("failure requested with --fail")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        replicas = strategy.num_replicas_in_sync
        global_batch = sizes["batch_size"] * replicas
        rng = np.random.default_rng(0)
        x = rng.random((global_batch, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, size=(global_batch,), dtype=np.int64)
        with strategy.scope():
            model = build(model_name, sizes["width"], sizes["model"])
            # Under "mixed_float16" compile wraps the optimizer in LossScaleOptimizer.
            model.compile(
                optimizer=ts.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-4, weight_decay_mode="l2"),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit,
            )
            # Optimizer slots made here, not inside the first traced step: created there,
            # under MirroredStrategy, they become placeholders of a tf.cond that nobody
            # feeds ("You must feed a value for placeholder tensor"). `fit` builds them
            # ahead too.
            model.optimizer.build(model.trainable_variables)
        # The same global batch every step, split over the replicas as `fit` does.
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(global_batch, drop_remainder=True)
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        start = time.perf_counter()
        model.make_train_function()
        logs = model.train_function(iterator)
        float(logs["loss"])  # reading a value waits for the step
        first_step = time.perf_counter() - start
        for _ in range(sizes["warmup"]):
            logs = model.train_function(iterator)
        float(logs["loss"])
        start = time.perf_counter()
        for _ in range(sizes["steps"]):
            logs = model.train_function(iterator)
        loss = float(logs["loss"])
        elapsed = time.perf_counter() - start
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} after {sizes['steps']} steps")
        return {"img/s": sizes["steps"] * global_batch / elapsed, "first_step": first_step, "loss": loss}
    finally:
        keras.mixed_precision.set_global_policy(previous)


def table(rows):
    """The result table: one line per variant, the line/standard ratio on the line rows."""
    header = f"{'variant':34s} {'devices':26s} {'img/s':>9s} {'line/std':>9s} {'first step':>11s}  note"
    lines = [header, "-" * len(header)]
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        devices = row["devices"]
        if "error" in row:
            lines.append(f"{row['name']:34s} {devices:26s} {'FAILED':>9s} {'-':>9s} {'-':>11s}  {row['error']}")
            continue
        ratio = "-"
        if row["model"] == "line":
            standard = by_name.get(variant_name("standard", row["jit"], row["precision"]))
            if standard is None or "error" in standard:
                ratio = "n/a"
            else:
                # Step-time ratio: how much longer a line step takes than a standard one.
                ratio = f"{standard['img/s'] / row['img/s']:.3f}"
        lines.append(f"{row['name']:34s} {devices:26s} {row['img/s']:9.1f} {ratio:>9s} "
                     f"{row['first_step']:10.1f}s  {row.get('note', '')}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    gpus, devices = configure_devices()  # before anything initialises TensorFlow
    import keras

    tiny = (not gpus) if args.tiny is None else args.tiny
    sizes = dict(TINY if tiny else FULL, model=args.model)
    for key in ("steps", "warmup", "batch_size", "width"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    precisions = (args.precisions.split(",") if args.precisions
                  else list(GPU_PRECISIONS if gpus else CPU_PRECISIONS))
    print(f"python {sys.version.split()[0]}, tensorflow {tf.__version__}, keras {keras.__version__}")
    print("physical devices:")
    for device in tf.config.list_physical_devices():
        print(f"  {device.name} ({device.device_type})")
    mirrored = tf.distribute.MirroredStrategy(devices)
    print(f"MirroredStrategy over {devices}: {mirrored.num_replicas_in_sync} replicas; "
          f"{'tiny' if tiny else 'full'} sizes {sizes} (batch per replica)")
    # One MirroredStrategy for the whole process: a second one reuses collective
    # instance keys and aborts (tests/test_distributed.py).
    single = tf.distribute.OneDeviceStrategy(devices[0])
    if not gpus and not args.jit_mirrored:
        print("jit on CPU runs on one device: XLA under MirroredStrategy on logical CPU devices fails "
              "(DESIGN.md §4); --jit-mirrored tries it.")
    if not gpus and "mixed_bfloat16" in precisions:
        print("mixed_bfloat16 runs on CPU too: bfloat16 is the CPU's native half type (AVX512_BF16); "
              "float16 there runs at about float32's speed.")
    rows = []
    total_start = time.perf_counter()
    for jit in JIT:
        for precision in precisions:
            for model_name in MODELS:
                one_device = jit and not gpus and not args.jit_mirrored
                strategy = single if one_device else mirrored
                name = variant_name(model_name, jit, precision)
                row = {"name": name, "model": model_name, "jit": jit, "precision": precision,
                       "devices": (f"1 ({devices[0]}, jit: §4)" if one_device
                                   else f"{strategy.num_replicas_in_sync} mirrored")}
                try:
                    row.update(run_variant(strategy, devices, model_name, jit, precision, sizes, args.fail))
                    print(f"  {name}: {row['img/s']:.1f} img/s, first step {row['first_step']:.1f} s, "
                          f"loss {row['loss']:.3f}", flush=True)
                except Exception as error:  # noqa: BLE001 - a failed variant is a row, not the end
                    message = " ".join(f"{type(error).__name__}: {error}".split())
                    row["error"] = message[:ERROR_WIDTH] + ("..." if len(message) > ERROR_WIDTH else "")
                    print(f"  {name}: FAILED\n{traceback.format_exc(limit=3)}", flush=True)
                rows.append(row)
    print()
    print(table(rows))
    failed = [row["name"] for row in rows if "error" in row]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} variants ran in {time.perf_counter() - total_start:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
