"""TUI rough edges: the footer at 80 columns, the header's lasting notes, keys that say why."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_app_shell import run
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import OptionList
from tuikit import edit, said, start, terminal_text, text_of

from p2pview.model import BDF
from p2pview.session import session_for
from p2pview.sources import Loaded, load_source
from p2pview.sources.pciids import PciNames
from p2pview.tui import model as tui_model
from p2pview.tui.analysis import set_cmdline, set_iommu, toggle_acs_bit
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.pci_labels import RowContext
from p2pview.tui.screens.stepper import StepperScreen
from p2pview.tui.screens.topology import TopologyScreen
from p2pview.tui.screens.whatif import WhatIfScreen
from p2pview.tui.widgets.hanging import hang
from p2pview.tui.widgets.pci_detail import device_detail
from p2pview.tui.widgets.whatif_acs import acs_rows, header_line, row_prompt

#: This host's /sys as a small VM shows it: one flat bus, no bridge, no p2pmem.
FLAT = """\
format = "p2pview-topology/1"
name = "flat-vm"

[platform]
arch = "x86_64"

[[host_bridge]]
root = "0000:00"

[[device]]
bdf = "0000:00:00.0"
id = "8086:1237"
class = 0x060000

[[device]]
bdf = "0000:00:04.0"
id = "1af4:1041"
class = 0x020000
"""


def footer_line(app: P2PViewApp) -> str:
    return terminal_text(app).rstrip("\n").splitlines()[-1]


def test_every_footer_shows_help_quit_and_all_five_screen_keys_at_80_columns() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        for key in "12345":
            await pilot.press(key)
            await app.loaded()
            await pilot.pause()
            line = footer_line(app)
            for wanted in ("? Help", "q Quit", "1 Tree", "2 Matrix", "3 Explain", "4 What-if"):
                assert wanted in line, (key, line)
            assert "5 I/O" in line, (key, line)

    run(body, size=(80, 24))


def test_the_palette_key_shows_where_there_is_room() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert "palette" in footer_line(app)

    run(body, size=(160, 40))


def test_the_header_says_edited_for_as_long_as_edits_are_in_place() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert "EDITED" not in app.sub_title
        edit(app, toggle_acs_bit(BDF.parse("0000:19:00.0"), 0x4))
        await pilot.pause()
        assert "EDITED (1 edit)" in app.sub_title
        for key in "12345":
            await pilot.press(key)
            await app.loaded()
            await pilot.pause()
            assert "EDITED (1 edit)" in terminal_text(app).splitlines()[0], key
        assert app.whatif is not None
        app.whatif = app.whatif.reset()
        await pilot.pause()
        assert "EDITED" not in app.sub_title

    run(body, size=(80, 24))


def test_a_bundled_topology_shown_for_this_host_says_so_in_the_header(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "flat.toml").write_text(FLAT)
    flat = load_source(str(tmp_path / "flat.toml"))
    assert not tui_model.worth_showing(flat.topology)

    def fake_load(spec: str, fmt: str | None = None) -> Loaded:
        return flat if spec == "/" else load_source(spec, fmt)

    monkeypatch.setattr(tui_model, "load_source", fake_load)

    async def main() -> None:
        app = make_app(TuiArgs(None))
        app.animation_level = "none"
        async with app.run_test(size=(80, 24)) as pilot:
            await app.loaded()
            await pilot.pause()
            assert app.whatif is not None and app.whatif.topology.name == tui_model.DEMO_TOPOLOGY
            for key in "125":
                await pilot.press(key)
                await app.loaded()
                await pilot.pause(0.3)  # longer than nothing, shorter than a toast
                header = terminal_text(app).splitlines()[0]
                assert "BUNDLED, not this host" in header, (key, header)

    asyncio.run(main())


def test_o_on_explain_without_edits_and_y_without_redirect_say_why() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert any("No what-if edits" in m for m in said(app))

    run(body)


def test_y_copies_the_disable_acs_redir_line_and_says_so() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        app.select(pair=(BDF.parse("0000:1a:00.0"), BDF.parse("0000:1b:00.0")))
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == "pci=disable_acs_redir=0000:19:00.0;0000:19:01.0"
        assert any(m.startswith("Copied pci=disable_acs_redir=0000:19:00.0") for m in said(app))
        # a pair with no redirect on its path: nothing is copied, and it says why
        app.select(pair=(BDF.parse("0000:1a:00.0"), BDF.parse("0000:1a:00.0")))
        await pilot.press("y")
        await pilot.pause()
        assert any(m.startswith("Nothing to copy") for m in said(app))

    run(body)


def test_e_in_the_stepper_when_nothing_failed_says_so() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await pilot.press("5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StepperScreen)
        assert screen.run_bundled("cmb-read-bus-addr")
        await app.loaded()
        await pilot.pause()
        assert screen.trace is not None and screen.trace.result.stage is None
        index = screen.step_index
        await pilot.press("e")
        await pilot.pause()
        assert screen.step_index == index
        assert any("Nothing failed" in m for m in said(app))

    run(body, source="switch-nvme")


def test_two_whitelist_checks_are_5a_and_5b_and_wrapped_lines_keep_their_indent() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        # across two host bridges: one host_bridge_whitelist() call, two checks
        app.select(pair=(BDF.parse("0000:1a:00.0"), BDF.parse("0000:01:00.0")))
        await pilot.press("3")
        await pilot.pause()
        steps = text_of(app, "explain-steps").splitlines()
        numbers = [line.split(" ", 1)[0] for line in steps if line[:1].isdigit()]
        assert numbers == ["1.", "2.", "3.", "4.", "5a.", "5b."]
        screen_lines = terminal_text(app).splitlines()
        at = next(i for i, line in enumerate(screen_lines) if "2. No common upstream" in line)
        # the step goes on under its text, not at the left edge
        assert screen_lines[at + 1].startswith("    ") and screen_lines[at + 1].strip()
        assert "5a. host_bridge_whitelist" in terminal_text(app)

    run(body, source="switch-nvme", size=(80, 40))


def test_a_function_with_a_pcie_link_but_no_port_type_is_not_called_not_pcie(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.toml").write_text(
        FLAT.replace(
            "class = 0x020000\n",
            'class = 0x020000\nlink = { speed = "8.0 GT/s PCIe", width = 4 }\n',
        )
    )
    session = session_for(load_source(str(tmp_path / "t.toml")))
    ctx = RowContext.of(session.state, PciNames.load())
    nic = device_detail(ctx, BDF.parse("0000:00:04.0"), None).plain
    assert "not PCI Express" not in nic
    assert "PCIe (it has a link), type not given" in nic
    host = device_detail(ctx, BDF.parse("0000:00:00.0"), None).plain
    assert "not in the source (conventional PCI, or not read)" in host


def test_hang_keeps_the_indent_of_numbered_and_indented_lines() -> None:
    line = Content("5a. " + "word " * 30)
    wrapped = hang(line, 40)
    assert len(wrapped) > 1
    assert all(len(w.plain) <= 40 for w in wrapped)
    assert all(w.plain.startswith("    word") for w in wrapped[1:])
    sub = hang(Content("   provider: " + "x " * 40), 30)
    assert all(w.plain.startswith("     x") for w in sub[1:])
    message = hang(Content("nvme 0000:1a:00.0: " + "long message " * 10), 40)
    assert all(w.plain.startswith("  ") for w in message[1:])
    assert (
        "".join(w.plain.strip() + " " for w in message).split()
        == ("nvme 0000:1a:00.0: " + "long message " * 10).split()
    )


def test_keys_typed_during_a_screen_switch_never_reach_the_screen_not_drawn_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    painted: list[str] = []
    seen_when_pressed: list[bool] = []
    toggle = WhatIfScreen.action_toggle_iommu

    def toggle_iommu(screen: WhatIfScreen) -> None:
        seen_when_pressed.append("WhatIfScreen" in painted)
        toggle(screen)

    monkeypatch.setattr(WhatIfScreen, "action_toggle_iommu", toggle_iommu)
    compose = WhatIfScreen.compose

    def slow_compose(screen: WhatIfScreen) -> ComposeResult:
        time.sleep(0.3)  # a first visit on a big topology under load
        return compose(screen)

    monkeypatch.setattr(WhatIfScreen, "compose", slow_compose)

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        display = app._display

        def record(screen: Screen[object], update: object) -> None:
            display(screen, update)  # type: ignore[arg-type]
            painted.append(type(screen).__name__)

        app._display = record  # type: ignore[method-assign,assignment]  # a recording hook
        driver = app._driver
        assert driver is not None

        def type_key(key: str) -> None:
            event = events.Key(key, key)
            event.set_sender(app)
            driver.send_message(event)

        # 4, then i (IOMMU) typed while the what-if screen is being built
        type_key("4")
        await asyncio.sleep(0)
        type_key("i")
        for _ in range(100):
            await pilot.pause(0.02)
            if seen_when_pressed:
                break
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.current_mode == "whatif"
        # the i was meant for the tree the user saw, not for a screen not drawn yet
        assert seen_when_pressed == []
        assert app.whatif is not None and not app.whatif.edits
        assert any("Ignored 1 key(s) typed before this screen was drawn: i" in m for m in said(app))
        # screen keys typed meanwhile still switch, once the screen before is drawn
        painted.clear()
        type_key("5")
        await asyncio.sleep(0)
        type_key("2")
        for _ in range(100):
            await pilot.pause(0.02)
            if app.current_mode == "matrix" and painted[-1:] == ["MatrixScreen"]:
                break
        assert app.current_mode == "matrix"
        assert painted.index("StepperScreen") < painted.index("MatrixScreen")

    run(body, source="generated:300")


def test_a_smaller_terminal_keeps_the_selection_in_view() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        assert isinstance(screen, TopologyScreen)
        tree = screen.pci_tree
        for _ in range(30):
            await pilot.press("down")
        await pilot.pause()
        line = tree.cursor_line
        assert line >= 30
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        top = tree.scroll_offset.y
        assert top <= line < top + tree.scrollable_content_region.height, (top, line)
        # the what-if screen's ACS list too
        await pilot.resize_terminal(120, 40)
        await pilot.press("4")
        await app.loaded()
        await pilot.pause()
        acs = app.screen.query_one("#acs-list", OptionList)
        acs.focus()
        acs.highlighted = 25
        await pilot.pause()
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        top = acs.scroll_offset.y
        assert top <= 25 < top + acs.scrollable_content_region.height, (top, 25)

    run(body, source="generated:300")


def test_the_first_selection_is_in_view_when_the_tree_is_laid_out() -> None:
    # The tree scrolled to the first selection while it still had the whole screen; the
    # detail panel then took the lower half, and the selected GPU (37:00.0 of the RCCL
    # dump, under the last host bridge) sat just below the tree's last line.
    hygon = str(
        Path(__file__).parent.parent / "data" / "rccl" / "hygon-dcu-8x-pex88096.rccl-topo.xml"
    )

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        assert isinstance(screen, TopologyScreen)
        tree = screen.pci_tree
        await pilot.pause()
        await pilot.pause()
        line, top = tree.cursor_line, tree.scroll_offset.y
        assert tree.cursor_key == BDF.parse("0000:37:00.0")
        assert top <= line < top + tree.scrollable_content_region.height, (top, line)

    run(body, source=hygon, size=(80, 24))


def test_the_acs_list_says_what_config_acs_did_beyond_its_mask() -> None:
    model = start("switch-acs-iommu", kernel="6.12.117").whatif
    model = model.apply(set_iommu(True))  # pci_std_enable_acs(): 0x001d on the downstream ports
    model = model.apply(set_cmdline("pci=config_acs=0x@0000:19:00.0"))  # one bit, left 0
    rows = {row.bdf: row_prompt(row, 12, None).plain for row in acs_rows(model)}
    dsp = rows[BDF.parse("0000:19:00.0")]
    assert "0x001d  0x0000" in dsp  # the register before and after the command line
    assert "config_acs: bits outside its mask back to firmware's 0x0000" in dsp
    assert "undoing what the IOMMU driver" in dsp
    assert "same" in rows[BDF.parse("0000:19:01.0")]  # untouched by the command line
    assert "cmdline" in header_line(12).plain and "at boot" not in header_line(12).plain
