"""MirroredStrategy on 2 logical CPU devices trains exactly like one device.

This protects three things at once: the sampler gives every replica the same α
and pair, the cos² penalty is scaled so it counts once after the gradient
all-reduce (a hand-added penalty would count twice), and synchronized batch norm
sees the global batch. Runs in a subprocess: logical devices must be configured
before TensorFlow initialises.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import tfsubspace as ts

    def build(shape, sampling):
        base = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(synchronized=True),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4),
        ])
        # A large beta: a penalty counted twice would show at once.
        model = ts.convert(base, shape, beta=20.0, sampling=sampling, seed=3)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8, 8, 1)).astype("float32")
    y = (np.arange(128) % 4).astype("int64")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    # One strategy for the whole process: a second MirroredStrategy reuses
    # collective instance keys and aborts with a shape mismatch.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {}
    for name, shape, sampling in [("line", ts.Line(), "per_batch"), ("simplex", ts.Simplex(3), "per_layer")]:
        keras.utils.set_random_seed(0)
        single = build(shape, sampling)
        initial = [w.numpy() for w in single.weights]
        single_logs = single.fit(data, epochs=2, verbose=0).history
        with strategy.scope():
            mirrored = build(shape, sampling)
            mirrored.set_weights(initial)
        mirrored_logs = mirrored.fit(data, epochs=2, verbose=0).history
        result[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "max_weight_diff": max(float(np.abs(a.numpy() - b.numpy()).max())
                                   for a, b in zip(single.weights, mirrored.weights)),
            "moved": max(float(np.abs(a - b.numpy()).max()) for a, b in zip(initial, single.weights)),
            "single_loss": single_logs["loss"], "mirrored_loss": mirrored_logs["loss"],
            "single_cos2": single_logs["cos2"], "mirrored_cos2": mirrored_logs["cos2"],
        }
    json.dump(result, open(sys.argv[1], "w"))
    """
)


def test_mirrored_strategy_matches_single_device_training(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(SCRIPT)
    out = tmp_path / "result.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, str(script), str(out)], check=True, env=env, timeout=600)
    result = json.loads(out.read_text())
    for name, run in result.items():
        assert run["replicas"] == 2
        assert run["moved"] > 1e-3, f"{name}: training did not change the weights"
        assert run["max_weight_diff"] < 1e-5, f"{name}: {run['max_weight_diff']}"
        for a, b in zip(run["single_loss"], run["mirrored_loss"]):
            assert abs(a - b) < 1e-4 * max(1.0, abs(a)), (name, run)
        for a, b in zip(run["single_cos2"], run["mirrored_cos2"]):
            assert abs(a - b) < 1e-5, (name, run)
