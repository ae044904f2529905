"""Read ``lspci -vvv`` (and ``-vv``, ``-vvvnn``) text, and the parts all lspci readers share.

lspci prints one block per function: a header line ``[DDDD:]BB:DD.F class:
name (rev xx) (prog-if xx [...])`` at column 0, then indented detail lines,
then a blank line. ``-nn`` adds ``[cccc]`` after the class and
``[vvvv:dddd]`` after the name; ``-n`` prints only the numbers; an lspci
without the ID database prints ``Class cccc: Device vvvv:dddd``.

What this reader takes from a block:

* ``Bus: primary=.., secondary=.., subordinate=..`` (bridges; the tree comes
  from these through :mod:`p2pview.sources.busranges`);
* ``Capabilities: [xx] Express (v2) Root Port ...`` -> :class:`PcieType`;
* ``Capabilities: [xxx v1] Access Control Services`` with its ``ACSCap:`` and
  ``ACSCtl:`` lines (``-vv`` or more) -> the two ACS registers. lspci prints
  the seven defined bits only, so bits 15:7 (the egress control vector size)
  read as 0;
* ``Status: Cap-`` (no capability list: ACS absent), ``Capabilities: <access
  denied>`` (lspci run without root: ACS and port type unknown);
* the SR-IOV capability's ``IOVCtl: Enable+``, ``Number of VFs`` and ``VF
  offset/stride`` lines, to tie virtual functions to their PF;
* ``Kernel driver in use:``, ``NUMA node:``, ``IOMMU group:``, ``LnkCap:`` /
  ``LnkSta:`` speed and width, ``Subsystem:`` IDs (with ``-nn``), and
  ``Region N:`` / ``Expansion ROM at`` lines with a size as BARs.

Hex lines of ``-vvxxxx`` dumps are skipped (:mod:`p2pview.sources.lspci_hex`
reads them), as are ``lspci:`` / ``pcilib:`` warnings that land in the text
when stderr was captured too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from p2pview.model import (
    BDF,
    Acs,
    AddressError,
    Bar,
    BarKind,
    Link,
    PciDevice,
    PcieType,
    Platform,
    Topology,
    TopologyError,
)
from p2pview.sources.busranges import BridgeBuses, assign_parents
from p2pview.sources.checks import SourceError, check_span, quote
from p2pview.sources.configspace import LINK_SPEEDS, SriovInfo
from p2pview.sources.names import UNKNOWN_ID, with_names
from p2pview.sources.provenance import place_orphan_buses

# -- shared by the lspci readers ---------------------------------------------------

#: A function's header line: ``BB:DD.F`` or ``DDDD:BB:DD.F`` (32-bit VMD domains
#: print with five or more digits) at column 0, then a space and the text.
HEADER_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{4,8}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})"
    r"\.(?P<fn>[0-9])(?:[ \t](?P<rest>.*))?$"
)
#: A config-space hex line as ``lspci -x`` prints it: ``00: 86 80 ...``.
HEX_RE = re.compile(r"^(?P<offset>[0-9a-fA-F]{2,8}):(?P<bytes>(?= |$).*)$")
_HEX_PREFIX_RE = re.compile(r"^[0-9a-fA-F]{2,8}: ")

#: Subclass names as pciutils prints them (pci.ids "C" section, version
#: 2023.04.10; the data is the PCI Code and ID Assignment Specification's).
#: lspci prints the subclass name when it knows it, otherwise the base class
#: name followed by ``[cccc]``, which :func:`parse_header` reads directly.
CLASS_NAMES: Mapping[int, str] = {
    0x0000: "Non-VGA unclassified device",
    0x0001: "VGA compatible unclassified device",
    0x0005: "Image coprocessor",
    0x0100: "SCSI storage controller",
    0x0101: "IDE interface",
    0x0102: "Floppy disk controller",
    0x0103: "IPI bus controller",
    0x0104: "RAID bus controller",
    0x0105: "ATA controller",
    0x0106: "SATA controller",
    0x0107: "Serial Attached SCSI controller",
    0x0108: "Non-Volatile memory controller",
    0x0109: "Universal Flash Storage controller",
    0x0180: "Mass storage controller",
    0x0200: "Ethernet controller",
    0x0201: "Token ring network controller",
    0x0202: "FDDI network controller",
    0x0203: "ATM network controller",
    0x0204: "ISDN controller",
    0x0205: "WorldFip controller",
    0x0206: "PICMG controller",
    0x0207: "Infiniband controller",
    0x0208: "Fabric controller",
    0x0280: "Network controller",
    0x0300: "VGA compatible controller",
    0x0301: "XGA compatible controller",
    0x0302: "3D controller",
    0x0380: "Display controller",
    0x0400: "Multimedia video controller",
    0x0401: "Multimedia audio controller",
    0x0402: "Computer telephony device",
    0x0403: "Audio device",
    0x0480: "Multimedia controller",
    0x0500: "RAM memory",
    0x0501: "FLASH memory",
    0x0502: "CXL",
    0x0580: "Memory controller",
    0x0600: "Host bridge",
    0x0601: "ISA bridge",
    0x0602: "EISA bridge",
    0x0603: "MicroChannel bridge",
    0x0604: "PCI bridge",
    0x0605: "PCMCIA bridge",
    0x0606: "NuBus bridge",
    0x0607: "CardBus bridge",
    0x0608: "RACEway bridge",
    0x0609: "Semi-transparent PCI-to-PCI bridge",
    0x060A: "InfiniBand to PCI host bridge",
    0x0680: "Bridge",
    0x0700: "Serial controller",
    0x0701: "Parallel controller",
    0x0702: "Multiport serial controller",
    0x0703: "Modem",
    0x0704: "GPIB controller",
    0x0705: "Smard Card controller",
    0x0780: "Communication controller",
    0x0800: "PIC",
    0x0801: "DMA controller",
    0x0802: "Timer",
    0x0803: "RTC",
    0x0804: "PCI Hot-plug controller",
    0x0805: "SD Host controller",
    0x0806: "IOMMU",
    0x0880: "System peripheral",
    0x0899: "Timing Card",
    0x0900: "Keyboard controller",
    0x0901: "Digitizer Pen",
    0x0902: "Mouse controller",
    0x0903: "Scanner controller",
    0x0904: "Gameport controller",
    0x0980: "Input device controller",
    0x0A00: "Generic Docking Station",
    0x0A80: "Docking Station",
    0x0B00: "386",
    0x0B01: "486",
    0x0B02: "Pentium",
    0x0B10: "Alpha",
    0x0B20: "Power PC",
    0x0B30: "MIPS",
    0x0B40: "Co-processor",
    0x0C00: "FireWire (IEEE 1394)",
    0x0C01: "ACCESS Bus",
    0x0C02: "SSA",
    0x0C03: "USB controller",
    0x0C04: "Fibre Channel",
    0x0C05: "SMBus",
    0x0C06: "InfiniBand",
    0x0C07: "IPMI Interface",
    0x0C08: "SERCOS interface",
    0x0C09: "CANBUS",
    0x0C80: "Serial bus controller",
    0x0D00: "IRDA controller",
    0x0D01: "Consumer IR controller",
    0x0D10: "RF controller",
    0x0D11: "Bluetooth",
    0x0D12: "Broadband",
    0x0D20: "802.1a controller",
    0x0D21: "802.1b controller",
    0x0D80: "Wireless controller",
    0x0E00: "I2O",
    0x0F01: "Satellite TV controller",
    0x0F02: "Satellite audio communication controller",
    0x0F03: "Satellite voice communication controller",
    0x0F04: "Satellite data communication controller",
    0x1000: "Network and computing encryption device",
    0x1010: "Entertainment encryption device",
    0x1080: "Encryption controller",
    0x1100: "DPIO module",
    0x1101: "Performance counters",
    0x1110: "Communication synchronizer",
    0x1120: "Signal processing management",
    0x1180: "Signal processing controller",
    0x1200: "Processing accelerators",
    0x1201: "SNIA Smart Data Accelerator Interface (SDXI) controller",
}
_CLASS_BY_NAME = {name.lower(): code for code, name in CLASS_NAMES.items()}

_PROGIF_RE = re.compile(r"\(prog-if (?P<p>[0-9a-fA-F]{2})(?: \[[^\]]*\])?\)$")
_REV_RE = re.compile(r"\(rev (?P<r>[0-9a-fA-F]{2})\)$")
_CLASS_BRACKET_RE = re.compile(r"^(?P<name>.*?) ?\[(?P<c>[0-9a-fA-F]{4})\]$")
_CLASS_NUM_RE = re.compile(r"^(?:Class )?(?P<c>[0-9a-fA-F]{4})$")
_IDS_BRACKET_RE = re.compile(r"^(?P<name>.*?) ?\[(?P<v>[0-9a-fA-F]{4}):(?P<d>[0-9a-fA-F]{4})\]$")
_IDS_NUM_RE = re.compile(r"^(?:Device )?(?P<v>[0-9a-fA-F]{4}):(?P<d>[0-9a-fA-F]{4})$")


def lspci_error(path: str, line: int, problem: str) -> SourceError:
    """A :class:`SourceError` naming the file and the (1-based) line."""
    return SourceError(f"{path}: line {line}: {problem}")


@dataclass(frozen=True, slots=True)
class Header:
    """What a function's header line says.

    ``class_code`` is 24-bit (class, subclass, prog-if) or ``None`` when the
    class name is not one lspci prints; ``vendor``/``device`` are ``None``
    without ``-n``/``-nn`` numbers; ``name`` is the vendor and device name
    text (``None`` when lspci printed numbers only).
    """

    bdf: BDF
    class_code: int | None = None
    vendor: int | None = None
    device: int | None = None
    revision: int = 0
    name: str | None = None


def parse_bdf(match: re.Match[str], path: str, line: int) -> BDF:
    """The address of a :data:`HEADER_RE` match; out-of-range numbers are a SourceError."""
    try:
        return BDF(
            int(match["domain"] or "0", 16),
            int(match["bus"], 16),
            int(match["dev"], 16),
            int(match["fn"], 10),
        )
    except AddressError as exc:
        address = match.group(0).split()[0]
        raise lspci_error(path, line, f"bad PCI address {address!r}: {exc}") from None


def parse_header(bdf: BDF, rest: str | None) -> Header:
    """Split ``class: name (rev xx) (prog-if xx [...])`` into its parts."""
    text = (rest or "").strip()
    prog_if = 0
    m = _PROGIF_RE.search(text)
    if m:
        prog_if = int(m["p"], 16)
        text = text[: m.start()].rstrip()
    revision = 0
    m = _REV_RE.search(text)
    if m:
        revision = int(m["r"], 16)
        text = text[: m.start()].rstrip()
    class_part, sep, name_part = text.partition(": ")
    if not sep:
        class_part, name_part = "", text
    class_code: int | None = None
    c = class_part.strip()
    if m := _CLASS_BRACKET_RE.match(c) or _CLASS_NUM_RE.match(c):
        class_code = int(m["c"], 16)
    elif c.lower() in _CLASS_BY_NAME:
        class_code = _CLASS_BY_NAME[c.lower()]
    if class_code is not None:
        class_code = class_code << 8 | prog_if
    name: str | None = name_part.strip() or None
    vendor = device = None
    if name is not None:
        if m := _IDS_BRACKET_RE.match(name):
            vendor, device = int(m["v"], 16), int(m["d"], 16)
            name = m["name"].strip() or None
        elif m := _IDS_NUM_RE.match(name):
            vendor, device = int(m["v"], 16), int(m["d"], 16)
            name = None
    return Header(bdf, class_code, vendor, device, revision, name)


def build_topology(
    path: str,
    devices: Iterable[PciDevice],
    lines: Mapping[BDF, int],
    description: str,
) -> Topology:
    """A :class:`Topology` named after the file; a model error becomes a SourceError.

    lspci prints no CPU, IOMMU or command line: they are marked assumed.
    """
    devs = list(devices)
    try:
        topo = Topology(
            devs,
            platform=Platform.unknown("an lspci dump"),
            name=PurePath(path).name or path,
            description=description,
            source=path,
        )
    except TopologyError as exc:
        line = 1
        m = re.match(r"device (\S+):", str(exc))
        if m:
            with contextlib.suppress(AddressError):
                line = lines.get(BDF.parse(m[1]), 1)
        raise lspci_error(path, line, str(exc)) from None
    return place_orphan_buses(topo, "the lspci dump")


def multifunction_slots(bdfs: Iterable[BDF]) -> set[tuple[int, int, int]]:
    """The (domain, bus, device) slots that hold more than function 0.

    Text formats do not show the header's multi-function bit; a slot with a
    function other than 0 must have it set on function 0.
    """
    return {(b.domain, b.bus, b.dev) for b in bdfs if b.fn != 0}


def link_speed(text: str) -> str:
    """``8GT/s`` as lspci prints it -> ``8.0 GT/s PCIe`` as sysfs does."""
    m = re.match(r"([0-9.]+)GT/s", text)
    if not m:
        return "Unknown"
    try:
        value = float(m[1])
    except ValueError:
        return "Unknown"
    for name in LINK_SPEEDS.values():
        if float(name.split()[0]) == value:
            return name
    return f"{value:.1f} GT/s PCIe"


# -- the -vvv reader ----------------------------------------------------------------

_ACS_BITS = {
    "SrcValid": 0x0001,
    "TransBlk": 0x0002,
    "ReqRedir": 0x0004,
    "CmpltRedir": 0x0008,
    "UpstreamFwd": 0x0010,
    "EgressCtrl": 0x0020,
    "DirectTrans": 0x0040,
}
#: ``cap_express()`` in pciutils' ls-caps.c, longest first so prefixes do not win.
_EXPRESS_TYPES = (
    ("Root Complex Integrated Endpoint", PcieType.RC_END),
    ("Root Complex Event Collector", PcieType.RC_EC),
    ("PCI-Express to PCI/PCI-X Bridge", PcieType.PCI_BRIDGE),
    ("PCI/PCI-X to PCI-Express Bridge", PcieType.PCIE_BRIDGE),
    ("Legacy Endpoint", PcieType.LEG_END),
    ("Downstream Port", PcieType.DOWNSTREAM),
    ("Upstream Port", PcieType.UPSTREAM),
    ("Root Port", PcieType.ROOT_PORT),
    ("Endpoint", PcieType.ENDPOINT),
)
_CAP_RE = re.compile(r"^Capabilities: \[(?P<off>[0-9a-fA-F]+)(?: v(?P<ver>\d+))?\] ?(?P<name>.*)$")
_BUS_RE = re.compile(
    r"^Bus: primary=(?P<p>[0-9a-fA-F]{2}), secondary=(?P<s>[0-9a-fA-F]{2}),"
    r" subordinate=(?P<u>[0-9a-fA-F]{2})"
)
_REGION_RE = re.compile(
    r"^Region (?P<i>\d{1,2}): (?:\[virtual\] |\[enhanced\] )?(?P<kind>Memory at|I/O ports at)"
    r" (?P<addr>[0-9a-fA-F]{1,16})\b(?P<rest>.*)$"
)
_ROM_RE = re.compile(
    r"^(?:\[virtual\] )?Expansion ROM at (?P<addr>[0-9a-fA-F]{1,16})\b(?P<rest>.*)$"
)
_SIZE_RE = re.compile(r"\[size=(?P<n>\d{1,10})(?P<u>[KMGT]?)\]")
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SUBSYS_RE = re.compile(
    r"^Subsystem: (?:.*\[(?P<v>[0-9a-fA-F]{4}):(?P<d>[0-9a-fA-F]{4})\]"
    r"|(?:.* )?Device (?P<v2>[0-9a-fA-F]{4}):(?P<d2>[0-9a-fA-F]{4}))$"
)
_FLAGS_NUMA_RE = re.compile(r"\bNUMA node (?P<n>\d{1,9})\b")
_FLAGS_GROUP_RE = re.compile(r"\bIOMMU group (?P<g>\d{1,9})\b")
_WIDTH_RE = re.compile(r"Width x(?P<w>\d{1,3})\b")
_SPEED_RE = re.compile(r"Speed (?P<s>[^,\s]{1,20})")
_VFS_RE = re.compile(r"Number of VFs: (?P<n>\d{1,5})\b")
_VF_OFFSET_RE = re.compile(
    r"^VF offset: (?P<o>\d{1,5}), stride: (?P<s>\d{1,5}), Device ID: (?P<d>[0-9a-fA-F]{4})"
)
_WARNING_PREFIXES = ("lspci:", "pcilib:")
_NO_CLASS = "lspci printed a class name it has no number for (lspci -nn prints the number)"


@dataclass
class _Block:
    """One function's lines while they are read."""

    header: Header
    line: int
    bus: tuple[int, int, int] | None = None
    cardbus: bool = False
    unknown_header: bool = False
    status_cap: bool | None = None
    cap_lines: int = 0
    access_denied: bool = False
    cap: str | None = None
    pcie: PcieType | None = None
    express_seen: bool = False
    acs_seen: bool = False
    acs_cap: int | None = None
    acs_ctl: int | None = None
    link: dict[str, str | int] = field(default_factory=dict)
    driver: str | None = None
    numa: int | None = None
    iommu_group: int | None = None
    subsystem: tuple[int, int] | None = None
    bars: dict[int, Bar] = field(default_factory=dict)
    iov_enabled: bool = False
    num_vfs: int = 0
    vf_offset: tuple[int, int, int] | None = None
    notes: list[str] = field(default_factory=list)
    details: int = 0


