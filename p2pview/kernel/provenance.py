"""What a verdict rests on: the read, inferred and assumed facts the decision used.

``calc_map_type_and_dist()`` looks at a few facts per pair (spec sections
2-3): the parent links it follows up both chains, the ACS Control of every
function it checks, and, on the host-bridge path, the CPU, the kernel's own
tables (which depend on the release) and the IDs of the function that stands
for each host bridge. A source that lacks one of these facts makes the
reader assume or infer it (:mod:`p2pview.model.provenance`). This module
lists, for one verdict, the assumed and inferred facts it used, and works out
the verdict under the other plausible value of each assumed fact, through
alternative kernel states (:meth:`KernelState.alternative
<p2pview.kernel.decision.KernelState.alternative>`).

The same rules, as arrays, mark the all-pairs matrix
(:mod:`p2pview.kernel.matrix`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from p2pview.kernel.verdict import Alternative, Assumption, Inference, PathKind, Verdict
from p2pview.model import BDF, Fact, PciDevice, Platform, RootBus, Topology

#: Releases an alternative kernel is tried in when the source names none: the
#: long-term and newest releases p2pview checks against real kernels.
PLAUSIBLE_KERNELS = ("5.10", "6.1", "6.12", "7.2")

#: Keys of :meth:`KernelState.alternative`.
ALT_ACS = "acs"
ALT_CPU = "cpu"
ALT_HOST_BRIDGE = "host_bridge"
ALT_KERNEL = "kernel:"


def cpu_text(plat: Platform, supports: bool) -> str:
    """The boot CPU as ``cpu_supports_p2pdma()`` sees it, in words."""
    if not plat.is_x86:
        return f"{plat.arch} (cpu_supports_p2pdma() is false off x86)"
    zen = "AMD Zen" if supports else "not AMD Zen"
    return f"{plat.cpu_vendor} family {plat.cpu_family:#x} ({zen})"


def other_cpu_text(supports: bool) -> str:
    """The other plausible CPU, for an alternative."""
    if supports:
        return "the CPU is not AMD Zen (e.g. GenuineIntel)"
    return "the CPU is AMD Zen (AuthenticAMD family 0x17 or later)"


@dataclass(frozen=True, slots=True)
class HostBridgeBasis:
    """How the function that stands for one host bridge in the whitelist is known.

    ``assumed`` is set when a verdict that consults the whitelist for this
    host bridge rests on an assumption (the function may be missing from the
    dump, or its IDs or port type are unknown); ``inferred`` lists inferences.
    """

    root: RootBus
    assumed: tuple[Assumption, ...]
    inferred: tuple[Inference, ...]


def host_bridge_basis(topo: Topology, root: RootBus, device: BDF | None) -> HostBridgeBasis:
    """The facts behind ``pci_host_bridge_dev()``'s answer for ``root``.

    ``device`` is what the lookup found (``None``: nothing qualified).
    """
    hb = topo.host_bridge_obj(root)
    name = str(root)
    assumed: list[Assumption] = []
    inferred: list[Inference] = []
    if device is None:
        found = "no qualifying function"
    else:
        dev = topo[device]
        found = f"{device} {dev.shown_ids}"
    # Nothing can come before devfn 00.0 on the root bus: when the source shows a
    # function there (not a placeholder, whose address is made up), a list of
    # root-bus functions that may be incomplete does not matter.
    if device is None or device.devfn != 0 or topo[device].placeholder:
        _note(hb.root_functions, "host_bridge_device", name, found, assumed, inferred)
    if device is not None:
        dev = topo[device]
        ids_fact = dev.fact("ids")
        ids_value = dev.shown_ids
        _note(ids_fact, "ids", str(device), ids_value, assumed, inferred)
        if device.devfn != 0:  # taken for being a Root Port (v5.19+)
            port = "a Root Port" if dev.pcie_type is not None else "of unknown type"
            _note(dev.fact("pcie_type"), "pcie_type", str(device), port, assumed, inferred)
    return HostBridgeBasis(root, tuple(assumed), tuple(inferred))


def _note(
    fact: Fact,
    name: str,
    subject: str,
    value: str,
    assumed: list[Assumption],
    inferred: list[Inference],
) -> None:
    if fact.is_assumed:
        assumed.append(Assumption(name, subject, value, fact.how))
    elif fact.is_inferred:
        inferred.append(Inference(name, subject, fact.how))


def _parent_value(topo: Topology, dev: PciDevice) -> str:
    if dev.parent is not None:
        return f"below {dev.parent}"
    return f"on root bus {topo.root_bus_of(dev.bdf)}"


def facts_used(
    topo: Topology,
    verdict: Verdict,
    *,
    cpu_supports: bool,
    cpu_checked: bool,
    kernel: str,
    host_bridges: Callable[[RootBus], HostBridgeBasis],
) -> tuple[tuple[Assumption, ...], tuple[Inference, ...]]:
    """The assumed and inferred facts ``verdict``'s decision used.

    Parent links: every link the walk followed (the functions below the
    common device, or the whole chains when there is none: then which root
    bus each chain ends on matters too). ACS: every function checked on the
    counted path. On the host-bridge path: the CPU when
    ``cpu_supports_p2pdma()`` was called, the kernel release (the
    host-bridge path is where releases differ), and the host-bridge
    functions whose whitelist rows were looked at.
    """
    assumed: list[Assumption] = []
    inferred: list[Inference] = []
    if verdict.common is None:
        walked: Iterable[BDF] = (*verdict.provider_chain, *verdict.client_chain)
    else:
        k, m = verdict.provider_index or 0, verdict.client_index or 0
        walked = (*verdict.provider_chain[:k], *verdict.client_chain[:m])
    for bdf in walked:
        dev = topo[bdf]
        _note(dev.fact("parent"), "parent", str(bdf), _parent_value(topo, dev), assumed, inferred)
    for check in verdict.acs_checks:
        if not check.counted:
            continue
        fact = topo[check.device].fact("acs")
        if not check.known:  # unread, and no command-line parameter settled it
            assumed.append(Assumption("acs", str(check.device), "no ACS redirect", fact.how))
        elif fact.is_inferred:
            inferred.append(Inference("acs", str(check.device), fact.how))
    if verdict.path is not PathKind.COMMON_UPSTREAM and not verdict.undetermined:
        plat = topo.platform
        if cpu_checked:
            _note(
                plat.facts.cpu, "cpu", "platform", cpu_text(plat, cpu_supports), assumed, inferred
            )
        _note(plat.facts.kernel, "kernel", "platform", f"Linux {kernel}", assumed, inferred)
        for wl in verdict.whitelist_checks:
            basis = host_bridges(wl.host_bridge)
            assumed.extend(basis.assumed)
            inferred.extend(basis.inferred)
    return _unique(assumed), _unique(inferred)


_T = TypeVar("_T")


def _unique(items: list[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


def alternative_keys(assumptions: Iterable[Assumption]) -> list[str]:
    """The alternative kernel states worth trying for these assumptions, in order."""
    facts = {a.fact for a in assumptions}
    keys: list[str] = []
    if "acs" in facts:
        keys.append(ALT_ACS)
    if "cpu" in facts:
        keys.append(ALT_CPU)
    if facts & {"host_bridge_device", "ids", "pcie_type"}:
        keys.append(ALT_HOST_BRIDGE)
    if "kernel" in facts:
        keys.extend(ALT_KERNEL + release for release in PLAUSIBLE_KERNELS)
    return keys


def alternative_value(key: str, verdict: Verdict, cpu_supports: bool) -> tuple[str, str, str]:
    """``(fact, subject, value)`` that describe the alternative ``key`` for ``verdict``."""
    if key == ALT_ACS:
        on = ", ".join(a.subject for a in verdict.assumptions if a.fact == "acs")
        return "acs", on, f"ACS redirect is set on {on} (as an IOMMU would set it)"
    if key == ALT_CPU:
        return "cpu", "platform", other_cpu_text(cpu_supports)
    if key == ALT_HOST_BRIDGE:
        roots = sorted({str(c.host_bridge) for c in verdict.whitelist_checks})
        passed = all(c.passed for c in verdict.whitelist_checks)
        return host_bridge_alternative(roots, passed)
    release = key.removeprefix(ALT_KERNEL)
    return "kernel", "platform", f"the kernel is Linux {release}"


def host_bridge_alternative(roots: Iterable[str], passed: bool) -> tuple[str, str, str]:
    """``(fact, subject, value)`` of the alternative whitelist answer for these host bridges."""
    subject = ", ".join(sorted(set(roots)))
    what = "is not" if passed else "is"
    return (
        "host_bridge_device",
        subject,
        f"the function that stands for {subject} {what} in the whitelist",
    )


def same_outcome(a: Verdict, b: Verdict) -> bool:
    """The same map type and distance."""
    return a.map_type == b.map_type and a.distance == b.distance


def make_alternative(key: str, verdict: Verdict, other: Verdict, cpu_supports: bool) -> Alternative:
    """The :class:`Alternative` for ``key``, given the verdict it leads to."""
    fact, subject, value = alternative_value(key, verdict, cpu_supports)
    return Alternative(fact, subject, value, other.map_type, other.distance)
