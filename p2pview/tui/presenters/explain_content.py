"""One pair's explanation as Textual ``Content``: the CLI's logic and wording, theme colours.

The numbered decision steps and the kernel messages come from
:mod:`p2pview.views.explain` (what ``p2pview explain`` prints), converted from
Rich ``Text`` with their fixed colours mapped to theme variables. The path
through the tree is drawn here, line by line, so that the marks that matter
(provider, client, the common upstream device, ACS redirect) come before the
device names that may be cut at 80 columns.

Nothing here parses markup: device names and command-line strings are
plain text inside ``Content`` spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from rich.style import Style as RichStyle
from rich.text import Text
from textual.content import Content

from p2pview.kernel import Verdict
from p2pview.model import BDF, AcsPresence, RootBus, Topology, acs_bit_names
from p2pview.session import Session
from p2pview.sources.pciids import ids_text
from p2pview.tui.presenters.verdict_style import TONE_STYLES, result_style
from p2pview.views.explain import (
    assumptions_block,
    decision_steps,
    messages_block,
    result_text,
)
from p2pview.views.names import LABEL_WIDTH, role

#: The style names of the CLI's views (:data:`p2pview.views.styles.THEME`) as
#: theme variables; ``bold`` and ``italic`` are attributes and pass through.
THEME_STYLES: dict[str, str] = {
    **{f"verdict.{tone}": style for tone, style in TONE_STYLES.items()},
    "check.pass": "$text-success",
    "check.fail": "$text-error bold",
    "acs.redirect": "$text-error bold",
    "assumed": "$text-secondary",
    "assumed.head": "$text-secondary bold",
    "role": "$text-accent bold",
    "host_bridge": "$text-primary bold",
    "status.agree": "$text-success bold",
    "status.expected": "$text-warning",
    "status.unknown": "$text-secondary",
    "status.unexpected": "$text-error bold",
    "event.warn": "$text-warning",
    "event.error": "$text-error bold",
    "io.ok": "$text-success bold",
    "io.short": "$text-warning bold",
    "io.failed": "$text-error bold",
    "muted": "$foreground-muted",
    "bold": "bold",
    "italic": "italic",
}

#: Secondary text. ($text-muted is an "auto" colour: inside Content spans it renders at
#: full contrast, so spans use $foreground-muted.)
MUTED = "$foreground-muted"
REDIRECT = "$text-error bold"
UNKNOWN = "$text-secondary"
ROLE = "$text-accent bold"


def theme_style(style: str | RichStyle | None) -> str:
    """The theme form of a view's style: a style name, ``bold``/``italic``, or several.

    Raises:
        KeyError: a name :data:`THEME_STYLES` does not map (a view uses a colour,
            or a name this face has not been given).
    """
    if style is None:
        return ""
    key = str(style).strip()
    if not key or key == "none":
        return ""
    return " ".join(THEME_STYLES[word] for word in key.split())


def themed(text: Text) -> Content:
    """A Rich ``Text`` as ``Content``, its styles mapped through :data:`THEME_STYLES`."""
    parts: list[str | tuple[str, str]] = []
    plain = text.plain
    base = theme_style(text.style)
    # Split the text at every span boundary and give each piece the union of styles.
    cuts = sorted({0, len(plain), *(s.start for s in text.spans), *(s.end for s in text.spans)})
    for start, end in pairwise(cuts):
        if start >= end:
            continue
        styles = [base] if base else []
        styles.extend(
            theme_style(span.style)
            for span in text.spans
            if span.start <= start and span.end >= end and theme_style(span.style)
        )
        piece = plain[start:end]
        parts.append((piece, " ".join(styles)) if styles else piece)
    return Content.assemble(*parts)


def join_lines(lines: Iterable[Content | str]) -> Content:
    """Lines joined with newlines."""
    return Content("\n").join(lines)


class Names:
    """Short names for one topology (``BB:DD.F`` when every function is in domain 0)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.short = topology.short_names

    def bdf(self, bdf: BDF) -> str:
        """``BB:DD.F`` or the full address."""
        return bdf.short() if self.short else str(bdf)

    def describe(self, bdf: BDF) -> str:
        """``vvvv:dddd role (label, driver)``, the label cut to fit a line."""
        dev = self.topology[bdf]
        what = role(dev)
        label = dev.label
        if label and len(label) > LABEL_WIDTH:
            label = label[: LABEL_WIDTH - 1] + "…"
        driver = None if dev.is_bridge else dev.driver
        extra = [x for x in (label, driver) if x and x != what]
        return f"{ids_text(dev)} {what}" + (f" ({', '.join(extra)})" if extra else "")


