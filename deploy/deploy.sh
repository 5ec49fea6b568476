#!/usr/bin/env bash
# Create the work pools and the `gpu` tag concurrency limit, then register every deployment in
# deploy/prefect.yaml against the server at PREFECT_API_URL. Idempotent: safe to re-run after edits.
#   PREFECT   prefect executable (default .venv/bin/prefect)
#   GPU_SLOTS how many `gpu`-tagged task runs may run at once across all workers (default 1: one GPU host)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFECT=${PREFECT:-.venv/bin/prefect}
GPU_SLOTS=${GPU_SLOTS:-1}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
"$PREFECT" --no-prompt work-pool create vr-cpu --type process --overwrite
"$PREFECT" --no-prompt work-pool create vr-gpu --type process --overwrite
"$PREFECT" --no-prompt work-pool create vr-gpu-k8s --type kubernetes --overwrite \
    --base-job-template deploy/k8s-gpu-pool.json
# Every task that touches an accelerator is tagged `gpu` (tasks/*.py); this limit admits GPU_SLOTS of them.
"$PREFECT" --no-prompt concurrency-limit create gpu "$GPU_SLOTS"
"$PREFECT" --no-prompt deploy --prefect-file deploy/prefect.yaml --all
