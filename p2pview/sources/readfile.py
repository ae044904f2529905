"""Bounded reads of regular files: the one way p2pview reads a file it was given.

Whatever a SOURCE or a capture holds, a read here never blocks and never
takes more than the cap of its kind: only regular files are read (a FIFO, a
device such as ``/dev/zero``, a socket or a directory is refused before
anything is read from it), the file is opened ``O_NONBLOCK`` (opening a FIFO
would otherwise wait for a writer) and checked with ``fstat`` once open, and
at most ``cap + 1`` bytes are read, so a file over its cap is refused without
reading the rest. Every refusal is a :class:`ReadRefused` whose message names
the file.

Live sysfs attributes are regular files whose ``fstat`` size says 4096 (a
page) whatever they hold, and procfs files say 0; so the size ``fstat``
reports is only used to refuse early, never to decide how much to read.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from p2pview.model.units import size_text
from p2pview.sources.checks import SourceError, check_toml_shape


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of file and the most p2pview reads of it.

    ``head`` kinds are read up to the cap and the rest is left unread (only
    their beginning matters, as for ``/proc/cpuinfo``, whose first processor
    block is ``cpu_data(0)``); the others are refused past it.
    """

    name: str
    cap: int
    head: bool = False


#: PCI config space: 256 bytes, 4096 with extended space (PCI_CFG_SPACE_EXP_SIZE).
CONFIG = Kind("PCI config space", 4096)
#: One sysfs attribute: at most a page, and the largest page Linux uses is 64 KiB.
ATTRIBUTE = Kind("sysfs attribute", 64 << 10)
#: /proc/cmdline, osrelease, hostname, an IOMMU group's type: one short line.
PROC_LINE = Kind("/proc line", 64 << 10)
#: /proc/cpuinfo: only the boot CPU's block is used; 1 MiB holds it many times over.
CPUINFO = Kind("/proc/cpuinfo", 1 << 20, head=True)
#: The manifest a p2pview capture carries (a few hundred bytes).
MANIFEST = Kind("capture manifest", 64 << 10)
#: A text dump given as SOURCE (lspci, hwloc XML, NCCL XML, topology files).
#: An lspci -xxxx dump of 2,000 functions is about 30 MB.
TEXT = Kind("text dump", 64 << 20)
#: A scenario file (a few KiB; explicit page-frame lists make them longer).
SCENARIO = Kind("scenario file", 4 << 20)
#: An 'nvidia-smi topo -m' matrix (a few KiB even for 16 GPUs and 16 NICs).
NVSMI = Kind("nvidia-smi topo -m output", 1 << 20)
#: The most TOML p2pview parses: tomllib takes about 2 s per MiB of the worst
#: input. A 20,000-function topology is 4 MiB of TOML (and 5 MiB of JSON).
TOML = Kind("TOML document", 16 << 20)


class ReadRefused(SourceError):
    """A file that was not read: not a regular file, over its cap, or unreadable."""


def describe_mode(mode: int) -> str:
    """What a non-regular file is, in words: ``"a FIFO"``, ``"a character device"`` ..."""
    for test, words in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def over_cap(name: str, kind: Kind, size: int | None = None) -> ReadRefused:
    """The refusal of a file larger than its kind's cap."""
    how_big = f"{size:,} bytes" if size is not None else "more than that"
    return ReadRefused(
        f"{name}: {how_big}; a {kind.name} is at most {size_text(kind.cap)}; not read"
    )


_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