def sniff_lspci_verbose(text: str) -> bool:
    """Whether ``text`` looks like ``lspci -v``/``-vv``/``-vvv`` output.

    A ``-vvxxxx`` dump passes too (it is verbose text with hex); readers that
    prefer the hex should try :func:`~p2pview.sources.lspci_hex.sniff_lspci_hex` first.
    """
    seen_header = False
    for raw in text.splitlines()[:400]:
        if not raw.strip():
            continue
        if raw[0] in " \t":
            if seen_header and re.match(
                r"^\s+(Subsystem|Control|Flags|Capabilities|Kernel driver in use|Bus|Status"
                r"|Physical Slot|DeviceName|Latency|Interrupt|NUMA node|Region \d+):",
                raw,
            ):
                return True
            continue
        m = HEADER_RE.match(raw)
        seen_header = bool(m and m["rest"] and ": " in m["rest"])
    return False


def parse_lspci_verbose(text: str, path: str) -> Topology:
    """Read ``lspci -vvv`` / ``-vvvnn`` text (hex lines, if any, are skipped).

    Raises:
        SourceError: naming the file and line of anything malformed.
    """
    blocks: list[_Block] = []
    first_line: dict[BDF, int] = {}
    cur: _Block | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            cur = None
            continue
        if line[0] not in " \t":
            if line.startswith(_WARNING_PREFIXES):
                continue
            if _HEX_PREFIX_RE.match(line):
                if cur is None:
                    raise lspci_error(path, n, "config-space hex line outside a device block")
                continue
            m = HEADER_RE.match(line)
            if m is None:
                raise lspci_error(
                    path,
                    n,
                    f"expected a device line '[DDDD:]BB:DD.F class: name', got {line[:60]!r}",
                )
            bdf = parse_bdf(m, path, n)
            if bdf in first_line:
                raise lspci_error(
                    path, n, f"function {bdf} listed twice (first at line {first_line[bdf]})"
                )
            first_line[bdf] = n
            cur = _Block(parse_header(bdf, m["rest"]), n)
            blocks.append(cur)
            continue
        if cur is None:
            raise lspci_error(path, n, "indented detail line outside a device block")
        _detail(cur, line.strip(), path, n)

    if not blocks:
        raise lspci_error(path, 1, "no lspci device lines ('BB:DD.F class: name') found")
    if not any(b.details for b in blocks):
        raise lspci_error(
            path,
            blocks[0].line,
            "plain lspci listing without detail lines: the tree needs the 'Bus:' lines of"
            " lspci -v (ACS needs -vv or more)",
        )

    physfn = _virtual_functions(blocks)
    bridges = [
        BridgeBuses(b.header.bdf, b.bus[1], b.bus[2], b.bus[0]) for b in blocks if b.bus is not None
    ]
    assigned = assign_parents([b.header.bdf for b in blocks], bridges, physfn)
    multi = multifunction_slots(b.header.bdf for b in blocks)
    devices = [
        _device(b, assigned.parents[b.header.bdf], assigned.physfn, assigned.notes, multi)
        for b in blocks
    ]
    return build_topology(
        path,
        devices,
        first_line,
        f"lspci -vvv text {PurePath(path).name}: {len(devices)} functions",
    )


