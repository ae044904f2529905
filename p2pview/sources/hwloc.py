"""Read hwloc's view of the PCI tree: ``lstopo --of xml`` (formats 1.x, 2.0, 3.0) and ``lstopo -v``.

hwloc XML nests I/O objects: a host bridge (``type="Bridge"`` with
``bridge_type="0-1"``, or ``type="HostBridge"``) holds PCI bridges
(``bridge_type="1-1"`` / ``type="PCIBridge"``) and PCI functions
(``type="PCIDev"``). A function's parent is the nearest enclosing PCI bridge,
which is what the kernel's ``pci_upstream_bridge()`` follows; functions
directly under a host bridge sit on its root bus.

What hwloc does not keep, and so p2pview cannot know from its files:

* ACS and the PCIe capability: hwloc stores no extended config space, so ACS
  is ``unknown`` for every function and port types are inferred from class
  and position (marked ``pcie_type_inferred``), as for a non-root sysfs read.
* Link width: ``pci_link_speed`` is hwloc's bandwidth in GB/s (lanes times
  per-lane rate), kept in ``Link.speed`` as ``"7.88 GB/s (hwloc)"`` (two
  decimals; 0, hwloc's "unknown", gives no speed).
* Devices its I/O filter dropped: by default (no ``--whole-io``) hwloc keeps
  only storage, network, display, co-processor, fibre channel, InfiniBand,
  CXL-memory and accelerator functions and the bridges above them
  (:func:`hwloc_keeps`). A file that looks filtered says so in the topology
  description.
* SR-IOV links (VFs are listed as ordinary functions), drivers, IOMMU groups,
  BARs and the host bridge's own function when it was filtered out.

``lstopo -v`` console text carries the same objects and is read by
:func:`parse_lstopo_console`.

The XML helpers here (:func:`parse_xml_safely`) use the standard library's
expat parser, the one ElementTree is built on, so that every element keeps
its line number for error messages. Documents with an internal DTD subset or
any ENTITY declaration are refused, so no entity is ever expanded.
"""

from __future__ import annotations

import re
import xml.parsers.expat as expat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath

from p2pview.model import (
    BDF,
    Acs,
    AddressError,
    Fact,
    HostBridge,
    Link,
    PciDevice,
    Platform,
    RootBus,
    Topology,
    TopologyError,
)
from p2pview.sources.checks import SourceError
from p2pview.sources.names import UNKNOWN_ID, with_names
from p2pview.sources.provenance import (
    restore_hidden_bridges,
    with_acs_reason,
    with_root_functions,
)
from p2pview.sources.sniff import sniff_hwloc_xml, sniff_lstopo_console, xml_root_tag
from p2pview.sources.sysfs import with_inferred_pcie_type

__all__ = [
    "XmlElement",
    "hwloc_keeps",
    "hwloc_kept_functions",
    "parse_hwloc_xml",
    "parse_lstopo_console",
    "parse_xml_safely",
    "sniff_hwloc_xml",
    "sniff_lstopo_console",
    "xml_root_tag",
]

# ---------------------------------------------------------------------------
# Safe XML with line numbers (shared with the NCCL reader)

#: Deeper nesting than this is refused (hwloc files nest about 15 deep).
MAX_XML_DEPTH = 200


@dataclass(slots=True)
class XmlElement:
    """One parsed element: tag, attributes, the line its start tag is on, children."""

    tag: str
    attrib: dict[str, str]
    line: int
    children: list[XmlElement] = field(default_factory=list)


