#!/usr/bin/env bash
# SFT on a CUDA machine in bf16 with ZeRO-2 for each optimizer; prints tokens/s and MFU.
# Never run in CI. Needs the project installed with a CUDA build of torch, e.g.:
#   make install TORCH=torch   (or an existing environment with torch+cuda and deepspeed)
# Usage: bash scripts/gpu_check.sh [--model-path /models/ckpt] [--steps 30] [--seq-len 2048]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" -c "import torch, deepspeed; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'deepspeed', deepspeed.__version__)"
exec "$PY" scripts/gpu_check.py "$@"