def _flags(path: str, n: int, key: str, value: str) -> int:
    bits = 0
    known = 0
    for token in value.split():
        m = re.fullmatch(r"([A-Za-z]+)([+-])", token)
        if m is None:
            raise lspci_error(
                path, n, f"{key}: cannot read flag {token!r} (expected Name+ or Name-)"
            )
        if m[1] in _ACS_BITS:
            known += 1
            if m[2] == "+":
                bits |= _ACS_BITS[m[1]]
    if known == 0:
        raise lspci_error(path, n, f"{key}: none of the ACS flags ({', '.join(_ACS_BITS)})")
    return bits


def _detail(b: _Block, c: str, path: str, n: int) -> None:
    """Take what is needed from one stripped detail line of block ``b``."""
    if _HEX_PREFIX_RE.match(c):
        return
    b.details += 1
    if c.startswith("Capabilities:"):
        b.cap_lines += 1
        if c.startswith("Capabilities: <access denied>"):
            b.access_denied = True
            b.cap = None
            return
        m = _CAP_RE.match(c)
        if m is None:
            raise lspci_error(path, n, f"cannot read capability line {c[:60]!r}")
        name = m["name"]
        b.cap = name
        if name.startswith("Express") and not b.express_seen:
            b.express_seen = True
            kind = name.removeprefix("Express").strip()
            kind = re.sub(r"^\(v\d+\)\s*", "", kind)
            for label, member in _EXPRESS_TYPES:
                if kind.startswith(label):
                    b.pcie = member
                    break
            else:
                b.notes.append(f"lspci: PCIe capability with an unknown port type ({kind[:40]})")
        elif name.startswith("Access Control Services") and not b.acs_seen:
            b.acs_seen = True
        return
    if c.startswith("<access denied"):
        b.access_denied = True
        return
    if c.startswith("ACSCap:") or c.startswith("ACSCtl:"):
        key, _, value = c.partition(":")
        if b.cap is None or not b.cap.startswith("Access Control Services"):
            raise lspci_error(path, n, f"{key} line outside an Access Control Services capability")
        bits = _flags(path, n, key, value)
        if key == "ACSCap" and b.acs_cap is None:
            b.acs_cap = bits
        elif key == "ACSCtl" and b.acs_ctl is None:
            b.acs_ctl = bits
        return
    if b.cap is None:
        _top_level(b, c, path, n)
        return
    if b.cap.startswith("Express") and c.startswith(("LnkCap:", "LnkSta:")):
        key = "max" if c.startswith("LnkCap:") else "cur"
        if f"{key}_speed" not in b.link:
            if m := _SPEED_RE.search(c):
                b.link[f"{key}_speed"] = link_speed(m["s"])
            if m := _WIDTH_RE.search(c):
                b.link[f"{key}_width"] = int(m["w"])
        return
    if b.cap.startswith("Single Root I/O Virtualization"):
        if c.startswith("IOVCtl:"):
            b.iov_enabled = "Enable+" in c.split()
        elif m := _VFS_RE.search(c):
            b.num_vfs = int(m["n"])
        elif m := _VF_OFFSET_RE.match(c):
            b.vf_offset = (int(m["o"]), int(m["s"]), int(m["d"], 16))
        return
    if c.startswith(("Kernel driver in use:", "Kernel modules:", "NUMA node:", "IOMMU group:")):
        # lspci prints these after the capabilities.
        _top_level(b, c, path, n)


