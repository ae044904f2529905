"""Read the PCI tree NCCL or RCCL saw, from the XML ``NCCL_TOPO_DUMP_FILE`` writes.

The file looks like::

    <system version="1">
      <cpu numaid="0" affinity="..." arch="x86_64" vendor="GenuineIntel" familyid="6" modelid="85">
        <pci busid="0000:31:00.0" class="0x060400" vendor="0x1000" device="0xc010"
             subsystem_vendor="0x1000" subsystem_device="0xa096"
             link_speed="16.0 GT/s PCIe" link_width="16">
          <pci busid="0000:33:00.0" ...>
            <pci busid="0000:37:00.0" class="0x038000" ...><gpu dev="0" .../></pci>
          </pci>
        </pci>
        <nic><net name="..."/></nic>
      </cpu>
    </system>

Each ``<pci>`` becomes a function whose parent is the enclosing ``<pci>``
(the tree as NCCL saw it); ``<cpu numaid>`` gives the NUMA node, and the
first ``<cpu>``'s ``vendor``/``familyid`` the platform's CPU.

What NCCL leaves out, so the tree is NCCL's and not the kernel's:

* Every second bridge level. NCCL climbs sysfs two directories at a time
  (``ncclTopoGetXmlFromSys()`` in ``src/graph/xml.cc``: "Rewind two '/'"),
  so between a ``<pci>`` and the ``<pci>`` around it one bridge is missing -
  the switch downstream port, or a GPU's own internal port - and the root
  port above each top-level ``<pci>`` is missing too. Parent links are
  therefore grandparent links, and ``calc_map_type_and_dist()`` distances
  computed on this tree count NCCL's levels, fewer than the kernel's hops.
* Host bridges and root ports: the ``<cpu>`` element stands for the root
  complex. Each top-level ``<pci>`` is put on a root bus of its own bus
  number, labelled as standing in for that ``<cpu>``, so host-bridge
  whitelist checks on this tree are not meaningful.
* Every function that is not a GPU, a NIC or a bridge above one; other
  functions of a multi-function device; NVLink/xGMI, ``pcilink`` and
  ``<nic>`` elements without a PCI device (they are not PCI functions).
* ACS and port types (unknown), link state (``link_speed``/``link_width`` are
  the lower of the device's and its port's *maximum*, kept as
  ``Link.max_speed``/``max_width``), drivers, IOMMU groups, BARs.

``familyid`` and ``modelid`` are decimal (``xmlSetAttrInt()``) and encode
CPUID leaf 1 as ``base + (extended << 4)``: AMD Zen 2 (family 0x17) is
``143``, family 0x18 (Hygon Dhyana) is ``159``, family 0x19 is ``175``; this
reader turns them back into ``/proc/cpuinfo``'s ``cpu family``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from p2pview.model import (
    BDF,
    Acs,
    AddressError,
    HostBridge,
    Link,
    PciDevice,
    Platform,
    RootBus,
    Topology,
)
from p2pview.model.platform import cpu_vendor_id
from p2pview.sources.checks import quote
from p2pview.sources.hwloc import (
    XmlElement,
    attr_error,
    parse_xml_safely,
    topology_or_error,
    xml_root_tag,
)
from p2pview.sources.topofile import SourceError

__all__ = ["cpu_family_from_nccl", "parse_nccl_xml", "sniff_nccl_xml"]

#: ``<cpu arch>`` as NCCL writes it -> ``uname -m``.
_ARCHES = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64", "ppc64": "ppc64le"}

_HEX_RE = re.compile(r"^\s*(?:0[xX])?([0-9a-fA-F]{1,8})\s*$")
_INT_RE = re.compile(r"^\s*(-?[0-9]{1,9}|0[xX][0-9a-fA-F]{1,8})\s*$")


def sniff_nccl_xml(text: str) -> bool:
    """Whether ``text`` is an NCCL/RCCL topology dump (root element ``<system>``)."""
    return xml_root_tag(text) == "system"


def cpu_family_from_nccl(familyid: int) -> int:
    """``/proc/cpuinfo`` ``cpu family`` from NCCL's ``familyid`` (base + extended << 4).

    The extended family only counts when the base family is 0xF, as CPUID
    defines it; so 6 stays 6, 143 is 0x17, 159 is 0x18 and 175 is 0x19.
    """
    base, extended = familyid & 0xF, familyid >> 4
    return base + extended if base == 0xF else base


@dataclass
class _NcclWalk:
    """State of one walk over an NCCL XML tree."""

    path: str
    devices: list[PciDevice] = field(default_factory=list)
    lines: dict[BDF, int] = field(default_factory=dict)
    host_bridges: dict[RootBus, HostBridge] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def err(self, elem: XmlElement, name: str, problem: str) -> SourceError:
        return attr_error(self.path, elem, name, problem)

    def hex_attr(self, elem: XmlElement, name: str) -> int | None:
        raw = elem.attrib.get(name)
        if raw is None or raw.strip() == "":
            return None
        m = _HEX_RE.match(raw)
        if m is None:
            raise self.err(elem, name, f"{quote(raw)} is not a hex number")
        return int(m[1], 16)

    def int_attr(self, elem: XmlElement, name: str) -> int | None:
        raw = elem.attrib.get(name)
        if raw is None or raw.strip() == "":
            return None
        if _INT_RE.match(raw) is None:
            raise self.err(elem, name, f"{quote(raw)} is not a number")
        return int(raw.strip(), 0) if raw.strip().lower().startswith("0x") else int(raw)

    def cpu(self, elem: XmlElement) -> None:
        numaid = self.int_attr(elem, "numaid")
        numa = numaid if numaid is not None and numaid >= 0 else None
        for child in elem.children:
            if child.tag == "pci":
                self.pci(child, None, numaid, numa)
            elif child.tag == "nic":
                self.skipped.append(f"line {child.line}: a <nic> without a PCI device")

    def pci(
        self, elem: XmlElement, parent: BDF | None, numaid: int | None, numa: int | None
    ) -> None:
        if "busid" not in elem.attrib:
            raise self.err(elem, "busid", "missing")
        try:
            bdf = BDF.parse(elem.attrib["busid"])
        except AddressError as exc:
            raise self.err(elem, "busid", str(exc)) from None
        if bdf in self.lines:
            raise self.err(elem, "busid", f"{bdf} already listed at line {self.lines[bdf]}")
        if parent is not None and parent.domain != bdf.domain:
            raise self.err(elem, "busid", f"{bdf} is inside <pci> {parent} of another domain")
        class_code = self.hex_attr(elem, "class")
        if class_code is not None and class_code > 0xFFFFFF:
            raise self.err(elem, "class", f"{class_code:#x} does not fit 24 bits")
        ids = {
            name: self.hex_attr(elem, name)
            for name in ("vendor", "device", "subsystem_vendor", "subsystem_device")
        }
        for name, value in ids.items():
            if value is not None and value > 0xFFFF:
                raise self.err(elem, name, f"{value:#x} does not fit 16 bits")
        width = self.int_attr(elem, "link_width")
        if width is not None and not 0 <= width <= 64:
            raise self.err(elem, "link_width", f"{width} lanes is out of range")
        speed = (elem.attrib.get("link_speed") or "").strip() or None
        sub_pci = [c for c in elem.children if c.tag == "pci"]
        bridge_class = class_code is not None and (class_code >> 8) in (0x0604, 0x0609)
        if sub_pci and class_code is not None and not bridge_class:
            raise self.err(
                elem,
                "class",
                f"{class_code:#08x} is not a PCI bridge, yet <pci> elements are inside it",
            )
        notes = ["NCCL XML: ACS and port type unknown; one bridge level above is not listed"]
        if ids["vendor"] is None or ids["device"] is None:
            notes.append("vendor/device not in the file")
        if class_code is None:
            notes.append("class not in the file")
        self.devices.append(
            PciDevice(
                bdf=bdf,
                vendor=0xFFFF if ids["vendor"] is None else ids["vendor"],
                device=0xFFFF if ids["device"] is None else ids["device"],
                class_code=class_code or 0,
                header_type=1 if bridge_class or sub_pci else 0,
                subsystem_vendor=ids["subsystem_vendor"],
                subsystem_device=ids["subsystem_device"],
                acs=Acs.unknown(),
                parent=parent,
                numa_node=numa,
                link=Link(max_speed=speed, max_width=width),
                label=self.label(elem),
                notes=tuple(notes),
            )
        )
        self.lines[bdf] = elem.line
        if parent is None and bdf.root_bus not in self.host_bridges:
            where = f"<cpu numaid={numaid}>" if numaid is not None else "<cpu>"
            self.host_bridges[bdf.root_bus] = HostBridge(
                bdf.root_bus,
                numa_node=numa,
                label=f"stands in for NCCL's {where} (root port and host bridge not in the file)",
            )
        for child in sub_pci:
            self.pci(child, bdf, numaid, numa)

    def label(self, elem: XmlElement) -> str | None:
        for child in elem.children:
            if child.tag == "gpu":
                dev = self.int_attr(child, "dev")
                return f"GPU{dev}" if dev is not None else "GPU"
            if child.tag == "nic":
                names = [n.attrib.get("name", "") for n in child.children if n.tag == "net"]
                names = [n for n in names if n]
                return ",".join(names) if names else "NIC"
        return None


def _platform(walk: _NcclWalk, cpus: list[XmlElement]) -> tuple[Platform, list[str]]:
    notes: list[str] = []
    first = next((c for c in cpus if "vendor" in c.attrib or "arch" in c.attrib), None)
    if first is None:
        return Platform(arch="unknown", cpu_vendor="unknown", cpu_family=0), notes
    raw_vendor = first.attrib.get("vendor", "").strip()
    vendor = cpu_vendor_id(raw_vendor) if raw_vendor else "unknown"
    familyid = walk.int_attr(first, "familyid")
    family = cpu_family_from_nccl(familyid) if familyid is not None and familyid >= 0 else 0
    raw_arch = first.attrib.get("arch", "").strip()
    arch = _ARCHES.get(raw_arch.lower(), raw_arch or "unknown")
    if raw_vendor and raw_vendor != vendor:
        notes.append(f'CPU vendor "{raw_vendor}" read as {vendor}')
    if familyid is not None:
        notes.append(f"familyid {familyid} is CPU family {family:#x}")
    if vendor == "AuthenticAMD" and family == 0x18:
        notes.append(
            "family 0x18 is Hygon's (AMD never shipped it): on a Hygon CPU Linux reports"
            " HygonGenuine and cpu_supports_p2pdma() is false"
        )
    return Platform(arch=arch, cpu_vendor=vendor, cpu_family=family), notes


def parse_nccl_xml(text: str, path: str) -> Topology:
    """Read an NCCL/RCCL topology dump: the PCI tree NCCL saw (see the module notes).

    Raises:
        SourceError: malformed XML or NCCL attributes, naming the file and line.
    """
    root = parse_xml_safely(text, path)
    if root.tag != "system":
        raise SourceError(
            f"{path}: line {root.line}: root element <{root.tag}> is not NCCL's <system>"
        )
    walk = _NcclWalk(path)
    cpus = [c for c in root.children if c.tag == "cpu"]
    for cpu in cpus:
        walk.cpu(cpu)
    platform, cpu_notes = _platform(walk, cpus)
    gpus = sum(1 for d in walk.devices if d.label and d.label.startswith("GPU"))
    version = root.attrib.get("version", "?")
    description = (
        f"NCCL/RCCL topology XML (version {version}): {len(walk.devices)} PCI functions"
        f" ({gpus} GPUs) below {len(cpus)} <cpu> elements. The tree is NCCL's: it omits one"
        " bridge between each <pci> and the <pci> around it (switch downstream ports, GPUs'"
        " internal ports) and the root port above each top-level <pci>, so distances count"
        " fewer hops than the kernel does; host bridges stand in for <cpu> elements; only GPUs,"
        " NICs and the bridges above them are listed; ACS and port types are unknown."
    )
    if cpu_notes:
        description += " " + "; ".join(cpu_notes) + "."
    if walk.skipped:
        description += f" Skipped: {'; '.join(walk.skipped[:3])}."
    return topology_or_error(
        path,
        walk.devices,
        list(walk.host_bridges.values()),
        platform,
        walk.lines,
        name=PurePath(path).stem or "nccl",
        description=description,
    )
