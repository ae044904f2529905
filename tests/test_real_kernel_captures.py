"""The engine against verdicts a real 6.12.117 kernel gave on these machines (QEMU captures)."""

from __future__ import annotations

import json

import pytest
from conftest import DATA

from p2pview.kernel import calc_map_type_and_dist, pair_matrix
from p2pview.model import BDF
from p2pview.session import EngineConfig, open_session

CAPTURES = DATA / "qemu-guest-captures"
NAMES = ["switch-qemu64", "mf3-qemu64-acs-rp", "pxb2-qemu64"]


@pytest.mark.parametrize("name", NAMES)
def test_every_pair_agrees_with_the_kernel(name):
    expected = json.loads((CAPTURES / f"{name}.expected.json").read_text())
    session = open_session(str(CAPTURES / f"{name}.tar.gz"))
    assert str(session.target.version) == expected["kernel"]
    for key, (map_type, distance, _) in expected["pairs"].items():
        provider, client = (BDF.parse(x) for x in key.split())
        verdict = calc_map_type_and_dist(session.state, provider, client)
        assert verdict.map_type.value == map_type, key
        if distance is not None:
            assert verdict.distance == distance, key


@pytest.mark.parametrize("name", NAMES)
def test_o_direct_outcome_follows_the_verdict(name):
    """``dio`` is "ok" exactly where the pair is supported (the O_DIRECT check in the guest)."""
    expected = json.loads((CAPTURES / f"{name}.expected.json").read_text())
    session = open_session(str(CAPTURES / f"{name}.tar.gz"))
    matrix = pair_matrix(session.state)
    for key, outcome in expected["dio"].items():
        provider, client = (BDF.parse(x) for x in key.split())
        i, j = matrix.providers.index(provider), matrix.clients.index(client)
        supported = matrix.map_type(i, j).value != "NOT_SUPPORTED"
        assert (outcome == "ok") == supported, key


def test_acs_messages_match_the_kernel():
    """The oracle notes record these lines for 01:00.0 -> 01:00.1 with ACS RR on 00:02.0."""
    session = open_session(str(CAPTURES / "mf3-qemu64-acs-rp.tar.gz"))
    v = calc_map_type_and_dist(session.state, BDF.parse("01:00.0"), BDF.parse("01:00.1"))
    lines = [m.text for m in v.messages]
    assert "ACS redirect is set between the client and provider (0000:01:00.0)" in lines
    assert any(line.endswith("pci=disable_acs_redir=0000:00:02.0") for line in lines)


def test_epyc_cpu_makes_them_thru_host_bridge():
    """Oracle notes: with -cpu EPYC the same pairs are THRU_HOST_BRIDGE."""
    session = open_session(
        str(CAPTURES / "mf3-qemu64-acs-rp.tar.gz"), EngineConfig.parse(cpu="amd:0x17")
    )
    v = calc_map_type_and_dist(session.state, BDF.parse("01:00.0"), BDF.parse("01:00.1"))
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 2)
    session = open_session(str(CAPTURES / "pxb2-qemu64.tar.gz"), EngineConfig.parse(cpu="amd:0x17"))
    v = calc_map_type_and_dist(session.state, BDF.parse("01:00.0"), BDF.parse("41:00.0"))
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 4)
