"""The errors a user can cause. Each message is shown as is: one line that names what is wrong.

CLIs print ``error: <message>`` and exit with 2; the app shows the message in the page. Anything
else that escapes is a bug: logged with its traceback and shown as an internal error.
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with what the user asked for (a path, a prompt, a number, a file)."""


class ConfigError(UserError):
    """A bad configuration key or value; the message names the key and the value."""


class RewardUnavailable(UserError):
    """A reward's weights (or packages) are missing; the message says what and how to supply them."""


def run_cli(work) -> int:
    """A command-line entry point's policy: ``work()`` returns the summary to print (exit 0); a
    UserError becomes one ``error:`` line on stderr (exit 2), never a traceback."""
    import sys

    try:
        summary = work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary:
        print(summary)
    return 0
