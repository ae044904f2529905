"""A sysfs tree to read from: the live host, a directory, or an archive held in memory.

The sysfs reader and ``p2pview capture`` see a tree only through
:class:`Tree`: paths relative to the tree's top (``sys/bus/pci/devices``),
symbolic links resolved inside the tree's own namespace (an absolute target
starts again from the tree's top, never from this host's ``/``), and bounded
reads of regular files (:mod:`p2pview.sources.readfile`). A link that leads
above the top, that loops, or whose target is missing is *dangling*: the
readers report it and go on. Two implementations: :class:`DiskTree` here (the
live host is ``DiskTree("/")``) and :class:`p2pview.sources.archive.ArchiveTree`.

Links are resolved component by component, as the kernel's path walk does,
with at most :data:`MAX_LINKS` links on one path (the kernel's ``MAXSYMLINKS``).
A file the readers open must itself be a regular file, not a link: sysfs
attributes never are.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from types import TracebackType

from p2pview.sources.readfile import Kind, ReadRefused, read_and_close

#: Links followed on one path before it counts as a loop (the kernel's MAXSYMLINKS).
MAX_LINKS = 40
#: Directory levels a walk of ``sys/devices`` descends (real trees: about 20).
MAX_WALK_DEPTH = 64
#: Entries one directory may hold (``sys/bus/pci/devices`` of a 2,000-function
#: host has 2,000; a function's directory about 60).
MAX_ENTRIES = 200_000


class NodeType(Enum):
    """What a name in a tree is, without following it if it is a link."""

    DIR = "directory"
    FILE = "regular file"
    LINK = "symbolic link"
    #: A FIFO, a device, a socket: never opened.
    OTHER = "special file"


# Dangling and Unreadable are not P2pviewErrors: they are signals from the tree to
# its readers, which skip the path or turn it into a SourceError naming the capture.
class Dangling(Exception):
    """A path that leads nowhere inside the tree; ``why`` says where it went wrong."""

    def __init__(self, rel: str, why: str) -> None:
        super().__init__(f"{rel}: {why}")
        self.rel = rel
        self.why = why


class Missing(Dangling):
    """A path whose last component (or a directory on the way) does not exist."""


class Escapes(Dangling):
    """A path whose links lead above the top of the tree."""


class Loops(Dangling):
    """A path with more than :data:`MAX_LINKS` links on it."""


# Not a P2pviewError either (as Dangling): Tree.read() and the sysfs reader word it.
class Unreadable(Exception):
    """A directory that exists but cannot be listed (permissions, I/O error)."""


def join(parts: tuple[str, ...]) -> str:
    """Parts as a relative path (``""`` for the top)."""
    return "/".join(parts)


class DirView(ABC):
    """One directory's entries, read once; files in it read without resolving the path again."""

    def __init__(self, rel: str, entries: dict[str, NodeType]) -> None:
        self.rel = rel
        self.entries = entries

    def __enter__(self) -> DirView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - most views hold nothing open
        """Release what the view holds open."""

    def type_of(self, name: str) -> NodeType | None:
        """What ``name`` is (a link is not followed); ``None`` when absent."""
        return self.entries.get(name)

    def read(self, name: str, kind: Kind) -> bytes | None:
        """The contents of file ``name``, ``None`` when it does not exist.

        Raises:
            ReadRefused: a link, FIFO, device or directory, over the cap, or unreadable.
        """
        node = self.entries.get(name)
        if node is None:
            return None
        label = f"{self.rel}/{name}" if self.rel else name
        if node is not NodeType.FILE:
            what = {
                NodeType.LINK: "a symbolic link",
                NodeType.DIR: "a directory",
                NodeType.OTHER: "a FIFO, device or socket",
            }[node]
            raise ReadRefused(f"{label}: {what}, not a regular file; not read")
        return self._read(name, kind, label)

    @abstractmethod
    def _read(self, name: str, kind: Kind, label: str) -> bytes:
        """Read the regular file ``name`` (known to be one) within the cap."""

    @abstractmethod
    def readlink(self, name: str) -> str | None:
        """The target of link ``name``; ``None`` when it is not a link."""

    @abstractmethod
    def subdir(self, name: str) -> DirView | None:
        """The view of subdirectory ``name`` (not a link to one); ``None`` when absent."""


