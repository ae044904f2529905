"""``p2pview qemu`` and ``p2pview verify``: parsers and command functions (plain text output).

Wired into :mod:`p2pview.cli` with ``add_parsers(sub)`` in ``build_parser()``
(and run by ``python -m p2pview.qemu``). The functions raise what they cannot
do as a :class:`~p2pview.model.errors.P2pviewError` (bad input, or a tool
that failed); the caller reports it in one line with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from p2pview.kernel import KernelTarget
from p2pview.qemu.initramfs import build_initramfs, build_module
from p2pview.qemu.iocheck import QEMU_MDTS, IoBoot, run_all
from p2pview.qemu.machine import DISK_BYTES, ORACLE_KERNEL, Machine, build_machine
from p2pview.qemu.record import record_io_results, record_results
from p2pview.qemu.verify import (
    Job,
    JobError,
    PairResult,
    VerifyResult,
    image_target,
    run_jobs,
)
from p2pview.sources import load_source

#: Exit status for usage and input errors (as p2pview.cli).
EXIT_USAGE = 2


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``qemu`` and ``verify`` sub-commands."""
    p = sub.add_parser("qemu", help="a QEMU q35 command line reproducing SOURCE, and what differs")
    p.add_argument("source", metavar="SOURCE", help="topology file, capture or bundled name")
    p.add_argument(
        "--cpu",
        metavar="MODEL",
        help="QEMU -cpu model (default: EPYC for AMD Zen SOURCEs, else qemu64)",
    )
    p.add_argument(
        "--cmb-mb", type=int, default=16, metavar="N", help="CMB size of each provider NVMe (16)"
    )
    p.add_argument(
        "--kernel-cmdline", default="", metavar="ARGS", help="more guest kernel parameters"
    )
    p.add_argument(
        "--kernel",
        default=ORACLE_KERNEL,
        metavar="RELEASE",
        help=f"kernel release both sides are judged by ({ORACLE_KERNEL}, the oracle kernel)",
    )
    p.add_argument("-o", "--output", metavar="DIR", help="write DIR/run.sh and the disk images")
    _add_dsp_acs(p)

    p = sub.add_parser(
        "verify", help="boot SOURCE's QEMU machine and check p2pview against its kernel"
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="one or more SOURCEs")
    p.add_argument(
        "--kernel",
        required=True,
        metavar="IMAGE",
        help="bzImage or vmlinux (PVH) to boot; its release (read from the image) picks the era",
    )
    p.add_argument("--qemu", default="qemu-system-x86_64", metavar="BINARY")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="guests booted in parallel")
    p.add_argument(
        "--cpu",
        action="append",
        metavar="MODEL",
        help="QEMU -cpu model; repeat to check several (default: as 'p2pview qemu')",
    )
    p.add_argument(
        "--kernel-build",
        metavar="DIR",
        help="kernel build tree: adds the p2pdist module (distances for every pair);"
        " default: IMAGE's sibling build/ if it has Module.symvers",
    )
    p.add_argument(
        "--kernel-cmdline", default="", metavar="ARGS", help="more guest kernel parameters"
    )
    p.add_argument("--timeout", type=float, default=600, metavar="S", help="per boot (600)")
    _add_dsp_acs(p)
    p.add_argument(
        "--record",
        metavar="FILE",
        help="add the results to FILE (JSON; machines of the same kernel, CPU, QEMU and"
        " SOURCE are replaced): what tools/verification-table.py turns into README's table",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print every pair, not only disagreements"
    )
    p.add_argument(
        "--io",
        action="store_true",
        help="instead: run O_DIRECT scenarios in the guest and check QEMU's NVMe trace"
        " (commands, PRP/SGL, addresses), the queue limits, bytes and errno against"
        " 'p2pview trace' (SOURCE: a topology, whose generated scenarios run, or a bundled"
        " scenario or scenario file); -cpu qemu64, no IOMMU",
    )
    p.add_argument(
        "--iommu",
        action="store_true",
        help="with --io: QEMU's intel-iommu translates the guest's DMA (needs a kernel with"
        " CONFIG_INTEL_IOMMU, as tools/oracle-kernel/build.sh builds)",
    )
    p.add_argument(
        "--mdts",
        type=int,
        action="append",
        metavar="N",
        help="with --io: QEMU's nvme mdts (7, QEMU's default; 0: no limit); repeat to boot"
        " each machine once per value",
    )


def _add_dsp_acs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dsp-acs",
        action="store_true",
        help="the QEMU has ACS on switch downstream ports (tools/qemu-acs/build.sh builds one;"
        " Debian's 7.2 has none and refuses the machine): reproduce their ACS Control too",
    )


