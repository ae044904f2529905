"""Pilot tests of the what-if screen (key 4) and its helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select
from tuikit import loaded, said, start, text_of

from p2pview.kernel import MapType
from p2pview.model import BDF, IommuMode, Platform
from p2pview.model.errors import InputError
from p2pview.session import EngineConfig
from p2pview.sources import load_source
from p2pview.tui.analysis import toggle_acs_bit
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.whatif_changes import relevant_changes
from p2pview.tui.presenters.whatif_platform import cpu_choice, parse_ids
from p2pview.tui.screens.explain import ExplainScreen
from p2pview.tui.screens.whatif import WhatIfScreen
from p2pview.tui.widgets.whatif_acs import AcsToggleList, bit_offset
from p2pview.tui.widgets.whatif_save import SaveDialog

PROVIDER = BDF.parse("0000:1a:00.0")
CLIENT = BDF.parse("0000:1b:00.0")
DSP_A = BDF.parse("0000:19:00.0")
DSP_B = BDF.parse("0000:19:01.0")

Body = Callable[[P2PViewApp, Pilot[None]], Awaitable[None]]


def run_whatif(
    body: Body,
    source: str = "switch-acs-iommu",
    pair: tuple[BDF, BDF] | None = (PROVIDER, CLIENT),
    size: tuple[int, int] = (120, 40),
) -> None:
    """Load ``source``, choose ``pair``, open the what-if screen and run ``body``."""

    async def main() -> None:
        app = make_app(TuiArgs(source))
        async with app.run_test(size=size) as pilot:
            await loaded(app, pilot)
            assert app.whatif is not None
            if pair is not None:
                app.select(pair=pair)
            await pilot.press("4")
            await settle(app, pilot)
            assert isinstance(app.screen, WhatIfScreen)
            await body(app, pilot)

    asyncio.run(main())


async def settle(app: P2PViewApp, pilot: Pilot[None]) -> None:
    """Wait until queued what-if edits have run in their worker and been adopted."""
    for _ in range(100):
        await app.loaded()
        await pilot.pause()
        screen = app.screen
        if not (isinstance(screen, WhatIfScreen) and screen.busy):
            return
    raise AssertionError("what-if edits did not finish")


async def enter_cmdline(app: P2PViewApp, pilot: Pilot[None], text: str) -> None:
    """Type ``text`` as the kernel command line on the platform tab and wait for the edit."""
    await pilot.press("k")
    await settle(app, pilot)
    cmdline = app.screen.query_one("#cmdline-input", Input)
    cmdline.value = text
    cmdline.focus()
    await pilot.press("enter")
    await settle(app, pilot)


class Live:
    """The app's analysis as it is now, read afresh at each access (every edit replaces it)."""

    def __init__(self, app: P2PViewApp) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        whatif = self._app.whatif
        assert whatif is not None
        return getattr(whatif, name)


def model_of(app: P2PViewApp) -> Live:
    """The app's analysis, live."""
    return Live(app)


def cell(app: P2PViewApp, provider: BDF, client: BDF) -> tuple[int, int]:
    """``(map code, distance)`` of one pair in the model's all-pairs matrix."""
    matrix = model_of(app).verdicts.whole
    assert matrix is not None
    i, j = matrix.providers.index(provider), matrix.clients.index(client)
    return int(matrix.map_code[i, j]), int(matrix.distance[i, j])


async def select_row(pilot: Pilot[None], app: P2PViewApp, bdf: BDF) -> AcsToggleList:
    """Highlight ``bdf`` in the ACS list, with the list focused."""
    acs_list = app.screen.query_one("#acs-list", AcsToggleList)
    acs_list.focus()
    acs_list.highlighted = [r.bdf for r in acs_list.rows].index(bdf)
    await settle(app, pilot)
    return acs_list


async def clear_redirect(pilot: Pilot[None], app: P2PViewApp, bdf: BDF) -> None:
    """Clear RR and CR of ``bdf`` with the keyboard."""
    acs_list = await select_row(pilot, app, bdf)
    acs_list.bit_index = 0
    await pilot.press("space", "right", "space")
    await settle(app, pilot)