def _top_level(b: _Block, c: str, path: str, n: int) -> None:
    if m := _BUS_RE.match(c):
        b.bus = (int(m["p"], 16), int(m["s"], 16), int(m["u"], 16))
    elif c.startswith("Bus:"):
        # Dropping it would take the bridge out of the tree and move what is below it.
        raise lspci_error(
            path, n, f"cannot read {quote(c, 60)} (expected primary=, secondary=, subordinate=)"
        )
    elif c.startswith("Status:"):
        flags = c.split()
        if "Cap+" in flags:
            b.status_cap = True
        elif "Cap-" in flags:
            b.status_cap = False
    elif c.startswith("Kernel driver in use:"):
        b.driver = c.partition(":")[2].strip() or None
    elif c.startswith("NUMA node:"):
        value = c.partition(":")[2].strip()
        if not re.fullmatch(r"-?\d{1,9}", value):
            raise lspci_error(path, n, f"NUMA node: not a number: {value[:20]!r}")
        b.numa = int(value) if int(value) >= 0 else None
    elif c.startswith("IOMMU group:"):
        value = c.partition(":")[2].strip()
        if not re.fullmatch(r"\d{1,9}", value):
            raise lspci_error(path, n, f"IOMMU group: not a number: {value[:20]!r}")
        b.iommu_group = int(value)
    elif m := _SUBSYS_RE.match(c):
        b.subsystem = (int(m["v"] or m["v2"], 16), int(m["d"] or m["d2"], 16))
    elif c.startswith("Flags:"):
        # lspci -v (one v) folds NUMA node and IOMMU group into this line.
        if m := _FLAGS_NUMA_RE.search(c):
            b.numa = int(m["n"])
        if m := _FLAGS_GROUP_RE.search(c):
            b.iommu_group = int(m["g"])
    elif c.startswith("!!! Unknown header type"):
        b.unknown_header = True
    elif c.startswith(("Memory window ", "I/O window ", "16-bit legacy interface")):
        b.cardbus = True
    elif m := _REGION_RE.match(c):
        _bar(b, int(m["i"]), m["kind"], m["addr"], m["rest"], path, n)
    elif m := _ROM_RE.match(c):
        _bar(b, 6, "Memory at", m["addr"], m["rest"] + " (32-bit, non-prefetchable)", path, n)


