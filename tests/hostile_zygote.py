"""Runs hostile-input cases in forked children: each within a time and a memory cap.

Started once per test session by ``tests/hostile.py``; it imports p2pview once,
then reads one JSON request per line on stdin and answers one JSON line on
stdout. For each request it forks a child that:

* caps its address space (``RLIMIT_AS``) and CPU time, sends stdout and stderr
  to the files named in the request, works in ``cwd`` with ``TMPDIR`` pointing
  at an empty directory, optionally drops root for ``uid``;
* runs ``p2pview`` with ``argv`` (or, for ``probe``, loads a SOURCE and prints
  what the reader made of it as JSON);
* reports ``/proc/self/comm`` before and after, so that a write through
  ``/proc/self`` would show.

The zygote waits for the child for at most ``timeout`` seconds (killing it
after that) and answers with the exit status, the time taken, and the child's
peak RSS.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.resources
import io
import json
import os
import pkgutil
import resource
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

os.environ.setdefault("P2PVIEW_PCI_IDS", "bundled")

import p2pview
from p2pview import cli
from p2pview.sources import SourceError, archive, capture, load_source

#: Not preloaded: the Textual faces (no case runs them) and the entry point.
_NOT_PRELOADED = ("p2pview.tui", "p2pview.screenshots", "p2pview.__main__")


def _preload(path: list[str], prefix: str) -> None:
    """Import every p2pview module a case may use, before any case runs.

    p2pview imports most modules where they are first used (for start-up
    time); a case must not be the first: dropped to nobody it may not be able
    to read the interpreter's own modules, and under its caps an import is
    not what is being tested.
    """
    for info in pkgutil.iter_modules(path, prefix):
        if info.name.startswith(_NOT_PRELOADED):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg:
            _preload(list(module.__path__), f"{info.name}.")


_preload(list(p2pview.__path__), "p2pview.")
importlib.resources.files("p2pview").joinpath("data")  # the resource reader, first use


def _comm() -> str:
    with open("/proc/self/comm") as fh:
        return fh.read().strip()


def _probe(source: str) -> int:
    """Load ``source`` and print what the reader made of it."""
    try:
        loaded = load_source(source)
    except SourceError as exc:
        print(f"p2pview: error: {exc}", file=sys.stderr)
        return 2
    topo = loaded.topology
    doc: dict[str, Any] = {
        "problems": loaded.report.problems,
        "vanished": loaded.report.vanished,
        "platform": {
            "cpu_vendor": topo.platform.cpu_vendor,
            "cpu_fact": topo.platform.facts.cpu.to_text(),
            "cmdline_fact": topo.platform.facts.cmdline.to_text(),
            "kernel": topo.platform.kernel,
        },
        "devices": [
            {
                "bdf": str(d.bdf),
                "vendor": d.vendor,
                "device": d.device,
                "class": d.class_code,
                "notes": list(d.notes),
                "ids_fact": d.fact("ids").to_text(),
                "acs_fact": d.fact("acs").to_text(),
                "bars": [[b.index, b.start, b.size] for b in d.bars],
                "p2pmem": None if d.p2pmem is None else [d.p2pmem.size, d.p2pmem.available],
                "link": [d.link.speed, d.link.width],
            }
            for d in topo.devices
        ],
    }
    print(json.dumps(doc))
    return 0


def _child(req: dict[str, Any]) -> None:
    """The forked child: set the caps, run the case, exit with its status."""
    try:
        memory = int(req["memory"])
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(req["timeout"]) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        # Opened before any privilege is dropped (the case may run as nobody).
        report = open(req["report"], "w")  # noqa: SIM115 - written at the very end
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "wb", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "wb", closefd=False), write_through=True)
        os.environ["TMPDIR"] = req["tmpdir"]
        tempfile.tempdir = req["tmpdir"]
        os.chdir(req["cwd"])
        if req.get("limits"):
            archive.LIMITS = dataclasses.replace(archive.LIMITS, **req["limits"])
        if req.get("sigterm_after_files"):
            _arm_sigterm(int(req["sigterm_after_files"]))
        if req.get("uid") is not None:
            os.setgroups([])
            os.setgid(int(req["uid"]))
            os.setuid(int(req["uid"]))
        before = _comm()
        probe = req.get("probe")
        code = _probe(probe) if probe is not None else cli.main(req["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
        after = _comm()
        with report:
            json.dump({"comm_before": before, "comm_after": after}, report)
        os._exit(code if isinstance(code, int) else 1)
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(99)


def _arm_sigterm(after: int) -> None:
    """Make the capture writer send this process SIGTERM after ``after`` files."""
    original = capture._Writer.file
    count = {"n": 0}

    def file(self: capture._Writer, rel: str, kind: Any) -> bool:
        count["n"] += 1
        if count["n"] == after:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, rel, kind)

    capture._Writer.file = file  # type: ignore[method-assign]


def _run(req: dict[str, Any]) -> dict[str, Any]:
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(req)
    deadline = start + float(req["timeout"])
    timed_out = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            done, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    return {
        "seconds": time.monotonic() - start,
        "timed_out": timed_out,
        "code": os.waitstatus_to_exitcode(status),
        "maxrss_kb": usage.ru_maxrss,
    }


def main() -> None:
    """Answer requests until stdin closes."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    print(json.dumps({"ready": True, "rss_kb": base, "vmsize_kb": vm}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
