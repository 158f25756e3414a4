"""Reports: results.json round-trips, the Markdown table holds every number, plots are written."""

import json

import numpy as np
import pytest
from PIL import Image

from tfsubspace import reporting as report


def _scores(accuracy):
    return {"accuracy": accuracy, "nll": 1 - accuracy, "ece": accuracy / 100}


def _line_results(with_references=True):
    rows = []
    for alpha in np.linspace(0, 1, 5).round(10).tolist():
        rows.append({"alpha": alpha, **_scores(0.8 + 0.1 * alpha * (1 - alpha)),
                     "pair_accuracy": 0.86, "pair_nll": 0.3, "pair_ece": 0.01, "pair_tv": abs(1 - 2 * alpha) / 10})
    results = {
        "config": {"seed": 0},
        "subspace": {
            "shape": "Line()",
            "along_subspace": rows,
            "midpoint": _scores(0.825),
            "endpoint_ensemble": _scores(0.861),
            "history": {"loss": [2.0, 1.0, 0.5], "l2_0_1": [3.0, 5.0, 6.0], "cos2_0_1": [0.2, 0.01, 0.001],
                        "l2_mean": [3.0, 5.0, 6.0], "cos2_mean": [0.2, 0.01, 0.001]},
        },
    }
    if with_references:
        results["standard"] = {"test_accuracy": 0.8432, "test_nll": 0.41, "test_ece": 0.012}
        results["standard_ensemble"] = {"size": 2, **_scores(0.8765)}
    return results


def test_report_writes_json_markdown_and_readable_plots(tmp_path):
    results = _line_results()
    paths = report.report(results, tmp_path / "out", title="fashion_mnist_line")
    assert json.loads(open(paths["json"]).read()) == results
    markdown = open(paths["markdown"]).read()
    assert markdown.startswith("# fashion_mnist_line")
    for value in ("0.8432", "0.8765", "0.8610", "0.8250", "| α = 0.50 | 0.8250 |", "standard ensemble of 2"):
        assert value in markdown
    for key in ("accuracy_plot", "geometry_plot"):
        with Image.open(paths[key]) as image:
            assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 400
            # A readable plot is not blank: many distinct colours (lines, text, legend).
            assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 50


def test_markdown_rows_follow_the_sweep_order_and_skip_absent_references():
    results = _line_results(with_references=False)
    lines = report.markdown_table(results).splitlines()
    body = [line for line in lines if line.startswith("| α")]
    assert [line.split("|")[1].strip() for line in body] == ["α = 0.00", "α = 0.25", "α = 0.50", "α = 0.75", "α = 1.00"]
    assert "standard" not in "\n".join(lines)
    assert body[0].split("|")[5].strip() == "0.8600"  # pair accuracy column


def test_simplex_points_are_named_center_vertex_random():
    rows = [{"alpha": a} for a in ([1 / 3] * 3, [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.5, 0.3], [0.6, 0.1, 0.3])]
    assert report._simplex_point_names(rows) == ["center", "vertex 0", "vertex 2", "random 0", "random 1"]


def test_simplex_report_has_no_pair_columns_and_plots(tmp_path):
    rows = [{"alpha": a, **_scores(0.8)} for a in ([0.5, 0.5], [1.0, 0.0], [0.0, 1.0])]
    results = {"subspace": {"shape": "Simplex(num_vertices=2)", "along_subspace": rows,
                            "midpoint": _scores(0.8), "endpoint_ensemble": _scores(0.82), "history": {}}}
    paths = report.report(results, tmp_path, title="simplex")
    assert "ensemble with 1-α" not in open(paths["markdown"]).read()
    assert "accuracy_plot" in paths and "geometry_plot" not in paths  # no geometry in the history


def test_report_rejects_results_without_a_method():
    with pytest.raises(ValueError, match="`results` must be a dict with at least one method's entry"):
        report.report({"config": {}}, "/tmp/unused")


def test_plot_geometry_names_the_missing_callback(tmp_path):
    with pytest.raises(ValueError, match="SubspaceGeometry"):
        report.plot_geometry({"loss": [1.0]}, tmp_path / "g.png", "t")


def test_other_methods_add_their_rows_and_sections(tmp_path):
    results = {"swa": {"table_rows": [{"name": "SWA", **_scores(0.9012)}, {"name": "SWAG (6 samples)", **_scores(0.9034)}],
                       "markdown": ["### Curve\n\n| t | loss |\n|---|---|\n| 0 | 1 |"]}}
    paths = report.report(results, tmp_path, title="swa")
    markdown = open(paths["markdown"]).read()
    assert "| SWA | 0.9012 |" in markdown and "| SWAG (6 samples) | 0.9034 |" in markdown
    assert "### Curve" in markdown and "accuracy_plot" not in paths
