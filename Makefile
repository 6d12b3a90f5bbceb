# Set-up and the two commands the README promises. `make demo` and `make test` set up first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo test lab bench

setup:
	$(PIP) install -q "torch==$(TORCH_VERSION)"
	$(PIP) install -q --pre "tflite-micro>=0.dev0"
	$(PIP) install -q -e ".[labs,dev]"

demo: setup
	mcunet-lite demo

test: setup
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) benchmarks/graph_build.py