def read_fd_bounded(fd: int, name: str, kind: Kind) -> bytes:
    """Read an open file: a regular file only, at most ``kind.cap`` bytes.

    Raises:
        ReadRefused: not a regular file, or more than the cap (for non-head kinds).
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ReadRefused(f"{name}: {describe_mode(st.st_mode)}, not a regular file; not read")
    # A regular file never blocks; O_NONBLOCK only kept the open from waiting.
    # sysfs says 4096 and procfs 0 whatever they hold: the size only refuses early.
    if not kind.head and st.st_size > kind.cap:
        raise over_cap(name, kind, st.st_size)
    chunks: list[bytes] = []
    wanted = kind.cap + 1
    while wanted > 0:
        chunk = os.read(fd, wanted)
        if not chunk:
            break
        chunks.append(chunk)
        if len(chunk) < min(wanted, 4096):
            # A short read of less than a page is the end of the file (sysfs
            # returns an attribute in one read); this saves a second read()
            # per attribute, some 30,000 on a 2,000-function host.
            break
        wanted -= len(chunk)
    data = b"".join(chunks)
    if len(data) > kind.cap:
        if kind.head:
            return data[: kind.cap]
        raise over_cap(name, kind)
    return data


def read_and_close(fd: int, name: str, kind: Kind) -> bytes:
    """:func:`read_fd_bounded` on a descriptor the caller hands over: closed here, always.

    Raises:
        ReadRefused: as :func:`read_fd_bounded`, and for an error of the read itself.
    """
    try:
        return read_fd_bounded(fd, name, kind)
    except OSError as exc:
        raise ReadRefused(f"{name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_bounded(path: str | os.PathLike[str], kind: Kind, *, name: str | None = None) -> bytes:
    """Read the regular file at ``path`` (links followed), at most ``kind.cap`` bytes.

    ``name`` is what messages call the file (default: the path).

    Raises:
        ReadRefused: missing, unreadable, not a regular file, or over the cap;
            the message names the file and says why.
    """
    label = name if name is not None else str(path)
    try:
        # stat before open: opening some devices does something (a watchdog
        # starts counting, a tape rewinds), so only regular files are opened.
        st = os.stat(path)
    except OSError as exc:
        raise ReadRefused(f"{label}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ReadRefused(f"{label}: {describe_mode(st.st_mode)}, not a regular file; not read")
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise ReadRefused(f"{label}: {exc.strerror or exc}") from None
    return read_and_close(fd, label, kind)


#: What the first bytes of a file say it is.
_MAGIC = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def sniff_archive(head: bytes) -> str | None:
    """``"gz"``, ``"bz2"``, ``"xz"`` or ``"tar"`` from a file's first 512 bytes; else ``None``."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[257:262] == b"ustar":
        return "tar"
    return None


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (never a FIFO or device).

    For readers that stream a file (the archive reader) rather than take it whole.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused(f"{path}: {describe_mode(st.st_mode)}, not a regular file; not read")
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise ReadRefused(f"{path}: {exc.strerror or exc}") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise ReadRefused(f"{path}: not a regular file; not read")
    return handle


def is_tarball(path: Path) -> bool:
    """Whether ``path`` is a regular file that starts like a (compressed) tar archive.

    Only the first 512 bytes are read: detection never reads a whole file.
    Here, not in :mod:`p2pview.sources.archive`, so that a source that is not
    an archive is told apart without importing tarfile and the sysfs reader.
    """
    try:
        with open_regular(path) as handle:
            head = handle.read(512)
    except (OSError, SourceError):
        return False
    return sniff_archive(head) is not None


def not_a_source(path: Path) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a directory.

    ``"a FIFO (named pipe)"``, ``"a character device"`` ..., or ``None``. Only
    ``stat`` is called: nothing is opened.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return describe_mode(mode)


def read_text_bounded(path: Path | str, kind: Kind, *, name: str | None = None) -> str:
    """:func:`read_bounded`, decoded as UTF-8.

    Raises:
        ReadRefused: as :func:`read_bounded`, or ``"FILE: offset N: not UTF-8 text"``.
    """
    label = name if name is not None else str(path)
    raw = read_bounded(path, kind, name=label)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadRefused(f"{label}: offset {exc.start}: not UTF-8 text") from None


def load_toml(text: str, path: str) -> dict[str, Any]:
    """``tomllib.loads`` after :func:`~p2pview.sources.checks.check_toml_shape`.

    Raises:
        SourceError: ``"PATH: line N: ..."``, or a document over 16 MiB.
    """
    if len(text) > TOML.cap:
        raise SourceError(
            f"{path}: {len(text):,} characters of TOML; p2pview parses TOML up to"
            f" {size_text(TOML.cap)} (write large topologies as JSON: p2pview convert"
            " --to json)"
        )
    try:
        check_toml_shape(text)
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{path}: {_toml_line(str(exc), text)}invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{path}: {exc}") from None


def _toml_line(message: str, text: str) -> str:
    m = re.search(r"\(at line (\d+)", message)
    if m:
        return f"line {m[1]}: "
    return f"line {text.count(chr(10)) + 1}: "  # "(at end of document)"
