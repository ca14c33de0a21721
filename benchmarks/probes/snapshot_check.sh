#!/bin/bash
# A pretraining run's latest EMA checkpoint with a chosen VAE, on 64 fresh training and 64 held-out images.
#   benchmarks/probes/snapshot_check.sh WORK_DIR VAE_DIR        (about 2.5 min on 2 CPU cores)
set -e
PY="${PYTHON:-python}"; export PYTHONPATH=.
out=runs/snapshot-$(basename "$1")
$PY -m rats_app.worlds.shapes.pretrain --work-dir "$1" --stage export --out "$out" | tail -1
cp "$2/config.json" "$2/diffusion_pytorch_model.safetensors" "$out/vae/"  # the config too: its latent scale and shift
$PY benchmarks/probes/cfg_scan.py "$out" 3 64
$PY benchmarks/probes/cfg_scan.py "$out" 3 64 heldout
