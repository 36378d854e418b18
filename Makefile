# Quick start: `make demo` runs the main job on the embedded data; `make test` runs the test suite.
# Both install aebench first (scripts/install.sh; it keeps an existing torch, e.g. a CUDA build).
PYTHON ?= python3

.PHONY: install demo test benchmark

install:
	PYTHON=$(PYTHON) bash scripts/install.sh

demo: install
	$(PYTHON) -m aebench run --task mnist-sharpness --models ae,vae,wae,pie --budget smoke --out runs/demo

test: install
	$(PYTHON) -m pytest -q

benchmark: install
	$(PYTHON) -m pytest -q --benchmark-enable --benchmark-only tests
