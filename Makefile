# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and installs everything into it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU PyTorch by default (a bare `torch` pulls gigabytes of CUDA packages).
# For a GPU build: make test TORCH_SPEC='torch==2.13.0' PIP_TORCH_ARGS='--index-url https://download.pytorch.org/whl/cu126'
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
# librosa's beat tracker compiles with numba on first use (~30 s); keep that cache across clones.
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/musicgen-pipeline/numba
# Never wait on a hub that cannot be reached; real models come from a local folder or a warm cache.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: install rubberband chromium postgres docker-compose fluidsynth test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(PIP_TORCH_ARGS)
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed rubberband chromium postgres docker-compose fluidsynth

# pyrubberband shells out to the `rubberband` binary (Debian: rubberband-cli).
rubberband:
	@command -v rubberband >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing rubberband-cli (the rubberband binary used for tempo matching)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rubberband-cli; \
	  else \
	    echo "error: the 'rubberband' binary is missing. Install it as root: apt-get install rubberband-cli (Debian/Ubuntu) or brew install rubberband (macOS)" >&2; \
	    exit 1; \
	  fi; }

# The browser tests (musicgen_pipeline_tests/browser) drive the system Chromium through Playwright
# (`playwright` is in the dev extra; no browser download). Debian/Ubuntu package: chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM_PATH" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (the browser the listening-page tests drive headless)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "error: Chromium is missing (the browser tests need it). Install it as root: apt-get install chromium (Debian/Ubuntu), or set CHROMIUM_PATH to a Chromium binary" >&2; \
	    exit 1; \
	  fi; }

# The live deployment tests (musicgen_pipeline_tests/deploy) start a throwaway PostgreSQL cluster
# (initdb on a free port, owned by the `postgres` user when run as root): Debian's postgresql package.
postgres:
	@{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql (server binaries for the live deployment tests' throwaway cluster)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else \
	    echo "error: PostgreSQL server binaries (initdb, pg_ctl) are missing. Install them as root: apt-get install postgresql (Debian/Ubuntu) or brew install postgresql (macOS)" >&2; \
	    exit 1; \
	  fi; }

# `docker-compose config` checks deploy/compose/docker-compose.yml offline (no Docker daemon needed).
docker-compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing docker-compose (validates deploy/compose/docker-compose.yml offline)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; \
	  else \
	    echo "error: docker-compose is missing. Install it as root: apt-get install docker-compose (Debian/Ubuntu)" >&2; \
	    exit 1; \
	  fi; }
# The realistic seam fixtures (musicgen_pipeline_tests/realistic_music.py) are MIDI rendered with
# fluidsynth and the General MIDI soundfont FluidR3_GM (Debian: fluidsynth, fluid-soundfont-gm).
fluidsynth:
	@if command -v fluidsynth >/dev/null 2>&1 && { [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || [ -f /usr/share/soundfonts/FluidR3_GM.sf2 ]; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing fluidsynth + fluid-soundfont-gm (renders the realistic seam test fixtures)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fluidsynth fluid-soundfont-gm; \
	else \
	  echo "error: fluidsynth or the FluidR3_GM soundfont is missing (the realistic seam tests render MIDI with them). Install as root: apt-get install fluidsynth fluid-soundfont-gm (Debian/Ubuntu) or brew install fluid-synth plus a GM soundfont (macOS)" >&2; \
	  exit 1; \
	fi

lint: install
	$(VENV)/bin/ruff check musicgen_pipeline musicgen_pipeline_tests benchmarks
	$(VENV)/bin/ruff format --check musicgen_pipeline musicgen_pipeline_tests benchmarks

test: install
	@mkdir -p "$(NUMBA_CACHE_DIR)"
	$(VENV)/bin/ruff check musicgen_pipeline musicgen_pipeline_tests benchmarks
	$(VENV)/bin/pytest

demo: install
	@mkdir -p "$(NUMBA_CACHE_DIR)"
	$(VENV)/bin/musicgen-pipeline demo

bench: install
	$(PY) benchmarks/bench_transitions.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
