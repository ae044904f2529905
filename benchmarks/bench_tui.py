"""Time the TUI: startup to first frame, and a keypress in the matrix screen.

Usage: python benchmarks/bench_tui.py [--startup generated:1000] [--matrix generated:2000]
       [--presses 200] [--runs 5] [--size 120x40]

Both run the real app headless with ``App.run_test`` (Textual's test driver,
no terminal output), so what is timed is Textual plus p2pview: loading,
compositing, ``render_line``, message handling.

1. **Startup to first frame** (target under 1.5 s on ``generated:1000``): from
   just before entering ``run_test`` until the load worker has completed, the
   app has switched to the topology screen, and that screen has been painted
   (``pilot.pause()`` runs the screen's update, which composites and writes the
   frame). The first run also pays for importing and compiling the CSS once;
   the median of the other runs is the steady figure; both are printed.
2. **Keypress in the matrix** (target under 50 ms on ``generated:2000``):
   switch to the matrix screen (``2``, the Everything filter so that all
   2,000 x 2,000 cells are in view), then for each key ``pilot.press(key)``
   followed by ``pilot.pause()``; the time from the press until the frame is
   painted. Keys: ``down`` and ``right`` (which scroll once the cursor leaves
   the screen), ``pagedown``, and ``down`` again with NVIDIA labels on (labels
   are derived for the newly visible cells). Median, 95th percentile and worst
   of ``--presses`` presses per key.
3. For reference, the grid's own share of a frame: ``render_line`` for every
   line of the widget.
4. **The I/O stepper** on ``switch-nvme``: a 256 MiB BUS_ADDR read simulated
   and shown, then every stage stepped through (``run_scenario`` to painted
   frame, then each step); and every panel of every stage of a 1 GiB scattered
   RAM readv (262,143 sg entries) built without a screen.
5. **What-if edits** on ``--matrix``: one ACS bit set and cleared nine times
   with every screen built: each edit's computation (a worker's job), the time
   from the new analysis assigned to the first frame showing it (target under
   100 ms each), and to the screen settled (its pair count, a worker, done).
6. **Screen switches** on ``--matrix`` (target under 100 ms): the keys ``2``,
   ``3``, ``4``, ``5``, ``1`` sent as a terminal sends them, the first visit of
   each screen and again; from the key to the first frame showing the new
   screen, and to the frame it settles on (the last one before the app goes
   quiet: the footer, the selection followed), with the process's CPU time to
   then (wall and CPU differ when the CPU is shared). First visits and revisits
   are summed up side by side against the target.
7. **A large topology** (``--large generated:20000``; ``--large ''`` skips
   it), in a child process so that its peak RSS is its own: startup to first
   frame, the keys of 2. on the Everything filter (400 million pairs, decided
   a tile at a time), an ACS toggle, a kernel edit that changes every pair
   (from the edit to the what-if count shown: every pair decided twice, a
   block at a time, in a worker), and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time

from textual import events
from textual._compositor import LayoutUpdate
from textual.screen import Screen
from textual.widgets import Static

from p2pview.iosim import BufferKind, BufferSegment, Iovec, Scenario, quick_scenario, simulate
from p2pview.kernel import KernelTarget
from p2pview.model import BDF, AcsPresence
from p2pview.session import session_for
from p2pview.sources import load_source
from p2pview.tui.analysis import set_kernel, toggle_acs_bit
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.matrix_data import PRESETS
from p2pview.tui.presenters.stepper_changes import step_changes
from p2pview.tui.presenters.stepper_panels import PANELS
from p2pview.tui.presenters.stepper_render import pipeline
from p2pview.tui.screens.matrix import MatrixScreen
from p2pview.tui.screens.stepper import StepperScreen
from p2pview.tui.screens.topology import TopologyScreen
from p2pview.tui.widgets.matrix_grid import MatrixGrid


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


async def startup_once(source: str, size: tuple[int, int]) -> float:
    """Seconds from ``run_test`` to the painted topology screen."""
    start = time.perf_counter()
    app = make_app(TuiArgs(source))
    async with app.run_test(size=size) as pilot:
        await app.loaded()
        await pilot.pause()
        while not isinstance(app.screen, TopologyScreen):
            await pilot.pause(0.001)
        took = time.perf_counter() - start
    return took


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(ordered) * 1e3:6.1f} ms, 95% {p95 * 1e3:6.1f} ms,"
        f" worst {ordered[-1] * 1e3:6.1f} ms"
    )


class FrameClock:
    """Notes when the app writes a frame.

    Wraps ``App._display``, which the screen calls with each compositor update.
    """

    def __init__(self, app: P2PViewApp) -> None:
        self.painted = asyncio.Event()
        self._display = app._display
        app._display = self._hook  # type: ignore[method-assign,assignment]  # a timing hook

    def _hook(self, screen: Screen[object], update: object) -> None:
        self._display(screen, update)  # type: ignore[arg-type]
        self.painted.set()


async def keypresses(source: str, size: tuple[int, int], presses: int) -> dict[str, list[float]]:
    """Time keys on the matrix screen, both ways (see the module docstring)."""
    app = make_app(TuiArgs(source))
    results: dict[str, list[float]] = {}
    async with app.run_test(size=size) as pilot:
        await app.loaded()
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MatrixScreen)
        everything = next(p for p in PRESETS if p.providers == "all")
        while screen.filter != everything:
            await pilot.press("f")
            await app.loaded()
            await pilot.pause()
        grid = screen.query_one(MatrixGrid)
        assert grid.view is not None
        print(f"matrix view: {grid.view.n_rows} x {grid.view.n_cols} cells")
        clock = FrameClock(app)
        driver = app._driver
        assert driver is not None

        async def to_frame(name: str, key: str) -> None:
            """Key event in, painted frame out (the latency a user sees)."""
            await pilot.press("ctrl+home")
            await pilot.pause()
            times = []
            view = grid.view
            assert view is not None
            for _ in range(presses):
                at_edge = (
                    grid.cursor_col >= view.n_cols - 1
                    if key == "right"
                    else grid.cursor_row >= view.n_rows - grid.size.height
                )
                if at_edge:  # a key that moves nothing paints nothing: start over, untimed
                    await pilot.press("ctrl+home")
                    await pilot.pause()
                clock.painted.clear()
                event = events.Key(key, None)
                event.set_sender(app)
                start = time.perf_counter()
                driver.send_message(event)
                await asyncio.wait_for(clock.painted.wait(), 5)
                times.append(time.perf_counter() - start)
                await pilot.pause()
            results[f"{name}: key to frame"] = times

        async def press_pause(name: str, key: str) -> None:
            """``pilot.press(key)`` then ``pilot.pause()``, as the tests drive the app."""
            await pilot.press("ctrl+home")
            await pilot.pause()
            times = []
            for _ in range(presses):
                start = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                times.append(time.perf_counter() - start)
            results[f"{name}: press + pause"] = times

        for key in ("down", "right", "pagedown"):
            await to_frame(key, key)
        await pilot.press("n")
        await pilot.pause()
        await to_frame("down, NVIDIA labels on", "down")
        await to_frame("pagedown, NVIDIA labels on", "pagedown")
        await pilot.press("n")
        await pilot.pause()
        await press_pause("down", "down")
        await press_pause("f24 (bound to nothing)", "f24")

        lines = grid.size.height
        render = []
        for _ in range(50):
            start = time.perf_counter()
            for y in range(lines):
                grid.render_line(y)
            render.append(time.perf_counter() - start)
        results[f"grid render_line x {lines} lines"] = render
    return results


async def stepper_256mib(size: tuple[int, int]) -> tuple[float, list[float]]:
    """Seconds to simulate and show a 256 MiB read, then each step forward."""
    app = make_app(TuiArgs("switch-nvme"))
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await app.loaded()
        await pilot.press("5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StepperScreen)
        provider, client = BDF.parse("0000:1a:00.0"), BDF.parse("0000:1b:00.0")
        scenario = quick_scenario("switch-nvme", provider, client, 256 << 20)
        start = time.perf_counter()
        screen.run_scenario(scenario)
        await app.loaded()
        await pilot.pause()
        first = time.perf_counter() - start
        run = app.stepper_run
        assert run is not None
        trace = run.trace
        steps = []
        for _ in range(len(trace.steps) - 1):
            start = time.perf_counter()
            screen.action_step(1)
            await pilot.pause()
            steps.append(time.perf_counter() - start)
    return first, steps


def panels_1gib() -> float:
    """Seconds to build every stepper panel of every stage of a 1 GiB scattered readv."""
    size = 1 << 30
    scenario = Scenario(
        name="1 GiB of scattered RAM",
        description="",
        source="switch-nvme",
        kernel=None,
        buffer=(BufferSegment(BufferKind.RAM, size, layout="scattered"),),
        client=BDF.parse("0000:1b:00.0"),
        iovecs=(Iovec(0, size),),
    )
    session = session_for(load_source("switch-nvme"))
    trace = simulate(scenario, session.topology, session.state)
    start = time.perf_counter()
    for index in range(len(trace.steps)):
        changes = step_changes(trace, index)
        for _panel, _title, build in PANELS:
            build(trace, index, changes, 116)
        pipeline(trace, index)
    return time.perf_counter() - start


async def whatif_count(source: str, size: tuple[int, int]) -> tuple[float, str]:
    """Seconds from a kernel edit that changes every pair to the what-if count shown."""
    app = make_app(TuiArgs(source))
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await app.loaded()
        await pilot.press("4")
        await app.loaded()
        await pilot.pause()
        whatif = app.whatif
        assert whatif is not None
        start = time.perf_counter()
        # an int, no map type: every pair changes
        app.whatif = whatif.apply(set_kernel(KernelTarget.parse("4.20")))
        count = app.screen.query_one("#changes-count", Static)
        while "Counting" in str(count.content) or not app.whatif.edits:
            await app.workers.wait_for_complete()
            await pilot.pause()
        return time.perf_counter() - start, str(count.content)


class FrameLog:
    """Notes the time of every frame the app writes, which screen it showed, and if whole.

    Wraps ``App._display`` as :class:`FrameClock` does.
    """

    def __init__(self, app: P2PViewApp) -> None:
        #: (time, screen shown, whether the whole screen was painted) of each frame.
        self.frames: list[tuple[float, Screen[object], bool]] = []
        self._display = app._display
        app._display = self._hook  # type: ignore[method-assign,assignment]  # a timing hook

    def _hook(self, screen: Screen[object], update: object) -> None:
        self._display(screen, update)  # type: ignore[arg-type]
        # a partial update paints only what changed: it does not show a new screen
        self.frames.append((time.perf_counter(), screen, isinstance(update, LayoutUpdate)))


#: A switch has settled when no frame has been written for this long.
QUIET = 0.3


async def switch_once(app: P2PViewApp, log: FrameLog, key: str) -> tuple[float, float, float]:
    """(first frame, settled, CPU) seconds from the key to the new screen.

    The key goes to the driver as a terminal's would (not ``pilot.press``,
    which waits for the app to be idle and forces a repaint). *First frame*:
    the first whole frame written with the new screen current (a partial one
    paints only what changed over the old screen). *Settled*: the last
    frame written before the app went quiet (``QUIET`` without a frame): what
    the screen shows once every handler of the switch has run (the footer,
    the selection followed, a deferred repaint). CPU: the process's CPU time
    from the key to the settled frame.
    """
    driver = app._driver
    assert driver is not None
    log.frames.clear()
    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    start, cpu_start = time.perf_counter(), time.process_time()
    cpu_at_frame = cpu_start
    driver.send_message(event)
    first: float | None = None
    seen = 0
    deadline = start + 10
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.002)
        if len(log.frames) > seen:
            seen = len(log.frames)
            cpu_at_frame = time.process_time()
            if first is None:
                shown = [t for t, screen, whole in log.frames if whole and screen is app.screen]
                if shown and app.screen.is_current and app.current_mode != "_default":
                    first = shown[0]
        elif first is not None and time.perf_counter() - log.frames[-1][0] > QUIET:
            break
    assert first is not None, f"no frame after {key!r}"
    settled = log.frames[-1][0]
    return first - start, settled - start, cpu_at_frame - cpu_start


async def screen_switches(
    source: str, size: tuple[int, int], build_ahead: bool
) -> tuple[list[tuple[str, str, float, float, float]], float | None]:
    """(visit, mode, first frame, settled, CPU seconds) for each screen key, twice.

    With ``build_ahead``, also the seconds from the load to every screen built
    (the switches start after that).
    """
    app = make_app(TuiArgs(source), build_ahead=build_ahead)
    app.animation_level = "none"
    results = []
    built = None
    async with app.run_test(size=size) as pilot:
        start = time.perf_counter()
        await app.loaded()
        await pilot.pause()
        if build_ahead:
            await asyncio.wait_for(app.screens_built.wait(), 60)
            built = time.perf_counter() - start
        await app.workers.wait_for_complete()
        await asyncio.sleep(QUIET)
        log = FrameLog(app)
        for visit in ("first visit", "again"):
            for key in "23451":
                first, settled, cpu = await switch_once(app, log, key)
                results.append((visit, app.current_mode, first, settled, cpu))
                await app.workers.wait_for_complete()
                await asyncio.sleep(QUIET)
    return results, built


async def switch_while_building(source: str, size: tuple[int, int]) -> list[tuple[str, float]]:
    """(mode, settled seconds) for each screen key typed while the screens are built ahead.

    The first key comes as soon as the first screen is shown, the others right
    after the previous switch settles: each waits for the screen being built
    (at most one) and then for its own.
    """
    app = make_app(TuiArgs(source), build_ahead=True)
    app.animation_level = "none"
    results = []
    async with app.run_test(size=size):
        await app.loaded()
        while not isinstance(app.screen, TopologyScreen):
            await asyncio.sleep(0.001)
        log = FrameLog(app)
        for key in "4325":
            if app.screens_built.is_set():
                break
            _first, settled, _cpu = await switch_once(app, log, key)
            results.append((app.current_mode, settled))
    return results


def print_switches(source: str, size: tuple[int, int]) -> None:
    """Item 6."""
    where = f"{source} at {size[0]}x{size[1]}"
    print(f"screen switch, key to the new screen's frames, {where}:")
    rows, built = asyncio.run(screen_switches(source, size, build_ahead=True))
    print(f"  screens built ahead (as in a terminal) {built:.2f} s after the load started")
    print(f"  {'':21s} {'first frame':>12s} {'settled':>9s} {'CPU':>9s}")
    for visit, mode, first, settled, cpu in rows:
        print(
            f"  {visit:11s} {mode:9s} {first * 1e3:9.1f} ms {settled * 1e3:6.1f} ms"
            f" {cpu * 1e3:6.1f} ms"
        )
    for visit in ("first visit", "again"):
        these = [row for row in rows if row[0] == visit]
        firsts = [row[2] for row in these]
        settles = [row[3] for row in these]
        worst = max(settles)
        verdict = "ok" if worst < 0.1 else "TOO SLOW"
        print(
            f"  {visit:11s} median first frame {statistics.median(firsts) * 1e3:5.1f} ms,"
            f" settled {statistics.median(settles) * 1e3:5.1f} ms;"
            f" worst settled {worst * 1e3:5.1f} ms (target < 100 ms): {verdict}"
        )
    cold, _ = asyncio.run(screen_switches(source, size, build_ahead=False))
    settles = [row[3] for row in cold if row[0] == "first visit"]
    median, worst = statistics.median(settles) * 1e3, max(settles) * 1e3
    print(
        "  first visits of screens not built ahead (headless default):"
        f" settled median {median:.1f} ms, worst {worst:.1f} ms"
    )
    early = asyncio.run(switch_while_building(source, size))
    text = ", ".join(f"{mode} {settled * 1e3:.0f} ms" for mode, settled in early)
    print(
        f"  keys typed while the screens are being built ahead, settled: {text or 'none (built)'}"
    )


def print_whatif_edit(source: str, size: tuple[int, int], edits: int = 9) -> None:
    """ACS toggles: the worker's computation, the frame, and the screen settled."""
    compute, framed, settled = asyncio.run(whatif_edit(source, size, edits))
    verdict = "ok" if max(framed) < 0.1 else "TOO SLOW"
    print(f"what-if ACS toggle on {source}, {edits} edits:")
    print(f"  computed (the edit worker's job)            {_summary(compute)}")
    print(f"  to the first frame showing it (< 100 ms)    {_summary(framed)}: {verdict}")
    print(f"  to the screen settled (its count worker)    {_summary(settled)}")


