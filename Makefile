# The two commands of the README. Both set up a virtualenv first.
#   make demo   set-up, then a line of small CNNs on Fashion-MNIST (offline) vs standard training
#   make test   set-up, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: setup data demo test benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,cv,shift]'
	# gRPC request protos for the serving test; its wheel requires `tensorflow`,
	# which would land beside tensorflow-cpu: no deps (BUILD_NOTES.md).
	$(PY) -m pip install --quiet --no-deps tensorflow-serving-api==2.21.0
	touch $@

# Fashion-MNIST offline from Debian; without root or apt the loader falls back to tfds.
data:
	@if [ -d $(FASHION_MNIST_DIR) ] || [ -n "$$TFSUBSPACE_DATA_DIR" ]; then exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	$$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
	  || echo "Could not install dataset-fashion-mnist; tfsubspace will try tfds (needs network)."

demo: setup data
	$(PY) -m tfsubspace.train --config=configs/fashion_mnist_line.py --workdir=runs/demo

test: setup data
	$(PY) -m pytest -q -n 2 tests

benchmark: setup
	$(PY) benchmarks/step_time.py

clean:
	rm -rf $(VENV) runs .pytest_cache
