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
  port above each top-level ``<pci>`` is missing too. This reader puts the
  missing bridges back as placeholders (their IDs unknown, their addresses
  made up from bus numbers no listed function uses, labelled as not in the
  file), so that ``calc_map_type_and_dist()`` walks as many hops as the
  kernel does; the links to them are marked inferred.
* Host bridges: the ``<cpu>`` element stands for the root complex. Each
  top-level ``<pci>`` gets a placeholder root port on a root bus of its own;
  which function stands for each host bridge in the whitelist is unknown
  (marked assumed), and ACS is unknown everywhere.
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
    DeviceFacts,
    Fact,
    HostBridge,
    Link,
    PciDevice,
    PcieType,
    Platform,
    RootBus,
    Topology,
)
from p2pview.model.platform import cpu_vendor_id
from p2pview.sources.checks import SourceError, quote
from p2pview.sources.hwloc import (
    XmlElement,
    attr_error,
    infer_port_types,
    parse_xml_safely,
    topology_or_error,
)
from p2pview.sources.provenance import placeholder_bridge, with_acs_reason
from p2pview.sources.sniff import sniff_nccl_xml

__all__ = ["cpu_family_from_nccl", "parse_nccl_xml", "sniff_nccl_xml"]

#: ``<cpu arch>`` as NCCL writes it -> ``uname -m``.
_ARCHES = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64", "ppc64": "ppc64le"}

_HEX_RE = re.compile(r"^\s*(?:0[xX])?([0-9a-fA-F]{1,8})\s*$")
_INT_RE = re.compile(r"^\s*(-?[0-9]{1,9}|0[xX][0-9a-fA-F]{1,8})\s*$")


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
        notes = ["NCCL XML: ACS and port type unknown"]
        facts = DeviceFacts()
        if ids["vendor"] is None or ids["device"] is None:
            notes.append("vendor/device not in the file")
            facts = facts.with_fact("ids", Fact.assumed("the NCCL dump gives no vendor/device"))
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
                facts=facts,
            )
        )
        self.lines[bdf] = elem.line
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
    """The CPU from the first ``<cpu>`` with a vendor; what is missing is marked assumed."""
    notes: list[str] = []
    unknown = Platform.unknown("this NCCL dump")
    first = next((c for c in cpus if "vendor" in c.attrib or "arch" in c.attrib), None)
    if first is None:
        return unknown, notes
    raw_vendor = first.attrib.get("vendor", "").strip()
    familyid = walk.int_attr(first, "familyid")
    raw_arch = first.attrib.get("arch", "").strip()
    arch = _ARCHES.get(raw_arch.lower(), raw_arch or "x86_64")
    if not raw_vendor or familyid is None or familyid < 0:
        if arch != "x86_64":  # off x86 cpu_supports_p2pdma() is false whatever the CPU
            plat = unknown.replace(arch=arch, cpu_vendor=f"({arch})", cpu_family=0)
            return plat.replace(facts=plat.facts.with_fact("cpu", Fact.read("<cpu arch>"))), notes
        return unknown, notes
    vendor = cpu_vendor_id(raw_vendor)
    family = cpu_family_from_nccl(familyid)
    fact = Fact.read(f"<cpu vendor={raw_vendor!r} familyid={familyid}>")
    if raw_vendor != vendor:
        notes.append(f'CPU vendor "{raw_vendor}" read as {vendor}')
    notes.append(f"familyid {familyid} is CPU family {family:#x}")
    if vendor == "AuthenticAMD" and family == 0x18:
        # AMD shipped no family 0x18 CPU; Hygon's Dhyana is family 0x18 and Linux
        # reports it as HygonGenuine (arch/x86/kernel/cpu/hygon.c).
        vendor = "HygonGenuine"
        fact = Fact.inferred(
            f"<cpu vendor={raw_vendor!r} familyid={familyid}>: family 0x18 is Hygon's"
            " (AMD shipped none), so Linux reports HygonGenuine"
        )
        notes.append("family 0x18 is Hygon's: the CPU is taken as HygonGenuine")
    plat = unknown.replace(arch=arch, cpu_vendor=vendor, cpu_family=family)
    return plat.replace(facts=plat.facts.with_fact("cpu", fact)), notes


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
    devices, roots = restore_skipped_levels(walk.devices)
    no_host_bridges = Fact.assumed(
        "NCCL dumps record no host bridges: the function the whitelist looks at is unknown"
    )
    host_bridges = [
        HostBridge(root, numa_node=numa, label=label, root_functions=no_host_bridges)
        for root, (numa, label) in roots.items()
    ]
    topo = topology_or_error(
        path,
        devices,
        host_bridges,
        platform,
        walk.lines,
        name=PurePath(path).stem or "nccl",
        description=description,
    )
    return with_acs_reason(topo, "NCCL dumps record no ACS")


#: Bus numbers placeholders are given, from the top down, skipping used ones.
_PLACEHOLDER_BUSES = range(0xFF, 0, -1)


def restore_skipped_levels(
    devices: list[PciDevice],
) -> tuple[list[PciDevice], dict[RootBus, tuple[int | None, str]]]:
    """Put back the bridges NCCL's dump skips, as placeholders (see the module notes).

    Returns the functions and, per placeholder root bus, its NUMA node and label.
    """
    by_bdf = {d.bdf: d for d in devices}
    used = {(d.bdf.domain, d.bdf.bus) for d in devices}
    free = {dom: [b for b in _PLACEHOLDER_BUSES if (dom, b) not in used] for dom, _ in used}
    children: dict[BDF | None, list[BDF]] = {}
    for d in devices:
        children.setdefault(d.parent, []).append(d.bdf)
    out: list[PciDevice] = []
    roots: dict[RootBus, tuple[int | None, str]] = {}

    def take_bus(domain: int, what: str) -> int:
        if not free[domain]:
            raise SourceError(f"no bus number left for the placeholder {what}")
        return free[domain].pop(0)

    skipped = Fact.assumed("not in the NCCL dump (NCCL lists every second bridge level)")
    tops = sorted(children.pop(None, []))
    groups = [(None, [kid]) for kid in tops] + sorted(children.items())  # a root bus per top
    for parent, kids in groups:
        domain = kids[0].domain
        bus = take_bus(domain, f"bridges below {parent or 'a <cpu>'}")
        for index, kid in enumerate(sorted(kids)):
            dev = by_bdf[kid]
            if index and index % 32 == 0:
                bus = take_bus(domain, f"bridges below {parent}")
            bridge = BDF(domain, bus, index % 32, 0)
            top = parent is None
            if top:
                root = bridge.root_bus
                roots[root] = (dev.numa_node, f"placeholder for the root complex above {kid}")
                what = f"the Root Port above {kid}"
            else:
                what = f"the bridge between {parent} and {kid}"
            how = (
                "NCCL's dump, which leaves out every second level of the PCI tree:"
                " placeholders stand for the missing bridges"
            )
            out.append(
                placeholder_bridge(
                    bridge,
                    pcie_type=PcieType.ROOT_PORT if top else None,
                    parent=parent,
                    numa_node=dev.numa_node,
                    label=f"(not in the dump: {what.removeprefix('the ')})",
                    note=f"{what} is not in NCCL's dump; the address is a placeholder",
                    facts=DeviceFacts(
                        ids=skipped,
                        class_code=Fact.inferred(how),
                        pcie_type=Fact.inferred(how),
                        parent=Fact.inferred(how),
                    ),
                )
            )
            out.append(dev.replace(parent=bridge).with_fact("parent", Fact.inferred(how)))
    return infer_port_types(out), roots
