"""The training binary, instrumented for tests/test_distributed_binary.py (run as a script).

Records, without changing what is trained:
- every α the sampler draws, per step and replica, to `$RECORD_DIR/alpha-<task>.txt`;
- every weight (subspace copies, batch-norm moving statistics) right after each
  `common.fit` (before evaluation recomputes batch norm) to `$RECORD_DIR/<tag>-<task>.npz`.
`<task>` is this process's TF_CONFIG task index (0 without TF_CONFIG).
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf
from absl import app

from tfsubspace import sampler, train
from tfsubspace.experiments import common

RECORD_DIR = os.environ["RECORD_DIR"]
TASK = json.loads(os.environ.get("TF_CONFIG", '{"task": {"index": 0}}'))["task"]["index"]
_coefficients = sampler.Sampler.coefficients
_fit = common.fit


def recorded_coefficients(self, step):
    value = _coefficients(self, step)
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context is not None else -1
    tf.print(step, replica, tf.reshape(value, [-1]), summarize=-1,
             output_stream=f"file://{RECORD_DIR}/alpha-{TASK}.txt")
    return value


def recorded_fit(model, datasets, config, workdir, tag, *args, **kwargs):
    result = _fit(model, datasets, config, workdir, tag, *args, **kwargs)
    # Keys numbered: variable paths repeat across subspace layers (`kernel_copies`).
    arrays = {f"{i:03d}:{v.path}": v.numpy() for i, v in enumerate(model.weights)}
    np.savez(os.path.join(RECORD_DIR, f"{tag}-{TASK}.npz"), **arrays)
    return result


if os.environ.get("RECORD_TRACEBACK"):  # debugging: the binary turns errors into one line
    import keras

    keras.config.disable_traceback_filtering()
    _run = train.run

    def traced_run(*args, **kwargs):
        try:
            return _run(*args, **kwargs)
        except Exception:
            import traceback

            traceback.print_exc()
            raise

    train.run = traced_run
sampler.Sampler.coefficients = recorded_coefficients
common.fit = recorded_fit

if __name__ == "__main__":
    sys.argv[0] = "tfsubspace.train"
    app.run(train.main, flags_parser=train.parse_flags)
