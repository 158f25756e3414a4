r"""Cost of a 21-point sweep vs one training epoch, and how many BN batches are enough.

    .venv/bin/python benchmarks/sweep_cost.py                   # ~10-15 min on 2 cores
    .venv/bin/python benchmarks/sweep_cost.py --epochs 2 --steps 1,5,20 --rounds 1

Trains a line of small CNNs on Fashion-MNIST (the demo's recipe, fewer epochs),
then:

1. Quality: runs `ts.evaluate.sweep` (21 points, pair ensembles) with batch
   norm recomputed on the first S training batches of 128 for each S in
   `--steps`, and once on the full training set; prints per S the largest and
   mean |accuracy difference| to the full pass over the 21 points, and the
   same for NLL.
2. Speed: `--rounds` rounds of [one training epoch, one sweep as the binary
   runs it (test and BN batches of 1000, BN on 3 of them = 3,000 examples)],
   interleaved so both see the same machine load; prints per round sweep
   time / epoch time and their median. Goal: <= 2.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs before measuring")
    parser.add_argument("--steps", default="1,2,5,10,20,50",
                        help="BN batch counts to compare with a full pass ('' skips this part)")
    parser.add_argument("--speed-steps", type=int, default=3,
                        help="BN batches of --eval-batch-size in the timed sweep (the binary's default: 3 x 1000)")
    parser.add_argument("--eval-batch-size", type=int, default=1000, help="test and BN batch size in the timed sweep")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved [epoch, sweep] timing rounds")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def quality(timed_sweep, steps_list, train_size):
    """Prints how far sweeps with few BN batches are from a full-pass sweep."""
    import numpy as np

    print("\n1. BN batches (of 128) vs a full pass, 21-point sweep:", flush=True)
    full, full_seconds = timed_sweep(None)
    full_accuracy = np.array([row["accuracy"] for row in full.rows])
    full_nll = np.array([row["nll"] for row in full.rows])
    print(f"{'batches':>8} {'examples':>9} {'max|Δacc|':>10} {'mean|Δacc|':>11} {'max|Δnll|':>10} {'sweep s':>8}")
    print(f"{'full':>8} {train_size:9d} {0:10.4f} {0:11.4f} {0:10.4f} {full_seconds:8.1f}")
    for steps in steps_list:
        result, seconds = timed_sweep(steps)
        accuracy = np.array([row["accuracy"] for row in result.rows])
        nll = np.array([row["nll"] for row in result.rows])
        print(
            f"{steps:8d} {steps * 128:9d} {np.max(np.abs(accuracy - full_accuracy)):10.4f} "
            f"{np.mean(np.abs(accuracy - full_accuracy)):11.4f} {np.max(np.abs(nll - full_nll)):10.4f} {seconds:8.1f}",
            flush=True,
        )
    print(f"full-pass accuracy along the line: min {full_accuracy.min():.4f}, max {full_accuracy.max():.4f}")


def main():
    args = parse_args()
    import keras
    import numpy as np

    import tfsubspace as ts
    from tfsubspace import data, evaluate
    from tfsubspace.models import get_model

    steps_list = [int(s) for s in args.steps.split(",") if s]
    keras.utils.set_random_seed(args.seed)
    # Test and timed-sweep BN data in batches of --eval-batch-size (as the binary evaluates);
    # the quality study's BN data in training-size batches of 128.
    sets = data.build_datasets("fashion_mnist", batch_size=128, seed=args.seed, eval_batch_size=args.eval_batch_size)
    batchnorm_data = data.build_datasets("fashion_mnist", batch_size=128, seed=args.seed, eval_batch_size=128).train_eval

    base = get_model(args.model, input_shape=sets.input_shape, num_classes=sets.num_classes)
    model = ts.convert(base, ts.Line(), beta=1.0, seed=args.seed)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(f"training {args.model} line for {args.epochs} epochs ...", flush=True)
    model.fit(sets.train, epochs=args.epochs, verbose=2)

    def timed_sweep(steps, bn_data=batchnorm_data):
        start = time.perf_counter()
        result = evaluate.sweep(model, sets.test, batchnorm_data=bn_data, batchnorm_steps=steps)
        return result, time.perf_counter() - start

    if steps_list:
        quality(timed_sweep, steps_list, sets.train_size)

    print(
        f"\n2. Speed: one training epoch vs a 21-point sweep with pairs, BN on {args.speed_steps} batches of "
        f"{args.eval_batch_size} (interleaved rounds):",
        flush=True,
    )
    ratios = []
    for round_index in range(args.rounds):
        start = time.perf_counter()
        model.fit(sets.train, epochs=1, verbose=0)
        epoch_seconds = time.perf_counter() - start
        _, sweep_seconds = timed_sweep(args.speed_steps, sets.train_eval)
        ratios.append(sweep_seconds / epoch_seconds)
        print(f"round {round_index}: epoch {epoch_seconds:6.1f} s, sweep {sweep_seconds:6.1f} s, ratio {ratios[-1]:.2f}")
    median = float(np.median(ratios))
    print(f"\nsweep / epoch ratio: median {median:.2f} over {len(ratios)} rounds -> {'MET' if median <= 2 else 'MISSED'} (goal <= 2)")


if __name__ == "__main__":
    main()
