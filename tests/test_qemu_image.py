"""`p2pview verify` reads the booted release from the kernel image, not from a flag."""

from __future__ import annotations

import pytest

from p2pview.kernel import KernelTarget
from p2pview.kernel.version import VersionError
from p2pview.qemu.image import ImageError, kernel_release
from p2pview.qemu.verify import image_target


def bzimage(version: bytes, pointer: int = 0x3A0) -> bytes:
    """A setup header as the x86 boot protocol lays it out, with ``kernel_version``."""
    data = bytearray(0x4000)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = pointer.to_bytes(2, "little")
    at = pointer + 0x200
    data[at : at + len(version) + 1] = version + b"\0"
    return bytes(data)


@pytest.mark.parametrize(
    ("text", "release", "era"),
    [
        (b"5.10.223 (root@vm) #1 SMP Sun Dec 6 2026", "5.10.223", "v5.9-v5.14"),
        (b"6.1.176 (root@vm) #1 SMP", "6.1.176", "v5.19-v7.0"),
        (b"6.12.117 (root@vm) #1 SMP PREEMPT_DYNAMIC", "6.12.117", "v5.19-v7.0"),
        (b"7.2.13 (root@vm) #1 SMP", "7.2.13", "v7.1+"),
        (b"7.3.0-rc7 (root@vm) #1 SMP", "7.3.0-rc7", "v7.1+"),
    ],
)
def test_bzimage_header_gives_the_release_and_era(tmp_path, text, release, era):
    image = tmp_path / "bzImage"
    image.write_bytes(bzimage(text))
    assert kernel_release(image) == release
    got, target = image_target(image)
    assert got == release and target.profile.title == era


def test_vmlinux_banner_gives_the_release(tmp_path):
    image = tmp_path / "vmlinux"
    # the banner straddles a read chunk: the scan must keep the tail of the last one
    filler = b"\x7fELF" + b"\0" * ((4 << 20) - 10)
    image.write_bytes(filler + b"Linux version 5.10.223 (root@vm) (gcc 12.2.0) #1 SMP\n")
    assert kernel_release(image) == "5.10.223"


@pytest.mark.parametrize(
    "content",
    [b"", b"not a kernel at all", bzimage(b"garbage", 0x3A0)[:0x210] + b"\0" * 10],
)
def test_not_a_kernel_is_one_line_naming_the_file(tmp_path, content):
    image = tmp_path / "image"
    image.write_bytes(content)
    with pytest.raises(ImageError) as exc:
        kernel_release(image)
    assert str(image) in str(exc.value) and "\n" not in str(exc.value)


def test_a_release_without_p2pdma_is_refused_before_booting(tmp_path):
    image = tmp_path / "bzImage"
    image.write_bytes(bzimage(b"4.19.300 (root@vm) #1 SMP"))
    with pytest.raises(VersionError, match=r"v4\.20"):
        image_target(image)


def test_missing_image(tmp_path):
    with pytest.raises(ImageError, match="image"):
        kernel_release(tmp_path / "image")


def test_the_era_is_what_matrix_uses_for_that_release():
    for release in ("5.10.223", "6.1.176", "6.12.117", "7.2.13", "7.3.0-rc7"):
        assert KernelTarget.parse(release).profile.key in ("5.9", "5.19", "7.1")
