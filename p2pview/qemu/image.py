"""The kernel release a bzImage or vmlinux carries, read from the image itself.

``p2pview verify --kernel IMAGE`` judges the guest by the era of the release it
boots, so it must know that release before booting, without a flag:

* bzImage: the x86 boot protocol's setup header (Documentation/arch/x86/boot.rst
  [recalled]): the magic ``HdrS`` at 0x202 and, at 0x20E, ``kernel_version``, a
  pointer (minus 0x200) to a NUL-terminated string starting with the release,
  e.g. ``6.12.117 (root@host) #1 SMP ...``. This is what ``file`` prints.
* vmlinux (the uncompressed ELF that QEMU boots through PVH): ``linux_banner``,
  ``Linux version 6.12.117 (root@host) (gcc ...) #1 ...`` in its read-only data
  (init/version.c [recalled]).

The image is read in bounded chunks: a few KiB of header, and at most
:data:`MAX_SCAN` bytes when looking for the banner.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

from p2pview.model.errors import InputError

#: The most of a vmlinux scanned for the banner (a tiny oracle vmlinux is ~20 MiB).
MAX_SCAN = 512 << 20
_CHUNK = 4 << 20
_BANNER = b"Linux version "
_RELEASE = re.compile(rb"[0-9]+\.[0-9]+[0-9A-Za-z.+~_-]*")


class ImageError(InputError):
    """IMAGE (``--kernel``) is not a kernel whose release can be read; one line naming the file."""


def _release_at(data: bytes, where: str, path: Path) -> str:
    m = _RELEASE.match(data)
    if m is None:
        raise ImageError(f"{path}: {where} holds no kernel release")
    return m.group().decode("ascii")


def _from_bzimage(head: bytes, fh: BinaryIO, path: Path) -> str | None:
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    pointer = int.from_bytes(head[0x20E:0x210], "little")
    if pointer == 0:
        raise ImageError(f"{path}: bzImage setup header has no kernel_version string")
    offset = pointer + 0x200
    fh.seek(offset)
    text = fh.read(256)
    return _release_at(text, "the setup header's kernel_version", path)


def _from_banner(fh: BinaryIO, path: Path) -> str | None:
    fh.seek(0)
    carry = b""
    scanned = 0
    while scanned < MAX_SCAN:
        chunk = fh.read(_CHUNK)
        if not chunk:
            return None
        scanned += len(chunk)
        data = carry + chunk
        at = data.find(_BANNER)
        if at >= 0:
            tail = data[at + len(_BANNER) : at + len(_BANNER) + 128]
            if len(tail) < 128:
                tail += fh.read(128)
            return _release_at(tail, "the 'Linux version' banner", path)
        carry = data[-len(_BANNER) :]
    return None


def kernel_release(path: Path) -> str:
    """The release string (``6.12.117``, ``7.3.0-rc7``) of a bzImage or vmlinux.

    Raises:
        ImageError: unreadable, or no release found (one line naming the file).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(0x1000)
            release = _from_bzimage(head, fh, path)
            if release is None:
                release = _from_banner(fh, path)
    except OSError as exc:
        raise ImageError(f"{path}: {exc.strerror or exc}") from None
    if release is None:
        raise ImageError(
            f"{path}: neither a bzImage setup header nor a 'Linux version' banner"
            " (expected a bzImage or an uncompressed vmlinux)"
        )
    return release
