# Set-up and the two commands the README promises. `make demo` and `make test` set up first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup setup-apt demo test lab bench

APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm chromium libjs-mathjax

# the C emitter builds for Cortex-M and runs under QEMU (DESIGN.md section 6); the book's math renders
# offline from Debian's MathJax; the browser test drives Debian's chromium. Installed when missing
setup-apt:
	@if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
			|| ! command -v chromium >/dev/null || [ ! -f /usr/share/javascript/mathjax/MathJax.js ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

setup: setup-apt
	$(PIP) install -q "torch==$(TORCH_VERSION)"
	$(PIP) install -q --pre "tflite-micro>=0.dev0"
	$(PIP) install -q -e ".[labs,dev]"

demo: setup
	mcunet-lite demo

test: setup
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) benchmarks/graph_build.py
