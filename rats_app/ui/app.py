"""RATS Studio's Gradio app: Compare, NFE sweep and Train tabs over rats_app's Python API.

Nothing heavy loads at import or build time: the page comes up at once with a loading notice,
and the model and rewards load in a background thread (shared by every user, loaded once).
Per-user choices (the selected model and LoRA) live in session state. Each tab is built by its
own module (compare_tab, sweep_tab, train_tab) from the shared context. Resources are bounded:
a queue of at most RATS_QUEUE_SIZE waiting calls, uploads of at most RATS_MAX_UPLOAD_MB, and
Gradio's file cache pruned (``delete_cache``).
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

NO_LORA = "none (base model)"
CACHE_PRUNING = (600, 3600)  # every 10 minutes, delete Gradio's cached files older than an hour

# Embedded worlds' images are 32-64 px: show them scaled up with crisp pixels (the file is unchanged).
CSS = """
#teacher-image img, #baseline-image img, #rats-image img { width: 100%; height: 100%; object-fit: contain;
  image-rendering: pixelated; }
#teacher-video video, #baseline-video video, #rats-video video { image-rendering: pixelated; }
.gallery-item img, .thumbnail-item img { image-rendering: pixelated; }
"""


def status_line(studio: Studio) -> tuple[str, str]:
    """One compact line (model, available rewards) and the folded details of the unavailable ones."""
    if not studio.loaded:
        return "⏳ Loading the model… (the first generation waits for it)", ""
    errors = studio.reward_errors()
    world = studio.info.world
    name = f"{world.title} · " if world else ""
    available = ", ".join(f"**{n}**" for n in studio.rewards()) or "none"
    line = f"✅ {name}`{studio.model_path}` · rewards: {available}"
    if errors:
        line += f" · {len(errors)} unavailable here (details below)"
    details = "\n".join(f"- **{n}** — {e}" for n, e in errors.items())
    return line, details


def _header(ctx: AppContext, shared: dict) -> None:
    jobs, studio = ctx.jobs, ctx.default_studio

    def lora_labels(selected_dir: str | None, model_label: str | None) -> tuple[list[str], str]:
        """The LoRA list for a model, and the label of the selected directory (else the first)."""
        choices = handlers.lora_choices(jobs, ctx.studio(model_label or ctx.default_label))
        labels = list(choices) + [NO_LORA]
        return labels, next((label for label, d in choices.items() if d == selected_dir), labels[0])

    def lora_dropdown(selected_dir: str | None = None, model_label: str | None = None):
        labels, value = lora_labels(selected_dir, model_label)
        return gr.Dropdown(choices=labels, value=value)

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
        line, details = status_line(studio)
        return line, gr.update(value=details, visible=bool(details)), gr.Accordion(visible=bool(details)), \
            gr.Timer(active=not studio.loaded)

    @shown
    def upload_lora(path, model_label):
        """Check and keep an uploaded LoRA, and select it for this session's Compare and Sweep (an
        API client's later calls in the same session use it too)."""
        target = handlers.save_uploaded_lora(ctx.studio(model_label), path, jobs.uploads_dir)
        labels, value = lora_labels(target, model_label)
        return f"Checked and selected: **{value}**", gr.Dropdown(choices=labels, value=value), target

    gr.Markdown("# RATS Studio\nFew-step, preference-aligned generation — Reward-Aware Trajectory Shaping "
                "(Li et al., arXiv 2604.14910). Default world: **Shapes World** (offline, CPU).")
    status = gr.Markdown("⏳ Loading the model…", elem_id="load-status")
    with gr.Accordion("Rewards not available here, and how to supply them", open=False, visible=False) as folded:
        unavailable = gr.Markdown("", elem_id="unavailable-rewards")
    load_timer = gr.Timer(1.0)
    lora_dir = gr.State(next(iter(handlers.lora_choices(jobs, studio).values()), None))  # shipped first
    model_state = gr.State(ctx.default_label)
    with gr.Row():
        model = gr.Dropdown(label="Model", choices=ctx.labels(), value=ctx.default_label, elem_id="model-select",
                            scale=2, info="presets whose weights are not on this machine say what is missing")
        lora = gr.Dropdown(label="RATS LoRA", choices=[], elem_id="lora-select", scale=3)
        upload = gr.File(label="Upload a LoRA (.safetensors)", file_types=[".safetensors"], scale=2)
    upload_note = gr.Markdown("", elem_id="upload-note")
    shared.update(lora_dir=lora_dir, model_state=model_state, lora=lora, lora_dropdown=lora_dropdown, model=model)
    shared["on_load"] = [
        (lambda: threading.Thread(target=lambda: (studio.load(), studio.rewards()), daemon=True).start(), None, None),
        (lambda d: lora_dropdown(d), lora_dir, lora),
    ]
    load_timer.tick(loading_status, None, [status, unavailable, folded, load_timer], api_visibility="private")
    lora.change(lambda label, m: handlers.lora_choices(jobs, ctx.studio(m)).get(label), [lora, model_state], lora_dir,
                api_visibility="private")
    upload.upload(upload_lora, [upload, model_state], [upload_note, lora, lora_dir], api_name="upload_lora")
    shared["select_model"] = (select_model, model, [model, model_state, lora, lora_dir])


def build_app(studio: Studio | None = None, jobs: JobManager | None = None) -> gr.Blocks:
    ctx = AppContext(studio, jobs)
    shared: dict = {}
    with gr.Blocks(title="RATS Studio", delete_cache=CACHE_PRUNING) as demo:
        _header(ctx, shared)
        compare_tab.build(ctx, shared)
        sweep_tab.build(ctx, shared)
        train_tab.build(ctx, shared)
        for fn, inputs, outputs in shared["on_load"]:
            demo.load(fn, inputs, outputs, api_visibility="private")
        select, model, outputs = shared["select_model"]  # its outputs include the compare tab's video row
        model.change(select, model, [*outputs, shared["video_row"]], api_visibility="private")
    return demo


def queued(demo: gr.Blocks) -> gr.Blocks:
    """At most RATS_QUEUE_SIZE waiting calls: past that Gradio answers "queue is full, try again"
    at once instead of letting waits grow without bound."""
    return demo.queue(default_concurrency_limit=2, max_size=int(os.environ.get("RATS_QUEUE_SIZE", "64")))


def launch_options() -> dict:
    """Gradio's launch settings from the environment: RATS_AUTH (user:password), upload size."""
    options = {"css": CSS, "max_file_size": f"{int(os.environ.get('RATS_MAX_UPLOAD_MB', '1024'))}mb"}
    auth = os.environ.get("RATS_AUTH")
    if auth:
        user, _, password = auth.partition(":")
        options["auth"] = (user, password)
    return options


def main() -> None:
    # RATS_MODEL: the model the app opens with (a diffusers directory); Shapes World by default.
    # Presets' own variables (RATS_FLUX_DEV, RATS_SD35_MEDIUM, ...) make them available in the dropdown.
    model = os.environ.get("RATS_MODEL")
    queued(build_app(Studio(model) if model else None)).launch(**launch_options())
