"""The TUI's loading worker on hostile sources: it ends, says why, and q quits.

A FIFO given as SOURCE, or behind a capture's ``config`` and ``proc/cpuinfo``,
used to block the worker's read for ever (``Reading ...`` spun, the process
outlived ``q``). Reads are non-blocking now: the worker ends with a model or
one line of error, a reload reads again, and ``q`` ends the app.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from hostile import NVME_DIR, M, good_capture, write_tree

from p2pview.tui.app import P2PViewApp, TuiArgs, make_app


def _run(source: str, keys: tuple[str, ...] = ()) -> P2PViewApp:
    async def main() -> P2PViewApp:
        app = make_app(TuiArgs(source))
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:
            await asyncio.wait_for(app.loaded(), timeout=20)
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
                await asyncio.wait_for(app.loaded(), timeout=20)
                await pilot.pause()
            await pilot.press("q")
        return app

    return asyncio.run(main())


def test_a_fifo_as_source_fails_in_one_line_and_q_quits(tmp_path: Path) -> None:
    fifo = tmp_path / "capture"
    os.mkfifo(fifo)
    app = _run(str(fifo))
    assert app.whatif is None
    assert (
        app.load_error
        == f"{fifo}: a FIFO (named pipe); p2pview reads regular files and directories"
    )


def test_fifos_inside_a_capture_load_with_notes_and_reload(tmp_path: Path) -> None:
    members = [m for m in good_capture() if not m.name.endswith(("0000:01:00.0/config", "cpuinfo"))]
    tree = write_tree(
        tmp_path / "tree", [*members, M(f"{NVME_DIR}/config", "p"), M("proc/cpuinfo", "p")]
    )
    app = _run(str(tree), keys=("r",))
    assert app.whatif is not None and app.load_error is None
    nvme = next(d for d in app.whatif.topology.devices if str(d.bdf) == "0000:01:00.0")
    assert "config: a FIFO, device or socket, not a regular file; not read" in nvme.notes
