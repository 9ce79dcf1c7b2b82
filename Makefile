# Two entry points (see README): `make run` (install + the main job) and `make test` (install + every check).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export PYTHONUNBUFFERED := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test lint typecheck pytest ingest-shared real-models bench bench-scale bench-ckernels bench-ctrain bench-cli bench-loader bench-incremental bench-codecs bench-all clean

install: $(STAMP)

$(STAMP): pyproject.toml pipeline/signal/_lanes.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## the main job: the DVC pipeline on the built-in synthetic data (or whatever params.yaml points at)
run: install
	$(BIN)/dvc repro

## every check: lint, types, unit + integration tests (real shared records included; headless Chromium
## for the offline `dvc plots show` test is installed from Debian's packages when missing)
test: install chromium lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## ingest the real public records in ../shared/data (every source kind) into data/shards_shared
SHARED ?= ../shared/data
ingest-shared: install
	$(BIN)/ecgpipe ingest $(shell cat scripts/shared-data.args | sed 's|@SHARED@|$(SHARED)|g')

## the model families on the real records (README "Results on real records"); see scripts/real_models.sh
real-models: install
	scripts/real_models.sh

bench: install
	$(BIN)/python benchmarks/ingest/bench_ingest.py

## ingest throughput with 1, 2, 4 Dask workers (real processes) and local vs S3 (moto) shard reads
bench-scale: install
	$(BIN)/python benchmarks/scale/bench_scale.py

## C kernels vs PyTorch vs ONNX Runtime: batch-1 model latency and per-convolution throughput
bench-ckernels: install
	$(MAKE) -C ckernels all
	mapfile -t A < <(sed 's|@SHARED@|$(SHARED)|; s/ /\n/' scripts/cinc2017.args) && \
	  OMP_NUM_THREADS=1 $(BIN)/python benchmarks/ckernels/bench_models.py --models resnet autoencoder crnn cnn1d "$${A[@]}"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/ckernels/bench_kernels.py

## training steps/s of the autoencoder: C vs PyTorch CPU, 1 thread (benchmarks/ctrain/results.json)
bench-ctrain: install
	$(MAKE) -C ckernels
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/ctrain/bench_ctrain.py

## `ecgpipe --help` start-up: the lazy CLI vs the eager import it replaced
bench-cli: install
	$(BIN)/python benchmarks/cli/bench_cli.py

## training loader: records/s per core, 1 and 2 workers, against the baselines it replaced
bench-loader: install
	$(BIN)/python benchmarks/loader/bench_loader.py

## incremental `ecgpipe ingest` (no-op, one new record): running `ecgpipe server` vs temporary server
bench-incremental: install
	$(BIN)/python benchmarks/cli/bench_incremental.py

## signal codecs on real PTB-XL and CinC 2017 records: size vs raw WFDB, decode speed vs today's codec
bench-codecs: install
	$(BIN)/python benchmarks/codecs/bench_codecs.py

## every benchmark, each printing ours vs its baseline measured in the same run (a fresh clone: ~40 min)
bench-all: bench bench-loader bench-scale bench-ckernels bench-ctrain bench-cli bench-incremental bench-codecs

clean:
	rm -rf data/shards data/shards_smoke data/raw .prefect

## headless Chromium for tests/test_plots_offline.py (Debian's chromium; apt-get needs root or sudo)
.PHONY: chromium
chromium:
	@if [ -x /usr/bin/chromium ]; then /usr/bin/chromium --version; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core && \
	  /usr/bin/chromium --version; fi
