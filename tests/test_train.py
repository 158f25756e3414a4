"""The training binary end to end on a small slice of real Fashion-MNIST."""

import json
import os
import subprocess
import sys

import conftest
import pytest

import tfsubspace as ts
from tfsubspace import config as config_lib
from tfsubspace import data

SMALL = [
    "--config.train.epochs=2",
    "--config.train.warmup_epochs=1",
    "--config.dataset.train_subset=512",
    "--config.eval.batchnorm_steps=2",
    "--config.model.name=mlp",
    "--config.eval.alphas=(0.0, 0.25, 0.5, 0.75, 1.0)",
]


def run_binary(config_name, workdir, *overrides, check=True):
    return conftest.run_binary(config_name, workdir, *SMALL, *overrides, check=check)


def test_line_config_writes_results_tensorboard_and_servable_midpoint(tmp_path):
    process = run_binary("fashion_mnist_line.py", tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    along = results["subspace"]["along_subspace"]
    assert [row["alpha"] for row in along] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for row in along:
        assert 0.3 < row["accuracy"] <= 1.0  # 10 classes: chance is 0.1
        assert 0 <= row["ece"] < 1 and row["nll"] > 0 and 0 <= row["pair_tv"] <= 1
    for key in ("endpoint_ensemble", "midpoint"):
        assert 0.3 < results["subspace"][key]["accuracy"] <= 1.0
    assert 0.3 < results["standard"]["test_accuracy"] <= 1.0
    history = results["subspace"]["history"]
    assert len(history["cos2"]) == 2 and len(history["l2_0_1"]) == 2 and len(history["cos2_0_1"]) == 2
    assert os.listdir(tmp_path / "tensorboard" / "subspace")
    assert (tmp_path / "savedmodel" / "1" / "saved_model.pb").exists()
    assert "endpoint ensemble" in process.stdout and "standard training" in process.stdout
    for plot in ("accuracy.png", "geometry.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| α = 0.50 |" in (tmp_path / "results.md").read_text()


def test_standard_config_and_simplex_override(tmp_path):
    run_binary("fashion_mnist_standard.py", tmp_path / "standard")
    assert "test_accuracy" in json.loads((tmp_path / "standard" / "results.json").read_text())["standard"]
    run_binary(
        "fashion_mnist_line.py",
        tmp_path / "simplex",
        "--config.subspace.shape=simplex",
        "--config.subspace.num_vertices=3",
        "--config.subspace.sampling=per_layer",
        "--config.train.standard_baseline=False",
        "--config.eval.export=False",
        "--config.eval.random_ensemble=3",
    )
    results = json.loads((tmp_path / "simplex" / "results.json").read_text())
    alphas = [row["alpha"] for row in results["subspace"]["along_subspace"]]
    assert len(alphas) == 4 and alphas[0] == pytest.approx([1 / 3] * 3)
    drawn = results["subspace"]["random_ensemble"]
    assert len(drawn["points"]) == 3 and len(drawn["members"]) == 3
    assert all(min(p) >= 0 and sum(p) == pytest.approx(1.0) for p in drawn["points"])
    assert 0.3 < drawn["ensemble"]["accuracy"] <= 1.0
    assert "ensemble of 3 random points" in (tmp_path / "simplex" / "results.md").read_text()
    assert (tmp_path / "simplex" / "accuracy.png").exists() and (tmp_path / "simplex" / "geometry.png").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.train.epochs=0", "config.train.epochs must be an integer >= 1"),
        ("--config.train.batch_size=0", "config.train.batch_size"),
        ("--config.dataset.name=imagenet", "config.dataset.name must be one of"),
        ("--config.model.name=vgg", "config.model.name must be one of"),
        ("--config.method=mc_dropout", "config.method must be one of"),
        ("--config.seed=4294967296", "config.seed must be an integer in [0, 2**31 - 2], got 4294967296"),
        ("--config.dataset.data_dir=/nonexistent", "data_dir '/nonexistent' does not exist or is not a directory"),
        ("--config.model.kwargs.widht=8", "config.model.kwargs.widht is not an argument of mlp; allowed:"),
        ("--config.train.epoch=3", 'unknown config key \'epoch\' in an override; Did you mean "epochs" instead of "epoch"?'),
        ("--config.model.kwargs=3", "flag --config.model.kwargs=3: Failed to parse '3' as a ConfigDict"),
    ],
)
def test_bad_config_values_fail_in_one_line(tmp_path, override, message):
    process = run_binary("fashion_mnist_line.py", tmp_path, override, check=False)
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("tfsubspace.train: error: ") and message in last, last
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "checkpoints").exists()  # refused before anything trained


def broken_config(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def get_config(:\n")
    return [f"--config={path}", f"--workdir={tmp_path / 'run'}"]


def a_file_as_workdir(tmp_path):
    (tmp_path / "file").write_text("x")
    return [f"--config={conftest.REPO}/configs/fashion_mnist_line.py", f"--workdir={tmp_path / 'file'}"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (lambda tmp: [f"--config={tmp / 'missing.py'}", f"--workdir={tmp}"], "--config file cannot be loaded: "),
        (broken_config, "--config: SyntaxError: invalid syntax (broken.py, line 1)"),
        (a_file_as_workdir, "file exists and is not a directory"),
        (lambda tmp: [f"--config={conftest.REPO}/configs/fashion_mnist_line.py", "--workdir="],
         "--workdir must name a directory, got ''"),
        (lambda tmp: [f"--config={conftest.REPO}/configs/fashion_mnist_line.py"], "both --config"),
    ],
    ids=["missing_config_file", "broken_config_file", "workdir_is_a_file", "empty_workdir", "no_workdir"],
)
def test_bad_config_files_and_workdirs_fail_in_one_line(tmp_path, arguments, message):
    process = subprocess.run([sys.executable, "-m", "tfsubspace.train", *arguments(tmp_path)], env=conftest.BINARY_ENV,
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("tfsubspace.train: error: ") and message in last, last
    assert "Traceback" not in process.stderr


def test_one_epoch_with_the_default_warm_up_and_model_kwargs_override_record_the_data_used(tmp_path):
    process = conftest.run_binary("fashion_mnist_standard.py", tmp_path, "--config.train.epochs=1",
                                  "--config.dataset.train_subset=256", "--config.eval.batchnorm_steps=1",
                                  "--config.model.kwargs.width=4", "--config.eval.export=False")
    assert "train.warmup_epochs=1 clamped to 0: a schedule of 1 epochs" in process.stderr
    assert "Data: fashion_mnist from idx files at" in process.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["model"]["kwargs"] == {"width": 4}
    source = results["data"]
    assert source["origin"] == "idx files" and os.path.isdir(source["path"])
    assert source["sha256"]["train-images-idx3-ubyte"] == data.FASHION_MNIST_SHA256["train-images-idx3-ubyte"]
    assert (source["train_examples"], source["validation_examples"], source["test_examples"]) == (256, 0, 10000)
    import keras

    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.get_layer("stage1_conv").filters == 4  # the width override reached the model


def test_validate_accepts_defaults_and_names_bad_keys():
    config = config_lib.base_config()
    assert config_lib.validate(config) is config
    config.subspace.beta = -1.0
    with pytest.raises(ValueError, match="config.subspace.beta"):
        config_lib.validate(config)


def test_shapes_built_from_config():
    from tfsubspace.experiments.common import build_shape

    config = config_lib.base_config()
    assert build_shape(config.subspace) == ts.Line()
    config.subspace.shape = "bezier"
    config.subspace.num_bends = 2
    assert build_shape(config.subspace) == ts.Bezier(2)
