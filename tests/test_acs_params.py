"""``pci=disable_acs_redir=`` and ``pci=config_acs=`` as each kernel applies them."""

from __future__ import annotations

import pytest
from builders import B, dev, host, result, state, topo

from p2pview.kernel.acs import pci_dev_str_match, with_iommu_acs
from p2pview.kernel.profiles import AcsParamForm, KernelTarget
from p2pview.model import Acs, AcsPresence, Platform


def switch(acs: Acs, cmdline: str = "", second: Acs | None = None):
    return topo(
        host("00:00.0", "8086:1234"),
        dev("00:01.0", "8086:2030", bridge=True),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True),
        dev("02:00.0", "10b5:8747", "01:00.0", bridge=True, acs=acs),
        dev("02:01.0", "10b5:8747", "01:00.0", bridge=True, acs=second or acs),
        dev("03:00.0", parent="02:00.0", ids="144d:a808"),
        dev("04:00.0", parent="02:01.0", ids="144d:a808"),
        platform=Platform(cmdline=cmdline),
    )


IOMMU_ACS = Acs.present(0x5F, 0x1D, 0x00)  # the kernel set SV|RR|CR|UF, firmware nothing
FIRMWARE_ACS = Acs.present(0x5F, 0x0C)  # firmware set RR|CR
BOTH = "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0"


def boot(t, kernel):
    s = state(t, kernel)
    return s, [m.dmesg() for m in s.boot_messages]


@pytest.mark.parametrize(
    ("kernel", "form"),
    [
        ("4.20", AcsParamForm.LEGACY),
        ("6.10", AcsParamForm.LEGACY),
        ("6.11", AcsParamForm.CONFIG_ACS_V1),
        ("6.12", AcsParamForm.CONFIG_ACS_V1),
        ("6.12.22", AcsParamForm.CONFIG_ACS_V1),
        ("6.12.23", AcsParamForm.CONFIG_ACS_FIXED),
        ("6.12.117", AcsParamForm.CONFIG_ACS_FIXED),
        ("6.14", AcsParamForm.CONFIG_ACS_V1),
        ("6.15", AcsParamForm.CONFIG_ACS_FIXED),
        ("next", AcsParamForm.CONFIG_ACS_FIXED),
    ],
)
def test_param_form_by_release(kernel, form):
    assert KernelTarget.parse(kernel).acs_params is form


@pytest.mark.parametrize("acs", [IOMMU_ACS, FIRMWARE_ACS])
def test_legacy_clears_redirect_bits(acs):
    s, lines = boot(switch(acs, BOTH), "6.10")
    assert s.acs[B("02:00.0")].ctrl == acs.ctrl & ~0x2C
    assert lines == [
        "pci 0000:02:00.0: disabled ACS redirect",
        "pci 0000:02:01.0: disabled ACS redirect",
    ]
    assert result(switch(acs, BOTH), "03:00.0", "04:00.0", "6.10") == ("BUS_ADDR", 4)


def test_legacy_warns_for_a_device_without_acs():
    t = switch(Acs.absent(), "pci=disable_acs_redir=0000:02:00.0")
    _s, lines = boot(t, "5.15")
    assert lines == [
        "pci 0000:02:00.0: cannot disable ACS redirect for this hardware as it does not have ACS"
        " capabilities"
    ]
    _s, lines = boot(t, "6.15")
    assert lines == []  # v6.11+ skips devices without ACS silently


def test_v611_restores_firmware_bits_and_sets_the_rest():
    """47c8846a49ba as merged: RR/CR/EC come back from fw_ctrl, other bits are ORed with 0xffd3."""
    s, lines = boot(switch(IOMMU_ACS, BOTH), "6.12")
    assert lines[0] == "pci 0000:02:00.0: Configured ACS to 0xffd3"
    assert s.acs[B("02:00.0")].ctrl == 0xFFD3 & 0x5F
    assert result(switch(IOMMU_ACS, BOTH), "03:00.0", "04:00.0", "6.12") == ("BUS_ADDR", 4)
    # Firmware-set redirect bits survive the parameter on this release.
    s, lines = boot(switch(FIRMWARE_ACS, BOTH), "6.12")
    assert lines[0] == "pci 0000:02:00.0: Configured ACS to 0xffdf"
    assert result(switch(FIRMWARE_ACS, BOTH), "03:00.0", "04:00.0", "6.12") == ("NOT_SUPPORTED", 4)


def test_fixed_form_matches_the_fix_commit_example():
    """9cf8a952d57b's log: control 0x007f after std enable, fw_ctrl 0x007b -> 0x0053."""
    acs = Acs.present(0x7F, 0x7F, 0x7B)
    s, lines = boot(switch(acs, BOTH), "6.15")
    assert lines[0] == "pci 0000:02:00.0: Configured ACS to 0x0053"
    assert s.acs[B("02:00.0")].ctrl == 0x53
    assert result(switch(FIRMWARE_ACS, BOTH), "03:00.0", "04:00.0", "6.12.117") == ("BUS_ADDR", 4)