def parse_xml_safely(text: str, path: str) -> XmlElement:
    """Parse an XML document into :class:`XmlElement` nodes.

    Raises:
        SourceError: ``"<path>: line N[, column C]: ..."`` for text that is
            not well-formed, has a DTD internal subset or an ENTITY
            declaration, refers to an undeclared entity, or nests deeper
            than :data:`MAX_XML_DEPTH`.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise SourceError(
            f"{path}: line {line}: character {text[exc.start]!r} cannot be encoded"
            " (a lone surrogate; the file was not valid UTF-8)"
        ) from None
    # The text is already decoded: override any encoding the declaration names.
    parser = expat.ParserCreate(encoding="utf-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    roots: list[XmlElement] = []
    stack: list[XmlElement] = []

    def fail(problem: str) -> SourceError:
        return SourceError(f"{path}: line {parser.CurrentLineNumber}: {problem}")

    def start(tag: str, attrib: dict[str, str]) -> None:
        if len(stack) >= MAX_XML_DEPTH:
            raise fail(f"elements nested more than {MAX_XML_DEPTH} deep")
        elem = XmlElement(tag, attrib, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(elem)
        else:
            roots.append(elem)
        stack.append(elem)

    def end(_tag: str) -> None:
        stack.pop()

    def doctype(_name: str, _sysid: str | None, _pubid: str | None, internal: int) -> None:
        if internal:
            raise fail("DOCTYPE with an internal subset refused (no DTD declarations are read)")

    def entity_decl(name: str, *_rest: object) -> None:
        raise fail(f"ENTITY declaration {name!r} refused (entities are never expanded)")

    def skipped(name: str, _is_parameter: int) -> None:
        raise fail(f"reference to undeclared entity &{name};")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity_decl
    parser.SkippedEntityHandler = skipped
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise SourceError(
            f"{path}: line {exc.lineno}, column {exc.offset + 1}: not well-formed XML:"
            f" {expat.ErrorString(exc.code)}"
        ) from None
    if not roots:
        raise SourceError(f"{path}: line 1: no XML element")
    return roots[0]


def attr_error(path: str, elem: XmlElement, name: str, problem: str) -> SourceError:
    """A SourceError naming the file, the element's line and the attribute."""
    return SourceError(f"{path}: line {elem.line}: <{elem.tag}> {name}: {problem}")


def topology_or_error(
    path: str,
    devices: list[PciDevice],
    host_bridges: list[HostBridge],
    platform: Platform,
    lines: dict[BDF, int],
    *,
    name: str,
    description: str,
) -> Topology:
    """Build the topology; a validation failure names the line of the device at fault."""
    try:
        return Topology(
            devices, host_bridges, platform, name=name, description=description, source=path
        )
    except (TopologyError, AddressError) as exc:
        text = str(exc)
        line = 1
        for bdf, where in lines.items():
            if str(bdf) in text:
                line = where
                break
        raise SourceError(f"{path}: line {line}: {text}") from None


def infer_port_types(devices: Iterable[PciDevice]) -> list[PciDevice]:
    """Port types from class and position, parents first (as sysfs does without config space)."""
    by_bdf = {d.bdf: d for d in devices}
    depth: dict[BDF, int] = {}
    for bdf in by_bdf:
        chain: list[BDF] = []
        node: BDF | None = bdf
        while node is not None and node not in depth and node in by_bdf and len(chain) < 1000:
            chain.append(node)
            node = by_bdf[node].parent
        base = depth.get(node, -1) if node is not None else -1
        for i, item in enumerate(reversed(chain)):
            depth[item] = base + 1 + i
    for bdf in sorted(by_bdf, key=lambda b: (depth[b], b)):
        dev = by_bdf[bdf]
        if dev.pcie_type is None:
            above = by_bdf.get(dev.parent) if dev.parent is not None else None
            by_bdf[bdf] = with_inferred_pcie_type(dev, above)
    return [by_bdf[b] for b in sorted(by_bdf)]


# ---------------------------------------------------------------------------
# hwloc's default I/O filter


def hwloc_keeps(class_code: int) -> bool:
    """Whether hwloc's default I/O filter keeps a PCI function of this class.

    hwloc's ``HWLOC_TYPE_FILTER_KEEP_IMPORTANT`` for PCI devices
    (``hwloc_filter_check_pcidev_subtype_important()``): base classes 0x00
    (unclassified), 0x01 storage, 0x02 network, 0x03 display, 0x0b processor
    and 0x12 accelerator, and classes 0x0c04 (fibre channel), 0x0c06
    (InfiniBand) and 0x0502 (CXL memory). Base class 0x06 is let through
    too, but ``hwloc__filter_bridges()`` then drops every bridge-class
    function without I/O children (except NVSwitches, which only NVML
    names), so a leaf 0x06xx function is dropped: that is what this returns.
    PCI-PCI bridges are kept when something below them is kept.
    """
    base, cls = class_code >> 16, class_code >> 8
    return base in (0x00, 0x01, 0x02, 0x03, 0x0B, 0x12) or cls in (0x0C04, 0x0C06, 0x0502)


def _hwloc_bridge(dev: PciDevice) -> bool:
    """An hwloc ``Bridge`` object: a type 1 header with a PCI-PCI bridge class."""
    return dev.header_type == 1 and (dev.class_code >> 8) in (0x0604, 0x0609)


