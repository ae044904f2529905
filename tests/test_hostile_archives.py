"""Hostile capture archives: link escapes, special members, bombs, truncation.

Every case is built by code (``hostile.py``) and run in a capped child; the
harness checks that nothing is written outside the case's space, that TMPDIR
stays empty and that the process's own ``/proc/self/comm`` is untouched.
"""

from __future__ import annotations

import os
import tarfile

import pytest
from hostile import (
    M,
    Sandbox,
    compressed,
    config_space,
    device_members,
    good_capture,
    gzip_bomb,
    many_members,
    raw_header,
    tar_bytes,
    write_archive,
)

NVME = "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"
GOOD = {"0000:00:01.0", "0000:01:00.0", "0000:01:00.1"}


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


def _probe(box: Sandbox, members: list[M], compress: str = "gz"):
    archive = write_archive(box.box / f"evil.tar.{compress}", members, compress)
    outcome = box.run(probe=str(archive))
    assert outcome.code == 0, outcome.stderr
    return outcome.probe()


def _devices(doc) -> dict[str, dict]:
    return {d["bdf"]: d for d in doc["devices"]}


def _problems(doc) -> str:
    return "\n".join(doc["problems"])


def test_a_good_capture_reads_back(box):
    doc = _probe(box, good_capture())
    assert set(_devices(doc)) == GOOD and doc["problems"] == []
    assert doc["platform"]["cpu_vendor"] == "AuthenticAMD"


def _escape_members(box: Sandbox, variant: str) -> list[M]:
    canary = str(box.canary)
    if variant == "relative chain":
        # The chain: each link looks inside on its own (a/x climbs the five
        # levels of its own name), together they lead out. An extractor into
        # TMPDIR/p2pview-XXXX would resolve a/x five levels above that directory:
        # the target is aimed from there at the canary.
        five_up = box.tmp.parent.parent.parent.parent
        aim = os.path.relpath(box.canary, five_up)
        return [
            M("sys/bus/pci/devices/a", "l", link="../../../.."),
            M("sys/bus/pci/devices/a/x", "l", link="../../../../../" + aim),
            M("sys/bus/pci/devices/a/x/pwned", data=b"owned\n"),
        ]
    if variant == "absolute chain":
        return [
            M("sys/bus/pci/devices/a", "l", link="/"),
            M("sys/bus/pci/devices/a/x", "l", link=canary),
            M("sys/bus/pci/devices/a/x/pwned", data=b"owned\n"),
        ]
    if variant == "directory link":
        return [
            M("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/p2pmem", "l", link=canary),
            M("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/p2pmem/size", data=b"1\n"),
        ]
    raise AssertionError(variant)


@pytest.mark.parametrize("variant", ["relative chain", "absolute chain", "directory link"])
def test_link_chains_never_lead_a_write_outside(box, variant):
    doc = _probe(box, [*good_capture(), *_escape_members(box, variant)])
    assert set(_devices(doc)) == GOOD
    assert "below an earlier member that is a link" in _problems(doc)
    assert not (box.canary / "pwned").exists() and not (box.canary / "size").exists()


def test_a_file_after_a_link_of_the_same_name_replaces_the_link(box):
    members = [
        *good_capture(),
        M(f"{NVME}/vendor", "l", link=str(box.canary / "keep.txt")),
        M(f"{NVME}/vendor", data=b"0x1234\n"),
    ]
    doc = _probe(box, members)
    assert _devices(doc)["0000:01:00.0"]["vendor"] == 0x1234
    assert (box.canary / "keep.txt").read_text() == "canary\n"


def test_a_link_to_proc_self_is_dangling(box):
    members = [
        *good_capture(),
        M("sys/bus/pci/devices/0000:02:00.0", "l", link="/proc/self"),
        M("sys/bus/pci/devices/0000:02:00.0/comm", data=b"pwned\n"),
    ]
    doc = _probe(box, members)
    assert set(_devices(doc)) == GOOD
    assert "0000:02:00.0: a dangling link" in _problems(doc)


def test_absolute_links_resolve_inside_the_archive_never_on_this_host(box):
    members = [m for m in good_capture() if m.name != "sys/bus/pci/devices/0000:01:00.1"] + [
        # Inside the archive: an absolute target starts at the archive's top.
        M(
            "sys/bus/pci/devices/0000:01:00.1",
            "l",
            link="/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1",
        ),
        # This host's /sys has 0000:00:00.0; the archive does not.
        M("sys/bus/pci/devices/0000:00:00.0", "l", link="/sys/devices/pci0000:00/0000:00:00.0"),
    ]
    doc = _probe(box, members)
    assert set(_devices(doc)) == GOOD
    assert "0000:00:00.0: a dangling link" in _problems(doc)


