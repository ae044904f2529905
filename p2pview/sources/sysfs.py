"""Read a PCI tree from sysfs: the live host, or a gathered copy under a directory.

Layout expected under ``root`` (``/`` for the live host): ``sys/bus/pci/devices/``
symlinks into ``sys/devices/``, and ``proc/cpuinfo``, ``proc/cmdline``,
``proc/sys/kernel/osrelease``. That is also the hwloc-gather-topology layout.

The reader only ever opens files for reading, and never touches
``p2pmem/allocate`` (opening it does nothing, but mapping it allocates).
Anything missing or unreadable is recorded in the device's ``notes``; a
device that vanishes mid-scan is dropped with a note on the topology.
"""

from __future__ import annotations

import json
import os
import platform as pyplatform
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from p2pview.model import (
    BDF,
    Acs,
    AcsPresence,
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
)
from p2pview.sources.configspace import ConfigError, ConfigInfo, decode
from p2pview.sources.topofile import SourceError

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


@dataclass
class ScanReport:
    """What the scan could not read, for the faces to say once."""

    unreadable_config: list[BDF] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Files:
    """Read-only file access under a device directory; records what failed.

    Plain string paths and ``os.open(O_RDONLY)``: a 2,000-function host means
    some 30,000 small reads, and pathlib's overhead would be most of the time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.prefix = str(path) + "/"
        self.notes: list[str] = []

    def raw(self, name: str, limit: int = 4096) -> bytes | None:
        try:
            fd = os.open(self.prefix + name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.notes.append(f"{name}: unreadable ({exc.strerror or exc})")
            return None
        try:
            return os.read(fd, limit)
        except OSError as exc:
            self.notes.append(f"{name}: unreadable ({exc.strerror or exc})")
            return None
        finally:
            os.close(fd)

    def text(self, name: str) -> str | None:
        data = self.raw(name, 1 << 16)
        return None if data is None else data.decode("ascii", errors="replace").strip()

    def hex(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw, 16)
        except ValueError:
            self.notes.append(f"{name}: not a hex number: {raw[:40]!r}")
            return None

    def dec(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw, 10)
        except ValueError:
            self.notes.append(f"{name}: not a number: {raw[:40]!r}")
            return None

    def link_name(self, name: str) -> str | None:
        try:
            return os.path.basename(os.readlink(self.prefix + name))
        except OSError:
            return None

    def is_dir(self, name: str) -> bool:
        return os.path.isdir(self.prefix + name)


def _resolve_in_root(root: Path, link: Path) -> Path | None:
    """Resolve a sysfs symlink inside ``root`` (gathered trees keep relative links)."""
    try:
        target = os.readlink(link)
    except OSError:
        return link if link.is_dir() else None
    if os.path.isabs(target):
        return root / target.lstrip("/")
    return Path(os.path.normpath(link.parent / target))


def device_dirs(root: Path, report: ScanReport) -> dict[BDF, tuple[Path, BDF | None, RootBus]]:
    """Every PCI function's directory, its parent from the nesting, and its root bus."""
    found: dict[BDF, tuple[Path, BDF | None, RootBus]] = {}
    bus_dir = root / "sys/bus/pci/devices"
    paths: list[Path] = []
    if bus_dir.is_dir():
        for entry in sorted(os.listdir(bus_dir)):
            if not _BDF_NAME.match(entry):
                continue
            target = _resolve_in_root(root, bus_dir / entry)
            if target is None or not target.is_dir():
                report.vanished.append(entry)
                continue
            paths.append(target)
    else:
        devices = root / "sys/devices"
        if not devices.is_dir():
            raise SourceError(f"{root}: no sys/bus/pci/devices or sys/devices directory")
        for dirpath, dirnames, _files in os.walk(devices):
            keep = [d for d in dirnames if _BDF_NAME.match(d) or _HB_NAME.match(d)]
            dirnames[:] = (
                keep if Path(dirpath) != devices else [d for d in dirnames if d != "virtual"]
            )
            paths.extend(Path(dirpath) / d for d in keep if _BDF_NAME.match(d))
    # Bridges that are directories on a listed function's path but have no
    # sys/bus/pci/devices entry (trimmed captures) are still on the kernel's chain.
    listed = {p.name for p in paths}
    for path in list(paths):
        above = path.parent
        while _BDF_NAME.match(above.name):
            if above.name not in listed:
                listed.add(above.name)
                paths.append(above)
                report.problems.append(
                    f"{above.name}: not in sys/bus/pci/devices but a directory above"
                    f" {path.name}; kept as the bridge the kernel's chain passes through"
                )
            above = above.parent
    for path in paths:
        bdf = BDF.parse(path.name)
        parent: BDF | None = None
        root_bus: RootBus | None = None
        above = path.parent
        if _BDF_NAME.match(above.name):
            parent = BDF.parse(above.name)
        elif _HB_NAME.match(above.name):
            root_bus = RootBus.parse(above.name)
        else:
            report.problems.append(
                f"{bdf}: directory {path} is not below a PCI bridge or host bridge;"
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


def _bars(files: _Files) -> tuple[Bar, ...]:
    text = files.text("resource")
    if not text:
        return ()
    bars = []
    for index, line in enumerate(text.splitlines()):
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            start, end, flags = (int(p, 16) for p in parts[:3])
        except ValueError:
            files.notes.append(f"resource line {index}: not three hex numbers")
            continue
        if end <= start and not (start == end and start):
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


def _p2pmem(files: _Files) -> P2pMem | None:
    if not files.is_dir("p2pmem"):
        return None
    size = files.dec("p2pmem/size")
    available = files.dec("p2pmem/available")
    published = files.dec("p2pmem/published")
    if size is None:
        files.notes.append("p2pmem/size: missing")
    return P2pMem(size=size or 0, available=available or 0, published=bool(published))


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


def _read_device(bdf: BDF, path: Path, parent: BDF | None, report: ScanReport) -> PciDevice | None:
    files = _Files(path)
    cfg = files.raw("config")
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
    if vendor is None and device is None and info is None:
        if not path.exists():
            report.vanished.append(str(bdf))
            return None
        files.notes.append("vendor/device unreadable")
    if info is not None and info.acs.presence.value == "unknown":
        report.unreadable_config.append(bdf)
    if info is None:
        files.notes.append("config space unreadable: header type, PCIe port type and ACS unknown")
        report.unreadable_config.append(bdf)
    class_code = files.hex("class")
    revision = files.hex("revision")
    link = Link(
        speed=files.text("current_link_speed"),
        width=files.dec("current_link_width"),
        max_speed=files.text("max_link_speed"),
        max_width=files.dec("max_link_width"),
    )
    physfn = files.link_name("physfn")
    group = files.link_name("iommu_group")
    numa = files.dec("numa_node")
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
        bars=_bars(files),
        p2pmem=_p2pmem(files),
        notes=(*(info.notes if info else ()), *files.notes),
    )
    if dev.header_type is None and dev.class_code >> 8 == 0x0604:
        dev = dev.replace(header_type=1)
    if dev.acs.presence is AcsPresence.UNKNOWN:
        why = (
            f"config space gave {len(cfg)} bytes (a read without root stops at 64)"
            if cfg is not None and info is not None
            else "config space unreadable"
        )
        dev = dev.with_fact("acs", Fact.assumed(f"{why}; no ACS redirect assumed"))
    return dev


