"""One error hierarchy: what a user's input causes is an InputError; a bug is shown as one."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil

import p2pview
from p2pview.cli import main
from p2pview.model.errors import InputError, P2pviewError
from p2pview.tui.failures import failure_text, report_bugs

#: Exception classes that are internal signals between a reader's parts, caught
#: there and never shown to a user (with their subclasses).
INTERNAL = {
    "p2pview.sources.tree.Dangling",
    "p2pview.sources.tree.Unreadable",
    "p2pview.sources.capture.Interrupted",
    "p2pview.sources.archive._LimitReached",
}


def _internal(cls: type[BaseException]) -> bool:
    return any(f"{c.__module__}.{c.__name__}" in INTERNAL for c in cls.__mro__)


def _error_classes() -> list[tuple[str, type[BaseException]]]:
    found = []
    for info in pkgutil.walk_packages(p2pview.__path__, "p2pview."):
        if info.name.startswith(("p2pview.tui", "p2pview.qemu", "p2pview.__main__")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not _internal(obj)
            ):
                found.append((f"{info.name}.{name}", obj))
    return found


def test_every_error_p2pview_raises_for_input_is_an_input_error() -> None:
    classes = _error_classes()
    assert len(classes) >= 8
    for name, cls in classes:
        if name in ("p2pview.cli.CliError", "p2pview.model.errors.P2pviewError"):
            continue  # the CLI's own, kept off the model's import for --version
        assert issubclass(cls, InputError), name
        assert issubclass(cls, P2pviewError), name


def test_an_input_error_is_one_line_and_a_bug_says_it_is_one() -> None:
    line = "topo.toml: device[2].bdf: bad"
    assert failure_text(InputError(line)) == line
    assert failure_text(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "/x: No such file or directory"
    )
    try:
        {}["missing"]
    except KeyError as exc:
        line = failure_text(exc)
    assert line.startswith("a bug in p2pview (KeyError: 'missing')")
    out = io.StringIO()
    assert report_bugs(out) == 1
    assert "Traceback" in out.getvalue() and "KeyError" in out.getvalue()
    assert report_bugs(io.StringIO()) == 0


def test_the_cli_reports_input_errors_in_one_line(capsys) -> None:
    assert main(["explain", "switch-nvme", "0000:99:00.0", "0000:1a:00.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2pview: error: ") and err.count("\n") == 1