@pytest.mark.parametrize(
    ("links", "says"),
    [
        ({"0000:03:00.0": "../" * 40 + "etc"}, "leads above the top of the tree"),
        ({"0000:03:00.0": "0000:03:00.0"}, "loops"),
        ({"0000:03:00.0": "0000:04:00.0", "0000:04:00.0": "0000:03:00.0"}, "loops"),
    ],
    ids=["dotdot chain", "self loop", "two-link loop"],
)
def test_links_that_leave_or_loop_are_reported(box, links, says):
    members = [*good_capture()]
    members += [M(f"sys/bus/pci/devices/{k}", "l", link=v) for k, v in links.items()]
    doc = _probe(box, members)
    assert set(_devices(doc)) == GOOD
    assert f"sys/bus/pci/devices/0000:03:00.0: a link that {says}" in _problems(doc)


def test_forty_links_resolve_and_forty_one_loop(box):
    def chain(n: int, start: str) -> list[M]:
        """n links: bus/pci/devices/<start>0 -> <start>1 -> ... -> the 01:00.1 directory."""
        here = "sys/bus/pci/devices"
        out = [M(f"{here}/{start}{i}", "l", link=f"{start}{i + 1}") for i in range(n - 1)]
        target = "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.1"
        return [*out, M(f"{here}/{start}{n - 1}", "l", link=target)]

    members = [m for m in good_capture() if m.name != "sys/bus/pci/devices/0000:01:00.1"]
    members += [
        *chain(39, "a"),
        M("sys/bus/pci/devices/0000:01:00.1", "l", link="a0"),
        *chain(40, "b"),
        M("sys/bus/pci/devices/0000:05:00.0", "l", link="b0"),
    ]
    doc = _probe(box, members)
    assert set(_devices(doc)) == GOOD  # 40 links in all: still resolved
    assert "0000:05:00.0: a link that loops" in _problems(doc)


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (M(f"{NVME}/config", "l", link="/dev/zero"), "a symbolic link, not a regular file"),
        (M(f"{NVME}/config", "p"), "a FIFO in the archive"),
        (M(f"{NVME}/config", "c"), "a character device in the archive"),
        (M(f"{NVME}/config", "b"), "a block device in the archive"),
    ],
    ids=["link to /dev/zero", "FIFO", "character device", "block device"],
)
def test_special_members_are_never_read(box, member, says):
    members = [m for m in good_capture() if m.name != f"{NVME}/config"] + [member]
    doc = _probe(box, members)
    nvme = _devices(doc)["0000:01:00.0"]
    assert any(n.startswith("config: ") and says in n for n in nvme["notes"]), nvme["notes"]
    assert nvme["vendor"] == 0x144D  # the vendor file is still read
    assert nvme["acs_fact"].startswith("assumed: config space unreadable")


def test_hard_links_copy_an_earlier_member_or_are_skipped(box):
    members = [m for m in good_capture() if m.name != f"{NVME}/device"]
    members += [
        M(f"{NVME}/device", "h", link=f"{NVME}/vendor"),
        M("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/numa_node", "h", link="nowhere"),
    ]
    doc = _probe(box, members)
    assert _devices(doc)["0000:01:00.0"]["device"] == 0x144D
    assert "hard links to no earlier file member" in _problems(doc)


def test_unsafe_member_names_are_skipped(box):
    members = [
        *good_capture(),
        M(f"/{NVME}/numa_node", data=b"1\n"),
        M(f"../{NVME}/revision", data=b"0x01\n"),
        M(str(box.canary / "sys/devices/x"), data=b"x"),
    ]
    doc = _probe(box, members)
    assert "with an absolute name or '..'" in _problems(doc)
    assert set(_devices(doc)) == GOOD


# -- bombs ---------------------------------------------------------------------------


def test_a_sparse_4_gib_member_is_not_read(box):
    members = [m for m in good_capture() if not m.name.endswith("0000:01:00.1/config")]
    raw = tar_bytes(members)
    raw = raw[: _member_ends(raw)[-1]]  # without the end-of-archive blocks
    raw += raw_header(
        "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/config",
        b"S",
        512,
        sparse=[((4 << 30) - 512, 512)],
        realsize=4 << 30,
    )
    raw += bytes(512) + bytes(1024)
    archive = box.box / "sparse.tar.gz"
    archive.write_bytes(compressed(raw, "gz"))
    doc = box.run(probe=str(archive)).probe()
    notes = _devices(doc)["0000:01:00.1"]["notes"]
    assert any("4,294,967,296 bytes; a PCI config space is at most 4 KiB" in n for n in notes)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (
            raw_header("junk", b"S", 0, sparse=[(0, 0)], realsize=1 << 40, extended=True),
            "a sparse member with a long sparse map",
        ),
        (raw_header("././@PaxHeader", b"x", 1 << 30), "a header extension of 1,073,741,824 bytes"),
        (raw_header("././@LongLink", b"L", 100 << 20), "a header extension of 104,857,600 bytes"),
    ],
    ids=["extended sparse map", "1 GiB pax header", "100 MiB long name"],
)
def test_header_bombs_stop_at_once(box, header, says):
    archive = box.box / "bomb.tar.gz"
    archive.write_bytes(compressed(header + bytes(4096), "gz"))
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2 and str(archive) in outcome.error and says in outcome.error


