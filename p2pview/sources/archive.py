"""Unpack a gathered sysfs tree from a ``.tar.gz`` / ``.tar.bz2`` / ``.tar.xz``.

Only what the sysfs reader looks at is extracted (a gathered tree holds
thousands of other files): directories, regular files and symlinks that stay
inside the archive, into a private temporary directory that lives until the
process exits. Symlinks matter: sysfs trees are held together by them.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from p2pview.sources.sysfs import DEVICE_FILES, DEVICE_LINKS, MANIFEST, PROC_FILES
from p2pview.sources.topofile import SourceError

_TEMP_DIRS: list[str] = []


def _cleanup() -> None:
    for path in _TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(_cleanup)


def is_tarball(path: Path) -> bool:
    """Whether ``path`` is a tar archive (any compression tarfile knows)."""
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False


_BDF_DIR = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_HB_DIR = re.compile(r"^pci[0-9a-f]{4,8}:[0-9a-f]{2}$")


def _wanted(name: str, is_dir: bool) -> bool:
    """Whether the sysfs reader would look at this member (gathered trees hold far more)."""
    parts = name.strip("/").split("/")
    while parts and parts[0] in (".", ""):
        parts = parts[1:]
    if not parts:
        return False
    # A tree may sit one directory down (hwloc-gather-topology's MACHINE/sys/...).
    if parts[0] not in ("sys", "proc", MANIFEST) and len(parts) > 1:
        parts = parts[1:]
    rel = "/".join(parts)
    leaf = parts[-1]
    if is_dir:
        return bool(_BDF_DIR.match(leaf) or _HB_DIR.match(leaf)) or rel in ("sys", "proc")
    if rel == MANIFEST or rel in PROC_FILES:
        return True
    if rel.startswith("sys/bus/pci/devices/"):
        return True
    if rel.startswith("sys/kernel/iommu_groups/") and leaf == "type":
        return True
    if rel.startswith("sys/devices/") and len(parts) >= 3:
        above = parts[-2]
        if _BDF_DIR.match(above):
            return leaf in DEVICE_FILES or leaf in DEVICE_LINKS or leaf == "p2pmem"
        if above == "p2pmem" and len(parts) >= 4 and _BDF_DIR.match(parts[-3]):
            return f"p2pmem/{leaf}" in DEVICE_FILES
    return False


def _safe(name: str) -> bool:
    pure = PurePosixPath(name)
    return not pure.is_absolute() and ".." not in pure.parts


def extract_tree(path: Path) -> Path:
    """Extract ``path`` and return the directory that holds ``sys/`` (or the top)."""
    dest = tempfile.mkdtemp(prefix="p2pview-")
    _TEMP_DIRS.append(dest)
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not _safe(member.name) or not _wanted(member.name, member.isdir()):
                    continue
                target = os.path.join(dest, member.name)
                if member.isdir():
                    os.makedirs(target, exist_ok=True)
                elif member.isfile():
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    src = tar.extractfile(member)
                    if src is None:
                        continue
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                elif member.issym():
                    link = member.linkname
                    if os.path.isabs(link):
                        continue
                    resolved = os.path.normpath(os.path.join(os.path.dirname(member.name), link))
                    if resolved.startswith(".."):
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    if not os.path.lexists(target):
                        os.symlink(link, target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceError(f"{path}: cannot unpack: {exc}") from None
    return _tree_root(Path(dest))


def _tree_root(dest: Path) -> Path:
    """The extracted directory that holds ``sys``: the top, or its only subdirectory."""
    if (dest / "sys").is_dir():
        return dest
    for child in sorted(dest.iterdir()):
        if child.is_dir() and (child / "sys").is_dir():
            return child
    return dest
