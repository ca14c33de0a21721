#!/bin/bash
# Issue 19's measurements on Shapes World: a faster default run, one LoRA for NFE 1-8, and both
# beside the shipped LoRA on reward and ground truth at NFE 1, 2, 3, 4 and 8 (120 images per row,
# training and held-out prompts).   benchmarks/probes/issue19_chain.sh   (about an hour of 2 cores)
set -ex
PY="${PYTHON:-python}"; export PYTHONPATH=.
mkdir -p runs
# A: the faster default candidate (batched CFG is on by default now; a 12-step teacher grid; 140 steps)
[ -f runs/fast3/run.json ] && grep -q finished runs/fast3/run.json || \
  /usr/bin/time -v $PY -m rats_app.train --output-dir runs/fast3 teacher_steps=12 steps=140 > runs/fast3.log 2>&1
# B: one LoRA for every budget: K drawn per step from 1, 2, 3, 4, 6, 8
[ -f runs/multik/run.json ] && grep -q finished runs/multik/run.json || \
  /usr/bin/time -v $PY -m rats_app.train --output-dir runs/multik "student_steps_choices=[1,2,3,4,6,8]" > runs/multik.log 2>&1
$PY benchmarks/shapes_world.py budgets --images 120 --lora shipped=assets/shapes-flux-rats --lora fast3=runs/fast3 \
    --lora multik=runs/multik > runs/budgets.log 2>&1
$PY benchmarks/ablation.py dynamics assets/shapes-flux-rats runs/fast3 runs/multik > runs/dynamics.log 2>&1
echo CHAIN DONE
