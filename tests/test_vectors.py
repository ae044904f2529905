"""The spec's test vectors TV1-TV11 and TV13 (kernel-p2pdma.md section 8), per profile."""

from __future__ import annotations

import pytest
from builders import ACS_CAP_ONLY, ACS_ON, INTEL, ZEN, B, calc, dev, host, result, state, topo

from p2pview.kernel import NonPciClient, pci_p2pdma_distance_many, pci_p2pmem_find_many
from p2pview.kernel.busaddr import bus_offset, p2p_dma_address
from p2pview.kernel.version import KernelVersion
from p2pview.model import Acs, Bar, HostBridge, P2pMem, PcieType, Platform, RootBus

V54_PLUS = [
    "5.4",
    "5.8",
    "5.9",
    "5.14",
    "5.15",
    "5.17",
    "5.18",
    "5.19",
    "6.2",
    "6.12",
    "7.0",
    "7.1",
    "next",
]
CPU_CHECK = [k for k in V54_PLUS if k not in ("5.4", "5.8")]
INT_ERAS = ["4.20", "5.0", "5.1", "5.3"]
WARNING_ERAS = [k for k in V54_PLUS if k not in ("5.4", "5.8", "5.9", "5.14")]
NO_WARNING_ERAS = ["5.4", "5.8", "5.9", "5.14"]


def texts(v):
    return [m.dmesg() for m in v.messages]


# -- TV1: provider == client --------------------------------------------------------


def tv1(ep_acs: Acs | None = None, hb: str = "8086:2020", mf: bool = False):
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True, acs=ACS_ON),
        dev("01:00.0", parent="00:01.0", acs=ep_acs, multifunction=mf, driver="nvme"),
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv1_own_cmb_is_bus_addr_dist_0(kernel):
    assert result(tv1(), "01:00.0", "01:00.0", kernel) == ("BUS_ADDR", 0)
    assert calc(tv1(), "01:00.0", "01:00.0", kernel).messages == ()


@pytest.mark.parametrize("kernel", INT_ERAS)
def test_tv1_int_eras(kernel):
    assert result(tv1(), "01:00.0", "01:00.0", kernel) == (None, 0)


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv1b_endpoint_own_acs_counts(kernel):
    t = tv1(ep_acs=Acs.present(0x5F, 0x0004), mf=True)
    v = calc(t, "01:00.0", "01:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 0)
    assert v.acs_redirect == (B("01:00.0"),)
    assert texts(v) == [
        "nvme 0000:01:00.0: ACS redirect is set between the client and provider (0000:01:00.0)",
        "nvme 0000:01:00.0: to disable ACS redirect for this path, add the kernel parameter:"
        " pci=disable_acs_redir=0000:01:00.0",
    ]


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv1b_unlisted_host_bridge(kernel):
    t = tv1(ep_acs=Acs.present(0x5F, 0x0004), hb="8086:1234", mf=True)
    v = calc(t, "01:00.0", "01:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("NOT_SUPPORTED", 0)
    warning = "pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:1234"
    assert (warning in texts(v)) == (kernel in WARNING_ERAS)


@pytest.mark.parametrize("kernel", INT_ERAS)
def test_tv1b_int_eras(kernel):
    assert result(tv1(ep_acs=Acs.present(0x5F, 0x4)), "01:00.0", "01:00.0", kernel) == (None, -2)


# -- TV2 / TV2b: two endpoints under one switch --------------------------------------


def tv2(dsp_acs: Acs | None = None, hb: str = "8086:2020", platform: Platform = INTEL):
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True, pcie=PcieType.UPSTREAM),
        dev("02:00.0", "10b5:8747", "01:00.0", bridge=True, acs=dsp_acs),
        dev("02:01.0", "10b5:8747", "01:00.0", bridge=True, acs=dsp_acs),
        dev("03:00.0", parent="02:00.0", driver="nvme"),
        dev("04:00.0", parent="02:01.0", driver="nvme"),
        platform=platform,
    )


