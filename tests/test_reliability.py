"""Issue 20's defects, one test each (numbers as in the issue): shared state that a bad LoRA cannot
poison, runs that never lose work, validation at every edge, who may train, bounded resources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from rats_app.api import Studio
from rats_app.config import TrainConfig
from rats_app.errors import ConfigError, UserError
from rats_app.jobs import JobManager
from rats_app.models import LORA_WEIGHT_NAME
from rats_app.training import TrainerCallback
from rats_app.ui import handlers

PROMPT = "a small red circle at the top left on a white background"


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory, train_tiny):
    out = tmp_path_factory.mktemp("lora") / "run"
    train_tiny(out, steps=1)
    return out / LORA_WEIGHT_NAME


@pytest.fixture(scope="module")
def studio(tiny_world_model_dir):
    return Studio(tiny_world_model_dir, device="cpu")


def _edited(lora_file, path, edit):
    """A copy of a good LoRA with its tensors edited (no metadata: like a hand-made file)."""
    state = load_file(lora_file)
    save_file(edit(state), path)
    return path


def _wider(state):  # a LoRA made for a model with another input width
    key = next(k for k in sorted(state) if k.endswith("lora_A.weight"))
    return {**state, key: torch.zeros(state[key].shape[0], state[key].shape[1] + 64)}


def _cli(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=timeout)


# ------------------------------------------------------------------ 1. one bad LoRA breaks nobody
def test_rejected_lora_leaves_generation_working_for_everyone(studio, lora_file, tmp_path):
    before = studio.generate(PROMPT, 0, 2, "Baseline").image
    bad = _edited(lora_file, tmp_path / "other-model.safetensors", _wider)
    with pytest.raises(UserError, match="does not fit this model"):
        handlers.save_uploaded_lora(studio, str(bad), tmp_path / "uploads")
    with pytest.raises(UserError, match="does not fit this model"):
        studio.generate(PROMPT, 0, 2, "RATS", lora=bad)  # even sent straight to generation
    assert studio.generate(PROMPT, 0, 2, "Baseline").image.tobytes() == before.tobytes()
    good = tmp_path / "good.safetensors"
    shutil.copyfile(lora_file, good)
    assert handlers.save_uploaded_lora(studio, str(good), tmp_path / "uploads")  # valid uploads still accepted
    studio.generate(PROMPT, 0, 2, "RATS", lora=good)
    assert studio.generate(PROMPT, 0, 2, "Baseline").image.tobytes() == before.tobytes()


def test_loaded_adapters_are_bounded(studio, lora_file, tmp_path):
    from rats_app.api import MAX_LOADED_LORAS

    for i in range(MAX_LOADED_LORAS + 2):
        copy = tmp_path / f"lora{i}" / LORA_WEIGHT_NAME
        copy.parent.mkdir()
        shutil.copyfile(lora_file, copy)
        studio.generate(PROMPT, 0, 1, "RATS", lora=copy.parent)
    assert len(studio.load()[0].transformer.peft_config) <= MAX_LOADED_LORAS


# ------------------------------------------------------------------ 2. resume never loses work
def test_resume_of_a_finished_run_keeps_its_steps_and_its_lora(tmp_path, train_tiny, tiny_components):
    from rats_app.train import build_parser, resolve_config
    from rats_app.training import prepare_run

    out = tmp_path / "run"
    train_tiny(out, steps=2)
    finished = (out / LORA_WEIGHT_NAME).read_bytes()
    config = resolve_config(build_parser().parse_args(["--output-dir", str(out), "--resume"]))
    assert config.steps == 2  # the run's own total, not the default 200
    with pytest.raises(ConfigError, match="at step 2 of 2: nothing to resume"):
        prepare_run(config, out, resume=True, components=tiny_components())
    assert (out / LORA_WEIGHT_NAME).read_bytes() == finished
    longer = resolve_config(build_parser().parse_args(["--output-dir", str(out), "--resume", "steps=3"]))
    prepare_run(longer, out, resume=True, components=tiny_components()).train()
    assert (out / "archive" / "step-000002" / LORA_WEIGHT_NAME).read_bytes() == finished
    assert json.loads((out / "run.json").read_text())["step"] == 3


def test_truncated_config_json_resumes_from_the_yaml_or_says_so(tmp_path, train_tiny, prepare_tiny):
    out = tmp_path / "run"
    train_tiny(out, steps=3, callbacks=[_StopAfter(1)])
    text = (out / "config.json").read_text()
    (out / "config.json").write_text(text[: len(text) // 2])  # what a kill mid-write of a non-atomic file leaves
    assert train_tiny(out, resume=True, steps=3).step == 3
    (out / "config.json").write_text("{")
    (out / "config.yaml").write_text("steps: [")
    with pytest.raises(ConfigError, match="config.json and config.yaml are damaged"):
        prepare_tiny(out, resume=True)


class _StopAfter(TrainerCallback):
    def __init__(self, steps):
        self.steps, self.seen = steps, 0

    def on_step_end(self, run, metrics):
        self.seen += 1

    def should_stop(self):
        return self.seen >= self.steps


# ------------------------------------------------------------------ 3. NaN and infinity
@pytest.mark.parametrize("key, value", [("tau", float("nan")), ("learning_rate", float("inf")),
                                        ("reward_weight", float("-inf"))])
def test_non_finite_numbers_are_rejected_by_name(key, value):
    with pytest.raises(ConfigError, match=f"{key}: .* is not a finite number"):
        TrainConfig.from_dict({key: value})


def test_non_finite_numbers_from_the_form_and_the_cli(tmp_path):
    jobs = JobManager(tmp_path / "runs" / "app")
    with pytest.raises(UserError, match="tau: 'nan' is not a finite number"):
        handlers.start_training(jobs, {"tau": "nan"}, handlers.WORLD_PROMPTS, "", None)
    result = _cli("rats_app.train", "--output-dir", str(tmp_path / "cli"), "tau=.nan")
    assert result.returncode == 2 and "tau: nan is not a finite number" in result.stderr, result.stderr
    assert not (tmp_path / "cli").exists()


# ------------------------------------------------------------------ 4. runs that cannot start say so at once
def test_a_run_that_cannot_start_fails_in_start_and_leaves_nothing(tmp_path, tiny_world_model_dir):
    jobs = JobManager(tmp_path / "runs" / "app")
    with pytest.raises(UserError, match="hpsv2"):  # no HPSv2 weights offline
        jobs.start(TrainConfig.from_dict({"model": str(tiny_world_model_dir), "reward": "hpsv2", "device": "cpu"}),
                   name="no-reward")
    with pytest.raises(UserError, match="unknown word 'dragon'"):
        handlers.start_training(jobs, {"model": str(tiny_world_model_dir), "device": "cpu"},
                                handlers.TYPED_PROMPTS, "a small red dragon at the center on a white background", None)
    assert jobs.state.status == "idle" and not jobs.busy
    assert not list((tmp_path / "runs").rglob("run.json"))  # no dir left to block a new run
    assert not list(jobs.uploads_dir.glob("prompts-*.txt"))  # the typed list written for it is gone
    assert jobs.stop() is False  # nothing is running: no stop is claimed


def test_a_killed_or_failed_run_is_offered_for_resume_and_resumes(tmp_path, train_tiny, tiny_components):
    from rats_app.training.run_dir import mark_failed

    jobs = JobManager(tmp_path / "runs" / "app", components_factory=lambda config: tiny_components())
    killed, failed = jobs.runs_dir / "killed", jobs.runs_dir / "failed"
    for out in (killed, failed):
        train_tiny(out, steps=3, callbacks=[_StopAfter(1)])
    (killed / "run.json").write_text(json.dumps({"status": "running", "step": 1}))  # what kill -9 leaves
    mark_failed(failed, 1, "RuntimeError: out of memory")
    assert set(handlers.resumable_choices(jobs)) == {str(killed), str(failed)}
    jobs.resume(killed)
    assert jobs.wait(120).status == "finished" and jobs.state.step == 3


# ------------------------------------------------------------------ 5. who may stop a run
def test_only_the_session_that_started_a_run_can_stop_it(tmp_path, tiny_world_model_dir, tiny_components):
    jobs = JobManager(tmp_path / "runs" / "app", components_factory=lambda config: tiny_components())
    jobs.start(TrainConfig.from_dict({"model": str(tiny_world_model_dir), "steps": 500, "batch_size": 1,
                                      "teacher_steps": 3, "sample_every": 0, "device": "cpu"}), owner="alice")
    with pytest.raises(UserError, match="started from another browser session"):
        jobs.stop(owner="mallory")
    assert jobs.busy
    assert jobs.stop(owner="alice") is True
    state = jobs.wait(120)
    assert state.status == "stopped" and (jobs.runs_dir / os.path.basename(state.output_dir) / LORA_WEIGHT_NAME).exists()


@pytest.mark.parametrize("environment, disabled", [
    ({}, False),
    ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ({"SPACE_ID": "someone/rats-studio"}, True),
    ({"GRADIO_SERVER_NAME": "0.0.0.0", "RATS_AUTH": "me:secret"}, False),
    ({"SPACE_ID": "someone/rats-studio", "RATS_TRAINING": "on"}, False),
    ({"RATS_TRAINING": "off"}, True),
])
def test_training_is_off_on_a_shared_deployment_unless_protected(monkeypatch, environment, disabled):
    from rats_app.ui.train_tab import training_disabled

    for name in ("GRADIO_SERVER_NAME", "SPACE_ID", "RATS_AUTH", "RATS_TRAINING", "SPACES_ZERO_GPU"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert (training_disabled() is not None) == disabled


# ------------------------------------------------------------------ 6. uploaded LoRAs
def _half(state):  # 4 of the layers: a truncated file
    keep = sorted({k.rsplit(".lora_", 1)[0] for k in state})[:2]
    return {k: v for k, v in state.items() if k.rsplit(".lora_", 1)[0] in keep}


@pytest.mark.parametrize("name, edit, message", [
    ("nan", lambda s: {k: torch.full_like(v, float("nan")) for k, v in s.items()}, "NaN or infinite"),
    ("extra", lambda s: {**s, "transformer.extra_tensor": torch.zeros(8)}, "not a transformer LoRA weight"),
    ("wider", _wider, "a LoRA for another model"),
])
def test_bad_uploads_are_refused_and_not_kept(studio, lora_file, tmp_path, name, edit, message):
    bad = _edited(lora_file, tmp_path / f"{name}.safetensors", edit)
    uploads = tmp_path / "uploads"
    with pytest.raises(UserError, match=message):
        handlers.save_uploaded_lora(studio, str(bad), uploads)
    assert not uploads.exists() or not any(uploads.iterdir())


def test_truncated_and_oversized_uploads_are_refused(studio, lora_file, tmp_path, monkeypatch):
    import safetensors

    truncated = tmp_path / "truncated.safetensors"
    with safetensors.safe_open(lora_file, "pt") as f:
        metadata = f.metadata()
    save_file(_half(load_file(lora_file)), truncated, metadata=metadata)  # keeps the declared targets
    with pytest.raises(UserError, match="a truncated LoRA"):
        handlers.save_uploaded_lora(studio, str(truncated), tmp_path / "uploads")
    monkeypatch.setattr("rats_app.lora.MAX_LORA_BYTES", 1024)
    with pytest.raises(UserError, match="over the 0 MB limit|over the .* limit"):
        handlers.save_uploaded_lora(studio, str(lora_file), tmp_path / "uploads")
    with pytest.raises(UserError, match="is gone"):
        handlers.save_uploaded_lora(studio, str(tmp_path / "expired.safetensors"), tmp_path / "uploads")


# ------------------------------------------------------------------ 7. CLI and seed edges
def test_generate_refuses_a_seed_beyond_64_bits_and_takes_the_largest(tmp_path, tiny_world_model_dir):
    args = ("rats_app.generate", "--prompt", PROMPT, "--nfe", "1", "--model", str(tiny_world_model_dir),
            "--device", "cpu")
    big = _cli(*args, "--out", str(tmp_path / "a.png"), "--seed", str(2**64))
    assert big.returncode == 2 and big.stderr.strip().endswith("got 18446744073709551616"), big.stderr
    top = _cli(*args, "--out", str(tmp_path / "b.png"), "--seed", str(2**64 - 1))
    assert top.returncode == 0 and (tmp_path / "b.png").exists(), top.stderr


def test_evaluate_checks_its_out_dir_and_reward_names_before_loading(tmp_path, tiny_world_model_dir):
    base = ("rats_app.evaluate", "--model", str(tiny_world_model_dir), "--nfe", "1", "--teacher-nfe", "1")
    result = _cli(*base, "--out-dir", "/proc/x")
    assert result.returncode == 2 and "cannot write to output directory /proc/x" in result.stderr
    assert "Loading" not in result.stderr  # nothing loaded first
    result = _cli(*base, "--out-dir", str(tmp_path / "e"), "--rewards", "shapes", "nosuch")
    assert result.returncode == 2 and "unknown reward 'nosuch'" in result.stderr


def test_train_with_an_unknown_reward_is_one_line_and_leaves_no_run_dir(tmp_path):
    result = _cli("rats_app.train", "--output-dir", str(tmp_path / "run"), "reward=nosuch")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[-1]]
    assert "unknown reward 'nosuch'" in result.stderr and not (tmp_path / "run").exists()


def test_another_models_lora_is_one_error_line_without_library_noise(tmp_path, tiny_world_model_dir, lora_file):
    bad = _edited(lora_file, tmp_path / "other.safetensors", _wider)
    result = _cli("rats_app.generate", "--prompt", PROMPT, "--nfe", "1", "--model", str(tiny_world_model_dir),
                  "--device", "cpu", "--out", str(tmp_path / "x.png"), "--lora", str(bad))
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and "Loading" not in ln]
    assert result.returncode == 2 and len(lines) == 1 and "does not fit this model" in lines[0], result.stderr


@pytest.mark.parametrize("seed, expected", [
    (2**63 - 1, 2**63 - 1), (str(2**64 - 1), 2**64 - 1), ("9007199254740993", 2**53 + 1), (" 7 ", 7)])
def test_seeds_are_exact_64_bit_integers(seed, expected):
    from rats_app.models import check_seed

    assert check_seed(seed) == expected


@pytest.mark.parametrize("seed, message", [
    ("abc", "seed must be a whole number"), (1.5, "seed must be a whole number"), (-1, "between 0 and 2**64 - 1"),
    (2**64, "between 0 and 2**64 - 1"), (float(2**60), "cannot hold it exactly"), (True, "must be an integer")])
def test_bad_seeds_are_named(seed, message):
    from rats_app.models import check_seed

    with pytest.raises(UserError, match=message.replace("*", r"\*")):
        check_seed(seed)


def test_text_seed_in_the_page_is_the_same_seed(studio):
    big = str(2**53 + 1)
    items, *_ = handlers.compare(studio, PROMPT, big, 1, 1, None)
    assert items[1].image.tobytes() == studio.generate(PROMPT, 2**53 + 1, 1, "Baseline").image.tobytes()


def test_sweep_and_compare_share_the_nfe_rule(studio):
    message = r"teacher NFE \(4\) must be at least the student NFE \(5\)"
    with pytest.raises(UserError, match=message):
        studio.sweep(PROMPT, 0, nfes=[1, 5], teacher_nfe=4, lora=None)
    with pytest.raises(UserError, match=message):
        studio.compare(PROMPT, 0, 5, 4, lora=None)


# ------------------------------------------------------------------ 8. bounded resources
def test_gradio_cache_is_pruned_and_the_queue_bounded(studio, tmp_path, monkeypatch):
    from rats_app.ui.app import CACHE_PRUNING, build_app, launch_options, queued

    monkeypatch.setenv("RATS_QUEUE_SIZE", "5")
    monkeypatch.setenv("RATS_MAX_UPLOAD_MB", "50")
    monkeypatch.setenv("RATS_AUTH", "me:secret")
    demo = queued(build_app(studio, JobManager(tmp_path / "runs" / "app")))
    assert demo.delete_cache == CACHE_PRUNING
    assert demo._queue.max_size == 5
    options = launch_options()
    assert options["max_file_size"] == "50mb" and options["auth"] == ("me", "secret")
