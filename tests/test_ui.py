"""The app: handlers called directly, the running app through gradio_client, and a real browser."""

from __future__ import annotations

import json
import shutil
import socket

import pytest

from rats_app.api import Studio
from rats_app.errors import ConfigError, UserError
from rats_app.jobs import JobManager
from rats_app.ui import handlers

PROMPT = "a small red circle at the top left on a white background"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_world_model_dir, tiny_world_reward, train_tiny, tiny_components):
    root = tmp_path_factory.mktemp("ui")
    lora = root / "runs" / "cli-run"
    train_tiny(lora, steps=1)
    studio = Studio(tiny_world_model_dir, device="cpu", reward_names=["shapes", "hpsv2"])
    studio._rewards["shapes"] = tiny_world_reward
    jobs = JobManager(root / "runs" / "app", components_factory=lambda config: tiny_components())
    return {"studio": studio, "jobs": jobs, "lora": lora, "root": root}


# ------------------------------------------------------------------ handlers, directly
def test_compare_handler_table(env):
    items, headers, rows = handlers.compare(env["studio"], PROMPT, 3, 2, 4, str(env["lora"]))
    assert headers[:3] == ["column", "nfe", "latency_ms"] and "shapes" in headers
    assert [r[0] for r in rows] == ["Teacher @ 4", "Baseline @ 2", "RATS @ 2"]
    assert "hpsv2" not in headers and env["studio"].reward_errors()["hpsv2"].startswith("hpsv2: ")
    teacher, baseline, rats = rows
    assert "(" not in baseline[headers.index("shapes")] and "(" in rats[headers.index("shapes")]  # delta vs baseline
    assert headers[-1] == "cfg" and [r[-1] for r in rows] == [1.0, 1.0, 1.0]  # the tiny world runs unguided


@pytest.mark.parametrize("args, message", [
    (("", 0, 2, 4), "empty prompt"),
    (("a " * 200, 0, 2, 4), "prompt too long"),
    (("a small red dragon at the center on a white background", 0, 2, 4), "unknown word 'dragon'"),
    ((PROMPT, 0, 0, 4), "nfe must be between 1 and 1000"),
    ((PROMPT, 0, 5, 4), "teacher NFE (4) must be at least the student NFE (5)"),
    ((PROMPT, 1.5, 2, 4), "seed must be a whole number"),
    ((PROMPT, "abc", 2, 4), "seed must be a whole number"),
    ((PROMPT, str(2**64), 2, 4), "seed must be between 0 and 2**64 - 1"),
])
def test_compare_handler_rejects_bad_input(env, args, message):
    with pytest.raises(UserError) as info:
        handlers.compare(env["studio"], *args, None)
    assert message in str(info.value)


def test_training_form_errors_name_the_field(env):
    with pytest.raises(ConfigError, match="tau: -1.0 must be > 0.0"):
        handlers.start_training(env["jobs"], {"tau": -1}, handlers.WORLD_PROMPTS, "", None)
    with pytest.raises(UserError, match="typed prompt list is empty"):
        handlers.start_training(env["jobs"], {}, "Typed list", "  \n", None)
    with pytest.raises(UserError, match="steps must be an integer"):
        handlers.start_training(env["jobs"], {"steps": 2.5}, handlers.WORLD_PROMPTS, "", None)
    with pytest.raises(ConfigError, match="sample_sigmas_by_nfe: \\[0.5\\] at NFE 2 must be a list of 2 sigmas"):
        handlers.start_training(env["jobs"], {"sample_sigmas_by_nfe": {2: [0.5]}}, handlers.WORLD_PROMPTS, "", None)
    config = handlers.build_train_config({"sample_cfg_by_nfe": {}, "student_sigmas_by_nfe": {2: [1.0, 0.6]}})
    assert config.sample_cfg_by_nfe == {} and config.student_sigmas_by_nfe == {2: [1.0, 0.6]}


