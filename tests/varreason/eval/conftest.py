"""The eval tests run offline: lm-eval must not reach the hub (set before lm_eval/datasets are imported)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
