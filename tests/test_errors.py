"""One error hierarchy: what a user's input causes is an InputError; a bug is shown as one."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import subprocess
import sys

import pytest

import p2pview
from p2pview.cli import main
from p2pview.model.errors import InputError, P2pviewError, ToolError
from p2pview.tui.failures import failure_text, report_bugs

#: Exception classes that are internal signals between a reader's parts, caught
#: there and never shown to a user (with their subclasses).
INTERNAL = {
    "p2pview.sources.tree.Dangling",
    "p2pview.sources.tree.Unreadable",
    "p2pview.sources.capture.Interrupted",
    "p2pview.sources.archive._LimitReached",
}


#: The errors that are a tool's or the environment's failure, not bad input.
TOOL = {
    "p2pview.model.errors.ToolError",
    "p2pview.qemu.initramfs.GuestBuildError",
    "p2pview.qemu.nvmetrace.TraceError",
    "p2pview.qemu.verify.VerifyError",
    "p2pview.qemu.verify.JobError",
    "p2pview.qemu.ioscenarios.IoCheckError",
}


def _internal(cls: type[BaseException]) -> bool:
    return any(f"{c.__module__}.{c.__name__}" in INTERNAL for c in cls.__mro__)


def _error_classes() -> list[tuple[str, type[BaseException]]]:
    found = []
    for info in pkgutil.walk_packages(p2pview.__path__, "p2pview."):
        if info.name.startswith("p2pview.tui") or info.name.endswith("__main__"):
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


def test_every_error_p2pview_raises_is_bad_input_or_a_tools_failure() -> None:
    classes = dict(_error_classes())
    assert len(classes) >= 16 and classes.keys() >= TOOL
    for name, cls in classes.items():
        if name in ("p2pview.cli.CliError", "p2pview.model.errors.P2pviewError"):
            continue  # the CLI's own, kept off the model's import for --version
        assert issubclass(cls, P2pviewError), name
        family = ToolError if name in TOOL else InputError
        assert issubclass(cls, family), name
        assert not issubclass(cls, InputError if name in TOOL else ToolError), name


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


def _bzimage(tmp_path, release: bytes) -> str:
    """A kernel image whose setup header carries ``release`` (as tests/test_qemu_image.py)."""
    data = bytearray(0x4000)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = (0x3A0).to_bytes(2, "little")
    data[0x5A0 : 0x5A0 + len(release) + 1] = release + b"\0"
    image = tmp_path / "bzImage"
    image.write_bytes(bytes(data))
    return str(image)


def _verify(tmp_path, release: bytes, *more: str) -> list[str]:
    return ["verify", "switch-nvme", "--kernel", _bzimage(tmp_path, release),
            "--qemu", sys.executable, *more]  # fmt: skip


def _one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("p2pview: error: ") and captured.err.count("\n") == 1
    return captured.err


def test_the_qemu_commands_report_bad_input_in_one_line(tmp_path, capsys) -> None:
    # MachineError: an option QEMU's machine cannot take
    err = _one_line(capsys, ["qemu", "switch-nvme", "--cmb-mb", "0"])
    assert err == "p2pview: error: --cmb-mb 0: expected 1 to 4096 MiB\n"
    # ImageError: --kernel is not a kernel
    (tmp_path / "junk").write_bytes(b"not a kernel at all")
    argv = ["verify", "switch-nvme", "--kernel", str(tmp_path / "junk"), "--qemu", sys.executable]
    err = _one_line(capsys, argv)
    assert err.startswith(f"p2pview: error: {tmp_path / 'junk'}: ")
    # VersionError: a release before P2PDMA, refused before anything is built
    err = _one_line(capsys, _verify(tmp_path, b"4.19.300 (root@vm) #1 SMP"))
    assert "4.19.300" in err and "v4.20" in err
    # the same through --io, and a SOURCE that is neither a topology nor a scenario
    argv = _verify(tmp_path, b"6.12.117 (root@vm) #1", "--io")
    argv[1] = "no-such-source"
    err = _one_line(capsys, argv)
    assert err.startswith("p2pview: error: no-such-source")


def test_the_qemu_commands_report_a_tools_failure_in_one_line(tmp_path, capsys, monkeypatch):
    # GuestBuildError: a kernel build tree without Module.symvers
    (tmp_path / "build").mkdir()
    argv = _verify(tmp_path, b"6.12.117 (root@vm) #1", "--kernel-build", str(tmp_path / "build"))
    err = _one_line(capsys, argv)
    assert err.startswith(f"p2pview: error: {tmp_path / 'build'}: no Module.symvers")
    # GuestBuildError through --io: no static busybox for the guest
    from p2pview.qemu import initramfs

    monkeypatch.setattr(initramfs, "BUSYBOX_PATHS", (str(tmp_path / "no-busybox"),))
    monkeypatch.setenv("P2PVIEW_CACHE", str(tmp_path / "cache"))
    err = _one_line(capsys, [*_verify(tmp_path, b"6.12.117 (root@vm) #1"), "--io"])
    assert err == "p2pview: error: no static busybox: apt-get install busybox-static\n"


@pytest.mark.parametrize("family", ["input", "tool"])
def test_python_m_p2pview_qemu_reports_errors_as_p2pview_does(tmp_path, family) -> None:
    """CI runs the oracle through ``python -m p2pview.qemu``: the same line and status."""
    image = _bzimage(tmp_path, b"4.19.300 (root@vm) #1" if family == "input" else b"7.2.13 (x) #1")
    (tmp_path / "build").mkdir()
    argv = ["verify", "switch-nvme", "--kernel", image, "--qemu", sys.executable,
            "--kernel-build", str(tmp_path / "build")]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "p2pview.qemu", *argv], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("p2pview: error: ") and proc.stderr.count("\n") == 1
    assert ("v4.20" if family == "input" else "no Module.symvers") in proc.stderr