@pytest.mark.parametrize("kernel", V54_PLUS + INT_ERAS)
def test_tv2_switch_no_acs(kernel):
    expected = (None, 4) if kernel in INT_ERAS else ("BUS_ADDR", 4)
    assert result(tv2(), "03:00.0", "04:00.0", kernel) == expected
    v = calc(tv2(), "03:00.0", "04:00.0", kernel)
    assert v.common == B("01:00.0")
    assert [str(c.device) for c in v.acs_checks] == [
        "0000:03:00.0",
        "0000:02:00.0",
        "0000:01:00.0",
        "0000:04:00.0",
        "0000:02:01.0",
    ]


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv2b_acs_on_both_dsps(kernel):
    v = calc(tv2(ACS_ON), "03:00.0", "04:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 4)
    assert v.acs_list_text == "0000:02:00.0;0000:02:01.0"
    assert texts(v) == [
        "nvme 0000:04:00.0: ACS redirect is set between the client and provider (0000:03:00.0)",
        "nvme 0000:04:00.0: to disable ACS redirect for this path, add the kernel parameter:"
        " pci=disable_acs_redir=0000:02:00.0;0000:02:01.0",
    ]
    swapped = calc(tv2(ACS_ON), "04:00.0", "03:00.0", kernel)
    assert swapped.acs_list_text == "0000:02:01.0;0000:02:00.0"
    assert (swapped.map_type, swapped.distance) == (v.map_type, v.distance)


@pytest.mark.parametrize("kernel", CPU_CHECK)
def test_tv2b_zen_any_host_bridge(kernel):
    t = tv2(ACS_ON, hb="1022:9999", platform=ZEN)
    assert result(t, "03:00.0", "04:00.0", kernel) == ("THRU_HOST_BRIDGE", 4)


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv2b_unlisted_host_bridge(kernel):
    v = calc(tv2(ACS_ON, hb="8086:1234"), "03:00.0", "04:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("NOT_SUPPORTED", 4)
    expected = [
        "nvme 0000:04:00.0: ACS redirect is set between the client and provider (0000:03:00.0)",
        "nvme 0000:04:00.0: to disable ACS redirect for this path, add the kernel parameter:"
        " pci=disable_acs_redir=0000:02:00.0;0000:02:01.0",
    ]
    if kernel in WARNING_ERAS:
        expected.append("pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:1234")
    expected.append(
        "nvme 0000:04:00.0: cannot be used for peer-to-peer DMA as the client and provider"
        " (0000:03:00.0) do not share an upstream bridge or whitelisted host bridge"
    )
    assert texts(v) == expected


@pytest.mark.parametrize("kernel", INT_ERAS)
def test_tv2b_int_eras(kernel):
    v = calc(tv2(ACS_ON), "03:00.0", "04:00.0", kernel)
    assert (v.map_type, v.distance) == (None, -2)
    assert texts(v) == [
        "nvme 0000:04:00.0: cannot be used for peer-to-peer DMA as ACS redirect is set between"
        " the client and provider (0000:03:00.0)",
        "nvme 0000:04:00.0: to disable ACS redirect for this path, add the kernel parameter:"
        " pci=disable_acs_redir=0000:02:00.0;0000:02:01.0",
    ]


# -- TV3: two Root Ports, one host bridge -------------------------------------------


def tv3(hb: str, platform: Platform = INTEL, rp_acs: Acs | None = None):
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True, acs=rp_acs),
        dev("00:02.0", "8086:2031", bridge=True, acs=rp_acs),
        dev("01:00.0", parent="00:01.0", driver="nvme"),
        dev("02:00.0", parent="00:02.0", driver="nvme"),
        platform=platform,
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv3a_whitelisted(kernel):
    assert result(tv3("8086:2020"), "01:00.0", "02:00.0", kernel) == ("THRU_HOST_BRIDGE", 4)


@pytest.mark.parametrize("kernel", INT_ERAS)
def test_tv3_int_eras(kernel):
    assert result(tv3("8086:2020"), "01:00.0", "02:00.0", kernel) == (None, -1)
    v = calc(tv3("8086:2020"), "01:00.0", "02:00.0", kernel)
    assert texts(v) == [
        "nvme 0000:02:00.0: cannot be used for peer-to-peer DMA as the client and provider"
        " (0000:01:00.0) do not share an upstream bridge"
    ]


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv3b_req_same_host_bridge_same(kernel):
    assert result(tv3("8086:3c00"), "01:00.0", "02:00.0", kernel) == ("THRU_HOST_BRIDGE", 4)


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv3c_amd_1450(kernel):
    assert result(tv3("1022:1450", ZEN), "01:00.0", "02:00.0", kernel) == ("THRU_HOST_BRIDGE", 4)


def test_tv3c_int_eras():
    t = tv3("1022:1450", ZEN)
    assert result(t, "01:00.0", "02:00.0", "5.1") == (None, 0x1000 + 4)
    assert result(t, "01:00.0", "02:00.0", "5.3") == (None, 4100)
    assert result(t, "01:00.0", "02:00.0", "4.20") == (None, -1)
    assert calc(t, "01:00.0", "02:00.0", "5.2").messages == ()


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("5.4", "NOT_SUPPORTED"),
        ("5.8", "NOT_SUPPORTED"),
        ("5.9", "THRU_HOST_BRIDGE"),
        ("6.12", "THRU_HOST_BRIDGE"),
        ("next", "THRU_HOST_BRIDGE"),
    ],
)
def test_tv3d_zen2_unlisted_root_complex(kernel, expected):
    assert result(tv3("1022:1480", ZEN), "01:00.0", "02:00.0", kernel) == (expected, 4)