def hwloc_kept_functions(topology: Topology) -> frozenset[BDF]:
    """The functions ``lstopo`` without ``--whole-io`` would list for this tree.

    Leaf functions pass :func:`hwloc_keeps` (or are NVIDIA 0x0680 functions,
    the NVSwitches hwloc keeps by name); a PCI-PCI bridge is kept when
    anything below it is. A function kept this way keeps its parent, so the
    parent links of the kept functions are those of the full tree.
    """
    kept: set[BDF] = set()
    for bdf in reversed(_depth_first(topology)):
        dev = topology[bdf]
        if _hwloc_bridge(dev):
            if any(child in kept for child in topology.children(bdf)):
                kept.add(bdf)
        elif hwloc_keeps(dev.class_code) or (dev.vendor, dev.class_code >> 8) == (0x10DE, 0x0680):
            kept.add(bdf)  # NVIDIA's 0x0680 functions are NVSwitches, which hwloc keeps
    return frozenset(kept)


def _depth_first(topology: Topology) -> list[BDF]:
    order: list[BDF] = []
    for hb in topology.host_bridges:
        order.extend(topology.subtree(hb.root))
    return order


def _mark_unknowns(topology: Topology, what: str) -> Topology:
    """Say what hwloc never records (ACS) and what its default filter drops (host bridges)."""
    topology = with_acs_reason(topology, f"{what} keeps no extended config space (no ACS)")
    if len(topology) and hwloc_kept_functions(topology) == frozenset(topology.bdfs):
        topology = with_root_functions(
            topology,
            Fact.assumed(
                f"{what} looks made with hwloc's default I/O filter, which leaves out"
                " host-bridge functions: the function the whitelist looks at may be missing"
            ),
        )
    return topology


def _filter_note(topology: Topology) -> str:
    if len(topology) == 0:
        return "no PCI objects (exported with --no-io or without PCI support)"
    if hwloc_kept_functions(topology) == frozenset(topology.bdfs):
        return (
            "looks exported with hwloc's default I/O filter (no --whole-io): only storage,"
            " network, display, co-processor, InfiniBand and accelerator functions and the"
            " bridges above them are listed; other functions (host bridge and ISA functions,"
            " USB, SMBus, empty bridges...) are absent"
        )
    return "lists functions hwloc's default filter drops, so it looks exported with --whole-io"


# ---------------------------------------------------------------------------
# Attribute parsing shared by the XML and console readers

_PCI_TYPE_RE = re.compile(
    r"^\s*([0-9a-fA-F]{1,4})\s+\[([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})\]"
    r"\s+\[([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})\]\s+([0-9a-fA-F]{1,2})"
    r"(?:\s+([0-9a-fA-F]{1,2}))?\s*$"
)
_BUSES_RE = re.compile(r"^\s*([0-9a-fA-F]{1,8}):\[([0-9a-fA-F]{1,2})-([0-9a-fA-F]{1,2})\]\s*$")
_BRIDGE_TYPE_RE = re.compile(r"^\s*([0-9]{1,3})-([0-9]{1,3})\s*$")
_FLOAT_RE = re.compile(r"^\s*[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?\s*$")


@dataclass(frozen=True, slots=True)
class _PciType:
    class_code: int
    vendor: int
    device: int
    subsystem_vendor: int
    subsystem_device: int
    revision: int


def _pci_type(value: str) -> _PciType:
    """``"CCCC [VVVV:DDDD] [SVVV:SDDD] RR[ PP]"`` (PP, the prog-if, from hwloc 3.0 on)."""
    m = _PCI_TYPE_RE.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not 'CCCC [VVVV:DDDD] [SVVV:SDDD] RR [PP]'")
    prog_if = int(m[7], 16) if m[7] else 0
    return _PciType(
        (int(m[1], 16) << 8) | prog_if,
        int(m[2], 16),
        int(m[3], 16),
        int(m[4], 16),
        int(m[5], 16),
        int(m[6], 16),
    )


def _bus_range(value: str) -> tuple[RootBus, int]:
    """``bridge_pci``/``buses``: ``DDDD:[ss-ee]`` as (domain and secondary bus, subordinate)."""
    m = _BUSES_RE.match(value)
    if m is None:
        raise ValueError(f"{value!r} is not 'DDDD:[ss-ee]'")
    return RootBus(int(m[1], 16), int(m[2], 16)), int(m[3], 16)