def result_content(verdict: Verdict) -> Content:
    """``BUS_ADDR, distance 4`` (or the int of v4.20-v5.3), in the theme's colours."""
    return themed(result_text(verdict))


def short_result(verdict: Verdict) -> str:
    """``THRU_HOST_BRIDGE 4``, or ``distance -2`` in the int eras."""
    if verdict.map_type is None:
        return f"distance {verdict.distance}"
    return f"{verdict.map_type.value} {verdict.distance}"


# -- the path through the tree --------------------------------------------------------


def _acs_badge(session: Session, verdict: Verdict, bdf: BDF) -> Content:
    """``[ACS RR CR, ctrl 0x001d]`` for a function on the path, styled by whether it counts."""
    checks = {c.device: c for c in verdict.acs_checks}
    eff = session.state.acs[bdf]
    dev = session.topology[bdf]
    check = checks.get(bdf)
    counted = check is not None and check.counted
    before = dev.acs.ctrl
    ctrl = ""
    if eff.ctrl is not None:
        ctrl = f"ctrl {eff.ctrl:#06x}"
        if before is not None and before != eff.ctrl:
            ctrl = f"ctrl {before:#06x} -> {eff.ctrl:#06x}"
    by_params = f", set by {' and '.join(eff.params)}" if eff.params else ""
    if eff.redirect:
        bits = " ".join(acs_bit_names(eff.redirect))
        text = f"[ACS {bits}, {ctrl}{by_params}" + ("" if counted else ", not counted") + "]"
        return Content.styled(text, REDIRECT if counted else MUTED)
    if not eff.known:
        assumed = ", assumed no redirect" if bdf in verdict.assumed else ""
        return Content.styled(f"[ACS ?{assumed}]", UNKNOWN)
    if eff.presence is AcsPresence.PRESENT:
        return Content.styled(f"[ACS no redirect, {ctrl}{by_params}]", MUTED)
    return Content("")


def _node_line(session: Session, verdict: Verdict, names: Names, bdf: BDF) -> Content:
    roles = verdict.roles(bdf)
    parts: list[Content | str | tuple[str, str]] = [(names.bdf(bdf), "bold")]
    if roles:
        parts.append((" <- " + " = ".join(roles), ROLE))
    badge = _acs_badge(session, verdict, bdf)
    if badge.plain:
        parts.extend([" ", badge])
    parts.append(("  " + names.describe(bdf), MUTED))
    return Content.assemble(*parts)


def path_tree(session: Session, verdict: Verdict) -> list[Content]:
    """Both chains drawn as one tree per host bridge, provider's host bridge first."""
    topo = session.topology
    names = Names(topo)
    on_path: list[BDF] = []
    for chain in (verdict.provider_chain, verdict.client_chain):
        for bdf in reversed(chain):
            if bdf not in on_path:
                on_path.append(bdf)
    members = set(on_path)
    tops: dict[RootBus, list[BDF]] = {}
    below: dict[BDF, list[BDF]] = {}
    for bdf in on_path:
        parent = topo[bdf].parent
        if parent is None or parent not in members:
            tops.setdefault(topo.root_bus_of(bdf), []).append(bdf)
        else:
            below.setdefault(parent, []).append(bdf)
    lines: list[Content] = []

    def draw(bdf: BDF, lead: str, last: bool) -> None:
        guide = "└── " if last else "├── "
        lines.append(
            Content.assemble((lead + guide, MUTED), _node_line(session, verdict, names, bdf))
        )
        kids = sorted(below.get(bdf, ()))
        for k, kid in enumerate(kids):
            draw(kid, lead + ("    " if last else "│   "), k == len(kids) - 1)

    for root, top in tops.items():
        lines.append(Content.assemble((str(root), "$text-primary bold"), (" (host bridge)", MUTED)))
        top_sorted = sorted(top)
        for k, bdf in enumerate(top_sorted):
            draw(bdf, "", k == len(top_sorted) - 1)
    return lines


# -- the decision, the messages, the notes -----------------------------------------------


#: How the CLI words a whitelist step: "5." for one check, "5a."/"5b." for two.
WHITELIST_STEP = re.compile(r"5[a-h]?\. host_bridge_whitelist")


