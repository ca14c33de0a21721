"""`accelerate launch --num_processes 2 -m rats_app.train` runs data-parallel (on CPU with --multi_gpu,
accelerate's multi-process launcher; on a CPU-only machine it otherwise starts one process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_two_process_data_parallel_training(tmp_path, tiny_world_model_dir, tiny_world_reward):
    reward_dir = tmp_path / "reward"
    tiny_world_reward.model.save_pretrained(reward_dir)
    tiny_world_reward.tokenizer.save_pretrained(reward_dir)
    out = tmp_path / "run"
    env = {**os.environ, "RATS_SHAPES_REWARD": str(reward_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "rats_app.train", "--output-dir", str(out), f"model={tiny_world_model_dir}", "steps=2",
               "batch_size=1", "teacher_steps=6", "sample_every=0", "lora_rank=2", "device=cpu"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run == {"status": "finished", "step": 2, "processes": 2}
    assert (out / "pytorch_lora_weights.safetensors").exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # written by the main process only
