"""Where reward weights come from: a local path, or a hub id already in the local cache, or a
download when the hub is reachable. Never a silent hang: offline, a missing file is reported at
once with the exact path or id looked for and the environment variable that supplies it."""

from __future__ import annotations

import os
from pathlib import Path

from rats_app.errors import RewardUnavailable


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

    def fetch(local_only: bool) -> str:
        patterns = None if local_only else ["*.json", "*.txt", "*.safetensors", "*.model"]
        return snapshot_download(value, local_files_only=local_only, allow_patterns=patterns)

    return _from_hub(name, repr(value), env, "a local directory", fetch)


def _from_hub(name: str, what: str, env: str, instead: str, fetch) -> str:
    """The local cache first; a download only when the hub may be reached; else say what to set."""
    try:
        return fetch(True)
    except Exception:
        pass
    if offline():
        raise RewardUnavailable(f"{name}: {what} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; "
                                f"download it on a connected machine or set {env} to {instead}")
    try:
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "20")
        return fetch(False)
    except Exception as exc:
        raise RewardUnavailable(f"{name}: could not download {what} ({type(exc).__name__}); "
                                f"set {env} to {instead}") from None


def resolve_file(name: str, value: str, env: str, hub_repo: str | None = None) -> str:
    """A local checkpoint file, or ``hub_repo``'s file ``value`` (cached or downloadable)."""
    path = Path(value).expanduser()
    if path.is_file():
        return str(path)
    if hub_repo is None or os.sep in value:  # a path that does not exist
        raise RewardUnavailable(f"{name}: checkpoint not found: {path} (set {env} to the checkpoint file)")
    from huggingface_hub import hf_hub_download

    return _from_hub(name, f"{hub_repo}/{value}", env, "the checkpoint file",
                     lambda local_only: hf_hub_download(hub_repo, value, local_files_only=local_only))
