"""The PCIe tree, immutable, and what-if edits on it.

Nodes are host bridges (keyed by their :class:`RootBus`) and PCI functions
(keyed by :class:`BDF`); an edge goes from the upstream bridge (or the host
bridge) to each function below it. A function's chain of ancestors in this
tree is exactly the kernel's ``pci_upstream_bridge()`` chain (spec section
2.1), because a VF's parent is its PF's upstream bridge, as
``pci_physfn()`` makes it. :attr:`Topology.graph` gives the same tree as a
frozen networkx graph, built on first use: importing networkx costs more than
reading most topologies, and the tree queries below do not need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx

from p2pview.model.bdf import BDF, AddressError, RootBus
from p2pview.model.device import Acs, PciDevice
from p2pview.model.errors import InputError
from p2pview.model.platform import Platform
from p2pview.model.provenance import READ, Fact


class TopologyError(InputError):
    """A topology that cannot be built: the message names the field at fault."""


@dataclass(frozen=True, slots=True)
class HostBridge:
    """A PCI host bridge: the owner of one root bus.

    It has no vendor or device ID of its own (it is not a ``pci_dev``); the
    IDs the whitelist checks belong to a function on its root bus.
    ``mem_offset`` is the CPU address minus the bus address of its memory
    window (non-zero on translating bridges, common on arm64).
    ``root_functions`` says whether every function on the root bus is in the
    source: the whitelist looks at the first of them, and some exporters
    (hwloc's I/O filter) leave host-bridge functions out.
    """

    root: RootBus
    mem_offset: int = 0
    numa_node: int | None = None
    label: str | None = None
    root_functions: Fact = READ

    @property
    def name(self) -> str:
        """The sysfs directory name, ``pciDDDD:BB``."""
        return str(self.root)


Node = BDF | RootBus


class Topology:
    """An immutable PCIe topology with its platform.

    Construction validates the tree: unique addresses, existing parents that
    are bridges, no cycles, VFs under their PF's upstream bridge. Every edit
    method returns a new topology.
    """

    __slots__ = (
        "_by_bdf",
        "_children",
        "_graph",
        "_host_bridges",
        "_order",
        "_root_of",
        "description",
        "name",
        "platform",
        "short_names",
        "source",
    )

    def __init__(
        self,
        devices: Iterable[PciDevice],
        host_bridges: Iterable[HostBridge] = (),
        platform: Platform | None = None,
        *,
        name: str = "",
        description: str = "",
        source: str = "",
    ) -> None:
        self.platform = platform if platform is not None else Platform()
        self.name = name
        self.description = description
        self.source = source

        by_bdf: dict[BDF, PciDevice] = {}
        for dev in devices:
            if dev.bdf in by_bdf:
                raise TopologyError(f"device {dev.bdf}: duplicate address")
            by_bdf[dev.bdf] = dev
        self._order: tuple[BDF, ...] = tuple(sorted(by_bdf))
        self._by_bdf: Mapping[BDF, PciDevice] = MappingProxyType(
            {bdf: by_bdf[bdf] for bdf in self._order}
        )

        hbs: dict[RootBus, HostBridge] = {}
        for hb in host_bridges:
            if hb.root in hbs:
                raise TopologyError(f"host bridge {hb.root}: duplicate root bus")
            hbs[hb.root] = hb
        self._check_parents()
        root_of = self._find_roots()
        for root in sorted(set(root_of.values())):
            hbs.setdefault(root, HostBridge(root))
        self._host_bridges: Mapping[RootBus, HostBridge] = MappingProxyType(
            dict(sorted(hbs.items()))
        )
        self._root_of: Mapping[BDF, RootBus] = MappingProxyType(root_of)

        nodes: list[Node] = [*self._host_bridges, *self._order]
        children: dict[Node, list[BDF]] = {node: [] for node in nodes}
        for bdf in self._order:
            parent = by_bdf[bdf].parent
            children[parent if parent is not None else bdf.root_bus].append(bdf)
        self._children: Mapping[Node, tuple[BDF, ...]] = MappingProxyType(
            {node: tuple(kids) for node, kids in children.items()}
        )
        self._graph: nx.DiGraph[Node] | None = None
        #: Every function is in domain 0, so ``BB:DD.F`` names each one.
        self.short_names = all(b.domain == 0 for b in self._order)

    # -- validation -------------------------------------------------------

    def _check_parents(self) -> None:
        for bdf, dev in self._by_bdf.items():
            if dev.parent is not None:
                parent = self._by_bdf.get(dev.parent)
                if parent is None:
                    raise TopologyError(f"device {bdf}: parent {dev.parent} does not exist")
                if parent.header_type == 0:
                    raise TopologyError(
                        f"device {bdf}: parent {dev.parent} is not a bridge (header type 0)"
                    )
                if dev.parent.domain != bdf.domain:
                    raise TopologyError(
                        f"device {bdf}: parent {dev.parent} is in another PCI domain"
                    )
            if dev.physfn is not None:
                pf = self._by_bdf.get(dev.physfn)
                if pf is None:
                    raise TopologyError(f"device {bdf}: physfn {dev.physfn} does not exist")
                if pf.physfn is not None:
                    raise TopologyError(f"device {bdf}: physfn {dev.physfn} is itself a VF")
                if pf.parent != dev.parent:
                    raise TopologyError(
                        f"device {bdf}: parent {dev.parent or 'none (root bus)'} differs from its"
                        f" physfn's parent {pf.parent or 'none (root bus)'};"
                        " pci_upstream_bridge() of a VF is its PF's"
                    )

    def _find_roots(self) -> dict[BDF, RootBus]:
        """Map every function to the root bus above it, rejecting cycles."""
        root_of: dict[BDF, RootBus] = {}
        for start in self._order:
            path: list[BDF] = []
            on_path: set[BDF] = set()
            node = start
            while node not in root_of:
                if node in on_path:
                    cycle = " -> ".join(str(b) for b in [*path[path.index(node) :], node])
                    raise TopologyError(f"device {node}: parent links form a cycle: {cycle}")
                path.append(node)
                on_path.add(node)
                parent = self._by_bdf[node].parent
                if parent is None:
                    root_of[node] = node.root_bus
                else:
                    node = parent
            for bdf in path:
                root_of[bdf] = root_of[node]
        return root_of

    # -- lookup -----------------------------------------------------------

    @property
    def graph(self) -> nx.DiGraph[Node]:
        """The frozen graph: host bridges are the roots; edges point downstream.

        Built (and networkx imported) on first use; a topology never changes,
        so the graph is kept.
        """
        if self._graph is None:
            import networkx as nx

            graph: nx.DiGraph[Node] = nx.DiGraph()
            for hb in self._host_bridges.values():
                graph.add_node(hb.root, kind="host_bridge", obj=hb)
            for bdf in self._order:
                graph.add_node(bdf, kind="device", obj=self._by_bdf[bdf])
            for node, kids in self._children.items():
                graph.add_edges_from((node, kid) for kid in kids)
            self._graph = nx.freeze(graph)
        return self._graph

    def bdf_name(self, bdf: BDF) -> str:
        """How every face names ``bdf`` here: ``BB:DD.F`` when :attr:`short_names`."""
        return bdf.short() if self.short_names else str(bdf)

    @property
    def devices(self) -> tuple[PciDevice, ...]:
        """Every function, in BDF order."""
        return tuple(self._by_bdf[b] for b in self._order)

    @property
    def bdfs(self) -> tuple[BDF, ...]:
        """Every function's address, in BDF order."""
        return self._order

    @property
    def host_bridges(self) -> tuple[HostBridge, ...]:
        """Every host bridge, by domain and root bus number."""
        return tuple(self._host_bridges.values())

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[PciDevice]:
        return iter(self.devices)

    def __contains__(self, bdf: object) -> bool:
        return bdf in self._by_bdf

    def __getitem__(self, bdf: BDF) -> PciDevice:
        try:
            return self._by_bdf[bdf]
        except KeyError:
            raise KeyError(f"no device {bdf}") from None

    def get(self, bdf: BDF) -> PciDevice | None:
        """The function at ``bdf`` or ``None``."""
        return self._by_bdf.get(bdf)

    def host_bridge_obj(self, root: RootBus) -> HostBridge:
        """The host bridge that owns ``root``."""
        return self._host_bridges[root]

    def find_by_id(self, vendor: int, device: int) -> tuple[PciDevice, ...]:
        """Every function with this vendor:device pair, in BDF order."""
        return tuple(d for d in self.devices if d.vendor == vendor and d.device == device)

    def resolve(self, spec: str) -> BDF:
        """Find one function by ``[DDDD:]BB:DD.F``, ``vvvv:dddd`` or label.

        Raises ``KeyError`` with a message naming what did not match.
        """
        text = spec.strip()
        try:
            bdf = BDF.parse(text)
        except AddressError:
            pass
        else:
            if bdf in self._by_bdf:
                return bdf
            raise KeyError(f"no PCI function {bdf} in this topology")
        parts = text.split(":")
        if len(parts) == 2 and all(1 <= len(p) <= 4 for p in parts):
            try:
                vendor, device = int(parts[0], 16), int(parts[1], 16)
            except ValueError:
                pass
            else:
                found = self.find_by_id(vendor, device)
                if len(found) == 1:
                    return found[0].bdf
                if not found:
                    raise KeyError(f"no PCI function with ID {vendor:04x}:{device:04x}")
                listed = ", ".join(str(d.bdf) for d in found)
                raise KeyError(
                    f"ID {vendor:04x}:{device:04x} matches {len(found)} functions: {listed}"
                )
        labelled = [d.bdf for d in self.devices if d.label == text]
        if len(labelled) == 1:
            return labelled[0]
        raise KeyError(f"no PCI function matches {text!r} (give a BDF, vendor:device or label)")

    # -- tree queries -------------------------------------------------------

    def upstream_bridge(self, bdf: BDF) -> BDF | None:
        """``pci_upstream_bridge()``: the parent bridge, ``None`` on a root bus."""
        return self._by_bdf[bdf].parent

    def upstream_chain(self, bdf: BDF) -> tuple[BDF, ...]:
        """``[bdf, upstream(bdf), ...]`` up to the function on the root bus.

        The host bridge is never part of the chain (spec section 2.1).
        """
        chain = [bdf]
        parent = self._by_bdf[bdf].parent
        while parent is not None:
            chain.append(parent)
            parent = self._by_bdf[parent].parent
        return tuple(chain)

    def host_bridge(self, bdf: BDF) -> HostBridge:
        """``pci_find_host_bridge(dev->bus)``: the host bridge above ``bdf``."""
        return self._host_bridges[self._root_of[bdf]]

    def root_bus_of(self, bdf: BDF) -> RootBus:
        """The root bus at the top of ``bdf``'s chain."""
        return self._root_of[bdf]

    def children(self, node: Node) -> tuple[BDF, ...]:
        """Functions directly below a bridge or host bridge, in BDF order."""
        return self._children.get(node, ())

    def root_bus_devices(self, root: RootBus) -> tuple[BDF, ...]:
        """Functions on a root bus in scan order (lowest devfn first).

        The kernel appends devices to ``bus->devices`` as it scans them, so at
        boot this is devfn order (spec section 2.2); hot-added devices, which
        would go last, are not modelled.
        """
        return tuple(sorted(self.children(root), key=lambda b: b.devfn))

    def subtree(self, node: Node) -> tuple[BDF, ...]:
        """``node`` (if a function) and every function below it, depth first."""
        out: list[BDF] = [node] if isinstance(node, BDF) else []
        stack = list(reversed(self.children(node)))
        while stack:
            bdf = stack.pop()
            out.append(bdf)
            stack.extend(reversed(self.children(bdf)))
        return tuple(out)

    def depth(self, bdf: BDF) -> int:
        """Upstream steps from ``bdf`` to its root-bus function (0 on a root bus)."""
        return len(self.upstream_chain(bdf)) - 1

    # -- what-if edits ------------------------------------------------------

    def with_devices(
        self,
        devices: Iterable[PciDevice] | None = None,
        host_bridges: Iterable[HostBridge] | None = None,
        platform: Platform | None = None,
    ) -> Topology:
        """A new topology with the same name and source, and these parts replaced."""
        return Topology(
            self.devices if devices is None else devices,
            self.host_bridges if host_bridges is None else host_bridges,
            self.platform if platform is None else platform,
            name=self.name,
            description=self.description,
            source=self.source,
        )

    def with_device(self, bdf: BDF, **changes: object) -> Topology:
        """A new topology with fields of one function changed."""
        dev = self[bdf].replace(**changes)
        return self.with_devices(dev if d.bdf == bdf else d for d in self.devices)

    def with_acs(self, bdf: BDF, acs: Acs) -> Topology:
        """A new topology with ``bdf``'s ACS capability replaced."""
        return self.with_device(bdf, acs=acs)

    def with_acs_ctrl(self, bdf: BDF, ctrl: int) -> Topology:
        """A new topology with ``bdf``'s ACS Control register set to ``ctrl``.

        The function must have an ACS capability; bits it does not implement
        are written anyway, as a hand edit of the register would be.
        """
        acs = self[bdf].acs
        if acs.cap is None:
            raise TopologyError(f"device {bdf}: has no known ACS capability to edit")
        return self.with_acs(bdf, Acs.present(acs.cap, ctrl, acs.fw_ctrl))

    def with_host_bridge_ids(self, root: RootBus, vendor: int, device: int) -> Topology:
        """A new topology whose root bus ``root`` shows other host-bridge IDs.

        The whitelist looks at the first function on the root bus (spec
        section 2.2), so that function's vendor:device are changed.
        """
        first = self.root_bus_devices(root)
        if not first:
            raise TopologyError(f"host bridge {root}: no function on its root bus to carry IDs")
        dev = self[first[0]]
        facts = dev.facts.with_fact("ids", Fact.read("a what-if edit"))
        return self.with_device(first[0], vendor=vendor, device=device, facts=facts)

    def with_platform(self, **changes: object) -> Topology:
        """A new topology with platform fields changed (CPU, kernel, cmdline, ...)."""
        return self.with_devices(platform=self.platform.replace(**changes))

    def with_subtree_moved(self, bdf: BDF, new_parent: Node) -> Topology:
        """A new topology with ``bdf`` and everything below it under ``new_parent``.

        Addresses are kept; only the parent link changes, which is all the
        P2PDMA walk looks at. VFs of a moved PF move with it.
        """
        if bdf not in self._by_bdf:
            raise TopologyError(f"device {bdf}: does not exist")
        moving = set(self.subtree(bdf))
        if isinstance(new_parent, BDF):
            if new_parent in moving:
                raise TopologyError(f"device {bdf}: cannot move below itself ({new_parent})")
            parent_value: BDF | None = new_parent
            if new_parent not in self._by_bdf:
                raise TopologyError(f"device {bdf}: new parent {new_parent} does not exist")
        else:
            if new_parent != bdf.root_bus:
                raise TopologyError(
                    f"device {bdf}: a function on a root bus must sit on its own bus"
                    f" ({bdf.root_bus}), not {new_parent}"
                )
            parent_value = None
        vfs = {d.bdf for d in self.devices if d.physfn == bdf}
        edited = [
            d.replace(parent=parent_value) if d.bdf == bdf or d.bdf in vfs else d
            for d in self.devices
        ]
        return self.with_devices(edited)

    def replace_meta(self, **changes: str) -> Topology:
        """A copy with ``name``, ``description`` or ``source`` changed."""
        fields = {"name": self.name, "description": self.description, "source": self.source}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown topology fields: {sorted(unknown)}")
        fields.update(changes)
        return Topology(self.devices, self.host_bridges, self.platform, **fields)

    def __repr__(self) -> str:
        hbs = len(self._host_bridges)
        return f"<Topology {self.name or '?'}: {len(self)} functions, {hbs} host bridges>"
