"""Era facts read in Debian's five released trees: whitelist rows, lookup rule, enum values.

Each expectation below was read in Debian's linux-source packages (5.10.223,
6.1.176, 6.12.117, 7.2.13, 7.3~rc7: drivers/pci/p2pdma.c, include/linux/
pci-p2pdma.h or dma-map-ops.h, drivers/pci/pci.c) or in the Debian changelog
they ship; a user notices them as verdicts on a machine with one of these host
bridges, or as the lookup explained by ``p2pview explain``.
"""

from __future__ import annotations

import pytest

from p2pview.kernel import KernelTarget
from p2pview.kernel.profiles import AcsParamForm, HostBridgeDevRule
from p2pview.kernel.whitelist import REQ_SAME_HOST_BRIDGE

BASE = {
    "8086:3c00",
    "8086:3c01",
    "8086:2f00",
    "8086:2f01",
    "8086:2030",
    "8086:2031",
    "8086:2032",
    "8086:2033",
    "8086:2020",
}
ACCEL = {
    "8086:0b25",
    "8086:0cfe",
    "8086:11fb",
    "8086:1212",
    "8086:1216",
    "8086:4940",
    "8086:4942",
    "8086:4944",
    "8086:4946",
    "8086:4948",
}
NVIDIA = {"10de:2f95", "10de:2f96", "10de:2f97", "10de:2f98"}
ZHAOXIN = {"1d17:1003", "1d17:1005", "1d17:1006", "1d17:1007", "1d17:1008"}


def rows(release: str) -> list[str]:
    return [e.ids for e in KernelTarget.parse(release).whitelist]


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("5.10.223", BASE),
        ("6.1.176", BASE | {"8086:09a2"}),
        ("6.12.117", BASE | {"8086:09a2"}),
        ("7.2.13", BASE | {"8086:09a2"} | ACCEL | {"1ae0:*"}),
        ("7.3-rc7", BASE | {"8086:09a2"} | ACCEL | {"1ae0:*"} | NVIDIA),
        ("next", BASE | {"8086:09a2"} | ACCEL | {"1ae0:*"} | NVIDIA | ZHAOXIN),
    ],
)
def test_whitelist_rows_of_the_released_trees(release, expected):
    got = rows(release)
    assert set(got) == expected
    assert len(got) == len(expected)


def test_rows_keep_the_kernels_order():
    got = rows("7.3-rc7")
    assert got[:9] == [
        "8086:3c00",
        "8086:3c01",
        "8086:2f00",
        "8086:2f01",
        "8086:2030",
        "8086:2031",
        "8086:2032",
        "8086:2033",
        "8086:2020",
    ]
    assert got[9] == "8086:09a2"
    assert got.index("1ae0:*") == 20 and got[21:] == sorted(NVIDIA)


def test_only_the_xeon_e5_e7_rows_require_the_same_host_bridge():
    same = {
        e.ids for e in KernelTarget.parse("7.3-rc7").whitelist if e.flags & REQ_SAME_HOST_BRIDGE
    }
    assert same == {"8086:3c00", "8086:3c01", "8086:2f00", "8086:2f01"}


@pytest.mark.parametrize(
    ("release", "has_accelerators"),
    [("7.1.2", False), ("7.1.3", True), ("7.2", True), ("7.2.13", True)],
)
def test_accelerator_rows_came_to_7_1_with_stable_7_1_3(release, has_accelerators):
    assert ACCEL.issubset(rows(release)) is has_accelerators


def test_nvidia_rows_start_with_7_3_and_zhaoxin_only_in_the_maintainer_tree():
    assert not NVIDIA & set(rows("7.2.13"))
    assert not ZHAOXIN & set(rows("7.3-rc7"))


@pytest.mark.parametrize(
    ("release", "rule"),
    [
        ("5.4", HostBridgeDevRule.SLOT_00_0),
        ("5.10.51", HostBridgeDevRule.SLOT_00_0),
        ("5.10.52", HostBridgeDevRule.FIRST_IF_DEVFN_0),
        ("5.10.223", HostBridgeDevRule.FIRST_IF_DEVFN_0),
        ("5.14", HostBridgeDevRule.FIRST_IF_DEVFN_0),
        ("5.17", HostBridgeDevRule.FIRST_IF_DEVFN_0),
        ("6.1.176", HostBridgeDevRule.FIRST_IF_DEVFN_0_OR_ROOT_PORT),
        ("7.3-rc7", HostBridgeDevRule.FIRST_IF_DEVFN_0_OR_ROOT_PORT),
    ],
)
def test_host_bridge_lookup_rule_by_release(release, rule):
    assert KernelTarget.parse(release).host_bridge_dev is rule


def test_int_distance_eras_keep_their_rule():
    assert KernelTarget.parse("5.3").host_bridge_dev is HostBridgeDevRule.SLOT_00_0
    assert KernelTarget.parse("4.20").host_bridge_dev is None


@pytest.mark.parametrize(
    ("release", "not_supported", "thru"),
    [
        ("5.10.223", 1, 3),
        ("6.1.176", 1, 3),
        ("6.12.117", 1, 3),
        ("7.2.13", 2, 4),
        ("7.3-rc7", 2, 4),
    ],
)
def test_map_type_values(release, not_supported, thru):
    values = KernelTarget.parse(release).map_type_values
    assert values["NOT_SUPPORTED"] == not_supported
    assert values["THRU_HOST_BRIDGE"] == thru
    assert ("NONE" in values) is (not_supported == 2)


@pytest.mark.parametrize(
    ("release", "form"),
    [
        ("6.1.176", AcsParamForm.LEGACY),
        ("6.12.22", AcsParamForm.CONFIG_ACS_V1),
        ("6.12.23", AcsParamForm.CONFIG_ACS_FIXED),
        ("6.12.117", AcsParamForm.CONFIG_ACS_FIXED),
        ("7.2.13", AcsParamForm.CONFIG_ACS_FIXED),
    ],
)
def test_acs_parameter_code_by_release(release, form):
    assert KernelTarget.parse(release).acs_params is form


@pytest.mark.parametrize(
    ("release", "booted"),
    [
        ("5.10", "Linux 5.10.223"),
        ("6.1", "Linux 6.1.176"),
        ("6.12", "6.12.117"),
        ("7.2", "Linux 7.2.13"),
        ("7.3", "7.3-rc7"),
    ],
)
def test_profiles_name_the_released_tree_they_were_read_in(release, booted):
    profile = KernelTarget.parse(release).profile
    assert booted in profile.sources and "read and booted" in profile.sources


def test_eras_without_a_released_tree_say_so():
    for key in ("4.20", "5.1", "5.4", "5.15"):
        profile = KernelTarget.parse(key).profile
        text = " ".join((profile.sources, *profile.caveats))
        assert "booted" in text or "not read in a released tree" in text
        assert "read and booted" not in profile.sources
