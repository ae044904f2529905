"""The title lines every table of a session starts with: source, kernel, CPU.

Shared by ``matrix`` and ``compare``; kept apart from the matrix table so
that ``compare``, which draws no matrix, does not import the vectorised
matrix and numpy.
"""

from __future__ import annotations

from rich.text import Text

from p2pview.model import Fact
from p2pview.session import Session


def header_text(session: Session) -> Text:
    """Title lines: source, kernel, CPU."""
    topo = session.topology
    plat = topo.platform
    target = session.target
    cpu = f"{plat.cpu_vendor} family {plat.cpu_family:#x}" if plat.is_x86 else plat.arch
    lines = Text()
    lines.append(f"{topo.name}", style="bold")
    if session.loaded.kind == "bundled":
        # the name is what to type; the installed path says nothing to a user
        lines.append("  (bundled topology)")
    elif topo.source and topo.source != topo.name:
        lines.append(f"  ({topo.source})")
    lines.append("\n")
    kernel_basis = _basis_mark(plat.facts.kernel)
    cpu_basis = _basis_mark(plat.facts.cpu)
    lines.append(
        f"kernel {target.version}{kernel_basis} ({target.profile.title} profile);"
        f" CPU {cpu}{cpu_basis}: "
    )
    if target.profile.cpu_check:
        verdict = "true" if session.state.cpu_supports else "false"
        lines.append(f"cpu_supports_p2pdma() = {verdict}")
    else:
        lines.append("no cpu_supports_p2pdma() in this era")
    return lines


def _basis_mark(fact: Fact) -> str:
    """`` (assumed)`` / `` (inferred)`` after a platform value; nothing when read."""
    return "" if fact.is_read else f" ({fact.basis.value})"