def test_tv3d_int_eras():
    assert result(tv3("1022:1480", ZEN), "01:00.0", "02:00.0", "5.1") == (None, -1)


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv3e_unlisted_no_whitelist_warning(kernel):
    v = calc(tv3("8086:1234", rp_acs=ACS_ON), "01:00.0", "02:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("NOT_SUPPORTED", 4)
    assert texts(v) == [
        "nvme 0000:02:00.0: cannot be used for peer-to-peer DMA as the client and provider"
        " (0000:01:00.0) do not share an upstream bridge or whitelisted host bridge"
    ]
    assert v.acs_redirect == ()  # ACS on the Root Ports is walked but ignored


# -- TV4: two host bridges ------------------------------------------------------------


def tv4(x0: str, x1: str, platform: Platform = INTEL):
    return topo(
        host("00:00.0", x0),
        dev("00:02.0", "8086:2030", bridge=True),
        dev("01:00.0", parent="00:02.0"),
        host("80:00.0", x1),
        dev("80:02.0", "8086:2030", bridge=True),
        dev("81:00.0", parent="80:02.0"),
        platform=platform,
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
@pytest.mark.parametrize(
    ("x0", "x1", "intel"),
    [
        ("8086:2f00", "8086:2f00", "NOT_SUPPORTED"),
        ("8086:2020", "8086:2020", "THRU_HOST_BRIDGE"),
        ("8086:2020", "8086:1234", "NOT_SUPPORTED"),
    ],
)
def test_tv4_two_host_bridges(kernel, x0, x1, intel):
    assert result(tv4(x0, x1), "01:00.0", "81:00.0", kernel) == (intel, 4)
    if kernel in CPU_CHECK:
        assert result(tv4(x0, x1, ZEN), "01:00.0", "81:00.0", kernel) == ("THRU_HOST_BRIDGE", 4)


def test_tv4c_second_check_silent_and_short_circuit():
    v = calc(tv4("8086:2020", "8086:1234"), "01:00.0", "81:00.0")
    assert [w.passed for w in v.whitelist_checks] == [True, False]
    assert not any("whitelist:" in m for m in texts(v))
    v = calc(tv4("8086:1234", "8086:2020"), "01:00.0", "81:00.0")
    assert [w.passed for w in v.whitelist_checks] == [False]  # hb is not looked at


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("5.4", "NOT_SUPPORTED"),
        ("5.15", "NOT_SUPPORTED"),
        ("5.17", "NOT_SUPPORTED"),
        ("5.18", "THRU_HOST_BRIDGE"),
        ("6.12", "THRU_HOST_BRIDGE"),
        ("next", "THRU_HOST_BRIDGE"),
    ],
)
def test_tv4d_ice_lake(kernel, expected):
    assert result(tv4("8086:09a2", "8086:09a2"), "01:00.0", "81:00.0", kernel) == (expected, 4)


