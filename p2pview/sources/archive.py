"""Unpack a gathered sysfs tree from a ``.tar.gz`` / ``.tar.bz2`` / ``.tar.xz``.

Only directories, regular files and symlinks that stay inside the archive are
extracted, into a private temporary directory that lives until the process
exits. Symlinks matter: sysfs trees are held together by them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

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
                if not _safe(member.name):
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
