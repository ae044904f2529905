"""Read a gathered sysfs tree from a ``.tar`` (gzip, bzip2 or xz compressed) into memory.

Nothing is ever extracted: no file, directory or link is created on disk, so
no member name or link target can make p2pview write anywhere. The members
the sysfs reader looks at (:func:`_wanted`; a gathered tree holds thousands of
others) are kept in an in-memory tree, :class:`ArchiveTree`, whose links are
resolved inside the archive's own namespace by :class:`~p2pview.sources.tree.Tree`:
an absolute target starts from the archive's top, a target that climbs above
it or loops is a dangling link, reported by the reader.

Untrusted archives are bounded (see :data:`LIMITS`): the member count, the
bytes decompressed, the members and bytes kept, and the size of the header
extensions that hold long names. Past a limit, or when the archive is
truncated or damaged, loading stops with one line naming the archive. Members
are taken by name only: one whose directory is an earlier link member (the
chain ``a -> ../..``, then ``a/x/file``) or an earlier file is skipped and
reported, never written "through" anything; FIFOs and device members are kept
as names that the reader refuses to read; hard links copy an earlier member.

Formats are recognised by their first bytes: gzip, bzip2 and xz magic, or the
``ustar`` magic of a tar header (every tar written since POSIX.1-1988 has it).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, Self, cast

from p2pview.model.units import size_text
from p2pview.sources.checks import SourceError, quote
from p2pview.sources.readfile import (
    ATTRIBUTE,
    CONFIG,
    CPUINFO,
    MANIFEST,
    PROC_LINE,
    Kind,
    ReadRefused,
    open_regular,
    over_cap,
    sniff_archive,
)
from p2pview.sources.sysfs import DEVICE_FILES, DEVICE_LINKS, PROC_FILES
from p2pview.sources.sysfs import MANIFEST as MANIFEST_NAME
from p2pview.sources.tree import DirView, NodeType, Tree


@dataclass(frozen=True, slots=True)
class Limits:
    """What an archive may hold before loading stops.

    Calibrated on real captures: hwloc-gather-topology keeps about 80 members
    per PCI function and some 5,000 for CPUs and memory (40intel64: 11,495
    members, 37 functions), so a 2,000-function host is about 200,000 members
    and 250 MB of tar; a p2pview capture of it about 44,000 members and 50 MB.
    Reading takes about 30 microseconds per member.
    """

    #: Members of any kind (headers read).
    members: int = 300_000
    #: Bytes of tar stream read, after decompression.
    stream_bytes: int = 512 << 20
    #: Size of the archive file itself.
    file_bytes: int = 512 << 20
    #: Members kept (those the sysfs reader looks at: about 22 per function).
    kept_members: int = 150_000
    #: Bytes of member data kept in memory.
    kept_bytes: int = 64 << 20
    #: A GNU long-name or pax header member (names are at most 4096 bytes).
    header_bytes: int = 64 << 10


LIMITS = Limits()

# -- which members the sysfs reader looks at ----------------------------------------

_BDF_DIR = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_HB_DIR = re.compile(r"^pci[0-9a-f]{4,8}:[0-9a-f]{2}$")


def _relative(name: str) -> list[str]:
    """Member name parts relative to the tree's top (one ``MACHINE/`` level may precede it)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    # A tree may sit one directory down (hwloc-gather-topology's MACHINE/sys/...).
    if parts and parts[0] not in ("sys", "proc", MANIFEST_NAME) and len(parts) > 1:
        parts = parts[1:]
    return parts


def _wanted(name: str, is_dir: bool) -> bool:
    """Whether the sysfs reader would look at this member (gathered trees hold far more)."""
    parts = _relative(name)
    if not parts:
        return False
    rel = "/".join(parts)
    leaf = parts[-1]
    if is_dir:
        return bool(_BDF_DIR.match(leaf) or _HB_DIR.match(leaf)) or rel in ("sys", "proc")
    if rel == MANIFEST_NAME or rel in PROC_FILES:
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


def member_kind(name: str) -> Kind:
    """The kind (and so the cap) of a kept member's data."""
    parts = _relative(name)
    rel = "/".join(parts)
    if rel == MANIFEST_NAME:
        return MANIFEST
    if rel == "proc/cpuinfo":
        return CPUINFO
    if rel in PROC_FILES or rel.startswith("sys/kernel/"):
        return PROC_LINE
    if parts and parts[-1] == "config":
        return CONFIG
    return ATTRIBUTE


# -- the in-memory tree -------------------------------------------------------------


@dataclass
class _Node:
    type: NodeType
    #: Directories: their children. Files: data (None when over its cap).
    children: dict[str, _Node] = field(default_factory=dict)
    data: bytes | None = None
    size: int = 0
    target: str = ""
    #: For OTHER: what it is ("a FIFO").
    what: str = ""