def test_config_acs_flags_rightmost_is_sv():
    t = switch(Acs.present(0x5F, 0x03), "pci=config_acs=10x@0000:02:00.0")
    s, lines = boot(t, "6.15")
    # RR on, TB off, SV unchanged (from firmware): 0x0004 | 0x0001
    assert s.acs[B("02:00.0")].ctrl == 0x05
    assert lines == ["pci 0000:02:00.0: Configured ACS to 0x0005"]
    assert s.acs[B("02:01.0")].ctrl == 0x03


def test_config_acs_unknown_before_611():
    t = switch(FIRMWARE_ACS, "pci=config_acs=000@0000:02:00.0")
    s, lines = boot(t, "6.10")
    assert lines == ["PCI: Unknown option `config_acs=000@0000:02:00.0'"]
    assert s.acs[B("02:00.0")].redirect == 0x0C


def test_config_acs_v1_only_first_entry_parses():
    t = switch(FIRMWARE_ACS, "pci=config_acs=1xx@0000:03:00.0;1xx@0000:02:01.0")
    s, lines = boot(t, "6.12")
    assert "PCI: Can't parse acs command line parameter" in lines
    assert s.acs[B("02:01.0")].ctrl == 0x0C
    s, _lines = boot(t, "6.15")
    assert s.acs[B("02:01.0")].ctrl == (0x0C & ~0x04 | 0x04)


def test_config_acs_wins_over_disable_acs_redir_after_the_fix():
    t = switch(FIRMWARE_ACS, BOTH + ",config_acs=xxxxx1x@0000:02:00.0")
    s, _ = boot(t, "6.15")
    assert s.acs[B("02:00.0")].redirect == 0x0C  # 'x' bits come back from firmware
    assert s.acs[B("02:01.0")].redirect == 0


def test_last_pci_option_wins_and_double_dash_ends_kernel_params():
    t = switch(
        FIRMWARE_ACS, "pci=disable_acs_redir=0000:02:00.0 pci=disable_acs_redir=0000:02:01.0"
    )
    s, _ = boot(t, "6.10")
    assert (s.acs[B("02:00.0")].redirect, s.acs[B("02:01.0")].redirect) == (0x0C, 0)
    t = switch(FIRMWARE_ACS, "quiet -- pci=disable_acs_redir=0000:02:00.0")
    s, _ = boot(t, "6.10")
    assert s.acs[B("02:00.0")].redirect == 0x0C


def test_device_id_and_path_forms():
    t = switch(FIRMWARE_ACS)
    d = t[B("02:01.0")]
    assert pci_dev_str_match(t, d, "pci:10b5:8747")[0] == 1
    assert pci_dev_str_match(t, d, "pci:0:0")[0] == 1
    assert pci_dev_str_match(t, d, "pci:10b5:8748")[0] == 0
    assert pci_dev_str_match(t, d, "02:01.0")[0] == 1
    # path form: hops by devfn below the first element
    assert pci_dev_str_match(t, d, "0000:00:01.0/0.0/1.0")[0] == 1
    assert pci_dev_str_match(t, d, "0000:00:01.0/0.0/2.0")[0] == 0
    assert pci_dev_str_match(t, d, "00:01.0/0.0/1.0;rest") == (1, ";rest")
    assert pci_dev_str_match(t, d, "garbage")[0] == -1


def test_parse_error_printed_once_and_stops_scan():
    t = switch(FIRMWARE_ACS, "pci=disable_acs_redir=0000:02:00.0;bogus;0000:02:01.0")
    s, lines = boot(t, "6.10")
    assert (
        lines.count("PCI: Can't parse disable_acs_redir parameter: 0000:02:00.0;bogus;0000:02:01.0")
        == 1
    )
    assert s.acs[B("02:00.0")].redirect == 0
    assert s.acs[B("02:01.0")].redirect == 0x0C


def test_unknown_acs_settled_only_when_the_parameter_forces_zero():
    t = switch(Acs.unknown(), "pci=disable_acs_redir=0000:02:00.0")
    s, _ = boot(t, "6.10")
    assert s.acs[B("02:00.0")].known and s.acs[B("02:00.0")].redirect == 0
    assert not s.acs[B("02:01.0")].known
    s, _ = boot(t, "6.12")
    assert not s.acs[B("02:00.0")].known
    s, _ = boot(t, "6.15")
    assert s.acs[B("02:00.0")].known


def test_iommu_enabling_sets_rr_cr_from_the_capability():
    t = with_iommu_acs(switch(Acs.present(0x5F, 0x00)))
    acs = t[B("02:00.0")].acs
    assert (acs.presence, acs.ctrl, acs.fw_ctrl) == (AcsPresence.PRESENT, 0x1D, 0x00)
    assert result(t, "03:00.0", "04:00.0") == ("NOT_SUPPORTED", 4)