def _bar(b: _Block, index: int, kind: str, addr: str, rest: str, path: str, n: int) -> None:
    size = _SIZE_RE.search(rest)
    if size is None or index > 6:
        return  # lspci -b or an unsized region: nothing a BAR model can hold
    nbytes = int(size["n"]) * _SIZE_UNITS[size["u"]]
    if nbytes <= 0:
        return
    if index in b.bars:
        raise lspci_error(path, n, f"Region {index} given twice")
    try:
        check_span(int(addr, 16), nbytes)
    except ValueError as exc:
        raise lspci_error(path, n, f"Region {index}: {exc}") from None
    is_io = kind.startswith("I/O")
    b.bars[index] = Bar(
        index=index,
        start=int(addr, 16),
        size=nbytes,
        kind=BarKind.IO if is_io else BarKind.MEM,
        prefetchable=not is_io and ", prefetchable" in rest,
        is_64bit="64-bit" in rest,
    )


def _virtual_functions(blocks: list[_Block]) -> dict[BDF, BDF]:
    """VF -> PF for the PFs whose SR-IOV capability is enabled and lists its VFs."""
    present = {b.header.bdf for b in blocks}
    physfn: dict[BDF, BDF] = {}
    for b in blocks:
        if not b.iov_enabled or b.vf_offset is None or b.num_vfs == 0:
            continue
        offset, stride, vf_device = b.vf_offset
        info = SriovInfo(True, b.num_vfs, b.num_vfs, offset, stride, vf_device)
        pf = b.header.bdf
        for rid in info.vf_routing_ids(pf.bus << 8 | pf.devfn):
            vf = BDF(pf.domain, rid >> 8, (rid >> 3) & 0x1F, rid & 7)
            if vf in present and vf != pf:
                physfn.setdefault(vf, pf)
    return {vf: pf for vf, pf in physfn.items() if pf not in physfn}


