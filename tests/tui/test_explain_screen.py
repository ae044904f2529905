"""Pilot tests of the explain screen (key 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static
from tuikit import edit, kernel, loaded, said, text_of

from p2pview.kernel import Verdict
from p2pview.model import BDF
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.explain_content import themed
from p2pview.tui.screens.explain import ExplainScreen
from p2pview.tui.widgets.explain_picker import FunctionPicker
from p2pview.views.explain import messages_block, result_text

PROVIDER = BDF.parse("0000:1a:00.0")
CLIENT = BDF.parse("0000:1b:00.0")
ACS_LINES = (
    "nvme 0000:1b:00.0: ACS redirect is set between the client and provider (0000:1a:00.0)",
    "nvme 0000:1b:00.0: to disable ACS redirect for this path, add the kernel parameter:"
    " pci=disable_acs_redir=0000:19:00.0;0000:19:01.0",
)

Body = Callable[[P2PViewApp, Pilot[None]], Awaitable[None]]


def run_explain(
    body: Body,
    source: str = "switch-acs-iommu",
    pair: tuple[BDF, BDF] | None = (PROVIDER, CLIENT),
    size: tuple[int, int] = (120, 40),
    **args: str,
) -> None:
    """Load ``source``, choose ``pair``, open the explain screen and run ``body``."""

    async def main() -> None:
        app = make_app(TuiArgs(source, **args))
        async with app.run_test(size=size) as pilot:
            await loaded(app, pilot)
            assert app.whatif is not None
            if pair is not None:
                app.select(pair=pair)
            await pilot.press("3")
            await pilot.pause()
            assert isinstance(app.screen, ExplainScreen)
            await body(app, pilot)

    asyncio.run(main())


def screen_text(app: P2PViewApp) -> str:
    """Every section of the explanation, as plain text."""
    names = ("header", "change", "tree", "steps", "messages", "notes")
    return "\n".join(text_of(app, f"explain-{name}") for name in names)


def test_acs_lines_verbatim_on_6_12() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        assert str(app.whatif.session.target.version) == "6.12"
        messages = text_of(app, "explain-messages").splitlines()
        for line in ACS_LINES:
            assert f"  {line}" in messages
        # Exactly what the CLI prints, line for line.
        session = app.whatif.session
        verdict = app.whatif.verdict(PROVIDER, CLIENT)
        assert messages == [t.plain for t in messages_block(session, verdict)]
        header = text_of(app, "explain-header")
        assert "THRU_HOST_BRIDGE, distance 4" in header
        assert "kernel 6.12" in header
        tree = text_of(app, "explain-tree")
        assert "18:00.0 <- common upstream device" in tree
        assert "1a:00.0 <- provider" in tree
        assert "1b:00.0 <- client" in tree
        assert "19:00.0 [ACS RR CR, ctrl 0x001d]" in tree
        assert "17:02.0 [ACS RR CR, ctrl 0x001d, not counted]" in tree
        steps = text_of(app, "explain-steps")
        assert "so dist = 2 + 2 = 4" in steps
        assert "cpu_supports_p2pdma(): false" in steps
        assert "looked at 0000:17:00.0" in steps
        assert "8086:09a2 matches the whitelist row 8086:09a2" in steps
        # No what-if edits: no comparison line.
        assert not app.screen.query_one("#explain-change", Static).display

    run_explain(body)


def test_tree_draws_the_path_from_the_host_bridge() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        lines = text_of(app, "explain-tree").splitlines()
        assert lines[0] == "pci0000:17 (host bridge)"
        assert lines[1].startswith("└── 17:02.0")
        assert lines[2].startswith("    └── 18:00.0")
        assert lines[3].startswith("        ├── 19:00.0")
        assert lines[4].startswith("        │   └── 1a:00.0")
        assert lines[5].startswith("        └── 19:01.0")
        assert lines[6].startswith("            └── 1b:00.0")

    run_explain(body)


def test_swap_provider_and_client() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        await pilot.press("s")
        await pilot.pause()
        assert app.selection.pair == (CLIENT, PROVIDER)
        messages = text_of(app, "explain-messages")
        assert (
            "nvme 0000:1a:00.0: ACS redirect is set between the client and provider (0000:1b:00.0)"
            in messages
        )
        assert text_of(app, "explain-header").startswith("provider 0000:1b:00.0")
        await pilot.press("s")
        await pilot.pause()
        assert app.selection.pair == (PROVIDER, CLIENT)

    run_explain(body)


def test_pick_provider_and_client_from_the_list() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, FunctionPicker)
        await pilot.press(*"30:")
        await pilot.pause()
        shown = [e.bdf for e in app.screen.shown]
        assert shown and all(str(b).startswith("0000:30:") for b in shown)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExplainScreen)
        assert app.selection.pair == (PROVIDER, shown[0])
        # Escape leaves the pair alone.
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.selection.pair == (PROVIDER, shown[0])
        # Down then enter picks the next function after the current one.
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, FunctionPicker)
        picker_input = app.screen.query_one(Input)
        assert picker_input.has_focus
        await pilot.press("down", "enter")
        await pilot.pause()
        bdfs = app.whatif.topology.bdfs
        assert app.selection.pair == (bdfs[bdfs.index(PROVIDER) + 1], shown[0])
        # The result shown follows the pair.
        verdict = app.whatif.verdict(*app.selection.pair)
        assert themed_result(verdict) in text_of(app, "explain-header")

    run_explain(body)


def themed_result(verdict: Verdict) -> str:
    """The result text as the header shows it."""
    return themed(result_text(verdict)).plain


def test_kernel_5_17_and_the_what_if_line() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        edit(app, kernel("5.17"))
        await pilot.pause()
        header = text_of(app, "explain-header")
        assert "NOT_SUPPORTED, distance 4" in header
        assert "kernel 5.17" in header
        messages = text_of(app, "explain-messages")
        assert "pci 0000:17:00.0: Host bridge not in P2PDMA whitelist: 8086:09a2" in messages
        assert (
            "nvme 0000:1b:00.0: cannot be used for peer-to-peer DMA as the client and provider"
            " (0000:1a:00.0) do not share an upstream bridge or whitelisted host bridge"
        ) in messages
        assert "(warned in dmesg)" in text_of(app, "explain-steps")
        change = text_of(app, "explain-change")
        assert "What-if: changed by the 1 edit: was THRU_HOST_BRIDGE 4, now NOT_SUPPORTED 4" in (
            change
        )
        # o shows the original, o again the edited.
        await pilot.press("o")
        await pilot.pause()
        assert "THRU_HOST_BRIDGE, distance 4" in text_of(app, "explain-header")
        assert text_of(app, "explain-change").startswith("Original")
        await pilot.press("o")
        await pilot.pause()
        assert "NOT_SUPPORTED, distance 4" in text_of(app, "explain-header")

    run_explain(body)


def test_original_key_without_edits_says_there_are_none() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        screen = app.screen
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(screen, ExplainScreen)
        assert not screen.showing_original
        assert any("No what-if edits" in line for line in said(app))

    run_explain(body)


def test_command_line_boot_lines_touching_the_path() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert "BUS_ADDR, distance 4" in text_of(app, "explain-header")
        messages = text_of(app, "explain-messages")
        assert "Kernel messages: none" in messages
        assert "  pci 0000:19:00.0: Configured ACS to 0xffd3" in messages.splitlines()
        assert "  pci 0000:19:01.0: Configured ACS to 0xffd3" in messages.splitlines()
        tree = text_of(app, "explain-tree")
        assert "19:00.0 [ACS no redirect, ctrl 0x001d -> 0x0053, set by disable_acs_redir]" in tree

    run_explain(body, cmdline="pci=disable_acs_redir=0000:19:00.0;0000:19:01.0")


def test_tree_pair_key_takes_the_topology_selection() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        app.select(selected=CLIENT, peer=PROVIDER)
        await pilot.press("t")
        await pilot.pause()
        assert app.selection.pair == (CLIENT, PROVIDER)
        assert app.screen.check_action("tree_pair", ()) is None

    run_explain(body)


def test_pair_chosen_elsewhere_shows_on_return() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        await pilot.press("1")
        await pilot.pause()
        app.select(pair=(CLIENT, PROVIDER))  # while the explain screen is hidden
        await pilot.press("3")
        await pilot.pause()
        assert text_of(app, "explain-header").startswith("provider 0000:1b:00.0")

    run_explain(body)


def test_int_era_and_self_pair() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        header = text_of(app, "explain-header")
        assert "upstream_bridge_distance() = -2" in header
        app.select(pair=(PROVIDER, PROVIDER))
        await pilot.pause()
        assert "1a:00.0 <- provider = client" in text_of(app, "explain-tree")
        assert app.screen.check_action("swap", ()) is None

    run_explain(body, kernel="5.3")


def test_no_common_upstream_two_host_bridges() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        tree = text_of(app, "explain-tree").splitlines()
        assert "pci0000:00 (host bridge)" in tree
        assert "pci0000:80 (host bridge)" in tree
        steps = text_of(app, "explain-steps")
        assert "No common upstream device" in steps
        assert "cpu_supports_p2pdma(): true" in steps

    run_explain(body, source="epyc-2s", pair=(BDF.parse("01:00.0"), BDF.parse("81:00.0")))


def test_markup_in_labels_renders_literally(tmp_path: Path) -> None:
    topo = tmp_path / "markup.toml"
    topo.write_text(
        """format = "p2pview-topology/1"