class Tree(ABC):
    """A read-only sysfs tree; see the module notes."""

    #: What messages call the tree (its path or the archive's).
    label: str
    #: Whether this is the running host's own ``/``.
    live: bool = False
    #: What loading the tree skipped or found odd (archives), for the report.
    notes: tuple[str, ...] = ()
    #: Whether the tree can change while it is read (a directory on disk): a
    #: missing link target is then a function that vanished, not a dangling link.
    mutable: bool = False

    # -- what an implementation provides, on canonical parts (no links among them)

    @abstractmethod
    def _lkind(self, parts: tuple[str, ...]) -> NodeType | None:
        """What ``parts`` is, not following it if it is a link."""

    @abstractmethod
    def _readlink(self, parts: tuple[str, ...]) -> str | None:
        """The target of the link at ``parts``; ``None`` when it cannot be read."""

    @abstractmethod
    def _dir(self, parts: tuple[str, ...]) -> DirView:
        """A view of the directory at ``parts``.

        Raises:
            Unreadable: the directory cannot be listed.
        """

    # -- shared

    def resolve(self, rel: str, *, follow_last: bool = True) -> tuple[str, ...]:
        """The canonical parts of ``rel``: every link on the way resolved inside the tree.

        Raises:
            Missing, Escapes, Loops: the path leads nowhere inside the tree.
        """
        pending = list(reversed(rel.split("/")))
        done: list[str] = []
        links = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise Escapes(rel, "leads above the top of the tree, outside it")
                done.pop()
                continue
            here = (*done, part)
            node = self._lkind(here)
            if node is None:
                raise Missing(rel, f"{join(here)} does not exist")
            if node is NodeType.LINK and (pending or follow_last):
                links += 1
                if links > MAX_LINKS:
                    raise Loops(rel, f"loops (more than {MAX_LINKS} links on the way)")
                target = self._readlink(here)
                if target is None:
                    raise Missing(rel, f"{join(here)}: link unreadable")
                if target.startswith("/"):
                    done = []  # the tree's own top, never this host's /
                pending.extend(reversed(target.split("/")))
                continue
            if pending and node is not NodeType.DIR:
                raise Missing(rel, f"{join(here)} is a {node.value}, not a directory")
            done.append(part)
        return tuple(done)

    def type_of(self, rel: str) -> NodeType | None:
        """What ``rel`` is, following links on the way but not the last one."""
        try:
            parts = self.resolve(rel, follow_last=False)
        except Dangling:
            return None
        return self._lkind(parts) if parts else NodeType.DIR

    def is_dir(self, rel: str) -> bool:
        """Whether ``rel`` leads to a directory inside the tree (links followed)."""
        try:
            parts = self.resolve(rel)
        except Dangling:
            return False
        return not parts or self._lkind(parts) is NodeType.DIR

    def dir(self, rel: str) -> DirView:
        """A view of the directory ``rel`` leads to (links followed inside the tree).

        Raises:
            Dangling: no directory there inside the tree.
            Unreadable: it cannot be listed.
        """
        parts = self.resolve(rel)
        if parts and self._lkind(parts) is not NodeType.DIR:
            raise Missing(rel, "not a directory")
        return self._dir(parts)

    def kind_at(self, parts: tuple[str, ...]) -> NodeType | None:
        """What the canonical path ``parts`` (from :meth:`resolve`) is."""
        return self._lkind(parts) if parts else NodeType.DIR

    def canonical_dir(self, rel: str) -> DirView:
        """A view of the directory at ``rel``, a path :meth:`resolve` returned (no links on it).

        Raises:
            Missing: no directory there (any more).
            Unreadable: it cannot be listed.
        """
        parts = tuple(rel.split("/")) if rel else ()
        if parts and self._lkind(parts) is not NodeType.DIR:
            raise Missing(rel, "not a directory")
        return self._dir(parts)

    def readlink(self, rel: str) -> str | None:
        """The target of the link ``rel`` as written; ``None`` when it is not a link."""
        try:
            parts = self.resolve(rel, follow_last=False)
        except Dangling:
            return None
        if not parts or self._lkind(parts) is not NodeType.LINK:
            return None
        return self._readlink(parts)

    def read(self, rel: str, kind: Kind) -> bytes | None:
        """File ``rel`` (directories on the way may be links inside the tree); ``None`` if absent.

        Raises:
            ReadRefused: the file is not a regular file (a link, FIFO, device),
                is over its cap, or cannot be read; the message names it.
        """
        head, _, name = rel.rpartition("/")
        try:
            with self.dir(head) as view:
                return view.read(name, kind)
        except Missing:
            return None
        except Dangling as exc:
            raise ReadRefused(f"{rel}: {exc.why}; not read") from None
        except Unreadable as exc:
            raise ReadRefused(f"{rel}: {exc}; not read") from None

    def walk(self, rel: str) -> Iterator[tuple[str, list[str]]]:
        """``(directory, subdirectory names)`` below ``rel``, top down, links not followed.

        The caller may prune the list in place, as with ``os.walk``. Directories
        that cannot be listed are skipped; the walk stops :data:`MAX_WALK_DEPTH`
        levels down.
        """
        try:
            top = self.resolve(rel)
        except Dangling:
            return
        stack: list[tuple[tuple[str, ...], int]] = [(top, 0)]
        while stack:
            parts, depth = stack.pop()
            try:
                with self._dir(parts) as view:
                    subdirs = sorted(n for n, t in view.entries.items() if t is NodeType.DIR)
            except Unreadable:
                continue
            yield join(parts), subdirs
            if depth < MAX_WALK_DEPTH:
                stack.extend(((*parts, d), depth + 1) for d in reversed(subdirs))


