"""benchmarks/reproduce.py: run keys, the noise rule of its verdicts, and aggregation from the cache."""

import importlib.util
import json
import os

import pytest

from conftest import REPO

_SPEC = importlib.util.spec_from_file_location("reproduce", os.path.join(REPO, "benchmarks", "reproduce.py"))
reproduce = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(reproduce)


def test_a_run_key_depends_on_every_config_value_and_nothing_else():
    a = reproduce.Run("fashion_mnist_line.py", {"train.epochs": 10, "seed": 0}, "a")
    same = reproduce.Run("fashion_mnist_line.py", {"seed": 0, "train.epochs": 10}, "another label")
    other_seed = reproduce.Run("fashion_mnist_line.py", {"train.epochs": 10, "seed": 1}, "a")
    other_decay = reproduce.Run("fashion_mnist_line.py", {"train.epochs": 10, "seed": 0, "train.weight_decay": 5e-4}, "a")
    assert a.key == same.key
    assert len({a.key, other_seed.key, other_decay.key}) == 3
    # The same experiment reached from two config files is one run.
    assert reproduce._standard(10, 0).key == reproduce.Run(
        "fashion_mnist_standard.py", {"seed": 0, "train.epochs": 10, "train.weight_decay": 1e-4}, "b").key


def test_runs_use_the_papers_weight_decay_in_its_l2_form():
    for runs in reproduce.claims("full").values():
        for run in runs:
            assert run.config["train"]["weight_decay_mode"] == "l2"
            assert run.config["train"]["weight_decay"] in (reproduce.PAPER_DECAY, reproduce.STRONG_DECAY)


def test_the_full_suite_has_three_seeds_for_every_claim_and_the_budget_sweep():
    claims = reproduce.claims("full")
    for name, runs in claims.items():
        assert {run.config["seed"] for run in runs} == {0, 1, 2}, name
    epochs = {(run.config["train"]["epochs"], run.config["train"]["weight_decay"]) for run in claims["budget"]}
    assert epochs == {(10, 1e-4), (20, 1e-4), (40, 1e-4), (80, 1e-4), (20, 5e-4), (40, 5e-4)}


def test_a_run_key_ignores_the_config_of_other_methods():
    run = reproduce._standard(10, 0)
    config = json.loads(json.dumps(run.config))
    config["baseline"]["swa_protocol"] = "paper"  # read by method="swa" only
    config["subspace"]["beta"] = 3.0  # read by method="subspace" only
    assert reproduce.run_key(config) == run.key
    config["train"]["learning_rate"] = 0.05
    assert reproduce.run_key(config) != run.key
    swa = reproduce._swa(20, 0, 3)
    changed = json.loads(json.dumps(swa.config))
    changed["baseline"]["swa_protocol"] = "paper"
    assert reproduce.run_key(changed) != swa.key


def test_cached_files_are_matched_by_the_config_stored_in_them(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RESULTS_DIR", str(tmp_path))
    run = reproduce._standard(10, 0)
    (tmp_path / "written-under-an-older-key.json").write_text(json.dumps({"config": run.config, "standard": {"x": 1}}))
    assert run.cached()["standard"] == {"x": 1}
    assert reproduce._standard(10, 1).cached() is None


def _stat(values):
    return reproduce.mean_std(values)


def test_verdicts_compare_the_difference_of_means_with_two_standard_errors():
    ahead = _stat([0.92, 0.921, 0.919])
    behind = _stat([0.90, 0.901, 0.899])
    noisy = _stat([0.91, 0.93, 0.89])
    assert reproduce.verdict(ahead, behind) == "holds"
    assert reproduce.verdict(behind, ahead) == "does not hold"
    assert reproduce.verdict(noisy, behind) == "within noise"
    # Lower is better (ECE): the direction flips.
    assert reproduce.verdict(behind, ahead, higher_is_better=False) == "holds"
    assert reproduce.verdict(_stat([0.92]), behind).startswith("not judged (n < 3; ahead by 0.0200")
    assert reproduce.verdict(None, behind) == "not run"


def test_mean_std_uses_the_sample_standard_deviation():
    stat = _stat([1.0, 2.0, 3.0])
    assert (stat["mean"], stat["std"], stat["n"]) == (2.0, 1.0, 3)


def test_aggregation_reads_only_the_cache_and_writes_verdicts_and_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(reproduce, "RESULTS_MD", str(tmp_path / "RESULTS.md"))
    os.makedirs(tmp_path / "results")
    budget = reproduce.claims("full")["budget"]
    accuracy = {"standard": 0.90, "line": 0.92, "layerwise": 0.91}
    for run in budget:
        if run.config["train"]["epochs"] != 10:
            continue
        seed = run.config["seed"]
        if run.label.startswith("standard"):
            result = {"standard": {"test_accuracy": accuracy["standard"] + seed * 1e-3, "test_ece": 0.02 + seed * 1e-3}}
        else:
            key = "layerwise" if run.label.startswith("layerwise") else "line"
            point = {"accuracy": accuracy[key] + seed * 1e-3, "ece": 0.01 + seed * 1e-3, "nll": 0.3}
            result = {"subspace": {"midpoint": point, "endpoint_ensemble": point}}
        result["reproduce"] = {"seconds": 60.0}
        (tmp_path / "results" / f"{run.key}.json").write_text(json.dumps(result))
    tables, verdicts, missing, cache = reproduce.aggregate("full")
    reproduce.write_results_md(tables, verdicts, missing, cache, "test")
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| full | Fig 4 midpoint acc ≥ standard, 10 ep, wd 0.0001 | holds | holds |" in text
    assert "| full | Fig 10 midpoint ECE < standard, 10 ep, wd 0.0001 | holds | holds |" in text
    assert "92.10 ± 0.10 (n=3)" in text  # the line's midpoint accuracy, mean ± std in %
    assert "- full / budget: 45 runs" in text  # 10-epoch runs done, the other budgets listed as not run
    assert "`.venv/bin/python benchmarks/reproduce.py --suite full --only budget`" in text
    assert "| full | budget | 9/54 | 9.0 |" in text


def test_a_cached_result_of_another_schema_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RESULTS_DIR", str(tmp_path))
    run = reproduce.claims("full")["budget"][0]
    (tmp_path / f"{run.key}.json").write_text(json.dumps({"standard": {}, "reproduce": {"seconds": 1.0}}))
    with pytest.raises(ValueError, match=f"cached result {run.key} .* lacks 'test_accuracy'"):
        reproduce.aggregate("full")


def test_only_must_name_known_claims():
    with pytest.raises(SystemExit):
        reproduce.main(["--only", "fig99", "--list"])
