"""One RATS training step on a full-size architecture with random weights (rats_app.architectures),
once per memory option set, each in its own process so each peak is that configuration's own
high-water mark (torch.cuda.max_memory_allocated over two steps; the second step's time is
reported). Used by flux_dev_memory.py and wan_memory.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys
from rats_app import architectures
from rats_app.config import TrainConfig
from rats_app.models import ModelInfo
from rats_app.training import Components, prepare_run
from rats_app.training.trainer import peak_memory_mb
args = json.loads(sys.argv[1])
build = architectures.flux_dev if args["architecture"] == "flux_dev" else architectures.wan21
pipe, reward, prompts = build(args["size"], args["device"])
cfg = TrainConfig.from_dict({"model": args["architecture"] + " (random weights)", "reward": "hpsv2", "steps": 2,
                             "batch_size": 1, "sample_every": 0, "checkpoint_every": 1000,
                             "teacher_steps": args["teacher_steps"], "lora_rank": 16, "device": args["device"],
                             "lora_targets": args["targets"], **args["options"]})
info = ModelInfo(path=cfg.model, pipeline_class=type(pipe).__name__, height=args["height"], width=args["width"],
                 frames=args.get("frames"), call_defaults={"max_sequence_length": args["max_sequence_length"], **args.get("call", {})})
trainer = prepare_run(cfg, sys.argv[2], components=Components(pipe, info, reward, {}, prompts)).trainer
trainer.start_schedule()
times = [trainer.train_step().step_time for _ in range(2)]
print(json.dumps({"step_s": times[-1], "peak_mb": peak_memory_mb(trainer.device)}))
"""


def measure(rows: list[tuple[str, dict]], child: dict) -> list[str]:
    """Markdown table rows: each row's options are added to the previous row's."""
    lines, options = [], {}
    for label, extra in rows:
        options = {**options, **extra}
        if options.get("optimizer") == "adamw8bit":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                lines.append(f"| {label} | not run: bitsandbytes is not installed | |")
                continue
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-c", CHILD, json.dumps({**child, "options": options}),
                                   f"{tmp}/run"], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["failed"])[-1]
            lines.append(f"| {label} | failed: {last[:120]} | |")
        else:
            result = json.loads(done.stdout.strip().splitlines()[-1])
            lines.append(f"| {label} | {result['step_s']:.2f} | {result['peak_mb'] / 1024:.2f} |")
        print(lines[-1], flush=True)
    return lines


def require_gpu(tiny: bool) -> str:
    import torch

    if tiny:
        return "cpu"
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: this benchmark needs one (use --tiny to check the script on CPU); the "
                         "docs leave its table empty until it has run on a GPU")
    return "cuda"


def write(lines: list[str], out) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        from rats_app.io import write_text

        write_text(out, text)
