"""The generation CLI contract: numbering, seeds, pixel identity with plain diffusers, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from rats_app.generate import main

PROMPTS = [
    "a small red circle at the top left on a white background",
    "a large blue triangle at the center on a gray background",
    "a small yellow square at the bottom right on a black background",
]


def _plain_diffusers(model_dir, prompt, nfe, seed):
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    defaults = json.loads((model_dir / "call_defaults.json").read_text())
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(prompt, num_inference_steps=nfe, height=64, width=64, generator=generator, **defaults).images[0]


@pytest.mark.parametrize("nfe", [1, 3])
def test_prompts_file_matches_plain_flux_pipeline(tmp_path, tiny_world_model_dir, nfe):
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text(PROMPTS[0] + "\n\n" + PROMPTS[1] + "\n  \n" + PROMPTS[2] + "\n")
    out = tmp_path / "out"
    code = main(["--prompts-file", str(prompts_file), "--out-dir", str(out), "--nfe", str(nfe),
                 "--seed", "7", "--model", str(tiny_world_model_dir), "--batch-size", "2"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000.png", "0001.png", "0002.png"]
    for i, prompt in enumerate(PROMPTS):
        ours = np.asarray(Image.open(out / f"{i:04d}.png").convert("RGB")).astype(int)
        ref = np.asarray(_plain_diffusers(tiny_world_model_dir, prompt, nfe, 7 + i)).astype(int)
        assert np.abs(ours - ref).max() <= 3


def test_single_prompt_is_deterministic(tmp_path, tiny_world_model_dir):
    args = ["--prompt", PROMPTS[0], "--nfe", "2", "--seed", "3", "--model", str(tiny_world_model_dir)]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize("case, message", [
    ("missing", "prompts file not found"),
    ("empty", "no prompts"),
    ("nfe0", "between 1 and 1000"),
    ("nfe1001", "between 1 and 1000"),
    ("unknown_word", "unknown word 'hexagon'"),
    ("unwritable", "cannot write to output directory"),
    ("bad_lora", "LoRA not found"),
])
def test_bad_input_gives_one_line_error(tmp_path, tiny_world_model_dir, capsys, case, message):
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text(PROMPTS[0] + "\n")
    out = tmp_path / "out"
    args = {"--prompts-file": str(prompts_file), "--out-dir": str(out), "--nfe": "3",
            "--model": str(tiny_world_model_dir)}
    extra = []
    if case == "missing":
        args["--prompts-file"] = str(tmp_path / "nope.txt")
    elif case == "empty":
        prompts_file.write_text("\n  \n")
    elif case.startswith("nfe"):
        args["--nfe"] = case[3:]
    elif case == "unknown_word":
        prompts_file.write_text(PROMPTS[0] + "\na small red hexagon at the center on a white background\n")
    elif case == "unwritable":
        blocker = tmp_path / "file"
        blocker.write_text("x")
        args["--out-dir"] = str(blocker / "sub")
    elif case == "bad_lora":
        extra = ["--lora", str(tmp_path / "missing_lora")]
    argv = [x for kv in args.items() for x in kv] + extra
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_cli_subprocess_exit_code_and_no_traceback(tmp_path, tiny_world_model_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "rats_app.generate", "--prompt", "", "--out",
                             str(tmp_path / "x.png"), "--nfe", "3", "--model", str(tiny_world_model_dir)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "error: prompt 1: empty prompt" in result.stderr