def _cpuinfo(root: Path) -> tuple[str, str, int, str | None] | None:
    """(arch, vendor_id, family, model name) from ``proc/cpuinfo``; ``None`` if unusable."""
    try:
        text = (root / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the boot CPU's block is enough: cpu_data(0)
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "vendor_id" in fields:
        try:
            family = int(fields.get("cpu family", "0"))
        except ValueError:
            family = 0
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


def _read(root: Path, name: str) -> str | None:
    try:
        return (root / name).read_text(errors="replace").strip()
    except OSError:
        return None


def iommu_mode(cmdline: str, devices: list[PciDevice], root: Path) -> IommuMode:
    """IOMMU mode from the command line and whether devices have IOMMU groups."""
    params = cmdline.split()
    if not any(d.iommu_group is not None for d in devices):
        return IommuMode.OFF if devices else IommuMode.UNKNOWN
    if "iommu=pt" in params or "iommu.passthrough=1" in params:
        return IommuMode.PASSTHROUGH
    group = next(d.iommu_group for d in devices if d.iommu_group is not None)
    kind = _read(root, f"sys/kernel/iommu_groups/{group}/type")
    if kind == "identity":
        return IommuMode.PASSTHROUGH
    return IommuMode.TRANSLATED


def read_sysfs(root: Path, *, live: bool = False) -> tuple[Topology, ScanReport]:
    """Read the PCI tree under ``root`` (``/`` for this host)."""
    report = ScanReport()
    dirs = device_dirs(root, report)
    devices: list[PciDevice] = []
    for bdf, (path, parent, _rb) in sorted(dirs.items()):
        dev = _read_device(bdf, path, parent, report)
        if dev is not None:
            devices.append(dev)
    present = {d.bdf for d in devices}
    by_bdf = {d.bdf: d for d in devices}
    fixed: list[PciDevice] = []
    for dev in devices:
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

    cpu = _cpuinfo(root)
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
        arch = pyplatform.machine() or arch
    cmdline_text = _read(root, "proc/cmdline")
    cmdline = cmdline_text or ""
    facts = facts.with_fact(
        "cmdline",
        Fact.read("proc/cmdline")
        if cmdline_text is not None
        else Fact.assumed("proc/cmdline is missing; taken as empty (no pci= parameters)"),
    )
    kernel = _read(root, "proc/sys/kernel/osrelease")
    if kernel is None and live:
        kernel = pyplatform.release()
    facts = facts.with_fact(
        "kernel", Fact.read("proc/sys/kernel/osrelease" if not live else "this host")
    )
    hostname = _read(root, "proc/sys/kernel/hostname") or (socket.gethostname() if live else None)
    plat = Platform(
        arch=arch,
        cpu_vendor=vendor,
        cpu_family=family,
        cpu_model_name=model,
        kernel=kernel,
        iommu=iommu_mode(cmdline, devices, root),
        cmdline=cmdline,
        hostname=hostname,
        facts=facts.with_fact(
            "iommu", Fact.inferred("the IOMMU groups in sysfs and the kernel command line")
        ),
    )
    name = hostname or root.name or "host"
    description = f"sysfs of {'this host' if live else root}"
    manifest = _manifest(root)
    if manifest is not None:
        who = "as root" if manifest.get("root") else "WITHOUT root (config space cut to 64 bytes)"
        description = (
            f"p2pview capture of {manifest.get('hostname') or name}, kernel"
            f" {manifest.get('kernel')}, taken {manifest.get('date')} {who}"
            f" by p2pview {manifest.get('p2pview_version')}"
        )
    topo = Topology(
        devices, host_bridges, plat, name=name, description=description, source=str(root)
    )
    return topo, report


def _manifest(root: Path) -> dict[str, object] | None:
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _depth(bdf: BDF, by_bdf: dict[BDF, PciDevice]) -> int:
    depth = 0
    node = by_bdf.get(bdf)
    while node is not None and node.parent is not None and depth < 64:
        node = by_bdf.get(node.parent)
        depth += 1
    return depth


def is_sysfs_root(path: Path) -> bool:
    """Whether ``path`` holds a gathered (or live) sysfs tree."""
    return (path / "sys/bus/pci/devices").is_dir() or (path / "sys/devices").is_dir()
