"""App round trip: time from `python app.py` to first page, and the `compare` API call.

    python benchmarks/app_compare.py [--repeats 5]

Starts the real app in a subprocess on a free local port, polls until the page is served, then
calls /compare through gradio_client (teacher@50 + baseline@3 + RATS@3 + rewards).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a small red circle at the top left on a white background"


def main() -> None:
    from report_out import captured
    with captured(f"python benchmarks/{__file__.rsplit('/', 1)[-1]}"):
        _main()


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                if app.poll() is not None or time.perf_counter() - started > 120:
                    raise SystemExit("the app did not start")
                time.sleep(0.1)
        first_page = time.perf_counter() - started
        from gradio_client import Client

        client = Client(url, verbose=False)
        first = time.perf_counter()
        client.predict(PROMPT, 0, 3, 50, api_name="/compare")  # waits for the model load too
        first_call = time.perf_counter() - first
        times = []
        for i in range(args.repeats):
            t = time.perf_counter()
            client.predict(PROMPT, i + 1, 3, 50, api_name="/compare")
            times.append(time.perf_counter() - t)
    finally:
        app.terminate()
        app.wait(10)
    print(f"machine: {os.cpu_count()} CPU cores\n")
    print("| measure | seconds |")
    print("|---|---|")
    print(f"| `python app.py` to first page served | {first_page:.2f} |")
    print(f"| first `compare` (includes loading the model and rewards) | {first_call:.2f} |")
    print(f"| `compare` round trip, median of {args.repeats} (teacher@50 + baseline@3 + RATS@3 + rewards) | "
          f"{statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
