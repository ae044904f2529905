"""The model: addresses, tree queries, immutability and what-if edits."""

from __future__ import annotations

import networkx as nx
import pytest
from builders import ACS_ON, B, dev, host, result, topo

from p2pview.model import BDF, Acs, AddressError, PcieType, RootBus, Topology, TopologyError
from p2pview.model.select import SelectionError, select


def sample() -> Topology:
    return topo(
        host("00:00.0", "8086:2020"),
        dev("00:01.0", "8086:2030", bridge=True, acs=ACS_ON),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True, pcie=PcieType.UPSTREAM),
        dev("02:00.0", "10b5:8747", "01:00.0", bridge=True),
        dev("02:01.0", "10b5:8747", "01:00.0", bridge=True),
        dev("03:00.0", parent="02:00.0"),
        dev("04:00.0", "10de:2330", parent="02:01.0", class_code=0x030200),
        dev("00:02.0", "8086:2031", bridge=True),
        dev("05:00.0", parent="00:02.0"),
        dev("05:00.1", "15b3:101e", "00:02.0", physfn="05:00.0"),
    )


def test_bdf_text_forms():
    assert str(BDF.parse("3:0.1")) == "0000:03:00.1"
    assert str(BDF.parse("10000:00:04.0")) == "10000:00:04.0"
    assert BDF.parse("0000:00:1f.7").devfn == 0xFF
    assert BDF.parse("01:00.0") < BDF.parse("01:00.1") < BDF.parse("02:00.0")
    assert str(RootBus.parse("pci0000:80")) == "pci0000:80"
    for bad in ("00:20.0", "00:00.8", "100:00.0", "0000:00:00", "x"):
        with pytest.raises(AddressError):
            BDF.parse(bad)


def test_tree_queries():
    t = sample()
    assert t.upstream_chain(B("03:00.0")) == (
        B("03:00.0"),
        B("02:00.0"),
        B("01:00.0"),
        B("00:01.0"),
    )
    assert t.upstream_bridge(B("00:01.0")) is None
    assert t.host_bridge(B("03:00.0")).name == "pci0000:00"
    assert t.root_bus_devices(RootBus(0, 0)) == (B("00:00.0"), B("00:01.0"), B("00:02.0"))
    assert set(t.subtree(B("01:00.0"))) == {
        B("01:00.0"),
        B("02:00.0"),
        B("02:01.0"),
        B("03:00.0"),
        B("04:00.0"),
    }
    assert t.resolve("10de:2330") == B("04:00.0")
    assert t.resolve("03:00.0") == B("03:00.0")
    with pytest.raises(KeyError, match="matches 3 functions"):
        t.resolve("10b5:8747")
    # the VF's chain starts from its PF's upstream bridge, without the PF
    assert t.upstream_chain(B("05:00.1")) == (B("05:00.1"), B("00:02.0"))


def test_graph_is_a_frozen_digraph_rooted_at_host_bridges():
    g = sample().graph
    assert isinstance(g, nx.DiGraph)
    roots = [n for n in g if g.in_degree(n) == 0]
    assert roots == [RootBus(0, 0)]
    assert nx.is_arborescence(g)
    with pytest.raises(nx.NetworkXError):
        g.add_edge(RootBus(0, 0), B("05:00.0"))


def test_edits_return_new_topologies():
    t = sample()
    assert result(t, "03:00.0", "04:00.0") == ("BUS_ADDR", 4)
    acs = t.with_acs(B("02:00.0"), Acs.present(0x5F, 0x0C))
    assert result(acs, "03:00.0", "04:00.0") == ("THRU_HOST_BRIDGE", 4)
    assert t[B("02:00.0")].acs == Acs.absent()  # the original is untouched
    cleared = acs.with_acs_ctrl(B("02:00.0"), 0x0)
    assert result(cleared, "03:00.0", "04:00.0") == ("BUS_ADDR", 4)
    unlisted = acs.with_host_bridge_ids(RootBus(0, 0), 0x8086, 0x1234)
    assert result(unlisted, "03:00.0", "04:00.0") == ("NOT_SUPPORTED", 4)
    zen = unlisted.with_platform(cpu_vendor="AuthenticAMD", cpu_family=0x19)
    assert result(zen, "03:00.0", "04:00.0") == ("THRU_HOST_BRIDGE", 4)
    assert unlisted.platform.cpu_vendor == "GenuineIntel"
    cmdline = acs.with_platform(cmdline="pci=disable_acs_redir=0000:02:00.0")
    assert result(cmdline, "03:00.0", "04:00.0", "6.15") == ("BUS_ADDR", 4)
    moved = t.with_subtree_moved(B("04:00.0"), B("02:00.0"))
    assert result(moved, "03:00.0", "04:00.0") == ("BUS_ADDR", 2)
    moved_pf = t.with_subtree_moved(B("05:00.0"), B("02:01.0"))
    assert moved_pf[B("05:00.1")].parent == B("02:01.0")  # its VF moves with it


def test_edit_errors():
    t = sample()
    with pytest.raises(TopologyError, match="cannot move below itself"):
        t.with_subtree_moved(B("01:00.0"), B("03:00.0"))
    with pytest.raises(TopologyError, match="no known ACS capability"):
        t.with_acs_ctrl(B("03:00.0"), 0x4)
    with pytest.raises(TopologyError, match="not a bridge"):
        t.with_subtree_moved(B("04:00.0"), B("03:00.0"))


def test_selections():
    t = sample()
    assert select(t, "gpu") == (B("04:00.0"),)
    assert select(t, "10b5:*") == (B("01:00.0"), B("02:00.0"), B("02:01.0"))
    assert select(t, "subtree:0000:02:00.0") == (B("02:00.0"), B("03:00.0"))
    assert len(select(t, "endpoint")) == 5
    assert select(t, None) == t.bdfs
    with pytest.raises(SelectionError, match="'tpu'"):
        select(t, "nvme,tpu")
