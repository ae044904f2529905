"""The initramfs ``p2pview verify`` boots: busybox, the C helper, /init and optionally the module.

Everything is built on demand and cached under ``~/.cache/p2pview/guest/``
(``$P2PVIEW_CACHE`` overrides ``~/.cache/p2pview``), keyed by the hash of its
inputs, so a second run reuses it. The archive is written by this module (cpio
"newc", the format the kernel unpacks: Documentation/driver-api/early-userspace/
buffer-format.rst [recalled]), so no ``cpio`` binary is needed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from p2pview.model.errors import ToolError
from p2pview.sources.packaged import package_file
from p2pview.sources.sysfs import DEVICE_FILES, DEVICE_LINKS

#: Where Debian's busybox-static puts its binary.
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


class GuestBuildError(ToolError):
    """Something needed for the guest is missing or failed to build; the message says what."""


def cache_dir() -> Path:
    """``$P2PVIEW_CACHE`` or ``$XDG_CACHE_HOME/p2pview`` or ``~/.cache/p2pview``."""
    env = os.environ.get("P2PVIEW_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "p2pview"


def guest_source(name: str) -> bytes:
    """A file shipped in ``p2pview/qemu/guest/``."""
    return package_file("qemu", "guest", name).read_bytes()


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def find_busybox() -> Path:
    """A statically linked busybox (Debian: ``apt-get install busybox-static``)."""
    for path in BUSYBOX_PATHS:
        p = Path(path)
        if p.is_file():
            out = subprocess.run(["file", "-L", str(p)], capture_output=True, text=True)
            if out.returncode != 0 or "statically linked" in out.stdout:
                return p
    raise GuestBuildError("no static busybox: apt-get install busybox-static")


def _publish(data: bytes, out: Path, mode: int = 0o644) -> Path:
    """Put ``data`` at ``out`` whole, however many guests build the same file at once.

    ``verify --jobs N`` boots guests from threads; on an empty cache two of them
    may build one initramfs (or helper, or module) together. Each writes its own
    temporary file beside ``out`` and renames it over ``out``: a reader sees the
    whole file or none, and the last rename wins with the same bytes.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(name, mode)
        os.replace(name, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return out


def build_helper() -> Path:
    """The static helper ``p2pvhelp`` compiled from ``guest/p2pvhelp.c`` (cached)."""
    src = guest_source("p2pvhelp.c")
    out = cache_dir() / "guest" / f"p2pvhelp-{_digest(src)}"
    if out.is_file():
        return out
    if shutil.which("gcc") is None:
        raise GuestBuildError("gcc is needed to build the guest helper: apt-get install gcc")
    with tempfile.TemporaryDirectory() as tmp:
        c = Path(tmp) / "p2pvhelp.c"
        c.write_bytes(src)
        tmp_out = Path(tmp) / "p2pvhelp"
        proc = subprocess.run(
            ["gcc", "-static", "-O2", "-Wall", "-o", str(tmp_out), str(c)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise GuestBuildError(
                "gcc -static failed for the guest helper (libc6-dev provides libc.a): "
                + proc.stderr.strip().splitlines()[-1]
            )
        return _publish(tmp_out.read_bytes(), out, 0o755)


def build_module(kernel_build: Path) -> Path:
    """``p2pdist.ko`` built against the kernel tree ``kernel_build`` (cached per tree)."""
    src = guest_source("p2pdist.c")
    symvers = kernel_build / "Module.symvers"
    if not symvers.is_file():
        raise GuestBuildError(
            f"{kernel_build}: no Module.symvers (run 'make modules' there, or pass the"
            " build directory that tools/oracle-kernel/build.sh prints, plus /build)"
        )
    key = _digest(src, str(kernel_build.resolve()).encode(), symvers.read_bytes())
    out = cache_dir() / "guest" / f"p2pdist-{key}.ko"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p2pdist.c").write_bytes(src)
        (Path(tmp) / "Kbuild").write_bytes(guest_source("Kbuild"))
        proc = subprocess.run(
            ["make", "-s", "-C", str(kernel_build), f"M={tmp}", "modules"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise GuestBuildError("building p2pdist.ko failed: " + " | ".join(tail))
        return _publish((Path(tmp) / "p2pdist.ko").read_bytes(), out)


class _Cpio:
    """A minimal cpio "newc" writer."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        self.ino += 1
        header = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
        self.chunks.append(header + name_b + b"\0" * (-(110 + len(name_b)) % 4))
        self.chunks.append(data + b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755, b"")

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"")
        return b"".join(self.chunks)


def build_initramfs(module: Path | None = None, io_list: bytes | None = None) -> Path:
    """The gzipped initramfs (cached by content).

    ``module`` adds ``p2pdist.ko``; ``io_list`` adds ``/etc/p2pview-io``, the
    O_DIRECT scenarios ``p2pview verify --io`` runs (one a line, see
    ``guest/init.sh``).
    """
    busybox = find_busybox().read_bytes()
    helper = build_helper().read_bytes()
    init = guest_source("init.sh")
    files = ("\n".join(DEVICE_FILES) + "\n").encode()
    links = ("\n".join(n for n in DEVICE_LINKS if n != "iommu_group") + "\n").encode()
    mod = module.read_bytes() if module is not None else b""
    ios = io_list if io_list is not None else b""
    key = _digest(busybox, helper, init, files, links, mod, ios)
    out = cache_dir() / "guest" / f"initramfs-{key}.gz"
    if out.is_file():
        return out
    cpio = _Cpio()
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp"):
        cpio.directory(d)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.symlink("bin/sh", "busybox")  # for /init's #!/bin/sh, before --install runs
    cpio.file("bin/p2pvhelp", helper, 0o755)
    cpio.file("init", init, 0o755)
    cpio.file("etc/p2pview-files", files)
    cpio.file("etc/p2pview-links", links)
    if module is not None:
        cpio.file("p2pdist.ko", mod)
    if io_list is not None:
        cpio.file("etc/p2pview-io", io_list)
    return _publish(gzip.compress(cpio.finish(), mtime=0), out)
