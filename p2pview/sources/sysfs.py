"""Read a PCI tree from sysfs: the live host, a gathered copy, or a capture archive.

Layout expected at the top of the tree (``/`` for the live host):
``sys/bus/pci/devices/`` symlinks into ``sys/devices/``, and ``proc/cpuinfo``,
``proc/cmdline``, ``proc/sys/kernel/osrelease``. That is also the
hwloc-gather-topology layout.

Everything is read through a :class:`~p2pview.sources.tree.Tree`: links
resolve inside the tree, and only regular files are read, within the cap of
their kind (:mod:`p2pview.sources.readfile`), so a capture cannot make the
reader leave it, block or read without bound. The reader only ever opens
files for reading, and never touches ``p2pmem/allocate`` (opening it does
nothing, but mapping it allocates). Values are range-checked as they are
read. Anything missing, refused or out of range is recorded in the device's
``notes`` (and, where the decision uses it, as an assumed fact); a device
that vanishes mid-scan, or whose link leads nowhere inside the tree, is
dropped with a note on the topology.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from contextlib import nullcontext
from pathlib import Path

from p2pview.model import (
    BDF,
    Acs,
    AcsPresence,
    AddressError,
    Bar,
    BarKind,
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
from p2pview.sources.checks import (
    SourceError,
    check_json_shape,
    check_number_text,
    cut,
    quote,
    show_int,
)
from p2pview.sources.configspace import ConfigError, ConfigInfo, decode
from p2pview.sources.readfile import ATTRIBUTE, CONFIG, CPUINFO, PROC_LINE, Kind, ReadRefused
from p2pview.sources.readfile import MANIFEST as MANIFEST_KIND
from p2pview.sources.report import ScanReport as ScanReport  # the readers import it from here
from p2pview.sources.tree import (
    Dangling,
    DirView,
    DiskTree,
    Missing,
    NodeType,
    Tree,
    Unreadable,
)

_BDF_NAME = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_HB_NAME = re.compile(r"^pci[0-9a-f]{4,8}:[0-9a-f]{2}$")

#: The files the reader opens in a function's directory; a capture keeps exactly these.
DEVICE_FILES = (
    "config",
    "vendor",
    "device",
    "subsystem_vendor",
    "subsystem_device",
    "class",
    "revision",
    "current_link_speed",
    "current_link_width",
    "max_link_speed",
    "max_link_width",
    "numa_node",
    "resource",
    "p2pmem/size",
    "p2pmem/available",
    "p2pmem/published",
)
#: The symlinks it reads (only their target's last component counts).
DEVICE_LINKS = ("driver", "iommu_group", "physfn")
#: Files outside the device tree.
PROC_FILES = (
    "proc/cpuinfo",
    "proc/cmdline",
    "proc/sys/kernel/osrelease",
    "proc/sys/kernel/hostname",
)
#: The manifest a p2pview capture carries at its top.
MANIFEST = "p2pview-capture.json"

IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200
IORESOURCE_PREFETCH = 0x2000
IORESOURCE_MEM_64 = 0x100000


#: Functions a tree may list (large hosts have a few thousand).
MAX_FUNCTIONS = 100_000
#: Longest text value kept from an attribute (link speeds, driver names are short).
_MAX_TEXT = 64


class _Files:
    """Bounded reads of one function's directory; records what failed as notes.

    ``view`` is ``None`` when the directory itself could not be listed
    (``why`` says why). Files are opened relative to the directory, once it
    is listed: a 2,000-function host means some 30,000 small reads.
    """

    def __init__(self, view: DirView | None, why: str = "") -> None:
        self.view = view
        self.why = why
        self.notes: list[str] = []

    def raw(self, name: str, kind: Kind = ATTRIBUTE) -> bytes | None:
        view = self.view
        if view is None:
            return None
        head, _, leaf = name.rpartition("/")
        if head:
            view = view.subdir(head)
            if view is None:
                return None
        try:
            return view.read(leaf, kind)
        except ReadRefused as exc:
            self.notes.append(str(exc).removeprefix(f"{self.view.rel}/" if self.view else ""))
            return None

    def text(self, name: str) -> str | None:
        data = self.raw(name)
        return None if data is None else data.decode("ascii", errors="replace").strip()

    def short_text(self, name: str) -> str | None:
        """A one-word value (a link speed): longer text is noted and dropped."""
        raw = self.text(name)
        if raw is not None and len(raw) > _MAX_TEXT:
            self.notes.append(f"{name}: {quote(raw)} is not a value this attribute holds; not used")
            return None
        return raw

    def number(self, name: str, base: int, low: int, high: int) -> int | None:
        """An integer attribute in ``[low, high]``; anything else is noted and dropped."""
        raw = self.text(name)
        if raw is None or raw == "":
            return None
        try:
            check_number_text(raw)
            value = int(raw, base)
        except ValueError:
            what = "hex number" if base == 16 else "number"
            self.notes.append(f"{name}: not a {what}: {quote(raw)}")
            return None
        if not low <= value <= high:
            self.notes.append(
                f"{name}: {show_int(value)} is out of range ({show_int(low)} to"
                f" {show_int(high)}); not used"
            )
            return None
        return value

    def hex(self, name: str, bits: int = 16) -> int | None:
        return self.number(name, 16, 0, (1 << bits) - 1)

    def dec(self, name: str, low: int = 0, high: int = 0xFFFF) -> int | None:
        return self.number(name, 10, low, high)

    def link_name(self, name: str) -> str | None:
        target = self.view.readlink(name) if self.view is not None else None
        if target is None:
            return None
        leaf = target.rstrip("/").rpartition("/")[2]
        if len(leaf) > _MAX_TEXT:
            self.notes.append(f"{name}: link to {quote(leaf)}: not a name it can have; not used")
            return None
        return leaf

    def is_dir(self, name: str) -> bool:
        return self.view is not None and self.view.type_of(name) is NodeType.DIR


def _parent_dir(rel: str) -> str:
    return rel.rpartition("/")[0]


def _leaf(rel: str) -> str:
    return rel.rpartition("/")[2]


def device_dirs(tree: Tree, report: ScanReport) -> dict[BDF, tuple[str, BDF | None, RootBus]]:
    """Every PCI function's directory, its parent from the nesting, and its root bus.

    Directories are paths relative to the tree's top, links resolved inside it.
    """
    bus_dir = "sys/bus/pci/devices"
    paths: list[str] = []
    if tree.is_dir(bus_dir):
        try:
            with tree.dir(bus_dir) as view:
                entries = sorted(view.entries)
        except (Dangling, Unreadable) as exc:
            raise SourceError(f"{tree.label}: {bus_dir}: cannot be listed ({exc})") from None
        if len(entries) > MAX_FUNCTIONS:
            raise SourceError(
                f"{tree.label}: {bus_dir}: {len(entries):,} entries; p2pview reads hosts of up to"
                f" {MAX_FUNCTIONS:,} functions"
            )
        skipped: list[str] = []
        for entry in entries:
            if not _BDF_NAME.match(entry):
                skipped.append(entry)
                continue
            try:
                parts = tree.resolve(f"{bus_dir}/{entry}")
            except Missing:
                if tree.mutable:
                    report.vanished.append(entry)
                else:
                    report.problems.append(
                        f"{bus_dir}/{entry}: a dangling link (its target is not in the"
                        " capture); function not read"
                    )
                continue
            except Dangling as exc:
                report.problems.append(
                    f"{bus_dir}/{entry}: a link that {exc.why}; function not read"
                )
                continue
            target = "/".join(parts)
            if tree.kind_at(parts) is not NodeType.DIR or not _BDF_NAME.match(_leaf(target)):
                report.problems.append(
                    f"{bus_dir}/{entry}: leads to {quote(target or '/', 80)}, not a function's"
                    " directory; function not read"
                )
                continue
            paths.append(target)
        if skipped:
            report.problems.append(
                f"{bus_dir}: {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} not named"
                f" like a PCI function (DDDD:BB:DD.F), skipped: "
                + ", ".join(quote(e) for e in skipped[:3])
            )
    else:
        if not tree.is_dir("sys/devices"):
            raise SourceError(f"{tree.label}: no sys/bus/pci/devices or sys/devices directory")
        for dirpath, dirnames in tree.walk("sys/devices"):
            keep = [d for d in dirnames if _BDF_NAME.match(d) or _HB_NAME.match(d)]
            dirnames[:] = (
                keep if dirpath != "sys/devices" else [d for d in dirnames if d != "virtual"]
            )
            paths.extend(f"{dirpath}/{d}" for d in keep if _BDF_NAME.match(d))
    return _dirs_from_paths(paths, report, note_unlisted=True)


def chain_dirs(
    tree: Tree, report: ScanReport, wanted: Collection[BDF]
) -> dict[BDF, tuple[str, BDF | None, RootBus]] | None:
    """The directories a decision about ``wanted`` reads, and no others.

    Each wanted function, its physical function if it is a VF, the bridges
    above them (the directory nesting is the kernel's upstream chain), and
    every function directly on their root buses (the host-bridge whitelist
    looks at one of those; ``pci_host_bridge_dev()``). ``None`` when a wanted
    function has no usable ``sys/bus/pci/devices`` entry: the caller reads the
    whole tree, so that what is said about it is what a full read says.
    """
    bus_dir = "sys/bus/pci/devices"
    if not tree.is_dir(bus_dir):
        return None
    paths: list[str] = []
    for bdf in wanted:
        for name in (f"{bus_dir}/{bdf}", f"{bus_dir}/{bdf}/physfn"):
            try:
                parts = tree.resolve(name)
            except (Missing, Dangling):
                if name.endswith("physfn"):
                    continue
                return None
            target = "/".join(parts)
            if tree.kind_at(parts) is not NodeType.DIR or not _BDF_NAME.match(_leaf(target)):
                return None
            paths.append(target)
    for path in list(paths):
        top = _parent_dir(path)
        while _BDF_NAME.match(_leaf(top)):
            top = _parent_dir(top)
        if not _HB_NAME.match(_leaf(top)):
            continue
        try:
            with tree.dir(top) as view:
                names = sorted(e for e, kind in view.entries.items() if kind is NodeType.DIR)
        except (Dangling, Unreadable):
            continue
        paths.extend(f"{top}/{e}" for e in names if _BDF_NAME.match(e))
    return _dirs_from_paths(paths, report, note_unlisted=False)


def _dirs_from_paths(
    paths: list[str], report: ScanReport, *, note_unlisted: bool
) -> dict[BDF, tuple[str, BDF | None, RootBus]]:
    """Each function directory's BDF, its parent from the nesting, and its root bus.

    A bridge that is a directory above a listed function is added (it is on
    the kernel's chain); ``note_unlisted`` says so in the report, for a whole
    listing in which it was missing (a trimmed capture).
    """
    found: dict[BDF, tuple[str, BDF | None, RootBus]] = {}
    listed = {_leaf(p) for p in paths}
    for path in list(paths):
        above = _parent_dir(path)
        while _BDF_NAME.match(_leaf(above)):
            if _leaf(above) not in listed:
                listed.add(_leaf(above))
                paths.append(above)
                if note_unlisted:
                    report.problems.append(
                        f"{_leaf(above)}: not in sys/bus/pci/devices but a directory above"
                        f" {_leaf(path)}; kept as the bridge the kernel's chain passes through"
                    )
            above = _parent_dir(above)
    for path in paths:
        bdf = BDF.parse(_leaf(path))
        if bdf in found:
            continue  # two links to one directory, or a name listed twice
        parent: BDF | None = None
        root_bus: RootBus | None = None
        above = _leaf(_parent_dir(path))
        if _BDF_NAME.match(above):
            parent = BDF.parse(above)
        elif _HB_NAME.match(above):
            root_bus = RootBus.parse(above)
        else:
            report.problems.append(
                f"{bdf}: directory {quote(path, 80)} is not below a PCI bridge or host bridge;"
                " treated as on a root bus"
            )
        found[bdf] = (path, parent, root_bus or bdf.root_bus)
    # A parent directory that is not itself a listed function (it vanished):
    # keep the child, on its own bus.
    for bdf, (path, parent, _root) in list(found.items()):
        if parent is not None and parent not in found:
            report.problems.append(f"{bdf}: parent {parent} is not a listed PCI function")
            found[bdf] = (path, None, bdf.root_bus)
    return found


#: Lines a sysfs ``resource`` file has: one per resource (17 with SR-IOV and bridge windows).
_MAX_RESOURCE_LINES = 64
_U64 = (1 << 64) - 1
#: How sysfs prints a resource the function does not have (start, end and flags 0).
_UNUSED_RESOURCE = "0x0000000000000000 0x0000000000000000 0x0000000000000000"


def _bars(files: _Files) -> tuple[Bar, ...]:
    text = files.text("resource")
    if not text:
        return ()
    bars = []
    lines = text.splitlines()
    if len(lines) > _MAX_RESOURCE_LINES:
        files.notes.append(
            f"resource: {len(lines):,} lines; sysfs prints one per resource; only the first"
            f" {_MAX_RESOURCE_LINES} read"
        )
    for index, line in enumerate(lines[:_MAX_RESOURCE_LINES]):
        if line.startswith(_UNUSED_RESOURCE):
            continue  # most lines: a resource the function does not have
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            if max(len(p) for p in parts[:3]) > 40:
                check_number_text(max(parts[:3], key=len))
            start, end, flags = (int(p, 16) for p in parts[:3])
        except ValueError:
            files.notes.append(f"resource line {index}: not three hex numbers: {quote(line)}")
            continue
        if end <= start and not (start == end and start):
            continue
        if not (0 <= start <= _U64 and 0 <= end <= _U64 and 0 <= flags <= _U64):
            files.notes.append(
                f"resource line {index}: {quote(line)} does not fit 64-bit addresses; not used"
            )
            continue
        kind = (
            BarKind.IO if flags & IORESOURCE_IO else BarKind.MEM if flags & IORESOURCE_MEM else None
        )
        if kind is None:
            continue
        bars.append(
            Bar(
                index=index,
                start=start,
                size=end - start + 1,
                kind=kind,
                prefetchable=bool(flags & IORESOURCE_PREFETCH),
                is_64bit=bool(flags & IORESOURCE_MEM_64),
            )
        )
    return tuple(bars)


def _p2pmem(files: _Files, bars: tuple[Bar, ...]) -> P2pMem | None:
    """The ``p2pmem/`` group; sizes checked against the memory BARs that must hold them."""
    if not files.is_dir("p2pmem"):
        return None
    size = files.dec("p2pmem/size", 0, _U64)
    available = files.dec("p2pmem/available", 0, _U64)
    published = files.dec("p2pmem/published", 0, 1)
    if size is None:
        files.notes.append("p2pmem/size: missing or unusable; taken as 0")
        size = 0
    # pci_p2pdma_add_resource() adds (part of) memory BARs; the pool cannot be larger.
    room = sum(b.size for b in bars if b.kind is BarKind.MEM and b.index < 6)
    if bars and size > room:
        files.notes.append(
            f"p2pmem/size: {size:,} bytes is more than the function's memory BARs hold"
            f" ({room:,} bytes); taken as 0"
        )
        size = available = 0
    if available is not None and available > size:
        files.notes.append(
            f"p2pmem/available: {available:,} bytes is more than p2pmem/size ({size:,});"
            " taken as the size"
        )
        available = size
    return P2pMem(size=size, available=available or 0, published=bool(published))


def infer_pcie_type(dev: PciDevice, parent: PciDevice | None) -> PcieType | None:
    """A port type from class and position, for functions whose capability was unreadable."""
    if dev.is_bridge and (dev.class_code >> 8) == 0x0604:
        if parent is None:
            return PcieType.ROOT_PORT
        if parent.pcie_type in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM):
            return PcieType.UPSTREAM
        if parent.pcie_type is PcieType.UPSTREAM:
            return PcieType.DOWNSTREAM
        return None
    if parent is not None and parent.pcie_type in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM):
        return PcieType.ENDPOINT
    return None


def with_inferred_pcie_type(dev: PciDevice, parent: PciDevice | None) -> PciDevice:
    """``dev`` with :func:`infer_pcie_type`'s guess, marked inferred; unchanged if none."""
    guess = infer_pcie_type(dev, parent)
    if guess is None:
        return dev
    if parent is None:
        where = "on a root bus"
    else:
        role = "a bridge" if parent.pcie_type is None else parent.pcie_type.token.replace("_", " ")
        where = f"below {parent.bdf} ({role})"
    what = "a PCI-to-PCI bridge" if dev.is_bridge else "not a bridge"
    return dev.replace(pcie_type=guess).with_fact(
        "pcie_type", Fact.inferred(f"its class and place: {what}, {where}")
    )


def _read_device(
    tree: Tree, bdf: BDF, rel: str, parent: BDF | None, report: ScanReport
) -> PciDevice | None:
    try:
        view: DirView | None = tree.canonical_dir(rel)
        why = ""
    except Missing:
        if tree.mutable:
            report.vanished.append(str(bdf))
        else:
            report.problems.append(f"{bdf}: directory {quote(rel, 80)} missing; not read")
        return None
    except Dangling as exc:
        report.problems.append(f"{bdf}: {exc.why}; not read")
        return None
    except Unreadable as exc:
        view, why = None, str(exc)
    with view if view is not None else nullcontext():
        files = _Files(view, why)
        return _device_from(files, bdf, parent, report)


def _device_from(
    files: _Files, bdf: BDF, parent: BDF | None, report: ScanReport
) -> PciDevice | None:
    cfg = files.raw("config", CONFIG)
    info: ConfigInfo | None = None
    if cfg is not None and len(cfg) >= 0x10:
        try:
            info = decode(cfg)
        except ConfigError as exc:
            files.notes.append(str(exc))
    elif cfg is not None:
        files.notes.append(f"config: only {len(cfg)} bytes")
    vendor = files.hex("vendor")
    device = files.hex("device")
    if files.view is None:
        files.notes.append(f"directory unreadable ({files.why}): nothing about it could be read")
    elif vendor is None and device is None and info is None:
        files.notes.append("vendor/device unreadable")
    if info is not None and info.acs.presence.value == "unknown":
        report.unreadable_config.append(bdf)
    if info is None:
        files.notes.append("config space unreadable: header type, PCIe port type and ACS unknown")
        report.unreadable_config.append(bdf)
    class_code = files.hex("class", 24)
    revision = files.hex("revision", 8)
    link = Link(
        speed=files.short_text("current_link_speed"),
        width=files.dec("current_link_width", 0, 64),
        max_speed=files.short_text("max_link_speed"),
        max_width=files.dec("max_link_width", 0, 64),
    )
    physfn = files.link_name("physfn")
    group = files.link_name("iommu_group")
    # numa_node is -1 for "none"; MAX_NUMNODES is at most 1024 (NODES_SHIFT 10).
    numa = files.dec("numa_node", -1, 0xFFFF)
    bars = _bars(files)
    dev = PciDevice(
        bdf=bdf,
        vendor=vendor if vendor is not None else (info.vendor if info else 0xFFFF),
        device=device if device is not None else (info.device if info else 0xFFFF),
        class_code=class_code if class_code is not None else (info.class_code if info else 0),
        revision=revision if revision is not None else (info.revision if info else 0),
        header_type=info.header_type if info else None,
        multifunction=info.multifunction if info else False,
        subsystem_vendor=files.hex("subsystem_vendor")
        if info is None or info.subsystem_vendor is None
        else info.subsystem_vendor,
        subsystem_device=files.hex("subsystem_device")
        if info is None or info.subsystem_device is None
        else info.subsystem_device,
        pcie_type=info.pcie_type if info else None,
        acs=info.acs if info else Acs.unknown(),
        parent=parent,
        physfn=BDF.parse(physfn) if physfn and _BDF_NAME.match(physfn) else None,
        driver=files.link_name("driver"),
        numa_node=numa if numa is not None and numa >= 0 else None,
        iommu_group=int(group) if group and group.isascii() and group.isdigit() else None,
        link=link,
        bars=bars,
        p2pmem=_p2pmem(files, bars),
        notes=(*(info.notes if info else ()), *files.notes),
    )
    if dev.header_type is None and dev.class_code >> 8 == 0x0604:
        dev = dev.replace(header_type=1)
    if vendor is None and device is None and info is None:
        why = (
            f"the directory is unreadable ({files.why})"
            if files.view is None
            else "vendor, device and config are unreadable"
        )
        dev = dev.with_fact("ids", Fact.assumed(f"{why}; ffff:ffff stands in"))
        if class_code is None:
            dev = dev.with_fact("class_code", Fact.assumed(f"{why}; class 0 (not a bridge)"))
    if dev.acs.presence is AcsPresence.UNKNOWN:
        why = (
            f"config space gave {len(cfg)} bytes (a read without root stops at 64)"
            if cfg is not None and info is not None
            else "config space unreadable"
        )
        dev = dev.with_fact("acs", Fact.assumed(f"{why}; no ACS redirect assumed"))
    return dev


def _cpuinfo(tree: Tree, problems: list[str]) -> tuple[str, str, int, str | None] | None:
    """(arch, vendor_id, family, model name) from ``proc/cpuinfo``; ``None`` if unusable."""
    raw = _read_bytes(tree, "proc/cpuinfo", CPUINFO, problems)
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the boot CPU's block is enough: cpu_data(0)
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip()[:_MAX_TEXT], value.strip()[: _MAX_TEXT * 2])
    if "vendor_id" in fields:
        family_text = fields.get("cpu family", "0")
        family = int(family_text) if family_text.isdigit() and len(family_text) <= 4 else 0
        return ("x86_64", fields["vendor_id"], family, fields.get("model name"))
    if "CPU implementer" in fields:
        return (
            "aarch64",
            f"ARM implementer {fields['CPU implementer']}",
            0,
            fields.get("model name"),
        )
    if fields.get("cpu", "").upper().startswith("POWER"):
        return ("ppc64le", "IBM", 0, fields.get("cpu"))
    return None


def _read_bytes(
    tree: Tree, name: str, kind: Kind, problems: list[str] | None = None
) -> bytes | None:
    """A file outside the device directories; a refusal becomes a problem note."""
    try:
        return tree.read(name, kind)
    except ReadRefused as exc:
        if problems is not None:
            problems.append(str(exc))
        return None


def _read(tree: Tree, name: str, problems: list[str] | None = None) -> str | None:
    raw = _read_bytes(tree, name, PROC_LINE, problems)
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    return text


def iommu_mode(cmdline: str, devices: list[PciDevice], tree: Tree) -> IommuMode:
    """IOMMU mode from the command line and whether devices have IOMMU groups."""
    params = cmdline.split()
    if not any(d.iommu_group is not None for d in devices):
        return IommuMode.OFF if devices else IommuMode.UNKNOWN
    if "iommu=pt" in params or "iommu.passthrough=1" in params:
        return IommuMode.PASSTHROUGH
    group = next(d.iommu_group for d in devices if d.iommu_group is not None)
    kind = _read(tree, f"sys/kernel/iommu_groups/{group}/type")
    if kind == "identity":
        return IommuMode.PASSTHROUGH
    return IommuMode.TRANSLATED


def as_tree(source: Path | Tree, *, live: bool = False) -> Tree:
    """``source`` itself, or a :class:`DiskTree` of the directory."""
    return source if isinstance(source, Tree) else DiskTree(source, live=live)


def read_sysfs(
    source: Path | Tree, *, live: bool = False, only: Collection[BDF] | None = None
) -> tuple[Topology, ScanReport]:
    """Read the PCI tree in ``source``: a directory (``/`` for this host) or a :class:`Tree`.

    ``only`` reads just what a decision about those functions uses
    (:func:`chain_dirs`; a one-pair ``explain`` on a 2,000-function host reads
    a dozen functions, not all of them), and says so in the report; the whole
    tree when one of them is not listed.
    """
    tree = as_tree(source, live=live)
    report = ScanReport()
    report.problems.extend(tree.notes)
    dirs = chain_dirs(tree, report, only) if only else None
    if dirs is None:
        dirs = device_dirs(tree, report)
    else:
        report.problems.insert(
            0,
            f"only the {len(dirs)} functions this query's decision uses were read (the"
            " functions asked about, the bridges above them and the functions on their root"
            " buses)",
        )
    devices: list[PciDevice] = []
    for bdf, (path, parent, _rb) in sorted(dirs.items()):
        dev = _read_device(tree, bdf, path, parent, report)
        if dev is not None:
            devices.append(dev)
    present = {d.bdf for d in devices}
    by_bdf = {d.bdf: d for d in devices}
    parents = {d.parent for d in devices if d.parent is not None}
    fixed: list[PciDevice] = []
    for dev in devices:
        if dev.bdf in parents and dev.header_type == 0:
            # The kernel put functions below it, so it scanned it as a bridge:
            # the directory nesting outranks a config header that says otherwise.
            dev = dev.replace(
                header_type=1,
                notes=(
                    *dev.notes,
                    "config space says header type 0, but functions sit below it in sysfs;"
                    " taken as a bridge",
                ),
            )
        if dev.parent is not None and dev.parent not in present:
            dev = dev.replace(parent=None, notes=(*dev.notes, f"parent {dev.parent} vanished"))
        if dev.physfn is not None and (
            dev.physfn not in present or by_bdf[dev.physfn].parent != dev.parent
        ):
            dev = dev.replace(physfn=None, notes=(*dev.notes, f"physfn {dev.physfn} not usable"))
        fixed.append(dev)
    # Port types for functions whose PCIe capability could not be read.
    by_bdf = {d.bdf: d for d in fixed}
    for bdf in sorted(by_bdf, key=lambda b: _depth(b, by_bdf)):
        dev = by_bdf[bdf]
        if dev.pcie_type is None and dev.acs.presence.value == "unknown":
            above = by_bdf.get(dev.parent) if dev.parent else None
            by_bdf[bdf] = with_inferred_pcie_type(dev, above)
    devices = [by_bdf[b] for b in sorted(by_bdf)]
    roots = sorted({d.bdf.root_bus for d in devices if d.parent is None})
    host_bridges = [HostBridge(rb) for rb in roots]

    cpu = _cpuinfo(tree, report.problems)
    facts = PlatformFacts()
    if cpu is None:
        default = Platform()
        cpu = (default.arch, default.cpu_vendor, default.cpu_family, None)
        facts = facts.with_fact(
            "cpu",
            Fact.assumed(
                "proc/cpuinfo is missing or has no CPU this reader knows;"
                f" {default.cpu_vendor} family {default.cpu_family}, p2pview's default"
            ),
        )
    else:
        facts = facts.with_fact("cpu", Fact.read("proc/cpuinfo"))
    arch, vendor, family, model = cpu
    if live:
        arch = os.uname().machine or arch
    cmdline_text = _read(tree, "proc/cmdline", report.problems)
    cmdline = cmdline_text or ""
    facts = facts.with_fact(
        "cmdline",
        Fact.read("proc/cmdline")
        if cmdline_text is not None
        else Fact.assumed("proc/cmdline is missing; taken as empty (no pci= parameters)"),
    )
    kernel = _read(tree, "proc/sys/kernel/osrelease", report.problems)
    if kernel is not None and len(kernel) > _MAX_TEXT * 2:
        report.problems.append(
            f"proc/sys/kernel/osrelease: {quote(kernel)}: not a release; not used"
        )
        kernel = None
    if kernel is None and live:
        kernel = os.uname().release
    facts = facts.with_fact(
        "kernel", Fact.read("proc/sys/kernel/osrelease" if not live else "this host")
    )
    hostname = _read(tree, "proc/sys/kernel/hostname", report.problems)
    if hostname is not None and len(hostname) > _MAX_TEXT:
        report.problems.append(f"proc/sys/kernel/hostname: {quote(hostname)}: too long; not used")
        hostname = None
    # os.uname(), not platform and socket: the same answers on Linux, without
    # their imports on the path of every capture read.
    hostname = hostname or (os.uname().nodename if live else None)
    plat = Platform(
        arch=arch,
        cpu_vendor=vendor,
        cpu_family=family,
        cpu_model_name=model,
        kernel=kernel,
        iommu=iommu_mode(cmdline, devices, tree),
        cmdline=cmdline,
        hostname=hostname,
        facts=facts.with_fact(
            "iommu", Fact.inferred("the IOMMU groups in sysfs and the kernel command line")
        ),
    )
    root_name = Path(tree.label).name
    name = hostname or root_name or "host"
    description = f"sysfs of {'this host' if live else tree.label}"
    manifest = _manifest(tree, report.problems)
    if manifest is not None:
        who = (
            "as root"
            if manifest.get("root") is True
            else "WITHOUT root (config space cut to 64 bytes)"
        )
        description = (
            f"p2pview capture of {_field(manifest, 'hostname') or name}, kernel"
            f" {_field(manifest, 'kernel')}, taken {_field(manifest, 'date')} {who}"
            f" by p2pview {_field(manifest, 'p2pview_version')}"
        )
    try:
        topo = Topology(
            devices, host_bridges, plat, name=name, description=description, source=tree.label
        )
    except (TopologyError, AddressError) as exc:  # pragma: no cover - the fixes above hold
        raise SourceError(f"{tree.label}: {cut(str(exc), 200)}") from None
    return topo, report


def _manifest(tree: Tree, problems: list[str]) -> dict[str, object] | None:
    raw = _read_bytes(tree, MANIFEST, MANIFEST_KIND, problems)
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        check_json_shape(text)
        data = json.loads(text)
    except (ValueError, RecursionError):
        problems.append(f"{MANIFEST}: not a JSON object; the capture's manifest is not used")
        return None
    return data if isinstance(data, dict) else None


def _field(manifest: dict[str, object], key: str) -> str:
    """A manifest field as the description shows it: a short string, or ``?``."""
    value = manifest.get(key)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return cut(str(value), _MAX_TEXT)
    return "?"


def _depth(bdf: BDF, by_bdf: dict[BDF, PciDevice]) -> int:
    depth = 0
    node = by_bdf.get(bdf)
    while node is not None and node.parent is not None and depth < 64:
        node = by_bdf.get(node.parent)
        depth += 1
    return depth


def is_sysfs_root(source: Path | Tree) -> bool:
    """Whether ``source`` holds a gathered (or live) sysfs tree."""
    tree = as_tree(source)
    return tree.is_dir("sys/bus/pci/devices") or tree.is_dir("sys/devices")
