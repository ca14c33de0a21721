"""Latency per image at each NFE for baseline and RATS (LoRA fused), and teacher@50 vs RATS@3.

    python benchmarks/latency.py [--model DIR] [--lora DIR] [--nfe 1 2 3 4 6 8] [--repeats 20]

Baseline and RATS are timed alternately, call by call, in one process (same prompt, seed, batch of
one), so the ratio compares like with like; the script first checks that the fused pipeline really
makes different images. Fusing the LoRA into the weights makes RATS cost exactly what the
base model costs; the ratio shows that. Prints a markdown table and the machine.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from rats_app.families import family_of
from rats_app.models import DEFAULT_MODEL, load_lora, load_pipeline, read_model_info
from rats_app.sampler import generate

PROMPT = "a large blue circle at the center on a white background"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def time_call(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def time_pair(a, b, repeats: int) -> tuple[float, float]:
    """Median ms of a and b, timed alternately (a, b, a, b, ...) so drifts hit both alike."""
    a(), b()  # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        for fn, samples in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


def main() -> None:
    from report_out import captured
    with captured(f"python benchmarks/{__file__.rsplit('/', 1)[-1]}"):
        _main()


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--lora", default=None, help="default: the RATS LoRA shipped with the model's world")
    parser.add_argument("--nfe", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--teacher-nfe", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    lora = args.lora or read_model_info(args.model).shipped_lora()
    base, info = load_pipeline(args.model)
    rats = copy.deepcopy(base)
    load_lora(rats, lora)
    rats.fuse_lora()
    rats.unload_lora_weights()  # fused: no adapter layers left, the same modules as the base
    families = {id(base): family_of(base), id(rats): family_of(rats)}
    size = info.size(families[id(base)])
    call = {k: v for k, v in info.call_defaults.items() if k not in ("height", "width")}

    def timer(pipe, nfe):
        return lambda: generate(families[id(pipe)], [PROMPT], nfe, [0], size, **call)

    print(f"machine: {machine()}\n")
    print("| NFE | baseline ms | RATS (fused) ms | RATS / baseline |")
    print("|---|---|---|---|")
    import numpy as np

    same = np.array_equal(np.asarray(timer(base, 3)()[0]), np.asarray(timer(rats, 3)()[0]))
    if same:
        raise SystemExit("the fused RATS pipeline makes the baseline's images: the LoRA did not fuse")
    rats_ms = {}
    for nfe in args.nfe:
        b, r = time_pair(timer(base, nfe), timer(rats, nfe), args.repeats)
        rats_ms[nfe] = r
        print(f"| {nfe} | {b:.1f} | {r:.1f} | {r / b:.3f} |")
    teacher = time_call(timer(base, args.teacher_nfe), max(3, args.repeats // 4))
    if 3 in rats_ms:
        ratio = teacher / rats_ms[3]
        print(f"\nteacher@{args.teacher_nfe}: {teacher:.1f} ms; RATS@3: {rats_ms[3]:.1f} ms; "
              f"speed-up {ratio:.1f}x (ideal {args.teacher_nfe / 3:.1f}x: text encoding and VAE decoding "
              "are paid once per image whatever the NFE)")


if __name__ == "__main__":
    main()