def _link_speed(value: str) -> str | None:
    """The GB/s figure hwloc gives, as a Link.speed string; 0 means hwloc did not know."""
    text = value.strip()
    if not _FLOAT_RE.match(text):
        raise ValueError(f"{value!r} is not a number of GB/s")
    speed = float(text)
    if speed > 1e6:
        raise ValueError(f"{value!r} GB/s is out of range")
    return None if speed == 0 else f"{speed:.2f} GB/s (hwloc)"


def _single_node(nodeset: str) -> int | None:
    """The NUMA node of an hwloc nodeset string when it holds exactly one."""
    text = nodeset.strip().lower()
    if not text or text.startswith("0xf...f"):
        return None
    words = text.split(",")
    if len(words) > 2048:  # 65,536 nodes; more would make the shifts below quadratic
        return None
    value = 0
    for word in words:
        word = word.strip()
        if not re.fullmatch(r"(0x)?[0-9a-f]{1,8}", word):
            return None
        value = (value << 32) | int(word, 16)
    if value and value & (value - 1) == 0:
        return value.bit_length() - 1
    return None


def _label(vendor: str | None, device: str | None) -> str | None:
    parts = [p.strip() for p in (vendor, device) if p and p.strip()]
    return " ".join(parts) or None


# ---------------------------------------------------------------------------
# hwloc XML


