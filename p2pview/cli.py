"""The command line: every ``p2pview`` subcommand, its arguments and what it prints.

Each command is a ``cmd_NAME`` function registered with :func:`command` where
it is defined, with the function that adds its arguments beside it;
:func:`build_parser` builds the parser from that registry (:data:`COMMANDS`),
and ``--help`` lists them in the order they are defined here. The QEMU
oracle's ``qemu`` and ``verify`` live in :mod:`p2pview.qemu.commands`. Plain
``p2pview [SOURCE] [options]`` runs ``tui`` (:func:`main` puts the word in).

Every command prints one line on stderr and exits 2 for bad input (unknown
file, device, kernel version, malformed topology); never a traceback. The
exit statuses are in :data:`EXIT_STATUS_HELP` (``p2pview --help`` prints it).

Start-up time matters (a script may run hundreds of one-pair queries): this
module imports only argparse at the top, and each command imports what it
uses. Rich costs about 25 ms, numpy 55 ms (with one OpenBLAS thread, below)
and networkx 120 ms; Textual is only for the TUI. ``tests/test_cli_startup.py``
holds every command that needs neither to that.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from p2pview import __version__

# p2pview does no linear algebra (no BLAS call anywhere: its numpy work is
# element-wise), yet importing numpy starts OpenBLAS's thread pool, one thread
# per core, and starting it costs about 50 ms of CPU on a 2-core machine, as
# much as the rest of numpy's import (benchmarks/bench_cli.py times both). A
# value the user has set wins. Set here, before anything can import numpy, so
# that the TUI and every command get it; a program importing p2pview's
# packages as a library keeps its own BLAS threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from p2pview.iosim import Scenario
    from p2pview.iosim.datapath import DataPathKernel
    from p2pview.model import BDF
    from p2pview.session import Session
    from p2pview.sources import Loaded

EXIT_USAGE = 2
#: ``compare`` found no pair to compare (the topology lacks the devices, or names them unreadably).
EXIT_NOTHING_COMPARED = 1
#: ``trace``: the simulated I/O failed, came back short, hangs, or gave the device a wrong address.
EXIT_IO_FAILED = 1
#: ``trace``: the I/O never ran, because opening or mmap'ing its buffer failed.
EXIT_IO_NOT_RUN = 3
#: Ctrl-C.
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = """\
exit status:
  0    done (trace: the I/O moved every byte)
  1    compare: no pair could be compared; trace: the simulated I/O failed,
       came back short, hangs, or gave the device a wrong address
  2    bad input (an unknown file, device, option value or kernel release):
       one line on stderr naming the file and the field
  3    trace: the I/O never ran (the open or mmap of its buffer failed)
  130  interrupted (Ctrl-C)"""

#: What SOURCE may be, for every command's help.
SOURCE_HELP = (
    "a topology file (.toml/.json) or a dump (see 'p2pview formats'), a bundled topology"
    " name ('p2pview topologies'), a directory holding a gathered sysfs tree"
    " (DIR/sys/bus/pci/devices), a .tar.gz/.tar.bz2/.tar.xz of one, / for this host, or"
    " generated:N[:SEED] for a generated topology of N functions (SEED picks the layout,"
    " default 0; for trying p2pview at scale)"
)

#: The commands that live in :mod:`p2pview.qemu.commands`, whose parsers and
#: imports (the matrix, hence numpy) are only built when one of them is run.
QEMU_COMMANDS = ("qemu", "verify")


class CliError(Exception):
    """A problem with the command line to report in one line, exit status 2.

    The command line's own counterpart of :class:`p2pview.model.errors.InputError`
    (deriving from it would import the model, whose package imports every
    model module, before ``--version`` answers).
    """


class Command(NamedTuple):
    """One subcommand: its name, its parser's options, its arguments and what runs it.

    (A ``NamedTuple``: ``dataclasses`` would import ``inspect`` before ``--version``.)
    """

    name: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None]
    parser_options: Mapping[str, Any]


#: Every command of this module, in the order ``--help`` lists them; each is
#: registered by :func:`command` where its function is defined. ``qemu`` and
#: ``verify`` live in :mod:`p2pview.qemu.commands` (:data:`QEMU_COMMANDS`).
COMMANDS: dict[str, Command] = {}


def _no_arguments(p: argparse.ArgumentParser) -> None:
    """A command that takes no arguments."""


def command(
    name: str,
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments,
    **parser_options: Any,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register the decorated function as ``p2pview NAME``.

    ``arguments`` adds the command's arguments to its parser; ``parser_options``
    (``help``, ``description``, ``epilog`` ...) go to ``add_parser``.
    """

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, run, arguments, parser_options)
        return run

    return register


