"""``p2pview capture``: pack what the sysfs reader reads into one ``.tar.gz``.

The archive's top holds ``sys/`` and ``proc/`` (the hwloc-gather-topology
layout, so the same reader loads it) and ``p2pview-capture.json``, a manifest
naming the host, kernel release, date, p2pview version and whether the
capture ran as root (only root sees more than 64 bytes of config space).

Everything is opened read-only; ``p2pmem/allocate`` and the other writable
attributes are never touched.
"""

from __future__ import annotations

import io
import json
import os
import platform
import socket
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from p2pview import __version__
from p2pview.sources.sysfs import (
    DEVICE_FILES,
    DEVICE_LINKS,
    MANIFEST,
    PROC_FILES,
    ScanReport,
    device_dirs,
)
from p2pview.sources.topofile import SourceError

FORMAT = "p2pview-capture/1"


@dataclass(frozen=True)
class Manifest:
    """What ``p2pview-capture.json`` says."""

    format: str
    hostname: str
    kernel: str
    date: str
    p2pview_version: str
    root: bool
    functions: int


class _Writer:
    """Adds files, directories and symlinks under the archive's top, once each."""

    def __init__(self, tar: tarfile.TarFile, root: Path, mtime: float) -> None:
        self.tar = tar
        self.root = root
        self.mtime = mtime
        self.seen: set[str] = set()

    def _info(self, name: str, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mtime = int(self.mtime)
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        return info

    def directory(self, rel: str) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            name = "/".join(parts[:i])
            if name not in self.seen:
                self.seen.add(name)
                self.tar.addfile(self._info(name, tarfile.DIRTYPE))

    def data(self, rel: str, payload: bytes) -> None:
        if rel in self.seen:
            return
        self.directory(os.path.dirname(rel))
        self.seen.add(rel)
        info = self._info(rel, tarfile.REGTYPE)
        info.size = len(payload)
        self.tar.addfile(info, io.BytesIO(payload))

    def file(self, rel: str, limit: int = 1 << 20) -> bool:
        try:
            with open(self.root / rel, "rb") as fh:
                payload = fh.read(limit)
        except OSError:
            return False
        self.data(rel, payload)
        return True

    def link(self, rel: str) -> str | None:
        try:
            target = os.readlink(self.root / rel)
        except OSError:
            return None
        if rel not in self.seen:
            self.directory(os.path.dirname(rel))
            self.seen.add(rel)
            info = self._info(rel, tarfile.SYMTYPE)
            info.linkname = target
            self.tar.addfile(info)
        return target


def write_capture(out: Path, root: Path = Path("/")) -> Manifest:
    """Capture the PCI tree under ``root`` (the live host by default) into ``out``."""
    report = ScanReport()
    dirs = device_dirs(root, report)
    now = time.time()
    live = root == Path("/")
    hostname = _read(root / "proc/sys/kernel/hostname") or (socket.gethostname() if live else "")
    kernel = _read(root / "proc/sys/kernel/osrelease") or (platform.release() if live else "")
    manifest = Manifest(
        format=FORMAT,
        hostname=hostname,
        kernel=kernel,
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        p2pview_version=__version__,
        root=os.geteuid() == 0,
        functions=len(dirs),
    )
    try:
        with tarfile.open(out, "w:gz") as tar:
            writer = _Writer(tar, root, now)
            groups: set[str] = set()
            for bdf, (path, _parent, _root) in sorted(dirs.items()):
                rel_dir = os.path.relpath(path, root)
                writer.directory(rel_dir)
                for name in DEVICE_FILES:
                    writer.file(f"{rel_dir}/{name}", limit=4096)
                for name in DEVICE_LINKS:
                    target = writer.link(f"{rel_dir}/{name}")
                    if name == "iommu_group" and target:
                        groups.add(os.path.basename(target))
                writer.link(f"sys/bus/pci/devices/{bdf}")
            for group in sorted(groups):
                writer.file(f"sys/kernel/iommu_groups/{group}/type")
            for name in PROC_FILES:
                writer.file(name)
            if not (root / "proc/sys/kernel/hostname").exists() and hostname:
                writer.data("proc/sys/kernel/hostname", hostname.encode() + b"\n")
            if not (root / "proc/sys/kernel/osrelease").exists() and kernel:
                writer.data("proc/sys/kernel/osrelease", kernel.encode() + b"\n")
            writer.data(MANIFEST, (json.dumps(asdict(manifest), indent=1) + "\n").encode())
    except OSError as exc:
        raise SourceError(f"{out}: cannot write the capture: {exc.strerror or exc}") from None
    return manifest


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None
