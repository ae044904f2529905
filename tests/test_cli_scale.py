"""The CLI at scale and in scripts: big matrices, find's dmesg lines, wrapping, names, options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA
from rich.text import Text

from p2pview import cli, tui
from p2pview.cli import main
from p2pview.kernel import pci_p2pmem_find_many
from p2pview.kernel.matrix import pair_matrix
from p2pview.session import open_session
from p2pview.views.matrix_summary import TABLE_CELLS, fits_table, summarise

HGX_TOPO_M = str(DATA / "nvidia-smi/hgx-8gpu.synthetic.topo.txt")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- matrix on a big topology --------------------------------------------------------


def test_small_topologies_still_print_the_whole_table(capsys):
    code, out, _ = run(capsys, "matrix", "hgx-8gpu")
    assert code == 0 and "provider \\ client" in out and "a summary" not in out
    assert len(open_session("hgx-8gpu").topology) ** 2 <= TABLE_CELLS


def test_a_big_matrix_is_summarised_and_says_how_to_get_everything(capsys):
    # 300 functions: 90,000 pairs. It used to print a 300-column table (10 s at
    # 300, 449 s and 56 MB at 2,000); now a summary a person can read.
    code, out, _ = run(capsys, "matrix", "generated:300")
    assert code == 0
    assert "300 providers x 300 clients = 90,000 ordered pairs" in out
    assert "provider \\ client" not in out.split("The P2P devices alone")[0]
    assert "path the kernel's walk finds" in out and "By host bridge" in out
    assert "p2pview matrix generated:300 --json" in out
    assert "--providers subtree:" in out
    assert len(out.splitlines()) < 120


def test_summary_counts_are_the_matrix_counts():
    session = open_session("generated:300")
    bdfs = session.topology.bdfs
    whole = pair_matrix(session.state, bdfs, bdfs)
    # blocks of 7 rows (2,100 cells): the same counts as one block
    summary = summarise(session, bdfs, bdfs, block_cells=2_100)
    assert summary == summarise(session, bdfs, bdfs)
    codes, counts = np.unique(whole.map_code, return_counts=True)
    assert summary.counts == dict(zip(codes.tolist(), counts.tolist(), strict=True))
    assert sum(summary.assumed.values()) == int(whole.assumed.sum())
    assert sum(sum(row.values()) for row in summary.by_path.values()) == len(bdfs) ** 2
    assert sum(block.pairs for block in summary.blocks) == len(bdfs) ** 2
    for block in summary.blocks:
        for c, examples in block.examples.items():
            assert c != block.majority and examples
            for ex in examples:
                i, j = bdfs.index(ex.provider), bdfs.index(ex.client)
                assert (int(whole.map_code[i, j]), int(whole.distance[i, j])) == (
                    ex.code,
                    ex.distance,
                )
                # examples are two different endpoints where any differ
                assert ex.provider != ex.client


def test_summary_of_an_int_era_kernel_names_the_ints(capsys):
    code, out, _ = run(capsys, "matrix", "generated:200", "--kernel", "5.2")
    assert code == 0 and "no common upstream bridge" in out and "-1" in out


def test_selections_that_fit_are_tables_and_others_summaries(capsys):
    assert fits_table(100, 100) and not fits_table(101, 100)
    code, out, _ = run(
        capsys, "matrix", "generated:300", "--providers", "p2pmem", "--clients", "p2pmem"
    )
    assert code == 0 and "provider \\ client" in out
    code, out, _ = run(capsys, "matrix", "generated:300", "--providers", "all")
    assert code == 0 and "a summary" in out and "--providers all" not in out.split("\n")[0]


def test_whole_topology_summary_shows_the_devices_table_when_it_fits(capsys):
    code, out, _ = run(capsys, "matrix", "generated:150")
    assert code == 0 and "The P2P devices alone" in out
    table = out.split("The P2P devices alone")[1]
    assert "provider \\ client" in table


# -- find: the lines the kernel prints -----------------------------------------------


def test_find_prints_no_verbose_lines():
    # pci_p2pmem_find_many() calls pci_p2pdma_distance_many(..., false) (Linux 6.12.117,
    # drivers/pci/p2pdma.c:781-782): the ACS redirect lines of the verbose
    # calculation are not printed.
    session = open_session("switch-acs-iommu")
    topo = session.topology
    found = pci_p2pmem_find_many(session.state, [topo.resolve("1a:00.0"), topo.resolve("1c:00.0")])
    assert found.tied == (topo.resolve("1a:00.0"),) and found.messages == ()


def test_find_prints_the_whitelist_warning_the_quiet_call_still_prints(capsys):
    # host_bridge_whitelist(provider, client, acs_redirects) warns on the ACS
    # path whatever verbose says (p2pdma.c:507-508, 653-654): once per provider
    # whose path to a client is redirected, and the loop stops at the first
    # NOT_SUPPORTED client.
    code, out, _ = run(capsys, "find", "switch-acs-iommu", "1b:00.0", "1c:00.0", "--kernel", "5.17")
    assert code == 0
    assert "ACS redirect is set" not in out and "pci=disable_acs_redir" not in out
    assert out.count("pci 0000:17:00.0: Host bridge not in P2PDMA whitelist: 8086:09a2") == 2
    _, out, _ = run(capsys, "find", "switch-acs-iommu", "1a:00.0", "1c:00.0")
    assert "ACS redirect is set" not in out and "with verbose false): none" in out
    code, out, _ = run(capsys, "find", "switch-acs-iommu", "1b:00.0", "--json")
    assert json.loads(out)["messages"] == []


# -- lines are never wrapped -----------------------------------------------------------


def test_long_lines_are_never_wrapped_into_a_pipe(capsys):
    line = "note: " + "x" * 150 + " pci=disable_acs_redir=0000:19:00.0;0000:19:01.0"
    cli._print(Text(line))
    assert capsys.readouterr().out == line + "\n"


def test_notes_and_compare_lines_stay_whole(capsys):
    # notes longer than the 120 columns of a pipe were cut into several lines
    dump = str(DATA / "realdumps/esc8000a-genoa-lspci-tv/lspci-tv.txt")
    session = open_session(dump)
    code, out, _ = run(capsys, "matrix", dump, "--providers", "endpoint", "--clients", "endpoint")
    assert code == 0
    long_notes = [n for n in session.notes if len(n) > 150]
    assert long_notes
    lines = out.splitlines()
    for note in long_notes:
        assert f"note: {note}" in lines
    _, out, _ = run(capsys, "compare", "switch-nvme", HGX_TOPO_M)
    note = next(line for line in out.splitlines() if "not compared, no function found" in line)
    assert note.rstrip().endswith("left to match)") and len(note) > 300


# -- names, documentation, options --------------------------------------------------


def test_errors_name_a_bundled_topology_not_its_installed_path(capsys):
    code, out, err = run(capsys, "explain", "switch-nvme", "99:00.0", "1a:00.0")
    assert code == 2 and err == (
        "p2pview: error: switch-nvme: no PCI function 0000:99:00.0 in this topology\n"
    )
    _, out, _ = run(capsys, "matrix", "switch-nvme", "--providers", "nvme", "--clients", "nvme")
    assert out.splitlines()[0] == "switch-nvme  (bundled topology)"
    assert "topologies/" not in out


def test_generated_sources_are_documented(capsys):
    _, out, _ = run(capsys, "formats")
    assert "generated:N[:SEED]" in " ".join(out.split())
    with pytest.raises(SystemExit):
        main(["matrix", "--help"])
    assert "generated:N[:SEED]" in " ".join(capsys.readouterr().out.split())


def test_tui_takes_iommu_and_format(monkeypatch):
    seen = {}

    class Recorder:
        load_error = None

        def __init__(self, args, start=None):
            seen["args"] = args

        def run(self):
            pass

    monkeypatch.setattr(tui, "make_app", Recorder)
    # as from a terminal (without one the TUI refuses: tests/tui/test_launch.py)
    monkeypatch.setattr(cli, "need_terminal", lambda source: None)
    tree = str(DATA / "qemu-guest-captures/switch-qemu64.tar.gz")
    assert main(["tui", tree, "--iommu", "on", "--format", "sysfs"]) == 0
    args = seen["args"]
    assert (args.source, args.iommu, args.input_format) == (tree, "on", "sysfs")


def test_tui_load_applies_iommu_and_format():
    from p2pview.kernel import calc_map_type_and_dist
    from p2pview.session import CpuChoice, EngineConfig
    from p2pview.tui.analysis import set_cpu
    from p2pview.tui.model import load_start

    def verdict(whatif):
        session = whatif.session
        topo = session.topology
        v = calc_map_type_and_dist(session.state, topo.resolve("1a:00.0"), topo.resolve("1b:00.0"))
        return v.map_type.value

    assert verdict(load_start("switch-nvme").whatif) == "BUS_ADDR"
    whatif = load_start("switch-nvme", EngineConfig.parse(iommu="on")).whatif
    assert verdict(whatif) == "THRU_HOST_BRIDGE"
    # a what-if edit keeps the ACS the IOMMU set
    whatif = whatif.apply(set_cpu(CpuChoice.parse("intel:6")))
    assert verdict(whatif) == "THRU_HOST_BRIDGE"
    whatif = whatif.reset()  # and reset goes back to the source as loaded, IOMMU on
    assert verdict(whatif) == "THRU_HOST_BRIDGE"
    with pytest.raises(Exception, match="unknown format"):
        load_start("switch-nvme", fmt="bogus")
