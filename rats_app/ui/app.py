"""RATS Studio's Gradio app: Compare, NFE sweep and Train tabs over rats_app's Python API.

Nothing heavy loads at import or build time: the page comes up at once with a loading notice,
and the model and rewards load in a background thread (shared by every user, loaded once).
Per-user choices (the selected LoRA) live in session state.
"""

from __future__ import annotations

import os
import random
import threading

import gradio as gr

from rats_app.api import DEFAULT_SWEEP_NFES, Studio
from rats_app.config import ConfigError, TrainConfig
from rats_app.jobs import JobManager
from rats_app.models import UserError
from rats_app.rewards.registry import available_rewards
from rats_app.ui import handlers
from rats_app.worlds.shapes import held_out_prompts, training_prompts

EXAMPLES = [training_prompts()[0], training_prompts()[250], training_prompts()[409],
            held_out_prompts()[4], held_out_prompts()[20]]
NO_LORA = "none (base model)"
DEFAULT_MODEL_LABEL = "shapes-world"
TRAIN_FIELDS = ["preset", "student_steps", "teacher_steps", "alpha", "tau", "gate", "reward_weight", "lora_rank",
                "learning_rate", "steps", "batch_size", "ema_decay", "seed", "reward", "watch_rewards"]


# Shapes World images are 64 px: show them scaled up with crisp pixels (the file itself is unchanged).
CSS = """
#teacher-image img, #baseline-image img, #rats-image img { width: 100%; height: 100%; object-fit: contain;
  image-rendering: pixelated; }
.gallery-item img, .thumbnail-item img { image-rendering: pixelated; }
"""

ZERO_GPU_MESSAGE = ("Training is disabled on ZeroGPU Spaces: each GPU call there is capped at minutes. "
                    "Run RATS Studio locally or on a Space with a dedicated GPU to train.")


def on_zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true", "yes")