def command_names() -> tuple[str, ...]:
    """Every command's name, the QEMU oracle's included."""
    return (*COMMANDS, *QEMU_COMMANDS)


def _console(width: int | None = None) -> Console:
    """Stdout console; never narrower than ``width``, nor than 120 columns into a pipe."""
    from rich.console import Console

    from p2pview.views.styles import rich_theme

    theme = rich_theme()
    console = Console(highlight=False, theme=theme)
    wanted = max(width or 0, 0 if console.is_terminal else 120)
    if wanted > console.width:
        console = Console(highlight=False, width=wanted, theme=theme)
    return console


def _print(renderable: RenderableType, width: int | None = None) -> None:
    """Print to stdout; lines of text are never wrapped, whatever the width.

    ``soft_wrap`` keeps each line of text whole (a kernel message, the
    ``pci=disable_acs_redir=`` string people copy, a note), in a terminal and
    in a pipe alike; tables are still laid out to the console's width.
    """
    _console(width).print(renderable, soft_wrap=True)


def _add_source(p: argparse.ArgumentParser, optional: bool = False) -> None:
    if optional:
        p.add_argument(
            "source", nargs="?", default="/", metavar="SOURCE", help=SOURCE_HELP + " (default: /)"
        )
    else:
        p.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    _add_format(p)


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        metavar="NAME",
        dest="input_format",
        help="read SOURCE as this format instead of detecting it from the content"
        " (see 'p2pview formats')",
    )


def _add_iommu(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--iommu",
        choices=("on", "off"),
        help="on: ACS as an IOMMU driver leaves it (RR|CR on every function with ACS);"
        " off: ACS back to the firmware values the source records",
    )


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kernel",
        metavar="X.Y",
        help="kernel release to model (6.12, 5.15.0-91-generic, next); default: the"
        " source's own kernel, else 6.12",
    )
    p.add_argument(
        "--cpu",
        metavar="VENDOR:FAMILY",
        help="replace the CPU: amd:0x19, intel:6, hygon:0x18, or an arch such as arm64",
    )
    p.add_argument(
        "--cmdline",
        metavar="STRING",
        help="replace the kernel command line, e.g. 'pci=disable_acs_redir=0000:02:00.0'",
    )
    _add_iommu(p)


