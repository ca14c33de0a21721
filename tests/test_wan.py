"""Wan2.1 text-to-video through the same sampler, trainer, LoRA files and CLI, on a tiny WanPipeline
built in the test session (UMT5 config and tokenizer made locally, nothing downloaded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rats_app.errors import UserError
from rats_app.families import Size, family_of
from rats_app.model_presets import WAN_FULL
from rats_app.models import load_pipeline
from rats_app.sampler import generate

PROMPTS = ["a large red circle moving right on a white background", "a small blue square moving up on a gray background"]
SIZE = Size(32, 32, 9)
CALL = {"num_frames": 9, "height": 32, "width": 32, "max_sequence_length": 16, "guidance_scale": 3.0}


def plain_wan(path, lora=None):
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    if lora is not None:
        pipe.load_lora_weights(str(Path(lora).parent if Path(lora).is_file() else lora),
                               **({"weight_name": Path(lora).name} if Path(lora).is_file() else {}))
    return pipe


def plain_frames(pipe, prompt, nfe, seed):
    out = pipe(prompt, num_inference_steps=nfe, generator=torch.Generator("cpu").manual_seed(seed),
               output_type="np", **CALL)
    return np.round(out.frames[0] * 255).astype(int)


@pytest.fixture(scope="module")
def unipc_wan_dir(tiny_wan_dir, tmp_path_factory):
    """The tiny model with the scheduler the Wan2.1 hub checkpoints ship (UniPC, flow prediction)."""
    from diffusers import UniPCMultistepScheduler

    path = tmp_path_factory.mktemp("wan-unipc") / "model"
    shutil.copytree(tiny_wan_dir, path)
    shutil.rmtree(path / "scheduler")
    UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                            num_train_timesteps=1000).save_pretrained(path / "scheduler")
    index = json.loads((path / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "UniPCMultistepScheduler"]
    (path / "model_index.json").write_text(json.dumps(index))
    return path


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_generation_is_pixel_identical_to_plain_wan_pipeline(scheduler, tiny_wan_dir, unipc_wan_dir):
    path = tiny_wan_dir if scheduler == "euler" else unipc_wan_dir
    family = family_of(load_pipeline(path, device="cpu")[0])
    plain = plain_wan(path)
    for nfe in (1, 3, 8):
        ours = generate(family, PROMPTS, nfe, [4, 5], SIZE, max_sequence_length=16, guidance_scale=3.0)
        for prompt, seed, clip in zip(PROMPTS, (4, 5), ours):
            assert clip.shape == (9, 32, 32, 3)
            assert np.abs(np.round(clip * 255).astype(int) - plain_frames(plain, prompt, nfe, seed)).max() <= 1


@pytest.fixture(scope="module")
def video_run(tmp_path_factory, prepare_tiny, tiny_wan_dir):
    """Two RATS steps on the tiny Wan model (frame-wise image reward, gradient accumulation 2)."""
    out = tmp_path_factory.mktemp("wan-run") / "run"
    run = prepare_tiny(out, model_dir=tiny_wan_dir, prompts=PROMPTS, batch_size=1, gradient_accumulation_steps=2,
                       reward_frames=3, lora_targets=WAN_FULL, checkpoint_every=10, reward="shapes")
    metrics = []

    class Keep:
        def __getattr__(self, name):
            return lambda *args: metrics.append(args[1]) if name == "on_step_end" else None
    run.train([Keep()])
    return out, metrics


def test_rats_steps_train_a_video_lora(video_run):
    out, metrics = video_run
    assert [m.step for m in metrics] == [1, 2] and all(np.isfinite(m.loss) and m.grad_norm > 0 for m in metrics)
    state = load_file(out / "pytorch_lora_weights.safetensors")
    assert any(".attn2.to_q." in k for k in state) and any(".ffn.net.2." in k for k in state)  # cross-attn + ffn
    assert any(v.abs().sum() > 0 for k, v in state.items() if "lora_B" in k)
    record = json.loads((out / "rats.json").read_text())
    assert record["solver"] == "euler" and record["media"] == "video" and record["pipeline"] == "WanPipeline"
    assert "num_frames=9" in (out / "README.md").read_text()


def test_lora_saved_loads_in_plain_wan_pipeline_with_identical_frames(video_run, tiny_wan_dir):
    from rats_app.api import Studio

    out, _ = video_run
    studio = Studio(tiny_wan_dir, device="cpu", reward_names=[])
    ours, _ = studio.generate_batch(PROMPTS[:1], [7], 3, out)
    base, _ = studio.generate_batch(PROMPTS[:1], [7], 3)
    reference = plain_frames(plain_wan(tiny_wan_dir, out), PROMPTS[0], 3, 7)
    assert np.abs(np.round(ours[0] * 255).astype(int) - reference).max() <= 1
    assert np.abs(np.round(base[0] * 255).astype(int) - reference).max() > 0  # the LoRA changes the clip


def test_export_to_the_original_wan_layout_round_trips_through_diffusers(video_run, tiny_wan_dir, tmp_path):
    from rats_app.lora_export import main

    out, _ = video_run
    exported = tmp_path / "wan-original.safetensors"
    assert main(["--lora", str(out), "--out", str(exported)]) == 0
    keys = load_file(exported)
    assert all(k.startswith("diffusion_model.blocks.") for k in keys)
    assert any(".self_attn.q.lora_down.weight" in k for k in keys) and any(".ffn.2.lora_up." in k for k in keys)
    # diffusers' own converter (WanPipeline.load_lora_weights) reads it back: the same frames.
    again = plain_frames(plain_wan(tiny_wan_dir, exported), PROMPTS[1], 2, 3)
    assert np.abs(again - plain_frames(plain_wan(tiny_wan_dir, out), PROMPTS[1], 2, 3)).max() <= 1


def test_frame_wise_reward_gradients_reach_the_pixels(tiny_world_reward):
    from rats_app.rewards.video import FrameWiseReward, frame_subset

    clips = torch.rand(2, 3, 9, 32, 32, requires_grad=True)
    reward = FrameWiseReward(tiny_world_reward, frames=3)
    scores = reward.score(clips, PROMPTS)
    scores.sum().backward()
    used = frame_subset(9, 3)
    assert used == [0, 4, 8] and scores.shape == (2,)
    assert all(clips.grad[:, :, f].abs().sum() > 0 for f in used)
    assert all(clips.grad[:, :, f].abs().sum() == 0 for f in range(9) if f not in used)
    frames = clips.detach()[:, :, used].transpose(1, 2).reshape(6, 3, 32, 32)
    by_frame = tiny_world_reward.score(frames, [p for p in PROMPTS for _ in used]).reshape(2, 3).mean(1)
    assert torch.allclose(scores.detach(), by_frame.detach(), atol=1e-6)


def test_two_processes_equal_one_process_accumulating_the_same_global_batch(tmp_path, tiny_wan_dir, tiny_reward_dir):
    env = {**os.environ, "RATS_SHAPES_REWARD": str(tiny_reward_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    common = [f"model={tiny_wan_dir}", "reward=shapes", "steps=2", "batch_size=1", "teacher_steps=4", "sample_every=0",
              "lora_rank=2", "device=cpu", "reward_frames=2", f"lora_targets={json.dumps(WAN_FULL)}"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no"]
    runs = {"ddp": [*launch, "--multi_gpu", "--num_processes", "2", "-m", "rats_app.train", "--output-dir",
                    str(tmp_path / "ddp"), *common],
            "one": [sys.executable, "-m", "rats_app.train", "--output-dir", str(tmp_path / "one"), *common,
                    "gradient_accumulation_steps=2"]}
    for name, command in runs.items():
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    a = load_file(tmp_path / "ddp" / "pytorch_lora_weights.safetensors")
    b = load_file(tmp_path / "one" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert any(v.abs().sum() > 0 for k, v in b.items() if "lora_B" in k)


def test_bad_video_input_is_one_clear_error_before_any_work(tiny_wan_dir, tiny_world_model_dir, video_run, train_tiny,
                                                            tmp_path):
    family = family_of(load_pipeline(tiny_wan_dir, device="cpu")[0])
    with pytest.raises(UserError, match=r"num_frames must be 2k\+1 for this model.*got 8"):
        family.check_size(Size(32, 32, 8))
    with pytest.raises(UserError, match="height and width must be multiples of 8 and 8.*got 36x32"):
        family.check_size(Size(36, 32, 9))
    from rats_app.api import Studio

    image_lora = tmp_path / "image-lora"
    train_tiny(image_lora, steps=1)
    video = Studio(tiny_wan_dir, device="cpu", reward_names=[])
    with pytest.raises(UserError, match="RATS LoRA for a FluxPipeline .image. model, and this is a WanPipeline"):
        video.check_lora(image_lora)
    image = Studio(tiny_world_model_dir, device="cpu", reward_names=[])
    with pytest.raises(UserError, match="RATS LoRA for a WanPipeline .video. model, and this is a FluxPipeline"):
        image.check_lora(video_run[0])
    (image_lora / "rats.json").unlink()  # a LoRA without our record: its keys give it away
    with pytest.raises(UserError, match="names no linear layer of this model's WanTransformer3DModel"):
        video.check_lora(image_lora)


def test_generate_cli_writes_mp4_and_a_lossless_filmstrip(tmp_path, tiny_wan_dir, video_run):
    import imageio.v2 as imageio
    from PIL import Image

    from rats_app.generate import main

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out"
    assert main(["--model", str(tiny_wan_dir), "--prompts-file", str(prompts), "--out-dir", str(out), "--nfe", "3",
                 "--seed", "11", "--lora", str(video_run[0])]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0000.mp4", "0000.png", "0001.mp4", "0001.png"]
    plain = plain_wan(tiny_wan_dir, video_run[0])
    for i, prompt in enumerate(PROMPTS):
        strip = np.asarray(Image.open(out / f"{i:04d}.png").convert("RGB")).astype(int)
        assert strip.shape == (32, 288, 3)
        frames = plain_frames(plain, prompt, 3, 11 + i)
        assert np.abs(strip - np.concatenate(list(frames), axis=1)).max() <= 3
        video = imageio.mimread(out / f"{i:04d}.mp4")
        assert len(video) == 9 and video[0].shape == (32, 32, 3)
    assert main(["--model", str(tiny_wan_dir), "--prompt", PROMPTS[0], "--out", str(tmp_path / "x.png"),
                 "--nfe", "2"]) == 2


@pytest.fixture(scope="module")
def video_app(tiny_wan_dir, tiny_world_reward, video_run, tmp_path_factory):
    """The app on the tiny video model, with a frame-wise image reward and the trained video LoRA."""
    import socket

    from rats_app.api import Studio
    from rats_app.jobs import JobManager
    from rats_app.ui.app import build_app

    studio = Studio(tiny_wan_dir, device="cpu", reward_names=["shapes"])
    studio.load()
    studio._rewards["shapes"] = studio._for_media(tiny_world_reward)
    root = tmp_path_factory.mktemp("video-app")
    shutil.copytree(video_run[0], root / "runs" / "video-run")  # a finished run of this model: the LoRA list's first
    demo = build_app(studio, JobManager(root / "runs" / "app"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_gradio_client_compare_on_a_video_model_returns_three_playable_mp4s(video_app):
    import imageio.v2 as imageio
    from gradio_client import Client

    teacher, baseline, rats, table, *videos = Client(video_app, verbose=False).predict(
        PROMPTS[0], 3, 2, 4, api_name="/compare")
    assert [r[0] for r in table["data"]] == ["Teacher @ 4", "Baseline @ 2", "RATS @ 2"]
    assert {"shapes", "flicker", "motion"} <= set(table["headers"])
    assert len(videos) == 3
    for video in videos:
        path = video["video"] if isinstance(video, dict) else video
        assert str(path).endswith(".mp4") and len(imageio.mimread(path)) == 9
    from PIL import Image

    assert Image.open(teacher).size == (288, 32)  # the frames side by side


def test_browser_plays_a_compared_clip(video_app):
    import shutil as which

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=which.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page()
        page.goto(video_app)
        from playwright.sync_api import expect

        expect(page.locator("#load-status")).to_contain_text("rewards:", timeout=60_000)
        page.locator("#student-nfe input[type=number]").fill("2")
        page.locator("#compare-button").click()
        video = page.locator("#rats-video video")
        video.wait_for(timeout=120_000)
        page.wait_for_function("() => { const v = document.querySelector('#rats-video video');"
                               " return v && v.readyState >= 2 && v.videoWidth === 32; }", timeout=60_000)
        playing = page.evaluate("async () => { const v = document.querySelector('#rats-video video');"
                                " await v.play(); await new Promise(r => setTimeout(r, 400));"
                                " return [v.currentTime > 0 || v.ended, v.duration]; }")
        assert playing[0] and playing[1] > 0.5  # 9 frames at 8 fps
        browser.close()


def test_train_tab_trains_a_video_lora_that_compare_lists(tmp_path, tiny_wan_dir, tiny_world_reward, tiny_components):
    """The Train tab's path (handlers.start_training -> JobManager) on a video model: the run finishes,
    its sample grid is one filmstrip row per clip, and the LoRA is offered for that model only."""
    from PIL import Image

    from rats_app.api import Studio
    from rats_app.jobs import JobManager
    from rats_app.ui import handlers

    jobs = JobManager(tmp_path / "runs" / "app", components_factory=lambda config: tiny_components(
        tiny_wan_dir, PROMPTS))
    form = {"model": str(tiny_wan_dir), "reward": "shapes", "steps": 2, "batch_size": 1, "teacher_steps": 4,
            "student_steps": 2, "lora_rank": 2, "reward_frames": 3, "sample_every": 0, "device": "cpu"}
    out = handlers.start_training(jobs, form, handlers.TYPED_PROMPTS, "\n".join(PROMPTS), None)
    assert jobs.wait(300).status == "finished", jobs.state.message
    grid = Image.open(jobs.latest_sample())
    assert grid.height % 32 == 0 and grid.width == 9 * 32  # each clip's nine frames side by side
    assert "finished" in handlers.progress_text(jobs)
    video = Studio(tiny_wan_dir, device="cpu", reward_names=["shapes"])
    assert out in handlers.lora_choices(jobs, video).values()


def test_a_student_grid_is_refused_where_the_plain_call_takes_no_sigmas(tmp_path, prepare_tiny, tiny_wan_dir):
    """WanPipeline's call has no ``sigmas``: a LoRA trained on its own grid could not be sampled outside
    RATS Studio, so the run stops before any work and says why."""
    from rats_app.errors import ConfigError

    with pytest.raises(ConfigError, match="WanPipeline's call takes no sigmas"):
        prepare_tiny(tmp_path / "run", model_dir=tiny_wan_dir, prompts=PROMPTS, reward="shapes",
                     student_sigmas_by_nfe={3: [1.0, 0.6, 0.3]})
    assert not (tmp_path / "run" / "pytorch_lora_weights.safetensors").exists()
