"""Hostile files and directories: FIFOs, devices, huge and odd values, deep nesting.

Each case runs in a capped child (``hostile.py``): it must end within seconds,
within the memory cap, with one line of error naming the file or a result
whose notes say what was refused, and write nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hostile import NVME_DIR, M, Sandbox, good_capture, make_fifo, make_socket, write_tree

GOOD = {"0000:00:01.0", "0000:01:00.0", "0000:01:00.1"}


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


def _tree(box: Sandbox, *extra: M, drop: tuple[str, ...] = ()) -> Path:
    members = [m for m in good_capture() if m.name not in drop]
    return write_tree(box.box / "tree", [*members, *extra])


def _probe(box: Sandbox, source: Path | str, **kwargs) -> dict:
    outcome = box.run(probe=str(source), **kwargs)
    assert outcome.code == 0, outcome.stderr
    return outcome.probe()


def _device(doc: dict, bdf: str) -> dict:
    return next(d for d in doc["devices"] if d["bdf"] == bdf)


def _noted(device: dict, text: str) -> bool:
    return any(text in n for n in device["notes"])


def _error(box: Sandbox, source: Path | str, *more: str) -> str:
    outcome = box.run(["matrix", str(source), *more])
    assert outcome.code == 2, outcome.stdout[-2000:]
    return outcome.error


# -- special files given as SOURCE ---------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "link to dev-zero", "socket"])
def test_special_files_as_source_end_at_once(box, kind):
    path = box.box / "source"
    if kind == "fifo":
        make_fifo(path)
    elif kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "link to dev-zero":
        os.symlink("/dev/zero", path)
    else:
        path = make_socket(box.box / "s")
    error = _error(box, path)
    what = {
        "fifo": "a FIFO",
        "dev-zero": "a character device",
        "link to dev-zero": "a character device",
        "socket": "a socket",
    }[kind]
    assert error.startswith(f"p2pview: error: {path}: {what}"), error


# -- gathered directory trees ----------------------------------------------------------


NVME_CONFIG = f"{NVME_DIR}/config"


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (M(NVME_CONFIG, "p"), "a FIFO, device or socket, not a regular file"),
        (M(NVME_CONFIG, "l", link="/dev/zero"), "a symbolic link, not a regular file"),
        (M(NVME_CONFIG, "d"), "a directory, not a regular file"),
    ],
    ids=["FIFO", "link to /dev/zero", "directory"],
)
def test_a_config_that_is_not_a_file_is_noted_not_read(box, member, says):
    doc = _probe(box, _tree(box, member, drop=(NVME_CONFIG,)))
    notes = _device(doc, "0000:01:00.0")["notes"]
    assert any(n == f"config: {says}; not read" for n in notes), notes


@pytest.mark.parametrize("name", ["proc/cpuinfo", "proc/cmdline", "p2pview-capture.json"])
@pytest.mark.parametrize("kind", ["p", "l"])
def test_proc_files_and_the_manifest_never_hang(box, name, kind):
    member = M(name, "p") if kind == "p" else M(name, "l", link="/dev/zero")
    doc = _probe(box, _tree(box, member, drop=(name,)))
    assert any(p.startswith(f"{name}: ") for p in doc["problems"]), doc["problems"]
    if name == "proc/cpuinfo":
        assert doc["platform"]["cpu_fact"].startswith("assumed: proc/cpuinfo is missing")
    if name == "proc/cmdline":
        assert doc["platform"]["cmdline_fact"].startswith("assumed:")


def test_a_bus_link_out_of_the_tree_is_reported(box):
    canary_rel = os.path.relpath(box.canary, box.box / "tree/sys/bus/pci/devices")
    tree = _tree(
        box,
        M("sys/bus/pci/devices/0000:07:00.0", "l", link=canary_rel),
        M("sys/bus/pci/devices/not-a-function", "l", link="../../../devices"),
    )
    doc = _probe(box, tree)
    problems = "\n".join(doc["problems"])
    assert "0000:07:00.0: a link that leads above the top of the tree" in problems
    assert "1 entry not named like a PCI function (DDDD:BB:DD.F), skipped: 'not-a-function'" in (
        problems
    )
    assert {d["bdf"] for d in doc["devices"]} == GOOD


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root to read as nobody")
def test_an_unreadable_device_directory_gives_assumed_ids():
    base = Path(tempfile.mkdtemp(prefix="p2pview-hostile-"))
    try:
        os.chmod(base, 0o755)
        box = Sandbox(base)
        for path in (box.box, box.work, box.tmp):
            os.chmod(path, 0o777)
        tree = _tree(box)
        for dirpath, dirnames, _files in os.walk(tree):
            for d in dirnames:
                os.chmod(Path(dirpath) / d, 0o755)
        os.chmod(tree / NVME_DIR, 0o311)  # traversable, not listable or readable
        doc = _probe(box, tree, uid=65534)
        nvme = _device(doc, "0000:01:00.0")
        assert nvme["ids_fact"].startswith("assumed: the directory is unreadable")
        assert any("directory unreadable (Permission denied)" in n for n in nvme["notes"])
        assert (nvme["vendor"], nvme["device"]) == (0xFFFF, 0xFFFF)
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize(
    ("files", "check"),
    [
        ({"class": b"-1\n"}, lambda d: d["class"] == 0x010802),  # config space's class stands
        ({"class": b"0xffffffff\n"}, lambda d: d["class"] == 0x010802),
        ({"vendor": b"0x" + b"f" * 5000 + b"\n"}, lambda d: d["vendor"] == 0x144D),
        (
            {"revision": b"0x1ff\n"},
            lambda d: any("revision: 0x1ff is out of range" in n for n in d["notes"]),
        ),
        ({"current_link_width": b"99999\n"}, lambda d: d["link"][1] is None),
        ({"current_link_speed": b"x" * 50_000 + b"\n"}, lambda d: d["link"][0] is None),
        ({"numa_node": b"123456789\n"}, lambda d: any("numa_node" in n for n in d["notes"])),
        (
            {"resource": b"0xfffffffffffff000 0x1000000000000ffff 0x140204\n"},
            lambda d: d["bars"] == [] and any("64-bit" in n for n in d["notes"]),
        ),
        (
            {"resource": b"-0x1000 0x1fff 0x40200\n"},
            lambda d: d["bars"] == [] and any("64-bit" in n for n in d["notes"]),
        ),
        (
            {"resource": b"0x1000 0x1fff 0x40200\n" * 100},
            lambda d: len(d["bars"]) == 64 and any("100 lines" in n for n in d["notes"]),
        ),
        (
            {
                "resource": b"0xe0000000 0xefffffff 0x40200\n",
                "p2pmem__size": b"-5\n",
                "p2pmem__available": b"0\n",
                "p2pmem__published": b"1\n",
            },
            lambda d: d["p2pmem"] == [0, 0],
        ),
        (
            {
                "resource": b"0xe0000000 0xefffffff 0x40200\n",
                "p2pmem__size": b"1099511627776\n",
                "p2pmem__available": b"1099511627776\n",
                "p2pmem__published": b"1\n",
            },
            lambda d: (
                d["p2pmem"] == [0, 0]
                and any("more than the function's memory BARs hold" in n for n in d["notes"])
            ),
        ),
        (
            {"class": b"0x" + b"0" * (50 << 20)},
            lambda d: (
                any("more than that; a sysfs attribute is at most 64 KiB" in n for n in d["notes"])
                or any("a sysfs attribute is at most 64 KiB" in n for n in d["notes"])
            ),
        ),
    ],
    ids=[
        "class -1",
        "class 32 bits",
        "vendor of 5000 digits",
        "revision 9 bits",
        "link width",
        "50 KB link speed",
        "numa node",
        "resource past 2^64",
        "negative resource",
        "100 resource lines",
        "p2pmem size -5",
        "1 TiB p2pmem on a 256 MiB BAR",
        "50 MB attribute",
    ],
)
def test_odd_sysfs_values_are_refused_and_noted(box, files, check):
    extra = [M(f"{NVME_DIR}/{k.replace('__', '/')}", data=v) for k, v in files.items()]
    drop = tuple(f"{NVME_DIR}/{k.replace('__', '/')}" for k in files)
    doc = _probe(box, _tree(box, *extra, drop=drop))
    nvme = _device(doc, "0000:01:00.0")
    assert check(nvme), nvme


def test_a_sparse_5_gib_config_is_refused_without_reading(box):
    tree = _tree(box, drop=(NVME_CONFIG,))
    with open(tree / NVME_CONFIG, "wb") as fh:
        fh.truncate(5 << 30)
    doc = _probe(box, tree)
    notes = _device(doc, "0000:01:00.0")["notes"]
    assert any("5,368,709,120 bytes; a PCI config space is at most 4 KiB" in n for n in notes)


# -- text formats --------------------------------------------------------------------


def _text(box: Sandbox, name: str, text: str) -> Path:
    path = box.box / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("deep.json", '{"device": ' + "[" * 100_000, "nested more than 32 deep"),
        ("digits.json", '{"device": [' + "1" * 5000 + "]}", "a number of 5,000 digits"),
        ("deep.toml", "a = " + "{b = " * 100_000, "nested more than 32 deep"),
        ("arrays.toml", "a = " + "[" * 100_000, "nested more than 32 deep"),
        ("dotted.toml", ".".join(["a"] * 100_000) + " = 1\n[[device]]", "a dotted key of more"),
        ("digits.toml", "[[device]]\nx = " + "9" * 5000, "a number of more than 40 digits"),
        (
            "hwloc.xml",
            '<?xml version="1.0"?>\n<topology version="2.0">' + '<object type="Machine">' * 100_000,
            "elements nested more than 200 deep",
        ),
        (
            "nccl.xml",
            '<?xml version="1.0"?>\n<system version="1"><cpu>'
            + '<pci busid="0000:01:00.0">' * 50_000,
            "elements nested more than 200 deep",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "",
)
def test_deep_nesting_and_huge_numbers_are_refused_before_parsing(box, name, text, says):
    path = _text(box, name, text)
    error = _error(
        box,
        path,
        "--format",
        {"json": "topology", "toml": "topology"}.get(
            name.rsplit(".", 1)[1], "hwloc-xml" if name.startswith("hwloc") else "nccl-xml"
        ),
    )
    assert error.startswith(f"p2pview: error: {path}: line ") and says in error, error


BAR_DEVICE = """[[device]]
bdf = "0000:00:00.0"
id = "8086:2020"
class = 0x060000
[[device]]
bdf = "0000:01:00.0"
id = "144d:a808"
class = 0x010802
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            'bars = [ { index = 0, start = "0x' + "f" * 5000 + '", size = "16K" } ]',
            "too long for a number",
        ),
        (
            "bars = [ { index = 0, start = 0xfffffffffffff000, size = 0x2000 } ]",
            "ends past the 64-bit",
        ),
        ("bars = [ { index = 0, start = -4096, size = 4096 } ]", "address -0x1000 is negative"),
        ("class = -1", "is negative"),
        (
            'bars = [ { index = 4, start = 0xe0000000, size = "256M" } ]\n'
            'p2pmem = { size = "1T", bar = 4 }',
            "larger than BAR 4",
        ),
        ("p2pmem = { size = -5 }", "-0x5 is not a size"),
        ("revision = 0x100", "does not fit 8 bits"),
    ],
    ids=[
        "5000-digit BAR",
        "BAR past 2^64",
        "negative BAR",
        "class -1",
        "p2pmem over BAR",
        "p2pmem -5",
        "revision",
    ],
)
def test_topology_values_are_range_checked(box, extra, says):
    text = BAR_DEVICE.format(extra=extra)
    if extra == "class = -1":
        text = text.replace("class = 0x010802\n", "")
    path = _text(box, "topo.toml", text)
    error = _error(box, path)
    assert says in error and str(path) in error, error


