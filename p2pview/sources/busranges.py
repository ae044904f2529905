"""Parent links from bridge bus numbers, as the kernel's bus scan makes them.

Dumps that hold config space but not the sysfs directory nesting (``lspci -x``
output, ``lspci -vvv`` text) give each bridge's secondary and subordinate bus
numbers. The kernel's scan (``pci_scan_bridge()``) creates the bridge's
secondary bus with ``bus->self`` set to the bridge, so ``pci_upstream_bridge()``
of a function on bus B is the bridge whose secondary bus is B (spec section
2.1). A bus that no bridge leads to is a root bus, owned by a host bridge. PCI
domains are separate bus-number spaces.

Numbers the kernel would never produce are resolved here with a note rather
than an error: two bridges claiming one secondary bus, a bridge claiming its
own bus, and loops of bus numbers.

``lspci -t`` places functions differently in one case: a bus inside some
bridge's ``[secondary-subordinate]`` range that no bridge leads to (the
bridges between are missing from the dump) is drawn below the bridge whose
range holds it, while the kernel rule makes it a root bus. Such functions get
a note saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from p2pview.model import BDF, RootBus


@dataclass(frozen=True, slots=True)
class BridgeBuses:
    """A bridge's bus numbers: ``primary`` (informational), ``secondary``, ``subordinate``."""

    bdf: BDF
    secondary: int
    subordinate: int
    primary: int | None = None

    @property
    def secondary_bus(self) -> RootBus:
        """The bus this bridge leads to, as a (domain, bus) pair."""
        return RootBus(self.bdf.domain, self.secondary)

    def holds(self, bus: RootBus) -> bool:
        """Whether ``bus`` lies in this bridge's ``[secondary, subordinate]`` range."""
        return bus.domain == self.bdf.domain and self.secondary <= bus.bus <= self.subordinate

    def range_text(self) -> str:
        """``[ss]`` or ``[ss-uu]`` as ``lspci -t`` prints the range."""
        if self.secondary == self.subordinate:
            return f"[{self.secondary:02x}]"
        return f"[{self.secondary:02x}-{self.subordinate:02x}]"


@dataclass(frozen=True)
class BusAssignment:
    """The result: every function's parent (``None`` on a root bus) and notes per function."""

    parents: Mapping[BDF, BDF | None]
    notes: Mapping[BDF, tuple[str, ...]] = field(default_factory=dict)
    #: The VF -> PF links that were used (the others would have made a loop).
    physfn: Mapping[BDF, BDF] = field(default_factory=dict)

    @property
    def root_buses(self) -> tuple[RootBus, ...]:
        """The buses no bridge leads to, sorted."""
        return tuple(sorted({b.root_bus for b, p in self.parents.items() if p is None}))