def build_parser(qemu: bool = True) -> argparse.ArgumentParser:
    """The argument parser (also used for ``--help`` in README), from :data:`COMMANDS`.

    ``qemu`` adds the ``qemu`` and ``verify`` commands, whose module imports the
    matrix: :func:`main` leaves them out unless one of them is run or help is asked.
    """
    parser = argparse.ArgumentParser(
        prog="p2pview",
        description="Explore Linux PCIe peer-to-peer DMA: which device pairs the kernel's"
        " P2PDMA code allows, and why.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"p2pview {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, **cmd.parser_options)
        cmd.arguments(p)
    if qemu:
        from p2pview.qemu import commands as qemu_commands

        qemu_commands.add_parsers(sub)
    return parser


def _session(args: argparse.Namespace, about: Sequence[str] = ()) -> Session:
    """Open SOURCE with the options every command takes.

    ``about``: the functions the command asks about. When every one is a PCI
    address, a sysfs source is read only as far as their decision needs.
    """
    from p2pview.model import BDF, AddressError
    from p2pview.session import EngineConfig, open_session

    only: list[BDF] | None = None
    if about:
        try:
            only = [BDF.parse(spec) for spec in about]
        except AddressError:
            only = None  # a label: resolved against the whole tree
    config = EngineConfig.parse(
        kernel=args.kernel, cpu=args.cpu, cmdline=args.cmdline, iommu=args.iommu
    )
    return open_session(args.source, config, fmt=args.input_format, only=only)


def source_name(session: Session) -> str:
    """How messages name the session's source: a bundled topology by its name, not its path."""
    topo = session.topology
    if session.loaded.kind == "bundled":
        return topo.name
    return topo.source or topo.name


def _resolve(session: Session, spec: str) -> BDF:
    try:
        return session.topology.resolve(spec)
    except KeyError as exc:
        raise CliError(f"{source_name(session)}: {exc.args[0]}") from None


def _print_json(doc: Any) -> None:
    import json

    sys.stdout.write(json.dumps(doc, indent=1) + "\n")


def need_terminal(source: str | None) -> None:
    """Refuse to draw a full-screen program without a terminal, and say what to run instead.

    Without one (``p2pview SOURCE < /dev/null > out``, a script, CI), the TUI
    would paint escape codes into the file and wait for keys that never come.
    A driver chosen in ``TEXTUAL_DRIVER`` (textual-serve's web driver, which
    talks over pipes) needs none.
    """
    if (sys.stdin.isatty() and sys.stdout.isatty()) or os.environ.get("TEXTUAL_DRIVER"):
        return
    where = "standard input" if not sys.stdin.isatty() else "standard output"
    src = source or "/"
    raise CliError(
        f"the interactive explorer needs a terminal, and {where} is not one. Without one, use"
        f" 'p2pview matrix {src}' (every pair), 'p2pview explain {src} PROVIDER CLIENT'"
        " (one pair), or another command ('p2pview --help' lists them)"
    )


def _tui_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview tui``'s arguments."""
    p.add_argument(
        "source",
        nargs="?",
        default=None,
        metavar="SOURCE",
        help=SOURCE_HELP + " (default: this host, or a bundled demo topology when this host"
        " has no PCIe tree worth showing)",
    )
    _add_format(p)
    p.add_argument("--kernel", metavar="X.Y", help="kernel release to model")
    p.add_argument("--cpu", metavar="VENDOR:FAMILY", help="replace the CPU")
    p.add_argument("--cmdline", metavar="STRING", help="replace the kernel command line")
    _add_iommu(p)


@command(
    "tui", _tui_arguments, help="the interactive explorer (what plain 'p2pview [SOURCE]' runs)"
)
def cmd_tui(args: argparse.Namespace) -> int:
    """``p2pview [SOURCE]``: the interactive explorer.

    The source is loaded before anything is drawn: a source that cannot be
    loaded is reported here, on stderr with exit status 2, not on a screen.
    """
    need_terminal(args.source)
    from p2pview.tui import TuiArgs, make_app

    tui_args = TuiArgs(
        args.source,
        args.kernel,
        args.cpu,
        args.cmdline,
        iommu=args.iommu,
        input_format=args.input_format,
    )
    app = make_app(tui_args, tui_args.load())
    app.run()
    _report_tui_bugs()
    if app.load_error:
        print(f"p2pview: error: {app.load_error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _report_tui_bugs() -> None:
    """Print the tracebacks of bugs the TUI met (it showed each in one line)."""
    from p2pview.tui.failures import report_bugs

    report_bugs(sys.stderr)


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview demo``'s arguments."""
    p.add_argument(
        "name",
        nargs="?",
        default="why-p2p-fails",
        metavar="NAME",
        help="a bundled demo or a demo .toml file (default: why-p2p-fails)",
    )
    p.add_argument(
        "--autoplay",
        type=float,
        metavar="SECONDS",
        help="step on by itself every SECONDS (p pauses and resumes)",
    )
    p.add_argument("--loop", action="store_true", help="after the last step, start over")
    p.add_argument("--list", action="store_true", help="list the bundled demos (no TUI)")
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the demo to a web browser instead (needs the textual-serve package)",
    )
    p.add_argument("--host", default="localhost", help="with --serve: the host to serve on")
    p.add_argument("--port", type=int, default=8000, help="with --serve: the port (default 8000)")


@command(
    "demo",
    _demo_arguments,
    help="a scripted tour for talks: captions, space/→ next, ← back (see 'demo --list')",
)
def cmd_demo(args: argparse.Namespace) -> int:
    """``p2pview demo [NAME]``: a scripted tour for talks."""
    from p2pview.tui.demo import DemoError, load_demo, make_demo_app

    if args.list:
        return _list_demos()
    if args.autoplay is not None and not args.autoplay > 0:
        raise CliError(f"--autoplay needs a positive number of seconds, not {args.autoplay:g}")
    try:
        # Every step is checked and built before anything is drawn.
        demo = load_demo(args.name)
    except DemoError as exc:
        print(f"p2pview demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.serve:
        return _serve_demo(args, demo.title)
    need_terminal(None)
    app = make_demo_app(demo, autoplay=args.autoplay, loop=args.loop)
    app.run()
    _report_tui_bugs()
    return 0


def _list_demos() -> int:
    """``p2pview demo --list``: name, steps and title of every bundled demo."""
    import tomllib

    from rich.table import Table
    from rich.text import Text

    from p2pview.tui.demo import DemoError, bundled_demos
    from p2pview.tui.demo.script import parse_steps

    table = Table(title="Bundled demos (p2pview demo NAME; without NAME, why-p2p-fails)")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("title")
    for name, path in bundled_demos():
        try:
            # Parsing is enough for a title and a count; building every step is not needed.
            title, specs = parse_steps(tomllib.loads(path.read_text(encoding="utf-8")), str(path))
        except (OSError, tomllib.TOMLDecodeError, DemoError) as exc:
            table.add_row(name, "-", Text(f"cannot read: {exc}", style="check.fail"))
            continue
        table.add_row(name, str(len(specs)), Text(title))
    _print(table)
    return 0


def _demo_command(args: argparse.Namespace) -> str:
    """The shell command that plays this demo (what the web server runs per browser)."""
    import shlex

    # A demo file by an absolute path: the server may run it from elsewhere.
    name = str(Path(args.name).resolve()) if Path(args.name).is_file() else args.name
    words = [sys.executable, "-m", "p2pview", "demo", name]
    if args.autoplay is not None:
        words += ["--autoplay", f"{args.autoplay:g}"]
    if args.loop:
        words.append("--loop")
    return shlex.join(words)


def demo_server(args: argparse.Namespace, title: str) -> Any:
    """A textual-serve ``Server`` that plays the demo of ``args`` in each browser tab.

    Constructing it opens no port; ``serve()`` does.
    """
    try:
        from textual_serve.server import Server
    except ImportError:
        raise CliError(
            "--serve needs the textual-serve package: pip install 'p2pview[serve]'"
        ) from None
    return Server(_demo_command(args), host=args.host, port=args.port, title=title)


def _serve_demo(args: argparse.Namespace, title: str) -> int:
    """``p2pview demo --serve``: the demo in a web browser, through textual-serve."""
    server = demo_server(args, title)
    print(
        f"Serving the demo at {server.public_url} (add ?fontsize=24 for a projector; Ctrl+C stops)",
        file=sys.stderr,
    )
    server.serve()
    return 0


def _matrix_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview matrix``'s arguments."""
    _add_source(p, optional=True)
    _add_engine(p)
    p.add_argument(
        "--providers",
        metavar="SEL",
        help="rows: BDFs, vendor:device, kinds"
        " (nvme, gpu, nic, devices, endpoint, p2pmem, bridge, all) or subtree:BDF,"
        " comma-separated",
    )
    p.add_argument("--clients", metavar="SEL", help="columns, same syntax as --providers")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


@command(
    "matrix",
    _matrix_arguments,
    help="map type and distance for every device pair",
    description="Map type and distance for every ordered pair of the selected providers"
    " (rows) and clients (columns). A big selection is summarised (verdicts by map type,"
    " by path and by host bridge, and the pairs that differ from the majority); --json"
    " streams every pair.",
)
def cmd_matrix(args: argparse.Namespace) -> int:
    """``p2pview matrix``: a table, a summary when the selection is too big for one, or JSON."""
    from p2pview.model.select import SelectionError, select

    session = _session(args)
    try:
        providers = select(session.topology, args.providers)
        clients = select(session.topology, args.clients)
    except SelectionError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        from p2pview.matrixjson import write_matrix_document

        write_matrix_document(session, providers, clients, sys.stdout)
        return 0
    from p2pview.views.matrix_summary import fits_table, summarise, summary_view, summary_width

    if fits_table(len(providers), len(clients)):
        from p2pview.kernel.matrix import pair_matrix
        from p2pview.views.matrix_table import matrix_view, matrix_width

        matrix = pair_matrix(session.state, providers, clients)
        _print(matrix_view(session, matrix), matrix_width(session, matrix))
        return 0
    whole = args.providers is None and args.clients is None
    summary = summarise(session, providers, clients, whole=whole)
    view = summary_view(session, summary, command=_matrix_command(args))
    _print(view, summary_width(session, summary))
    return 0


def _matrix_command(args: argparse.Namespace) -> str:
    """``p2pview matrix SOURCE [options]`` as the user typed it, for the hints of a summary."""
    import shlex

    words = ["p2pview", "matrix", args.source]
    for option in ("input_format", "kernel", "cpu", "cmdline", "iommu"):
        value = getattr(args, option)
        if value is not None:
            words += [f"--{'format' if option == 'input_format' else option}", value]
    return shlex.join(words)


def _explain_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview explain``'s arguments."""
    _add_source(p)
    p.add_argument(
        "provider", metavar="PROVIDER", help="BDF, vendor:device or label of the memory's owner"
    )
    p.add_argument("client", metavar="CLIENT", help="BDF, vendor:device or label of the DMA master")
    _add_engine(p)
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")


@command("explain", _explain_arguments, help="why the kernel decides one pair the way it does")
def cmd_explain(args: argparse.Namespace) -> int:
    """``p2pview explain``."""
    from p2pview.kernel.decision import calc_map_type_and_dist

    session = _session(args, about=(args.provider, args.client))
    provider = _resolve(session, args.provider)
    client = _resolve(session, args.client)
    verdict = calc_map_type_and_dist(session.state, provider, client)
    if args.json:
        from p2pview.jsonreport import verdict_document

        _print_json(verdict_document(session, verdict))
        return 0
    from p2pview.views.explain import explain_view

    _print(explain_view(session, verdict))
    return 0


def _find_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview find``'s arguments."""
    _add_source(p)
    p.add_argument("clients", metavar="CLIENT", nargs="+", help="BDF, vendor:device or label")
    _add_engine(p)
    p.add_argument("--json", action="store_true", help="print JSON")


@command(
    "find", _find_arguments, help="which p2pmem provider pci_p2pmem_find_many() picks for clients"
)
def cmd_find(args: argparse.Namespace) -> int:
    """``p2pview find``: ``pci_p2pmem_find_many()`` for the given clients."""
    from p2pview.kernel.many import pci_p2pmem_find_many

    session = _session(args)
    clients = [_resolve(session, c) for c in args.clients]
    found = pci_p2pmem_find_many(session.state, clients)
    if args.json:
        _print_json(
            {
                "clients": [str(c) for c in clients],
                "best_distance": found.best,
                "tied": [str(b) for b in found.tied],
                "candidates": [{"provider": str(p), "distance": d} for p, d in found.candidates],
                "messages": [m.to_dict() for m in found.messages],
            }
        )
        return 0
    from p2pview.views.find_view import find_view

    _print(find_view(session, found))
    return 0


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview compare``'s arguments."""
    _add_source(p)
    p.add_argument(
        "topo_m",
        metavar="TOPO_M",
        help="a file holding 'nvidia-smi topo -m' output (optionally followed by"
        " 'nvidia-smi --query-gpu=index,pci.bus_id --format=csv' output, to match GPUs by"
        " address)",
    )
    _add_engine(p)
    p.add_argument("--json", action="store_true", help="print JSON")


@command(
    "compare",
    _compare_arguments,
    help="put 'nvidia-smi topo -m' labels beside the kernel's P2PDMA verdicts",
)
def cmd_compare(args: argparse.Namespace) -> int:
    """``p2pview compare SOURCE TOPO_M``."""
    from p2pview.compare import compare, comparison_document
    from p2pview.sources.nvsmi import read_nvsmi_topo

    session = _session(args)
    comparison = compare(session, read_nvsmi_topo(args.topo_m))
    if args.json:
        _print_json(comparison_document(session, comparison))
    else:
        from p2pview.views.compare_view import compare_view, compare_width

        _print(compare_view(session, comparison), compare_width(comparison))
    why = comparison.nothing_compared
    if why is not None:
        # nothing was checked: a run that compared nothing must not look like a pass
        print(f"p2pview: {args.topo_m}: {why}", file=sys.stderr)
        return EXIT_NOTHING_COMPARED
    return 0


def _trace_kernel(args: argparse.Namespace) -> DataPathKernel | None:
    """``--kernel``, parsed (a VersionError names what is wrong with it)."""
    from p2pview.iosim.datapath import DataPathKernel

    return None if not args.kernel else DataPathKernel.parse(args.kernel)


def _trace_scenario(args: argparse.Namespace) -> tuple[Scenario, Loaded | None]:
    """The scenario to trace, and the source when the command line named one (read once)."""
    from p2pview.iosim import DmaMode, quick_scenario, read_scenario
    from p2pview.iosim.scenario import MAX_BUFFER
    from p2pview.sources import load_source
    from p2pview.sources.bundled import bundled_scenario_path

    quick = args.provider or args.client or args.size
    if quick:
        if not (args.provider and args.client and args.size):
            raise CliError("trace SOURCE needs --provider, --client and --size together")
        loaded = load_source(args.scenario)
        topo = loaded.topology
        try:
            provider, client = topo.resolve(args.provider), topo.resolve(args.client)
        except KeyError as exc:
            raise CliError(f"{args.scenario}: {exc.args[0] if exc.args else exc}") from None
        size = _trace_number("--size", args.size, 1)
        offset = _trace_number("--offset", args.offset, 0)
        if offset + size > MAX_BUFFER:
            raise CliError(
                f"--offset + --size: {offset + size:,} bytes; p2pview simulates buffers up to 4 GiB"
            )
        scenario = quick_scenario(
            args.scenario, provider, client, size, offset=offset, write=args.write,
            iommu=args.iommu or None, kernel=_trace_kernel(args), cpu=args.cpu,
            cmdline=args.cmdline,
        )  # fmt: skip
        return scenario, loaded
    path = Path(args.scenario)
    if not path.is_file():
        bundled = bundled_scenario_path(args.scenario)
        if bundled is None:
            raise CliError(
                f"{args.scenario}: not a scenario file or bundled scenario (see 'p2pview"
                " scenarios'); to trace a topology give --provider, --client and --size"
            )
        path = bundled
    scenario = read_scenario(path)
    changes: dict[str, Any] = {}
    if args.kernel:
        changes["kernel"] = _trace_kernel(args)
    if args.cpu:
        changes["cpu"] = args.cpu
    if args.cmdline is not None:
        changes["cmdline"] = args.cmdline
    if args.iommu:
        changes["dma"] = DmaMode.IOMMU
        changes["dma_given"] = True
    if args.write:
        changes["write"] = True
    return (scenario.replace(**changes) if changes else scenario), None


def _trace_number(option: str, text: str, low: int) -> int:
    """A ``--size``/``--offset`` value: a number (``128K``, ``1M``) of at least ``low``."""
    from p2pview.sources.checks import parse_int

    try:
        value = parse_int(text, sizes=True)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from None
    if value < low:
        need = "positive" if low > 0 else "zero or more"
        raise CliError(f"{option} {value}: must be {need}")
    return value


def _trace_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview trace``'s arguments."""
    p.add_argument(
        "scenario",
        metavar="SCENARIO|SOURCE",
        help="a scenario file or bundled scenario name ('p2pview scenarios'); with --provider,"
        " --client and --size, any SOURCE",
    )
    p.add_argument("--provider", metavar="BDF", help="whose p2pmem the buffer is mmap'd from")
    p.add_argument("--client", metavar="BDF", help="the NVMe function whose namespace is read")
    p.add_argument("--size", metavar="N", help="bytes of the I/O (128K, 1M, 1G accepted)")
    p.add_argument("--offset", metavar="N", default="0", help="where in the buffer the I/O starts")
    p.add_argument("--write", action="store_true", help="pwrite from the buffer instead of pread")
    p.add_argument(
        "--iommu",
        action="store_true",
        help="DMA through the IOMMU (dma-iommu), with the ACS an IOMMU driver enables",
    )
    p.add_argument("--kernel", metavar="X.Y", help="release (6.2+; 5.17-series for the v5 series)")
    p.add_argument("--cpu", metavar="VENDOR:FAMILY", help="replace the CPU (as for matrix)")
    p.add_argument("--cmdline", metavar="STRING", help="replace the kernel command line")
    p.add_argument("--json", action="store_true", help="the full event list and every scatterlist")


@command(
    "trace",
    _trace_arguments,
    help="step one O_DIRECT I/O through GUP, bios, map_sg and DMA",
    epilog=EXIT_STATUS_HELP,
    formatter_class=argparse.RawDescriptionHelpFormatter,
)
def cmd_trace(args: argparse.Namespace) -> int:
    """``p2pview trace``; the exit status says how the I/O ended (:data:`EXIT_STATUS_HELP`)."""
    from dataclasses import replace

    from p2pview.iosim import DmaMode, simulate, trace_document
    from p2pview.iosim.scenario import check_client
    from p2pview.session import EngineConfig, session_for
    from p2pview.sources import load_source

    scenario, loaded = _trace_scenario(args)
    config = EngineConfig.parse(
        cpu=scenario.cpu,
        cmdline=scenario.cmdline,
        iommu="on" if scenario.dma is DmaMode.IOMMU else None,
    )
    if scenario.kernel is not None:
        config = replace(config, kernel=scenario.kernel.target)
    session = session_for(loaded if loaded is not None else load_source(scenario.source), config)
    check_client(scenario, session.topology)
    trace = simulate(scenario, session.topology, session.state)
    if args.json:
        _print_json(trace_document(trace))
    else:
        from p2pview.views.trace_view import trace_view

        _print(trace_view(trace))
    result = trace.result
    if result.outcome == "ok":
        return 0
    # The buffer's open() or mmap() failed: the read or write was never issued.
    return EXIT_IO_NOT_RUN if result.stage == "mmap" else EXIT_IO_FAILED


@command("scenarios", help="list the bundled O_DIRECT scenarios")
def cmd_scenarios(args: argparse.Namespace) -> int:
    """``p2pview scenarios``."""
    from rich.table import Table

    from p2pview.iosim.scenario import read_scenario
    from p2pview.sources.bundled import bundled_scenarios

    table = Table(title="Bundled O_DIRECT scenarios (p2pview trace NAME)")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("topology", no_wrap=True)
    table.add_column("what it shows")
    for name, path in bundled_scenarios():
        sc = read_scenario(path)
        first = sc.description.strip().splitlines()[0] if sc.description.strip() else ""
        table.add_row(name, Path(sc.source).stem, first)
    _print(table)
    return 0


def _topologies_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview topologies``'s arguments."""
    p.add_argument("--json", action="store_true", help="print JSON")


@command("topologies", _topologies_arguments, help="list the bundled topologies")
def cmd_topologies(args: argparse.Namespace) -> int:
    """``p2pview topologies``."""
    from p2pview.sources.bundled import bundled_topologies

    items = bundled_topologies()
    if args.json:
        _print_json([{"name": t.name, "title": t.title, "path": str(t.path)} for t in items])
        return 0
    from rich.table import Table

    table = Table(title="Bundled topologies (use the name as SOURCE)", show_lines=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("what it imitates and shows")
    for t in items:
        table.add_row(t.name, t.title)
    _print(table)
    return 0


def _convert_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview convert``'s arguments."""
    _add_source(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="output file (.toml; .json for JSON; .graphml or .gexf for the tree as a graph"
        " for yEd, Cytoscape or Gephi); - for stdout",
    )
    p.add_argument(
        "--to",
        choices=CONVERT_FORMATS,
        help="output format; default: from the file name's extension, else toml",
    )


#: What ``convert`` writes: p2pview's own topology files, and the tree as a graph.
CONVERT_FORMATS = ("toml", "json", "graphml", "gexf")


@command(
    "convert",
    _convert_arguments,
    help="write any SOURCE as a p2pview topology file, or its tree as GraphML/GEXF",
)
def cmd_convert(args: argparse.Namespace) -> int:
    """``p2pview convert SOURCE -o FILE``."""
    from p2pview.sources import load_source, to_json, to_toml

    loaded = load_source(args.source, args.input_format)
    suffix = Path(str(args.output)).suffix.lstrip(".").lower()
    fmt = args.to or (suffix if suffix in CONVERT_FORMATS else "toml")
    topo = loaded.topology
    if fmt in ("graphml", "gexf"):
        from p2pview.sources.graphwrite import to_graph_file

        data = to_graph_file(topo, "graphml" if fmt == "graphml" else "gexf")
    else:
        header = f"Written by p2pview {__version__} convert from {args.source}"
        data = (to_json(topo) if fmt == "json" else to_toml(topo, header)).encode()
    if args.output == "-":
        sys.stdout.write(data.decode("utf-8"))
    else:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            raise CliError(f"{args.output}: {exc.strerror or exc}") from None
    return 0


def _capture_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview capture``'s arguments."""
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="default: p2pview-capture-HOST-DATE.tar.gz in the current directory",
    )
    p.add_argument(
        "--root",
        metavar="DIR",
        default="/",
        help="capture a gathered tree under DIR instead of this host",
    )


@command(
    "capture",
    _capture_arguments,
    help="pack this host's PCI tree (sysfs, cpuinfo, cmdline) into a .tar.gz",
)
def cmd_capture(args: argparse.Namespace) -> int:
    """``p2pview capture``."""
    import socket
    import time

    from rich.text import Text

    from p2pview.sources.capture import Interrupted, interruptible, write_capture
    from p2pview.sources.sysfs import is_sysfs_root

    root = Path(args.root)
    if not is_sysfs_root(root):
        raise CliError(f"{root}: no sys/bus/pci/devices or sys/devices to capture")
    out = Path(args.output) if args.output else None
    if out is None:
        host = (socket.gethostname() or "host").replace("/", "_")
        out = Path(f"p2pview-capture-{host}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    try:
        with interruptible():
            manifest = write_capture(out, root)
    except Interrupted as exc:
        print(f"p2pview: capture stopped by {exc}; {out} not written", file=sys.stderr)
        return 128 + exc.signum
    _print(
        Text(
            f"Wrote {out}: {manifest.functions} PCI functions, kernel {manifest.kernel or '?'},"
            f" host {manifest.hostname or '?'}."
        )
    )
    if not manifest.root:
        _print(
            Text(
                "Not run as root: config space beyond 64 bytes was not readable, so ACS and"
                " port types are missing from this capture. Run 'sudo p2pview capture' for a"
                " complete one.",
                style="event.warn",
            )
        )
    _print(Text(f"Load it anywhere with: p2pview matrix {out}"))
    return 0


@command("formats", help="list the file formats p2pview reads")
def cmd_formats(args: argparse.Namespace) -> int:
    """``p2pview formats``."""
    from rich.table import Table
    from rich.text import Text

    from p2pview.sources.formats import FORMATS

    table = Table(title="File formats (detected from the content; --format NAME forces one)")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("what")
    table.add_row(
        "sysfs",
        "a directory holding sys/bus/pci/devices (and proc/), or a .tar.gz /"
        " .tar.bz2 / .tar.xz of one: live captures, hwloc-gather-topology",
    )
    for fmt in FORMATS:
        table.add_row(fmt.name, fmt.description)
    _print(table)
    _print(
        Text(
            "Besides files: a bundled topology by name ('p2pview topologies'), / for this host,"
            " and generated:N[:SEED], a generated topology of N functions (1 to 1,048,576) with"
            " host bridges, Root Ports, switches (some with ACS), NVMe with CMBs, GPUs and NICs;"
            " SEED (default 0) picks the layout. For trying p2pview at scale, e.g."
            " 'p2pview matrix generated:2000'."
        )
    )
    return 0


def _profiles_arguments(p: argparse.ArgumentParser) -> None:
    """``p2pview profiles``'s arguments."""
    p.add_argument("--json", action="store_true", help="print JSON")


@command("profiles", _profiles_arguments, help="list the kernel eras p2pview models")
def cmd_profiles(args: argparse.Namespace) -> int:
    """``p2pview profiles``."""
    from p2pview.kernel.profiles import PROFILES

    if args.json:
        _print_json(
            [
                {
                    "key": p.key,
                    "title": p.title,
                    "int_distance": p.int_distance,
                    "host_bridge_dev": None
                    if p.host_bridge_dev is None
                    else p.host_bridge_dev.value,
                    "cpu_check": p.cpu_check,
                    "whitelist_warning": p.whitelist_warning,
                    "acs_list_size": p.acs_list_size,
                    "sources": p.sources,
                    "caveats": list(p.caveats),
                }
                for p in PROFILES
            ]
        )
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Kernel eras modelled (--kernel X.Y picks the era holding X.Y)",
        caption="What each era rests on, and what is only inferred: docs/kernel-model.md",
    )
    for col in ("era", "result", "whitelist device", "AMD Zen CPU check", "source"):
        table.add_column(col)
    for p in PROFILES:
        table.add_row(
            Text(p.title, style="bold"),
            "int distance" if p.int_distance else "map type + dist",
            "-"
            if p.host_bridge_dev is None or (p.int_distance and not p.amd_penalty)
            else p.host_bridge_dev.value,
            "yes" if p.cpu_check else "no",
            p.sources,
        )
    _print(table)
    return 0


def _qemu(name: str) -> Callable[[argparse.Namespace], int]:
    """A command of :mod:`p2pview.qemu.commands`, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        from p2pview.qemu import commands

        return commands.COMMANDS[name](args)

    run.__doc__ = f"``p2pview {name}`` (:mod:`p2pview.qemu.commands`)."
    return run


def is_user_error(exc: BaseException) -> bool:
    """``exc`` is an error p2pview raised on purpose, to be reported in one line (not a bug).

    Every such error derives from :class:`p2pview.model.errors.P2pviewError`
    (bad input, or a tool that failed), or is this module's :class:`CliError`.
    The class is looked up in ``sys.modules``, so that ``--version`` does not
    import the model just to be ready for it: if the module was never imported,
    no such error was raised.
    """
    if isinstance(exc, CliError):
        return True
    errors = sys.modules.get("p2pview.model.errors")
    return errors is not None and isinstance(exc, errors.P2pviewError)


def looks_like_source(word: str) -> bool:
    """``word`` may be a SOURCE (a path, ``/``, ``generated:N``, a bundled name), not a command."""
    if "/" in word or "." in word or ":" in word or Path(word).exists():
        return True
    from p2pview.sources.bundled import bundled_path

    return bundled_path(word) is not None


def unknown_command(word: str) -> str:
    """The error for a first word that is neither a command nor a source."""
    import difflib

    close = difflib.get_close_matches(word, command_names(), n=1, cutoff=0.6)
    hint = f" (did you mean 'p2pview {close[0]}'?)" if close else ""
    return (
        f"unknown command '{word}'{hint}; commands: {', '.join(command_names())}."
        " Or a SOURCE: a file, a directory, '/', generated:N or a bundled topology"
        " (p2pview topologies)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``p2pview`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = args_list[0] if args_list else "-"
    names = command_names()
    if not first.startswith("-") and first not in names and not looks_like_source(first):
        print(f"p2pview: error: {unknown_command(first)}", file=sys.stderr)
        return EXIT_USAGE
    if not args_list or (
        args_list[0] not in names and args_list[0] not in ("-h", "--help", "--version")
    ):
        args_list = ["tui", *args_list]  # plain 'p2pview [SOURCE] [options]'
    try:
        parser = build_parser(qemu=args_list[0] in (*QEMU_COMMANDS, "-h", "--help"))
        args = parser.parse_args(args_list)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if args.command in QEMU_COMMANDS:
            return _qemu(args.command)(args)
        return COMMANDS[args.command].run(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"p2pview: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