def step_lines(session: Session, verdict: Verdict) -> list[Content]:
    """The numbered walk of ``calc_map_type_and_dist()``, as the CLI words it.

    After each host-bridge whitelist step comes the function whose IDs were
    compared, which the CLI's one-line reason leaves out. A pair across two
    host bridges has two whitelist checks in one ``host_bridge_whitelist()``
    call: they are numbered 5a and 5b, not 5 twice.
    """
    names = Names(session.topology)
    looked_at: list[Content] = []
    for check in verdict.whitelist_checks:
        if check.device is None:
            text = f"   {check.host_bridge}: no function looked at ({check.reason})"
        else:
            text = (
                f"   {check.host_bridge}: looked at {check.device}  {names.describe(check.device)}"
            )
            if check.warned:
                text += "  (warned in dmesg)"
        looked_at.append(Content.styled(text, MUTED))
    lines: list[Content] = []
    pending = list(looked_at)
    steps = decision_steps(session, verdict)
    if len(verdict.whitelist_checks) > 1:  # under the text of "5a. ", one cell further in
        pending = [Content(" ") + line for line in pending]
    for step in steps:
        plain = step.plain
        if plain.startswith("Result:") and pending:
            lines.extend(pending)
            pending = []
        is_whitelist = WHITELIST_STEP.match(plain) is not None
        lines.append(themed(step))
        if is_whitelist and pending:
            lines.append(pending.pop(0))
    lines.extend(pending)
    return lines


def message_lines(session: Session, verdict: Verdict) -> list[Content]:
    """The kernel's lines for this pair and the boot lines on its path, as dmesg shows them."""
    return [themed(text) for text in messages_block(session, verdict)]


def note_lines(session: Session) -> list[Content]:
    """What the verdict rests on: the session's notes and the kernel profile's caveats."""
    lines = [Content.styled(f"note: {note}", "italic") for note in session.notes]
    profile = session.target.profile
    lines.extend(
        Content.styled(f"{profile.title} profile: {caveat}", MUTED) for caveat in profile.caveats
    )
    return lines


# -- the header and the what-if comparison ----------------------------------------------------


def pair_header(session: Session, verdict: Verdict) -> Content:
    """Provider and client, the result, and the kernel the result is for."""
    names = Names(session.topology)
    target = session.target
    return Content.assemble(
        ("provider ", MUTED),
        (str(verdict.provider), "bold"),
        ("  " + names.describe(verdict.provider), MUTED),
        "\n",
        ("client   ", MUTED),
        (str(verdict.client), "bold"),
        ("  " + names.describe(verdict.client), MUTED),
        "\n",
        result_content(verdict),
        (f"   kernel {target.version} ({target.profile.title} profile)", MUTED),
    )


def comparison(
    verdict: Verdict, original: Verdict | None, edits: int, *, showing_original: bool
) -> Content | None:
    """One line on what the what-if edits changed for this pair (``None`` without edits)."""
    if edits == 0:
        return None
    plural = "edit" if edits == 1 else "edits"
    if showing_original:
        return Content.assemble(
            ("Original ", "$text-warning bold"),
            (
                f"topology and kernel, before the {edits} what-if {plural} (o: back to edited)",
                MUTED,
            ),
        )
    if original is None:
        return Content.styled(
            f"What-if: this pair did not exist before the {edits} {plural}", "$text-warning"
        )
    if (original.map_type, original.distance) == (verdict.map_type, verdict.distance):
        same = "; the kernel messages differ" if original.messages != verdict.messages else ""
        return Content.styled(
            f"What-if: unchanged by the {edits} {plural} (was {short_result(original)} too{same})",
            MUTED,
        )
    return Content.assemble(
        ("What-if: changed by the ", "$text-warning"),
        (f"{edits} {plural}", "$text-warning"),
        (": was ", "$text-warning"),
        (short_result(original), result_style(original)),
        (", now ", "$text-warning"),
        (short_result(verdict), result_style(verdict)),
        ("  (o shows the original)", MUTED),
    )


@dataclass(frozen=True)
class Explanation:
    """Everything the explain screen shows for one pair, section by section."""

    header: Content
    change: Content | None
    #: What the verdict rests on (assumptions, their alternatives, inferences); empty if read.
    basis: Content
    tree: Content
    steps: Content
    messages: Content
    notes: Content


def explain_pair(
    session: Session,
    verdict: Verdict,
    *,
    original: Verdict | None = None,
    edits: int = 0,
    showing_original: bool = False,
) -> Explanation:
    """Build every section of one pair's explanation."""
    return Explanation(
        header=pair_header(session, verdict),
        change=comparison(verdict, original, edits, showing_original=showing_original),
        basis=join_lines(themed(line) for line in assumptions_block(verdict)),
        tree=join_lines(path_tree(session, verdict)),
        steps=join_lines(step_lines(session, verdict)),
        messages=join_lines(message_lines(session, verdict)),
        notes=join_lines(note_lines(session)),
    )
