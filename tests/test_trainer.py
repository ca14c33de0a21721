"""The RATS trainer on tiny random models: outputs, resume, stop, safety of existing runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rats_app.config import ConfigError, TrainConfig
from rats_app.models import load_pipeline
from rats_app.run_dir import prepare
from rats_app.trainer import RatsTrainer

PROMPTS = ["a small red circle at the top left on a white background",
           "a large blue square at the center on a gray background"]


def make_trainer(model_dir, reward, out, resume=False, **overrides):
    config = TrainConfig.from_dict({"model": str(model_dir), "steps": 2, "batch_size": 2, "teacher_steps": 6,
                                    "sample_every": 0, "checkpoint_every": 1, "lora_rank": 2, "lora_alpha": 2.0,
                                    "device": "cpu", **overrides})
    state = prepare(out, config, resume)
    pipe, _ = load_pipeline(model_dir, device="cpu")
    trainer = RatsTrainer(config, out, pipe=pipe, reward=reward, watch_rewards={}, prompts=PROMPTS)
    if state is not None:
        trainer.load_state(state)
    return trainer


def test_two_steps_write_a_loadable_run(tmp_path, tiny_world_model_dir, tiny_world_reward):
    out = tmp_path / "run"
    seen = []
    make_trainer(tiny_world_model_dir, tiny_world_reward, out).train(progress=seen.append)
    assert [m.step for m in seen] == [1, 2]
    for m in seen:
        assert 0.0 < m.gate_mean < 1.0
    for name in ("pytorch_lora_weights.safetensors", "config.json", "config.yaml", "metrics.jsonl",
                 "README.md", "run.json", "checkpoint/state.pt"):
        assert (out / name).exists(), name
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert set(lines[0]) >= {"loss", "matching", "reward_student", "reward_teacher", "gate_mean", "grad_norm",
                             "lr", "step_time", "peak_memory_mb"}
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert list((out / "samples").glob("*.png"))
    # Plain diffusers loads it, and it changes the output.
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_world_model_dir)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(num_inference_steps=2, height=64, width=64, max_sequence_length=16, output_type="np")
    base = pipe(PROMPTS[0], generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    pipe.load_lora_weights(out)
    tuned = pipe(PROMPTS[0], generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    assert np.abs(base - tuned).max() > 0


def test_resume_continues_exactly(tmp_path, tiny_world_model_dir, tiny_world_reward):
    straight = tmp_path / "straight"
    trainer = make_trainer(tiny_world_model_dir, tiny_world_reward, straight, steps=3)
    trainer.train()
    reference = {n: p.detach().clone() for n, p in trainer.params.items()}

    split = tmp_path / "split"
    make_trainer(tiny_world_model_dir, tiny_world_reward, split, steps=3).train(should_stop=_stop_after(2))
    assert json.loads((split / "run.json").read_text())["status"] == "stopped"
    resumed = make_trainer(tiny_world_model_dir, tiny_world_reward, split, resume=True, steps=3)
    assert resumed.step == 2
    resumed.train()
    for n, p in resumed.params.items():
        assert torch.allclose(p, reference[n], atol=1e-6), n
    steps = [json.loads(x)["step"] for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def _stop_after(n):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > n
    return should_stop


def test_existing_run_is_never_overwritten(tmp_path, tiny_world_model_dir, tiny_world_reward):
    out = tmp_path / "run"
    make_trainer(tiny_world_model_dir, tiny_world_reward, out).train()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="already holds another run"):
        make_trainer(tiny_world_model_dir, tiny_world_reward, out)
    with pytest.raises(ConfigError, match="config differs from the run's in lora_rank"):
        make_trainer(tiny_world_model_dir, tiny_world_reward, out, resume=True, lora_rank=4)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_corrupt_or_missing_checkpoint_is_named(tmp_path, tiny_world_model_dir, tiny_world_reward):
    out = tmp_path / "run"
    make_trainer(tiny_world_model_dir, tiny_world_reward, out).train()
    (out / "checkpoint" / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="checkpoint .*state.pt is corrupt"):
        make_trainer(tiny_world_model_dir, tiny_world_reward, out, resume=True)
    (out / "checkpoint" / "state.pt").unlink()
    with pytest.raises(ConfigError, match="no checkpoint"):
        make_trainer(tiny_world_model_dir, tiny_world_reward, out, resume=True)


def test_gate_is_the_sigmoid_of_the_reward_gap(tmp_path, tiny_world_model_dir, tiny_world_reward):
    seen = []
    make_trainer(tiny_world_model_dir, tiny_world_reward, tmp_path / "run", batch_size=1, tau=0.5, steps=1).train(
        progress=seen.append)
    m = seen[0]
    expected = 1 / (1 + np.exp(-(m.reward_teacher - m.reward_student) / 0.5))
    assert m.gate_mean == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("preset", ["distill", "reward"])
def test_presets_run(tmp_path, tiny_world_model_dir, tiny_world_reward, preset):
    seen = []
    make_trainer(tiny_world_model_dir, tiny_world_reward, tmp_path / preset, preset=preset, steps=1).train(
        progress=seen.append)
    if preset == "reward":
        assert seen[0].reward_teacher is None and seen[0].matching == 0.0
    else:
        assert seen[0].gate_mean == 1.0


def test_watch_rewards_are_logged_every_n_steps(tmp_path, tiny_world_model_dir, tiny_world_reward):
    """The hacking watch: other rewards scored on the same student images every watch_every steps."""
    config = TrainConfig.from_dict({"model": str(tiny_world_model_dir), "steps": 4, "batch_size": 1,
                                    "teacher_steps": 3, "sample_every": 0, "checkpoint_every": 10,
                                    "lora_rank": 2, "device": "cpu", "watch_every": 2})
    prepare(tmp_path / "run", config, False)
    pipe, _ = load_pipeline(tiny_world_model_dir, device="cpu")
    trainer = RatsTrainer(config, tmp_path / "run", pipe=pipe, reward=tiny_world_reward,
                          watch_rewards={"other": tiny_world_reward}, prompts=PROMPTS)
    seen = []
    trainer.train(progress=seen.append)
    assert [sorted(m.watch) for m in seen] == [[], ["other"], [], ["other"]]
    # Scored on the very images the trained reward saw: the same reward gives the same mean.
    assert seen[1].watch["other"] == pytest.approx(seen[1].reward_student, rel=1e-5)


def test_memory_options_bf16_checkpointing_cached_text(tmp_path, tiny_world_model_dir, tiny_world_reward):
    config = TrainConfig.from_dict({"model": str(tiny_world_model_dir), "steps": 2, "batch_size": 2,
                                    "teacher_steps": 3, "sample_every": 0, "checkpoint_every": 10, "lora_rank": 2,
                                    "device": "cpu", "dtype": "bfloat16", "gradient_checkpointing": True,
                                    "cache_text_embeddings": True, "vae_tiling": True})
    prepare(tmp_path / "run", config, False)
    pipe, _ = load_pipeline(tiny_world_model_dir, device="cpu", dtype=torch.bfloat16)
    trainer = RatsTrainer(config, tmp_path / "run", pipe=pipe, reward=tiny_world_reward, watch_rewards={},
                          prompts=PROMPTS)
    assert set(PROMPTS) <= set(trainer._text_cache)
    assert all(p.dtype == torch.float32 for p in trainer.params.values())
    assert pipe.transformer.proj_out.weight.dtype == torch.bfloat16
    seen = []
    trainer.train(progress=seen.append)
    assert len(seen) == 2 and all(np.isfinite(m.loss) for m in seen)
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float32 for v in load_file(tmp_path / "run" / "pytorch_lora_weights.safetensors").values())


def test_8bit_adam_without_bitsandbytes_is_a_clear_error(tmp_path, tiny_world_model_dir, tiny_world_reward):
    pytest.importorskip("torch")
    try:
        import bitsandbytes  # noqa: F401
        pytest.skip("bitsandbytes is installed here")
    except ImportError:
        pass
    with pytest.raises(ConfigError, match="adamw8bit needs the bitsandbytes package"):
        make_trainer(tiny_world_model_dir, tiny_world_reward, tmp_path / "run", optimizer="adamw8bit")


def test_true_cfg_from_call_defaults_drives_teacher_and_student(tmp_path, tiny_world_model_dir, tiny_world_reward):
    """A model whose call_defaults ask for FluxPipeline's true CFG: both rollouts make two passes."""
    import shutil

    from rats_app.io import write_json

    model = tmp_path / "model"
    shutil.copytree(tiny_world_model_dir, model)
    write_json(model / "call_defaults.json", {"max_sequence_length": 16, "true_cfg_scale": 2.0, "negative_prompt": ""})
    trainer = make_trainer(model, tiny_world_reward, tmp_path / "run")
    assert trainer.true_cfg_scale == 2.0 and trainer.negative_prompt == ""
    calls = []
    hook = trainer.pipe.transformer.register_forward_hook(lambda *args: calls.append(1))
    trainer.train_step()
    hook.remove()
    assert len(calls) == 2 * (6 + 3)  # teacher 6 steps, student 3 steps, each conditional + unconditional


