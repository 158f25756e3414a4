#!/usr/bin/env bash
# Device listing + MirroredStrategy training of cResNet20 (standard and line,
# jit off/on, float32/mixed precision) in one table: see benchmarks/gpu_check.py.
# Tiny sizes on 2 logical CPU devices when no GPU is visible.
#
#   bash benchmarks/gpu_check.sh [--tiny] [--steps N] [--batch-size N] [--width N] ...
#   PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Exit code: 0 if every variant trained, 1 if one failed (its error is in the table).
set -euo pipefail
cd "$(dirname "$0")/.."
# The checkout first on the path: an editable install may point at another one.
export PYTHONPATH=".${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