name = "markup [b]name[/b]"

[[host_bridge]]
root = "0000:00"

[[device]]
bdf = "0000:00:00.0"
id = "8086:2020"
class = 0x060000

[[device]]
bdf = "0000:00:01.0"
id = "8086:1234"
class = 0x010802
label = "ACME [8086:1234] [b]x[/]"
driver = "nvme"

[[device]]
bdf = "0000:00:02.0"
id = "8086:1235"
class = 0x010802
label = "pci=config_acs=1x[0]"
driver = "nvme"
""",
        encoding="utf-8",
    )

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        text = screen_text(app)
        assert "ACME [8086:1234] [b]x[/]" in text
        assert "pci=config_acs=1x[0]" in text
        # The rendered screen shows the brackets too.
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "[8086:1234]" in svg

    run_explain(
        body,
        source=str(topo),
        pair=(BDF.parse("0000:00:01.0"), BDF.parse("0000:00:02.0")),
    )


def test_generated_2000_explain_and_pick() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is not None
        assert text_of(app, "explain-tree")
        await pilot.press("s", "p")
        await pilot.pause()
        assert isinstance(app.screen, FunctionPicker)
        assert len(app.screen.shown) == 2000
        await pilot.press(*"p2pmem")
        await pilot.pause()
        assert 0 < len(app.screen.shown) < 2000
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExplainScreen)
        for key in ("pagedown", "pagedown", "end", "home"):
            await pilot.press(key)
        await pilot.pause()

    run_explain(body, source="generated:2000", pair=None)


def test_readable_at_80x24() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        body_widget = app.screen.query_one("#explain-body")
        assert body_widget.has_focus
        assert body_widget.size.height >= 12
        await pilot.press("end")
        await pilot.pause()
        assert body_widget.scroll_y > 0

    run_explain(body, size=(80, 24))