def _machine(args: argparse.Namespace) -> Machine:
    loaded = load_source(args.source)
    return build_machine(
        loaded.topology,
        cpu=args.cpu,
        cmb_mb=args.cmb_mb,
        kernel=KernelTarget.parse(args.kernel),
        extra_cmdline=args.kernel_cmdline,
        dsp_acs=args.dsp_acs,
    )


def describe(machine: Machine, command: str) -> str:
    """The text ``p2pview qemu`` prints."""
    src = machine.source
    out = [
        f"# QEMU machine for {src.name or src.source}"
        f" (-cpu {machine.cpu}, kernel {machine.kernel.version})"
    ]
    out.append(command)
    out.append("")
    out.append("BDF map (SOURCE -> guest):")
    for s, g in sorted(machine.bdf_map.items()):
        dev = machine.guest[g]
        mark = "" if s == g else "   (renumbered)"
        out.append(f"  {s} -> {g}  {dev.ids}{mark}")
    left_out = [d.bdf for d in src.devices if d.bdf not in machine.bdf_map]
    for b in left_out:
        out.append(f"  {b} -> -")
    out.append("")
    out.append("Differences from SOURCE:")
    for d in machine.differences:
        out.append(f"  [{d.kind}] {d.text}")
    if not machine.differences:
        out.append("  none")
    out.append("")
    n = len(machine.changes)
    out.append(
        f"Verdicts that change ({n} of {machine.pairs_compared} provider/client pairs;"
        " SOURCE -> guest):"
    )
    for c in machine.changes:
        guest = (
            ""
            if (c.provider, c.client) == (c.guest_provider, c.guest_client)
            else (f"  [guest {c.guest_provider.short()} -> {c.guest_client.short()}]")
        )
        out.append(
            f"  {c.provider.short()} -> {c.client.short()}: {c.source[0]} {c.source[1]}"
            f" -> {c.guest[0]} {c.guest[1]}{guest}"
        )
    if not n:
        out.append("  none")
    return "\n".join(out) + "\n"


def _write_dir(machine: Machine, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name in machine.drives:
        with open(out / name, "wb") as fh:
            fh.truncate(DISK_BYTES)
    args = machine.qemu_args(kernel="$KERNEL", disk_dir="$HERE", qemu="$QEMU")
    quoted = []
    for a in args:
        if a.startswith("$"):
            quoted.append(f'"{a}"')
        elif "$HERE" in a:
            quoted.append('"' + a.replace('"', '\\"') + '"')
        else:
            quoted.append(shlex.quote(a))
    # One "-option value" per line; -initrd only when INITRD is set; EXTRA extends -append.
    lines: list[str] = []
    for arg in quoted:
        if lines and lines[-1].startswith("-") and " " not in lines[-1] and not arg.startswith("-"):
            lines[-1] += " " + arg
        else:
            lines.append(arg)
    body = " \\\n    ".join(lines)
    body = body.replace(
        f"-append {shlex.quote(machine.cmdline)}", f'-append "{machine.cmdline} $EXTRA"'
    )
    script = out / "run.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"# QEMU machine reproducing {machine.source.name or machine.source.source}"
        " (written by 'p2pview qemu').\n"
        "# Usage: KERNEL=bzImage [INITRD=initrd.gz] [QEMU=qemu-system-x86_64]"
        " [EXTRA='...'] ./run.sh\n"
        + (
            "# --dsp-acs: QEMU must be the one tools/qemu-acs/build.sh prints"
            " (ACS on xio3130-downstream).\n"
            if machine.dsp_acs
            else ""
        )
        + "set -eu\n"
        'HERE=$(cd "$(dirname "$0")" && pwd)\n'
        ': "${KERNEL:?set KERNEL to a bzImage with CONFIG_PCI_P2PDMA}"\n'
        "QEMU=${QEMU:-qemu-system-x86_64}\n"
        "EXTRA=${EXTRA:-}\n"
        'if [ -n "${INITRD:-}" ]; then set -- -initrd "$INITRD"; else set --; fi\n'
        f'exec {body} \\\n    "$@"\n'
    )
    script.chmod(0o755)
    return script


def cmd_qemu(args: argparse.Namespace) -> int:
    """``p2pview qemu SOURCE``."""
    machine = _machine(args)
    sys.stdout.write(describe(machine, machine.command_line()))
    if args.output:
        script = _write_dir(machine, Path(args.output))
        print(f"\nWrote {script} and {len(machine.drives)} disk image(s); run: KERNEL=... {script}")
    return 0


