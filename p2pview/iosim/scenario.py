"""An O_DIRECT scenario: the buffer, the I/O, the block device, the DMA setup.

Written in TOML next to the topologies (``topologies/scenarios/*.toml``) or
built from ``p2pview trace SOURCE --provider ... --client ...``. README's
"Scenarios" section documents every key; this module is the reference.

Every value is checked where it is read, against what the kernel accepts
(``blk_validate_limits()`` in block/blk-settings.c for the queue limits,
``UIO_MAXIOV`` for iovecs) or against what the simulator can hold (a buffer of
at most :data:`MAX_BUFFER` bytes); a bad value is one line naming the file and
the key. A negative file offset is not refused here: the kernel refuses it
with EINVAL (``ksys_pread64()``), and so does the simulated call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from p2pview.iosim.datapath import DataPathKernel
from p2pview.kernel.version import VersionError
from p2pview.model import BDF, AddressError, Topology
from p2pview.sources.checks import SourceError, cut, parse_int, quote, show_int
from p2pview.sources.readfile import SCENARIO, load_toml, read_text_bounded

PAGE_SIZE = 4096
#: The largest buffer simulated: page arrays of 1,048,576 entries (a 1 GiB I/O
#: takes about a second to step through).
MAX_BUFFER = 4 << 30
#: Iovecs in one readv/writev (UIO_MAXIOV).
UIO_MAXIOV = 1024
#: Page frame numbers: 52 bits of physical address above the 12-bit page offset.
MAX_PFN = (1 << 52) - 1
_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
#: A loff_t: file offsets are signed 64-bit.
_LOFF_MIN, _LOFF_MAX = -(1 << 63), (1 << 63) - 1


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
    #: The provider's p2pmem/size (the CMB size nvme registered), instead of the topology's.
    pool_size: int | None = None
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
    """The block queue's limits the scenario sets; None: as the kernel computes them.

    ``p2pview.iosim.limits.kernel_limits()`` derives the others from the kernel
    release, the controller (``[nvme]``) and the DMA mode. ``max_sectors_kb``
    is what a user writes to sysfs (``max_user_sectors``); the others replace the
    driver's value (a what-if).
    """

    logical_block_size: int = 512
    max_sectors_kb: int | None = None
    max_segments: int | None = None
    max_segment_size: int | None = None
    seg_boundary_mask: int | None = None
    virt_boundary_mask: int | None = None
    #: None: as the kernel sets it (nvme-pci: yes from v6.2; other queues: no).
    p2pdma: bool | None = None


@dataclass(frozen=True, slots=True)
class NvmeSetup:
    """The controller's SGL support and MDTS, and the driver's threshold."""

    sgl: bool = True
    sgl_threshold: int = 32768
    #: Identify Controller MDTS (0: no limit; None: not given, taken as 0 and said).
    mdts: int | None = None


@dataclass(frozen=True)
class Scenario:
    """Everything one trace needs besides the topology."""

    name: str
    description: str
    source: str
    #: The kernel the scenario names (its verdicts' and data path's); None: the session's.
    kernel: DataPathKernel | None
    buffer: tuple[BufferSegment, ...]
    client: BDF
    write: bool = False
    file_offset: int = 0
    length: int | None = None
    iovecs: tuple[Iovec, ...] = ()
    #: Byte offsets into the I/O where the file's extents change: the
    #: direct-I/O code starts a new bio there (iomap maps one extent at a time).
    extent_boundaries: tuple[int, ...] = ()
    #: The I/O goes to the block device itself (``/dev/nvmeXnY``: block/fops.c
    #: ``blkdev_direct_IO()``), not to a file on a filesystem (iomap direct I/O).
    blockdev: bool = False
    target: TargetKind = TargetKind.NVME
    limits: QueueLimits = field(default_factory=QueueLimits)
    dma: DmaMode = DmaMode.DIRECT
    #: ``dma`` was given (``[dma] mode``, ``--iommu``, the form). When it was
    #: not, the topology's IOMMU decides (``translated``: dma-iommu).
    dma_given: bool = False
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


def _int(
    value: Any,
    where: str,
    path: str,
    sizes: bool = True,
    low: int | None = None,
    high: int | None = None,
    why: str = "",
) -> int:
    """An integer key, optionally within ``[low, high]`` (``why`` names the rule)."""
    try:
        number = parse_int(value, sizes=sizes)
    except ValueError as exc:
        raise SourceError(f"{path}: {where}: {exc}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        lo = "" if low is None else _shown(low)
        hi = "" if high is None else _shown(high)
        span = f"from {lo} to {hi}" if lo and hi else f"at least {lo}" if lo else f"at most {hi}"
        shown = _shown(number)
        raise SourceError(f"{path}: {where}: {shown} is out of range ({span}{why})")
    return number


def _shown(number: int) -> str:
    """Small numbers in decimal, addresses and masks in hex."""
    return str(number) if abs(number) < 1 << 20 else show_int(number)


def _str(value: Any, where: str, path: str) -> str:
    if not isinstance(value, str):
        raise SourceError(f"{path}: {where}: expected a string, got {quote(value)}")
    return value


def _kernel(value: Any, path: str) -> DataPathKernel:
    try:
        return DataPathKernel.parse(_str(value, "kernel", path))
    except VersionError as exc:
        raise SourceError(f"{path}: kernel: {exc}") from None


def _bool(value: Any, where: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise SourceError(f"{path}: {where}: expected true or false, got {quote(value)}")
    return value


def _list(value: Any, where: str, path: str, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise SourceError(f"{path}: {where}: expected an array, got {quote(value)}")
    if len(value) > most:
        raise SourceError(f"{path}: {where}: {len(value):,} entries; at most {most:,}")
    return value


def _mask(value: Any, where: str, path: str, low: int, rule: str) -> int:
    """A boundary mask: ``2^n - 1`` within 64 bits, at least ``low``."""
    mask = _int(value, where, path, sizes=False, low=low, high=_U64, why=rule)
    if mask & (mask + 1):
        raise SourceError(f"{path}: {where}: {show_int(mask)} is not a mask (2^n - 1)")
    return mask


def _bdf(value: Any, where: str, path: str) -> BDF:
    try:
        return BDF.parse(_str(value, where, path))
    except AddressError:
        raise SourceError(
            f"{path}: {where}: not a PCI address: {quote(value)} (expected [DDDD:]BB:DD.F)"
        ) from None


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, path: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise SourceError(f"{path}: {where}.{cut(extra[0], 40)}: unknown key")


_BUFFER_KEYS = {
    "kind",
    "size",
    "provider",
    "bar",
    "region_address",
    "region_bus_address",
    "pool_offset",
    "pool_size",
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
        kind = BufferKind(_str(_get(table, "kind", where, path), f"{where}.kind", path))
    except ValueError:
        kinds = ", ".join(k.value for k in BufferKind)
        raise SourceError(f"{path}: {where}.kind: one of {kinds}") from None
    size = _int(
        _get(table, "size", where, path), f"{where}.size", path, low=1, high=MAX_BUFFER,
        why="; p2pview simulates buffers up to 4 GiB",
    )  # fmt: skip
    pages = (size + PAGE_SIZE - 1) // PAGE_SIZE
    provider = None
    if kind is not BufferKind.RAM:
        provider = _bdf(_get(table, "provider", where, path), f"{where}.provider", path)
    layout = _str(table.get("layout", "contiguous"), f"{where}.layout", path)
    if layout not in ("contiguous", "scattered"):
        raise SourceError(f"{path}: {where}.layout: contiguous or scattered")
    raw_pfns = _list(table.get("pfns", []), f"{where}.pfns", path, pages)
    pfns = tuple(_int(p, f"{where}.pfns", path, sizes=False, low=0, high=MAX_PFN) for p in raw_pfns)
    if pfns and len(pfns) * PAGE_SIZE < size:
        raise SourceError(f"{path}: {where}.pfns: {len(pfns)} frames cannot hold {size} bytes")

    def opt(key: str, high: int = _U64, why: str = "") -> int | None:
        if key not in table:
            return None
        return _int(table[key], f"{where}.{key}", path, low=0, high=high, why=why)

    pool_offset = opt("pool_offset")
    if pool_offset is not None and pool_offset % PAGE_SIZE:
        raise SourceError(
            f"{path}: {where}.pool_offset: {pool_offset:#x} is not a multiple of the page size"
            " (the pool hands out whole pages)"
        )
    base_pfn = opt("base_pfn", MAX_PFN - pages, "; the buffer's frames must fit 52 bits")
    pool_size = (
        None if "pool_size" not in table else check_pool_size(table["pool_size"], where, path)
    )
    return BufferSegment(
        kind=kind,
        size=size,
        provider=provider,
        bar=opt("bar", 5, "; BARs 0-5"),
        region_address=opt("region_address"),
        region_bus_address=opt("region_bus_address"),
        pool_offset=pool_offset,
        pool_size=pool_size,
        shared=_bool(table.get("shared", True), f"{where}.shared", path),
        pfns=pfns,
        layout=layout,
        base_pfn=0x100000 if base_pfn is None else base_pfn,
    )


def check_pool_size(value: Any, where: str, path: str) -> int:
    """A segment's ``pool_size`` (``where`` names the segment): whole pages, up to 4 GiB.

    The scenario reader and the TUI's form both check it here.
    """
    pool_size = _int(
        value, f"{where}.pool_size", path, low=0, high=MAX_BUFFER,
        why="; p2pview simulates pools up to 4 GiB",
    )  # fmt: skip
    if pool_size < PAGE_SIZE or pool_size % PAGE_SIZE:
        raise SourceError(
            f"{path}: {where}.pool_size: {pool_size:#x} is not a positive multiple of the page"
            " size (the pool hands out whole pages)"
        )
    return pool_size


def nvme_setup(nvme: Mapping[str, Any], path: str) -> NvmeSetup:
    """The ``[nvme]`` table: SGL support, sgl_threshold, MDTS (the reader's and the form's)."""
    return NvmeSetup(
        sgl=_bool(nvme.get("sgl", True), "nvme.sgl", path),
        # nvme's sgl_threshold module parameter: an unsigned int, 0 turns SGLs off.
        sgl_threshold=_int(
            nvme.get("sgl_threshold", 32768), "nvme.sgl_threshold", path, low=0, high=_U32
        ),
        # Identify Controller MDTS is one byte; 0 means no limit.
        mdts=None
        if "mdts" not in nvme
        else _int(nvme["mdts"], "nvme.mdts", path, sizes=False, low=0, high=255),
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
    source = _str(_get(data, "topology", "(top level)", path), "topology", path)
    if "/" in source or source.endswith((".toml", ".json")):
        source = str(base / source) if not Path(source).is_absolute() else source
    raw_buffer = _get(data, "buffer", "(top level)", path)
    if not isinstance(raw_buffer, list) or not raw_buffer:
        raise SourceError(f"{path}: buffer: at least one [[buffer]] table is needed")
    buffer = tuple(_segment(item, i, path) for i, item in enumerate(raw_buffer))
    total = sum(seg.size for seg in buffer)
    if total > MAX_BUFFER:
        raise SourceError(
            f"{path}: buffer: {total:,} bytes in all; p2pview simulates buffers up to 4 GiB"
        )
    io = data.get("io", {})
    target = data.get("target", {})
    dma = data.get("dma", {})
    nvme = data.get("nvme", {})
    for name, table in (("io", io), ("target", target), ("dma", dma), ("nvme", nvme)):
        if not isinstance(table, Mapping):
            raise SourceError(f"{path}: {name}: expected a table")
    _check_keys(
        io, {"op", "file_offset", "length", "iovecs", "extent_boundaries", "path"}, "io", path
    )
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
    _check_keys(nvme, {"sgl", "sgl_threshold", "mdts"}, "nvme", path)
    op = _str(io.get("op", "read"), "io.op", path)
    if op not in ("read", "write"):
        raise SourceError(f"{path}: io.op: read or write")
    iovecs = []
    for i, v in enumerate(_list(io.get("iovecs", []), "io.iovecs", path, UIO_MAXIOV)):
        where = f"io.iovecs[{i}]"
        if not isinstance(v, Mapping):
            raise SourceError(f"{path}: {where}: expected a table {{offset, length}}")
        _check_keys(v, {"offset", "length"}, where, path)
        offset = _int(_get(v, "offset", where, path), f"{where}.offset", path, low=0)
        length = _int(_get(v, "length", where, path), f"{where}.length", path, low=1)
        iovecs.append(Iovec(offset, length))
    limits = QueueLimits()
    changes = _limits(target, path)
    if "p2pdma" in target:
        changes["p2pdma"] = _bool(target["p2pdma"], "target.p2pdma", path)
    try:
        kind = TargetKind(_str(target.get("kind", "nvme"), "target.kind", path))
    except ValueError:
        raise SourceError(f"{path}: target.kind: nvme or other") from None
    try:
        mode = DmaMode(_str(dma.get("mode", "direct"), "dma.mode", path))
        mode_given = "mode" in dma
    except ValueError:
        raise SourceError(
            f"{path}: dma.mode: one of {', '.join(m.value for m in DmaMode)}"
        ) from None
    boundaries = _list(io.get("extent_boundaries", []), "io.extent_boundaries", path, 4096)
    io_path = _str(io.get("path", "file"), "io.path", path)
    if io_path not in ("file", "blockdev"):
        raise SourceError(
            f"{path}: io.path: file (on a filesystem) or blockdev (the block device itself)"
        )
    scenario = Scenario(
        name=_str(data.get("name", Path(path).stem), "name", path),
        description=_str(data.get("description", ""), "description", path),
        source=source,
        kernel=None if "kernel" not in data else _kernel(data["kernel"], path),
        buffer=buffer,
        client=_bdf(_get(target, "client", "target", path), "target.client", path),
        write=op == "write",
        # A negative offset is the kernel's to refuse (EINVAL), within a loff_t.
        file_offset=_int(
            io.get("file_offset", 0), "io.file_offset", path, low=_LOFF_MIN, high=_LOFF_MAX
        ),
        length=None if "length" not in io else _int(io["length"], "io.length", path, low=1),
        iovecs=tuple(iovecs),
        extent_boundaries=tuple(
            _int(b, "io.extent_boundaries", path, low=1, high=MAX_BUFFER) for b in boundaries
        ),
        blockdev=io_path == "blockdev",
        target=kind,
        limits=replace(limits, **changes),
        dma=mode,
        dma_given=mode_given,
        nvme=nvme_setup(nvme, path),
        cpu=None if "cpu" not in data else _str(data["cpu"], "cpu", path),
        cmdline=None if "cmdline" not in data else _str(data["cmdline"], "cmdline", path),
        path=path,
    )
    validate(scenario, path)
    return scenario


def _limits(target: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The queue limits a scenario sets, each within what ``blk_validate_limits()`` accepts."""
    changes: dict[str, Any] = {}
    if "logical_block_size" in target:
        lbs = _int(
            target["logical_block_size"], "target.logical_block_size", path, low=512,
            high=65536, why="; blk_validate_block_size()",
        )  # fmt: skip
        if lbs & (lbs - 1):
            raise SourceError(
                f"{path}: target.logical_block_size: {lbs} is not a power of two"
                " (blk_validate_block_size())"
            )
        changes["logical_block_size"] = lbs
    lbs = changes.get("logical_block_size", QueueLimits().logical_block_size)
    if "max_sectors_kb" in target:
        # At least a page (BLK_MIN_SEGMENT_SIZE) and a logical block; sectors fit a u32.
        changes["max_sectors_kb"] = _int(
            target["max_sectors_kb"], "target.max_sectors_kb", path, sizes=False,
            low=max(PAGE_SIZE, lbs) // 1024, high=_U32 // 2,
        )  # fmt: skip
    if "max_segments" in target:
        changes["max_segments"] = _int(
            target["max_segments"], "target.max_segments", path, sizes=False, low=1, high=0xFFFF
        )
    if "max_segment_size" in target:
        changes["max_segment_size"] = _int(
            target["max_segment_size"], "target.max_segment_size", path, low=PAGE_SIZE,
            high=_U32, why="; BLK_MIN_SEGMENT_SIZE to UINT_MAX",
        )  # fmt: skip
    if "seg_boundary_mask" in target:
        changes["seg_boundary_mask"] = _mask(
            target["seg_boundary_mask"], "target.seg_boundary_mask", path, PAGE_SIZE - 1,
            "; at least BLK_MIN_SEGMENT_SIZE - 1",
        )  # fmt: skip
    if "virt_boundary_mask" in target:
        changes["virt_boundary_mask"] = _mask(
            target["virt_boundary_mask"], "target.virt_boundary_mask", path, 0, ""
        )
    return changes


