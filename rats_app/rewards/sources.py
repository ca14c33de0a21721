"""Where reward weights come from: a local path, or a hub id already in the local cache, or a
download when the hub is reachable. Never a silent hang: offline, a missing file is reported at
once with the exact path or id looked for and the environment variable that supplies it."""

from __future__ import annotations

import os
from pathlib import Path

from rats_app.rewards.base import RewardUnavailable


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def resolve_dir(name: str, value: str, env: str) -> str:
    """A local directory, or a hub id usable by from_pretrained (cached, or downloadable online)."""
    if Path(value).exists() or value.startswith((".", "/", "~")):
        path = Path(value).expanduser()
        if not any((path / f).exists() for f in ("config.json", "preprocessor_config.json", "tokenizer_config.json")):
            raise RewardUnavailable(f"{name}: no model or tokenizer files in {path} "
                                    f"(set {env} to a transformers model directory)")
        return str(path)
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(value, local_files_only=True)
    except Exception:
        pass
    if offline():
        raise RewardUnavailable(f"{name}: {value!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; "
                                f"download it on a connected machine or set {env} to a local directory")
    try:
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "20")
        return snapshot_download(value, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"])
    except Exception as exc:
        raise RewardUnavailable(f"{name}: could not download {value!r} ({type(exc).__name__}); "
                                f"set {env} to a local directory") from None


def resolve_file(name: str, value: str, env: str, hub_repo: str | None = None) -> str:
    """A local checkpoint file, or ``hub_repo``'s file ``value`` (cached or downloadable)."""
    path = Path(value).expanduser()
    if path.is_file():
        return str(path)
    if hub_repo is None or os.sep in value:  # a path that does not exist
        raise RewardUnavailable(f"{name}: checkpoint not found: {path} (set {env} to the checkpoint file)")
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(hub_repo, value, local_files_only=True)
    except Exception:
        pass
    if offline():
        raise RewardUnavailable(f"{name}: {hub_repo}/{value} is not in the local Hugging Face cache and "
                                f"HF_HUB_OFFLINE=1; set {env} to the checkpoint file")
    try:
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "20")
        return hf_hub_download(hub_repo, value)
    except Exception as exc:
        raise RewardUnavailable(f"{name}: could not download {hub_repo}/{value} ({type(exc).__name__}); "
                                f"set {env} to the checkpoint file") from None