def test_acs_toggles_change_the_matrix_and_the_explanation() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        before = cell(app, PROVIDER, CLIENT)
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.THRU_HOST_BRIDGE
        await clear_redirect(pilot, app, DSP_A)
        assert model.topology[DSP_A].acs.ctrl == 0x0011
        assert list(model.edits) == [
            "ACS Control of 0000:19:00.0 -> 0x0019",
            "ACS Control of 0000:19:00.0 -> 0x0011",
        ]
        await clear_redirect(pilot, app, DSP_B)
        assert len(model.edits) == 4
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.BUS_ADDR
        assert cell(app, PROVIDER, CLIENT) != before
        assert model.comparison.changed is not None and model.comparison.changed.any()
        # The changes pane counts and lists the changed pairs, the edited rows are marked.
        assert "pairs changed against the original" in text_of(app, "changes-count")
        changes = app.screen.query_one("#changes-list", OptionList)
        assert changes.option_count > 0
        acs_list = app.screen.query_one("#acs-list", AcsToggleList)
        assert [r.bdf for r in acs_list.rows if r.edited] == [DSP_A, DSP_B]
        edits = text_of(app, "changes-edits")
        assert edits.splitlines()[1].strip() == "4. ACS Control of 0000:19:01.0 -> 0x0011"
        # The explain screen follows, with the what-if line.
        await pilot.press("3")
        await settle(app, pilot)
        assert isinstance(app.screen, ExplainScreen)
        assert "BUS_ADDR, distance 4" in text_of(app, "explain-header")
        assert "was THRU_HOST_BRIDGE 4, now BUS_ADDR 4" in text_of(app, "explain-change")

    run_whatif(body)


def test_enter_on_a_changed_pair_explains_it() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await clear_redirect(pilot, app, DSP_A)
        await clear_redirect(pilot, app, DSP_B)
        changes = app.screen.query_one("#changes-list", OptionList)
        changes.focus()
        changes.highlighted = 0
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ExplainScreen)
        pair = app.selection.pair
        assert pair is not None
        assert pair[0] != pair[1]
        assert "What-if: changed by the 4 edits" in text_of(app, "explain-change")

    run_whatif(body)


def test_unimplemented_bit_is_refused() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        root_port = BDF.parse("0000:17:02.0")
        acs_list = await select_row(pilot, app, root_port)
        row = acs_list.highlighted_row()
        assert row is not None and not row.implements(0x20)
        acs_list.bit_index = 2  # EC
        await pilot.press("space")
        await settle(app, pilot)
        assert list(model_of(app).edits) == []
        assert any("does not implement EC" in line for line in said(app))

    run_whatif(body)


def test_undo_and_reset() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        await pilot.press("u", "R")  # nothing to undo or reset: they say so
        await settle(app, pilot)
        told = said(app)
        assert "No what-if edit to undo" in told and "No what-if edits to reset" in told
        await clear_redirect(pilot, app, DSP_A)
        await pilot.press("u")
        await settle(app, pilot)
        assert list(model.edits) == ["ACS Control of 0000:19:00.0 -> 0x0019"]
        assert model.topology[DSP_A].acs.ctrl == 0x0019
        await clear_redirect(pilot, app, DSP_B)
        assert len(model.edits) == 3
        await pilot.press("R")  # like r (reload), the first R only warns
        await settle(app, pilot)
        assert len(model.edits) == 3
        assert any("Reset drops 3 what-if edits" in line for line in said(app))
        await pilot.press("R")
        await settle(app, pilot)
        assert list(model.edits) == []
        assert model.current is model.original
        assert model.verdicts is model.comparison.before and not model.comparison.marked
        assert "No what-if edits yet" in text_of(app, "changes-count")
        await pilot.press("i")
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert len(model.edits) == 1  # warned only
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert list(model.edits) == []

    run_whatif(body)


def test_save_writes_a_loadable_topology(tmp_path: Path, monkeypatch: object) -> None:
    target = tmp_path / "edited.toml"

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await clear_redirect(pilot, app, DSP_A)
        await pilot.press("w")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, SaveDialog)
        path_input = dialog.query_one(Input)
        assert path_input.value == "./p2pview-whatif.toml"
        path_input.value = str(target)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, WhatIfScreen)
        assert target.is_file()
        loaded = load_source(str(target))
        assert loaded.topology[DSP_A].acs.ctrl == 0x0011
        assert loaded.topology[DSP_B].acs.ctrl == 0x001D
        assert "ACS Control of 0000:19:00.0 -> 0x0011" in target.read_text(encoding="utf-8")
        # A path that cannot be written is a notification, not a traceback.
        await pilot.press("w")
        await settle(app, pilot)
        assert isinstance(app.screen, SaveDialog)
        app.screen.query_one(Input).value = str(tmp_path / "missing" / "dir" / "x.toml")
        await pilot.press("enter")
        await settle(app, pilot)
        assert any(line.startswith("Cannot save") for line in said(app))
        # Escape saves nothing.
        await pilot.press("w")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, WhatIfScreen)

    run_whatif(body)


