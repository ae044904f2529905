"""Pilot tests of the topology screen (key 1): tree, badges, detail pane, peer, explain, find."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tuikit import edit, said, terminal_text

from p2pview.model import BDF, AcsBits, RootBus
from p2pview.sources import pciids
from p2pview.tui.analysis import toggle_acs_bit
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.screens.topology import TopologyScreen
from p2pview.tui.widgets.pci_tree import PciTree, plan_tree

B = BDF.parse
Body = Callable[[P2PViewApp, TopologyScreen, Pilot[None]], Awaitable[None]]


@pytest.fixture(autouse=True)
def bundled_names(monkeypatch: pytest.MonkeyPatch):
    """Names from the bundled subset: the same text on every host."""
    monkeypatch.setenv(pciids.ENV_VAR, "bundled")
    pciids.clear_cache()
    yield
    pciids.clear_cache()


async def wait_ready(app: P2PViewApp, pilot: Pilot[None]) -> TopologyScreen:
    """Wait for the load worker, the rows worker and the chunked tree."""
    await app.loaded()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, TopologyScreen)
    for _ in range(500):
        if screen.ready:
            break
        await app.loaded()
        await pilot.pause(0.01)
    assert screen.ready
    await pilot.pause()
    return screen


def run_topology(body: Body, source: str = "switch-acs-iommu", size=(120, 40)) -> None:
    async def main() -> None:
        app = make_app(TuiArgs(source))
        async with app.run_test(size=size) as pilot:
            screen = await wait_ready(app, pilot)
            await body(app, screen, pilot)

    asyncio.run(main())


async def move_to(screen: TopologyScreen, pilot: Pilot[None], key: BDF | RootBus) -> None:
    assert screen.pci_tree.reveal(key)
    await pilot.pause()
    assert screen.pci_tree.cursor_key == key


# -- the tree ---------------------------------------------------------------------------


def test_tree_holds_every_function_with_badges_and_names():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        tree = screen.pci_tree
        assert app.whatif is not None
        topo = app.whatif.topology
        for bdf in topo.bdfs:
            node = tree.node_for(bdf)
            assert node is not None and node.data == bdf
            parent = topo[bdf].parent
            assert node.parent is not None
            assert node.parent.data == (parent if parent is not None else bdf.root_bus)
        assert tree.row_text(RootBus(0, 0x17)).startswith(
            "pci0000:17 host bridge whitelist 8086:09a2 ✓ NUMA 0 socket 0, IIO stack 1"
        )
        assert tree.row_text(B("19:00.0")).startswith(
            "19:00.0 switch downstream ACS RR CR grp 23 Gen4 x4 Broadcom / LSI PEX880xx"
        )
        assert tree.row_text(B("1a:00.0")) == (
            "1a:00.0 nvme p2pmem 256M grp 27 Gen3 x4 Eideticom IO Memory Controller"
        )
        assert tree.row_text(B("18:00.0")).startswith("18:00.0 switch upstream grp 22")
        assert "GA100 [A100 PCIe 80GB]" in tree.row_text(B("1c:00.0"))
        # everything is expanded in a small tree, and the cursor is on the first provider
        assert all(
            node.is_expanded for node in map(tree.node_for, topo.bdfs) if node and node.children
        )
        assert tree.cursor_key == B("1a:00.0")
        text = terminal_text(app)
        # the default peer is the other NVMe, not the host bridge's own function
        assert "1b:00.0 nvme  peer  p2pmem 256M" in text
        assert "ACS RR CR" in text

    run_topology(body)


def test_unknown_and_unpublished_badges(tmp_path: Path):
    topo = tmp_path / "badges.toml"
    topo.write_text(
        """format = "p2pview-topology/1"
name = "badges"

[[device]]
bdf = "0000:00:00.0"
id = "8086:09a2"
class = 0x060000

[[device]]
bdf = "0000:00:01.0"
id = "8086:347a"
class = 0x060400
pcie_type = "root_port"
acs = "unknown"
link = { speed = "8.0 GT/s PCIe", width = 4, max_speed = "16.0 GT/s PCIe", max_width = 16 }

