"""NFE sweep: baseline and RATS at several NFEs plus the teacher, and each reward against NFE."""

from __future__ import annotations

import gradio as gr

from rats_app.api import DEFAULT_SWEEP_NFES
from rats_app.ui import handlers
from rats_app.ui.guard import gpu, shown


def build(ctx, shared) -> None:
    @shown
    @gpu
    def sweep(prompt, seed, nfes, teacher_nfe, lora_dir, model_label):
        studio = ctx.studio(model_label)
        items, headers, rows, figure = handlers.sweep(studio, prompt, seed, nfes, teacher_nfe, lora_dir)
        video = studio.media == "video"
        gallery = [(handlers.still(i, video), f"{i.label} @ {i.nfe}") for i in items]
        return gallery, figure, {"headers": headers, "data": rows}

    with gr.Tab("NFE sweep"):
        nfes = gr.CheckboxGroup(choices=list(range(1, 13)), value=list(DEFAULT_SWEEP_NFES), label="NFEs")
        button = gr.Button("Sweep", variant="primary", elem_id="sweep-button")
        gallery = gr.Gallery(label="Teacher, then baseline and RATS at each NFE (clips: frames side by side)",
                             columns=7, format="png")
        frontier = gr.Plot(label="Reward vs NFE (teacher dotted)")
        scores = gr.Dataframe(label="Scores", interactive=False, elem_id="sweep-scores")
    button.click(sweep, [shared["prompt"], shared["seed"], nfes, shared["teacher_nfe"], shared["lora_dir"],
                         shared["model_state"]], [gallery, frontier, scores], api_name="sweep")