class _MemDir(DirView):
    def __init__(self, rel: str, node: _Node) -> None:
        super().__init__(rel, {name: child.type for name, child in node.children.items()})
        self.node = node

    def _read(self, name: str, kind: Kind, label: str) -> bytes:
        child = self.node.children[name]
        if child.data is None:
            raise over_cap(label, kind, child.size)
        if len(child.data) > kind.cap:
            if kind.head:
                return child.data[: kind.cap]
            raise over_cap(label, kind, len(child.data))
        return child.data

    def read(self, name: str, kind: Kind) -> bytes | None:
        child = self.node.children.get(name)
        if child is not None and child.type is NodeType.OTHER:
            label = f"{self.rel}/{name}" if self.rel else name
            raise ReadRefused(f"{label}: {child.what} in the archive, not a regular file; not read")
        return super().read(name, kind)

    def readlink(self, name: str) -> str | None:
        child = self.node.children.get(name)
        return child.target if child is not None and child.type is NodeType.LINK else None

    def subdir(self, name: str) -> DirView | None:
        child = self.node.children.get(name)
        if child is None or child.type is not NodeType.DIR:
            return None
        return _MemDir(f"{self.rel}/{name}", child)


class ArchiveTree(Tree):
    """A sysfs tree read from an archive into memory; ``notes`` says what was skipped."""

    def __init__(self, label: str, top: _Node, notes: list[str]) -> None:
        self.label = label
        self.top = top
        self.notes = tuple(notes)

    def _node(self, parts: tuple[str, ...]) -> _Node | None:
        node = self.top
        for part in parts:
            if node.type is not NodeType.DIR:
                return None
            found = node.children.get(part)
            if found is None:
                return None
            node = found
        return node

    def _lkind(self, parts: tuple[str, ...]) -> NodeType | None:
        node = self._node(parts)
        return None if node is None else node.type

    def _readlink(self, parts: tuple[str, ...]) -> str | None:
        node = self._node(parts)
        return node.target if node is not None and node.type is NodeType.LINK else None

    def _dir(self, parts: tuple[str, ...]) -> DirView:
        node = self._node(parts)
        assert node is not None and node.type is NodeType.DIR  # resolve() checked it
        return _MemDir("/".join(parts), node)


class _Skipped:
    """Members not kept, by reason, for one note each."""

    def __init__(self) -> None:
        self.reasons: dict[str, list[str]] = {}

    def add(self, reason: str, name: str, detail: str = "") -> None:
        self.reasons.setdefault(reason, []).append(f"{quote(name, 100)} {detail}".strip())

    def notes(self, label: str) -> list[str]:
        out = []
        for reason, names in self.reasons.items():
            first = ", ".join(names[:2])
            more = f" and {len(names) - 2} more" if len(names) > 2 else ""
            out.append(f"{label}: {len(names)} member(s) {reason}, skipped: {first}{more}")
        return out


class _Builder:
    """Puts kept members into the in-memory tree, by name only."""

    def __init__(self, skipped: _Skipped) -> None:
        self.top = _Node(NodeType.DIR)
        self.skipped = skipped

    def place(self, name: str, node: _Node) -> bool:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if not parts:
            return False
        where = self.top
        for i, part in enumerate(parts[:-1]):
            child = where.children.get(part)
            if child is None:
                child = where.children[part] = _Node(NodeType.DIR)
            elif child.type is not NodeType.DIR:
                kind = "a link" if child.type is NodeType.LINK else "not a directory"
                above = "/".join(parts[: i + 1])
                self.skipped.add(
                    "below an earlier member that is a link or not a directory",
                    name,
                    f"({quote(above, 100)} is {kind})",
                )
                return False
            where = child
        leaf = parts[-1]
        old = where.children.get(leaf)
        if old is not None and old.type is NodeType.DIR:
            if node.type is NodeType.DIR:
                return True
            if old.children:
                self.skipped.add("in place of a directory that has members", name)
                return False
        # A later member replaces an earlier one of the same name, as tar does:
        # the earlier one is dropped, never written through.
        where.children[leaf] = node
        return True

    def find(self, name: str) -> _Node | None:
        node = self.top
        for part in (p for p in name.split("/") if p not in ("", ".")):
            if node.type is not NodeType.DIR or part not in node.children:
                return None
            node = node.children[part]
        return node


def _tree_top(top: _Node) -> _Node:
    """The directory that holds ``sys``: the top, or its first subdirectory that does."""
    sys_dir = top.children.get("sys")
    if sys_dir is not None and sys_dir.type is NodeType.DIR:
        return top
    for name in sorted(top.children):
        child = top.children[name]
        inner = child.children.get("sys") if child.type is NodeType.DIR else None
        if inner is not None and inner.type is NodeType.DIR:
            return child
    return top


