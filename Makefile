# Two commands: `make demo` (tiny EM flow end to end) and `make test` (the test suite, as CI runs it).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_LOCAL_STORAGE_PATH ?= $(CURDIR)/.prefect/storage
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test seeds clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: install
	$(PY) -m flows.vr_em --profile tiny

test: install
	$(PY) -m pytest -ra

# EM vs baselines over three seeds (README's table): about 3 x the demo's time.
seeds: install
	$(PY) -m flows.vr_em --profile tiny --seeds 0 1 2

clean:
	rm -rf artifacts results .prefect
