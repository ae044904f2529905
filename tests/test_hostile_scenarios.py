"""Every bad scenario field and trace option, and ``capture`` on hostile trees.

Scenario values are checked as the kernel checks them (``blk_validate_limits()``,
``UIO_MAXIOV``) or against what the simulator can hold; each bad value is one
line naming the file and the key. A negative file offset is the kernel's to
refuse: the trace ends in EINVAL, as ``ksys_pread64()`` does.
"""

from __future__ import annotations

import tarfile

import pytest
from hostile import NVME_DIR, M, Sandbox, good_capture, write_tree

SCENARIO = {
    "topology": '"switch-nvme"',
    "buffer.kind": '"p2pmem"',
    "buffer.provider": '"1a:00.0"',
    "buffer.size": '"64K"',
    "io.length": '"64K"',
    "target.client": '"1b:00.0"',
}


def _scenario_text(changes: dict[str, str]) -> str:
    """A scenario file from :data:`SCENARIO` with keys changed (a value of None drops it)."""
    values = {**SCENARIO, **changes}
    tables: dict[str, list[str]] = {"": [], "buffer": [], "io": [], "target": [], "nvme": []}
    for key, value in values.items():
        if value is None:
            continue
        table, _, name = key.rpartition(".")
        tables[table].append(f"{name} = {value}")
    out = tables[""][:]
    for table in ("buffer", "io", "target", "nvme"):
        if tables[table]:
            header = "[[buffer]]" if table == "buffer" else f"[{table}]"
            out += [header, *tables[table]]
    return "\n".join(out) + "\n"


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


BAD_FIELDS = [
    ("io.length", "0", "io.length: 0 is out of range (at least 1)"),
    ("target.logical_block_size", "0", "target.logical_block_size: 0 is out of range"),
    ("target.logical_block_size", "1000", "1000 is not a power of two"),
    ("target.logical_block_size", "131072", "131072 is out of range (from 512 to 65536"),
    ("target.seg_boundary_mask", "-1", "target.seg_boundary_mask: -1 is out of range"),
    ("target.seg_boundary_mask", "0x12345", "0x12345 is not a mask"),
    ("target.virt_boundary_mask", "-1", "target.virt_boundary_mask: -1 is out of range"),
    ("target.max_segments", "0", "target.max_segments: 0 is out of range (from 1 to 65535)"),
    ("target.max_segments", "70000", "target.max_segments: 70000 is out of range"),
    ("target.max_sectors_kb", "0", "target.max_sectors_kb: 0 is out of range"),
    ("target.max_segment_size", "0", "target.max_segment_size: 0 is out of range"),
    ("buffer.region_address", "-4096", "buffer[0].region_address: -4096 is out of range"),
    ("buffer.size", "0", "buffer[0].size: 0 is out of range"),
    ("buffer.size", '"2T"', "p2pview simulates buffers up to 4 GiB"),
    ("buffer.pool_offset", "100", "buffer[0].pool_offset: 0x64 is not a multiple of the page"),
    ("buffer.pool_offset", "-4096", "buffer[0].pool_offset: -4096 is out of range"),
    ("buffer.bar", "7", "buffer[0].bar: 7 is out of range (from 0 to 5; BARs 0-5)"),
    ("buffer.shared", '"false"', "buffer[0].shared: expected true or false, got 'false'"),
    ("nvme.sgl_threshold", "-1", "nvme.sgl_threshold: -1 is out of range"),
    ("io.file_offset", str(1 << 63), "io.file_offset: 0x8000000000000000 is out of range"),
    ("io.iovecs", "[" + ", ".join(["{offset = 0, length = 512}"] * 1025) + "]", "at most 1,024"),
    ("io.iovecs", "[{offset = -1, length = 512}]", "io.iovecs[0].offset: -1 is out of range"),
    ("io.iovecs", "[{offset = 0, length = 0}]", "io.iovecs[0].length: 0 is out of range"),
    ("io.extent_boundaries", "[-1]", "io.extent_boundaries: -1 is out of range"),
    ("kernel", "5", "kernel: expected a string, got 5"),
    ("kernel", '"banana"', "kernel: not a kernel version: 'banana'"),
    ("kernel", '"4.19"', "kernel: kernel 4.19: P2PDMA (drivers/pci/p2pdma.c) was merged in v4.20"),
    ("target.client", '"zz"', "target.client: not a PCI address: 'zz'"),
    ("target.client", '"1d:00.0"', "client 0000:1d:00.0 is not an NVMe controller"),
    ("target.client", '"19:00.0"', "client 0000:19:00.0 is a bridge or switch port"),
    ("io.length", '"0x' + "f" * 5000 + '"', "too long for a number"),
]


@pytest.mark.parametrize(
    ("key", "value", "says"), BAD_FIELDS, ids=[f"{k}={v[:12]}" for k, v, _ in BAD_FIELDS]
)
def test_every_bad_scenario_field_is_one_line(box, key, value, says):
    path = box.box / "bad.toml"
    changes = {key: value}
    if (
        key == "buffer.kind"
        or key.startswith("buffer.pfns")
        or (key == "buffer.size" and "T" in value)
    ):
        changes["buffer.kind"] = '"ram"'
        changes["buffer.provider"] = None
    if key.startswith("io.") and key != "io.length":
        changes["io.length"] = None
    path.write_text(_scenario_text(changes))
    outcome = box.run(["trace", str(path)])
    assert outcome.code == 2, outcome.stdout[-1500:]
    assert says in outcome.error and (str(path) in outcome.error or "trace" in outcome.error), (
        outcome.error
    )