@dataclass
class _HwlocWalk:
    """State of one walk over an hwloc XML tree."""

    path: str
    devices: list[PciDevice] = field(default_factory=list)
    lines: dict[BDF, int] = field(default_factory=dict)
    host_bridges: dict[RootBus, HostBridge] = field(default_factory=dict)
    infos: dict[str, str] = field(default_factory=dict)
    buses: dict[BDF | RootBus, tuple[int, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def err(self, elem: XmlElement, name: str, problem: str) -> SourceError:
        return attr_error(self.path, elem, name, problem)

    def info(self, elem: XmlElement) -> dict[str, str]:
        found: dict[str, str] = {}
        for child in elem.children:
            if child.tag == "info" and "name" in child.attrib:
                found.setdefault(child.attrib["name"], child.attrib.get("value", ""))
        return found

    def function(
        self,
        elem: XmlElement,
        parent: BDF | None,
        host: RootBus | None,
        numa: int | None,
        bridge: bool,
    ) -> PciDevice | None:
        """The function an object describes; ``None`` (with a problem noted) for a duplicate."""
        attrs = elem.attrib
        for key in ("pci_busid", "pci_type"):
            if key not in attrs:
                raise self.err(elem, key, "missing on a PCI object")
        try:
            bdf = BDF.parse(attrs["pci_busid"])
        except AddressError as exc:
            raise self.err(elem, "pci_busid", str(exc)) from None
        try:
            ids = _pci_type(attrs["pci_type"])
        except ValueError as exc:
            raise self.err(elem, "pci_type", str(exc)) from None
        try:
            speed = _link_speed(attrs["pci_link_speed"]) if "pci_link_speed" in attrs else None
        except ValueError as exc:
            raise self.err(elem, "pci_link_speed", str(exc)) from None
        if bdf in self.lines:
            self.problems.append(
                f"line {elem.line}: {bdf} listed again (first at line {self.lines[bdf]});"
                " this object and what is below it were skipped"
            )
            return None
        above: BDF | RootBus | None = parent if parent is not None else host
        if above is not None and above.domain != bdf.domain:
            raise self.err(elem, "pci_busid", f"{bdf} is below {above} of another domain")
        if bridge and "bridge_pci" in attrs:
            try:
                secondary, subordinate = _bus_range(attrs["bridge_pci"])
            except (ValueError, AddressError) as exc:
                raise self.err(elem, "bridge_pci", str(exc)) from None
            self.buses[bdf] = (secondary.bus, subordinate)
        if above is not None and above in self.buses:
            low, high = self.buses[above]
            if not low <= bdf.bus <= high:
                self.problems.append(
                    f"line {elem.line}: {bdf} is below {above}, whose buses are"
                    f" [{low:02x}-{high:02x}] (a hand-edited file?)"
                )
        names = self.info(elem)
        dev = PciDevice(
            bdf=bdf,
            vendor=ids.vendor,
            device=ids.device,
            class_code=ids.class_code,
            revision=ids.revision,
            header_type=1 if bridge else 0,
            subsystem_vendor=ids.subsystem_vendor,
            subsystem_device=ids.subsystem_device,
            acs=Acs.unknown(),
            parent=parent,
            numa_node=numa,
            link=Link(speed=speed),
            label=_label(names.get("PCIVendor"), names.get("PCIDevice")) or attrs.get("name"),
            notes=("hwloc stores no extended config space: ACS and port type unknown",),
        )
        self.devices.append(dev)
        self.lines[bdf] = elem.line
        return dev

    def host_bridge(self, elem: XmlElement, numa: int | None) -> RootBus | None:
        value = elem.attrib.get("bridge_pci")
        if value is None:
            return None
        try:
            root, subordinate = _bus_range(value)
        except (ValueError, AddressError) as exc:
            raise self.err(elem, "bridge_pci", str(exc)) from None
        if root in self.host_bridges:
            self.problems.append(f"line {elem.line}: a second host bridge for {root}")
            return root
        self.host_bridges[root] = HostBridge(root, numa_node=numa)
        self.buses[root] = (root.bus, subordinate)
        return root

    def walk(
        self, elem: XmlElement, parent: BDF | None, host: RootBus | None, numa: int | None
    ) -> None:
        for child in elem.children:
            if child.tag == "object":
                self.object(child, parent, host, numa)

    def object(
        self, elem: XmlElement, parent: BDF | None, host: RootBus | None, numa: int | None
    ) -> None:
        kind = elem.attrib.get("type")
        if kind is None:
            raise self.err(elem, "type", "missing")
        low = kind.lower()
        if low in ("bridge", "hostbridge", "pcibridge"):
            if self._is_host_bridge(elem, low):
                root = self.host_bridge(elem, numa)
                self.walk(elem, None, root, numa)
            else:
                dev = self.function(elem, parent, host, numa, bridge=True)
                if dev is not None:
                    self.walk(elem, dev.bdf, host, numa)
            return
        if low in ("pcidev", "pci"):
            # Nothing PCI is expected below a PCIDev; anything there keeps the bridge.
            if self.function(elem, parent, host, numa, bridge=False) is not None:
                self.walk(elem, parent, host, numa)
            return
        if low in ("osdev", "os", "misc"):
            self.walk(elem, parent, host, numa)
            return
        # A normal or memory object: it decides the NUMA node of the I/O below it.
        if "nodeset" in elem.attrib:
            numa = _single_node(elem.attrib["nodeset"])
        elif low == "numanode" and re.fullmatch(r"[0-9]{1,9}", elem.attrib.get("os_index", "")):
            numa = int(elem.attrib["os_index"])
        for name, value in self.info(elem).items():
            self.infos.setdefault(name, value)
        self.walk(elem, parent, host, numa)

    def _is_host_bridge(self, elem: XmlElement, low: str) -> bool:
        value = elem.attrib.get("bridge_type")
        if value is not None:
            m = _BRIDGE_TYPE_RE.match(value)
            if m is None:
                raise self.err(elem, "bridge_type", f"{value!r} is not 'U-D' (0-1 or 1-1)")
            upstream = int(m[1])
            if upstream not in (0, 1):
                raise self.err(elem, "bridge_type", f"upstream type {upstream} is not 0 or 1")
            return upstream == 0
        if low == "hostbridge":
            return True
        if low == "pcibridge":
            return False
        return "pci_busid" not in elem.attrib


def _xml_version(root: XmlElement, path: str) -> str:
    if root.tag != "topology":
        raise SourceError(
            f"{path}: line {root.line}: root element <{root.tag}> is not an hwloc <topology>"
        )
    version = root.attrib.get("version")
    if version is None:
        return "1.x"
    m = re.fullmatch(r"\s*([0-9]{1,3})(?:\.[0-9]{1,3})*\s*", version)
    if m is None or int(m[1]) not in (1, 2, 3):
        raise SourceError(
            f"{path}: line {root.line}: <topology> version: {version!r} is not an hwloc XML"
            " format this reader knows (1.x, 2.x, 3.x)"
        )
    return version.strip()


def _platform(infos: dict[str, str]) -> Platform:
    """The machine from hwloc's ``info`` attributes; what they lack is marked assumed."""
    os_name = infos.get("OSName")
    known: dict[str, object] = {
        "cpu_model_name": infos.get("CPUModel") or None,
        "kernel": infos.get("OSRelease") if os_name in (None, "Linux") else None,
        "hostname": infos.get("HostName") or None,
    }
    vendor = infos.get("CPUVendor")
    family_text = infos.get("CPUFamilyNumber")
    family = int(family_text) if family_text and family_text.isdigit() else None
    arch = infos.get("Architecture")
    base = Platform.unknown("this hwloc export", **known)
    if vendor and family is not None and len(family_text or "") <= 4:
        plat = base.replace(arch=arch or "x86_64", cpu_vendor=vendor, cpu_family=family)
        return plat.replace(
            facts=plat.facts.with_fact(
                "cpu", Fact.read("hwloc's CPUVendor and CPUFamilyNumber infos")
            )
        )
    if arch and arch not in ("x86_64", "i686", "x86"):
        # Off x86 cpu_supports_p2pdma() is false whatever the CPU: the arch settles it.
        plat = base.replace(arch=arch, cpu_vendor=f"({arch})", cpu_family=0)
        return plat.replace(
            facts=plat.facts.with_fact("cpu", Fact.read("hwloc's Architecture info"))
        )
    return base


def parse_hwloc_xml(text: str, path: str) -> Topology:
    """Read an hwloc XML export (``lstopo --of xml``), formats 1.x, 2.x and 3.x.

    Host bridges become :class:`HostBridge` (root bus from ``bridge_pci``),
    PCI bridges and devices become functions with IDs, class, revision and
    subsystem from ``pci_type``, link bandwidth from ``pci_link_speed`` and a
    label from the ``PCIVendor``/``PCIDevice`` infos. The NUMA node is that of
    the nearest enclosing CPU-side object whose nodeset holds a single node
    (or of the enclosing NUMANode in 1.x files). Host name, kernel release,
    architecture and CPU vendor/family/model come from hwloc's infos.

    Raises:
        SourceError: malformed XML or hwloc attributes, naming the file and line.
    """
    root = parse_xml_safely(text, path)
    version = _xml_version(root, path)
    walk = _HwlocWalk(path)
    for child in root.children:
        if child.tag == "info" and "name" in child.attrib:  # 3.x topology infos
            walk.infos.setdefault(child.attrib["name"], child.attrib.get("value", ""))
    walk.walk(root, None, None, None)
    devices = infer_port_types(walk.devices)
    infos = walk.infos
    name = infos.get("HostName") or PurePath(path).stem or "hwloc"
    machine = infos.get("DMIProductName", "").strip()
    description = (
        f"hwloc XML (format {version}){' of a ' + machine if machine else ''}:"
        f" {len(devices)} PCI functions below {len(walk.host_bridges)} host bridges."
        " hwloc stores no ACS (unknown everywhere) and no PCIe port type (inferred from"
        " class and position)."
    )
    topo = topology_or_error(
        path,
        devices,
        list(walk.host_bridges.values()),
        _platform(infos),
        walk.lines,
        name=name,
        description=description,
    )
    bridges = {b: sec for b, (sec, _sub) in walk.buses.items() if isinstance(b, BDF)}
    topo = restore_hidden_bridges(topo, bridges, "the hwloc XML export")
    topo = _mark_unknowns(topo, "an hwloc XML export")
    notes = f"{description} The file {_filter_note(topo)}."
    if walk.problems:
        shown = "; ".join(walk.problems[:5])
        more = f" (and {len(walk.problems) - 5} more)" if len(walk.problems) > 5 else ""
        notes += f" Inconsistencies: {shown}{more}."
    return topo.replace_meta(description=notes)


# ---------------------------------------------------------------------------
# lstopo -v console text

_CONSOLE_OBJ_RE = re.compile(r"^(?P<indent> *)(?P<body>\S.*?)\s*$")
_COLLAPSED_RE = re.compile(r"^(?P<count>[0-9]{1,6}) x \{ (?P<inner>.*?) ?\}?$")
_TYPE_RE = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9]*)(?P<rest>.*)$")
_KV_RE = re.compile(r'(?<![\w"])([A-Za-z_][\w]*)=("(?:[^"\\]|\\.)*"|\S*)')
_IDS_TOKEN_RE = re.compile(r"^\s*([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\b")
_RANGE_RE = re.compile(
    r"^(?:(?P<dom>[0-9a-fA-F]{4,8}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})"
    r"\.(?P<fn>[0-7])-(?:(?:(?P<ebus>[0-9a-fA-F]{2}):)?(?P<edev>[0-9a-fA-F]{2})\.)?(?P<efn>[0-7])$"
)
_NORMAL_TYPES = {"machine", "system", "package", "socket", "group", "die", "numanode"}


