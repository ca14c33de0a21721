"""Where reward weights come from: a local path, or a hub id already in the local cache, or a
download when the hub is reachable. Never a silent hang: offline, a missing file is reported at
once with the exact path or id looked for and the environment variable that supplies it."""

from __future__ import annotations

import os
from pathlib import Path

from rats_app.errors import RewardUnavailable


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


HUB_TIMEOUT_S = 20.0  # per metadata request: an unreachable hub fails fast instead of hanging


def hub_error(what: str, exc: Exception) -> str | None:
    """What a hub failure means to a user, or None when it is not one of the hub's own errors."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return f"{what} is gated on the hub: accept its licence there and log in (`hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError):
        return f"{what}: no such repository on the hub (misspelt, or private without a token)"
    if isinstance(exc, (RevisionNotFoundError, EntryNotFoundError)) and not isinstance(exc, LocalEntryNotFoundError):
        return f"{what}: the repository has no such file or revision"
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return f"{what} is not in the local cache and the hub could not be reached"
    if isinstance(exc, HfHubHTTPError):
        return f"{what}: the hub answered {exc.response.status_code if exc.response is not None else 'an error'}"
    return None


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
        return snapshot_download(value, local_files_only=local_only, allow_patterns=patterns,
                                 etag_timeout=HUB_TIMEOUT_S)

    return _from_hub(name, repr(value), env, "a local directory", fetch)


# huggingface_hub retries an unreachable hub five times with back-off (about 23 s per file): once one
# download has found no hub, the process's other rewards say so at once instead of waiting again.
_unreachable_hub: list[str] = []


def _from_hub(name: str, what: str, env: str, instead: str, fetch) -> str:
    """The local cache first; a download only when the hub may be reached; else say what to set."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return fetch(True)
    except LocalEntryNotFoundError:  # not cached
        pass
    if offline():
        raise RewardUnavailable(f"{name}: {what} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; "
                                f"download it on a connected machine or set {env} to {instead}")
    if _unreachable_hub:
        raise RewardUnavailable(f"{name}: {what} is not in the local cache and the hub could not be reached "
                                f"(tried for {_unreachable_hub[0]} in this process); set {env} to {instead}")
    try:
        return fetch(False)
    except Exception as exc:
        reason = hub_error(what, exc)
        if reason is None and not isinstance(exc, OSError):  # connection errors are OSErrors; others are bugs
            raise
        if isinstance(exc, LocalEntryNotFoundError) or reason is None:  # no answer from the hub at all
            _unreachable_hub.append(what)
        raise RewardUnavailable(f"{name}: {reason or f'could not download {what} ({type(exc).__name__})'}; "
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
                     lambda local_only: hf_hub_download(hub_repo, value, local_files_only=local_only,
                                                        etag_timeout=HUB_TIMEOUT_S))