def test_a_ram_buffer_of_a_terabyte_is_refused_before_any_array(box):
    path = box.box / "ram.toml"
    path.write_text(_scenario_text({"buffer.kind": '"ram"', "buffer.provider": None,
                                    "buffer.size": '"1T"', "io.length": '"4K"'}))  # fmt: skip
    outcome = box.run(["trace", str(path)])
    assert outcome.code == 2 and "up to 4 GiB" in outcome.error


@pytest.mark.parametrize("key", ["buffer.pfns", "buffer.base_pfn"])
def test_page_frames_fit_52_bits(box, key):
    value = "[-1]" if key == "buffer.pfns" else str(1 << 60)
    changes = {"buffer.kind": '"ram"', "buffer.provider": None, key: value}
    path = box.box / "pfn.toml"
    path.write_text(_scenario_text(changes))
    outcome = box.run(["trace", str(path)])
    assert outcome.code == 2 and "out of range" in outcome.error, outcome.error


def test_a_negative_file_offset_is_einval_as_the_kernel_says(box):
    path = box.box / "neg.toml"
    path.write_text(_scenario_text({"io.file_offset": "-512"}))
    outcome = box.run(["trace", str(path), "--json"])
    assert outcome.code == 1  # the simulated I/O failed (EXIT_IO_FAILED), not bad input
    assert '"errno": "EINVAL"' in outcome.stdout and "negative file offset -512" in outcome.stdout


def test_a_deeply_nested_scenario_is_refused_before_parsing(box):
    path = box.box / "deep.toml"
    path.write_text("a = " + "[" * 100_000)
    outcome = box.run(["trace", str(path)])
    assert outcome.code == 2 and "nested more than 32 deep" in outcome.error


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--size", "0"], "--size 0: must be positive"),
        (["--size", "-1"], "--size -1: must be positive"),
        (["--size", "1T"], "p2pview simulates buffers up to 4 GiB"),
        (["--size", "4K", "--offset", "-512"], "--offset -512: must be zero or more"),
        (["--size", "0x" + "f" * 5000], "too long for a number"),
        (["--size", "4K", "--client", "1d:00.0"], "is not an NVMe controller"),
        (["--size", "4K", "--client", "19:00.0"], "is a bridge or switch port"),
    ],
    ids=["size 0", "size -1", "size 1T", "offset -512", "size 5000 digits", "NIC", "switch port"],
)
def test_trace_options_are_checked(box, options, says):
    argv = ["trace", "switch-nvme", "--provider", "1a:00.0", "--client", "1b:00.0", *options]
    outcome = box.run(argv)
    assert outcome.code == 2 and says in outcome.error, outcome.error


# -- capture ---------------------------------------------------------------------------


def _hostile_tree(box: Sandbox):
    members = [m for m in good_capture() if not m.name.endswith(("0000:01:00.0/config", "cpuinfo"))]
    members += [
        M(f"{NVME_DIR}/config", "p"),
        M("proc/cpuinfo", "p"),
        M(f"{NVME_DIR}/driver", "l", link="../../../../bus/pci/drivers/nvme"),
    ]
    return write_tree(box.box / "tree", members)


def test_capture_of_a_tree_with_fifos_ends_and_reads_back(box):
    tree = _hostile_tree(box)
    outcome = box.run(
        ["capture", "--root", str(tree), "-o", "out.tar.gz"], allow_new=("out.tar.gz",)
    )
    assert outcome.code == 0, outcome.stderr
    with tarfile.open(box.work / "out.tar.gz") as tar:
        names = tar.getnames()
    assert f"{NVME_DIR}/vendor" in names and f"{NVME_DIR}/config" not in names
    doc = box.run(probe=str(box.work / "out.tar.gz")).probe()
    assert {d["bdf"] for d in doc["devices"]} == {"0000:00:01.0", "0000:01:00.0", "0000:01:00.1"}


def test_capture_into_a_missing_directory_leaves_nothing(box):
    outcome = box.run(["capture", "--root", str(_hostile_tree(box)), "-o", "no/such/out.tar.gz"])
    assert outcome.code == 2 and "cannot write the capture" in outcome.error


def test_capture_stopped_by_sigterm_leaves_no_file(box):
    outcome = box.run(
        ["capture", "--root", str(_hostile_tree(box)), "-o", "out.tar.gz"],
        sigterm_after_files=5,
    )
    assert outcome.code == 128 + 15
    assert outcome.error == "p2pview: capture stopped by SIGTERM; out.tar.gz not written"
    assert list(box.work.iterdir()) == []


def test_capture_over_a_link_replaces_the_link_not_its_target(box):
    (box.work / "out.tar.gz").symlink_to(box.canary / "keep.txt")
    outcome = box.run(
        ["capture", "--root", str(_hostile_tree(box)), "-o", "out.tar.gz"],
        allow_new=("out.tar.gz",),
    )
    assert outcome.code == 0
    assert (box.canary / "keep.txt").read_text() == "canary\n"
    assert not (box.work / "out.tar.gz").is_symlink()