@dataclass
class _ConsoleEntry:
    indent: int
    kind: str  # "host", "bridge", "pci", "numa", "normal"
    bdf: BDF | None = None
    numa: int | None = None
    #: NUMA nodes listed below this object so far; lstopo prints an object's
    #: memory and CPU-side children before its I/O children.
    numa_below: set[int] = field(default_factory=set)


def _console_attrs(rest: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for key, raw in _KV_RE.findall(rest):
        value = raw[1:-1] if raw.startswith('"') and raw.endswith('"') and len(raw) > 1 else raw
        if not raw.startswith('"'):
            value = value.rstrip(")")
        attrs.setdefault(key, value)
    return attrs


def _console_bdfs(busid: str, count: int, line: int, path: str) -> list[BDF]:
    """A ``busid`` value, or a collapsed ``N x { ... busid=BB:DD.F-F ... }`` range."""
    if count == 1:
        try:
            return [BDF.parse(busid)]
        except AddressError as exc:
            raise SourceError(f"{path}: line {line}: busid: {exc}") from None
    m = _RANGE_RE.match(busid)
    if m is None:
        raise SourceError(f"{path}: line {line}: busid: {busid!r} is not a collapsed range")
    domain = int(m["dom"] or "0", 16)
    bus = int(m["bus"], 16)
    first = BDF(domain, bus, int(m["dev"], 16), int(m["fn"]))
    ebus = int(m["ebus"], 16) if m["ebus"] else bus
    edev = int(m["edev"], 16) if m["edev"] else first.dev
    last = BDF(domain, ebus, edev, int(m["efn"]))
    if ebus != bus or last.devfn - first.devfn + 1 != count:
        raise SourceError(
            f"{path}: line {line}: {count} functions collapsed into {busid!r}: the addresses"
            " in between are not known (run lstopo with --no-collapse)"
        )
    return [BDF(domain, bus, devfn >> 3, devfn & 7) for devfn in range(first.devfn, last.devfn + 1)]


def parse_lstopo_console(text: str, path: str) -> Topology:
    """Read ``lstopo -v`` (``--of console``) text: host bridges, PCI bridges, PCI functions.

    The tree comes from the indentation; ``busid=``, ``id=``, ``class=`` and
    ``link=`` give the address, IDs, class and bandwidth. Subsystem IDs,
    revision and prog-if are not printed, so they are absent. Collapsed lines
    (``3 x { PCI ... busid=0b:00.1-3 ... }``) are expanded when the range is
    exact. Objects hwloc's filter dropped are absent as in the XML.

    Raises:
        SourceError: a PCI line without a usable ``busid``/``id``, naming the line.
    """
    stack: list[_ConsoleEntry] = []
    devices: list[PciDevice] = []
    lines: dict[BDF, int] = {}
    host_bridges: dict[RootBus, HostBridge] = {}
    secondary: dict[BDF, int] = {}
    infos: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        m = _CONSOLE_OBJ_RE.match(raw.expandtabs(8))
        if m is None:
            continue
        indent, body = len(m["indent"]), m["body"]
        count = 1
        collapsed = _COLLAPSED_RE.match(body)
        if collapsed:
            count, body = int(collapsed["count"]), collapsed["inner"]
        t = _TYPE_RE.match(body)
        if t is None:
            continue
        kind_word, rest = t["type"], t["rest"]
        low = kind_word.lower()
        if low == "depth" or body.startswith("Special depth"):
            break  # the summary after the tree
        while stack and stack[-1].indent >= indent:
            stack.pop()
        attrs = _console_attrs(rest)
        numa = _console_numa(stack)
        if low in ("hostbridge", "bridge") and "busid" not in attrs:
            root = None
            if "buses" in attrs:
                try:
                    root, _sub = _bus_range(attrs["buses"])
                except (ValueError, AddressError) as exc:
                    raise SourceError(f"{path}: line {number}: buses: {exc}") from None
                if root not in host_bridges:
                    host_bridges[root] = HostBridge(root, numa_node=numa)
            stack.append(_ConsoleEntry(indent, "host"))
            continue
        if low in ("pcibridge", "pci", "bridge"):
            bridge = low != "pci"
            if "busid" not in attrs:
                raise SourceError(
                    f"{path}: line {number}: a {kind_word} line without busid= (use lstopo -v)"
                )
            bdfs = _console_bdfs(attrs["busid"], count, number, path)
            ids = attrs.get("id")
            idm = re.fullmatch(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})", ids or "") or (
                _IDS_TOKEN_RE.match(rest)
            )
            vendor_name, device_name = attrs.get("PCIVendor"), attrs.get("PCIDevice")
            if idm is None and (ids := attrs.get("id")) is not None:
                raise SourceError(f"{path}: line {number}: id: {ids[:20]!r} is not 'vvvv:dddd'")
            if idm is None and vendor_name is None:
                raise SourceError(
                    f"{path}: line {number}: no id= and no PCIVendor= name (use lstopo -v)"
                )
            cls = re.match(r"([0-9a-fA-F]{4})", attrs.get("class", ""))
            class_code = int(cls[1], 16) << 8 if cls else 0
            speed = None
            link = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)GB/s", attrs.get("link", ""))
            if link and float(link[1]) != 0:
                speed = f"{float(link[1]):.2f} GB/s (hwloc)"
            parent = next((e.bdf for e in reversed(stack) if e.kind == "bridge"), None)
            for bdf in bdfs:
                if bdf in lines:
                    raise SourceError(
                        f"{path}: line {number}: {bdf} already listed at line {lines[bdf]}"
                    )
                if parent is not None and parent.domain != bdf.domain:
                    raise SourceError(
                        f"{path}: line {number}: {bdf} is below bridge {parent} of another domain"
                    )
                dev = PciDevice(
                    bdf=bdf,
                    vendor=UNKNOWN_ID if idm is None else int(idm[1], 16),
                    device=UNKNOWN_ID if idm is None else int(idm[2], 16),
                    class_code=class_code,
                    header_type=1 if bridge else 0,
                    acs=Acs.unknown(),
                    parent=parent,
                    numa_node=numa,
                    link=Link(speed=speed),
                    label=_label(vendor_name, device_name),
                    notes=("read from lstopo text: ACS, port type and subsystem unknown",),
                )
                if idm is None or cls is None:
                    # names in place of id= or no class=: what the names pin (pci.ids)
                    dev = with_names(
                        dev,
                        "this lstopo line has " + ("no id=" if idm is None else "no class="),
                        ids_given=idm is not None,
                        class_given=cls is not None,
                        vendor_name=vendor_name,
                        device_name=device_name,
                    )
                devices.append(dev)
                lines[bdf] = number
            if bridge and "buses" in attrs:
                try:
                    secondary[bdfs[-1]] = _bus_range(attrs["buses"])[0].bus
                except (ValueError, AddressError) as exc:
                    raise SourceError(f"{path}: line {number}: buses: {exc}") from None
            stack.append(_ConsoleEntry(indent, "bridge" if bridge else "pci", bdf=bdfs[-1]))
            continue
        if low == "numanode":
            p = re.search(r"\bP#([0-9]{1,9})\b", rest)
            node = int(p[1]) if p else None
            if node is not None:
                for entry in stack:
                    if entry.kind == "normal":
                        entry.numa_below.add(node)
            stack.append(_ConsoleEntry(indent, "numa", numa=node))
            continue
        if low in _NORMAL_TYPES:
            stack.append(_ConsoleEntry(indent, "normal"))
            for key in ("CPUVendor", "CPUFamilyNumber", "CPUModel", "Architecture", "HostName"):
                if key in attrs:
                    infos.setdefault(key, attrs[key])
    devices = infer_port_types(devices)
    for m in re.finditer(r"^Topology infos:(.*)$", text, re.MULTILINE):
        for key, value in _console_attrs(m[1]).items():
            infos.setdefault(key, value)
    name = infos.get("HostName") or PurePath(path).stem or "lstopo"
    description = (
        f"lstopo text output: {len(devices)} PCI functions below {len(host_bridges)} host"
        " bridges; no ACS, port types inferred, no subsystem IDs or revisions."
    )
    topo = topology_or_error(
        path,
        devices,
        list(host_bridges.values()),
        _platform(infos),
        lines,
        name=name,
        description=description,
    )
    topo = restore_hidden_bridges(topo, secondary, "lstopo's text output")
    topo = _mark_unknowns(topo, "lstopo's text output")
    return topo.replace_meta(description=f"{description} The output {_filter_note(topo)}.")


def _console_numa(stack: list[_ConsoleEntry]) -> int | None:
    """The NUMA node of what comes next: the one node below its nearest CPU-side ancestor.

    An enclosing NUMANode (1.x output) decides at once; an ancestor with
    several nodes below it (an I/O object attached to the whole machine)
    leaves it unknown.
    """
    for entry in reversed(stack):
        if entry.kind == "numa":
            return entry.numa
        if entry.kind == "normal" and entry.numa_below:
            return next(iter(entry.numa_below)) if len(entry.numa_below) == 1 else None
    return None
