"""The RATS trainer on tiny random models: outputs, resume, stop, safety of existing runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rats_app.config import TrainConfig
from rats_app.errors import ConfigError
from rats_app.training import TrainerCallback


class Recorder(TrainerCallback):
    """Keeps every step's metrics; stops after ``stop_after`` steps when given."""

    def __init__(self, stop_after: int | None = None):
        self.seen, self.stop_after = [], stop_after

    def on_step_end(self, run, metrics):
        self.seen.append(metrics)

    def should_stop(self):
        return self.stop_after is not None and len(self.seen) >= self.stop_after


def test_two_steps_write_a_loadable_run(tmp_path, tiny_world_model_dir, train_tiny, tiny_prompts):
    out = tmp_path / "run"
    recorder = Recorder()
    train_tiny(out, callbacks=[recorder])
    seen = recorder.seen
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
    base = pipe(tiny_prompts[0], generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    pipe.load_lora_weights(out)
    tuned = pipe(tiny_prompts[0], generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    assert np.abs(base - tuned).max() > 0


def test_resume_continues_exactly(tmp_path, train_tiny):
    trainer = train_tiny(tmp_path / "straight", steps=3)
    reference = {n: p.detach().clone() for n, p in trainer.params.items()}

    split = tmp_path / "split"
    train_tiny(split, steps=3, callbacks=[Recorder(stop_after=2)])
    assert json.loads((split / "run.json").read_text())["status"] == "stopped"
    resumed = train_tiny(split, resume=True, steps=3)
    assert resumed.step == 3
    for n, p in resumed.params.items():
        assert torch.allclose(p, reference[n], atol=1e-6), n
    steps = [json.loads(x)["step"] for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_existing_run_is_never_overwritten(tmp_path, train_tiny, prepare_tiny):
    out = tmp_path / "run"
    train_tiny(out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="already holds another run"):
        prepare_tiny(out)
    with pytest.raises(ConfigError, match="config differs from the run's in lora_rank"):
        prepare_tiny(out, resume=True, lora_rank=4)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_corrupt_or_missing_checkpoint_is_named(tmp_path, train_tiny, prepare_tiny):
    out = tmp_path / "run"
    train_tiny(out)
    (out / "checkpoint" / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="checkpoint .*state.pt is corrupt"):
        prepare_tiny(out, resume=True)
    (out / "checkpoint" / "state.pt").unlink()
    # A run killed before its first checkpoint starts again from step 0 with its own config.
    run = prepare_tiny(out, resume=True, steps=3)
    assert run.trainer.step == 0


def test_kill_before_first_checkpoint_restarts_from_step_zero(tmp_path, train_tiny, prepare_tiny):
    """Issue 20 (2): kill -9 before the first checkpoint used to leave a run that could not resume."""
    out = tmp_path / "run"
    train_tiny(out, steps=3, checkpoint_every=100, checkpoint_minutes=0.0, callbacks=[Recorder(stop_after=1)])
    (out / "checkpoint" / "state.pt").unlink(missing_ok=True)  # what a kill before any checkpoint leaves
    (out / "pytorch_lora_weights.safetensors").unlink(missing_ok=True)
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "loss": 0.')  # a line cut short by the kill
    resumed = train_tiny(out, resume=True, steps=3, checkpoint_every=100)
    assert resumed.step == 3
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert (out / "pytorch_lora_weights.safetensors").exists()


def test_gate_is_the_sigmoid_of_the_reward_gap(tmp_path, train_tiny):
    recorder = Recorder()
    train_tiny(tmp_path / "run", batch_size=1, tau=0.5, steps=1, callbacks=[recorder])
    m = recorder.seen[0]
    expected = 1 / (1 + np.exp(-(m.reward_teacher - m.reward_student) / 0.5))
    assert m.gate_mean == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("preset", ["distill", "reward"])
def test_presets_run(tmp_path, train_tiny, preset):
    recorder = Recorder()
    train_tiny(tmp_path / preset, preset=preset, steps=1, callbacks=[recorder])
    seen = recorder.seen
    if preset == "reward":
        assert seen[0].reward_teacher is None and seen[0].matching == 0.0
    else:
        assert seen[0].gate_mean == 1.0


def test_watch_rewards_are_logged_every_n_steps(tmp_path, train_tiny, tiny_world_reward):
    """The hacking watch: other rewards scored on the same student images every watch_every steps."""
    recorder = Recorder()
    train_tiny(tmp_path / "run", steps=4, batch_size=1, teacher_steps=3, checkpoint_every=10, watch_every=2,
               watch={"other": tiny_world_reward}, callbacks=[recorder])
    seen = recorder.seen
    truth = ["truth: clean", "truth: ideal_error", "truth: residual", "truth: right", "truth: sigma"]
    assert [sorted(m.watch) for m in seen] == [[], ["other", *truth], [], ["other", *truth]]
    # Scored on the very images the trained reward saw: the same reward gives the same mean.
    assert seen[1].watch["other"] == pytest.approx(seen[1].reward_student, rel=1e-5)
    # The truth line is the world checker's verdict on those images (0-255 RMS, rates in [0, 1]).
    assert 0 <= seen[1].watch["truth: right"] <= 1 and seen[1].watch["truth: residual"] > 0
    from rats_app.plots import curves_figure

    assert len(curves_figure([{"step": m.step, "reward_student": m.reward_student, "reward_teacher": None,
                                "gate_mean": None, "matching": m.matching, "watch": m.watch}
                               for m in seen]).axes) == 4  # the ground-truth panel


def test_the_truth_line_needs_no_watch_reward(tmp_path, train_tiny):
    """On a world with a checker the hacking watch's ground truth is logged even with no other reward."""
    recorder = Recorder()
    train_tiny(tmp_path / "run", steps=2, batch_size=1, teacher_steps=3, checkpoint_every=10, watch_every=2,
               callbacks=[recorder])
    assert [sorted(m.watch) for m in recorder.seen] == [[], ["truth: clean", "truth: ideal_error",
                                                             "truth: residual", "truth: right", "truth: sigma"]]


def test_memory_options_bf16_checkpointing_cached_text(tmp_path, prepare_tiny, tiny_prompts):
    run = prepare_tiny(tmp_path / "run", teacher_steps=3, checkpoint_every=10, dtype="bfloat16",
                       gradient_checkpointing=True, cache_text_embeddings=True, vae_tiling=True)
    trainer = run.trainer
    assert set(tiny_prompts) <= set(trainer._text_cache)
    assert all(p.dtype == torch.float32 for p in trainer.params.values())
    assert trainer.pipe.transformer.proj_out.weight.dtype == torch.bfloat16
    recorder = Recorder()
    run.train([recorder])
    assert len(recorder.seen) == 2 and all(np.isfinite(m.loss) for m in recorder.seen)
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float32 for v in load_file(tmp_path / "run" / "pytorch_lora_weights.safetensors").values())


def test_8bit_adam_without_bitsandbytes_is_a_clear_error(tmp_path, prepare_tiny):
    try:
        import bitsandbytes  # noqa: F401
        pytest.skip("bitsandbytes is installed here")
    except ImportError:
        pass
    with pytest.raises(ConfigError, match="adamw8bit needs the bitsandbytes package"):
        prepare_tiny(tmp_path / "run", optimizer="adamw8bit")
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start


def test_true_cfg_from_call_defaults_drives_teacher_and_student(tmp_path, tiny_world_model_dir, prepare_tiny):
    """A model whose call_defaults ask for FluxPipeline's true CFG: both rollouts make two passes."""
    import shutil

    from rats_app.io import write_json

    model = tmp_path / "model"
    shutil.copytree(tiny_world_model_dir, model)
    write_json(model / "call_defaults.json", {"max_sequence_length": 16, "true_cfg_scale": 2.0, "negative_prompt": ""})
    for batched in (False, True):
        trainer = prepare_tiny(tmp_path / f"run-{batched}", model_dir=model, batch_guidance=batched).trainer
        assert trainer.true_cfg_scale == 2.0 and trainer.negative_prompt == ""
        batch = trainer.config.batch_size
        # teacher 6 steps, student 3 steps, each conditional + unconditional: two passes, or one of twice the rows
        assert _rows_per_pass(trainer) == ([2 * batch] * (6 + 3) if batched else [batch] * (2 * (6 + 3)))


def _rows_per_pass(trainer) -> list[int]:
    """The batch rows of every transformer pass in one training step."""
    rows = []
    hook = trainer.pipe.transformer.register_forward_hook(lambda m, args, kwargs, out: rows.append(
        kwargs["hidden_states"].shape[0]), with_kwargs=True)
    trainer.start_schedule()
    trainer.train_step()
    hook.remove()
    return rows


def test_batched_guidance_matches_the_two_passes(tmp_path, tiny_world_model_dir, tiny_wan_dir):
    """The training rollouts' one batched CFG pass gives the pipelines' two passes to float rounding."""
    from rats_app.families import Size, family_of
    from rats_app.models import load_pipeline

    cases = [(tiny_world_model_dir, Size(64, 64), dict(guidance_scale=None, true_cfg_scale=2.5)),
             (tiny_wan_dir, Size(32, 32, 9), dict(guidance_scale=5.0))]
    for model_dir, size, guidance in cases:
        family = family_of(load_pipeline(model_dir, device="cpu", dtype=torch.float32)[0])
        cond = family.encode(["a red square", "a blue circle"], 16, "")
        noise = family.initial_noise([torch.Generator().manual_seed(i) for i in range(2)], size, torch.float32)
        t = torch.tensor(700.0)
        with torch.no_grad():
            two = family.velocity(noise, cond, size, batch_guidance=False, **guidance)(noise, t)
            one = family.velocity(noise, cond, size, batch_guidance=True, **guidance)(noise, t)
        assert two.abs().max() > 0
        torch.testing.assert_close(one, two, rtol=1e-4, atol=1e-5)


def test_student_call_sets_each_familys_cfg_keyword():
    """FLUX's classifier-free guidance is true_cfg_scale (guidance_scale is FLUX.1-dev's distilled input);
    Wan's and SD3's is guidance_scale; SD3's student runs unguided unless given a scale."""
    from rats_app.families import student_call
    from rats_app.families.flux import FluxFamily
    from rats_app.families.sd3 import SD3Family
    from rats_app.families.wan import WanFamily

    assert student_call(FluxFamily(None), {"guidance_scale": 3.5}, 2.0) == {
        "guidance_scale": 3.5, "true_cfg_scale": 2.0, "negative_prompt": ""}
    assert student_call(WanFamily(None), {"guidance_scale": 5.0, "negative_prompt": "blurry"}, 3.0) == {
        "guidance_scale": 3.0, "negative_prompt": "blurry"}
    assert student_call(SD3Family(None), {"guidance_scale": 7.0}) == {"guidance_scale": 1.0}
    assert student_call(SD3Family(None), {"guidance_scale": 7.0}, 4.0)["guidance_scale"] == 4.0
    with pytest.raises(ConfigError, match="student_cfg"):
        TrainConfig.from_dict({"student_cfg": -1.0})


def _plain_flux_image(model_dir, lora_dir, prompt: str, seed: int, **call):
    """What plain diffusers makes with the LoRA loaded: the reference for pixel identity."""
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(lora_dir)
    return pipe(prompt, generator=torch.Generator("cpu").manual_seed(seed), **call).images[0]


def test_student_cfg_trains_and_runs_the_student_at_its_own_scale(tmp_path, tiny_world_model_dir, prepare_tiny,
                                                                  train_tiny, tiny_prompts):
    """student_cfg: the student's rollouts run true CFG at its own scale while the teacher keeps the
    model's (here none); the LoRA records the scale to sample with (sample_cfg, else student_cfg), and
    the app's Studio, the generate CLI and plain diffusers given the record's call all run it so."""
    from PIL import Image

    from rats_app.api import Studio
    from rats_app.generate import main

    trainer = prepare_tiny(tmp_path / "passes", student_cfg=2.0).trainer
    assert trainer.teacher_guidance["true_cfg_scale"] == 1.0 and trainer.student_guidance["true_cfg_scale"] == 2.0
    assert trainer.negative_prompt == ""  # encoded for the student, though the teacher needs none
    batch = trainer.config.batch_size
    # teacher: 6 single passes; student: 3 doubled (CFG batched)
    assert _rows_per_pass(trainer) == [batch] * 6 + [2 * batch] * 3

    out = tmp_path / "run"
    trained = train_tiny(out, steps=1, student_cfg=2.0, sample_cfg=1.5)
    assert trained.sampling_guidance["true_cfg_scale"] == 1.5  # its sample grids too
    call = json.loads((out / "rats.json").read_text())["call"]
    assert call["true_cfg_scale"] == 1.5 and call["negative_prompt"] == ""
    assert "true_cfg_scale=1.5" in (out / "README.md").read_text()
    studio = Studio(tiny_world_model_dir, device="cpu")
    assert studio.call_settings(out)[1]["true_cfg_scale"] == 1.5
    assert studio.call_settings()[1].get("true_cfg_scale", 1.0) == 1.0  # the model alone keeps its own
    assert studio.generate(tiny_prompts[0], 4, 3, "RATS", lora=out).cfg == 1.5  # shown in the app's table
    assert studio.generate(tiny_prompts[0], 4, 3, "Baseline").cfg == 1.0
    assert main(["--prompt", tiny_prompts[0], "--out", str(tmp_path / "s.png"), "--nfe", "3", "--seed", "4",
                 "--model", str(tiny_world_model_dir), "--lora", str(out)]) == 0
    ours = np.asarray(Image.open(tmp_path / "s.png").convert("RGB")).astype(int)
    plain = _plain_flux_image(tiny_world_model_dir, out, tiny_prompts[0], 4, **call)
    unguided = _plain_flux_image(tiny_world_model_dir, out, tiny_prompts[0], 4, **{**call, "true_cfg_scale": 1.0})
    assert np.abs(ours - np.asarray(plain).astype(int)).max() <= 3
    assert np.abs(ours - np.asarray(unguided).astype(int)).max() > 3  # the scale made a difference


def test_sample_cfg_by_nfe_records_and_runs_a_scale_per_budget(tmp_path, tiny_world_model_dir, train_tiny,
                                                               tiny_prompts):
    """sample_cfg_by_nfe: a budget samples at its own CFG scale (training is untouched); the record's
    call_by_nfe says so, and Studio and plain diffusers given the call with those keys agree. A
    scale > 1 at one budget alone still gets the negative prompt that FluxPipeline's true CFG needs."""
    from rats_app.api import Studio
    from rats_app.models import nfe_note

    out = tmp_path / "run"
    trained = train_tiny(out, steps=1, student_cfg=2.0, sample_cfg_by_nfe={2: 1.25, 3: 1.5},
                         student_steps_choices=[1, 2, 3])
    assert trained.sampling_guidance_by_nfe[3]["true_cfg_scale"] == 1.5  # the K = 3 sample grids
    record = json.loads((out / "rats.json").read_text())
    assert record["call"]["true_cfg_scale"] == 2.0
    assert record["call_by_nfe"] == {"2": {"true_cfg_scale": 1.25}, "3": {"true_cfg_scale": 1.5}}
    assert "At 2 steps: true_cfg_scale=1.25." in (out / "README.md").read_text()
    assert nfe_note(out, 2).endswith("NFE 2 is one of them, sampled with true_cfg_scale=1.25 (its record's "
                                     "setting for this budget).")
    assert nfe_note(out, 1).endswith("NFE 1 is one of them.")
    studio = Studio(tiny_world_model_dir, device="cpu")
    assert [studio.call_settings(out, n)[1]["true_cfg_scale"] for n in (1, 2, 3, None)] == [2.0, 1.25, 1.5, 2.0]
    image = studio.generate(tiny_prompts[0], 4, 2, "RATS", lora=out)
    assert image.cfg == 1.25
    call = {**record["call"], **record["call_by_nfe"]["2"], "num_inference_steps": 2}
    plain = _plain_flux_image(tiny_world_model_dir, out, tiny_prompts[0], 4, **call)
    assert np.abs(np.asarray(image.image).astype(int) - np.asarray(plain).astype(int)).max() <= 3

    alone = train_tiny(tmp_path / "alone", steps=1, sample_cfg_by_nfe={2: 2.0})
    assert alone.negative_prompt == "" and alone.sampling_guidance["true_cfg_scale"] == 1.0
    assert json.loads((tmp_path / "alone" / "rats.json").read_text())["call_by_nfe"] == {
        "2": {"true_cfg_scale": 2.0, "negative_prompt": ""}}


def test_student_sigmas_by_nfe_trains_and_samples_the_students_own_grid(tmp_path, tiny_world_model_dir, train_tiny,
                                                                        tiny_prompts):
    """student_sigmas_by_nfe: at that K the student rolls out on its own grid and the teacher on a refinement
    of it (its points included); the record's call_by_nfe carries the grid, and Studio samples that
    budget with it, pixel-identical to FluxPipeline given ``sigmas``."""
    from rats_app.api import Studio

    out = tmp_path / "run"
    trainer = train_tiny(out, steps=1, student_steps_choices=[2, 3], student_sigmas_by_nfe={2: [1.0, 0.6]},
                         sample_cfg_by_nfe={2: 1.5})
    result = trainer.rollout(*trainer.batch(0), student_steps=2)
    assert np.allclose(result.student.sigmas.numpy(), [1.0, 0.6, 0.0])
    assert np.allclose(result.teacher.sigmas.numpy(), [1.0, 0.6 + 0.8 / 3, 0.6 + 0.4 / 3, 0.6, 0.4, 0.2, 0.0])  # m = 3
    assert len(trainer.rollout(*trainer.batch(0), student_steps=3).student.sigmas) == 4  # the model's grid
    record = json.loads((out / "rats.json").read_text())
    assert record["call_by_nfe"] == {"2": {"true_cfg_scale": 1.5, "negative_prompt": "", "sigmas": [1.0, 0.6]}}
    studio = Studio(tiny_world_model_dir, device="cpu")
    assert studio.call_settings(out, 2)[1]["sigmas"] == [1.0, 0.6] and "sigmas" not in studio.call_settings(out, 3)[1]
    image = studio.generate(tiny_prompts[0], 4, 2, "RATS", lora=out).image
    call = {**record["call"], **record["call_by_nfe"]["2"], "num_inference_steps": 2}
    plain = _plain_flux_image(tiny_world_model_dir, out, tiny_prompts[0], 4, **call)
    assert np.abs(np.asarray(image).astype(int) - np.asarray(plain).astype(int)).max() <= 3
    assert "At 2 steps: true_cfg_scale=1.5, negative_prompt=\"\", sigmas=[1.0, 0.6]." in (out / "README.md").read_text()
    # sample_sigmas_by_nfe: a grid to sample with alone (training keeps the model's grid)
    other = train_tiny(tmp_path / "sampled", steps=1, student_steps_choices=[2, 3],
                       sample_sigmas_by_nfe={2: [1.0, 0.5]})
    assert len(other.rollout(*other.batch(0), student_steps=2).teacher.sigmas) == 7  # the model's refined grid
    assert other.budgets.student_grid(2) is None and list(other.budgets.student_grid(2, sampling=True)) == [1.0, 0.5]
    assert json.loads((tmp_path / "sampled" / "rats.json").read_text())["call_by_nfe"] == {"2": {"sigmas": [1.0, 0.5]}}


def test_a_run_with_by_nfe_settings_resumes(tmp_path, train_tiny):
    """config.json gives the by-NFE fields' keys back as text: the resume check compares like with like."""
    by_nfe = {"sample_cfg_by_nfe": {2: 1.5}, "sample_sigmas_by_nfe": {2: [1.0, 0.6]}}
    train_tiny(tmp_path / "run", steps=1, **by_nfe)
    assert train_tiny(tmp_path / "run", resume=True, steps=2, **by_nfe).step == 2


def test_one_lora_for_several_budgets(tmp_path, train_tiny):
    """student_steps_choices: K drawn per step from the seed and the step (resumes draw the same), every
    student step matched, and the LoRA's record says which budgets it was trained for."""
    from rats_app.models import nfe_note, trained_nfes

    recorder = Recorder()
    trainer = train_tiny(tmp_path / "run", steps=6, student_steps_choices=[1, 2, 4], student_steps=2,
                         callbacks=[recorder])
    drawn = [trainer.budgets.steps_at(s) for s in range(6)]
    assert [m.student_steps for m in recorder.seen] == drawn and set(drawn) <= {1, 2, 4} and len(set(drawn)) > 1
    record = json.loads((tmp_path / "run" / "rats.json").read_text())
    assert record["trained_nfes"] == [1, 2, 4]
    assert trained_nfes(tmp_path / "run") == [1, 2, 4]
    assert "NFE 2 is one of them" in nfe_note(tmp_path / "run", 2)
    assert "outside its training" in nfe_note(tmp_path / "run", 3)
    assert "1, 2, 4-step" in (tmp_path / "run" / "README.md").read_text()
    (tmp_path / "run" / "rats.json").unlink()  # a run from before rats.json: its config.json says it
    assert trained_nfes(tmp_path / "run") == [1, 2, 4]
    out = trainer.rollout(*trainer.batch(0), student_steps=4)
    assert len(out.student_horizons) == 4  # every student step is a horizon
    with pytest.raises(ConfigError, match="horizons"):
        TrainConfig.from_dict({"student_steps_choices": [1, 2], "student_steps": 2, "horizons": [0]})
    with pytest.raises(ConfigError, match="student_steps_choices"):
        TrainConfig.from_dict({"student_steps_choices": [0, 2]})


def test_student_steps_weights_shape_the_draw():
    """Weights set each K's share of the steps (drawn from the seed and the step); a weight of 0
    drops a K from the LoRA's budgets; bad weights name themselves."""
    from rats_app.training.budgets import StepBudgets

    cfg = TrainConfig.from_dict({"student_steps_choices": [1, 3, 8], "student_steps": 3,
                                 "student_steps_weights": [1, 3, 0]})
    assert cfg.student_steps_distribution == {1: 0.25, 3: 0.75} and cfg.trained_nfes == [1, 3]
    draws = [StepBudgets(cfg).steps_at(s) for s in range(2000)]
    assert set(draws) == {1, 3} and 0.72 < draws.count(3) / len(draws) < 0.78
    uniform = TrainConfig.from_dict({"student_steps_choices": [1, 3, 8], "student_steps": 3})
    assert uniform.student_steps_distribution == pytest.approx({1: 1 / 3, 3: 1 / 3, 8: 1 / 3})
    with pytest.raises(ConfigError, match="student_steps_weights: 2 weights for 3"):
        TrainConfig.from_dict({"student_steps_choices": [1, 3, 8], "student_steps": 3, "student_steps_weights": [1, 2]})
    with pytest.raises(ConfigError, match="not all 0"):
        TrainConfig.from_dict({"student_steps_choices": [1, 3], "student_steps": 3, "student_steps_weights": [0, 0]})
    with pytest.raises(ConfigError, match="student_steps: 3 has weight 0"):
        TrainConfig.from_dict({"student_steps_choices": [1, 3], "student_steps": 3, "student_steps_weights": [1, 0]})


def test_learning_rate_schedule_exact_values(tmp_path, train_tiny):
    recorder = Recorder()
    train_tiny(tmp_path / "run", steps=5, warmup_steps=2, lr_schedule="cosine", learning_rate=1e-3,
               callbacks=[recorder])
    # warm-up (n + 1) / 2, then cosine from 1 at step 2 to 0.1 at the last step (transformers'
    # cosine_with_min_lr, lr_rate variant): 0.1 + 0.45 (1 + cos(pi (n - 1) / 3)) for n = 2, 3, 4.
    expected = [0.5e-3, 1e-3] + [1e-3 * (0.1 + 0.45 * (1 + np.cos(np.pi * (n - 1) / 3))) for n in (2, 3, 4)]
    assert np.allclose([m.lr for m in recorder.seen], expected, rtol=1e-12)
    assert expected[-1] == pytest.approx(0.1e-3)
    resumed = Recorder()  # the schedule continues where a resumed run stopped
    schedule = {"steps": 5, "warmup_steps": 2, "lr_schedule": "cosine", "learning_rate": 1e-3}
    train_tiny(tmp_path / "split", callbacks=[Recorder(stop_after=3)], **schedule)
    train_tiny(tmp_path / "split", resume=True, callbacks=[resumed], **schedule)
    assert np.allclose([m.lr for m in resumed.seen], expected[3:], rtol=1e-12)


def test_teacher_target_final_pulls_toward_the_teacher_end_point(tmp_path, prepare_tiny):
    def first_step(trainer):
        trainer.start_schedule()
        return trainer.train_step()
    a = first_step(prepare_tiny(tmp_path / "a").trainer)
    b = first_step(prepare_tiny(tmp_path / "b", teacher_target="final").trainer)
    assert a.reward_student == b.reward_student and a.reward_teacher == b.reward_teacher  # same rollouts
    assert a.matching != b.matching and np.isfinite(b.matching)
    with pytest.raises(ConfigError, match="teacher_target: 'final' needs match_on: 'x0'"):
        TrainConfig.from_dict({"teacher_target": "final", "match_on": "state"})


def test_teacher_target_last_is_the_end_point_at_the_last_horizon_and_x0_hat_before(tmp_path, prepare_tiny):
    rollouts = {}
    for target in ("x0_hat", "last"):
        trainer = prepare_tiny(tmp_path / target, teacher_target=target).trainer
        rollouts[target] = trainer.rollout(*trainer.batch(0), student_steps=3)
    plain, last = rollouts["x0_hat"], rollouts["last"]
    assert len(last.teacher_horizons) == 3
    for h in (0, 1):  # before the last horizon: the teacher's one-shot guesses, as with x0_hat
        assert torch.equal(last.teacher_horizons[h], plain.teacher_horizons[h])
    assert torch.equal(last.teacher_horizons[2], last.teacher.latents)
    assert not torch.equal(plain.teacher_horizons[2], plain.teacher.latents)
    with pytest.raises(ConfigError, match="teacher_target: 'last' needs match_on: 'x0'"):
        TrainConfig.from_dict({"teacher_target": "last", "match_on": "state"})


def test_match_object_weight_weighs_the_teacher_outputs_object(tmp_path, prepare_tiny):
    from rats_app.rats_loss import object_weights

    trainer = prepare_tiny(tmp_path / "w", match_object_weight=4.0).trainer
    out = trainer.rollout(*trainer.batch(0), student_steps=2)
    expected = object_weights(out.teacher.latents.float(), 4.0, trainer.family.latent_channel_dim)
    assert torch.equal(out.match_weights, expected)
    assert out.match_weights.shape == out.teacher.latents.shape[:2]  # FLUX: B x tokens
    plain = prepare_tiny(tmp_path / "p").trainer
    assert plain.rollout(*plain.batch(0), student_steps=2).match_weights is None
    trainer.start_schedule()
    plain.start_schedule()
    weighted, unweighted = trainer.train_step(), plain.train_step()
    assert weighted.reward_student == unweighted.reward_student  # same rollout, another distance
    assert weighted.matching != unweighted.matching and np.isfinite(weighted.matching)


def test_match_pixels_adds_the_gated_pixel_term_on_the_same_rollout(tmp_path, prepare_tiny):
    from rats_app.rats_loss import rats_loss

    trainer = prepare_tiny(tmp_path / "px", match_pixels=50.0).trainer
    plain = prepare_tiny(tmp_path / "p").trainer
    out = trainer.rollout(*trainer.batch(0), student_steps=2)
    assert torch.equal(out.teacher_images, trainer.to_unit(out.teacher.latents))
    assert trainer._pixel_pair(out)[1] is out.student_images
    expected = rats_loss(out.reward_student, out.reward_teacher, out.teacher_horizons, out.student_horizons,
                         pixels=(out.teacher_images, out.student_images), pixel_weight=50.0)
    assert expected.pixel_matching.item() > 0
    trainer.start_schedule()
    plain.start_schedule()
    with_pixels, without = trainer.train_step(), plain.train_step()
    assert with_pixels.reward_student == without.reward_student  # the same rollout, one more term
    assert without.pixel_matching is None and with_pixels.pixel_matching > 0
    assert with_pixels.loss > without.loss
