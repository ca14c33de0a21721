"""Compare: Teacher @ N_T, Baseline @ K and RATS @ K from the same prompt, seed and noise."""

from __future__ import annotations

import random

import gradio as gr

from rats_app.ui import handlers
from rats_app.ui.guard import gpu, shown


def build(ctx, shared) -> None:
    examples = ctx.default_studio.info.world.examples() if ctx.default_studio.info.world else []

    @shown
    @gpu
    def compare(prompt, seed, nfe, teacher_nfe, lora_dir, model_label):
        items, headers, rows = handlers.compare(ctx.studio(model_label), prompt, seed, nfe, teacher_nfe, lora_dir)
        images = [i.image for i in items] + [None] * (3 - len(items))
        return (*images, {"headers": headers, "data": rows})

    with gr.Tab("Compare"):
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value=examples[0][0] if examples else "", scale=4, elem_id="prompt")
            seed = gr.Number(label="Seed", value=0, precision=0, elem_id="seed")
            dice = gr.Button("🎲", scale=0, min_width=40)
        with gr.Row():
            nfe = gr.Slider(1, 16, value=3, step=1, label="Student NFE")
            teacher_nfe = gr.Slider(1, 100, value=50, step=1, label="Teacher NFE")
        if examples:
            held = sum(h for _, h in examples)
            gr.Examples([p for p, _ in examples], inputs=prompt,
                        label=f"Examples (the last {held} are held out of pretraining)" if held else "Examples")
        go = gr.Button("Compare", variant="primary", elem_id="compare-button")
        with gr.Row():
            teacher_img = gr.Image(label="Teacher", type="pil", format="png", elem_id="teacher-image", height=256)
            baseline_img = gr.Image(label="Baseline", type="pil", format="png", elem_id="baseline-image", height=256)
            rats_img = gr.Image(label="RATS", type="pil", format="png", elem_id="rats-image", height=256)
        scores = gr.Dataframe(label="Scores (same prompt, seed and noise)", interactive=False, elem_id="scores")
    shared["prompt"] = prompt
    shared["seed"] = seed
    shared["teacher_nfe"] = teacher_nfe
    dice.click(lambda: random.randrange(2**31), None, seed, api_visibility="private")
    go.click(compare, [prompt, seed, nfe, teacher_nfe, shared["lora_dir"], shared["model_state"]],
             [teacher_img, baseline_img, rats_img, scores], api_name="compare", concurrency_limit=4)
