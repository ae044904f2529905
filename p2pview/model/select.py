"""Device selections such as ``nvme,gpu``, ``subtree:0000:01:00.0`` or ``10de:*``.

A selection is a comma-separated list of terms; the result is their union in
BDF order. Terms:

* a BDF (``0000:03:00.0`` or ``03:00.0``), a ``vendor:device`` pair (hex,
  ``*`` for any device of a vendor) or a device label;
* a kind: ``nvme``, ``storage``, ``gpu``, ``nic``, ``accel``, ``bridge``,
  ``host``, ``other``, plus ``endpoint`` (every non-bridge), ``devices``
  (storage, GPUs, NICs, accelerators and p2pmem providers: the functions that
  take part in P2P DMA), ``p2pmem`` (has a ``p2pmem/`` group), ``published``
  (published p2pmem) and ``all``;
* ``subtree:X``: X and everything below it (X a BDF or ``pciDDDD:BB``).
"""

from __future__ import annotations

import re

from p2pview.model.bdf import BDF, AddressError, RootBus
from p2pview.model.classes import Kind, kind_of
from p2pview.model.device import PciDevice
from p2pview.model.errors import InputError
from p2pview.model.topology import Topology

_ID_RE = re.compile(r"^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}|\*)$")

KIND_TERMS = (*(k.value for k in Kind), "endpoint", "devices", "p2pmem", "published", "all")
_PEER_KINDS = (Kind.NVME, Kind.STORAGE, Kind.GPU, Kind.NIC, Kind.ACCEL)


class SelectionError(InputError):
    """A selection term that names nothing in the topology."""


def _kind_match(term: str, dev: PciDevice) -> bool:
    if term == "all":
        return True
    if term == "endpoint":
        return not dev.is_bridge
    if term == "devices":
        return dev.p2pmem is not None or kind_of(dev) in _PEER_KINDS
    if term == "p2pmem":
        return dev.p2pmem is not None
    if term == "published":
        return dev.p2pmem is not None and dev.p2pmem.published
    return kind_of(dev).value == term


def select(topo: Topology, spec: str | None) -> tuple[BDF, ...]:
    """The functions a selection names, in BDF order; every function for ``None``.

    Raises:
        SelectionError: naming the first term that matches nothing.
    """
    if spec is None or not spec.strip():
        return topo.bdfs
    chosen: set[BDF] = set()
    for raw in spec.split(","):
        term = raw.strip()
        if not term:
            continue
        found = _term(topo, term)
        if not found:
            raise SelectionError(f"selection term {term!r} matches no PCI function")
        chosen.update(found)
    return tuple(sorted(chosen))


def _term(topo: Topology, term: str) -> set[BDF]:
    lower = term.lower()
    if lower in KIND_TERMS:
        return {d.bdf for d in topo.devices if _kind_match(lower, d)}
    if lower.startswith("subtree:"):
        target = term[len("subtree:") :]
        node: BDF | RootBus
        try:
            node = RootBus.parse(target) if target.startswith("pci") else BDF.parse(target)
        except AddressError as exc:
            raise SelectionError(f"selection term {term!r}: {exc}") from None
        if isinstance(node, BDF) and node not in topo:
            raise SelectionError(f"selection term {term!r}: no PCI function {node}")
        return set(topo.subtree(node))
    m = _ID_RE.match(term)
    if m:
        vendor = int(m[1], 16)
        device = None if m[2] == "*" else int(m[2], 16)
        ids = {
            d.bdf
            for d in topo.devices
            if d.vendor == vendor and (device is None or d.device == device)
        }
        if ids:
            return ids
    try:
        return {topo.resolve(term)}
    except KeyError:
        return set()
