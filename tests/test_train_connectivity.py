"""The training binary's connectivity methods ("connect", "spro") end to end on a small slice of real Fashion-MNIST."""

import json
import os

import conftest
import pytest

from tfsubspace import checkpointing, config as config_lib
from tfsubspace.experiments import vertex_checkpoints

SMALL = [
    "--config.train.epochs=2",
    "--config.train.warmup_epochs=1",
    "--config.dataset.train_subset=512",
    "--config.eval.batchnorm_steps=1",
    "--config.model.name=mlp",
    "--config.eval.export=False",
]
CONNECT_SMALL = [
    "--config.connect.epochs=2",
    "--config.connect.points=5",
    "--config.connect.train_examples=256",
    "--config.connect.ensemble_points=3",
    "--config.connect.plane_grid=3",
    "--config.connect.plane_examples=200",
    "--config.connect.fge_cycles=2",
    "--config.connect.fge_cycle_epochs=1",
]
SPRO_SMALL = [
    "--config.spro.num_models=2",
    "--config.spro.epochs_per_vertex=1",
    "--config.spro.samples=2",
    "--config.spro.ensemble_samples=2",
]
PNG = b"\x89PNG\r\n\x1a\n"


def run_binary(config_name, workdir, *overrides, check=True):
    return conftest.run_binary(config_name, workdir, *SMALL, *overrides, check=check)


def test_connect_writes_table2_summary_plane_png_curve_ensembles_and_fge(tmp_path):
    process = run_binary("fashion_mnist_connect.py", tmp_path, *CONNECT_SMALL)
    results = json.loads((tmp_path / "results.json").read_text())
    connect = results["connect"]
    assert set(connect["curves"]) == {"bezier", "polychain"}
    for name, curve in connect["curves"].items():
        evaluation = curve["evaluation"]
        assert [row["t"] for row in evaluation["rows"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
        assert len(curve["history"]["loss"]) == 2
        summary = evaluation["summary"]["curve"]
        assert summary["length_ratio"] >= 1.0 - 1e-6  # no curve is shorter than the segment
        for metric in ("train_loss", "train_error", "test_nll", "test_error"):
            stats = summary[metric]
            assert stats["min"] <= stats["int"] <= stats["max"]
    # The segment is evaluated once (with the first curve): it depends only on the endpoints.
    assert connect["curves"]["bezier"]["evaluation"]["segment_rows"]
    assert not connect["curves"]["polychain"]["evaluation"]["segment_rows"]
    # Endpoints of both curves are the two trained models: the same metrics at t = 0 and t = 1.
    bezier, polychain = (connect["curves"][n]["evaluation"]["rows"] for n in ("bezier", "polychain"))
    for index in (0, -1):
        assert bezier[index]["test_error"] == pytest.approx(polychain[index]["test_error"])
    names = [row["name"] for row in connect["table_rows"]]
    assert "ensemble of the 2 endpoints" in names and "Bezier at t = 0.5" in names
    assert any(name.startswith("PolyChain: ensemble of 3 points") for name in names)
    fge = results["fge"]
    assert len(fge["collected_at"]) == 2 and len(fge["members"]) == 2
    assert fge["table_rows"][0]["name"].startswith("FGE from endpoint 0: ensemble of 2 snapshots")
    for row in connect["table_rows"] + fge["table_rows"]:
        assert 0.2 < row["accuracy"] <= 1.0 and row["nll"] > 0
    assert (tmp_path / "plane_bezier.png").read_bytes()[:8] == PNG
    assert len(connect["plane"]["loss"]) == 3 and connect["plane"]["curve_coordinates"]
    markdown = (tmp_path / "results.md").read_text()
    for label in ("| Single |", "| Segment | 1.00 |", "| Bezier |", "| PolyChain |", "FGE from endpoint 0"):
        assert label in markdown
    assert "Train loss Int" in process.stdout and os.listdir(tmp_path / "checkpoints" / "curve_bezier")


def test_spro_compares_espro_with_deep_ensemble_and_resumes_from_vertex_checkpoints(tmp_path):
    run_binary("fashion_mnist_espro.py", tmp_path, *SPRO_SMALL)
    results = json.loads((tmp_path / "results.json").read_text())
    spro = results["spro"]
    for key in ("espro", "deep_ensemble"):
        assert 0.2 < spro[key]["accuracy"] <= 1.0 and spro[key]["nll"] > 0 and 0 <= spro[key]["ece"] < 1
    assert len(spro["simplexes"]) == 2
    for simplex in spro["simplexes"]:
        vertices = [entry["vertex"] for entry in simplex["spro_history"]]
        assert vertices == [1, 2]
        assert all(entry["volume_weight"] > 0 for entry in simplex["spro_history"])
        assert len(simplex["points"]) == 2
    names = [row["name"] for row in spro["table_rows"]]
    assert "deep ensemble of the 2 base models" in names
    assert any(name.startswith("ESPRO: 2 simplexes × 3 vertices") for name in names)
    assert "| simplex | vertex | λ_k |" in (tmp_path / "results.md").read_text()
    for index in range(2):
        checkpointing.verify(str(tmp_path / "checkpoints" / f"spro_{index}" / "vertices-00003"), vertex_checkpoints.PARTS)

    # A second run finds every vertex checkpointed: nothing is retrained, the figures are equal.
    process = run_binary("fashion_mnist_espro.py", tmp_path, *SPRO_SMALL)
    assert "Resuming SPRO simplex 1 from 3 vertices" in process.stderr
    again = json.loads((tmp_path / "results.json").read_text())["spro"]
    assert again["espro"] == pytest.approx(spro["espro"])
    assert again["deep_ensemble"] == pytest.approx(spro["deep_ensemble"])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("connect.shapes", ("bezier", "line"), "config.connect.shapes must be a non-empty tuple"),
        ("connect.points", 1, "config.connect.points must be an integer >= 2"),
        ("connect.fge_alpha_2", 0.1, "config.connect.fge_alpha_2 must be < connect.fge_alpha_1"),
        ("connect.learning_rate", 0.0, "config.connect.learning_rate must be > 0 or None"),
        ("spro.num_vertices", 1, "config.spro.num_vertices must be an integer >= 2"),
        ("spro.lmbda", -1.0, "config.spro.lmbda must be a finite number >= 0"),
    ],
)
def test_bad_connectivity_config_values_name_the_key(key, value, message):
    config = config_lib.base_config()
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_lib.validate(config)


def test_connect_and_espro_configs_validate_with_their_methods():
    import importlib.util

    for name, method in (("fashion_mnist_connect.py", "connect"), ("fashion_mnist_espro.py", "spro")):
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(conftest.REPO, "configs", name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config()
        assert config.method == method and config_lib.validate(config) is config