def test_cpu_preset_flips_not_supported_to_thru() -> None:
    sibling_a = BDF.parse("0000:01:00.0")
    sibling_b = BDF.parse("0000:01:00.1")

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        assert model.verdict(sibling_a, sibling_b).map_type is MapType.NOT_SUPPORTED
        await pilot.press("k")
        await settle(app, pilot)
        cpu = app.screen.query_one("#cpu-select", Select)
        cpu.value = "amd:0x17"
        await settle(app, pilot)
        assert list(model.edits) == ["CPU: amd:0x17"]
        verdict = model.verdict(sibling_a, sibling_b)
        assert (verdict.map_type, verdict.distance) == (MapType.THRU_HOST_BRIDGE, 2)
        assert "cpu_supports_p2pdma() true" in text_of(app, "whatif-status")
        # Choosing the same preset again is not another edit.
        cpu.value = "amd:0x17"
        await settle(app, pilot)
        assert len(model.edits) == 1
        cpu.value = "amd:0xf"
        await settle(app, pilot)
        assert model.verdict(sibling_a, sibling_b).map_type is MapType.NOT_SUPPORTED

    run_whatif(body, source="multifunction-acs", pair=(sibling_a, sibling_b))


def test_host_bridge_ids_edit() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        await pilot.press("h")
        await settle(app, pilot)
        hb_list = app.screen.query_one("#hb-list", OptionList)
        assert hb_list.has_focus and hb_list.highlighted == 0
        ids = app.screen.query_one("#hb-ids", Input)
        assert ids.value == "8086:09a2"
        ids.focus()
        ids.value = ""
        await pilot.press(*"8086:29c0", "enter")
        await settle(app, pilot)
        assert list(model.edits) == ["host bridge pci0000:17 IDs -> 8086:29c0"]
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.NOT_SUPPORTED
        assert "8086:29c0 (the first function on the root bus" in text_of(app, "hb-detail")
        # A whitelist row as a preset puts it back on the list.
        preset = app.screen.query_one("#hb-preset", Select)
        preset.value = "8086:2020"
        await settle(app, pilot)
        assert len(model.edits) == 2
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.THRU_HOST_BRIDGE
        # Bad IDs: a notification, no edit.
        ids.value = "zz:[b]"
        await pilot.press("enter")
        await settle(app, pilot)
        assert len(model.edits) == 2
        assert any("expected vendor:device" in line for line in said(app))

    run_whatif(body)


def test_kernel_select() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        kernel = app.screen.query_one("#kernel-select", Select)
        assert kernel.value == "6.12"
        values = [value for _prompt, value in kernel._options]
        for release in ("4.20", "5.1", "5.4", "5.9", "5.15", "5.18", "5.19", "6.10", "6.12"):
            assert release in values
        assert values[-1] == "next"
        kernel.value = "5.15"
        await settle(app, pilot)
        assert str(model.session.target.version) == "5.15"
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.NOT_SUPPORTED
        assert "(v5.15-v5.17)" in text_of(app, "whatif-status")
        # The select follows undo.
        await pilot.press("u")
        await settle(app, pilot)
        assert kernel.value == "6.12"
        assert list(model.edits) == []

    run_whatif(body)


def test_iommu_toggle() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        assert model.topology.platform.iommu is IommuMode.TRANSLATED
        await pilot.press("i")
        await settle(app, pilot)
        assert model.topology.platform.iommu is IommuMode.OFF
        assert list(model.edits) == ["IOMMU off"]
        assert app.screen.query_one("#iommu-select", Select).value == "off"
        await pilot.press("i")
        await settle(app, pilot)
        assert model.topology.platform.iommu is IommuMode.TRANSLATED

    run_whatif(body)


