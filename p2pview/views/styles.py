"""The names of the styles p2pview's text is marked with, and their terminal colours.

The views mark text by what it is (a verdict, an ACS redirect that counts, an
assumed fact), not by colour, the way Rich's own theme names
(``logging.level.error``) work. Each face maps the names: the command line's
console gets :data:`THEME` as a Rich theme; the TUI maps the same names to
its theme variables (:data:`p2pview.tui.presenters.explain_content.THEME_STYLES`).
``bold`` and ``italic`` are attributes, not names, and are used as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.theme import Theme

    from p2pview.kernel import Verdict

#: Every style name and its colours on a terminal.
THEME: dict[str, str] = {
    # A verdict, by Verdict.tone.
    "verdict.bus_addr": "bold green",
    "verdict.thru": "bold yellow",
    "verdict.unsupported": "bold red",
    # A step of the decision that passes, or fails.
    "check.pass": "green",
    "check.fail": "bold red",
    # ACS redirect bits that count on the path.
    "acs.redirect": "bold red",
    # A fact that was assumed, and the heading of the assumptions.
    "assumed": "magenta",
    "assumed.head": "bold magenta",
    # The roles marked on the path (provider, client, common upstream device).
    "role": "bold cyan",
    "host_bridge": "bold blue",
    # compare: how p2pview's verdict stands against a dump's own label.
    "status.agree": "bold green",
    "status.expected": "yellow",
    "status.unknown": "magenta",
    "status.unexpected": "bold red",
    # trace: the kernel events of the data path, and the syscall's outcome.
    "event.warn": "yellow",
    "event.error": "bold red",
    "io.ok": "bold green",
    "io.short": "bold yellow",
    "io.failed": "bold red",
    # Secondary text.
    "muted": "dim",
}


def verdict_style(verdict: Verdict) -> str:
    """The style name of a verdict's result (``verdict.bus_addr`` ...)."""
    return f"verdict.{verdict.tone}"


def rich_theme() -> Theme:
    """:data:`THEME` as a Rich theme (Rich imported here, when a console needs it)."""
    from rich.theme import Theme

    return Theme(THEME)