def _node_type(mode: int) -> NodeType:
    if stat.S_ISLNK(mode):
        return NodeType.LINK
    if stat.S_ISDIR(mode):
        return NodeType.DIR
    if stat.S_ISREG(mode):
        return NodeType.FILE
    return NodeType.OTHER


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY


class _DiskDir(DirView):
    """A directory on disk, held open so that its files are opened relative to it."""

    def __init__(self, rel: str, fd: int) -> None:
        entries: dict[str, NodeType] = {}
        with os.scandir(fd) as it:
            for entry in it:
                if len(entries) >= MAX_ENTRIES:
                    raise Unreadable(f"more than {MAX_ENTRIES:,} entries")
                # d_type from getdents: no stat per entry on sysfs, tmpfs, ext4 ...
                # Most entries are attributes: the first test settles them.
                if entry.is_file(follow_symlinks=False):
                    entries[entry.name] = NodeType.FILE
                elif entry.is_dir(follow_symlinks=False):
                    entries[entry.name] = NodeType.DIR
                elif entry.is_symlink():
                    entries[entry.name] = NodeType.LINK
                else:
                    entries[entry.name] = NodeType.OTHER
        super().__init__(rel, entries)
        self.fd = fd
        self._subdirs: list[_DiskDir] = []

    def close(self) -> None:
        for sub in self._subdirs:
            sub.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _read(self, name: str, kind: Kind, label: str) -> bytes:
        try:
            # O_NOFOLLOW: the entry was a regular file when listed, and a link
            # put in its place since is refused, not followed.
            fd = os.open(name, _FILE_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            raise ReadRefused(f"{label}: {exc.strerror or exc}") from None
        return read_and_close(fd, label, kind)

    def readlink(self, name: str) -> str | None:
        if self.entries.get(name) is not NodeType.LINK:
            return None
        try:
            return os.readlink(name, dir_fd=self.fd)
        except OSError:
            return None

    def subdir(self, name: str) -> DirView | None:
        if self.entries.get(name) is not NodeType.DIR:
            return None
        try:
            sub = _open_disk_dir(f"{self.rel}/{name}", name, self.fd)
        except Unreadable:
            return None
        self._subdirs.append(sub)
        return sub


def _open_disk_dir(rel: str, path: str, dir_fd: int | None = None) -> _DiskDir:
    try:
        fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    try:
        return _DiskDir(rel, fd)
    except OSError as exc:
        os.close(fd)
        raise Unreadable(exc.strerror or str(exc)) from None
    except BaseException:
        os.close(fd)
        raise


class DiskTree(Tree):
    """A tree on disk under ``root``: ``/`` for this host, or a gathered copy."""

    mutable = True

    def __init__(self, root: Path | str, *, live: bool = False) -> None:
        self.root = Path(root)
        self.label = str(root)
        self.live = live
        self._prefix = str(root).rstrip("/") + "/"
        self._dirs: set[tuple[str, ...]] = set()

    def _path(self, parts: tuple[str, ...]) -> str:
        return self._prefix + "/".join(parts)

    def _lkind(self, parts: tuple[str, ...]) -> NodeType | None:
        if parts in self._dirs:
            return NodeType.DIR
        try:
            mode = os.lstat(self._path(parts)).st_mode
        except (OSError, ValueError):
            return None
        node = _node_type(mode)
        if node is NodeType.DIR:
            self._dirs.add(parts)  # directories above devices are asked for again and again
        return node

    def _readlink(self, parts: tuple[str, ...]) -> str | None:
        try:
            return os.readlink(self._path(parts))
        except (OSError, ValueError):
            return None

    def _dir(self, parts: tuple[str, ...]) -> DirView:
        return _open_disk_dir(join(parts), self._path(parts) if parts else self._prefix)