def test_form_values_round_trip_through_a_config():
    """A world's defaults set into the form read back as the same config keys: comma-separated text for
    the list fields shown as text boxes, the list itself for the watch-rewards multiselect (whose
    dropdown rejects a string: a model switch used to raise an error there)."""
    from rats_app.config import TrainConfig
    from rats_app.ui.form import form_fields, to_config_dict, values_from_config

    names = [f.name for f in form_fields()]
    config = TrainConfig(watch_rewards=["shapes", "clip"], lora_targets=["attn1.to_q", "ffn.net.2"],
                         student_steps_choices=[2, 3], sample_cfg_by_nfe={2: 1.75, 1: 1.5},
                         student_sigmas_by_nfe={2: [1.0, 0.6], 1: [0.9]}).to_dict()
    values = dict(zip(names, values_from_config(names, config)))
    assert values["watch_rewards"] == ["shapes", "clip"] and values["lora_targets"] == "attn1.to_q, ffn.net.2"
    assert values["sample_cfg_by_nfe"] == "1: 1.5, 2: 1.75" and values["student_sigmas_by_nfe"] == "1: 0.9, 2: 1.0 0.6"
    assert values_from_config(["watch_rewards"], TrainConfig().to_dict()) == [[]]
    assert to_config_dict(names, list(values.values())) == {n: config[n] for n in names}
    for name, text in (("sample_cfg_by_nfe", "2 1.75"), ("sample_cfg_by_nfe", "2: 1.0 0.6"),
                       ("student_sigmas_by_nfe", "2:"), ("student_sigmas_by_nfe", "2: 1.0: 0.6")):
        with pytest.raises(UserError, match=f"{name} must look like"):
            to_config_dict([name], [text])


def test_lora_upload_validation_keeps_nothing_bad(env, tmp_path):
    studio, jobs = env["studio"], env["jobs"]
    pickle = tmp_path / "lora.bin"
    pickle.write_bytes(b"\x80\x04not a safetensors")
    with pytest.raises(UserError, match="must be .safetensors"):
        handlers.save_uploaded_lora(studio, str(pickle), jobs.uploads_dir)
    import torch
    from safetensors.torch import save_file

    mismatched = tmp_path / "other.safetensors"
    save_file({"transformer.foo.lora_A.weight": torch.zeros(2, 2)}, mismatched)
    with pytest.raises(UserError, match="does not fit this model"):
        handlers.save_uploaded_lora(studio, str(mismatched), jobs.uploads_dir)
    assert not (jobs.uploads_dir / "other").exists()
    good = tmp_path / "mine.safetensors"
    shutil.copyfile(env["lora"] / "pytorch_lora_weights.safetensors", good)
    target = handlers.save_uploaded_lora(studio, str(good), jobs.uploads_dir)
    assert target in handlers.lora_choices(jobs, studio).values()


# ------------------------------------------------------------------ the running app
@pytest.fixture(scope="module")
def running_app(env):
    from rats_app.ui.app import build_app

    demo = build_app(env["studio"], env["jobs"])
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_gradio_client_compare_and_sweep(running_app):
    from gradio_client import Client

    client = Client(running_app, verbose=False)
    teacher, baseline, rats, table, *videos = client.predict(PROMPT, 1, 2, 4, api_name="/compare")
    assert videos == [None, None, None]  # an image model
    assert all(str(p).endswith(".png") for p in (teacher, baseline, rats)), (teacher, baseline, rats)
    assert table["headers"][:3] == ["column", "nfe", "latency_ms"] and len(table["data"]) == 3
    gallery, plot, sweep_table = client.predict(PROMPT, 1, [1, 2], 4, api_name="/sweep")
    assert len(gallery) == 5 and len(sweep_table["data"]) == 5
    with pytest.raises(Exception, match="teacher NFE"):
        client.predict(PROMPT, 1, 5, 4, api_name="/compare")
    assert len(client.predict(PROMPT, 2, 1, 2, api_name="/compare")) == 7  # still serving


