"""`accelerate launch --num_processes 2 -m rats_app.train` runs data-parallel (on CPU with --multi_gpu,
accelerate's multi-process launcher; on a CPU-only machine it otherwise starts one process), and
with the FSDP config example it shards the transformer (FSDP2 on gloo) and learns the same LoRA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
RUN_ARGS = ["steps=2", "batch_size=1", "teacher_steps=6", "sample_every=0", "lora_rank=2", "device=cpu",
            "checkpoint_every=1"]


def _launch(launcher: list[str], out: Path, model: Path, env: dict, *extra: str, resume: bool = False) -> None:
    command = [sys.executable, "-m", "accelerate.commands.launch", *launcher, "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rats_app.train", "--output-dir", str(out),
               *(["--resume"] if resume else []), f"model={model}", *RUN_ARGS, *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_process_ddp_and_fsdp_training(tmp_path, tiny_world_model_dir, tiny_world_reward):
    reward_dir = tmp_path / "reward"
    tiny_world_reward.model.save_pretrained(reward_dir)
    tiny_world_reward.tokenizer.save_pretrained(reward_dir)
    env = {**os.environ, "RATS_SHAPES_REWARD": str(reward_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    ddp, fsdp = tmp_path / "ddp", tmp_path / "fsdp"
    _launch(["--multi_gpu", "--num_processes", "2"], ddp, tiny_world_model_dir, env)
    _launch(["--config_file", str(REPO / "configs" / "accelerate-fsdp.yaml")], fsdp, tiny_world_model_dir, env)
    for out in (ddp, fsdp):
        assert json.loads((out / "run.json").read_text()) == {"status": "finished", "step": 2, "processes": 2}
        assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # written by the main process only
    # Same prompts, noise and averaged gradients: sharding changes memory, not the result.
    a = load_file(ddp / "pytorch_lora_weights.safetensors")
    b = load_file(fsdp / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert any(v.abs().sum() > 0 for k, v in b.items() if "lora_B" in k)
    # The FSDP checkpoint holds full tensors: it resumes under FSDP, one step more.
    _launch(["--config_file", str(REPO / "configs" / "accelerate-fsdp.yaml")], fsdp, tiny_world_model_dir, env,
            "steps=3", resume=True)
    assert json.loads((fsdp / "run.json").read_text())["step"] == 3
