"""RATS Studio's Gradio app: Compare, NFE sweep and Train tabs over rats_app's Python API.

Nothing heavy loads at import or build time: the page comes up at once with a loading notice,
and the model and rewards load in a background thread (shared by every user, loaded once).
Per-user choices (the selected model and LoRA) live in session state. Each tab is built by its
own module (compare_tab, sweep_tab, train_tab) from the shared context.
"""

from __future__ import annotations

import os
import threading

import gradio as gr

from rats_app.api import Studio
from rats_app.jobs import JobManager
from rats_app.ui import compare_tab, handlers, sweep_tab, train_tab
from rats_app.ui.context import AppContext
from rats_app.ui.guard import shown
from rats_app.ui.train_tab import ZERO_GPU_MESSAGE  # noqa: F401  (the message the tests and docs quote)

NO_LORA = "none (base model)"

# Embedded worlds' images are 32-64 px: show them scaled up with crisp pixels (the file is unchanged).
CSS = """
#teacher-image img, #baseline-image img, #rats-image img { width: 100%; height: 100%; object-fit: contain;
  image-rendering: pixelated; }
.gallery-item img, .thumbnail-item img { image-rendering: pixelated; }
"""


def _header(ctx: AppContext, shared: dict) -> None:
    jobs, studio = ctx.jobs, ctx.default_studio

    def lora_dropdown(selected_dir: str | None = None, model_label: str | None = None):
        choices = handlers.lora_choices(jobs, ctx.studio(model_label or ctx.default_label))
        labels = list(choices) + [NO_LORA]
        value = next((label for label, d in choices.items() if d == selected_dir), labels[0])
        return gr.update(choices=labels, value=value)

    def select_model(label):
        """A model whose weights are here becomes this session's; its own LoRAs are listed."""
        try:
            ctx.check(label)
        except Exception as exc:
            gr.Warning(str(exc))
            label = ctx.default_label
        choices = handlers.lora_choices(jobs, ctx.studio(label))
        first = next(iter(choices.values()), None)
        video = ctx.studio(label).media == "video"
        return label, label, lora_dropdown(first, label), first, gr.update(visible=video)

    def loading_status():
        if not studio.loaded:
            return gr.update(value="⏳ Loading the model… (the first generation waits for it)"), gr.Timer(active=True)
        errors = studio.reward_errors()
        lines = [f"✅ Model loaded: `{studio.model_path}`."]
        if errors:
            lines.append("Rewards not available here: " + "; ".join(f"**{n}** — {e}" for n, e in errors.items()))
        return gr.update(value="\n\n".join(lines)), gr.Timer(active=False)

    @shown
    def upload_lora(path, model_label):
        target = handlers.save_uploaded_lora(ctx.studio(model_label), path, jobs.uploads_dir)
        return lora_dropdown(target, model_label), target

    gr.Markdown("# RATS Studio\nFew-step, preference-aligned generation — Reward-Aware Trajectory Shaping "
                "(Li et al., arXiv 2604.14910). Default world: **Shapes World** (offline, CPU).")
    status = gr.Markdown("⏳ Loading the model…", elem_id="load-status")
    load_timer = gr.Timer(1.0)
    lora_dir = gr.State(next(iter(handlers.lora_choices(jobs, studio).values()), None))  # shipped first
    model_state = gr.State(ctx.default_label)
    with gr.Row():
        model = gr.Dropdown(label="Model", choices=ctx.labels(), value=ctx.default_label, elem_id="model-select",
                            scale=2, info="presets whose weights are not on this machine say what is missing")
        lora = gr.Dropdown(label="RATS LoRA", choices=[], elem_id="lora-select", scale=3)
        upload = gr.File(label="Upload a LoRA (.safetensors)", file_types=[".safetensors"], scale=2)
    shared.update(lora_dir=lora_dir, model_state=model_state, lora=lora, lora_dropdown=lora_dropdown)
    shared["on_load"] = [
        (lambda: threading.Thread(target=lambda: (studio.load(), studio.rewards()), daemon=True).start(), None, None),
        (lambda d: lora_dropdown(d), lora_dir, lora),
    ]
    load_timer.tick(loading_status, None, [status, load_timer], api_visibility="private")
    lora.change(lambda label, m: handlers.lora_choices(jobs, ctx.studio(m)).get(label), [lora, model_state], lora_dir,
                api_visibility="private")
    upload.upload(upload_lora, [upload, model_state], [lora, lora_dir], api_visibility="private")
    shared["select_model"] = (select_model, model, [model, model_state, lora, lora_dir])


def build_app(studio: Studio | None = None, jobs: JobManager | None = None) -> gr.Blocks:
    ctx = AppContext(studio, jobs)
    shared: dict = {}
    with gr.Blocks(title="RATS Studio") as demo:
        _header(ctx, shared)
        compare_tab.build(ctx, shared)
        sweep_tab.build(ctx, shared)
        train_tab.build(ctx, shared)
        for fn, inputs, outputs in shared["on_load"]:
            demo.load(fn, inputs, outputs, api_visibility="private")
        select, model, outputs = shared["select_model"]  # its outputs include the compare tab's video row
        model.change(select, model, [*outputs, shared["video_row"]], api_visibility="private")
    return demo


def main() -> None:
    # RATS_MODEL: the model the app opens with (a diffusers directory); Shapes World by default.
    # Presets' own variables (RATS_FLUX_DEV, RATS_SD35_MEDIUM, ...) make them available in the dropdown.
    model = os.environ.get("RATS_MODEL")
    build_app(Studio(model) if model else None).queue(default_concurrency_limit=2).launch(css=CSS)