def validate(scenario: Scenario, path: str) -> None:
    """Checks that need the whole scenario (the topology is checked when it is loaded)."""
    total = scenario.buffer_size
    if total > MAX_BUFFER:
        raise SourceError(
            f"{path}: the buffer is {total:,} bytes; p2pview simulates buffers up to 4 GiB"
        )
    if scenario.length is not None and scenario.length > total:
        raise SourceError(f"{path}: io.length: {scenario.length} exceeds the {total}-byte buffer")
    for i, v in enumerate(scenario.iovecs):
        if v.offset < 0 or v.length <= 0 or v.offset + v.length > total:
            raise SourceError(
                f"{path}: io.iovecs[{i}]: bytes {v.offset}-{v.offset + v.length} are outside the"
                f" {total}-byte buffer"
            )


def check_client(scenario: Scenario, topology: Topology) -> None:
    """The client is a function whose queue the I/O can go to (an NVMe one for ``nvme``).

    A bridge or switch port has no namespace and no block queue; a NIC or GPU
    has no NVMe namespace. A class of 0 (not in the source) is not held against it.

    Raises:
        SourceError: naming the client and what it is.
    """
    where = scenario.path or scenario.source
    if scenario.client not in topology:
        raise SourceError(f"{where}: client {scenario.client} is not in the topology")
    dev = topology[scenario.client]
    what = f"class {dev.class_code:06x}" if dev.class_code else "no class recorded"
    if dev.is_bridge:
        raise SourceError(
            f"{where}: client {dev.bdf} is a bridge or switch port ({what}): it has no block"
            " queue to read from; give the NVMe (or other storage) function"
        )
    if not dev.class_code:
        return
    if scenario.target is TargetKind.NVME and dev.class_code >> 8 != 0x0108:
        raise SourceError(
            f"{where}: client {dev.bdf} is not an NVMe controller ({what}; NVMe is 0108xx):"
            " the I/O reads an NVMe namespace; give an NVMe function"
            + (" (or target.kind = 'other' for other storage)" if scenario.path else "")
        )
    if scenario.target is TargetKind.OTHER and dev.base_class != 0x01:
        raise SourceError(
            f"{where}: client {dev.bdf} is not a storage controller ({what}; mass storage is"
            " 01xxxx): the I/O goes to a block device's queue"
        )


def read_scenario(path: Path) -> Scenario:
    """Read a scenario TOML file (a regular file of at most 4 MiB; shape checked first)."""
    text = read_text_bounded(path, SCENARIO)
    return scenario_from_mapping(load_toml(text, str(path)), str(path))


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
    iommu: bool | None = None,
    kernel: DataPathKernel | None = None,
    cpu: str | None = None,
    cmdline: str | None = None,
) -> Scenario:
    """The scenario ``p2pview trace SOURCE --provider P --client C --size N`` describes.

    A buffer of ``offset + size`` bytes mmap'd from the provider's p2pmem (the
    v5 series' ``/dev/nvmeX`` before v6.2 with ``--kernel 5.17-series``), and
    one O_DIRECT read (or write) of ``size`` bytes starting ``offset`` bytes
    into it. ``iommu`` None: the topology's IOMMU decides the DMA mode.
    """
    kind = BufferKind.NVME_CMB if kernel is not None and kernel.series else BufferKind.P2PMEM
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
        dma_given=iommu is not None,
        cpu=cpu,
        cmdline=cmdline,
    )
