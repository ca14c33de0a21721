"""Gradio app: teacher vs few-step baseline from the same prompt, seed and noise, with rewards."""

from __future__ import annotations

import gradio as gr

from rats_app.api import Studio
from rats_app.models import UserError
from rats_app.world import held_out_prompts, training_prompts

EXAMPLES = [training_prompts()[0], training_prompts()[123], held_out_prompts()[0], held_out_prompts()[20]]


def build_app(studio: Studio | None = None) -> gr.Blocks:
    studio = studio or Studio()

    def compare(prompt: str, seed: float, nfe: float, teacher_nfe: float):
        try:
            if seed is None or float(seed) != int(seed):
                raise UserError(f"seed must be an integer, got {seed!r}")
            items = studio.compare(prompt, int(seed), int(nfe), int(teacher_nfe))
        except UserError as exc:
            raise gr.Error(str(exc)) from None
        rows = [[item.label, item.nfe, round(item.latency_ms, 1), *item.scores.values()] for item in items]
        headers = ["column", "nfe", "latency_ms", *items[0].scores.keys()]
        return items[0].image, items[1].image, gr.update(value=rows, headers=headers)

    with gr.Blocks(title="RATS Studio") as demo:
        gr.Markdown("# RATS Studio\nFew-step, preference-aligned generation. Default world: Shapes World (offline).")
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], scale=4)
            seed = gr.Number(label="Seed", value=0, precision=0)
            nfe = gr.Slider(1, 16, value=3, step=1, label="Student NFE")
            teacher_nfe = gr.Slider(1, 100, value=50, step=1, label="Teacher NFE")
        gr.Examples(EXAMPLES, inputs=prompt)
        button = gr.Button("Compare", variant="primary")
        with gr.Row():
            teacher = gr.Image(label="Teacher", type="pil", format="png")
            baseline = gr.Image(label="Baseline", type="pil", format="png")
        scores = gr.Dataframe(label="Scores", interactive=False)
        button.click(compare, [prompt, seed, nfe, teacher_nfe], [teacher, baseline, scores], api_name="compare")
    return demo


def main() -> None:
    build_app().queue().launch()
