"""How the TUI words a failure: bad input in one line, a bug as a bug.

Workers run the engine off the UI thread and hand their failures to the
screens as text. Input p2pview cannot use, and a tool it runs that fails
(:class:`~p2pview.model.errors.P2pviewError`: ``InputError``, ``ToolError``),
and the operating system's refusals (``OSError``) are one line for the user.
Anything else is a bug in p2pview: the line says so, and its traceback is
kept and printed on stderr when the TUI exits (:func:`report_bugs`), so that a
bug is never passed off as bad input.
"""

from __future__ import annotations

import threading
import traceback
from typing import TextIO

from p2pview.model.errors import P2pviewError

_lock = threading.Lock()
_tracebacks: list[str] = []


def failure_text(exc: BaseException) -> str:
    """One line for the user about ``exc`` (a bug's traceback is kept for exit)."""
    if isinstance(exc, P2pviewError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    with _lock:
        _tracebacks.append("".join(traceback.format_exception(exc)))
    return (
        f"a bug in p2pview ({type(exc).__name__}: {exc}); its traceback is printed"
        " when p2pview exits: please report it"
    )


def report_bugs(out: TextIO) -> int:
    """Print (and forget) the tracebacks of the bugs met so far; how many there were."""
    with _lock:
        kept = list(_tracebacks)
        _tracebacks.clear()
    for text in kept:
        print(f"p2pview: a bug met while the TUI ran:\n{text}", file=out, end="")
    return len(kept)
