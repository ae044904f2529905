"""The hand-writable topology file: TOML, or JSON with the same schema.

A file holds top-level ``name`` and ``description``, a ``[platform]`` table,
optional ``[[host_bridge]]`` tables and one ``[[device]]`` table per PCI
function. README's "Topology files" section documents every key; this module
is the reference. Every error names the file and the field.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from p2pview.model import (
    BDF,
    Acs,
    AddressError,
    Bar,
    BarKind,
    DeviceFacts,
    Fact,
    HostBridge,
    IommuMode,
    Link,
    P2pMem,
    PciDevice,
    PcieType,
    Platform,
    PlatformFacts,
    RootBus,
    Topology,
    TopologyError,
)
from p2pview.model.provenance import DEVICE_FACTS, PLATFORM_FACTS
from p2pview.sources.checks import (
    U8,
    U16,
    U24,
    SourceError,
    check_bits,
    check_json_shape,
    check_span,
    cut,
    parse_int,
    quote,
    show_int,
)
from p2pview.sources.readfile import TEXT, load_toml, read_text_bounded

__all__ = ["parse_topology_text", "read_topology_file"]

FORMAT_TAG = "p2pview-topology/1"

_T = TypeVar("_T")


def _where(path: str, field: str) -> str:
    return f"{path}: {field}"


def _parse_ids(value: object) -> tuple[int, int]:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{1,4}:[0-9a-fA-F]{1,4}", value):
        raise ValueError(f"expected 'vvvv:dddd' (hex), got {quote(value)}")
    v, d = value.split(":")
    return int(v, 16), int(d, 16)


class _Reader:
    """Typed access to one table with errors naming the file and field."""

    def __init__(self, path: str, where: str, table: object) -> None:
        if not isinstance(table, Mapping):
            raise SourceError(
                _where(path, f"{where}: expected a table, got {type(table).__name__}")
            )
        self.path = path
        self.where = where
        self.table: Mapping[str, Any] = table
        self.used: set[str] = set()

    def err(self, key: str, problem: str) -> SourceError:
        return SourceError(_where(self.path, f"{self.where}.{key}: {problem}"))

    def _convert(self, key: str, convert: Callable[[Any], _T]) -> _T:
        self.used.add(key)
        try:
            return convert(self.table[key])
        except (ValueError, TypeError, AddressError) as exc:
            raise self.err(key, cut(str(exc), 200)) from None

    def get(self, key: str, convert: Callable[[Any], _T], default: _T) -> _T:
        if key not in self.table:
            self.used.add(key)
            return default
        return self._convert(key, convert)

    def require(self, key: str, convert: Callable[[Any], _T]) -> _T:
        if key not in self.table:
            raise self.err(key, "missing")
        return self._convert(key, convert)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.err(unknown[0], "unknown key")


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {quote(value)}")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {quote(value)}")
    return value


def _opt_int(value: object) -> int | None:
    return None if value is None else parse_int(value)


def _bdf(value: object) -> BDF:
    return BDF.parse(_str(value))


def _header_type(value: object) -> int:
    names = {"normal": 0, "endpoint": 0, "bridge": 1, "cardbus": 2}
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()]
    n = parse_int(value)
    if n not in (0, 1, 2):
        raise ValueError(f"header type must be 0 (normal), 1 (bridge) or 2 (CardBus), got {n}")
    return n


_ACS_FORMS = "expected 'absent', 'unknown' or a table {cap, ctrl}, got "


def _acs(value: object) -> Acs:
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("absent", "none", "no"):
            return Acs.absent()
        if key == "unknown":
            return Acs.unknown()
        raise ValueError(_ACS_FORMS + quote(value))
    if isinstance(value, Mapping):
        extra = set(value) - {"cap", "ctrl", "fw_ctrl"}
        if extra:
            raise ValueError(f"unknown key {quote(sorted(extra)[0])} (cap, ctrl, fw_ctrl)")
        if "cap" not in value or "ctrl" not in value:
            raise ValueError("an ACS table needs both cap and ctrl")
        cap, ctrl = parse_int(value["cap"]), parse_int(value["ctrl"])
        fw = parse_int(value["fw_ctrl"]) if "fw_ctrl" in value else None
        for name, reg in (("cap", cap), ("ctrl", ctrl), ("fw_ctrl", fw)):
            if reg is not None:
                check_bits(reg, U16, name)
        return Acs.present(cap, ctrl, fw)
    raise ValueError(_ACS_FORMS + quote(value))


def _fact(value: object) -> Fact:
    return Fact.from_text(_str(value))


def _facts(names: tuple[str, ...], value: object) -> dict[str, Fact]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table of facts ({', '.join(names)})")
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(f"unknown fact {quote(unknown[0])} (one of: {', '.join(names)})")
    return {key: _fact(item) for key, item in value.items()}


def _device_facts(value: object) -> DeviceFacts:
    facts = DeviceFacts()
    for key, fact in _facts(DEVICE_FACTS, value).items():
        facts = facts.with_fact(key, fact)
    return facts


def _lanes(value: object) -> int | None:
    width = _opt_int(value)
    if width is not None and not 0 <= width <= 64:
        raise ValueError(f"{show_int(width)} lanes is out of range (0-64)")
    return width


def _link(path: str, where: str, value: object) -> Link:
    r = _Reader(path, where, value)
    link = Link(
        speed=r.get("speed", _str, None),
        width=r.get("width", _lanes, None),
        max_speed=r.get("max_speed", _str, None),
        max_width=r.get("max_width", _lanes, None),
    )
    r.finish()
    return link


def _bars(path: str, where: str, value: object) -> tuple[Bar, ...]:
    if not isinstance(value, list):
        raise SourceError(_where(path, f"{where}: expected an array of tables"))
    bars = []
    seen: set[int] = set()
    for i, item in enumerate(value):
        r = _Reader(path, f"{where}[{i}]", item)
        index = r.require("index", parse_int)
        if not 0 <= index <= 16:
            raise r.err("index", f"resource index {index} out of range (0-16)")
        if index in seen:
            raise r.err("index", f"resource {index} given twice")
        seen.add(index)
        kind = r.get("kind", lambda v: BarKind(_str(v).lower()), BarKind.MEM)
        size = r.require("size", lambda v: parse_int(v, sizes=True))
        if size <= 0:
            raise r.err("size", "must be positive")
        if size > 1 << 64:
            raise r.err("size", f"{show_int(size)} is larger than the 64-bit address space")
        start = r.require("start", parse_int)
        try:
            check_span(start, size)
        except ValueError as exc:
            raise r.err("start", str(exc)) from None
        bus_address = r.get("bus_address", _opt_int, None)
        if bus_address is not None:
            try:
                check_span(bus_address, size)
            except ValueError as exc:
                raise r.err("bus_address", str(exc)) from None
        bars.append(
            Bar(
                index=index,
                start=start,
                size=size,
                kind=kind,
                prefetchable=r.get("prefetchable", _bool, False),
                is_64bit=r.get("is_64bit", _bool, False),
                bus_address=bus_address,
            )
        )
        r.finish()
    return tuple(sorted(bars, key=lambda b: b.index))


def _p2pmem(path: str, where: str, value: object) -> P2pMem:
    r = _Reader(path, where, value)
    size = r.require("size", lambda v: parse_int(v, sizes=True))
    mem = P2pMem(
        size=size,
        available=r.get("available", lambda v: parse_int(v, sizes=True), size),
        published=r.get("published", _bool, True),
        bar=r.get("bar", _opt_int, None),
        bar_inferred=r.get("bar_inferred", _bool, False),
    )
    r.finish()
    if not 0 <= mem.size < 1 << 64:
        raise r.err("size", f"{show_int(mem.size)} is not a size (0 to 2^64 - 1)")
    if mem.available > mem.size or mem.available < 0:
        raise r.err(
            "available", f"{show_int(mem.available)} must lie between 0 and size ({mem.size})"
        )
    if mem.bar is not None and not 0 <= mem.bar <= 5:
        raise r.err("bar", f"{show_int(mem.bar)} is not a BAR (0-5)")
    return mem


def _check_p2pmem(r: _Reader, mem: P2pMem, bars: tuple[Bar, ...]) -> None:
    """The pool fits the BAR it names (``pci_p2pdma_add_resource()`` takes part of one BAR).

    A file may list only some BARs: a pool whose BAR is not listed, or that
    names none, is not checked.
    """
    bar = next((b for b in bars if b.index == mem.bar), None)
    if bar is None:
        return
    if bar.kind is not BarKind.MEM:
        raise r.err("p2pmem", f"bar {mem.bar}: an I/O BAR cannot hold p2pmem")
    if mem.size > bar.size:
        raise r.err(
            "p2pmem", f"size {mem.size:,} is larger than BAR {mem.bar} ({bar.size:,} bytes)"
        )


def _device(path: str, index: int, table: object, bridges: set[BDF]) -> PciDevice:
    where = f"device[{index}]"
    if isinstance(table, Mapping) and isinstance(table.get("bdf"), str):
        where = f"device[{index}] ({table['bdf']})"
    r = _Reader(path, where, table)
    bdf = r.require("bdf", _bdf)
    vendor, device = r.require("id", _parse_ids)
    sub = r.get("subsystem", _parse_ids, None)
    pcie_type = r.get("pcie_type", lambda v: PcieType.from_token(_str(v)), None)
    header = r.get("header_type", _header_type, -1)
    if header == -1:
        bridge_like = pcie_type is not None and (
            pcie_type.is_port or pcie_type in (PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE)
        )
        header = 1 if bdf in bridges or bridge_like else 0
    class_code = r.get("class", lambda v: check_bits(parse_int(v), U24), 0)
    revision = r.get("revision", lambda v: check_bits(parse_int(v), U8), 0)
    numa_node = r.get("numa_node", _opt_int, None)
    if numa_node is not None and not 0 <= numa_node <= 0xFFFF:
        raise r.err("numa_node", f"{show_int(numa_node)} is not a NUMA node (0-65535)")
    iommu_group = r.get("iommu_group", _opt_int, None)
    if iommu_group is not None and not 0 <= iommu_group < 1 << 31:
        raise r.err("iommu_group", f"{show_int(iommu_group)} is not an IOMMU group number")
    bars = _bars(path, f"{where}.bars", r.table["bars"]) if "bars" in r.table else ()
    p2pmem = _p2pmem(path, f"{where}.p2pmem", r.table["p2pmem"]) if "p2pmem" in r.table else None
    if p2pmem is not None:
        _check_p2pmem(r, p2pmem, bars)
    dev = PciDevice(
        bdf=bdf,
        vendor=vendor,
        device=device,
        class_code=class_code,
        revision=revision,
        header_type=header,
        multifunction=r.get("multifunction", _bool, False),
        subsystem_vendor=None if sub is None else sub[0],
        subsystem_device=None if sub is None else sub[1],
        pcie_type=pcie_type,
        acs=r.get("acs", _acs, Acs.absent()),
        parent=r.get("parent", _bdf, None),
        physfn=r.get("physfn", _bdf, None),
        driver=r.get("driver", _str, None),
        numa_node=numa_node,
        iommu_group=iommu_group,
        link=_link(path, f"{where}.link", r.table["link"]) if "link" in r.table else Link(),
        bars=bars,
        p2pmem=p2pmem,
        label=r.get("label", _str, None),
        notes=tuple(r.get("notes", lambda v: [_str(x) for x in v], [])),
        facts=r.get("facts", _device_facts, DeviceFacts()),
        placeholder=r.get("placeholder", _bool, False),
    )
    # Files written before provenance was recorded mark an inferred type this way.
    if r.get("pcie_type_inferred", _bool, False) and not dev.facts.pcie_type.is_inferred:
        dev = dev.with_fact("pcie_type", Fact.inferred("the topology file marks it inferred"))
    r.used.update({"link", "bars", "p2pmem"})
    r.finish()
    return dev


#: What a topology file without these platform keys stands for.
_PLATFORM_DEFAULTS = (
    ("cpu", ("cpu_vendor", "cpu_family"), "GenuineIntel family 6, p2pview's default"),
    ("iommu", ("iommu",), "unknown"),
    ("cmdline", ("cmdline",), "empty (no pci= parameters)"),
)


def _platform(path: str, table: object) -> Platform:
    r = _Reader(path, "platform", table)
    given = set(r.table)
    empty: dict[str, Fact] = {}
    facts = r.get("facts", lambda v: _facts(PLATFORM_FACTS, v), empty)
    plat = Platform(
        arch=r.get("arch", _str, "x86_64"),
        cpu_vendor=r.get("cpu_vendor", _str, "GenuineIntel"),
        cpu_family=r.get("cpu_family", lambda v: check_bits(parse_int(v), U16), 6),
        cpu_model_name=r.get("cpu_model", _str, None),
        kernel=r.get("kernel", _str, None),
        iommu=r.get("iommu", lambda v: IommuMode(_str(v).lower()), IommuMode.UNKNOWN),
        cmdline=r.get("cmdline", _str, ""),
        hostname=r.get("hostname", _str, None),
    )
    r.finish()
    return plat.replace(facts=_platform_facts(given, facts))


def _platform_facts(given: set[str], facts: Mapping[str, Fact]) -> PlatformFacts:
    """Facts the file states, or "assumed" for the platform keys it leaves out."""
    out = PlatformFacts()
    for name, keys, default in _PLATFORM_DEFAULTS:
        if not given.intersection(keys):
            out = out.with_fact(name, Fact.assumed(f"the topology file does not say; {default}"))
    for name, fact in facts.items():
        out = out.with_fact(name, fact)
    return out


def _offset(value: object) -> int:
    """A CPU-to-bus address offset: within 64 bits either way."""
    offset = parse_int(value)
    if not -(1 << 64) < offset < 1 << 64:
        raise ValueError(f"{show_int(offset)} does not fit 64 bits")
    return offset


def _host_bridge(path: str, index: int, table: object) -> HostBridge:
    r = _Reader(path, f"host_bridge[{index}]", table)
    hb = HostBridge(
        root=r.require("root", lambda v: RootBus.parse(_str(v))),
        mem_offset=r.get("mem_offset", _offset, 0),
        numa_node=r.get("numa_node", _opt_int, None),
        label=r.get("label", _str, None),
        root_functions=r.get("root_functions", _fact, Fact.read()),
    )
    r.finish()
    return hb


def topology_from_mapping(data: Mapping[str, Any], path: str) -> Topology:
    """Build a topology from a parsed TOML/JSON document."""
    top = _Reader(path, "(top level)", data)
    fmt = top.get("format", _str, FORMAT_TAG)
    if fmt != FORMAT_TAG:
        raise top.err("format", f"unsupported format {fmt!r} (this p2pview reads {FORMAT_TAG})")
    name = top.get("name", _str, Path(path).stem)
    description = top.get("description", _str, "")
    platform = _platform(path, data.get("platform", {}))
    raw_devices = data.get("device", [])
    raw_hbs = data.get("host_bridge", [])
    top.used.update({"platform", "device", "host_bridge"})
    top.finish()
    if not isinstance(raw_devices, list) or not raw_devices:
        raise SourceError(_where(path, "device: at least one [[device]] table is needed"))
    if not isinstance(raw_hbs, list):
        raise SourceError(_where(path, "host_bridge: expected an array of tables"))
    bridges: set[BDF] = set()
    for item in raw_devices:
        if isinstance(item, Mapping) and isinstance(item.get("parent"), str):
            with contextlib.suppress(AddressError):  # reported with its field later
                bridges.add(BDF.parse(item["parent"]))
    devices = [_device(path, i, item, bridges) for i, item in enumerate(raw_devices)]
    host_bridges = [_host_bridge(path, i, item) for i, item in enumerate(raw_hbs)]
    try:
        return Topology(
            devices, host_bridges, platform, name=name, description=description, source=path
        )
    except TopologyError as exc:
        raise SourceError(_where(path, str(exc))) from None


def parse_topology_text(text: str, path: str) -> Topology:
    """Parse a topology document; JSON if it starts with ``{``, else TOML.

    The document's shape (nesting, number lengths, dotted keys) is checked
    before the standard library parses it; see :mod:`p2pview.sources.checks`.
    """
    is_json = text.lstrip().startswith("{")
    data = load_json(text, path) if is_json else load_toml(text, path)
    if not isinstance(data, dict):
        raise SourceError(f"{path}: line 1: the JSON document must be an object")
    try:
        return topology_from_mapping(data, path)
    except SourceError as exc:
        raise SourceError(_add_line(str(exc), path, text, data, is_json)) from None


def load_json(text: str, path: str) -> Any:
    """``json.loads`` after :func:`~p2pview.sources.checks.check_json_shape`.

    Raises:
        SourceError: ``"PATH: line N: ..."``.
    """
    import json  # here: bundled topologies are TOML, and json is 1.3 ms of start-up

    try:
        check_json_shape(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        # check_json_shape's "line N: ..." (the parser's own limits are never reached).
        raise SourceError(f"{path}: {exc}") from None


_TABLE_RE = re.compile(r"^(device|host_bridge)\[(\d+)\]|^(platform)\b|^device ([0-9a-f:.]+):")


def _add_line(message: str, path: str, text: str, data: Mapping[str, Any], is_json: bool) -> str:
    """Put the line of the table at fault after the file name, when it can be found."""
    field = message.removeprefix(f"{path}: ")
    m = _TABLE_RE.match(field)
    line: int | None = None
    if m and m[1]:
        line = _nth_table_line(text, m[1], int(m[2]), is_json)
    elif m and m[3]:
        line = _nth_table_line(text, "platform", 0, is_json)
    elif m and m[4]:
        devices = data.get("device", [])
        indexed = list(enumerate(devices if isinstance(devices, list) else []))
        if "duplicate address" in field:
            indexed.reverse()  # the second occurrence is the one at fault
        for index, item in indexed:
            try:
                same = isinstance(item, Mapping) and BDF.parse(str(item.get("bdf"))) == BDF.parse(
                    m[4]
                )
            except AddressError:
                same = False
            if same:
                line = _nth_table_line(text, "device", index, is_json)
                break
    elif field.startswith("(top level)"):
        line = 1
    return f"{path}: line {line}: {field}" if line else message


def _nth_table_line(text: str, table: str, n: int, is_json: bool) -> int | None:
    """Line of the n-th ``[[table]]`` (TOML) or the n-th entry's first key (JSON).

    Falls back to the line that assigns the array inline (``device = [...]``)
    or, failing that, the first line naming the table.
    """
    lines = text.splitlines()
    if is_json:
        key = {"device": '"bdf"', "host_bridge": '"root"', "platform": '"platform"'}[table]
        hits = [i for i, line in enumerate(lines, 1) if key in line]
    else:
        brackets = r"\[\s*" if table == "platform" else r"\[\[\s*"
        header = re.compile(rf"^\s*{brackets}[\"']?{table}[\"']?\s*\]")
        hits = [i for i, line in enumerate(lines, 1) if header.match(line)]
    if n < len(hits):
        return hits[n]
    inline = re.compile(rf"^\s*[\"']?{table}[\"']?\s*=")
    named = [i for i, line in enumerate(lines, 1) if inline.match(line)]
    named = named or [i for i, line in enumerate(lines, 1) if table in line]
    return named[0] if named else None


def read_topology_file(path: Path) -> Topology:
    """Read a ``.toml`` or ``.json`` topology file (a regular file, within the text cap)."""
    return parse_topology_text(read_text_bounded(path, TEXT), str(path))


def looks_like_topology(text: str) -> bool:
    """Whether a text is plausibly a p2pview topology (for format detection)."""
    head = text.lstrip()[:4096]
    return "[[device]]" in head or '"device"' in head or FORMAT_TAG in head