# Not a P2pviewError: the member walk raises it and _read_stream() turns it into a
# SourceError naming the archive; it never leaves this module.
class _LimitReached(Exception):
    """A limit of :data:`LIMITS` was passed (the message says which)."""


class _Capped:
    """A stream that refuses to deliver more than ``cap`` bytes in all."""

    def __init__(self, inner: _Readable, cap: int) -> None:
        self.inner = inner
        self.cap = cap
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        left = self.cap - self.total + 1
        want = left if size is None or size < 0 else min(size, left)
        data = self.inner.read(want)
        self.total += len(data)
        if self.total > self.cap:
            raise _LimitReached(
                f"more than {size_text(self.cap)} of tar data once decompressed (a compression"
                " bomb, or not a capture)"
            )
        return data


# How tarfile says why the header walk stopped (not in its documented API, but
# unchanged since Python 3.2): a zero block, no block or half of one, garbage.
_EOF_HEADER: type[Exception] = getattr(tarfile, "EOFHeaderError")  # noqa: B009
_SHORT_HEADER: tuple[type[Exception], ...] = (
    getattr(tarfile, "EmptyHeaderError"),  # noqa: B009
    getattr(tarfile, "TruncatedHeaderError"),  # noqa: B009
)
_BAD_HEADER: type[Exception] = getattr(tarfile, "InvalidHeaderError")  # noqa: B009

_SPARSE = "a sparse member with a long sparse map (sysfs captures hold no sparse files)"
_META_TYPES = frozenset(
    {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE}
    | {getattr(tarfile, "SOLARIS_XHDTYPE", b"X")}
)