def test_an_unreadable_bus_line_is_an_error_not_a_made_up_root_bus(box):
    text = (
        "00:01.0 PCI bridge [0604]: Intel Corporation Device [8086:1901]\n"
        "\tBus: primary=00, secondary=zz, subordinate=01, sec-latency=0\n"
        "\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00\n\n"
        "01:00.0 Non-Volatile memory controller [0108]: Samsung Device [144d:a808]\n"
        "\tSubsystem: Samsung Device [144d:a801]\n"
    )
    path = _text(box, "lspci.txt", text)
    error = _error(box, path)
    assert f"{path}: line 2: cannot read 'Bus: primary=00, secondary=zz" in error, error


def test_a_megabyte_line_gives_a_short_message(box):
    path = _text(
        box, "lspci.txt", "00:01.0 Host bridge: x\n\tCapabilities: [" + "z" * (1 << 20) + "\n"
    )
    error = _error(box, path, "--format", "lspci-verbose")
    assert len(error) < 700, len(error)


def test_a_crlf_hex_dump_reads_as_a_hex_dump(box):
    dump = (
        "00:00.0 Host bridge: Intel Corporation Device 1234\n"
        "00: 86 80 34 12 06 00 10 00 00 00 00 06 00 00 00 00\n"
        "10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
        "20: 00 00 00 00 00 00 00 00 00 00 00 00 86 80 00 00\n"
        "30: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n"
    )
    path = box.box / "dump.txt"
    path.write_bytes(dump.replace("\n", "\r\n").encode())
    outcome = box.run(["matrix", str(path), "--json"])
    assert outcome.code == 0 and '"vendor": "8086"' in outcome.stdout