def large(source: str, size: tuple[int, int], presses: int) -> None:
    """Item 7, in this (child) process."""
    print(f"startup to first frame, {source}: {asyncio.run(startup_once(source, size)):.3f} s")
    results = asyncio.run(keypresses(source, size, presses))
    print(f"keypress to painted frame, matrix screen, {source}:")
    for name, times in results.items():
        print(f"  {name:44s} {_summary(times)}")
    print_whatif_edit(source, size)
    took, text = asyncio.run(whatif_count(source, size))
    print(f"what-if kernel 4.20 on {source}, to the count shown: {took:.3f} s ({text})")


async def whatif_edit(
    source: str, size: tuple[int, int], edits: int
) -> tuple[list[float], list[float], list[float]]:
    """Seconds to compute each ACS bit edit (a worker's job), to its frame, to settled.

    Every screen is built ahead first, as in a terminal. From the new analysis assigned (as the edit
    worker's result is) to the first frame the app writes with it: the what-if
    screen's redraw (hidden screens redraw when they are next shown); then to
    the screen settled, its pair-count worker done. The bit is set and cleared
    in turn, ``edits`` times.
    """
    app = make_app(TuiArgs(source), build_ahead=True)  # as in a terminal
    app.animation_level = "none"
    computes: list[float] = []
    framed: list[float] = []
    settled: list[float] = []
    async with app.run_test(size=size) as pilot:
        await app.loaded()
        await app.screens_built.wait()  # every screen built, drawn, and gc.freeze()
        await pilot.press("4")
        await pilot.pause()
        whatif = app.whatif
        assert whatif is not None
        bdf = next(d.bdf for d in whatif.topology.devices if d.acs.presence is AcsPresence.PRESENT)
        clock = FrameClock(app)
        for _ in range(edits):
            whatif = app.whatif
            assert whatif is not None
            start = time.perf_counter()
            edited = whatif.apply(toggle_acs_bit(bdf, 0x4))
            computes.append(time.perf_counter() - start)
            clock.painted.clear()
            start = time.perf_counter()
            app.whatif = edited
            await asyncio.wait_for(clock.painted.wait(), 5)
            framed.append(time.perf_counter() - start)
            await app.loaded()
            await pilot.pause()
            settled.append(time.perf_counter() - start)
    return computes, framed, settled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--startup", default="generated:1000", help="source for the startup time")
    parser.add_argument("--matrix", default="generated:2000", help="source for the keypresses")
    parser.add_argument("--presses", type=int, default=100, help="presses per key")
    parser.add_argument("--runs", type=int, default=5, help="startups timed")
    parser.add_argument("--size", default="120x40", help="terminal size, WIDTHxHEIGHT")
    parser.add_argument("--large", default="generated:20000", help="a large source, '' for none")
    parser.add_argument("--large-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only-switches", action="store_true", help="time the screen switches (item 6) only"
    )
    args = parser.parse_args()
    size = _size(args.size)
    if args.large_child:
        large(args.large, size, args.presses)
        return
    if args.only_switches:
        print_switches(args.matrix, size)
        return

    startups = [asyncio.run(startup_once(args.startup, size)) for _ in range(args.runs)]
    first, rest = startups[0], startups[1:] or startups
    print(
        f"startup to first frame, {args.startup} at {args.size}: first run {first:.3f} s"
        f" (imports, CSS), then median {statistics.median(rest):.3f} s (target < 1.5 s)"
    )

    results = asyncio.run(keypresses(args.matrix, size, args.presses))
    print(f"keypress to painted frame, matrix screen, {args.matrix} at {args.size}:")
    for name, times in results.items():
        print(f"  {name:44s} {_summary(times)}")
    worst_median = max(statistics.median(t) for n, t in results.items() if "to frame" in n)
    verdict = "ok" if worst_median < 0.05 else "TOO SLOW"
    print(f"slowest key-to-frame median {worst_median * 1e3:.1f} ms (target < 50 ms): {verdict}")

    first_show, steps = asyncio.run(stepper_256mib(size))
    print(
        f"stepper, 256 MiB BUS_ADDR read on switch-nvme: simulated and shown in {first_show:.3f} s,"
        f" {len(steps)} steps: {_summary(steps)}"
    )
    print(f"stepper panels, 1 GiB scattered readv, every stage: {panels_1gib():.3f} s")
    print_whatif_edit(args.matrix, size)
    print_switches(args.matrix, size)
    if args.large:
        child = [sys.executable, __file__, "--large-child", "--large", args.large]
        child += ["--size", args.size, "--presses", str(args.presses)]
        subprocess.run(child, check=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of the {args.large} run: {peak:.0f} MiB (target well under 1 GiB)")


if __name__ == "__main__":
    main()