def test_a_decompression_bomb_stops_at_512_mib(box):
    archive = box.box / "bomb.tar.gz"
    archive.write_bytes(gzip_bomb(600 << 20))
    assert archive.stat().st_size < 1 << 20
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2
    assert "more than 512 MiB of tar data once decompressed" in outcome.error


def test_a_hundred_thousand_members_end_within_seconds(box):
    archive = box.box / "many.tar.gz"
    archive.write_bytes(many_members(100_000))
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2 and "an archive without a sys/ tree inside" in outcome.error


def test_the_member_limit_is_an_error(box):
    archive = box.box / "many.tar.gz"
    archive.write_bytes(many_members(3_000))
    outcome = box.run(["matrix", str(archive)], limits={"members": 2_000})
    assert outcome.code == 2 and "more than 2,000 members; not read" in outcome.error


def test_the_kept_bytes_limit_is_an_error(box):
    archive = write_archive(box.box / "cap.tar.gz", good_capture())
    outcome = box.run(["matrix", str(archive)], limits={"kept_bytes": 100})
    assert outcome.code == 2 and "in the members a sysfs reader reads" in outcome.error


def test_five_gib_of_zeros_is_refused_without_reading_it(box):
    zeros = box.box / "zeros.bin"
    with open(zeros, "wb") as fh:
        fh.truncate(5 << 30)  # sparse: no disk used
    outcome = box.run(["matrix", str(zeros)])
    assert outcome.code == 2
    assert "5,368,709,120 bytes; a text dump is at most 64 MiB" in outcome.error
    assert outcome.seconds < 5


def test_a_compressed_file_that_is_not_a_tar_is_named(box):
    archive = box.box / "notes.txt.gz"
    archive.write_bytes(compressed(b"hello\n" * 1000, "gz"))
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2 and "gzip-compressed, but not a tar archive inside" in outcome.error


# -- truncated and damaged -----------------------------------------------------------


def _member_ends(raw: bytes) -> list[int]:
    """Byte offsets where each member (header and data) ends in a plain tar."""
    ends = []
    with tarfile.open(fileobj=__import__("io").BytesIO(raw)) as tar:
        for m in tar:
            ends.append(m.offset_data + ((m.size + 511) // 512) * 512)
    return ends


@pytest.mark.parametrize("where", ["member boundary", "inside a header", "inside data"])
def test_a_truncated_tar_is_an_error_not_a_smaller_machine(box, where):
    raw = tar_bytes(good_capture())
    ends = _member_ends(raw)
    cut = {
        "member boundary": ends[len(ends) // 2],
        "inside a header": ends[len(ends) // 2] + 100,
        "inside data": ends[2] - 300,
    }[where]
    archive = box.box / "cut.tar"
    archive.write_bytes(raw[:cut])
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2 and f"{archive}: truncated" in outcome.error, outcome.error


@pytest.mark.parametrize("how", ["gz", "bz2", "xz"])
def test_a_truncated_compressed_archive_is_an_error(box, how):
    data = compressed(tar_bytes(good_capture()), how)
    archive = box.box / f"cut.tar.{how}"
    archive.write_bytes(data[: len(data) * 2 // 3])
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2 and "truncated" in outcome.error, outcome.error


def test_a_damaged_tar_is_an_error(box):
    raw = bytearray(tar_bytes(good_capture()))
    at = _member_ends(bytes(raw))[4]
    raw[at : at + 512] = os.urandom(512)
    archive = box.box / "damaged.tar"
    archive.write_bytes(bytes(raw))
    outcome = box.run(["matrix", str(archive)])
    assert outcome.code == 2 and "damaged" in outcome.error, outcome.error


def test_device_members_helper_makes_the_layout_the_reader_wants():
    members = device_members("0000:00:02.0", "pci0000:00/0000:00:02.0", 0x020000)
    assert members[0].data == config_space(0x144D, 0xA808, 0x020000)
    assert members[-1] == M(
        "sys/bus/pci/devices/0000:00:02.0", "l", link="../../../devices/pci0000:00/0000:00:02.0"
    )
