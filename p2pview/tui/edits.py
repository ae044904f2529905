"""What-if edits off the UI thread: a worker computes the next analysis, the UI thread assigns it.

An edit rebuilds the topology, boots the kernel model again and recomputes
its verdicts (:class:`~p2pview.tui.verdicts.Verdicts`: every pair up to 2,048
functions, the per-function arrays above; a few tenths of a second on 2,000
functions, about two seconds on 20,000, most of it the new topology). The
what-if screen runs it in a thread worker: :class:`~p2pview.tui.analysis.WhatIf`
is immutable, so the worker reads the live value without a copy and returns a
new one, and the screens keep showing the old one meanwhile. The UI thread
assigns the new value to the app's ``whatif`` when :class:`EditFinished`
arrives, unless a reload replaced the value the edit started from.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message

from p2pview.tui.analysis import WhatIf
from p2pview.tui.failures import failure_text

#: One step: the next value from the live one (``None``: nothing to do, as an undo with no edit).
Step = Callable[[WhatIf], WhatIf | None]


def run_step(live: WhatIf, step: Step, done: str | None) -> EditFinished:
    """Compute ``step`` from ``live``; never raises (errors travel in the message)."""
    try:
        edited = step(live)
    except Exception as exc:  # one line for the user; a bug says it is one
        return EditFinished(live, None, failure_text(exc), None)
    return EditFinished(live, edited, None, done if edited is not None else None)


class EditFinished(Message):
    """A step ran from ``live``.

    ``edited`` is the value to assign (``None`` when the step failed or did
    nothing), ``error`` the reason it failed, ``done`` what to tell the user.
    """

    def __init__(
        self, live: WhatIf, edited: WhatIf | None, error: str | None, done: str | None
    ) -> None:
        super().__init__()
        self.live = live
        self.edited = edited
        self.error = error
        self.done = done
