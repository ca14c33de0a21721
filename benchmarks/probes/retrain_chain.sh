#!/bin/bash
# After a new teacher: export it to assets/shapes-flux, retrain the three students and re-measure.
#   benchmarks/probes/retrain_chain.sh WORK_DIR DECODER_DIR     (about an hour of 2 CPU cores)
# WORK_DIR is a pretraining work dir with a finished transformer; DECODER_DIR an AutoencoderKL dir
# whose decoder is exported with it (the encoder must be the one the transformer's latents came from).
set -ex
PY="${PYTHON:-python}"; export PYTHONPATH=.
W=$1; D=$2
[ -d "$W/vae_decoder" ] && [ ! -d "$W/vae_decoder.before" ] && mv "$W/vae_decoder" "$W/vae_decoder.before"
rm -rf "$W/vae_decoder"; cp -r "$D" "$W/vae_decoder"
$PY -m rats_app.worlds.shapes.pretrain --work-dir "$W" --stage export --out assets/shapes-flux
old=runs/results-before-$(date +%Y%m%d-%H%M); mkdir -p $old
for d in runs/results/teacher-world-* runs/results/presets-world-*; do [ -d $d ] && mv $d $old/; done
# rats alone, timed (the "<= 10 min on 2 cores" figure); then the other two beside the teacher benchmark
/usr/bin/time -v $PY -m rats_app.train --output-dir runs/rats-next > runs/rats-next.log 2>&1
(OMP_NUM_THREADS=1 $PY -m rats_app.train --preset distill --output-dir runs/distill-next > runs/distill-next.log 2>&1) &
(OMP_NUM_THREADS=1 $PY -m rats_app.train --preset reward --output-dir runs/reward-next > runs/reward-next.log 2>&1; \
 OMP_NUM_THREADS=1 $PY benchmarks/shapes_world.py teacher --images 240 > runs/teacher-bench.log 2>&1) &
wait
# the presets table reuses the teacher and baseline images of seeds 0..119
for s in train heldout; do
  for v in teacher/nfe050 baseline/nfe003; do
    mkdir -p runs/results/presets-world-$s/images/$v
    for i in $(seq -f %04g 0 119); do cp runs/results/teacher-world-$s/images/$v/$i.png runs/results/presets-world-$s/images/$v/; done
  done
done
$PY benchmarks/shapes_world.py presets --images 120 --lora rats=runs/rats-next --lora distill=runs/distill-next \
    --lora reward=runs/reward-next > runs/presets-bench.log 2>&1
echo CHAIN DONE
