"""Training jobs for the app: one at a time, in a background thread, stoppable, observable.

The job trains on its own pipeline instance, so the LoRA being trained never leaks into the
images the Compare tab generates meanwhile. Finished (or stopped) runs become selectable LoRAs.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rats_app.config import ConfigError, TrainConfig
from rats_app.models import LORA_WEIGHT_NAME, REPO_ROOT, SHIPPED_RATS_LORA

RUNS_DIR = REPO_ROOT / "runs" / "app"


@dataclass
class JobState:
    status: str = "idle"            # idle | starting | running | finished | stopped | failed
    output_dir: str | None = None
    step: int = 0
    total: int = 0
    started: float = 0.0
    message: str = ""
    metrics: list[dict] = field(default_factory=list)

    @property
    def eta_seconds(self) -> float | None:
        if self.step == 0 or self.status != "running":
            return None
        return (time.time() - self.started) / self.step * (self.total - self.step)


class JobManager:
    def __init__(self, runs_dir: Path = RUNS_DIR, trainer_factory=None):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = JobState()
        self._trainer_factory = trainer_factory  # tests inject tiny models

    @property
    def uploads_dir(self) -> Path:
        return self.runs_dir / "uploads"

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, config: TrainConfig, name: str | None = None) -> Path:
        """Start a run; raises ConfigError if one is already running."""
        with self._lock:
            if self.busy:
                raise ConfigError(f"a training run is already in progress ({self.state.output_dir}); "
                                  "stop it or wait for it to finish")
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = self.runs_dir / (name or f"{stamp}-{config.preset}")
            suffix = 1
            while out.exists():
                out = self.runs_dir / f"{name or stamp + '-' + config.preset}-{suffix}"
                suffix += 1
            from rats_app.run_dir import prepare

            prepare(out, config, resume=False)
            self._stop.clear()
            self.state = JobState(status="starting", output_dir=str(out), total=config.steps, started=time.time())
            self._thread = threading.Thread(target=self._run, args=(config, out), daemon=True, name="rats-train")
            self._thread.start()
            return out

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> JobState:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def _run(self, config: TrainConfig, out: Path) -> None:
        try:
            if self._trainer_factory is not None:
                trainer = self._trainer_factory(config, out)
            else:
                from rats_app.trainer import RatsTrainer

                trainer = RatsTrainer(config, out)
            self.state.status = "running"
            self.state.started = time.time()

            def progress(metrics) -> None:
                self.state.step = metrics.step
                self.state.metrics.append(asdict(metrics))

            trainer.train(progress=progress, should_stop=self._stop.is_set)
            self.state.status = "stopped" if trainer.step < config.steps else "finished"
            self.state.message = f"LoRA saved to {out / LORA_WEIGHT_NAME}"
        except Exception as exc:  # shown in the page; the app keeps serving
            self.state.status = "failed"
            self.state.message = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

    def latest_sample(self) -> Path | None:
        if not self.state.output_dir:
            return None
        samples = sorted((Path(self.state.output_dir) / "samples").glob("step_*.png"))
        return samples[-1] if samples else None


def list_loras(runs_dir: Path = RUNS_DIR) -> dict[str, str]:
    """Selectable LoRAs: label -> directory. The shipped one first, then finished/stopped runs."""
    loras = {}
    if (SHIPPED_RATS_LORA / LORA_WEIGHT_NAME).exists():
        loras["shipped RATS (assets/shapes-flux-rats)"] = str(SHIPPED_RATS_LORA)
    for run in sorted(Path(runs_dir).glob("**/run.json")):
        try:
            status = json.loads(run.read_text()).get("status")
        except (OSError, ValueError):
            continue
        if status in ("finished", "stopped") and (run.parent / LORA_WEIGHT_NAME).exists():
            loras[f"{run.parent.relative_to(runs_dir)} ({status})"] = str(run.parent)
    return loras
