"""How handlers fail in the page: a user's mistake is shown as its message; anything else is a
bug, logged with its traceback and shown as an internal error (never a raw exception text)."""

from __future__ import annotations

import functools
import logging
import os

import gradio as gr

from rats_app.errors import UserError

log = logging.getLogger("rats_app.ui")
INTERNAL = "Internal error (logged on the server); please report it. Nothing you entered was lost."


def shown(fn):
    """Wrap a handler (plain or generator): UserError -> gr.Error(message); other errors -> internal."""
    def fail(exc: Exception):
        if isinstance(exc, gr.Error):
            raise exc
        if isinstance(exc, UserError):
            raise gr.Error(str(exc)) from None
        log.exception("internal error in %s", fn.__name__)
        raise gr.Error(INTERNAL) from None

    if _is_generator(fn):
        @functools.wraps(fn)
        def generator(*args):
            try:
                yield from fn(*args)
            except Exception as exc:
                fail(exc)
        return generator

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except Exception as exc:
            fail(exc)
    return wrapper


def _is_generator(fn) -> bool:
    import inspect

    return inspect.isgeneratorfunction(inspect.unwrap(fn))


def on_zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true", "yes")


def gpu(fn, duration: int = 120):
    """On Hugging Face Spaces (the ``spaces`` package present) inference runs under spaces.GPU."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)
