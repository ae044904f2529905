"""The TUI on dumps with names only, or without endpoints: it opens, and says what it does not know.

A plain ``lspci -t`` names no classes (so the default selections name
nothing), ``lspci -tv`` names no bridges (their IDs stay unknown), and a
dump can hold nothing but bridges. Every such source opens on every screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tuikit import loaded, start, terminal_text

from p2pview.model import BDF, RootBus
from p2pview.sources import pciids
from p2pview.tui.analysis import set_host_bridge_ids
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.pci_labels import (
    RowContext,
    device_parts,
    host_bridge_parts,
    parts_text,
)
from p2pview.tui.widgets.pci_detail import device_detail

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "pciutils" / "golden"
K80_TV = str(DATA / "names" / "k80-3x-supermicro.reconstruction.tv")

Body = Callable[[P2PViewApp, Pilot[None], list[str]], Awaitable[None]]


@pytest.fixture(autouse=True)
def bundled_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(pciids.ENV_VAR, "bundled")
    pciids.clear_cache()
    yield
    pciids.clear_cache()


def run(source: str, body: Body, size: tuple[int, int] = (80, 24)) -> None:
    async def main() -> None:
        app = make_app(TuiArgs(source))
        app.animation_level = "none"
        notes: list[str] = []
        notify = app.notify

        def record(message: str, *args: object, **kw: object) -> None:
            notes.append(str(message))
            notify(message, *args, **kw)  # type: ignore[arg-type]

        app.notify = record  # type: ignore[method-assign]
        async with app.run_test(size=size) as pilot:
            await loaded(app, pilot)
            await body(app, pilot, notes)

    asyncio.run(main())


@pytest.mark.parametrize(
    "dump",
    ["tree-asus-p6t6.t", "tree-asus-p6t6.tv", "cap-dpc.tv", "cap-pcie-1.t", "tree-fsl-p2020.vvv"],
)
def test_every_screen_opens_on_a_plain_lspci_dump(dump: str) -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None], notes: list[str]) -> None:
        for key in "123451":
            await pilot.press(key)
            await app.loaded()
            await pilot.pause()
            text = terminal_text(app)
            assert "Cannot load" not in text and "Illegal Vendor ID" not in text, key
        assert app.whatif is not None and app.selection.pair is not None

    run(str(GOLDEN / dump), body)


def test_a_dump_without_classes_starts_on_a_pair_and_says_why() -> None:
    # issue 12: "selection term 'devices' matches no PCI function" stopped the load
    loaded = start(str(GOLDEN / "tree-asus-p6t6.t"))
    assert loaded.selection.pair == (BDF.parse("00:00.0"), BDF.parse("00:10.0"))
    assert any("no storage, GPU, NIC or accelerator is known" in n for n in loaded.notes)


def test_an_empty_default_filter_falls_back_to_every_function_with_a_note() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None], notes: list[str]) -> None:
        await pilot.press("2")
        await pilot.pause()
        text = terminal_text(app)
        assert "Everything  providers all (1) x clients all (1)" in text
        assert "'endpoint' names no function in this source: showing Everything (all)" in notes
        assert not any("matches no PCI function" in n for n in notes)

    run(str(GOLDEN / "cap-dpc.tv"), body)


def test_rows_say_which_ids_are_unknown() -> None:
    model = start(K80_TV).whatif
    ctx = RowContext.of(model.session.state, pciids.PciNames.load())
    topo = model.topology
    bridge = parts_text(device_parts(ctx, topo[BDF.parse("00:02.0")]))
    assert bridge.endswith("IDs unknown") and "ffff" not in bridge
    gpu = parts_text(device_parts(ctx, topo[BDF.parse("04:00.0")]))
    assert "NVIDIA GK210GL [Tesla K80]" in gpu
    hosts = {hb.root: parts_text(host_bridge_parts(ctx, hb)) for hb in topo.host_bridges}
    assert "whitelist 8086:2f00 ✓" in hosts[RootBus(0, 0)]  # inferred from the name
    assert "whitelist: IDs unknown" in hosts[RootBus(0, 0x80)]  # a bridge: no name in -tv


def test_the_detail_pane_says_how_ids_and_class_are_known() -> None:
    model = start(K80_TV).whatif
    ctx = RowContext.of(model.session.state, pciids.PciNames.load())
    host = device_detail(ctx, BDF.parse("00:00.0"), None).plain
    assert "IDs         8086:2f00" in host
    assert "inferred from the names 'Intel Corporation' / 'Xeon E7 v3" in host
    assert "inferred from the word 'DMI2' in the name: a host bridge" in host
    bridge = device_detail(ctx, BDF.parse("80:00.0"), None).plain
    assert "IDs         IDs unknown" in bridge and "assumed: lspci -t prints no class" in bridge
    assert "vendor      unknown" in bridge and "Illegal" not in bridge


def test_ids_given_in_the_what_if_screen_are_read() -> None:
    model = start(K80_TV).whatif
    root = RootBus(0, 0x80)
    verdict = model.verdict(BDF.parse("84:00.0"), BDF.parse("88:00.0"))
    assert verdict.map_type is not None and verdict.map_type.value == "NOT_SUPPORTED"
    model = model.apply(set_host_bridge_ids(root, 0x8086, 0x2F01))
    dev = model.topology[BDF.parse("80:00.0")]
    assert dev.ids == "8086:2f01" and dev.fact("ids").is_read
    after = model.verdict(BDF.parse("84:00.0"), BDF.parse("88:00.0"))
    assert after.map_type is not None and after.map_type.value == "THRU_HOST_BRIDGE"