def _module_dir(args: argparse.Namespace, image: Path) -> Path | None:
    if args.kernel_build:
        return Path(args.kernel_build)
    sibling = image.parent / "build"
    return sibling if (sibling / "Module.symvers").is_file() else None


def _cell(v: tuple[str, int] | None) -> str:
    return "-" if v is None else f"{v[0]} {v[1]}"


def _kernel_cell(p: PairResult) -> str:
    kmap = (
        p.kernel_map or {True: "supported", False: "NOT_SUPPORTED", None: "?"}[p.kernel_supported]
    )
    dist = "" if p.kernel_dist is None else f" {p.kernel_dist}"
    return f"{kmap}{dist}"


def _dio_cell(p: PairResult) -> str:
    parts = []
    for check in p.dio_checks:
        mark = "" if check.agrees else f" (p2pview: {check.expected or '?'})"
        parts.append(f"{check.way} {check.outcome}{mark}")
    return ", ".join(parts) or "-"


def report(result: VerifyResult, verbose: bool) -> str:
    """One boot's table."""
    qemu = ", --dsp-acs" if result.dsp_acs else ""
    out = [
        f"== {result.name} -cpu {result.cpu}{qemu}: kernel {result.release}"
        f" ({result.profile} profile), {result.method}, {len(result.pairs)} pairs,"
        f" {result.seconds:.1f} s"
    ]
    for note in result.notes:
        out.append(f"   note: {note}")
    for bdf, files in sorted(result.p2pmem_files.items())[:1]:
        if "allocate" not in files:
            out.append(
                f"   note: {bdf} p2pmem/ holds {', '.join(files) or 'nothing'}: no allocate file,"
                " so user space cannot map P2P memory for O_DIRECT"
            )
    rows = result.pairs if verbose else result.disagreements
    if rows:
        out.append(
            f"   {'provider':<13} {'client':<13} {'kernel':<22} {'p2pview':<22}"
            f" {'predicted':<22} {'O_DIRECT (guest)':<30} agree"
        )
    for p in rows:
        ok = "yes" if p.ok else "NO"
        out.append(
            f"   {p.provider.short():<13} {p.client.short():<13} {_kernel_cell(p):<22}"
            f" {_cell(p.engine):<22} {_cell(p.predicted):<22} {_dio_cell(p):<30} {ok}"
        )
        if not p.messages_agree:
            out.extend(f"      kernel:  {line}" for line in p.kernel_messages or ())
            out.extend(f"      p2pview: {line}" for line in p.engine_messages)
    bad = len(result.disagreements)
    verdict = f"{bad} disagreement(s)" if bad else ("all agree" if result.pairs else "no pairs")
    seen = [p for p in result.pairs if p.kernel_messages is not None]
    if seen:
        verdict += f"; messages {sum(p.messages_agree for p in seen)} of {len(seen)} as predicted"
    dio = [d for p in result.pairs for d in p.dio_checks]
    if dio:
        outcomes = sorted({f"{d.way} {d.outcome}" for d in dio})
        verdict += (
            f"; O_DIRECT {sum(d.agrees for d in dio)} of {len(dio)} as p2pview predicts"
            f" ({', '.join(outcomes)})"
        )
    out.append(f"   {verdict}")
    return "\n".join(out) + "\n"