[[device]]
bdf = "0000:01:00.0"
id = "1de5:1000"
class = 0x010802
parent = "0000:00:01.0"
acs = { cap = 0x005f, ctrl = 0x0001 }
p2pmem = { size = "2M", available = "1M", published = false }
label = "two\\nlines"
""",
        encoding="utf-8",
    )

    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        tree = screen.pci_tree
        assert "ACS?" in tree.row_text(B("00:01.0"))
        assert "Gen3 x4↓" in tree.row_text(B("00:01.0"))
        row = tree.row_text(B("01:00.0"))
        assert "acs" in row.split() and "p2pmem 2M unpublished" in row
        assert "two lines" in row  # a row is one line, whatever the label holds
        await move_to(screen, pilot, B("00:01.0"))
        detail = screen.detail.text
        assert "ACS unknown" in detail
        assert "8.0 GT/s PCIe x4 (max 16.0 GT/s PCIe x16)" in detail

    run_topology(body, str(topo))


# -- the detail pane --------------------------------------------------------------------


def test_cursor_moves_update_the_detail_pane_and_selection():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        detail = screen.detail
        assert screen.detail.border_title is not None
        assert "1a:00.0  nvme" in detail.text
        assert "Eideticom, Inc IO Memory Controller" in detail.text
        assert "BAR4" in detail.text and "p2pmem" in detail.text
        await pilot.press("up")  # 19:00.0, the downstream port above it
        await pilot.pause()
        assert screen.pci_tree.cursor_key == B("19:00.0")
        assert app.selection.selected == B("19:00.0")
        text = detail.text
        assert text.startswith("19:00.0  switch downstream")
        # ACS decoded bit by bit, with the redirect bits marked and the registers
        assert "RR P2P Request Redirect" in text
        assert "CR P2P Completion Redirect" in text
        assert "EC P2P Egress Control" in text
        assert "registers   cap 0x007f  ctl 0x001d  firmware 0x0000" in text
        assert "effective   0x001d" in text
        assert "redirect RR CR" in text
        assert "Downstream Port of PCI Express Switch" in text
        assert "16.0 GT/s PCIe x4" in text
        assert "IOMMU group 23" in text
        await pilot.press("down", "down")  # 1a:00.0, 19:01.0
        await pilot.pause()
        assert app.selection.selected == B("19:01.0")
        assert detail.text.startswith("19:01.0")

    run_topology(body)


def test_host_bridge_detail():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        selected = app.selection.selected
        await move_to(screen, pilot, RootBus(0, 0x30))
        text = screen.detail.text
        assert text.startswith("pci0000:30  host bridge  socket 0, IIO stack 2")
        assert "30:00.0 8086:09a2" in text
        assert "same bridge pass" in text
        assert "cpu_supports_p2pdma() false" in text
        # a host bridge is not a function: the selection stays; p and e say why
        assert app.selection.selected == selected
        peer = app.selection.peer
        for key in "pe":
            await pilot.press(key)
            await pilot.pause()
        assert app.selection.peer == peer and app.current_mode == "topology"
        told = said(app)
        assert any("host bridge, not a PCI function" in m and "peer" in m for m in told)
        assert any("host bridge, not a PCI function" in m and "explain" in m for m in told)
        # enter on a host bridge folds it
        node = screen.pci_tree.node_for(RootBus(0, 0x30))
        assert node is not None and node.is_expanded
        await pilot.press("enter")
        await pilot.pause()
        assert not node.is_expanded
        assert app.current_mode == "topology"

    run_topology(body)


def test_verdict_against_the_peer_and_the_peer_key():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        app.select(peer=B("1d:00.0"))  # start from a peer other than the default
        await move_to(screen, pilot, B("1b:00.0"))
        assert screen.check_action("set_peer", ()) is True
        await pilot.press("p")
        await pilot.pause()
        assert app.selection.peer == B("1b:00.0")
        assert " peer " in screen.pci_tree.row_text(B("1b:00.0"))
        before = app.selection
        await pilot.press("p")  # already the peer: says so, changes nothing
        await pilot.pause()
        assert app.selection is before
        assert any("already the peer" in line for line in said(app))
        await move_to(screen, pilot, B("1a:00.0"))
        text = screen.detail.text
        assert "Peer 1b:00.0 nvme" in text
        assert "provider 1a:00.0 → client 1b:00.0" in text
        assert "THRU_HOST_BRIDGE, distance 4" in text
        assert "ACS redirect on 19:00.0 (RR CR), 19:01.0 (RR CR)" in text
        assert "below common upstream 18:00.0: via the host bridge" in text
        assert "whitelist pci0000:17 pass" in text
        # a GPU without p2pmem against the NVMe peer: the NVMe is the provider
        await move_to(screen, pilot, B("1c:00.0"))
        assert "provider 1b:00.0 → client 1c:00.0" in screen.detail.text
        # the old peer loses its badge when another function becomes the peer
        await pilot.press("p")
        await pilot.pause()
        assert " peer " not in screen.pci_tree.row_text(B("1b:00.0"))
        assert " peer " in screen.pci_tree.row_text(B("1c:00.0"))

    run_topology(body)


def test_enter_and_e_explain_the_pair():
    for key in ("enter", "e"):

        async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None], key=key):
            app.select(peer=B("1b:00.0"))
            await move_to(screen, pilot, B("1c:00.0"))
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == "explain"
            assert app.selection.pair == (B("1b:00.0"), B("1c:00.0"))
            assert app.selection.selected == B("1c:00.0")
            # back on the tree, the cursor is where it was
            await pilot.press("1")
            await pilot.pause()
            assert isinstance(app.screen, TopologyScreen)
            assert app.screen.pci_tree.cursor_key == B("1c:00.0")

        run_topology(body)


def test_selection_made_elsewhere_is_followed_on_return():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        await pilot.press("2")
        await pilot.pause()
        app.select(selected=B("31:00.0"))
        await pilot.press("1")
        await pilot.pause()
        await pilot.pause()
        assert screen.pci_tree.cursor_key == B("31:00.0")
        assert screen.detail.text.startswith("31:00.0")

    run_topology(body)


def test_what_if_edit_relabels_without_rebuilding():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        await move_to(screen, pilot, B("19:00.0"))
        node = screen.pci_tree.node_for(B("19:00.0"))
        edit(app, toggle_acs_bit(B("19:00.0"), AcsBits.RR))
        edit(app, toggle_acs_bit(B("19:00.0"), AcsBits.CR))
        await pilot.pause()
        assert screen.pci_tree.node_for(B("19:00.0")) is node  # same tree
        assert screen.pci_tree.cursor_key == B("19:00.0")
        row = screen.pci_tree.row_text(B("19:00.0"))
        assert "ACS RR CR" not in row and " acs " in row
        assert "redirect none" in screen.detail.text
        assert "effective   0x0011" in screen.detail.text

    run_topology(body)


def test_rows_named_for_an_older_state_are_relabelled():
    """A what-if edit that lands while a worker names a big tree's rows is not lost."""
    from p2pview.sources.pciids import PciNames
    from p2pview.tui.screens.topology import _build

    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        old_state = app.whatif.session.state
        edit(app, toggle_acs_bit(B("19:00.0"), AcsBits.RR))
        screen._show_built(_build(old_state, PciNames.load(), app.selection.selected))
        for _ in range(50):
            if screen.ready:
                break
            await pilot.pause(0.01)
        row = screen.pci_tree.row_text(B("19:00.0"))
        assert "ACS CR " in row and "RR" not in row

    run_topology(body)


