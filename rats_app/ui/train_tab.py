"""Train: a short RATS LoRA run on this machine, its live curves and samples; the result becomes
selectable in the LoRA list when it finishes or is stopped.

A run belongs to the browser that started it (an id kept in the browser's storage, so it
survives a page refresh): only that browser can stop it. Everyone sees its progress, read from
the run's own files, so a refreshed page shows it too. On a shared deployment training is off
unless switched on (``RATS_TRAINING``; README, "Deploy").
"""

from __future__ import annotations

import os
import uuid

import gradio as gr

from rats_app.config import TrainConfig, with_world_defaults
from rats_app.errors import UserError
from rats_app.rewards.registry import available_rewards
from rats_app.ui import handlers
from rats_app.ui.form import build_form, to_config_dict, values_from_config
from rats_app.ui.guard import on_zero_gpu, shown

ZERO_GPU_MESSAGE = ("Training is disabled on ZeroGPU Spaces: each GPU call there is capped at minutes. "
                    "Run RATS Studio locally or on a Space with a dedicated GPU to train.")
SHARED_MESSAGE = ("Training is off on this shared deployment (the app listens on all interfaces or runs on a "
                  "Space): anyone could start runs here. Set RATS_TRAINING=on to allow it, ideally with "
                  "RATS_AUTH=user:password so that only you can reach the page.")
OFF_MESSAGE = "Training is switched off on this deployment (RATS_TRAINING=off)."


def training_disabled() -> str | None:
    """Why training is off here, or None when it is on (RATS_TRAINING: on, off, or auto)."""
    mode = os.environ.get("RATS_TRAINING", "auto").lower()
    if mode == "off":
        return OFF_MESSAGE
    if on_zero_gpu():
        return ZERO_GPU_MESSAGE
    shared = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1") in ("0.0.0.0", "::") or bool(os.environ.get("SPACE_ID"))
    if mode == "auto" and shared and not os.environ.get("RATS_AUTH"):
        return SHARED_MESSAGE
    return None


def _owner(token: str | None, request: gr.Request | None) -> str | None:
    """The browser's id (or, for an API client, its session)."""
    return token or (request.session_hash if request is not None else None)