# -- TV5: multi-function device under an ACS Root Port --------------------------------


def tv5(rp_acs: Acs | None, hb: str = "8086:2020"):
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True, acs=rp_acs),
        dev("01:00.0", parent="00:01.0", multifunction=True, driver="nvme"),
        dev("01:00.1", parent="00:01.0", multifunction=True, driver="nvme"),
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv5_common_node_acs_counts(kernel):
    v = calc(tv5(ACS_ON), "01:00.0", "01:00.1", kernel)
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 2)
    assert v.acs_list_text == "0000:00:01.0"
    assert result(tv5(ACS_ON, "8086:1234"), "01:00.0", "01:00.1", kernel) == ("NOT_SUPPORTED", 2)
    assert result(tv5(None), "01:00.0", "01:00.1", kernel) == ("BUS_ADDR", 2)
    assert result(tv5(ACS_CAP_ONLY), "01:00.0", "01:00.1", kernel) == ("BUS_ADDR", 2)


@pytest.mark.parametrize("kernel", INT_ERAS)
def test_tv5_int_eras(kernel):
    assert result(tv5(ACS_ON), "01:00.0", "01:00.1", kernel) == (None, -2)
    assert result(tv5(None), "01:00.0", "01:00.1", kernel) == (None, 2)


# -- TV6: asymmetric depth --------------------------------------------------------------


def tv6(hb: str = "8086:2020"):
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True, pcie=PcieType.UPSTREAM),
        dev("02:00.0", "10b5:8747", "01:00.0", bridge=True, acs=ACS_ON),
        dev("03:00.0", parent="02:00.0"),
        dev("00:02.0", "8086:2031", bridge=True),
        dev("04:00.0", parent="00:02.0"),
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv6_asymmetric_depth(kernel):
    v = calc(tv6(), "03:00.0", "04:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 6)
    assert not any("ACS" in m for m in texts(v))
    assert result(tv6("8086:1234"), "03:00.0", "04:00.0", kernel) == ("NOT_SUPPORTED", 6)


def test_tv6_int_era():
    assert result(tv6(), "03:00.0", "04:00.0", "4.20") == (None, -1)


# -- TV7: nested switches -----------------------------------------------------------------


def tv7(acs1a=ACS_ON, acs2a=ACS_ON, acs1b=ACS_ON, hb="8086:2020"):
    up = PcieType.UPSTREAM
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True, pcie=up),
        dev("02:01.0", "10b5:8747", "01:00.0", bridge=True, acs=acs1a),
        dev("03:00.0", "10b5:8747", "02:01.0", bridge=True, pcie=up),
        dev("04:01.0", "10b5:8747", "03:00.0", bridge=True, acs=acs2a),
        dev("05:00.0", parent="04:01.0"),
        dev("02:02.0", "10b5:8747", "01:00.0", bridge=True, acs=acs1b),
        dev("06:00.0", parent="02:02.0"),
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv7_nested_switches(kernel):
    v = calc(tv7(), "05:00.0", "06:00.0", kernel)
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 6)
    assert (v.provider_index, v.client_index) == (4, 2)
    assert v.acs_list_text == "0000:04:01.0;0000:02:01.0;0000:02:02.0"
    back = calc(tv7(), "06:00.0", "05:00.0", kernel)
    assert back.acs_list_text == "0000:02:02.0;0000:04:01.0;0000:02:01.0"
    assert result(tv7("8086:1234" and ACS_ON, hb="8086:1234"), "05:00.0", "06:00.0", kernel) == (
        "NOT_SUPPORTED",
        6,
    )
    assert result(tv7(None, None, None), "05:00.0", "06:00.0", kernel) == ("BUS_ADDR", 6)
    only = calc(tv7(None, ACS_ON, None), "05:00.0", "06:00.0", kernel)
    assert only.acs_list_text == "0000:04:01.0"
    assert (
        calc(tv7(None, ACS_ON, None), "06:00.0", "05:00.0", kernel).acs_list_text == "0000:04:01.0"
    )