def test_command_line_and_boot_messages() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        await enter_cmdline(app, pilot, "pci=disable_acs_redir=0000:19:00.0;0000:19:01.0")
        assert list(model.edits) == [
            "command line: pci=disable_acs_redir=0000:19:00.0;0000:19:01.0"
        ]
        boot = text_of(app, "boot-messages").splitlines()
        assert "  pci 0000:19:00.0: Configured ACS to 0xffd3" in boot
        assert "  pci 0000:19:01.0: Configured ACS to 0xffd3" in boot
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.BUS_ADDR

    run_whatif(body)


def test_kernel_suggestion_button() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        await pilot.press("k")
        await settle(app, pilot)
        await pilot.click("#suggestion-button")
        await settle(app, pilot)
        assert model.topology.platform.cmdline.endswith(
            " pci=disable_acs_redir=0000:19:00.0;0000:19:01.0"
        )
        assert model.verdict(PROVIDER, CLIENT).map_type is MapType.BUS_ADDR
        assert not app.screen.query_one("#suggestion-button").display

    run_whatif(body)


def test_markup_unsafe_command_line_is_literal() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        await enter_cmdline(app, pilot, "pci=config_acs=1x[0] [b]bold[/b]")
        assert list(model.edits) == ["command line: pci=config_acs=1x[0] [b]bold[/b]"]
        edits = text_of(app, "changes-edits")
        assert "command line: pci=config_acs=1x[0] [b]bold[/b]" in edits
        assert "ACS Flags missing" in text_of(app, "boot-messages")
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "pci=config_acs=1x[0] [b]bold[/b]" in svg

    run_whatif(body)


def test_generated_2000_edits_without_exceptions() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        acs_list = app.screen.query_one("#acs-list", AcsToggleList)
        assert len(acs_list.rows) > 500
        acs_list.focus()
        await pilot.press("down", "space")
        await settle(app, pilot)
        assert len(model.edits) == 1
        await pilot.press("i")
        await settle(app, pilot)
        app.screen.query_one("#kernel-select", Select).value = "5.15"
        await settle(app, pilot)
        app.screen.query_one("#cpu-select", Select).value = "amd:0x17"
        await settle(app, pilot)
        assert len(model.edits) == 4
        assert "pairs changed against the original" in text_of(app, "changes-count")
        await pilot.press("h")
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        await pilot.press("4", "u", "u", "R")
        await settle(app, pilot)
        await pilot.press("R")  # the first R only asks
        await settle(app, pilot)
        assert list(model.edits) == []

    run_whatif(body, source="generated:2000", pair=None)


def test_narrow_layout_at_80x24() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        assert screen.has_class("-narrow")
        acs_list = screen.query_one("#acs-list", AcsToggleList)
        assert acs_list.size.height >= 4
        changes = screen.query_one("#whatif-changes")
        assert changes.region.bottom <= 23
        await clear_redirect(pilot, app, DSP_A)
        await clear_redirect(pilot, app, DSP_B)
        assert screen.query_one("#changes-list", OptionList).size.height >= 1

    run_whatif(body, size=(80, 24))


# -- helpers without the app ---------------------------------------------------------------


def test_relevant_changes_prefers_providers_and_type_changes() -> None:
    model = start("switch-acs-iommu").whatif
    assert relevant_changes(model) == (0, [])
    model = model.apply(toggle_acs_bit(DSP_A, 0x4)).apply(toggle_acs_bit(DSP_A, 0x8))
    total, changes = relevant_changes(model, limit=5)
    changed = model.comparison.changed
    assert changed is not None and total == int(changed.sum()) > 0
    assert 0 < len(changes) <= 5
    scores = [c.score for c in changes]
    assert scores == sorted(scores, reverse=True)
    selves = [c.provider == c.client for c in changes]
    assert selves == sorted(selves)  # a function with itself comes last
    assert all(c.old != c.new for c in changes)
    assert model.topology[changes[0].provider].p2pmem is not None


