"""Faults and load against the real app, bounded in time and count; prints figures (and --json).

    python benchmarks/fault_load.py [--clients 16] [--rounds 3] [--sequential 200] [--json FILE] [--out MD]

Starts `python app.py` (the default world, a throw-away runs directory) and runs:
1. concurrent load: N gradio_client clients, each making R /compare calls at once (all answered?
   median and max latency);
2. sequential calls: S /compare calls one after another; the app's resident memory before and
   after (growth in %), and the files Gradio keeps in its cache;
3. a poisoned upload: a LoRA made for another model (wrong input width) sent to /upload_lora, then
   /compare and /sweep (do they still work, and give the same baseline as before?);
4. kill -9 of a CLI training run at a random step, then --resume: does it finish, does its LoRA
   load, is every metrics line there exactly once?
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from app_process import ROOT, rss_mb, running_app

PROMPT = "a small red circle at the top left on a white background"


def concurrent_load(url: str, clients: int, rounds: int, deadline: float) -> dict:
    from gradio_client import Client

    latencies, failures = [], []
    lock = threading.Lock()

    def one_client(index: int) -> None:
        client = Client(url, verbose=False)
        for round_ in range(rounds):
            if time.monotonic() > deadline:
                return
            start = time.perf_counter()
            try:
                client.predict(PROMPT, str(index * 100 + round_), 3, 50, api_name="/compare")
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as exc:  # counted, not hidden
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}"[:200])

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"calls": clients * rounds, "answered": len(latencies), "failed": len(failures),
            "failures": failures[:3], "median_s": round(statistics.median(latencies), 2) if latencies else None,
            "max_s": round(max(latencies), 2) if latencies else None}


def _cache_files(cache_dir: Path) -> int:
    return sum(1 for p in cache_dir.rglob("*") if p.is_file())


def sequential_memory(url: str, pid: int, calls: int, cache_dir: Path, deadline: float) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    warmup = min(20, calls)
    for i in range(warmup):  # allocator and caches settle first
        client.predict(PROMPT, str(i), 2, 8, api_name="/compare")
    before, done = rss_mb(pid), 0
    for i in range(calls):
        if time.monotonic() > deadline:
            break
        client.predict(PROMPT, str(1000 + i), 2, 8, api_name="/compare")
        done += 1
    after = rss_mb(pid)
    return {"calls": done, "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
            "rss_growth_pct": round(100 * (after - before) / before, 2), "gradio_cache_files": _cache_files(cache_dir)}


def poisoned_upload(url: str, work: Path) -> dict:
    import torch
    from gradio_client import Client, handle_file
    from safetensors.torch import load_file, save_file

    shipped = ROOT / "assets" / "shapes-flux-rats" / "pytorch_lora_weights.safetensors"
    state = load_file(shipped)
    key = next(k for k in sorted(state) if k.endswith("lora_A.weight"))
    wide = work / "for-another-model.safetensors"
    save_file({**state, key: torch.zeros(state[key].shape[0], state[key].shape[1] + 64)}, wide)
    client = Client(url, verbose=False)
    baseline_before = Path(client.predict(PROMPT, "7", 3, 50, api_name="/compare")[1]).read_bytes()
    try:
        client.predict(handle_file(str(wide)), api_name="/upload_lora")
        refused = "accepted (a defect)"
    except Exception as exc:
        refused = str(exc).splitlines()[0][:160]
    result = client.predict(PROMPT, "7", 3, 50, api_name="/compare")
    sweep = client.predict(PROMPT, "7", [1, 3], 8, api_name="/sweep")
    good = work / "a-good-one.safetensors"
    shutil.copyfile(shipped, good)
    accepted = client.predict(handle_file(str(good)), api_name="/upload_lora")[0]
    return {"upload_refused_with": refused, "compare_after": "works" if len(result) == 7 else "broken",
            "baseline_identical": Path(result[1]).read_bytes() == baseline_before,
            "sweep_after": f"{len(sweep[0])} images", "valid_upload_after": accepted}


def _metric_steps(path: Path) -> list[int]:
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            steps.append(-1)  # a cut line would show up here
    return steps


def kill_and_resume(work: Path, steps: int, seed: int) -> dict:
    """A CLI run killed with SIGKILL at a random step (past at least one checkpoint or not), resumed."""
    out = work / "killed-run"
    kill_at = random.Random(seed).randint(2, steps - 1)
    train = [sys.executable, "-m", "rats_app.train", "--output-dir", str(out)]
    settings = [f"steps={steps}", "checkpoint_every=4", "batch_size=2", "teacher_steps=8", "sample_every=0",
                "device=cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.Popen(train + settings, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "metrics.jsonl"
    while run.poll() is None and not (metrics.exists() and len(metrics.read_text().splitlines()) >= kill_at):
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed_after = len(_metric_steps(metrics)) if metrics.exists() else 0
    checkpoint = json.loads((out / "run.json").read_text()).get("step", 0)
    resumed = subprocess.run(train + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    lora_loads = subprocess.run([sys.executable, "-m", "rats_app.generate", "--prompt", PROMPT, "--nfe", "3",
                                 "--lora", str(out), "--out", str(work / "from-resumed.png")], cwd=ROOT, env=env,
                                capture_output=True, text=True).returncode == 0
    logged = _metric_steps(metrics)
    return {"steps": steps, "killed_after_step": killed_after, "last_checkpoint_step": checkpoint,
            "resume_exit_code": resumed.returncode, "status": json.loads((out / "run.json").read_text())["status"],
            "lora_loads": lora_loads, "metrics_lines": len(logged),
            "every_step_once": logged == list(range(1, steps + 1))}


def markdown(results: dict, command: str) -> str:
    """The figures as the README shows them."""
    c, s, p, k = (results[key] for key in ("concurrent", "sequential", "poisoned_upload", "kill_resume"))
    return (f"Measured with `{command}` (2 CPU cores):\n\n| check | result |\n|---|---|\n"
            f"| {c['calls']} concurrent `/compare` calls | {c['answered']} answered, {c['failed']} failed; "
            f"latency median {c['median_s']:.1f} s, max {c['max_s']:.1f} s |\n"
            f"| {s['calls']} sequential `/compare` calls | resident memory {s['rss_before_mb']:.0f} → "
            f"{s['rss_after_mb']:.0f} MB ({s['rss_growth_pct']:+.1f} %); {s['gradio_cache_files']} files in "
            "Gradio's cache (pruned hourly) |\n"
            f"| LoRA for another model uploaded | refused; compare after it {p['compare_after']}, same baseline: "
            f"{p['baseline_identical']}; sweep {p['sweep_after']}; a valid upload after it: accepted |\n"
            f"| kill -9 of a {k['steps']}-step training run after step {k['killed_after_step']}, then --resume | "
            f"exit {k['resume_exit_code']}, {k['status']} from the step-{k['last_checkpoint_step']} checkpoint; "
            f"LoRA loads: {k['lora_loads']}; {k['metrics_lines']} metrics lines, each step once: "
            f"{k['every_step_once']} |\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=12)
    parser.add_argument("--max-minutes", type=float, default=30.0, help="bound on the load parts' wall time")
    parser.add_argument("--seed", type=int, default=0, help="picks the step the training run is killed at")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--out", help="also write the README table here (docs/results/fault_load.md)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rats-fault-load-"))
    cache = work / "gradio-cache"
    deadline = time.monotonic() + 60 * args.max_minutes
    results = {}
    with running_app({"RATS_RUNS_DIR": str(work / "runs" / "app"), "GRADIO_TEMP_DIR": str(cache)},
                     log=work / "app.log") as (app, url):
        results["concurrent"] = concurrent_load(url, args.clients, args.rounds, deadline)
        print("concurrent:", results["concurrent"], flush=True)
        results["sequential"] = sequential_memory(url, app.pid, args.sequential, cache, deadline)
        print("sequential:", results["sequential"], flush=True)
        results["poisoned_upload"] = poisoned_upload(url, work)
        print("poisoned upload:", results["poisoned_upload"], flush=True)
    results["kill_resume"] = kill_and_resume(work, args.train_steps, args.seed)
    print("kill -9 + resume:", results["kill_resume"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.out:
        command = "python benchmarks/fault_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.out).write_text(markdown(results, command))
    shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
