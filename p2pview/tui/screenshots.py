"""Write an SVG of every TUI screen to ``screenshots/`` (``python -m p2pview.screenshots``).

Each shot starts a fresh app on a bundled topology, headless, presses the keys
that reach the screen and saves what Textual would draw. The same script makes
every picture in the README, so they change only when the screens do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.demo import load_demo, make_demo_app


@dataclass(frozen=True)
class Shot:
    """One screenshot: a file name, the topology, the keys pressed, the size."""

    name: str
    source: str
    keys: tuple[str, ...]
    size: tuple[int, int] = (120, 40)
    title: str = ""


SHOTS = (
    Shot("topology", "switch-acs-iommu", (), title="Topology: tree, badges and details"),
    Shot("topology-80x24", "switch-acs-iommu", (), (80, 24), "Topology at 80x24"),
    Shot("matrix", "hgx-8gpu", ("2",), title="Matrix: map type and distance per pair"),
    Shot("matrix-80x24", "switch-acs-iommu", ("2",), (80, 24), "Matrix at 80x24"),
    Shot("explain", "switch-acs-iommu", ("3",), title="Explain: the kernel's reasoning"),
    Shot(
        "whatif",
        "switch-acs-iommu",
        ("4", "down", "space", "right", "space", "down", "space", "left", "space"),
        title="What-if: ACS RR and CR cleared on two switch ports",
    ),
    Shot("stepper-picker", "switch-nvme", ("5",), title="I/O stepper: pick a scenario"),
    Shot(
        "stepper",
        "switch-nvme",
        ("5", "enter", *("right",) * 7),
        title="I/O stepper: one O_DIRECT read at dma_map",
    ),
    Shot("help", "switch-acs-iommu", ("question_mark",), title="Help"),
    Shot("demo", "demo:why-p2p-fails", ("space", "space"), (100, 30), "Demo mode, step 3"),
)

#: A shot whose source starts with this plays a bundled demo instead of a topology.
DEMO_PREFIX = "demo:"


def _app(shot: Shot) -> P2PViewApp:
    if shot.source.startswith(DEMO_PREFIX):
        demo = load_demo(shot.source.removeprefix(DEMO_PREFIX))
        return make_demo_app(demo)
    return make_app(TuiArgs(shot.source))


async def take(shot: Shot, out: Path) -> Path:
    """Run the app headless for one shot and save its SVG."""
    app = _app(shot)
    app.animation_level = "none"
    async with app.run_test(size=shot.size) as pilot:
        await app.loaded()
        await pilot.pause()
        for key in shot.keys:
            await pilot.press(key)
            await app.loaded()
            await pilot.pause()
        await pilot.pause()
        path = out / f"{shot.name}.svg"
        svg = app.export_screenshot(title=f"p2pview: {shot.title or shot.name}")
        path.write_text(svg, encoding="utf-8")
    return path


async def take_all(out: Path, names: list[str] | None = None) -> list[Path]:
    """Take every shot (or those named), one app at a time."""
    out.mkdir(parents=True, exist_ok=True)
    return [await take(s, out) for s in SHOTS if not names or s.name in names]


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m p2pview.screenshots [--out DIR] [NAME ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m p2pview.screenshots", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="*", help="shots to take (default: all)")
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="output directory")
    args = parser.parse_args(argv)
    unknown = set(args.names) - {s.name for s in SHOTS}
    if unknown:
        parser.error(f"unknown shot(s): {', '.join(sorted(unknown))}")
    # The bundled pci.ids subset: the same names on every machine that makes them.
    os.environ.setdefault("P2PVIEW_PCI_IDS", "bundled")
    for path in asyncio.run(take_all(args.out, args.names)):
        print(path)
    return 0