# -- TV8: Skylake-E root bus whose first device is a Root Port at devfn != 0 ---------------


def tv8(with_00: str | None = None):
    devices = [
        dev("00:01.0", "8086:2030", bridge=True),
        dev("00:02.0", "8086:2031", bridge=True),
        dev("01:00.0", parent="00:01.0"),
        dev("02:00.0", parent="00:02.0"),
    ]
    if with_00:
        devices.append(host("00:00.0", with_00))
    return topo(*devices)


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("5.4", "NOT_SUPPORTED"),
        ("5.14", "NOT_SUPPORTED"),
        ("5.15", "NOT_SUPPORTED"),
        ("5.18", "NOT_SUPPORTED"),
        ("5.19", "THRU_HOST_BRIDGE"),
        ("6.12", "THRU_HOST_BRIDGE"),
        ("next", "THRU_HOST_BRIDGE"),
    ],
)
def test_tv8_root_port_at_any_devfn(kernel, expected):
    assert result(tv8(), "01:00.0", "02:00.0", kernel) == (expected, 4)


@pytest.mark.parametrize("kernel", ["5.19", "6.12", "next"])
def test_tv8_counter_case(kernel):
    assert result(tv8("8086:1234"), "01:00.0", "02:00.0", kernel) == ("NOT_SUPPORTED", 4)


def test_tv8_lookup_is_explained():
    v = calc(tv8(), "01:00.0", "02:00.0", "5.18")
    assert v.whitelist_checks[0].device is None
    assert "not at devfn 00.0" in v.whitelist_checks[0].reason
    v = calc(tv8(), "01:00.0", "02:00.0", "6.12")
    assert v.whitelist_checks[0].device == B("00:01.0")


# -- TV9: Ice Lake-SP --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("5.4", "NOT_SUPPORTED"),
        ("5.17", "NOT_SUPPORTED"),
        ("5.18", "THRU_HOST_BRIDGE"),
        ("6.12", "THRU_HOST_BRIDGE"),
    ],
)
def test_tv9_ice_lake(kernel, expected):
    assert result(tv3("8086:09a2"), "01:00.0", "02:00.0", kernel) == (expected, 4)


# -- TV10: SR-IOV PF and its VF ------------------------------------------------------------


def tv10(rp_acs: Acs | None, hb: str = "8086:2020", vf_bus: str = "01:00.2"):
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True, acs=rp_acs),
        dev("01:00.0", "15b3:101d", "00:01.0"),
        dev(vf_bus, "15b3:101e", "00:01.0", physfn="01:00.0"),
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
@pytest.mark.parametrize("vf", ["01:00.2", "02:00.0"])
def test_tv10_pf_and_vf(kernel, vf):
    v = calc(tv10(ACS_ON, vf_bus=vf), "01:00.0", vf, kernel)
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 2)
    assert B("01:00.0") not in v.client_chain
    assert result(tv10(ACS_ON, "8086:1234", vf), "01:00.0", vf, kernel) == ("NOT_SUPPORTED", 2)
    assert result(tv10(None, vf_bus=vf), "01:00.0", vf, kernel) == ("BUS_ADDR", 2)


# -- TV11: distance_many and find_many -------------------------------------------------------


