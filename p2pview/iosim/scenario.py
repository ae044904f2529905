"""An O_DIRECT scenario: the buffer, the I/O, the block device, the DMA setup.

Written in TOML next to the topologies (``topologies/scenarios/*.toml``) or
built from ``p2pview trace SOURCE --provider ... --client ...``. README's
"Scenarios" section documents every key; this module is the reference.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from p2pview.model import BDF, AddressError
from p2pview.sources.topofile import SourceError, parse_int

PAGE_SIZE = 4096


class BufferKind(StrEnum):
    """What backs one segment of the user buffer."""

    #: mmap() of ``/sys/bus/pci/devices/<provider>/p2pmem/allocate`` (v6.2+).
    P2PMEM = "p2pmem"
    #: mmap() of ``/dev/nvmeX`` (the v5 series' ``nvme_dev_mmap``, pre-6.2).
    NVME_CMB = "nvme_cmb"
    #: mmap() of ``/sys/bus/pci/devices/<dev>/resourceN``: VM_IO|VM_PFNMAP, no struct pages.
    BAR_RESOURCE = "bar_resource"
    #: anonymous memory.
    RAM = "ram"


class DmaMode(StrEnum):
    """The client's DMA setup."""

    DIRECT = "direct"
    IOMMU = "iommu"
    #: dma-direct with swiotlb force-bounce (``swiotlb=force``).
    SWIOTLB = "swiotlb"


class TargetKind(StrEnum):
    """The block device the file lives on."""

    NVME = "nvme"
    #: a queue without P2PDMA support (SATA/AHCI, virtio-blk, dm, loop, ...).
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class BufferSegment:
    """One mmap of the user buffer; segments sit at consecutive user addresses."""

    kind: BufferKind
    size: int
    provider: BDF | None = None
    bar: int | None = None
    #: CPU address of the start of the provider's p2pmem (overrides the BAR).
    region_address: int | None = None
    #: Bus address of that start, when it differs from the host bridge's translation.
    region_bus_address: int | None = None
    #: Where in the pool the chunk lands (default: first fit after what is in use).
    pool_offset: int | None = None
    #: MAP_SHARED (the allocate file refuses MAP_PRIVATE).
    shared: bool = True
    #: RAM: explicit page frames, else ``contiguous`` from ``base_pfn`` or ``scattered``.
    pfns: tuple[int, ...] = ()
    layout: str = "contiguous"
    base_pfn: int = 0x100000


@dataclass(frozen=True, slots=True)
class Iovec:
    """One iovec of a readv/writev: a byte range of the buffer."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """The block queue's limits (what nvme-pci sets unless the scenario says otherwise)."""

    logical_block_size: int = 512
    max_sectors_kb: int = 1280
    max_segments: int | None = None
    max_segment_size: int = 0xFFFFFFFF
    seg_boundary_mask: int = 0xFFFFFFFF
    virt_boundary_mask: int = 0xFFF
    #: None: as the kernel sets it (nvme-pci: yes from v6.2; other queues: no).
    p2pdma: bool | None = None


@dataclass(frozen=True, slots=True)
class NvmeSetup:
    """The controller's SGL support and the driver's threshold."""

    sgl: bool = True
    sgl_threshold: int = 32768


@dataclass(frozen=True)
class Scenario:
    """Everything one trace needs besides the topology."""

    name: str
    description: str
    source: str
    kernel: str | None
    buffer: tuple[BufferSegment, ...]
    client: BDF
    write: bool = False
    file_offset: int = 0
    length: int | None = None
    iovecs: tuple[Iovec, ...] = ()
    #: Byte offsets into the I/O where the file's extents change: the
    #: direct-I/O code starts a new bio there (iomap maps one extent at a time).
    extent_boundaries: tuple[int, ...] = ()
    target: TargetKind = TargetKind.NVME
    limits: QueueLimits = field(default_factory=QueueLimits)
    dma: DmaMode = DmaMode.DIRECT
    nvme: NvmeSetup = field(default_factory=NvmeSetup)
    #: cmdline/cpu overrides for the decision engine (as the CLI's options).
    cpu: str | None = None
    cmdline: str | None = None
    path: str = ""

    @property
    def buffer_size(self) -> int:
        """Total bytes mapped."""
        return sum(seg.size for seg in self.buffer)

    @property
    def io_vectors(self) -> tuple[Iovec, ...]:
        """The iovecs, or one vector over ``length`` bytes of the buffer."""
        if self.iovecs:
            return self.iovecs
        return (Iovec(0, self.length if self.length is not None else self.buffer_size),)

    @property
    def io_length(self) -> int:
        """Bytes the I/O asks for."""
        return sum(v.length for v in self.io_vectors)

    def replace(self, **changes: Any) -> Scenario:
        """A copy with fields changed."""
        return replace(self, **changes)


