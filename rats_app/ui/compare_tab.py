"""Compare: Teacher @ N_T, Baseline @ K and RATS @ K from the same prompt, seed and noise.

Baseline and RATS appear as soon as they are made, the (slow) teacher when it is. For a video
model each column is a playable clip with its frames side by side beneath. API ``/compare``:
(prompt, seed, nfe, teacher_nfe) -> three images (clips: filmstrips), the scores table, and three
mp4 files (None for an image model).
"""

from __future__ import annotations

import random

import gradio as gr

from rats_app.ui import handlers
from rats_app.ui.guard import gpu, shown

COLUMNS = ("Teacher", "Baseline", "RATS")


def build(ctx, shared) -> None:
    studio = ctx.default_studio
    world = studio.info.world
    examples = world.examples() if world else []

    @shown
    @gpu
    def compare(prompt, seed, nfe, teacher_nfe, lora_dir, model_label):
        studio = ctx.studio(model_label)
        video = studio.media == "video"
        for items, headers, rows in handlers.compare_stream(studio, prompt, seed, nfe, teacher_nfe, lora_dir):
            by_label = {i.label: i for i in items}
            stills = [handlers.still(by_label[c], video) if c in by_label else None for c in COLUMNS]
            clips = [handlers.video_file(by_label[c], studio.info.fps) if video and c in by_label else None
                     for c in COLUMNS]
            yield (*stills, {"headers": headers, "data": rows}, *clips)

    with gr.Tab("Compare"):
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value=examples[0][0] if examples else "", scale=4, elem_id="prompt")
            seed = gr.Textbox(label="Seed", value="0", elem_id="seed", max_lines=1,
                              info="any whole number from 0 to 2**64 - 1")
            dice = gr.Button("🎲", scale=0, min_width=40)
        with gr.Row():
            nfe = gr.Slider(1, 16, value=3, step=1, label="Student NFE", elem_id="student-nfe")
            teacher_nfe = gr.Slider(1, 100, value=50, step=1, label="Teacher NFE")
        nfe_note = gr.Markdown(elem_id="nfe-note")
        if examples:
            held = sum(h for _, h in examples)
            gr.Examples([p for p, _ in examples], inputs=prompt,
                        label=f"Examples (the last {held} are held out of pretraining)" if held else "Examples")
        go = gr.Button("Compare", variant="primary", elem_id="compare-button")
        with gr.Row(visible=studio.info.family.media == "video") as video_row:
            clips = [gr.Video(label=c, elem_id=f"{c.lower()}-video", autoplay=True, loop=True, height=256)
                     for c in COLUMNS]
        with gr.Row():
            stills = [gr.Image(label=c, type="pil", format="png", elem_id=f"{c.lower()}-image", height=256)
                      for c in COLUMNS]
        scores = gr.Dataframe(label="Scores (same prompt, seed and noise; in parentheses: the difference to the "
                                    "baseline)", interactive=False, elem_id="scores")
    shared.update(prompt=prompt, seed=seed, teacher_nfe=teacher_nfe, student_nfe=nfe, video_row=video_row)
    for trigger in (nfe.change, shared["lora_dir"].change):
        trigger(handlers.nfe_note, [shared["lora_dir"], nfe], nfe_note, api_visibility="private")
    shared["on_load"].append((handlers.nfe_note, [shared["lora_dir"], nfe], nfe_note))
    dice.click(lambda: str(random.randrange(2**64)), None, seed, api_visibility="private")
    go.click(compare, [prompt, seed, nfe, teacher_nfe, shared["lora_dir"], shared["model_state"]],
             [*stills, scores, *clips], api_name="compare", concurrency_limit=4)