def tv11(hb: str = "8086:2020", platform: Platform = INTEL):
    mem = P2pMem(size=1 << 21, available=1 << 21, published=True)
    return topo(
        host("00:00.0", hb),
        dev("00:01.0", "8086:2030", bridge=True),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True, pcie=PcieType.UPSTREAM),
        dev("02:00.0", "10b5:8747", "01:00.0", bridge=True),
        dev("02:01.0", "10b5:8747", "01:00.0", bridge=True),
        dev("03:00.0", parent="02:00.0", p2pmem=mem),
        dev("04:00.0", parent="02:01.0", p2pmem=mem),
        dev("00:02.0", "8086:2031", bridge=True),
        dev("05:00.0", parent="00:02.0"),
        platform=platform,
    )


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv11_distance_many(kernel):
    s = state(tv11(), kernel)
    assert pci_p2pdma_distance_many(s, B("03:00.0"), [B("04:00.0"), B("05:00.0")]).total == 10
    s = state(tv11("8086:1234"), kernel)
    assert pci_p2pdma_distance_many(s, B("03:00.0"), [B("04:00.0"), B("05:00.0")]).total == -1
    s = state(tv11(), kernel)
    plat = NonPciClient("platform-dev")
    many = pci_p2pdma_distance_many(s, B("03:00.0"), [B("04:00.0"), plat])
    assert many.total == -1
    assert [m.dmesg() for m in many.messages] == [
        "platform-dev: cannot be used for peer-to-peer DMA as it is not a PCI device"
    ]
    assert pci_p2pdma_distance_many(s, B("03:00.0"), []).total == -1


@pytest.mark.parametrize("kernel", V54_PLUS)
def test_tv11_find_many_picks_closest(kernel):
    found = pci_p2pmem_find_many(state(tv11(), kernel), [B("04:00.0"), B("05:00.0")])
    assert dict(found.candidates) == {B("03:00.0"): 10, B("04:00.0"): 6}
    assert (found.best, found.tied) == (6, (B("04:00.0"),))


def test_tv11_find_many_reports_ties():
    found = pci_p2pmem_find_many(state(tv11()), [B("05:00.0")])
    assert found.best == 6 and found.tied == (B("03:00.0"), B("04:00.0"))


def test_tv11_int_eras():
    s = state(tv11(), "5.1")
    assert pci_p2pdma_distance_many(s, B("03:00.0"), [B("04:00.0"), B("05:00.0")]).total == -1
    s = state(tv11("1022:1450", ZEN), "5.2")
    assert pci_p2pdma_distance_many(s, B("03:00.0"), [B("04:00.0"), B("05:00.0")]).total == 0x100A


def test_distance_many_stops_without_verbose():
    s = state(tv11("8086:1234"))
    quiet = pci_p2pdma_distance_many(s, B("03:00.0"), [B("05:00.0"), B("04:00.0")], verbose=False)
    assert quiet.total == -1 and len(quiet.verdicts) == 1 and quiet.messages == ()
    loud = pci_p2pdma_distance_many(s, B("03:00.0"), [B("05:00.0"), B("04:00.0")], verbose=True)
    assert loud.total == -1 and len(loud.verdicts) == 2


# -- TV13: bus-offset arithmetic -------------------------------------------------------------


def test_tv13_bus_offset():
    bar = Bar(4, 0x4000100000, 0x100000, bus_address=0x80100000)
    offset = bus_offset(bar, HostBridge(RootBus(0, 0)))
    assert offset == 0xFFFFFFC080000000
    assert p2p_dma_address(0x4000103000, offset, KernelVersion.parse("5.16")) == 0x80103000
    assert p2p_dma_address(0x4000103000, offset, KernelVersion.parse("6.12")) == 0x80103000
    assert p2p_dma_address(0x4000103000, offset, KernelVersion.parse("5.15")) == 0x7F80103000


def test_tv13_offset_from_host_bridge_window():
    bar = Bar(4, 0x4000100000, 0x100000)
    hb = HostBridge(RootBus(0, 0), mem_offset=0x4000100000 - 0x80100000)
    assert bus_offset(bar, hb) == 0xFFFFFFC080000000
