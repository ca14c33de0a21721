"""Train: a short RATS LoRA run on this machine, its live curves and samples; the result becomes
selectable in the LoRA list when it finishes or is stopped."""

from __future__ import annotations

import gradio as gr

from rats_app.errors import UserError
from rats_app.rewards.registry import available_rewards
from rats_app.ui import handlers
from rats_app.ui.form import build_form, to_config_dict
from rats_app.ui.guard import on_zero_gpu, shown

ZERO_GPU_MESSAGE = ("Training is disabled on ZeroGPU Spaces: each GPU call there is capped at minutes. "
                    "Run RATS Studio locally or on a Space with a dedicated GPU to train.")


def build(ctx, shared) -> None:
    jobs = ctx.jobs

    with gr.Tab("Train"):
        gr.Markdown(ZERO_GPU_MESSAGE if on_zero_gpu() else
                    "Short RATS LoRA fine-tuning on this machine. One run at a time; the result appears "
                    "in the LoRA list above when it finishes or is stopped.")
        names, form = build_form(available_rewards())
        with gr.Row():
            source = gr.Radio(list(handlers.PROMPT_SOURCES), value=handlers.WORLD_PROMPTS, label="prompts")
            typed = gr.Textbox(label="typed prompts (one per line)", lines=3)
            prompt_file = gr.File(label="prompts file (.txt)", file_types=[".txt"], type="filepath")
        with gr.Row():
            start = gr.Button("Start training", variant="primary", elem_id="train-start")
            stop_button = gr.Button("Stop", elem_id="train-stop")
        progress = gr.Markdown("No training run yet.", elem_id="train-progress")
        curves = gr.Plot(label="R_S, R_T, gate, matching loss, watch rewards")
        sample = gr.Image(label="Latest sample grid", type="filepath", elem_id="train-sample")
        timer = gr.Timer(1.0, active=False)
    seen_run = gr.State(None)

    @shown
    def train(*values):
        if on_zero_gpu():
            raise UserError(ZERO_GPU_MESSAGE)
        *form_values, source_value, typed_value, upload, model_label = values
        config = {**to_config_dict(names, form_values), "model": str(ctx.studio(model_label).model_path)}
        out = handlers.start_training(jobs, config, source_value, typed_value, upload)
        return f"Started: `{out}`", gr.Timer(active=True)

    def stop():
        if jobs.stop():
            return "Stop requested: the run saves a loadable LoRA at the end of the current step."
        return "No training run is in progress."

    def poll(seen_dir, model_label):
        state = jobs.state
        done = state.status in ("finished", "stopped", "failed")
        dropdown, lora_dir = gr.update(), gr.update()
        if done and state.output_dir != seen_dir and state.status != "failed":
            dropdown = shared["lora_dropdown"](state.output_dir, model_label)
            lora_dir, seen_dir = state.output_dir, state.output_dir
        sample_path = jobs.latest_sample()
        return (handlers.progress_text(jobs), handlers.metrics_plot(state.metrics),
                str(sample_path) if sample_path else None, dropdown, lora_dir, seen_dir,
                gr.Timer(active=not done and state.status != "idle"))

    start.click(train, [*form, source, typed, prompt_file, shared["model_state"]], [progress, timer], api_name="train")
    stop_button.click(stop, None, progress, api_name="stop_training")
    timer.tick(poll, [seen_run, shared["model_state"]],
               [progress, curves, sample, shared["lora"], shared["lora_dir"], seen_run, timer],
               api_visibility="private")