def _get(table: Mapping[str, Any], key: str, where: str, path: str) -> Any:
    if key not in table:
        raise SourceError(f"{path}: {where}.{key}: missing")
    return table[key]


def _int(value: Any, where: str, path: str, sizes: bool = True) -> int:
    try:
        return parse_int(value, sizes=sizes)
    except ValueError as exc:
        raise SourceError(f"{path}: {where}: {exc}") from None


def _bdf(value: Any, where: str, path: str) -> BDF:
    try:
        return BDF.parse(str(value))
    except AddressError as exc:
        raise SourceError(f"{path}: {where}: {exc}") from None


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, path: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise SourceError(f"{path}: {where}.{extra[0]}: unknown key")


_BUFFER_KEYS = {
    "kind",
    "size",
    "provider",
    "bar",
    "region_address",
    "region_bus_address",
    "pool_offset",
    "shared",
    "pfns",
    "layout",
    "base_pfn",
}


def _segment(table: Any, index: int, path: str) -> BufferSegment:
    where = f"buffer[{index}]"
    if not isinstance(table, Mapping):
        raise SourceError(f"{path}: {where}: expected a table")
    _check_keys(table, _BUFFER_KEYS, where, path)
    try:
        kind = BufferKind(str(_get(table, "kind", where, path)))
    except ValueError:
        kinds = ", ".join(k.value for k in BufferKind)
        raise SourceError(f"{path}: {where}.kind: one of {kinds}") from None
    size = _int(_get(table, "size", where, path), f"{where}.size", path)
    if size <= 0:
        raise SourceError(f"{path}: {where}.size: must be positive")
    provider = None
    if kind is not BufferKind.RAM:
        provider = _bdf(_get(table, "provider", where, path), f"{where}.provider", path)
    layout = str(table.get("layout", "contiguous"))
    if layout not in ("contiguous", "scattered"):
        raise SourceError(f"{path}: {where}.layout: contiguous or scattered")
    pfns = tuple(_int(p, f"{where}.pfns", path, sizes=False) for p in table.get("pfns", ()))
    if pfns and len(pfns) * PAGE_SIZE < size:
        raise SourceError(f"{path}: {where}.pfns: {len(pfns)} frames cannot hold {size} bytes")

    def opt(key: str) -> int | None:
        return None if key not in table else _int(table[key], f"{where}.{key}", path)

    return BufferSegment(
        kind=kind,
        size=size,
        provider=provider,
        bar=opt("bar"),
        region_address=opt("region_address"),
        region_bus_address=opt("region_bus_address"),
        pool_offset=opt("pool_offset"),
        shared=bool(table.get("shared", True)),
        pfns=pfns,
        layout=layout,
        base_pfn=opt("base_pfn") or 0x100000,
    )


