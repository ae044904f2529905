"""IOMMU groups as pci_device_group() forms them (Linux 6.12.117 drivers/iommu/iommu.c)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from p2pview.kernel.acs_quirks import dev_specific_acs_enabled, dma_alias_quirk
from p2pview.kernel.iommu_group import (
    IommuGroups,
    check_groups,
    group_changes,
    group_report,
    pci_device_groups,
    read_groups,
)
from p2pview.model import BDF, Acs, PciDevice, PcieType
from p2pview.session import EngineConfig, open_session, session_for
from p2pview.sources import Loaded
from p2pview.sources.topofile import parse_topology_text


def _b(text: str) -> BDF:
    return BDF.parse(text)


def _short(groups: Iterable[Iterable[BDF]]) -> list[list[str]]:
    return [[b.short() for b in g] for g in groups]


@pytest.mark.parametrize("name", ["switch-acs-iommu", "sriov-nic", "epyc-2s"])
def test_groups_of_bundled_topologies_equal_the_groups_they_give(name: str) -> None:
    session = open_session(name)
    groups = pci_device_groups(session.state)
    check = check_groups(session.topology, groups)
    assert read_groups(session.topology)
    assert check.checked > 0 and check.agrees, check.differing
    assert not groups.unknown


def test_no_iommu_no_groups() -> None:
    groups = pci_device_groups(open_session("switch-nvme").state)
    assert groups.groups == () and not groups.unknown


def test_disable_acs_redir_on_a_downstream_port_joins_its_endpoint_to_its_group() -> None:
    before = pci_device_groups(open_session("switch-acs-iommu").state)
    edited = open_session(
        "switch-acs-iommu", EngineConfig.parse(cmdline="pci=disable_acs_redir=0000:19:00.0")
    )
    after = pci_device_groups(edited.state)
    changes = group_changes(before, after)
    assert [(_short([c.after]), len(c.before)) for c in changes] == [([["19:00.0", "1a:00.0"]], 2)]
    assert "joins 19:00.0: 19:00.0 has ACS RR|CR off" in after.reasons[_b("0000:1a:00.0")]


def test_acs_off_on_the_root_port_makes_one_group_of_everything_below() -> None:
    edited = open_session(
        "switch-acs-iommu", EngineConfig.parse(cmdline="pci=disable_acs_redir=0000:17:02.0")
    )
    after = pci_device_groups(edited.state)
    group = after.group_of(_b("0000:1d:00.0"))
    assert group is not None
    assert [b.short() for b in group] == [
        "17:02.0", "18:00.0", "19:00.0", "19:01.0", "19:02.0", "19:03.0",
        "1a:00.0", "1b:00.0", "1c:00.0", "1d:00.0",
    ]  # fmt: skip


def test_report_checks_the_source_first() -> None:
    original = open_session("switch-acs-iommu")
    before = pci_device_groups(original.state)
    edited = open_session(
        "switch-acs-iommu", EngineConfig.parse(cmdline="pci=disable_acs_redir=0000:19:01.0")
    )
    report = group_report(original.state, edited.state, before)
    assert report.check.agrees and len(report.changes) == 1


_TOPO = """
format = "p2pview-topology/1"
name = "groups"

[platform]
iommu = "translated"
cpu_vendor = "GenuineIntel"
cpu_family = 6
kernel = "6.12"

[[host_bridge]]
root = "0000:00"

[[device]]
bdf = "0000:00:00.0"
id = "8086:2020"
class = 0x060000

[[device]]
bdf = "0000:00:01.0"
id = "8086:2030"
class = 0x060400
pcie_type = "root_port"
acs = {{ cap = 0x001f, ctrl = 0x001d }}

{devices}
"""


def _mf(vendor: int, device: int, acs: str = '"absent"') -> str:
    return "".join(
        f"""
[[device]]
bdf = "0000:01:00.{fn}"
parent = "0000:00:01.0"
id = "{vendor:04x}:{device:04x}"
class = 0x020000
pcie_type = "endpoint"
multifunction = true
acs = {acs}
"""
        for fn in (0, 1)
    )


def _groups(devices: str) -> IommuGroups:
    topo = parse_topology_text(_TOPO.format(devices=devices), "test.toml")
    return pci_device_groups(session_for(Loaded(topo, "file")).state)


def test_functions_of_a_slot_without_acs_share_a_group() -> None:
    groups = _groups(_mf(0x15B3, 0x1017))
    assert ["01:00.0", "01:00.1"] in _short(groups.groups)


def test_a_quirk_isolates_functions_without_acs() -> None:
    # Intel I350 (8086:1521) is in pci_dev_acs_enabled[] with pci_quirk_mf_endpoint_acs.
    groups = _groups(_mf(0x8086, 0x1521))
    assert ["01:00.0"] in _short(groups.groups) and ["01:00.1"] in _short(groups.groups)


def test_functions_with_acs_enabled_are_isolated() -> None:
    groups = _groups(_mf(0x15B3, 0x1017, "{ cap = 0x001f, ctrl = 0x001d }"))
    assert ["01:00.0"] in _short(groups.groups)


def test_unreadable_acs_gives_an_unknown_group() -> None:
    groups = _groups(_mf(0x15B3, 0x1017, '"unknown"'))
    assert _b("0000:01:00.0") in groups.unknown
    assert "could not be read" in groups.unknown[_b("0000:01:00.0")]


def test_a_pcie_to_pci_bridge_takes_over_the_requester_id() -> None:
    devices = """
[[device]]
bdf = "0000:01:00.0"
parent = "0000:00:01.0"
id = "12d8:e113"
class = 0x060400
pcie_type = "pci_bridge"

[[device]]
bdf = "0000:02:01.0"
parent = "0000:01:00.0"
id = "1000:0030"
class = 0x010000
"""
    groups = _groups(devices)
    assert ["01:00.0", "02:01.0"] in _short(groups.groups)


def test_quirk_tables_name_the_kernel_functions() -> None:
    amd = PciDevice(bdf=_b("0000:00:14.0"), vendor=0x1002, device=0x4385, multifunction=True)
    answer = dev_specific_acs_enabled(amd, 0x1D)
    assert answer is not None and answer.why.startswith("pci_quirk_amd_sb_acs()")
    marvell = PciDevice(bdf=_b("0000:03:00.0"), vendor=0x1B4B, device=0x9230)
    assert dma_alias_quirk(marvell) == "quirk_dma_func1_alias"
    port = PciDevice(
        bdf=_b("0000:00:1c.0"), vendor=0x8086, device=0xA110, pcie_type=PcieType.ROOT_PORT,
        acs=Acs.present(0x1F, 0x1D),
    )  # fmt: skip
    spt = dev_specific_acs_enabled(port, 0x1D)
    assert spt is not None and spt.enabled is None