def test_palette_commands_and_folding():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        titles = [command.title for command in screen.palette_commands()]
        assert titles[:3] == [
            "Make the highlighted function the peer (p)",
            "Explain the pair (e, enter)",
            "Find a function (f, /)",
        ]
        tree = screen.pci_tree
        screen.action_collapse_all()
        await pilot.pause()
        folded = tree.node_for(B("19:01.0"))
        assert folded is not None and not folded.is_expanded
        # the highlighted function stays in view
        assert tree.cursor_key == B("1a:00.0")
        assert all(tree.node_for(b).is_expanded for b in (B("17:02.0"), B("18:00.0")))
        screen.action_expand_all()
        await pilot.pause()
        assert folded.is_expanded

    run_topology(body)


# -- finding ----------------------------------------------------------------------------


def test_find_by_address_id_label_and_name():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        await pilot.press("f")
        await pilot.pause()
        find = screen.query_one("#find", Input)
        assert find.has_focus and find.display
        for query, expected in (
            ("1c:00.0", B("1c:00.0")),
            ("0000:31:00.0", B("31:00.0")),
            ("15b3:101d", B("1d:00.0")),
            ("A100", B("1c:00.0")),
            ("mlx5", B("1d:00.0")),
            ("iiO stack 2", RootBus(0, 0x30)),
        ):
            find.value = query
            await pilot.pause()
            assert screen.pci_tree.cursor_key == expected, query
        assert app.selection.selected == B("1d:00.0")
        # several matches: enter steps through them in tree order, wrapping
        find.value = "nvme"
        await pilot.pause()
        seen = [screen.pci_tree.cursor_key]
        for _ in range(3):
            await pilot.press("enter")
            await pilot.pause()
            seen.append(screen.pci_tree.cursor_key)
        assert seen == [B("1a:00.0"), B("1b:00.0"), B("31:00.0"), B("1a:00.0")]
        assert "1 of 3" in terminal_text(app)
        find.value = "no such thing"
        await pilot.pause()
        assert "no match" in terminal_text(app)
        # escape closes the bar and gives the keys back to the tree; n repeats
        find.value = "nvme"
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.query_one("#find-bar").display
        assert screen.pci_tree.has_focus
        await pilot.press("n")
        await pilot.pause()
        assert screen.pci_tree.cursor_key == B("1b:00.0")
        # / opens it too
        await pilot.press("slash")
        await pilot.pause()
        assert find.has_focus

    run_topology(body)