def build(ctx, shared) -> None:
    jobs = ctx.jobs
    disabled = training_disabled()

    with gr.Tab("Train"):
        gr.Markdown(disabled or "Short RATS LoRA fine-tuning on this machine, one run at a time. The essentials "
                    "come first; everything else is under Advanced. The result appears in the LoRA list above "
                    "when it finishes or is stopped.", elem_id="train-intro")
        names, form = build_form(available_rewards())
        with gr.Row():
            source = gr.Radio(list(handlers.PROMPT_SOURCES), value=handlers.WORLD_PROMPTS, label="prompts")
            typed = gr.Textbox(label="typed prompts (one per line)", lines=3)
            prompt_file = gr.File(label="prompts file (.txt)", file_types=[".txt"], type="filepath")
        estimate = gr.Markdown("", elem_id="train-estimate")
        with gr.Row():
            start = gr.Button("Start training", variant="primary", elem_id="train-start", interactive=not disabled)
            stop_button = gr.Button("Stop", elem_id="train-stop", interactive=not disabled)
        with gr.Accordion("Resume a stopped, failed or interrupted run", open=False):
            with gr.Row():
                resumable = gr.Dropdown(label="run", choices=[], elem_id="resume-select", scale=3)
                more_steps = gr.Number(label="new total steps (blank: the run's own)", precision=0, scale=1)
                resume_button = gr.Button("Resume", elem_id="train-resume", interactive=not disabled, scale=1)
        progress = gr.Markdown("No training run yet.", elem_id="train-progress")
        curves = gr.Plot(label="R_S, R_T, gate, matching loss, watch rewards")
        sample = gr.Image(label="Latest sample grid", type="filepath", elem_id="train-sample")
        # Always ticking (Gradio's timers are unreliable when toggled); a tick that finds nothing new skips.
        timer = gr.Timer(1.0)
    seen_run = gr.State(None)
    seen_progress = gr.State(None)
    owner_token = gr.BrowserState(None, storage_key="rats-studio-owner")

    def world_defaults(model_label):
        """The form reset to the training defaults of the chosen model's world (Moving Shapes trains
        its student differently from Shapes World)."""
        try:
            model_path = str(ctx.studio(model_label).model_path)
        except UserError:  # weights not on this machine: the header says so; the form stays as it is
            return [gr.skip()] * len(names)
        return values_from_config(names, TrainConfig.from_dict(with_world_defaults({"model": model_path})).to_dict())

    def config_of(form_values, model_label) -> dict:
        return {**to_config_dict(names, form_values), "model": str(ctx.studio(model_label).model_path)}

    @shown
    def train(*values, request: gr.Request = None):
        if disabled:
            raise UserError(disabled)
        *form_values, source_value, typed_value, upload, model_label, token = values
        out = handlers.start_training(jobs, config_of(form_values, model_label), source_value, typed_value, upload,
                                      owner=_owner(token, request))
        return f"Started: `{out}`"

    @shown
    def resume(run_dir, steps, token, request: gr.Request = None):
        if disabled:
            raise UserError(disabled)
        if not run_dir:
            raise UserError("choose a run to resume")
        total = handlers.check_int(steps, "steps") if steps not in (None, "") else None
        out = jobs.resume(run_dir, owner=_owner(token, request), steps=total)
        return f"Resumed: `{out}`"

    @shown
    def stop(token, request: gr.Request = None):
        if jobs.stop(owner=_owner(token, request)):
            return "Stop requested: the run saves a resumable checkpoint and a loadable LoRA after this step."
        return "No training run is in progress."

    def estimate_text(*values):
        *form_values, model_label = values
        return handlers.estimate_text(ctx.studio(model_label), config_of(form_values, model_label))

    def poll(seen_dir, seen, model_label):
        state = jobs.state
        now = (state.output_dir, state.status, state.step, str(jobs.latest_sample()))
        if now == seen:
            return (gr.skip(),) * len(poll_outputs)
        done = state.status in ("finished", "stopped", "failed")
        dropdown, lora_dir = gr.update(), gr.update()
        if done and state.output_dir != seen_dir and state.status != "failed":
            dropdown = shared["lora_dropdown"](state.output_dir, model_label)
            lora_dir, seen_dir = state.output_dir, state.output_dir
        sample_path = jobs.latest_sample()
        return (handlers.progress_text(jobs), handlers.metrics_plot(handlers.run_metrics(jobs)),
                str(sample_path) if sample_path else None, dropdown, lora_dir, seen_dir, now,
                gr.update(choices=handlers.resumable_choices(jobs)))

    def remember_browser(token):
        return token or uuid.uuid4().hex

    model_state = shared["model_state"]
    start.click(train, [*form, source, typed, prompt_file, model_state, owner_token], progress, api_name="train")
    resume_button.click(resume, [resumable, more_steps, owner_token], progress, api_name="resume_training")
    stop_button.click(stop, owner_token, progress, api_name="stop_training")
    shared["model"].change(world_defaults, shared["model"], form, api_visibility="private")
    for component in form:
        component.change(estimate_text, [*form, model_state], estimate, api_visibility="private")
    poll_outputs = [progress, curves, sample, shared["lora"], shared["lora_dir"], seen_run, seen_progress, resumable]
    timer.tick(poll, [seen_run, seen_progress, model_state], poll_outputs, api_visibility="private")
    shared["on_load"] += [(remember_browser, owner_token, owner_token),
                          (world_defaults, shared["model"], form),  # the opened model's world, not TrainConfig's
                          (poll, [seen_run, seen_progress, model_state], poll_outputs),  # shown after a refresh too
                          (estimate_text, [*form, model_state], estimate)]