def scenario_from_mapping(data: Mapping[str, Any], path: str) -> Scenario:
    """Build a scenario from a parsed TOML document."""
    _check_keys(
        data,
        {
            "name",
            "description",
            "topology",
            "kernel",
            "cpu",
            "cmdline",
            "buffer",
            "io",
            "target",
            "dma",
            "nvme",
        },
        "(top level)",
        path,
    )
    base = Path(path).parent
    source = str(_get(data, "topology", "(top level)", path))
    if "/" in source or source.endswith((".toml", ".json")):
        source = str(base / source) if not Path(source).is_absolute() else source
    raw_buffer = _get(data, "buffer", "(top level)", path)
    if not isinstance(raw_buffer, list) or not raw_buffer:
        raise SourceError(f"{path}: buffer: at least one [[buffer]] table is needed")
    buffer = tuple(_segment(item, i, path) for i, item in enumerate(raw_buffer))
    io = data.get("io", {})
    target = data.get("target", {})
    dma = data.get("dma", {})
    nvme = data.get("nvme", {})
    for name, table in (("io", io), ("target", target), ("dma", dma), ("nvme", nvme)):
        if not isinstance(table, Mapping):
            raise SourceError(f"{path}: {name}: expected a table")
    _check_keys(io, {"op", "file_offset", "length", "iovecs", "extent_boundaries"}, "io", path)
    _check_keys(
        target,
        {
            "client",
            "kind",
            "logical_block_size",
            "max_sectors_kb",
            "max_segments",
            "max_segment_size",
            "seg_boundary_mask",
            "virt_boundary_mask",
            "p2pdma",
        },
        "target",
        path,
    )
    _check_keys(dma, {"mode"}, "dma", path)
    _check_keys(nvme, {"sgl", "sgl_threshold"}, "nvme", path)
    op = str(io.get("op", "read"))
    if op not in ("read", "write"):
        raise SourceError(f"{path}: io.op: read or write")
    iovecs = tuple(
        Iovec(
            _int(_get(v, "offset", f"io.iovecs[{i}]", path), f"io.iovecs[{i}].offset", path),
            _int(_get(v, "length", f"io.iovecs[{i}]", path), f"io.iovecs[{i}].length", path),
        )
        for i, v in enumerate(io.get("iovecs", ()))
    )
    limits = QueueLimits()
    changes: dict[str, Any] = {}
    for key in (
        "logical_block_size",
        "max_sectors_kb",
        "max_segments",
        "max_segment_size",
        "seg_boundary_mask",
        "virt_boundary_mask",
    ):
        if key in target:
            changes[key] = _int(target[key], f"target.{key}", path)
    if "p2pdma" in target:
        changes["p2pdma"] = bool(target["p2pdma"])
    try:
        kind = TargetKind(str(target.get("kind", "nvme")))
        mode = DmaMode(str(dma.get("mode", "direct")))
    except ValueError as exc:
        raise SourceError(f"{path}: {exc}") from None
    scenario = Scenario(
        name=str(data.get("name", Path(path).stem)),
        description=str(data.get("description", "")),
        source=source,
        kernel=None if "kernel" not in data else str(data["kernel"]),
        buffer=buffer,
        client=_bdf(_get(target, "client", "target", path), "target.client", path),
        write=op == "write",
        file_offset=_int(io.get("file_offset", 0), "io.file_offset", path),
        length=None if "length" not in io else _int(io["length"], "io.length", path),
        iovecs=iovecs,
        extent_boundaries=tuple(
            _int(b, "io.extent_boundaries", path) for b in io.get("extent_boundaries", ())
        ),
        target=kind,
        limits=replace(limits, **changes),
        dma=mode,
        nvme=NvmeSetup(
            sgl=bool(nvme.get("sgl", True)),
            sgl_threshold=_int(nvme.get("sgl_threshold", 32768), "nvme.sgl_threshold", path),
        ),
        cpu=None if "cpu" not in data else str(data["cpu"]),
        cmdline=None if "cmdline" not in data else str(data["cmdline"]),
        path=path,
    )
    validate(scenario, path)
    return scenario


def validate(scenario: Scenario, path: str) -> None:
    """Checks that need the whole scenario (the topology is checked when it is loaded)."""
    total = scenario.buffer_size
    if scenario.length is not None and scenario.length > total:
        raise SourceError(f"{path}: io.length: {scenario.length} exceeds the {total}-byte buffer")
    for i, v in enumerate(scenario.iovecs):
        if v.offset < 0 or v.length <= 0 or v.offset + v.length > total:
            raise SourceError(
                f"{path}: io.iovecs[{i}]: bytes {v.offset}-{v.offset + v.length} are outside the"
                f" {total}-byte buffer"
            )


def read_scenario(path: Path) -> Scenario:
    """Read a scenario TOML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{path}: invalid TOML: {exc}") from None
    return scenario_from_mapping(data, str(path))


def looks_like_scenario(text: str) -> bool:
    """A TOML text with ``[[buffer]]`` and ``[target]`` tables."""
    return "[[buffer]]" in text and "[target]" in text


def quick_scenario(
    source: str,
    provider: BDF,
    client: BDF,
    size: int,
    *,
    offset: int = 0,
    write: bool = False,
    iommu: bool = False,
    kernel: str | None = None,
    cpu: str | None = None,
    cmdline: str | None = None,
) -> Scenario:
    """The scenario ``p2pview trace SOURCE --provider P --client C --size N`` describes.

    A buffer of ``offset + size`` bytes mmap'd from the provider's p2pmem (the
    v5 series' ``/dev/nvmeX`` before v6.2 with ``--kernel 5.17-series``), and
    one O_DIRECT read (or write) of ``size`` bytes starting ``offset`` bytes
    into it.
    """
    series = kernel is not None and "series" in kernel.lower()
    kind = BufferKind.NVME_CMB if series else BufferKind.P2PMEM
    pages = (offset + size + PAGE_SIZE - 1) // PAGE_SIZE
    return Scenario(
        name=f"{provider.short()} -> {client.short()}",
        description=f"O_DIRECT {'write' if write else 'read'} of {size} bytes",
        source=source,
        kernel=kernel,
        buffer=(BufferSegment(kind, pages * PAGE_SIZE, provider=provider),),
        client=client,
        write=write,
        iovecs=(Iovec(offset, size),),
        dma=DmaMode.IOMMU if iommu else DmaMode.DIRECT,
        cpu=cpu,
        cmdline=cmdline,
    )