def test_find_reveals_folded_functions():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        tree = screen.pci_tree
        await move_to(screen, pilot, B("18:00.0"))
        await pilot.press("space")
        await pilot.pause()
        node = tree.node_for(B("18:00.0"))
        assert node is not None and not node.is_expanded
        await pilot.press("f")
        for key in "1c:00.0":
            await pilot.press(key)
        await pilot.pause()
        assert node.is_expanded
        assert tree.cursor_key == B("1c:00.0")

    run_topology(body)


# -- text is never markup ---------------------------------------------------------------


def test_device_names_and_labels_render_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ids = tmp_path / "pci.ids"
    ids.write_text(
        "8086  Intel Corporation\n\t1234  Widget [bold]Pro[/bold] [8086:1234]\n"
        "abcd  [red]Evil[/red] Vendor\n\t0001  Thing [link=x]y[/link]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(pciids.ENV_VAR, str(ids))
    pciids.clear_cache()
    topo = tmp_path / "markup.toml"
    topo.write_text(
        """format = "p2pview-topology/1"
name = "markup [b]test[/b]"

[[host_bridge]]
root = "0000:00"
label = "socket [0]"

[[device]]
bdf = "0000:00:00.0"
id = "8086:1234"
class = 0x060000
label = "Intel Corporation [8086:1234]"

[[device]]
bdf = "0000:00:01.0"
id = "abcd:0001"
class = 0x020000
label = "[bold red]NIC[/]"
p2pmem = { size = "2M", available = "2M", published = true }
""",
        encoding="utf-8",
    )

    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        tree = screen.pci_tree
        assert "Intel Corporation [8086:1234]" in tree.row_text(B("00:00.0"))
        assert "Intel Widget [bold]Pro[/bold] [8086:1234]" in tree.row_text(B("00:00.0"))
        assert "[bold red]NIC[/]" in tree.row_text(B("00:01.0"))
        text = terminal_text(app)
        assert "Intel Corporation [8086:1234]" in text
        assert "[bold red]NIC[/]" in text
        assert "socket [0]" in text
        assert "[red]Evil[/red]" in text
        await move_to(screen, pilot, B("00:00.0"))
        detail = screen.detail.text
        assert "Intel Corporation [8086:1234]" in detail
        assert "Widget [bold]Pro[/bold] [8086:1234]" in detail
        await move_to(screen, pilot, B("00:01.0"))
        assert "[red]Evil[/red] Vendor Thing [link=x]y[/link]" in screen.detail.text
        assert "[red]Evil[/red] Vendor Thing [link=x]y[/link]" in terminal_text(app)
        await pilot.press("f")
        for key in "[8086":
            await pilot.press(key)
        await pilot.pause()
        assert tree.cursor_key == B("00:00.0")

    run_topology(body, str(topo), size=(180, 40))  # wide enough for whole rows


# -- sizes, themes, scale ---------------------------------------------------------------


def test_80x24_stacks_the_panes_and_v_shows_the_details_full_size():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert screen.has_class("-narrow")
        tree, detail = screen.pci_tree, screen.detail
        assert tree.region.height >= 9 and detail.region.height >= 8
        assert detail.region.y > tree.region.y  # below the tree
        text = terminal_text(app)
        assert "1a:00.0 nvme p2pmem 256M" in text  # the cursor row is on screen
        assert "Peer " in text  # the verdict is the first thing in the detail pane
        assert screen.check_action("toggle_details", ()) is True
        await pilot.press("v")
        await pilot.pause()
        assert not tree.display or tree.region.height == 0
        assert detail.region.height >= 18 and detail.has_focus
        await pilot.press("pagedown")
        await pilot.pause()
        assert detail.scroll_offset.y > 0
        await pilot.press("v")
        await pilot.pause()
        assert tree.has_focus and tree.region.height > 0
        await pilot.press("v", "escape")  # escape goes back too
        await pilot.pause()
        assert not screen.has_class("-details") and tree.has_focus

    run_topology(body, size=(80, 24))


def test_wide_terminals_put_the_panes_side_by_side():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert screen.has_class("-wide")
        tree, detail = screen.pci_tree, screen.detail
        assert detail.region.x > tree.region.x and detail.region.y == tree.region.y
        assert screen.check_action("toggle_details", ()) is False  # hidden from the footer

    run_topology(body, size=(200, 60))


def test_theme_toggle_keeps_everything():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        before = screen.detail.text
        await pilot.press("d")
        await pilot.pause()
        assert app.theme == "textual-light"
        assert screen.detail.text == before
        assert "1a:00.0 nvme p2pmem 256M" in terminal_text(app)

    run_topology(body)


def test_help_lists_the_keys():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        text = terminal_text(app)
        assert "Topology" in text and "Peer" in text and "Find" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen

    run_topology(body)


@pytest.mark.parametrize("source", ["hgx-8gpu", "multifunction-acs", "sriov-nic", "epyc-2s"])
def test_bundled_topologies_show_without_errors(source: str):
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        for bdf in app.whatif.topology.bdfs:
            assert screen.pci_tree.node_for(bdf) is not None
        await pilot.press("home", "down", "down", "p", "end", "up", "space", "space")
        await pilot.pause()
        assert screen.detail.text

    run_topology(body, source)


def test_generated_2000_loads_in_chunks_and_navigates():
    async def body(app: P2PViewApp, screen: TopologyScreen, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        tree = screen.pci_tree
        topo = app.whatif.topology
        assert len(topo) == 2000
        assert all(tree.node_for(b) is not None for b in topo.bdfs)
        # a big tree is not all unfolded: a few hundred rows, the selection in view
        assert 50 < tree.last_line + 1 <= 420
        assert tree.cursor_key == app.selection.selected
        await pilot.press("end", "home", "pagedown", "down", "space", "up", "p")
        await pilot.pause()
        last = topo.bdfs[-1]
        await pilot.press("f", *str(last))
        await pilot.pause()
        assert tree.cursor_key == last
        await pilot.press("escape", "e")
        await pilot.pause()
        assert app.current_mode == "explain"

    run_topology(body, "generated:2000")


def test_plan_expands_to_a_depth_that_fits():
    from p2pview.sources import load_source

    topo = load_source("hgx-8gpu").topology
    rows = {b: (("x", "bdf"),) for b in topo.bdfs}
    everything = plan_tree(topo, rows)
    assert everything.expanded == everything.expandable
    assert [key for key, _ in everything.order][:2] == [RootBus(0, 0x15), B("15:00.0")]
    shallow = plan_tree(topo, rows, visible_rows=10)
    assert all(isinstance(k, RootBus) for k in shallow.expanded)
    revealed = plan_tree(topo, rows, visible_rows=10, reveal=[B("1a:00.0")])
    assert set(topo.upstream_chain(B("1a:00.0"))[1:]) <= revealed.expanded
    assert isinstance(PciTree, type)