def test_platform_checks() -> None:
    assert parse_ids("8086:09A2") == (0x8086, 0x09A2)
    for bad in ("8086", "zz:1", "1:", "10000:1"):
        try:
            parse_ids(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert EngineConfig.parse(kernel="6.12", cpu="amd:0x17").kernel is not None
    for bad in ({"kernel": "3.10"}, {"cpu": "amd:zz"}, {"iommu": "maybe"}):
        with pytest.raises(InputError):
            EngineConfig.parse(**bad)


def test_click_on_a_bit_toggles_it() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        acs_list = app.screen.query_one("#acs-list", AcsToggleList)
        row = [r.bdf for r in acs_list.rows].index(DSP_A)
        x = bit_offset(acs_list.name_width, 1) + 1  # inside the CR toggle
        await pilot.click("#acs-list", offset=(x, row))
        await settle(app, pilot)
        assert list(model.edits) == ["ACS Control of 0000:19:00.0 -> 0x0015"]
        assert acs_list.bit_index == 1
        # A click elsewhere in a row only moves the cursor.
        await pilot.click("#acs-list", offset=(0, row + 1))
        await settle(app, pilot)
        assert len(model.edits) == 1
        assert acs_list.highlighted == row + 1

    run_whatif(body)


def test_palette_commands_edit_the_model() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        assert isinstance(screen, WhatIfScreen)
        commands = {c.title: c for c in screen.palette_commands()}
        assert "What-if: undo (u)" in commands
        kernel = next(c for t, c in commands.items() if t.startswith("What-if: kernel 5.15"))
        kernel.callback()
        await settle(app, pilot)
        assert list(model_of(app).edits) == ["kernel: 5.15"]
        assert screen.query_one("#kernel-select", Select).value == "5.15"

    run_whatif(body)


def test_cpu_choice_matches_presets() -> None:
    assert cpu_choice(Platform()) == "intel:6"
    assert cpu_choice(Platform(cpu_vendor="AuthenticAMD", cpu_family=0x17)) == "amd:0x17"
    assert cpu_choice(Platform(arch="aarch64", cpu_vendor="ARM", cpu_family=8)) == "arm64"
    assert cpu_choice(Platform(cpu_vendor="CentaurHauls", cpu_family=7)) is None


def test_edits_queue_in_order_and_errors_leave_no_trace() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        model = model_of(app)
        screen = app.screen
        assert isinstance(screen, WhatIfScreen)
        await select_row(pilot, app, DSP_A)
        # Four keys at once: the edits queue behind the first and run in order.
        await pilot.press("space", "right", "space", "i")
        await settle(app, pilot)
        assert list(model.edits) == [
            "ACS Control of 0000:19:00.0 -> 0x0019",
            "ACS Control of 0000:19:00.0 -> 0x0011",
            "IOMMU off",
        ]
        # An edit the engine refuses: a notification, nothing to undo, no traceback.
        history = len(model.history)
        screen.queue_edit(toggle_acs_bit(PROVIDER, 0x4))  # an endpoint without ACS
        await settle(app, pilot)
        assert len(model.history) == history
        assert len(model.edits) == 3
        assert any("has no ACS capability to edit" in line for line in said(app))

    run_whatif(body)


def test_disable_acs_redir_says_which_iommu_groups_it_joins() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await enter_cmdline(app, pilot, "pci=disable_acs_redir=0000:19:00.0;0000:19:01.0")
        edits = " ".join(text_of(app, "changes-edits").split())
        assert "IOMMU groups: 2 changed, as pci_device_group() forms them:" in edits
        assert "now one group (were 2): 19:00.0 1a:00.0" in edits
        assert "now one group (were 2): 19:01.0 1b:00.0" in edits
        assert "1a:00.0 joins 19:00.0: 19:00.0 has ACS RR|CR off" in edits

    run_whatif(body)


def test_iommu_on_says_which_functions_would_share_a_group() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await settle(app, pilot)
        edits = " ".join(text_of(app, "changes-edits").split())
        assert "IOMMU groups with the IOMMU on, as pci_device_group() forms them:" in edits

    run_whatif(body, source="switch-nvme", pair=None)


def test_undoing_every_edit_gives_back_the_analysis_as_loaded() -> None:
    """Undo keeps the original whole: its verdicts are not computed again."""
    loaded = start("switch-acs-iommu").whatif
    edited = loaded.apply(toggle_acs_bit(DSP_A, 0x4)).apply(toggle_acs_bit(DSP_A, 0x8))
    once = edited.undone()
    assert once is not None and once.edits == ("ACS Control of 0000:19:00.0 -> 0x0019",)
    back = once.undone()
    assert back is not None and back.current is loaded.original
    assert back.verdicts is loaded.verdicts and not back.comparison.marked
