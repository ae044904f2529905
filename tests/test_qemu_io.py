"""``p2pview verify --io``: the NVMe trace parser, the comparison, and recorded real runs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from iosim_fixtures import p2p, ram, run, scenario, tv1

from p2pview.iosim.scenario import Iovec
from p2pview.qemu import ioscenarios
from p2pview.qemu.iocheck import compare_boot, io_machine
from p2pview.qemu.iocompare import qemu_prp_ranges
from p2pview.qemu.ioscenarios import (
    IoScenario,
    NotRun,
    Segment,
    bundled_io,
    generated_scenarios,
)
from p2pview.qemu.nvmetrace import TraceError, parse_lines, read_trace, scenario_commands
from p2pview.sources import load_source
from p2pview.sources.bundled import bundled_scenario_path

DATA = Path(__file__).parent / "data" / "qemu-nvme-trace"
KiB = 1024

EXCERPT = """\
pci_nvme_read cid 513 nsid 1 nlb 1 count 512 lba 0x20000
pci_nvme_map_prp trans_len 512 len 512 prp1 0x17d1000 prp2 0x0 num_prps 1
pci_nvme_map_addr addr 0x17d1000 len 512
pci_nvme_read cid 514 nsid 1 nlb 256 count 131072 lba 0x0
pci_nvme_map_sgl type 0x0 len 131072
pci_nvme_map_addr addr 0xfb010000 len 131072
pci_nvme_write cid 523 opname 'NVME_NVM_CMD_WRITE' nsid 1 nlb 32 count 16384 lba 0x0
pci_nvme_map_prp trans_len 4096 len 16384 prp1 0xfa010000 prp2 0xc44000 num_prps 5
pci_nvme_map_addr addr 0xfa010000 len 4096
pci_nvme_map_addr_cmb addr 0xfa010000 len 4096
pci_nvme_map_addr addr 0xfa011000 len 4096
pci_nvme_map_addr_cmb addr 0xfa011000 len 4096
pci_nvme_map_addr addr 0xfb010000 len 4096
pci_nvme_read cid 524 nsid 1 nlb 1 count 512 lba 0x20001
pci_nvme_map_prp trans_len 512 len 512 prp1 0x17d1000 prp2 0x0 num_prps 1
pci_nvme_map_addr addr 0x17d1000 len 512
"""


def lines(text: str):
    return list(enumerate(text.splitlines(), 1))


def test_parser_reads_commands_their_pointers_and_ranges():
    cmds = parse_lines(lines(EXCERPT), "t.log")
    assert [(c.op, c.slba, c.nlb) for c in cmds] == [
        ("read", 0x20000, 1),
        ("read", 0, 256),
        ("write", 0, 32),
        ("read", 0x20001, 1),
    ]
    sgl, mixed = cmds[1], cmds[2]
    assert (sgl.dptr, sgl.sgl_inline, sgl.ranges) == ("sgl", True, [(0xFB010000, 131072)])
    assert (mixed.dptr, mixed.prp1, mixed.prp2) == ("prp", 0xFA010000, 0xC44000)
    # pci_nvme_map_addr_cmb marks the range just listed as the controller's own CMB.
    assert mixed.cmb == [True, True, False]
    # Only the commands between the sentinel reads belong to the scenario.
    inside = scenario_commands(cmds, 0x20000, 0x20001)
    assert inside is not None and [c.slba for c in inside] == [0, 0]
    assert scenario_commands(cmds, 0x20000, 0x30000) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pci_nvme_read cid x nsid 1", "t.log:1: not a QEMU 7.2 pci_nvme_read line"),
        (
            "pci_nvme_read cid 1 nsid 1 nlb 1 count 512 lba 0x0\npci_nvme_map_addr addr zz len 1",
            "t.log:2: not a QEMU 7.2 pci_nvme_map_addr line",
        ),
    ],
)
def test_parser_names_the_file_and_line_of_a_bad_line(text, message):
    with pytest.raises(TraceError, match=message):
        parse_lines(lines(text), "t.log")


def test_read_trace_is_bounded_and_one_line_on_bad_files(tmp_path):
    with pytest.raises(TraceError, match=r"missing\.log: No such file"):
        read_trace(tmp_path / "missing.log")
    long = tmp_path / "long.log"
    long.write_text("pci_nvme_read " + "x" * 10000 + "\n")
    with pytest.raises(TraceError, match=r"long.log:1: a line longer than 4096 bytes"):
        read_trace(long)
    binary = tmp_path / "bin.log"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(TraceError, match=r"bin\.log:1: not ASCII text"):
        read_trace(binary)


def test_qemu_maps_prp1_to_the_page_end_then_one_page_per_entry():
    # hw/nvme/ctrl.c nvme_map_prp(): trans_len = page_size - prp1 % page_size.
    assert qemu_prp_ranges(0x1000200, 0x2000, [], 4096) == [(0x1000200, 3584), (0x2000, 512)]
    assert qemu_prp_ranges(0x1000, None, [0x5000, 0x9000], 8192 + 512) == [
        (0x1000, 4096),
        (0x5000, 4096),
        (0x9000, 512),
    ]


def test_generated_scenarios_cover_the_brief():
    topo = load_source("switch-nvme").topology
    scs = generated_scenarios(topo)
    names = [s.name for s in scs]
    assert len(set(names)) == len(names)
    sizes = {s.length for s in scs if s.name.startswith("read-") and len(s.segments) == 1}
    assert {512, 4096, 8192 + 512, 128 * KiB, 1 << 20, 8 << 20} <= sizes
    offsets = {s.iovecs[0][0] for s in scs}
    assert {0, 512, 4096 - 512} <= offsets
    mixed = [s for s in scs if {seg.provider is None for seg in s.segments} == {True, False}]
    assert any(s.write for s in mixed) and any(not s.write for s in mixed)
    two = [s for s in scs if len({seg.provider for seg in s.segments} - {None}) == 2]
    assert two, "CMB to CMB of two controllers"
    machine = io_machine(topo, "6.12.117", 7)
    line = scs[0].guest_line(machine, 3)
    assert line.split()[-2:] == [
        str(ioscenarios.SENTINEL_BASE + 6),
        str(ioscenarios.SENTINEL_BASE + 7),
    ]
    assert all(("mdts", "7") in d.props for d in machine.devices if d.driver == "nvme")


def test_bundled_scenarios_run_or_say_why_not():
    runnable, refused = {}, {}
    for name in (
        "cmb-read-bus-addr", "readv-mixed", "eremoteio-dma-map", "adjacent-cmbs",
        "eremoteio-gup", "swiotlb-hang", "thru-iommu", "v5-series-nvme-mmap",
    ):  # fmt: skip
        path = bundled_scenario_path(name)
        assert path is not None
        _topo, item = bundled_io(path)
        (refused if isinstance(item, NotRun) else runnable)[name] = item
    assert set(runnable) == {"cmb-read-bus-addr", "readv-mixed", "eremoteio-dma-map"}
    assert "SGL" in runnable["cmb-read-bus-addr"].adapted[0]
    assert "IOMMU" in refused["thru-iommu"].reason
    assert "hang" in refused["swiotlb-hang"].reason


def _replay(version: str, tmp_path: Path, mutate=None):
    console = gzip.decompress((DATA / f"switch-nvme-{version}.console.txt.gz").read_bytes())
    trace = gzip.decompress((DATA / f"switch-nvme-{version}.trace.log.gz").read_bytes()).decode()
    if mutate is not None:
        trace = mutate(trace)
    log = tmp_path / "trace.log"
    log.write_text(trace)
    text = console.decode()
    release = next(ln.split()[1] for ln in text.splitlines() if ln.startswith("release "))
    topo = load_source("switch-nvme").topology
    machine = io_machine(topo, release, 7)
    return compare_boot("switch-nvme", machine, generated_scenarios(topo), text, log, release, 7)


@pytest.mark.parametrize("version", ["v612", "v72"])
def test_recorded_runs_agree_with_the_simulator(version, tmp_path):
    boot = _replay(version, tmp_path)
    assert [r.name for r in boot.disagreements] == []
    by_name = {r.name: r for r in boot.results}
    assert by_name["read-8M"].commands == 16  # MDTS 7: 512 KiB commands
    # QEMU refuses a command mixing its own CMB with a peer's (6.12: one request).
    assert by_name["writev-own-cmb-peer-cmb"].seen == ("-1 EIO" if version == "v612" else "16384")
    if version == "v72":
        # 7.2.13 block/fops.c __blkdev_direct_IO_simple(): one bio to the pgmap change,
        # the rest through the page cache.
        assert any("page cache" in n for n in by_name["readv-p2p-ram"].notes)
        assert "prp" in by_name["read-128K"].summary
    else:
        assert "sgl" in by_name["read-128K"].summary


def test_a_changed_address_in_the_trace_is_a_disagreement(tmp_path):
    boot = _replay(
        "v612",
        tmp_path,
        lambda t: t.replace("pci_nvme_map_addr addr 0xfb010000 len 131072",
                            "pci_nvme_map_addr addr 0xfb020000 len 131072", 1),
    )  # fmt: skip
    bad = {r.name: r.differences for r in boot.disagreements}
    assert list(bad) == ["read-128K"]
    assert "ranges traced 0xfb020000+131072, predicted 0xfb010000+131072" in bad["read-128K"][0]


def test_a_missing_command_is_a_disagreement(tmp_path):
    def drop_second_command_of_read_1m(text: str) -> str:
        out, seen = [], 0
        skip = False
        for line in text.splitlines():
            if line.startswith("pci_nvme_read") and "count 524288 lba 0x400" in line:
                seen += 1
                skip = seen == 1
            elif line.startswith(("pci_nvme_read", "pci_nvme_write")):
                skip = False
            if not skip:
                out.append(line)
        return "\n".join(out) + "\n"

    boot = _replay("v612", tmp_path, drop_second_command_of_read_1m)
    bad = {r.name: r.differences for r in boot.disagreements}
    assert list(bad) == ["read-1M"]
    assert bad["read-1M"][0].startswith("1 command(s) traced, 2 predicted")


# -- the simulator fix the oracle found ---------------------------------------------------


def _mixed(kernel: str, blockdev: bool, size: int = 8 * KiB):
    pages = size // 4096
    sc = scenario(
        (p2p("01:00.0", size), ram(size, pfns=tuple(0x12345 + 2 * k for k in range(pages)))),
        "01:00.0",
        kernel=kernel,
        iovecs=(Iovec(0, size), Iovec(size, size)),
    )
    return run(tv1(), sc.replace(blockdev=blockdev))


def test_v72_block_device_small_mixed_io_is_one_bio_then_the_page_cache():
    # Linux 7.2.13 block/fops.c blkdev_direct_IO(): "nr_pages = bio_iov_vecs_to_alloc(iter,
    # BIO_MAX_VECS + 1); if (likely(nr_pages <= BIO_MAX_VECS ...)) if (is_sync_kiocb(iocb))
    # return __blkdev_direct_IO_simple(...)", which calls blkdev_iov_iter_get_pages() once:
    # one bio, ended by iov_iter_extract_bvecs() at the RAM page. blkdev_read_iter() then
    # reads the rest with filemap_read(). Seen under QEMU: the second command's ranges were
    # page-cache pages, not the buffer's.
    t = _mixed("7.2", blockdev=True)
    bios = next(s for s in t.steps if s.stage == "bio").state.bios
    assert [b.size for b in bios] == [8192]
    assert t.result.bytes == 16384 and t.result.outcome == "ok"
    assert any(e.function == "__blkdev_direct_IO_simple()" for e in t.events)
    # A file on a filesystem (iomap) starts a new bio instead, as before.
    f = _mixed("7.2", blockdev=False)
    assert [b.size for b in next(s for s in f.steps if s.stage == "bio").state.bios] == [8192, 8192]
    # 6.12 keeps both in one bio either way (a new bvec).
    assert len(next(s for s in _mixed("6.12", True).steps if s.stage == "bio").state.bios) == 1


def test_v72_block_device_beyond_bio_max_vecs_loops_over_bios():
    # More than BIO_MAX_VECS pages: __blkdev_direct_IO() allocates a bio after each one.
    t = _mixed("7.2", blockdev=True, size=1 << 20)
    bios = next(s for s in t.steps if s.stage == "bio").state.bios
    assert sum(b.size for b in bios) == 2 << 20
    assert not any(e.function == "__blkdev_direct_IO_simple()" for e in t.events)


@pytest.mark.parametrize(
    ("kernel", "limits", "contiguous", "apart"),
    [("6.12", (1280, 128), 7, 16), ("7.2", (4096, 256), 8, 8)],
)
def test_mdts_0_ram_read_commands_follow_the_guests_page_placement(
    kernel, limits, contiguous, apart
):
    # README: on 6.12 with mdts 0, ram-read-8M's command count on switch-nvme depends on where
    # the guest's page allocator put the pages (max_sectors_kb binds on contiguous pages,
    # max_segments on pages apart), so that cell of the table may change between runs; 7.2's
    # limits are above what a bio of 256 pages reaches.
    from p2pview.iosim.scenario import NvmeSetup
    from p2pview.session import session_for

    topology = session_for(load_source("switch-nvme")).topology
    pages = (8 << 20) // 4096

    def commands(pfns: tuple[int, ...]) -> int:
        sc = scenario((ram(8 << 20, pfns=pfns),), "1b:00.0", kernel=kernel)
        t = run(topology, sc.replace(blockdev=True, nvme=NvmeSetup(sgl=True, mdts=0)))
        sysfs = t.context.limits.sysfs()
        assert (sysfs["max_sectors_kb"], sysfs["max_segments"]) == limits
        assert t.result.bytes == 8 << 20
        return len(next(s for s in t.steps if s.stage == "nvme").state.commands)

    assert commands(tuple(0x100000 + k for k in range(pages))) == contiguous
    assert commands(tuple(0x100000 + 2 * k for k in range(pages))) == apart


def test_io_path_key_is_read_and_checked(tmp_path):
    from p2pview.iosim.scenario import read_scenario
    from p2pview.sources.topofile import SourceError

    base = (
        'topology = "switch-nvme"\n[[buffer]]\nkind = "p2pmem"\nprovider = "0000:1a:00.0"\n'
        'size = "8K"\n[target]\nclient = "0000:1b:00.0"\n'
    )
    good = tmp_path / "good.toml"
    good.write_text(base + '[io]\npath = "blockdev"\n')
    assert read_scenario(good).blockdev
    bad = tmp_path / "bad.toml"
    bad.write_text(base + '[io]\npath = "nvme"\n')
    with pytest.raises(SourceError, match=r"bad.toml: io.path: file .* or blockdev"):
        read_scenario(bad)


def test_io_scenario_names_reach_the_guest_safely():
    topo = load_source("switch-nvme").topology
    machine = io_machine(topo, "7.2.13", 7)
    io = IoScenario("x;rm", topo.devices[-1].bdf, (Segment(4096),), ((0, 4096),))
    assert not ioscenarios.NAME.match(io.name)
    assert all(ioscenarios.NAME.match(s.name) for s in generated_scenarios(topo))
    assert machine.devices


# -- the record and the CLI -------------------------------------------------------------


def _entry(**kw):
    base = {
        "kernel": "7.2.13",
        "package": "linux-source-7.2 7.2.13-1",
        "mdts": 7,
        "topology": "switch-nvme",
        "scenarios": {"checked": 2, "agreed": 2},
        "commands": 5,
        "disagreements": [],
        "not_run": {"thru-iommu": "needs a translating IOMMU"},
        "error": None,
    }
    return base | kw


def test_io_rows_and_what_was_not_run():
    from p2pview.qemu.record import render_io_table

    table = render_io_table({"io": [_entry(mdts=0), _entry()]})
    rows = [ln for ln in table.splitlines() if ln.startswith("| linux")]
    # QEMU's default MDTS first, 0 (no limit) last.
    assert rows[0].startswith(
        "| linux-source-7.2 7.2.13-1 | 7 | none | switch-nvme | 2 / 2 | 5 | none"
    )
    assert "| 0 |" in rows[1]
    assert "Not run without an IOMMU: thru-iommu: needs a translating IOMMU." in table


def test_an_io_disagreement_needs_an_explanation():
    from p2pview.qemu.record import RecordError, render_io_table

    bad = _entry(
        scenarios={"checked": 2, "agreed": 1},
        disagreements=[{"scenario": "read-4K", "differences": ["result: kernel 0, p2pview 4096"]}],
    )
    with pytest.raises(RecordError, match=r"io 7\.2\.13 mdts 7 switch-nvme read-4K"):
        render_io_table({"io": [bad]})
    key = "io 7.2.13 mdts 7 switch-nvme read-4K"
    table = render_io_table({"io": [bad], "explanations": {key: "QEMU drops it."}})
    assert "[io 1]" in table and f"1. {key}: QEMU drops it." in table


def test_io_section_is_checked_when_loaded(tmp_path):
    import json

    from p2pview.qemu.record import FORMAT, RecordError, load

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"format": FORMAT, "machines": [], "io": [{"kernel": 1}]}))
    with pytest.raises(RecordError, match=r"r\.json: io\[0\]\.kernel is not a string"):
        load(path)
    assert load(tmp_path / "none.json")["io"] == []


def test_mdts_without_io_is_refused(tmp_path, capsys):
    from p2pview.cli import main

    image = tmp_path / "bzImage"
    image.write_bytes(b"x")
    assert main(["verify", "switch-nvme", "--kernel", str(image), "--mdts", "3"]) == 2
    assert "--mdts and --iommu go with --io" in capsys.readouterr().err


def test_io_report_lists_disagreements_and_reasons():
    from p2pview.qemu.commands import io_report
    from p2pview.qemu.iocheck import IoBoot, IoResult

    boot = IoBoot("switch-nvme", "7.2.13", 7, seconds=9.5)
    boot.limits = {"nvme0n1": {"max_hw_sectors_kb": 512, "max_segments": 129}}
    boot.results = [
        IoResult("read-4K", "generated", "4096", "4096", 1, 1, "1 command(s) (prp)"),
        IoResult("read-8K", "generated", "8192", "-1 EIO", 1, 0, "1 command(s) (prp)",
                 ["result: kernel 8192, p2pview -1 EIO"]),
    ]  # fmt: skip
    boot.not_run = [NotRun("thru-iommu", "needs a translating IOMMU")]
    text = io_report(boot, verbose=False)
    assert "read-4K" not in text and "read-8K" in text
    assert "differs: result: kernel 8192, p2pview -1 EIO" in text
    assert "not run: thru-iommu: needs a translating IOMMU" in text
    assert "1 of 2 scenario(s) agree (2 NVMe commands compared)" in text
    assert "queue limits (nvme0n1): max_hw_sectors_kb 512, max_segments 129" in text


def test_iommu_boot_has_vtd_before_the_devices(tmp_path):
    from p2pview.qemu.iocheck import traced_args

    machine = io_machine(load_source("switch-nvme").topology, "6.12.117", 7)
    plain = traced_args(machine, Path("bz"), Path("rd"), tmp_path, tmp_path / "ev", tmp_path / "l")
    assert "intel-iommu,intremap=on" not in plain and plain[-4:-2] == [
        "-trace",
        f"events={tmp_path / 'ev'}",
    ]
    args = traced_args(
        machine, Path("bz"), Path("rd"), tmp_path, tmp_path / "ev", tmp_path / "l", iommu=True
    )
    assert args[args.index("-machine") + 1] == "q35,kernel-irqchip=split"
    first = args.index("-device")
    assert args[first + 1] == "intel-iommu,intremap=on"
    assert "intel_iommu=on" in args[args.index("-append") + 1]
    assert any(a.startswith("nvme,") and "mdts=7" in a for a in args)


def test_iovas_compare_by_page_offset_bus_addresses_exactly():
    from p2pview.qemu.iocompare import iova_view

    bars = [(0xFB000000, 0xFC000000)]
    # dma-iommu places IOVAs itself: 0xfffff200 and 0xffee0200 are the same as far as
    # the kernel's data path decides (offset 0x200 in the page, 3584 bytes).
    assert iova_view([(0xFFFFF200, 3584)], bars) == iova_view([(0xFFEE0200, 3584)], bars)
    assert iova_view([(0xFFFFF200, 3584)], bars) != iova_view([(0xFFFFF000, 3584)], bars)
    # A peer's CMB (BUS_ADDR) is a bus address: exact.
    assert iova_view([(0xFB010000, 4096)], bars) != iova_view([(0xFB011000, 4096)], bars)
    # Without an IOMMU, everything is exact.
    assert iova_view([(0x1000, 8)], None) != iova_view([(0x2000, 8)], None)


def test_guest_lines_are_parsed_and_odd_ones_kept_out():
    from p2pview.qemu.iocompare import parse_io, parse_limits

    ns, limits = parse_limits(
        [
            "ns nvme0n1 0000:1b:00.0",
            "limit nvme0n1 max_segments 129",
            "limit nvme0n1 max_segments lots",  # not a number: ignored
            "garbage",
        ]
    )
    assert ns == {"nvme0n1": "0000:1b:00.0"} and limits == {"nvme0n1": {"max_segments": 129}}
    runs = parse_io(
        [
            "a seg 0 pfn 0xfb010+2,0x1234+1",
            "a result 12288",
            "a dmesg [    4.0] WARNING: CPU: 0 PID: 1 at block/bio.c:1 x",
            "b seg 0 pfn 0xzz+1",
            "b result -1 EIO",
            "c setup open ENOENT",
            "stranger result 1",
        ],
        ["a", "b", "c"],
    )
    assert runs["a"].pfns == {0: [0xFB010, 0xFB011, 0x1234]} and runs["a"].result == "12288"
    assert runs["a"].warned
    assert runs["b"].setup is not None and "unreadable page frames" in runs["b"].setup
    assert runs["c"].setup == "open ENOENT"
    assert "stranger" not in runs


def test_an_iommu_boot_holds_the_kernels_groups_to_pci_device_group():
    from p2pview.model import BDF
    from p2pview.qemu.commands import io_report
    from p2pview.qemu.iocheck import IoBoot, IoResult, _check_groups
    from p2pview.session import open_session, session_for
    from p2pview.sources import Loaded

    one = [IoResult("read-4K", "generated", "4096", "4096", 1, 1, "1 command(s) (prp)")]
    session = open_session("switch-acs-iommu")
    boot = IoBoot("switch-acs-iommu", "7.2.13", 7, iommu=True, results=one)
    _check_groups(boot, session)
    assert boot.groups_checked == 14 and not boot.groups_differing
    assert "IOMMU groups: 14 functions, each in the group" in io_report(boot, False)
    # A kernel that put the NVMe behind 19:00.0 in its port's group: p2pview disagrees.
    topo = session.topology
    port = topo[BDF.parse("0000:19:00.0")].iommu_group
    doctored = topo.with_device(BDF.parse("0000:1a:00.0"), iommu_group=port)
    boot = IoBoot("switch-acs-iommu", "7.2.13", 7, iommu=True, results=one)
    _check_groups(boot, session_for(Loaded(doctored, "file")))
    assert boot.groups_differing
    assert "differs from the kernel's" in io_report(boot, False)
