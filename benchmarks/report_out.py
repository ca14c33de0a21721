"""`--out FILE.md` for the benchmark scripts: what they print also goes to FILE, headed by the
command that produced it (so README results say how to reproduce them)."""

from __future__ import annotations

import contextlib
import io
import sys


@contextlib.contextmanager
def captured(command: str):
    out = None
    if "--out" in sys.argv:
        i = sys.argv.index("--out")
        out = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    buffer = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, text):
            sys.__stdout__.write(text)
            buffer.write(text)
            return len(text)

    with contextlib.redirect_stdout(Tee()):
        yield
    if out:
        args = " ".join(sys.argv[1:])
        with open(out, "w", encoding="utf-8") as f:
            f.write(f"Measured with `{command}{' ' + args if args else ''}`:\n\n{buffer.getvalue()}")
