"""How every screen words and colours a verdict, so that the screens agree.

Theme variables only: the CLI's Rich colours (:mod:`p2pview.views.explain`) are
mapped, not copied, where the TUI shows the CLI's own text.
"""

from __future__ import annotations

from p2pview.kernel import MapType, Verdict

#: Map types as the result lines colour them.
MAP_TYPE_STYLES: dict[MapType, str] = {
    MapType.BUS_ADDR: "$text-success bold",
    MapType.THRU_HOST_BRIDGE: "$text-warning bold",
    MapType.NOT_SUPPORTED: "$text-error bold",
}


#: :attr:`~p2pview.kernel.Verdict.tone` as theme styles.
TONE_STYLES: dict[str, str] = {
    "bus_addr": "$text-success bold",
    "thru": "$text-warning bold",
    "unsupported": "$text-error bold",
}


def result_style(verdict: Verdict) -> str:
    """Theme style of a verdict (v4.20-v5.3 ints: a distance, or a failure below 0)."""
    return TONE_STYLES[verdict.tone]


def result_text(verdict: Verdict) -> str:
    """``BUS_ADDR, distance 4`` or ``upstream_bridge_distance() = -2``."""
    return verdict.text()