def io_report(boot: IoBoot, verbose: bool) -> str:
    """One ``verify --io`` boot: its scenarios (disagreements only unless ``verbose``)."""
    if not boot.results and not boot.error:
        out = [f"== {boot.topology}: not booted (no scenario QEMU can run on it)"]
        out.extend(f"   not run: {nr.name}: {nr.reason}" for nr in boot.not_run)
        return "\n".join(out) + "\n"
    out = [
        f"== {boot.topology} -cpu qemu64{', intel-iommu' if boot.iommu else ''}:"
        f" kernel {boot.release}, nvme mdts {boot.mdts},"
        f" {len(boot.results)} O_DIRECT scenario(s), {boot.seconds:.1f} s"
    ]
    if boot.error:
        out.append(f"   error: {boot.error}")
    for ns, values in sorted(boot.limits.items())[:1]:
        shown = ", ".join(f"{k} {v}" for k, v in values.items() if k != "logical_block_size")
        out.append(f"   queue limits ({ns}): {shown}")
    rows = boot.results if verbose else boot.disagreements
    if rows:
        out.append(f"   {'scenario':<26} {'kernel':<13} {'p2pview':<13} {'commands':<22} agree")
    for r in rows:
        out.append(
            f"   {r.name:<26} {r.seen:<13} {r.predicted:<13} {r.summary:<22}"
            f" {'yes' if r.agrees else 'NO'}"
        )
        out.extend(f"      differs: {d}" for d in r.differences)
        if verbose:
            out.extend(f"      note: {n}" for n in r.notes)
    for nr in boot.not_run:
        out.append(f"   not run: {nr.name}: {nr.reason}")
    if boot.iommu and not boot.error:
        if boot.groups_differing:
            out.append("   IOMMU groups: p2pview's pci_device_group() differs from the kernel's:")
            out.extend(f"      {d}" for d in boot.groups_differing)
        else:
            out.append(
                f"   IOMMU groups: {boot.groups_checked} functions, each in the group"
                " pci_device_group() forms in p2pview"
            )
    if boot.results:
        agreed = sum(r.agrees for r in boot.results)
        compared = sum(r.commands for r in boot.results)
        out.append(
            f"   {agreed} of {len(boot.results)} scenario(s) agree"
            f" ({compared} NVMe commands compared)"
        )
    return "\n".join(out) + "\n"


def cmd_verify_io(args: argparse.Namespace, image: Path) -> int:
    """``p2pview verify --io SOURCE... --kernel IMAGE``."""
    release, _target = image_target(image)
    boots = run_all(
        args.sources, image, args.qemu, tuple(args.mdts or (QEMU_MDTS,)), args.timeout,
        args.jobs, args.iommu,
    )  # fmt: skip
    print(f"kernel {image}: release {release}; O_DIRECT as QEMU's NVMe saw it")
    failed = 0
    for boot in boots:
        sys.stdout.write(io_report(boot, args.verbose))
        failed += bool(boot.error) or bool(boot.disagreements) or bool(boot.groups_differing)
    checked = sum(len(b.results) for b in boots)
    agreed = sum(r.agrees for b in boots for r in b.results)
    print(f"{agreed} of {checked} O_DIRECT scenario(s) agree with the kernel")
    if args.record:
        record_io_results(Path(args.record), boots, image, args.qemu)
    return 1 if failed or not checked else 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``p2pview verify SOURCE... --kernel IMAGE``."""
    image = Path(args.kernel)
    if not image.is_file():
        print(f"p2pview: error: --kernel {image}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if shutil.which(args.qemu) is None and not os.path.exists(args.qemu):
        print(
            f"p2pview: error: {args.qemu}: not found (apt-get install qemu-system-x86)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.io:
        return cmd_verify_io(args, image)
    if args.mdts or args.iommu:
        print("p2pview: error: --mdts and --iommu go with --io", file=sys.stderr)
        return EXIT_USAGE
    release, target = image_target(image)
    build = _module_dir(args, image)
    module = build_module(build) if build is not None else None
    initrd = build_initramfs(module)
    print(f"kernel {image}: release {release}, judged by the {target.profile.title} profile")
    cpus: list[str | None] = list(args.cpu) if args.cpu else [None]
    jobs = [Job(s, c) for s in args.sources for c in cpus]
    results = run_jobs(
        jobs,
        image,
        initrd,
        args.qemu,
        args.jobs,
        args.timeout,
        args.kernel_cmdline,
        dsp_acs=args.dsp_acs,
    )
    failed = skipped = 0
    for res in results:
        if isinstance(res, VerifyResult):
            sys.stdout.write(report(res, args.verbose))
            failed += not res.ok
        elif isinstance(res, JobError) and res.skipped:
            print(f"== skipped: {res}")
            skipped += 1
        else:
            print(f"== error: {res}")
            failed += 1
    booted = len(results) - skipped
    print(
        f"{booted - failed} of {booted} machine(s) agree with the kernel"
        + (f"; {skipped} not booted (nothing QEMU can check)" if skipped else "")
    )
    if args.record:
        done = [r for r in results if isinstance(r, VerifyResult)]
        errors = [
            (
                Path(r.job.source).name.split(".")[0],
                r.job.cpu or "default",
                args.dsp_acs,
                r.reason,
                r.skipped,
            )
            for r in results
            if isinstance(r, JobError)
        ]
        record_results(Path(args.record), done, image, args.qemu, errors)
    # Exit 1 on any disagreement or boot error, and when nothing at all was checked.
    return 1 if failed or not booted else 0


#: Command name -> function, for p2pview.cli's COMMANDS.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"qemu": cmd_qemu, "verify": cmd_verify}
