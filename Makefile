# Every target creates .venv on first use and installs what it needs; nothing else is assumed
# but a Python 3.11+ interpreter on PATH (override with `make PYTHON=python3.12 ...`).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test test-fast lint typecheck coverage kernels-as-python bench hostile soak clean \
	lock image image-test

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# The evaluation client (clients/python, its own package) goes in too: tests/client runs it.
$(VENV)/.dev: $(VENV)/.runtime clients/python/pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]' -e './clients/python[parquet]'
	touch $@

run: $(VENV)/.runtime  ## set up and serve on $(HOST):$(PORT)
	$(PY) -m service --host $(HOST) --port $(PORT)

# mypy runs beside a warm-up that compiles the service's kernels into numba's cache (in the
# checkout's __pycache__, as the tests use it): the suite then loads them instead of compiling
# them under coverage, which doubles numba's compile time (~70 s alone, ~125 s traced).
test: $(VENV)/.dev  ## set up; lint, format, types; the whole suite under coverage, with its floor
	$(PY) -m ruff check service tests bench clients
	$(PY) -m ruff format --check service tests bench clients
	$(PY) -c "import service.losses; from service.app import warm_all; warm_all()" & warming=$$!; \
		$(PY) -m mypy; typed=$$?; wait $$warming; warmed=$$?; \
		test $$typed -eq 0 && test $$warmed -eq 0
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest
	$(MAKE) --no-print-directory kernels-as-python
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

# The kernels' lines count only when they run as Python (NUMBA_DISABLE_JIT=1, as stumpy does):
# the kernel, property, expression, score and compute tests run once more that way, under
# coverage. Tests marked `compiled` need IEEE inf and NaN where Python raises (numba's
# error_model="numpy"); the JSON reader's tests need numba intrinsics that have no Python form.
kernels-as-python: $(VENV)/.dev
	NUMBA_DISABLE_JIT=1 HYPOTHESIS_PROFILE=fast $(PY) -m coverage run -m pytest -q \
		-m "not system and not slow and not compiled" \
		tests/kernels tests/properties tests/reference tests/expressions tests/scores tests/compute

coverage: $(VENV)/.dev  ## the suite under coverage, kernels included (make test does this too)
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest -m "not system"
	$(MAKE) --no-print-directory kernels-as-python
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

typecheck: $(VENV)/.dev  ## mypy over service/ (make test does this too)
	$(PY) -m mypy

test-fast: $(VENV)/.dev  ## the tests that start no process and are not slow, fewer Hypothesis examples (< 1 min)
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-fast} $(PY) -m pytest -m "not system and not slow"

bench: $(VENV)/.runtime  ## kernel benchmarks: each kernel against vectorised NumPy, same run
	$(PY) -m bench.kernels
	$(PY) -m bench.structured
	$(PY) -m bench.http
	$(PY) -m bench.grpc

hostile: $(VENV)/.dev  ## issue 11's hostile clients against a fresh server: memory, stalls, latency (~4 min)
	$(PY) -m bench.hostile

soak: $(VENV)/.dev  ## five minutes at ~80 % of measured capacity: errors and RSS (not in make test)
	$(PY) -m bench.soak

# ---- the image -----------------------------------------------------------------------------
# IMAGE is the tag `make image` gives; PYTHON_IMAGE, when set, replaces the Dockerfile's base
# (pinned by digest there), e.g. the registry-free stand-in deploy/standin/build.sh builds:
#   make image PYTHON_IMAGE=loss-service-standin/python:bookworm
# DOCKER_BUILDKIT=0: the legacy builder, which needs no frontend image from a registry (BuildKit
# would pull the `# syntax=` one); with Docker Hub reachable, plain `docker build .` is the same.
IMAGE        ?= loss-service:latest
PYTHON_IMAGE ?=

image:  ## build the image (docker build; the Dockerfile's base unless PYTHON_IMAGE is given)
	DOCKER_BUILDKIT=0 docker build $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) -t $(IMAGE) .

# Builds the stand-in base and the image, runs it: tests/system/test_image.py (a Docker engine
# started for the run and stopped after it, when none is running; root and Debian's docker.io,
# which .ci/run installs; skips, saying why, without them).
image-test: $(VENV)/.dev  ## build and run the image for real: non-root, read-only, healthy, failover (~4 min)
	RUN_IMAGE_TESTS=1 $(PY) -m pytest -p no:cacheprovider -m system tests/system/test_image.py

# requirements.lock, the image's exact dependencies with their hashes, from pyproject.toml's
# ranges (and its build backend's), for every platform and Python >= 3.11. Run it after changing
# a dependency, or to take newer releases; commit the result.
lock: $(VENV)/.dev  ## refresh requirements.lock (uv pip compile --generate-hashes)
	$(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
		| $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
			--custom-compile-command 'make lock' --index-url https://pypi.org/simple \
			-o requirements.lock pyproject.toml -

lint: $(VENV)/.dev
	$(PY) -m ruff check service tests bench clients
	$(PY) -m ruff format --check service tests bench clients

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .mypy_cache .coverage .coverage.* htmlcov
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