# ------------------------------------------------------------------ a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
expect = None  # playwright's expect, imported with the browser


@pytest.fixture(scope="module")
def page(running_app):
    global expect
    from playwright.sync_api import expect

    if CHROMIUM is None:
        pytest.fail("Debian's chromium is required for the browser tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(running_app)
        expect(page.locator("#load-status")).to_contain_text("rewards:", timeout=60_000)
        yield page
        browser.close()


def test_browser_compare(page, tmp_path):
    box = page.locator("#prompt textarea")
    box.fill("a large blue square at the center on a gray background")
    page.locator("#compare-button").click()
    for elem in ("#teacher-image img", "#baseline-image img", "#rats-image img"):
        page.locator(elem).wait_for(timeout=60_000)
    expect(page.locator("#scores")).to_contain_text("Teacher @ 50", timeout=30_000)
    table = page.locator("#scores").inner_text()
    assert "Baseline @ 3" in table and "RATS @ 3" in table and "shapes" in table
    page.screenshot(path=str(tmp_path / "compare.png"))


def test_browser_bad_input_shows_error_and_keeps_serving(page):
    page.locator("#prompt textarea").fill("a small red dragon at the center on a white background")
    page.locator("#compare-button").click()
    page.get_by_text("unknown word 'dragon'").first.wait_for(timeout=30_000)
    page.locator("#prompt textarea").fill(PROMPT)
    page.locator("#compare-button").click()
    expect(page.locator("#scores")).to_contain_text("Teacher @ 50", timeout=60_000)


def test_browser_train_tab_run_appears_in_compare(page, env):
    page.get_by_role("tab", name="Train").click()
    steps = page.locator("#train-steps input")
    steps.fill("2")
    steps.press("Tab")  # Gradio's Number commits its value on blur
    page.locator("#train-start").click()
    expect(page.locator("#train-progress")).to_contain_text("finished", timeout=120_000)
    run_dir = env["jobs"].state.output_dir
    assert json.loads((__import__("pathlib").Path(run_dir) / "run.json").read_text())["status"] == "finished"
    page.get_by_role("tab", name="Compare").click()
    selected = page.locator("#lora-select input").input_value()
    assert "(finished)" in selected and "app/" in selected


def test_browser_progress_survives_a_refresh_and_a_stopped_run_resumes(page, env, train_tiny):
    from rats_app.training import TrainerCallback

    class StopAfterOne(TrainerCallback):
        def should_stop(self):
            return True

    stopped = env["root"] / "runs" / "stopped-run"
    train_tiny(stopped, steps=2, callbacks=[StopAfterOne()])
    page.reload()
    expect(page.locator("#load-status")).to_contain_text("rewards:", timeout=60_000)
    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-progress")).to_contain_text("finished", timeout=30_000)  # the last run, kept
    page.get_by_text("Resume a stopped, failed or interrupted run").click()
    page.locator("#resume-select input").click()
    page.get_by_role("option", name=str(stopped)).click()
    page.locator("#train-resume").click()
    expect(page.locator("#train-progress")).to_contain_text("stopped-run", timeout=30_000)
    expect(page.locator("#train-progress")).to_contain_text("finished", timeout=120_000)
    assert json.loads((stopped / "run.json").read_text())["step"] == 2


def test_browser_status_line_folds_the_unavailable_rewards(page):
    page.get_by_role("tab", name="Compare").click()
    status = page.locator("#load-status")
    expect(status).to_contain_text("1 unavailable here")
    details = page.locator("#unavailable-rewards")
    assert not details.is_visible()  # folded away
    page.get_by_text("Rewards not available here, and how to supply them").click()
    expect(details).to_contain_text("hpsv2")


def test_gradio_client_uploads_a_lora_and_a_bad_one_breaks_nothing(running_app, env, tmp_path):
    import torch
    from gradio_client import Client, handle_file
    from safetensors.torch import load_file, save_file

    client = Client(running_app, verbose=False)
    good = tmp_path / "from-client.safetensors"
    shutil.copyfile(env["lora"] / "pytorch_lora_weights.safetensors", good)
    state = load_file(good)
    key = next(k for k in sorted(state) if k.endswith("lora_A.weight"))
    save_file({**state, key: torch.zeros(state[key].shape[0], state[key].shape[1] + 64)}, tmp_path / "wide.safetensors")
    with pytest.raises(Exception, match="does not fit this model"):
        client.predict(handle_file(str(tmp_path / "wide.safetensors")), api_name="/upload_lora")
    note, _ = client.predict(handle_file(str(good)), api_name="/upload_lora")
    assert note == "Checked and selected: **uploaded: from-client**", note  # and this session's Compare uses it
    assert (env["jobs"].uploads_dir / "from-client" / "pytorch_lora_weights.safetensors").exists()
    assert len(client.predict(PROMPT, "5", 1, 2, api_name="/compare")) == 7


def test_zero_gpu_space_wraps_inference_and_disables_training(env, monkeypatch):
    """On ZeroGPU Spaces: spaces.GPU around inference, training refused with a clear message."""
    import sys
    import types

    wrapped = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration=60: (lambda fn: wrapped.append(fn.__name__) or fn)
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    from rats_app.ui.app import build_app
    from rats_app.ui.form import form_fields

    demo = build_app(env["studio"], env["jobs"])
    assert wrapped == ["compare", "sweep"]
    train = next(fn.fn for fn in demo.fns.values() if fn.api_name == "train")
    with pytest.raises(Exception, match="Training is disabled on ZeroGPU Spaces"):
        train(*([None] * len(form_fields())), handlers.WORLD_PROMPTS, "", None, "shapes-world")


def test_browser_unavailable_model_says_what_is_missing(page, monkeypatch):
    page.get_by_role("tab", name="Compare").click()
    opened = page.locator("#model-select input").input_value()
    page.locator("#model-select input").click()
    page.get_by_role("option", name="flux.1-dev").click()
    expect(page.get_by_text("flux.1-dev: weights not found").first).to_be_visible(timeout=20_000)
    assert page.locator("#model-select input").input_value() == opened != "flux.1-dev"


def test_browser_train_form_takes_the_chosen_worlds_defaults(page):
    """Moving Shapes trains its student differently (one budget, 3 steps, its own length, a LoRA that
    leaves the cross-attention alone): choosing its model resets the Train form to that world's
    defaults, choosing the opened model back to its own."""
    from rats_app.worlds import get_world

    defaults = get_world("moving-shapes").train_defaults()
    page.get_by_role("tab", name="Train").click()
    steps = page.locator("#train-steps input")
    opened = page.locator("#model-select input").input_value()
    page.locator("#model-select input").click()
    page.get_by_role("option", name="moving-shapes", exact=True).click()
    expect(steps).to_have_value(str(defaults["steps"]), timeout=30_000)
    expect(page.locator("#train-student-steps-choices textarea")).to_have_value("")
    page.get_by_text("Advanced", exact=True).click()
    expect(page.locator("#train-lora-targets textarea")).to_have_value(", ".join(defaults["lora_targets"]))
    expect(page.locator("#train-sample-cfg-by-nfe textarea")).to_have_value("")
    page.locator("#model-select input").click()
    page.get_by_role("option", name=opened, exact=True).click()
    expect(steps).to_have_value("120", timeout=30_000)
    expect(page.locator("#train-student-steps-choices textarea")).to_have_value("1, 2, 3, 4, 6, 8")
    expect(page.locator("#train-lora-targets textarea")).to_have_value("to_q, to_k, to_v, to_out.0")
    expect(page.locator("#train-sample-cfg-by-nfe textarea")).to_have_value("1: 1.75, 2: 1.75")
    expect(page.locator("#train-sample-sigmas-by-nfe textarea")).to_have_value("2: 1.0 0.6")
