"""Files: atomic writes (a crash or a full disk never leaves a half-written file in place),
self-healing JSON lines, prompt files, and images."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rats_app.errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` then rename over ``path`` (same directory, so the rename is atomic).

    ``suffix``: the temporary file's ending, for writers that pick the format by it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
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


def to_uint8_frames(clip) -> np.ndarray:
    """Float frames in [0, 1] (a pipeline's ``output_type="np"``) -> uint8, rounded as the contracts ask."""
    clip = np.asarray(clip)
    return clip if clip.dtype == np.uint8 else np.clip(np.round(clip * 255), 0, 255).astype(np.uint8)


def channels_last_uint8(images) -> np.ndarray:
    """A batch of [0, 1] tensors, B x 3 x H x W (clips: B x 3 x F x H x W), as files and checkers read
    them: B x H x W x 3 (B x F x H x W x 3) uint8."""
    order = (0, 2, 3, 4, 1) if images.ndim == 5 else (0, 2, 3, 1)
    return to_uint8_frames(images.float().permute(*order).cpu().numpy())


def save_video(clip, path: str | os.PathLike, fps: int) -> Path:
    """A clip (F x H x W x 3) as an H.264 mp4 that browsers play (yuv420p), written atomically."""
    import imageio.v2 as imageio

    frames = to_uint8_frames(clip)

    def write(tmp: str) -> None:
        imageio.mimwrite(tmp, list(frames), format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                         quality=9, macro_block_size=1, ffmpeg_log_level="error")
    return atomic_write(path, write, suffix=".mp4")


def filmstrip(clip) -> np.ndarray:
    """The frames side by side: F x H x W x 3 -> H x (F W) x 3 uint8 (lossless as a PNG)."""
    return np.concatenate(list(to_uint8_frames(clip)), axis=1)


def from_filmstrip(strip: np.ndarray, frames: int) -> np.ndarray:
    """Inverse of :func:`filmstrip`: H x (F W) x 3 -> F x H x W x 3."""
    strip = np.asarray(strip)
    height, width = strip.shape[0], strip.shape[1] // frames
    return strip.reshape(height, frames, width, 3).transpose(1, 0, 2, 3)


def check_writable(directory: str | os.PathLike) -> None:
    """A directory that exists (or can be made) and takes files; else UserError naming why."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output directory {directory}: {exc.strerror or exc}") from None