def _tarinfo_class(state: dict[str, Any], limits: Limits) -> type[tarfile.TarInfo]:
    """A TarInfo that records how the header walk ended and bounds header extensions."""

    class _Info(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
            try:
                return super().fromtarfile(tarfile_)
            except _EOF_HEADER:
                state["end"] = "end"  # a block of zeros: the end-of-archive marker
                raise
            except _SHORT_HEADER:
                state["end"] = "truncated"
                raise
            except _BAD_HEADER:
                state["end"] = "invalid"
                raise

        def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
            # tarfile reads long names and pax headers whole, and the extension
            # blocks of an old GNU sparse member one by one: bound them first.
            if self.type in _META_TYPES and self.size > limits.header_bytes:
                raise _LimitReached(
                    f"a header extension of {self.size:,} bytes (long names and pax headers"
                    f" are at most {size_text(limits.header_bytes)})"
                )
            sparse = getattr(self, "_sparse_structs", None)
            if self.type == tarfile.GNUTYPE_SPARSE and sparse is not None and sparse[1]:
                raise _LimitReached(_SPARSE)
            return super()._proc_member(tarfile_)  # type: ignore[misc,no-any-return]

        def _proc_gnusparse_10(self, *_args: object) -> None:
            # Its sparse map is read from the data, with no bound on its length.
            raise _LimitReached(_SPARSE)

    return _Info


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _decompressor(kind: str, raw: BinaryIO) -> _Readable:
    if kind == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    return raw


_COMPRESSED = {"gz": "gzip", "bz2": "bzip2", "xz": "xz", "tar": "tar"}


def read_archive(path: Path, limits: Limits | None = None) -> ArchiveTree:
    """Read the sysfs tree in the archive at ``path`` into memory (within :data:`LIMITS`).

    Raises:
        SourceError: one line naming the archive: not a tar archive, a limit
            passed, truncated or damaged.
    """
    limits = limits or LIMITS
    handle = open_regular(path)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limits.file_bytes:
            raise SourceError(
                f"{path}: {size:,} bytes; p2pview reads archives up to"
                f" {size_text(limits.file_bytes)}"
            )
        head = handle.read(512)
        kind = sniff_archive(head)
        if kind is None:
            raise SourceError(f"{path}: not a tar archive (no tar, gzip, bzip2 or xz header)")
        handle.seek(0)
        return _read_stream(path, kind, handle, limits)


def _read_stream(path: Path, kind: str, handle: BinaryIO, limits: Limits) -> ArchiveTree:
    skipped = _Skipped()
    builder = _Builder(skipped)
    state: dict[str, Any] = {}
    counts = {"members": 0, "kept": 0, "kept_bytes": 0}
    what = _COMPRESSED[kind]
    stream = _Capped(_decompressor(kind, handle), limits.stream_bytes)
    try:
        first = stream.read(512)
        if first[257:262] != b"ustar":
            if kind == "tar":
                raise SourceError(f"{path}: not a tar archive")
            raise SourceError(
                f"{path}: {what}-compressed, but not a tar archive inside (decompress it first"
                " if it is a text dump)"
            )
        prefixed = _Prefixed(first, stream)
        with tarfile.open(
            fileobj=cast(IO[bytes], prefixed), mode="r|", tarinfo=_tarinfo_class(state, limits)
        ) as tar:
            while True:
                member = tar.next()
                getattr(tar, "members").clear()  # noqa: B009 - tarfile keeps every header
                if member is None:
                    break
                counts["members"] += 1
                if counts["members"] > limits.members:
                    raise _LimitReached(f"more than {limits.members:,} members")
                _take(tar, member, builder, skipped, counts, limits)
    except _LimitReached as exc:
        raise SourceError(f"{path}: {exc}; not read") from None
    except EOFError:
        raise SourceError(
            f"{path}: truncated: the {what} stream ends early (after {counts['members']:,}"
            " members); the capture is incomplete, copy it again"
        ) from None
    except RecursionError:
        raise SourceError(f"{path}: damaged: header extensions chained too deep") from None
    except (tarfile.TarError, OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
        if isinstance(exc, SourceError):
            raise
        if state.get("end") == "truncated" or "unexpected end" in str(exc):
            raise _truncated(path, counts["members"]) from None
        raise SourceError(
            f"{path}: damaged {what} archive after {counts['members']:,} members:"
            f" {quote(str(exc), 80)}"
        ) from None
    end = state.get("end")
    if end == "truncated":
        raise _truncated(path, counts["members"])
    if end == "invalid":
        raise SourceError(
            f"{path}: damaged: after {counts['members']:,} members comes a block that is"
            " not a tar header; the capture is incomplete or corrupt"
        )
    return ArchiveTree(str(path), _tree_top(builder.top), skipped.notes(path.name))


def _truncated(path: Path, members: int) -> SourceError:
    return SourceError(
        f"{path}: truncated: the archive ends after {members:,} members without the"
        " end-of-archive marker; the capture is incomplete, copy it again"
    )


class _Prefixed:
    """The bytes already read, then the rest of the stream."""

    def __init__(self, first: bytes, rest: _Capped) -> None:
        self.first = first
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.first:
            if size is None or size < 0 or size >= len(self.first):
                out, self.first = self.first, b""
                more = size - len(out) if size is not None and size >= 0 else -1
                return out + (self.rest.read(more) if more != 0 else b"")
            out, self.first = self.first[:size], self.first[size:]
            return out
        return self.rest.read(size)


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return not name.startswith("/") and ".." not in parts and "\0" not in name


def _take(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    builder: _Builder,
    skipped: _Skipped,
    counts: dict[str, int],
    limits: Limits,
) -> None:
    """Keep ``member`` if the sysfs reader looks at it."""
    name = member.name
    if not _wanted(name, member.isdir()):
        return
    if not _safe_name(name):
        skipped.add("with an absolute name or '..'", name)
        return
    counts["kept"] += 1
    if counts["kept"] > limits.kept_members:
        raise _LimitReached(f"more than {limits.kept_members:,} members a sysfs reader reads")
    node: _Node | None
    if member.isdir():
        node = _Node(NodeType.DIR)
    elif member.issym():
        if len(member.linkname) > 4096 or "\0" in member.linkname:
            skipped.add("that are links with an impossible target", name)
            return
        node = _Node(NodeType.LINK, target=member.linkname)
    elif member.islnk():
        # A hard link: a copy of an earlier member of the archive.
        earlier = builder.find(member.linkname)
        if earlier is None or earlier.type is not NodeType.FILE:
            skipped.add("that are hard links to no earlier file member", name)
            return
        node = _Node(NodeType.FILE, data=earlier.data, size=earlier.size)
    elif member.isfile():
        node = _file_node(tar, member, counts, limits)
    else:
        what = (
            "a FIFO"
            if member.isfifo()
            else "a character device"
            if member.ischr()
            else "a block device"
            if member.isblk()
            else "a special member"
        )
        node = _Node(NodeType.OTHER, what=what)
    builder.place(name, node)


def _file_node(
    tar: tarfile.TarFile, member: tarfile.TarInfo, counts: dict[str, int], limits: Limits
) -> _Node:
    kind = member_kind(member.name)
    if member.size > kind.cap and not kind.head:
        return _Node(NodeType.FILE, data=None, size=member.size)  # refused when read
    src = tar.extractfile(member)
    if src is None:  # pragma: no cover - isfile() members always have data
        return _Node(NodeType.FILE, data=b"", size=0)
    with src:
        data = src.read(min(member.size, kind.cap))
    if len(data) < min(member.size, kind.cap):
        raise tarfile.ReadError("unexpected end of data")
    counts["kept_bytes"] += len(data)
    if counts["kept_bytes"] > limits.kept_bytes:
        raise _LimitReached(
            f"more than {size_text(limits.kept_bytes)} in the members a sysfs reader reads"
        )
    return _Node(NodeType.FILE, data=data, size=member.size)