def _device(
    b: _Block,
    parent: BDF | None,
    physfn: Mapping[BDF, BDF],
    bus_notes: Mapping[BDF, tuple[str, ...]],
    multi: set[tuple[int, int, int]],
) -> PciDevice:
    h = b.header
    notes = list(b.notes)
    if b.acs_seen:
        if b.acs_cap is not None and b.acs_ctl is not None:
            acs = Acs.present(b.acs_cap, b.acs_ctl)
        else:
            acs = Acs.unknown()
            notes.append(
                "lspci: Access Control Services listed without its ACSCap/ACSCtl lines"
                " (lspci -v prints them only with -vv or more); ACS registers unknown"
            )
    elif b.access_denied:
        acs = Acs.unknown()
        notes.append(
            "lspci: 'Capabilities: <access denied>' (lspci ran without root);"
            " PCIe port type and ACS unknown"
        )
    elif b.cap_lines or b.status_cap is False:
        acs = Acs.absent()
    else:
        acs = Acs.unknown()
        notes.append(
            "lspci: no capability lines for this function; PCIe port type and ACS unknown"
            " (run lspci -vvv as root)"
        )
    if b.unknown_header:
        header_type: int | None = None
    elif b.bus is not None:
        cardbus = b.cardbus or (h.class_code is not None and h.class_code >> 8 == 0x0607)
        header_type = 2 if cardbus else 1
    else:
        header_type = 0
    if h.vendor is None:
        vendor = device = UNKNOWN_ID
    else:
        vendor, device = h.vendor, h.device or 0
    link = Link(
        speed=_str(b.link.get("cur_speed")),
        width=_int(b.link.get("cur_width")),
        max_speed=_str(b.link.get("max_speed")),
        max_width=_int(b.link.get("max_width")),
    )
    notes.extend(bus_notes.get(h.bdf, ()))
    dev = PciDevice(
        bdf=h.bdf,
        vendor=vendor,
        device=device,
        class_code=h.class_code or 0,
        revision=h.revision,
        header_type=header_type,
        multifunction=(h.bdf.domain, h.bdf.bus, h.bdf.dev) in multi,
        subsystem_vendor=b.subsystem[0] if b.subsystem else None,
        subsystem_device=b.subsystem[1] if b.subsystem else None,
        pcie_type=b.pcie,
        acs=acs,
        parent=parent,
        physfn=physfn.get(h.bdf),
        driver=b.driver,
        numa_node=b.numa,
        iommu_group=b.iommu_group,
        link=link,
        bars=tuple(b.bars[i] for i in sorted(b.bars)),
        label=h.name,
        notes=tuple(notes),
    )
    if h.vendor is not None and h.class_code is not None:
        return dev
    # lspci without -nn: names instead of IDs; a class name lspci's table lacks
    source = "lspci -v without -nn prints names only" if h.vendor is None else _NO_CLASS
    dev = with_names(
        dev, source, ids_given=h.vendor is not None, class_given=h.class_code is not None
    )
    if dev.fact("class_code").is_assumed:
        dev = dev.replace(notes=(*dev.notes, "lspci: class name not recognised; class unknown"))
    return dev


def _str(value: str | int | None) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: str | int | None) -> int | None:
    return value if isinstance(value, int) else None