def _gpu(fn, duration: int = 120):
    """On Hugging Face Spaces (the ``spaces`` package present) inference runs under spaces.GPU."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def _errors_shown(fn):
    """Run a handler; user mistakes become an error in the page, and the app keeps serving."""
    def wrapper(*args):
        try:
            return fn(*args)
        except (UserError, ConfigError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
    wrapper.__name__ = fn.__name__
    return wrapper


def build_app(studio: Studio | None = None, jobs: JobManager | None = None) -> gr.Blocks:
    studio = studio or Studio()
    jobs = jobs or JobManager()
    defaults = TrainConfig()
    studios = {DEFAULT_MODEL_LABEL: studio}  # one Studio (models loaded once) per model, shared by users

    def studio_for(model_label: str) -> Studio:
        if model_label not in studios:
            from rats_app.presets import PRESETS, locate

            preset = PRESETS[model_label]
            studios[model_label] = Studio(locate(preset), call_overrides=preset.call_kwargs())
        return studios[model_label]

    def model_choices() -> list[str]:
        from rats_app.presets import PRESETS

        return [DEFAULT_MODEL_LABEL] + [name for name in PRESETS if name != "shapes-world"]

    def select_model(label):
        from rats_app.presets import PRESETS, locate

        if label != DEFAULT_MODEL_LABEL:
            try:
                locate(PRESETS[label])
            except UserError as exc:
                gr.Warning(str(exc))
                return DEFAULT_MODEL_LABEL, DEFAULT_MODEL_LABEL
        return label, label

    def start_loading():
        threading.Thread(target=lambda: (studio.load(), studio.rewards()), daemon=True).start()

    def loading_status():
        if not studio.loaded:
            return gr.update(value="⏳ Loading the model… (the first generation waits for it)"), gr.Timer(active=True)
        errors = studio.reward_errors()
        lines = [f"✅ Model loaded: `{studio.model_path}`."]
        if errors:
            lines.append("Rewards not available here: " + "; ".join(f"**{n}** — {e}" for n, e in errors.items()))
        return gr.update(value="\n\n".join(lines)), gr.Timer(active=False)

    def lora_dropdown(selected_dir: str | None = None):
        choices = handlers.lora_choices(jobs)
        labels = list(choices) + [NO_LORA]
        value = next((label for label, d in choices.items() if d == selected_dir), labels[0])
        return gr.update(choices=labels, value=value)

    def select_lora(label):
        return handlers.lora_choices(jobs).get(label)

    @_errors_shown
    @_gpu
    def compare(prompt, seed, nfe, teacher_nfe, lora_dir, model_label=DEFAULT_MODEL_LABEL):
        items, headers, rows = handlers.compare(studio_for(model_label), prompt, seed, nfe, teacher_nfe, lora_dir)
        images = [i.image for i in items] + [None] * (3 - len(items))
        return (*images, {"headers": headers, "data": rows})

    @_errors_shown
    @_gpu
    def sweep(prompt, seed, nfes, teacher_nfe, lora_dir, model_label=DEFAULT_MODEL_LABEL):
        items, headers, rows, figure = handlers.sweep(studio_for(model_label), prompt, seed, nfes, teacher_nfe,
                                                      lora_dir)
        gallery = [(i.image, f"{i.label} @ {i.nfe}") for i in items]
        return gallery, figure, {"headers": headers, "data": rows}

    @_errors_shown
    def upload_lora(path):
        if not path:
            raise UserError("choose a .safetensors LoRA file to upload")
        target = handlers.save_uploaded_lora(studio, path, jobs.uploads_dir)
        return lora_dropdown(target), target

    @_errors_shown
    def train(*values):
        if on_zero_gpu():
            raise UserError(ZERO_GPU_MESSAGE)
        *form_values, source, typed, upload = values
        out = handlers.start_training(jobs, dict(zip(TRAIN_FIELDS, form_values)), source, typed, upload)
        return f"Started: `{out}`", gr.Timer(active=True)

    def stop():
        jobs.stop()
        return "Stop requested: the run saves a loadable LoRA at the end of the current step."

    def poll(seen_dir):
        state = jobs.state
        figure = handlers.metrics_plot(state.metrics)
        sample = jobs.latest_sample()
        done = state.status in ("finished", "stopped", "failed")
        dropdown, lora_dir = gr.update(), gr.update()
        if done and state.output_dir != seen_dir and state.status != "failed":
            dropdown, lora_dir, seen_dir = lora_dropdown(state.output_dir), state.output_dir, state.output_dir
        timer = gr.Timer(active=not done and state.status != "idle")
        return handlers.progress_text(jobs), figure, str(sample) if sample else None, dropdown, lora_dir, seen_dir, timer

    with gr.Blocks(title="RATS Studio") as demo:
        gr.Markdown("# RATS Studio\nFew-step, preference-aligned generation — Reward-Aware Trajectory Shaping "
                    "(Li et al., arXiv 2604.14910). Default world: **Shapes World** (offline, CPU).")
        status = gr.Markdown("⏳ Loading the model…", elem_id="load-status")
        load_timer = gr.Timer(1.0)
        lora_dir = gr.State(next(iter(handlers.lora_choices(jobs).values()), None))  # shipped first
        seen_run = gr.State(None)
        model_state = gr.State(DEFAULT_MODEL_LABEL)
        with gr.Row():
            model = gr.Dropdown(label="Model", choices=model_choices(), value=DEFAULT_MODEL_LABEL,
                                elem_id="model-select", scale=2,
                                info="presets whose weights are not on this machine say what is missing")
            lora = gr.Dropdown(label="RATS LoRA", choices=[], elem_id="lora-select", scale=3)
            upload = gr.File(label="Upload a LoRA (.safetensors)", file_types=[".safetensors"], scale=2)
        with gr.Tab("Compare"):
            with gr.Row():
                prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], scale=4, elem_id="prompt")
                seed = gr.Number(label="Seed", value=0, precision=0, elem_id="seed")
                dice = gr.Button("🎲", scale=0, min_width=40)
            with gr.Row():
                nfe = gr.Slider(1, 16, value=3, step=1, label="Student NFE")
                teacher_nfe = gr.Slider(1, 100, value=50, step=1, label="Teacher NFE")
            gr.Examples(EXAMPLES, inputs=prompt, label="Examples (the last two are held out of pretraining)")
            go = gr.Button("Compare", variant="primary", elem_id="compare-button")
            with gr.Row():
                teacher_img = gr.Image(label="Teacher", type="pil", format="png", elem_id="teacher-image", height=256)
                baseline_img = gr.Image(label="Baseline", type="pil", format="png", elem_id="baseline-image", height=256)
                rats_img = gr.Image(label="RATS", type="pil", format="png", elem_id="rats-image", height=256)
            scores = gr.Dataframe(label="Scores (same prompt, seed and noise)", interactive=False, elem_id="scores")
        with gr.Tab("NFE sweep"):
            nfes = gr.CheckboxGroup(choices=list(range(1, 13)), value=list(DEFAULT_SWEEP_NFES), label="NFEs")
            sweep_button = gr.Button("Sweep", variant="primary", elem_id="sweep-button")
            gallery = gr.Gallery(label="Teacher, then baseline and RATS at each NFE", columns=7, format="png")
            frontier = gr.Plot(label="Reward vs NFE (teacher dotted)")
            sweep_scores = gr.Dataframe(label="Scores", interactive=False, elem_id="sweep-scores")
        with gr.Tab("Train"):
            gr.Markdown(ZERO_GPU_MESSAGE if on_zero_gpu() else
                        "Short RATS LoRA fine-tuning on this machine. One run at a time; the result appears "
                        "in the LoRA list above when it finishes or is stopped.")
            with gr.Row():
                form = [
                    gr.Radio(["rats", "distill", "reward"], value=defaults.preset, label="preset"),
                    gr.Number(value=defaults.student_steps, precision=0, label="student steps (K)"),
                    gr.Number(value=defaults.teacher_steps, precision=0, label="teacher steps"),
                    gr.Number(value=defaults.alpha, label="α (matching weight)"),
                    gr.Number(value=defaults.tau, label="τ (gate temperature)"),
                    gr.Radio(["soft", "hard", "always"], value=defaults.gate, label="gate"),
                    gr.Number(value=defaults.reward_weight, label="λ (reward weight)"),
                    gr.Number(value=defaults.lora_rank, precision=0, label="LoRA rank"),
                ]
            with gr.Row():
                form += [
                    gr.Number(value=defaults.learning_rate, label="learning rate"),
                    gr.Number(value=defaults.steps, precision=0, label="steps", elem_id="train-steps"),
                    gr.Number(value=defaults.batch_size, precision=0, label="batch"),
                    gr.Number(value=defaults.ema_decay, label="EMA decay"),
                    gr.Number(value=defaults.seed, precision=0, label="seed"),
                    gr.Dropdown(available_rewards(), value=defaults.reward, label="training reward"),
                    gr.Dropdown(available_rewards(), value=[], multiselect=True, label="watch rewards"),
                ]
            with gr.Row():
                source = gr.Radio(["Shapes World prompts", "Typed list", "Uploaded file"],
                                  value="Shapes World prompts", label="prompts")
                typed = gr.Textbox(label="typed prompts (one per line)", lines=3)
                prompt_file = gr.File(label="prompts file (.txt)", file_types=[".txt"], type="filepath")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
                stop_button = gr.Button("Stop", elem_id="train-stop")
            progress = gr.Markdown("No training run yet.", elem_id="train-progress")
            curves = gr.Plot(label="R_S, R_T, gate, matching loss, watch rewards")
            sample = gr.Image(label="Latest sample grid", type="filepath", elem_id="train-sample")
            train_timer = gr.Timer(1.0, active=False)

        demo.load(start_loading, None, None, api_visibility="private")
        demo.load(lambda d: lora_dropdown(d), lora_dir, lora, api_visibility="private")
        load_timer.tick(loading_status, None, [status, load_timer], api_visibility="private")
        lora.change(select_lora, lora, lora_dir, api_visibility="private")
        upload.upload(upload_lora, upload, [lora, lora_dir], api_visibility="private")
        dice.click(lambda: random.randrange(2**31), None, seed, api_visibility="private")
        model.change(select_model, model, [model, model_state], api_visibility="private")
        go.click(compare, [prompt, seed, nfe, teacher_nfe, lora_dir, model_state],
                 [teacher_img, baseline_img, rats_img, scores], api_name="compare", concurrency_limit=4)
        sweep_button.click(sweep, [prompt, seed, nfes, teacher_nfe, lora_dir, model_state],
                           [gallery, frontier, sweep_scores], api_name="sweep")
        start.click(train, [*form, source, typed, prompt_file], [progress, train_timer], api_name="train")
        stop_button.click(stop, None, progress, api_name="stop_training")
        train_timer.tick(poll, seen_run, [progress, curves, sample, lora, lora_dir, seen_run, train_timer],
                         api_visibility="private")
    return demo


def main() -> None:
    # RATS_MODEL: the model the app opens with (a diffusers directory); Shapes World by default.
    # Presets' own variables (RATS_FLUX_DEV, RATS_SD35_MEDIUM, ...) make them available in the dropdown.
    model = os.environ.get("RATS_MODEL")
    build_app(Studio(model) if model else None).queue(default_concurrency_limit=2).launch(css=CSS)
