"""Layer 2: readers that turn topology files, sysfs trees and captures into a model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from p2pview.model import Topology
from p2pview.sources.archive import extract_tree, is_tarball
from p2pview.sources.bundled import BundledTopology, bundled_path, bundled_topologies
from p2pview.sources.sysfs import ScanReport, is_sysfs_root, read_sysfs
from p2pview.sources.topofile import SourceError, parse_topology_text, read_topology_file
from p2pview.sources.topowrite import to_json, to_mapping, to_toml

__all__ = [
    "BundledTopology",
    "Loaded",
    "ScanReport",
    "SourceError",
    "bundled_topologies",
    "load_source",
    "parse_topology_text",
    "read_topology_file",
    "to_json",
    "to_mapping",
    "to_toml",
]

#: What ``p2pview`` reads when no SOURCE is given.
LIVE = "/"


@dataclass(frozen=True)
class Loaded:
    """A topology and how it was obtained.

    ``kind`` is ``"live"``, ``"sysfs"`` (a gathered tree or capture),
    ``"file"`` or ``"bundled"``. ``report`` is set for sysfs sources.
    """

    topology: Topology
    kind: str
    report: ScanReport = field(default_factory=ScanReport)

    @property
    def is_live(self) -> bool:
        """Read from this host's own ``/sys``."""
        return self.kind == "live"


def _sniff_other_format(path: Path) -> str | None:
    """Name a dump format p2pview does not read (yet), from the file's first bytes."""
    try:
        head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    except OSError:
        return None
    stripped = head.lstrip()
    if stripped.startswith("<?xml") or stripped.startswith("<topology") or "<system" in head:
        return "an XML topology (hwloc or NCCL)"
    if "GPU0" in head and ("PIX" in head or "SYS" in head or "SOC" in head):
        return "an 'nvidia-smi topo -m' matrix"
    if re.search(r"^[0-9a-f]{2,4}:[0-9a-f]{2}[:.][0-9a-f]", stripped, re.MULTILINE) or "-[" in head:
        return "an lspci dump"
    return None


def load_source(spec: str | None) -> Loaded:
    """Load SOURCE: a topology file, a bundled name, a sysfs directory or archive, or ``/``.

    Raises:
        SourceError: with one line naming what could not be read and why.
    """
    if spec is None or spec == LIVE:
        root = Path(LIVE)
        if not is_sysfs_root(root):
            raise SourceError("/: this host has no /sys/bus/pci (not Linux, or sysfs not mounted)")
        topo, report = read_sysfs(root, live=True)
        return Loaded(topo, "live", report)
    path = Path(spec)
    if path.is_dir():
        if not is_sysfs_root(path):
            raise SourceError(
                f"{spec}: a directory, but no sys/bus/pci/devices or sys/devices under it"
            )
        topo, report = read_sysfs(path)
        return Loaded(topo, "sysfs", report)
    if path.is_file():
        if is_tarball(path):
            root = extract_tree(path)
            if not is_sysfs_root(root):
                raise SourceError(f"{spec}: an archive without a sys/ tree inside")
            topo, report = read_sysfs(root)
            stem = path.name.split(".tar")[0]
            topo = topo.replace_meta(
                name=topo.platform.hostname or stem,
                source=spec,
                description=f"sysfs capture {path.name}",
            )
            return Loaded(topo, "sysfs", report)
        try:
            return Loaded(read_topology_file(path), "file")
        except SourceError:
            other = _sniff_other_format(path)
            if other is None:
                raise
            raise SourceError(
                f"{spec}: this looks like {other}, which p2pview does not read yet; it reads"
                " topology files (TOML/JSON), gathered sysfs trees and archives of them"
            ) from None
    bundled = bundled_path(spec)
    if bundled is not None:
        return Loaded(read_topology_file(bundled), "bundled")
    raise SourceError(
        f"{spec}: no such file or directory, and not a bundled topology (see 'p2pview topologies')"
    )
