"""``p2pview capture``: pack what the sysfs reader reads into one ``.tar.gz``.

The archive's top holds ``sys/`` and ``proc/`` (the hwloc-gather-topology
layout, so the same reader loads it) and ``p2pview-capture.json``, a manifest
naming the host, kernel release, date, p2pview version and whether the
capture ran as root (only root sees more than 64 bytes of config space).

Everything is opened read-only; ``p2pmem/allocate`` and the other writable
attributes are never touched. Reads go through the bounded tree of
:mod:`p2pview.sources.tree`: a FIFO or device where an attribute should be is
skipped, never opened, so a capture of a gathered tree cannot hang.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import signal
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from p2pview import __version__
from p2pview.model import BDF, RootBus
from p2pview.sources.checks import SourceError
from p2pview.sources.readfile import ATTRIBUTE, CONFIG, CPUINFO, PROC_LINE, Kind, ReadRefused
from p2pview.sources.sysfs import (
    DEVICE_FILES,
    DEVICE_LINKS,
    MANIFEST,
    PROC_FILES,
    ScanReport,
    device_dirs,
)
from p2pview.sources.tree import DiskTree, Tree

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

    def __init__(self, tar: tarfile.TarFile, tree: Tree, mtime: float) -> None:
        self.tar = tar
        self.tree = tree
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

    def file(self, rel: str, kind: Kind) -> bool:
        """Copy a regular file, read within its cap (FIFOs and devices are never opened)."""
        try:
            payload = self.tree.read(rel, kind)
        except ReadRefused:
            return False
        if payload is None:
            return False
        self.data(rel, payload)
        return True

    def link(self, rel: str) -> str | None:
        target = self.tree.readlink(rel)
        if target is None:
            return None
        if rel not in self.seen:
            self.directory(os.path.dirname(rel))
            self.seen.add(rel)
            info = self._info(rel, tarfile.SYMTYPE)
            info.linkname = target
            self.tar.addfile(info)
        return target


def write_capture(out: Path, root: Path = Path("/")) -> Manifest:
    """Capture the PCI tree under ``root`` (the live host by default) into ``out``.

    The archive is written to a temporary file beside ``out`` and renamed to
    ``out`` only once complete: an error, Ctrl-C or SIGTERM leaves no partial
    or empty file behind (the caller turns SIGTERM into an exception, see
    :func:`interruptible`).

    Raises:
        SourceError: ``out`` cannot be written, or the tree cannot be read.
    """
    live = root == Path("/")
    tree = DiskTree(root, live=live)
    report = ScanReport()
    dirs = device_dirs(tree, report)
    now = time.time()
    hostname = _read(tree, "proc/sys/kernel/hostname") or (socket.gethostname() if live else "")
    kernel = _read(tree, "proc/sys/kernel/osrelease") or (platform.release() if live else "")
    manifest = Manifest(
        format=FORMAT,
        hostname=hostname,
        kernel=kernel,
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        p2pview_version=__version__,
        root=os.geteuid() == 0,
        functions=len(dirs),
    )
    directory = out.parent if str(out.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise SourceError(f"{out}: cannot write the capture: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            _write(raw, tree, dirs, manifest, hostname, kernel, now)
            raw.flush()
            os.fsync(raw.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)
        os.replace(temp, out)
    except OSError as exc:
        _remove(temp)
        raise SourceError(f"{out}: cannot write the capture: {exc.strerror or exc}") from None
    except BaseException:
        _remove(temp)
        raise
    return manifest


def _write(
    raw: IO[bytes],
    tree: Tree,
    dirs: dict[BDF, tuple[str, BDF | None, RootBus]],
    manifest: Manifest,
    hostname: str,
    kernel: str,
    now: float,
) -> None:
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        writer = _Writer(tar, tree, now)
        groups: set[str] = set()
        for bdf, (rel_dir, _parent, _root) in sorted(dirs.items()):
            writer.directory(rel_dir)
            for name in DEVICE_FILES:
                writer.file(f"{rel_dir}/{name}", CONFIG if name == "config" else ATTRIBUTE)
            for name in DEVICE_LINKS:
                target = writer.link(f"{rel_dir}/{name}")
                if name == "iommu_group" and target:
                    group = os.path.basename(target)
                    if group.isascii() and group.isdigit():
                        groups.add(group)
            writer.link(f"sys/bus/pci/devices/{bdf}")
        for group in sorted(groups):
            writer.file(f"sys/kernel/iommu_groups/{group}/type", PROC_LINE)
        for name in PROC_FILES:
            writer.file(name, CPUINFO if name == "proc/cpuinfo" else PROC_LINE)
        if "proc/sys/kernel/hostname" not in writer.seen and hostname:
            writer.data("proc/sys/kernel/hostname", hostname.encode() + b"\n")
        if "proc/sys/kernel/osrelease" not in writer.seen and kernel:
            writer.data("proc/sys/kernel/osrelease", kernel.encode() + b"\n")
        writer.data(MANIFEST, (json.dumps(asdict(manifest), indent=1) + "\n").encode())


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# Not a P2pviewError, and not even an Exception: like KeyboardInterrupt it must pass
# every "except Exception" on its way out, so that the half-written file is removed
# and the capture command reports the signal with exit status 128 + signum.
class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived while :func:`interruptible` was in force."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Interrupted`, so that clean-up code runs.

    Python's default for SIGTERM ends the process at once, skipping every
    ``finally``; Ctrl-C already raises ``KeyboardInterrupt``. Outside the main
    thread (where handlers cannot be set) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _read(tree: Tree, name: str) -> str | None:
    try:
        data = tree.read(name, PROC_LINE)
    except ReadRefused:
        return None
    return None if data is None else data.decode("utf-8", errors="replace").strip()[:256]
