"""benchmarks/gpu_check.sh runs on CPU (tiny sizes, 2 logical devices) and prints its whole table.

The small CNN stands in for cResNet20 (`--model small_cnn`): every code path of
the script (devices, MirroredStrategy, jit, mixed precision, the line, the
table and the exit code) runs, and tracing is ~10x cheaper. The cResNet20 run
on CPU is in benchmarks/README.md.
"""

import math
import os
import pathlib
import re
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
ROW = re.compile(r"^((?:standard|line)/jit (?:on|off)/\S+)\s+(.+?)\s{2,}(FAILED|[\d.]+)\s+(\S+)\s+(\S+)")


def run(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(SCRIPT), "--tiny", "--model", "small_cnn", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    rows = {}
    for line in done.stdout.splitlines():
        match = ROW.match(line)
        if match:
            name, devices, speed, ratio, first = match.groups()
            rows[name] = {"devices": devices.strip(), "img/s": speed, "ratio": ratio, "first": first}
    return done, rows


def test_tiny_cpu_run_prints_every_variant_with_finite_ratios():
    done, rows = run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "MirroredStrategy over ['/cpu:0', '/cpu:1']: 2 replicas" in done.stdout
    assert "tensorflow " in done.stdout and "physical devices:" in done.stdout
    expected = {f"{model}/jit {jit}/{precision}" for model in ("standard", "line") for jit in ("off", "on")
                for precision in ("float32", "mixed_float16", "mixed_bfloat16")}
    assert set(rows) == expected
    for name, row in rows.items():
        assert float(row["img/s"]) > 0 and float(row["first"].rstrip("s")) > 0, row
        # jit on logical CPU devices runs on one device (DESIGN §4), and the table says so.
        assert row["devices"].startswith("1 (" if "jit on" in name else "2 mirrored"), row
        if name.startswith("line/"):
            assert math.isfinite(float(row["ratio"])) and float(row["ratio"]) > 0, row
        else:
            assert row["ratio"] == "-"
    assert "12/12 variants ran" in done.stdout


def test_a_failing_variant_is_a_table_row_and_the_exit_code_is_1():
    # Three variants fail at once (before building anything), one runs: cheap.
    failing = ["standard/jit off/float32", "line/jit off/float32", "standard/jit on/float32"]
    done, rows = run("--precisions", "float32", "--fail", ",".join(failing))
    assert done.returncode == 1
    assert set(rows) == set(failing) | {"line/jit on/float32"}
    for name in failing:
        assert rows[name]["img/s"] == "FAILED", rows[name]
    table = done.stdout[done.stdout.index("\nvariant "):]
    assert table.count("RuntimeError: failure requested with --fail") == 3  # each failed row names its error
    assert float(rows["line/jit on/float32"]["img/s"]) > 0
    assert rows["line/jit on/float32"]["ratio"] == "n/a"  # it ran, but has no standard to compare with
    assert "1/4 variants ran" in done.stdout and f"FAILED: {', '.join(failing)}" in done.stdout