def assign_parents(
    functions: Iterable[BDF],
    bridges: Iterable[BridgeBuses],
    physfn: Mapping[BDF, BDF] | None = None,
) -> BusAssignment:
    """Give every function the bridge whose secondary bus it sits on.

    Args:
        functions: every function in the dump.
        bridges: the bus numbers of the functions that are bridges (type 1 or
            CardBus headers); bridges not among ``functions`` are ignored.
        physfn: SR-IOV virtual function -> its physical function. A VF's
            parent is its PF's parent, as ``pci_upstream_bridge()`` goes
            through ``pci_physfn()``; VFs often sit on a bus of their own that
            no bridge leads to.

    Returns:
        The parent of each function and what was odd about the numbers.
    """
    funcs = sorted(set(functions))
    present = set(funcs)
    notes: dict[BDF, list[str]] = {}

    def note(bdf: BDF, text: str) -> None:
        notes.setdefault(bdf, []).append(text)

    by_bdf: dict[BDF, BridgeBuses] = {}
    for br in bridges:
        if br.bdf in present and br.bdf not in by_bdf:
            by_bdf[br.bdf] = br
    all_bridges = [by_bdf[b] for b in sorted(by_bdf)]

    # Which bridge leads to each bus.
    claims: dict[RootBus, list[BridgeBuses]] = {}
    for br in all_bridges:
        if br.secondary_bus == br.bdf.root_bus:
            note(
                br.bdf,
                f"secondary bus {br.secondary:02x} is the bus the bridge itself sits on;"
                " ignored (the bridge leads nowhere)",
            )
            continue
        claims.setdefault(br.secondary_bus, []).append(br)
    leads: dict[RootBus, BDF] = {}
    for bus, claimants in claims.items():
        best = min(claimants, key=lambda b: (b.subordinate - b.secondary, b.bdf))
        leads[bus] = best.bdf
        for other in claimants:
            if other is not best:
                note(
                    other.bdf,
                    f"secondary bus {bus.bus:02x} is also the secondary bus of {best.bdf}"
                    f" (narrower range {best.range_text()}); functions on it are put"
                    f" below {best.bdf}",
                )

    parents: dict[BDF, BDF | None] = {bdf: leads.get(bdf.root_bus) for bdf in funcs}
    _break_loops(parents, leads, note)

    # Functions on a root bus that lspci -t would draw below a bridge.
    vfs = dict(physfn or {})
    for bdf in funcs:
        if parents[bdf] is not None or bdf in vfs:
            continue
        holders = [br for br in all_bridges if br.bdf != bdf and br.holds(bdf.root_bus)]
        if holders:
            inner = min(holders, key=lambda b: (b.subordinate - b.secondary, b.bdf))
            note(
                bdf,
                f"bus {bdf.bus:02x} lies in the bus range {inner.range_text()} of bridge"
                f" {inner.bdf}, but no bridge in the input leads to it (the bridges between"
                " are missing?); treated as a root bus (lspci -t draws it below"
                f" {inner.bdf})",
            )

    # SR-IOV virtual functions follow their physical function.
    used: dict[BDF, BDF] = {}
    for vf, pf in sorted(vfs.items()):
        if vf not in present or pf not in present or pf in vfs or vf == pf:
            continue
        if _above(parents, pf, vf):
            note(vf, f"SR-IOV: {pf} names this function as its VF but sits below it; ignored")
            continue
        parents[vf] = parents[pf]
        used[vf] = pf
    return BusAssignment(parents, {b: tuple(n) for b, n in notes.items()}, used)


def _above(parents: Mapping[BDF, BDF | None], start: BDF, target: BDF) -> bool:
    """Whether ``target`` is ``start`` or on its chain of parents."""
    seen: set[BDF] = set()
    node: BDF | None = start
    while node is not None and node not in seen:
        if node == target:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


def _break_loops(
    parents: dict[BDF, BDF | None],
    leads: dict[RootBus, BDF],
    note: Callable[[BDF, str], None],
) -> None:
    """Make the lowest bus of every parent loop a root bus (the kernel never builds loops)."""
    while True:
        loop = _find_loop(parents)
        if loop is None:
            return
        bus = min(b.root_bus for b in loop)
        bridge = leads.pop(bus)
        for bdf in parents:
            if bdf.root_bus == bus:
                parents[bdf] = None
        names = " -> ".join(str(b) for b in [*loop, loop[0]])
        note(
            bridge,
            f"bus numbers form a loop ({names}); bus {bus.domain:04x}:{bus.bus:02x}"
            " treated as a root bus",
        )


def _find_loop(parents: Mapping[BDF, BDF | None]) -> list[BDF] | None:
    """One cycle of parent links, or ``None``."""
    done: set[BDF] = set()
    for start in sorted(parents):
        path: list[BDF] = []
        on_path: set[BDF] = set()
        node: BDF | None = start
        while node is not None and node not in done:
            if node in on_path:
                return path[path.index(node) :]
            path.append(node)
            on_path.add(node)
            node = parents.get(node)
        done.update(path)
    return None
