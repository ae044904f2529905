"""What-if edits off the UI thread: edit a draft of the model, then adopt it at once.

An edit rebuilds the topology, boots the kernel model again and recomputes
its verdicts (:class:`~p2pview.tui.verdicts.Verdicts`: every pair up to 2,048
functions, the per-function arrays above; a few tenths of a second on 2,000
functions, about two seconds on 20,000, most of it the new topology). The
what-if screen runs it in a thread worker on a *draft*: a shallow copy of
the :class:`~p2pview.tui.model.TuiModel` with its own history and edit
lists. The live model is untouched until the worker's message arrives on the
UI thread, where :func:`adopt` moves the draft's state into it in one go, so
that no screen ever draws a half-edited model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from textual.message import Message

from p2pview.tui.failures import failure_text
from p2pview.tui.model import TuiModel

#: One edit: called with the draft, raises on a value the model refuses.
Edit = Callable[[TuiModel], object]

#: Fields the user changes while an edit runs: the live model keeps its own.
SELECTION_FIELDS = frozenset({"selected", "peer", "pair", "scenario"})


def draft_of(model: TuiModel) -> TuiModel:
    """A copy an edit can change without touching ``model`` (lists copied, data shared)."""
    return replace(model, history=list(model.history), edits=list(model.edits))


def adopt(live: TuiModel, edited: TuiModel) -> None:
    """Give ``live`` the edited state of ``edited``, keeping ``live``'s selections."""
    for field in fields(TuiModel):
        if field.name not in SELECTION_FIELDS:
            setattr(live, field.name, getattr(edited, field.name))


def run_edit(live: TuiModel, change: Edit, done: str | None) -> EditFinished:
    """Apply ``change`` to a draft of ``live``; never raises (errors travel in the message)."""
    draft = draft_of(live)
    try:
        result = change(draft)
    except Exception as exc:  # one line for the user; a bug says it is one
        return EditFinished(live, None, failure_text(exc), None)
    if result is False:  # undo with nothing to undo
        return EditFinished(live, None, None, None)
    return EditFinished(live, draft, None, done)


class EditFinished(Message):
    """An edit ran on a draft of ``live``.

    ``edited`` is the draft to adopt (``None`` when the edit failed or did
    nothing), ``error`` the reason it failed, ``done`` what to tell the user.
    """

    def __init__(
        self, live: TuiModel, edited: TuiModel | None, error: str | None, done: str | None
    ) -> None:
        super().__init__()
        self.live = live
        self.edited = edited
        self.error = error
        self.done = done
