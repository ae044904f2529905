"""``p2pview explain``: the chains as a tree, the decision step by step, the messages."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from p2pview.kernel import MapType, PathKind, Verdict
from p2pview.model import BDF, RootBus, acs_bit_names
from p2pview.session import Session
from p2pview.views.names import LABEL_WIDTH, bdf_text, role
from p2pview.views.styles import verdict_style

_K = TypeVar("_K", bound=Hashable)

#: The style name of each map type's result (:mod:`p2pview.views.styles`).
RESULT_STYLE = {
    MapType.BUS_ADDR: "verdict.bus_addr",
    MapType.THRU_HOST_BRIDGE: "verdict.thru",
    MapType.NOT_SUPPORTED: "verdict.unsupported",
}


def _describe(session: Session, bdf: BDF, *, short: bool = False) -> str:
    dev = session.topology[bdf]
    what = role(dev)
    driver = None if dev.is_bridge else dev.driver
    label = dev.label
    if short and label and len(label) > LABEL_WIDTH:
        label = label[: LABEL_WIDTH - 1] + "…"
    extra = [x for x in (label, driver) if x and x != what]
    return f"{dev.shown_ids} {what}" + (f" ({', '.join(extra)})" if extra else "")


def result_text(verdict: Verdict) -> Text:
    """``BUS_ADDR, distance 4`` (or the int of v4.20-v5.3), styled."""
    return Text(verdict.text(), style=verdict_style(verdict))


def chain_tree(session: Session, verdict: Verdict) -> list[Tree]:
    """One tree per host bridge, holding both chains, with roles and ACS marked."""
    topo = session.topology
    checks = {c.device: c for c in verdict.acs_checks}
    nodes: set[BDF] = set(verdict.provider_chain) | set(verdict.client_chain)
    trees: dict[RootBus, Tree] = {}
    made: dict[BDF, Tree] = {}

    def label(bdf: BDF) -> Text:
        text = Text(bdf_text(topo, bdf), style="bold")
        text.append(f"  {_describe(session, bdf, short=True)}", style="")
        eff = session.state.acs[bdf]
        check = checks.get(bdf)
        if eff.redirect:
            style = "acs.redirect" if check is not None and check.counted else "muted"
            bits = " ".join(acs_bit_names(eff.redirect))
            text.append(f"  [ACS {bits}, ctrl {eff.ctrl or 0:#06x}]", style=style)
            if check is None or not check.counted:
                text.append(" (not counted)", style="muted")
        elif not eff.known:
            text.append("  [ACS ?]", style="assumed")
        roles = verdict.roles(bdf)
        if roles:
            text.append("  <- " + " = ".join(roles), style="role")
        return text

    for chain in (verdict.provider_chain, verdict.client_chain):
        for bdf in reversed(chain):
            if bdf in made:
                continue
            parent = topo[bdf].parent
            if parent is None:
                root = topo.root_bus_of(bdf)
                if root not in trees:
                    trees[root] = Tree(Text(f"{root} (host bridge)", style="host_bridge"))
                made[bdf] = trees[root].add(label(bdf))
            else:
                made[bdf] = made[parent].add(label(bdf))
    del nodes
    return list(trees.values())


def _chain_line(session: Session, name: str, chain: tuple[BDF, ...]) -> Text:
    topo = session.topology
    root = topo.root_bus_of(chain[0])
    text = Text(f"   {name}: ")
    text.append(" -> ".join(bdf_text(topo, b) for b in chain))
    text.append(f"  (then host bridge {root}, not part of the chain)", style="muted")
    return text


def decision_steps(session: Session, verdict: Verdict) -> list[Text]:
    """The walk of ``calc_map_type_and_dist()`` told step by step."""
    topo = session.topology

    def t(bdf: BDF) -> str:
        return bdf_text(topo, bdf)

    steps: list[Text] = [
        Text("1. Upstream chains (pci_upstream_bridge(); a VF starts from its PF's bridge):")
    ]
    steps.append(_chain_line(session, "provider", verdict.provider_chain))
    steps.append(_chain_line(session, "client  ", verdict.client_chain))
    if verdict.common is not None:
        a, b = verdict.provider_index, verdict.client_index
        steps.append(
            Text(
                f"2. Common upstream device {t(verdict.common)}: index {a} in the provider chain,"
                f" {b} in the client chain, so dist = {a} + {b} = {verdict.walk_distance}."
            )
        )
    else:
        steps.append(
            Text(
                "2. No common upstream device (different Root Ports or host bridges): dist ="
                f" {len(verdict.provider_chain)} + {len(verdict.client_chain)} (the chain lengths)"
                f" = {verdict.walk_distance}."
            )
        )
    # ACS
    if verdict.common is not None:
        line = Text(
            "3. ACS redirect (RR|CR|EC) checked on the provider side up to and including the"
            " common device, and on the client side below it:"
        )
        steps.append(line)
        for c in verdict.acs_checks:
            entry = Text(f"   {c.side:8} {t(c.device)}: ")
            if not c.known:
                why = topo[c.device].fact("acs").how
                entry.append(f"ACS unknown ({why}); assumed no redirect", style="assumed")
            elif c.redirect:
                entry.append(f"{' '.join(c.bits)} set: redirect", style="acs.redirect")
            else:
                entry.append("no redirect", style="check.pass")
            steps.append(entry)
        if verdict.acs_redirect:
            steps.append(
                Text(
                    f"   {len(verdict.acs_redirect)} function(s) redirect, so the traffic would go"
                    " up to the host bridge: take the host-bridge path."
                )
            )
        else:
            steps.append(Text("   Nothing redirects: the transfer stays below the common device."))
    else:
        steps.append(
            Text(
                "3. ACS does not matter here: the walk checks the provider side but ignores it"
                " when no common device is found."
            )
        )
    profile = session.target.profile
    if verdict.map_type is None:
        steps.append(_int_era_step(session, verdict))
    elif verdict.path is PathKind.COMMON_UPSTREAM:
        steps.append(
            Text("4. No host-bridge path: the client uses PCI bus addresses, bypassing any IOMMU.")
        )
    else:
        plat = topo.platform
        if profile.cpu_check:
            cpu = Text("4. cpu_supports_p2pdma(): ")
            if verdict.cpu_supports:
                cpu.append(
                    f"true ({plat.cpu_vendor} family {plat.cpu_family:#x} >= 0x17, AMD Zen)",
                    style="check.pass",
                )
                cpu.append(" -> THRU_HOST_BRIDGE without looking at the whitelist.")
            else:
                why = (
                    f"{plat.cpu_vendor} family {plat.cpu_family:#x}"
                    if plat.is_x86
                    else f"arch {plat.arch}"
                )
                cpu.append(f"false ({why}; only x86 AMD family >= 0x17 passes)")
            steps.append(cpu)
        else:
            steps.append(
                Text("4. No cpu_supports_p2pdma() in this era (v5.4-v5.8): the whitelist decides.")
            )
        checks = verdict.whitelist_checks
        for index, w in enumerate(checks):
            # Two checks (one per host bridge) are one host_bridge_whitelist() call: 5a, 5b.
            number = f"5{'abcdefgh'[index]}." if len(checks) > 1 else "5."
            line = Text(
                f"{number} host_bridge_whitelist {w.host_bridge}"
                f" ({'same host bridge' if w.same_host_bridge else 'different host bridges'}): "
            )
            line.append(w.reason + ": ")
            line.append(
                "pass" if w.passed else "fail", style="check.pass" if w.passed else "check.fail"
            )
            steps.append(line)
        if len(verdict.whitelist_checks) == 1 and not verdict.whitelist_checks[0].passed:
            first = verdict.whitelist_checks[0]
            other = topo.root_bus_of(verdict.client)
            if other != first.host_bridge:
                steps.append(
                    Text(
                        f"   ({other} is not checked: the first check already failed.)",
                        style="muted",
                    )
                )
    result = Text("Result: ").append_text(result_text(verdict))
    if verdict.assumptions:
        result.append("  * rests on the assumptions above", style="assumed")
    steps.append(result)
    return steps


#: How an assumed fact is named in the explanation.
FACT_NAMES = {
    "acs": "ACS",
    "cpu": "CPU",
    "kernel": "kernel release",
    "host_bridge_device": "host-bridge function",
    "ids": "IDs",
    "pcie_type": "port type",
    "parent": "place in the tree",
    "class_code": "class",
}


def assumptions_block(verdict: Verdict) -> list[Text]:
    """What the verdict rests on, before anything else: assumptions, then inferences.

    Each assumption says the value taken and why; then the verdict under
    the other plausible values, where that changes it.
    """
    out: list[Text] = []
    if verdict.assumptions:
        out.append(Text("* This verdict rests on assumed facts:", style="assumed.head"))
        for (fact, value, why), subjects in _grouped(
            ((a.fact, a.value, a.why), a.subject) for a in verdict.assumptions
        ):
            line = Text(f"  - {FACT_NAMES.get(fact, fact)} of {subjects}: ", style="assumed")
            line.append(f"assumed {value}", style="assumed.head")
            if why:
                line.append(f" ({why})", style="assumed")
            out.append(line)
        if verdict.alternatives:
            out.append(Text("  Otherwise:", style="assumed"))
            out.extend(Text(f"    {alt.text}", style="assumed") for alt in verdict.alternatives)
        else:
            out.append(Text("  No other plausible value changes it.", style="assumed"))
    if verdict.inferred:
        out.append(Text("Inferred facts it uses:", style="bold"))
        out.extend(
            Text(f"  - {FACT_NAMES.get(fact, fact)} of {subjects}: inferred from {how}")
            for (fact, how), subjects in _grouped(
                ((i.fact, i.how), i.subject) for i in verdict.inferred
            )
        )
    return out


def _grouped(items: Iterable[tuple[_K, str]]) -> list[tuple[_K, str]]:
    """Subjects that share a key, joined (``0000:01:00.0, 0000:02:00.0``), in first-seen order."""
    groups: dict[_K, list[str]] = {}
    for key, subject in items:
        groups.setdefault(key, []).append(subject)
    return [(key, ", ".join(subjects)) for key, subjects in groups.items()]


def _int_era_step(session: Session, verdict: Verdict) -> Text:
    profile = session.target.profile
    if verdict.path is PathKind.NO_COMMON_UPSTREAM:
        if profile.amd_penalty:
            checks = "; ".join(f"{w.host_bridge}: {w.reason}" for w in verdict.whitelist_checks)
            return Text(
                "4. v5.1-v5.3: no common bridge gives -1 unless both root complexes are AMD"
                f" 1022:1450 at devfn 00.0 ({checks})."
            )
        return Text("4. v4.20-v5.0: no common upstream bridge gives -1 (no host-bridge path yet).")
    if verdict.path is PathKind.ACS_REDIRECT:
        return Text("4. An ACS redirect on the path gives -2 (no host-bridge path in this era).")
    return Text("4. A common bridge and no ACS: the distance itself.")


def messages_block(session: Session, verdict: Verdict) -> list[Text]:
    """The kernel's verbose lines for this pair, and boot lines about functions on the path."""
    out: list[Text] = []
    if verdict.messages:
        out.append(Text("Kernel messages (verbose, as dmesg shows them):", style="bold"))
        out.extend(Text(f"  {m.dmesg()}") for m in verdict.messages)
    else:
        out.append(
            Text(
                "Kernel messages: none (the verbose call prints nothing for this pair).",
                style="bold",
            )
        )
    on_path = set(verdict.provider_chain) | set(verdict.client_chain)
    boot = [m for m in session.state.boot_messages if m.device is None or m.device in on_path]
    if boot:
        out.append(Text("At boot, from the ACS command-line parameters:", style="bold"))
        out.extend(Text(f"  {m.dmesg()}") for m in boot)
    return out


def explain_view(session: Session, verdict: Verdict) -> RenderableType:
    """Everything ``p2pview explain`` prints."""
    topo = session.topology
    head = Text()
    head.append(f"provider {verdict.provider}", style="bold")
    head.append(f" ({_describe(session, verdict.provider)})")
    head.append("  ->  ")
    head.append(f"client {verdict.client}", style="bold")
    head.append(f" ({_describe(session, verdict.client)})\n")
    head.append(
        f"{topo.name}: kernel {session.target.version} ({session.target.profile.title} profile)"
    )
    parts: list[RenderableType] = [head, *assumptions_block(verdict)]
    parts.extend([*chain_tree(session, verdict), Text("")])
    parts.extend(decision_steps(session, verdict))
    parts.append(Text(""))
    parts.extend(messages_block(session, verdict))
    for note in session.notes:
        parts.append(Text(f"note: {note}", style="italic"))
    return Group(*parts)
