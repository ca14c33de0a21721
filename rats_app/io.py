"""Files: atomic writes (a crash or a full disk never leaves a half-written file in place),
self-healing JSON lines, prompt files, and images."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from rats_app.errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename over ``path`` (same directory, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return atomic_write(path, _write)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def save_torch_state(path: str | os.PathLike, state: dict) -> Path:
    """Optimizer state etc. of our own runs; read back only with ``weights_only=True``."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_torch_state(path: str | os.PathLike) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line. Self-healing: a partial last line (a kill in mid-write) is cut first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(max(0, size - 65536))
            tail = f.read()
            if not tail.endswith(b"\n"):  # lines are far shorter than the 64 KiB looked at
                f.truncate(size - len(tail) + tail.rfind(b"\n") + 1)
                f.seek(0, os.SEEK_END)
        f.write((json.dumps(record) + "\n").encode("utf-8"))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete JSON line; a partial or unreadable last line (a kill in mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    records = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number >= len(lines) - 2:  # only the last line may be cut short
                break
            raise ValueError(f"{path}: line {number + 1} is not JSON") from None
    return records


def read_prompts(path: str | os.PathLike) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped; a missing, binary or empty file is named."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"prompts file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"prompts file is not UTF-8 text: {p}") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise UserError(f"prompts file has no prompts (no non-empty line): {p}")
    return prompts


def save_png(image, path: str | os.PathLike) -> None:
    """A PIL image as a lossless PNG, written atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
