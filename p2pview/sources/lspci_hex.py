"""Read ``lspci -x`` / ``-xxx`` / ``-xxxx`` / ``-vvxxxx`` dumps: the format ``lspci -F`` reads.

Each function is a header line (``[DDDD:]BB:DD.F`` and, usually, the class
and name) followed by hex lines ``OFF: xx xx ...``; a blank line ends it.
Like pciutils' ``lib/dump.c`` this reader fills bytes the dump does not give
with 0xff and takes the function's config-space size from the highest byte
given: 64 (``-x``), 128 (``-x`` of a CardBus bridge), 256 (``-xxx``) or 4096
(``-xxxx``). Other lines (the ``-vv`` detail lines) are skipped, except
``Kernel driver in use:``, ``NUMA node:`` and ``IOMMU group:``.

Config space is decoded by :func:`p2pview.sources.configspace.decode`, so a
4096-byte dump gives ACS and the PCIe port type; a 256-byte dump of a PCIe
function has no extended space and its ACS is "absent", as for a kernel
whose ``cfg_size`` is 256 (a note says that ``-xxxx`` would show it); a
64-byte dump leaves port type and ACS unknown. The tree comes from the
bridges' bus numbers (:mod:`p2pview.sources.busranges`), SR-IOV virtual
functions are tied to their PF through the PF's SR-IOV capability.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from p2pview.model import BDF, Acs, Link, PciDevice, Topology
from p2pview.sources.busranges import BridgeBuses, assign_parents
from p2pview.sources.configspace import (
    ConfigError,
    bridge_bus_numbers,
    decode,
    ext_capability_walk_truncated,
    pcie_link,
    sriov_info,
)
from p2pview.sources.lspci_verbose import (
    HEADER_RE,
    HEX_RE,
    Header,
    build_topology,
    lspci_error,
    parse_bdf,
    parse_header,
)

CONFIG_SPACE_SIZE = 4096
#: lspci reads the first 64 bytes of every function and drops the function
#: when they are not there (``scan_device()``).
MIN_DUMP_BYTES = 64

_SNIFF_HEX_RE = re.compile(r"^00: [0-9a-fA-F]{2}(?: [0-9a-fA-F]{2}){3,15}[ \t\r]*$", re.MULTILINE)
_SNIFF_HEADER_RE = re.compile(
    r"^(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7][ \t\r]", re.MULTILINE
)
_HEX_BYTE_RE = re.compile(r"[0-9a-fA-F]{2}")
_HEX_BYTES_RE = re.compile(r"(?: [0-9a-fA-F]{2})+")


@dataclass
class _Dump:
    header: Header
    line: int
    data: bytearray = field(default_factory=lambda: bytearray(b"\xff" * CONFIG_SPACE_SIZE))
    size: int = 0
    hex_lines: int = 0
    driver: str | None = None
    numa: int | None = None
    iommu_group: int | None = None


def sniff_lspci_hex(text: str) -> bool:
    """Whether ``text`` holds an lspci hex dump (a device line and an ``00:`` hex line)."""
    return bool(_SNIFF_HEADER_RE.search(text)) and bool(_SNIFF_HEX_RE.search(text))


def parse_lspci_hex(text: str, path: str) -> Topology:
    """Read an lspci hex dump into a topology.

    Raises:
        SourceError: naming the file and line (and config-space offset) of
            anything malformed.
    """
    dumps: list[_Dump] = []
    first_line: dict[BDF, int] = {}
    cur: _Dump | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            cur = None
            continue
        if line[0] in " \t":
            if cur is not None:
                _detail(cur, line.strip(), path, n)
            continue
        if (h := HEX_RE.match(line)) is not None:
            if cur is None:
                raise lspci_error(path, n, "config-space hex line without a device line above it")
            _hex_line(cur, h, path, n)
            continue
        if (m := HEADER_RE.match(line)) is not None:
            bdf = parse_bdf(m, path, n)
            if bdf in first_line:
                raise lspci_error(
                    path, n, f"function {bdf} appears twice (first at line {first_line[bdf]})"
                )
            first_line[bdf] = n
            cur = _Dump(parse_header(bdf, m["rest"]), n)
            dumps.append(cur)
            continue
        # Anything else (lspci warnings, shell prompts, notes) is skipped, as lspci -F does.

    if not dumps:
        raise lspci_error(path, 1, "no lspci device line ('[DDDD:]BB:DD.F ...') found")
    if not any(d.hex_lines for d in dumps):
        raise lspci_error(
            path, dumps[0].line, "no config-space hex lines: not an lspci -x/-xxx/-xxxx dump"
        )
    for d in dumps:
        if d.size < MIN_DUMP_BYTES:
            raise lspci_error(
                path,
                d.line,
                f"function {d.header.bdf}: only {d.size} bytes of config space"
                f" (lspci -x gives at least {MIN_DUMP_BYTES}; lspci -F drops such a function)",
            )
    return _topology(dumps, first_line, path)


def _hex_line(cur: _Dump, m: re.Match[str], path: str, n: int) -> None:
    offset = int(m["offset"], 16)
    text = m["bytes"].rstrip()
    if _HEX_BYTES_RE.fullmatch(text):
        data = bytes.fromhex(text)
        end = offset + len(data)
        if end <= CONFIG_SPACE_SIZE:
            cur.data[offset:end] = data
            cur.size = max(cur.size, end)
            cur.hex_lines += 1
            return
    # Slow path: find the byte at fault.
    tokens = text.split(" ")[1:] if text else []
    if not tokens:
        raise lspci_error(path, n, f"offset {offset:#x}: hex line without bytes")
    for i, token in enumerate(tokens):
        at = offset + i
        if not _HEX_BYTE_RE.fullmatch(token):
            raise lspci_error(
                path, n, f"offset {at:#x}: {token[:10]!r} is not a two-digit hex byte"
            )
        if at >= CONFIG_SPACE_SIZE:
            raise lspci_error(
                path, n, f"offset {at:#x}: beyond the {CONFIG_SPACE_SIZE}-byte config space"
            )
    raise AssertionError("unreachable: the line matched neither path")  # pragma: no cover


def _detail(cur: _Dump, c: str, path: str, n: int) -> None:
    if c.startswith("Kernel driver in use:"):
        cur.driver = c.partition(":")[2].strip() or None
    elif c.startswith("NUMA node:"):
        value = c.partition(":")[2].strip()
        if not re.fullmatch(r"-?\d{1,9}", value):
            raise lspci_error(path, n, f"NUMA node: not a number: {value[:20]!r}")
        cur.numa = int(value) if int(value) >= 0 else None
    elif c.startswith("IOMMU group:"):
        value = c.partition(":")[2].strip()
        if not re.fullmatch(r"\d{1,9}", value):
            raise lspci_error(path, n, f"IOMMU group: not a number: {value[:20]!r}")
        cur.iommu_group = int(value)


def _topology(dumps: list[_Dump], first_line: dict[BDF, int], path: str) -> Topology:
    infos = {}
    for d in dumps:
        cfg = bytes(d.data[: d.size])
        try:
            infos[d.header.bdf] = (cfg, decode(cfg))
        except ConfigError as exc:  # pragma: no cover - size >= 64 is checked above
            raise lspci_error(path, d.line, str(exc)) from None

    # SR-IOV: VFs report all-ones IDs; their PF's capability says where they are.
    physfn: dict[BDF, BDF] = {}
    vf_device: dict[BDF, int] = {}
    for d in dumps:
        pf = d.header.bdf
        sriov = sriov_info(infos[pf][0])
        if sriov is None:
            continue
        for rid in sriov.vf_routing_ids(pf.bus << 8 | pf.devfn):
            vf = BDF(pf.domain, rid >> 8, (rid >> 3) & 0x1F, rid & 7)
            if vf in infos and vf != pf:
                physfn.setdefault(vf, pf)
                vf_device.setdefault(vf, sriov.vf_device)
    physfn = {vf: pf for vf, pf in physfn.items() if pf not in physfn}

    bridges = []
    for bdf, (cfg, _info) in infos.items():
        numbers = bridge_bus_numbers(cfg)
        if numbers is not None:
            bridges.append(BridgeBuses(bdf, numbers[1], numbers[2], numbers[0]))
    assigned = assign_parents(infos, bridges, physfn)

    devices = []
    for d in dumps:
        bdf = d.header.bdf
        cfg, info = infos[bdf]
        notes = list(info.notes)
        acs = info.acs
        header_type: int | None = info.header_type
        if header_type not in (0, 1, 2):
            notes.append(f"config space: unknown header type {header_type:#04x}")
            header_type = None
        elif header_type == 1 and info.class_code >> 16 != 0x06:
            notes.append(
                f"header type 1 with class {info.class_code >> 8:04x}: the kernel scans"
                " behind it as a bridge; lspci -t does not draw it as one"
            )
        if ext_capability_walk_truncated(cfg):
            acs = Acs.unknown()
            notes.append(
                f"config space: the dump stops at {d.size} bytes inside the extended"
                " capability list; ACS unknown"
            )
        elif d.size == 256 and info.pcie_type is not None:
            notes.append(
                "config space: 256-byte dump (lspci -xxx) of a PCIe function: no extended"
                " capabilities in it, so ACS is taken as absent (as the kernel does for a"
                " 256-byte config space); a 4096-byte dump (lspci -xxxx as root) would show it"
            )
        vendor, device = info.vendor, info.device
        pf_of = assigned.physfn.get(bdf)
        if pf_of is not None and vendor == 0xFFFF:
            vendor = infos[pf_of][1].vendor
            device = vf_device[bdf]
        notes.extend(assigned.notes.get(bdf, ()))
        devices.append(
            PciDevice(
                bdf=bdf,
                vendor=vendor,
                device=device,
                class_code=info.class_code,
                revision=info.revision,
                header_type=header_type,
                multifunction=info.multifunction,
                subsystem_vendor=info.subsystem_vendor,
                subsystem_device=info.subsystem_device,
                pcie_type=info.pcie_type,
                acs=acs,
                parent=assigned.parents[bdf],
                physfn=pf_of,
                driver=d.driver,
                numa_node=d.numa,
                iommu_group=d.iommu_group,
                link=pcie_link(cfg) or Link(),
                label=d.header.name,
                notes=tuple(notes),
            )
        )
    name = PurePath(path).name
    return build_topology(
        path, devices, first_line, f"lspci hex dump {name}: {len(devices)} functions"
    )