def test_learning_rate_schedule_exact_values(tmp_path, tiny_world_model_dir, tiny_world_reward):
    trainer = make_trainer(tiny_world_model_dir, tiny_world_reward, tmp_path / "run", steps=5, warmup_steps=2,
                           lr_schedule="cosine", learning_rate=1e-3)
    got = [trainer.learning_rate_at(s) for s in range(5)]
    # warm-up 1/2, then cosine from 1 to 0.1 over steps 0..4: 0.1 + 0.45 (1 + cos(pi s / 4))
    expected = [0.5e-3, 1e-3 * (0.1 + 0.45 * (1 + np.cos(np.pi / 4))), 0.55e-3,
                1e-3 * (0.1 + 0.45 * (1 + np.cos(3 * np.pi / 4))), 0.1e-3]
    assert np.allclose(got, expected, rtol=1e-12)
    seen = []
    trainer.train(progress=seen.append)
    assert np.allclose([m.lr for m in seen], expected)


def test_teacher_target_final_pulls_toward_the_teacher_end_point(tmp_path, tiny_world_model_dir, tiny_world_reward):
    a = make_trainer(tiny_world_model_dir, tiny_world_reward, tmp_path / "a").train_step()
    b = make_trainer(tiny_world_model_dir, tiny_world_reward, tmp_path / "b", teacher_target="final").train_step()
    assert a.reward_student == b.reward_student and a.reward_teacher == b.reward_teacher  # same rollouts
    assert a.matching != b.matching and np.isfinite(b.matching)
    with pytest.raises(ConfigError, match="teacher_target: 'final' needs match_on: 'x0'"):
        TrainConfig.from_dict({"teacher_target": "final", "match_on": "state"})
