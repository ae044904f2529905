"""The explain screen: why the kernel decides one (provider, client) pair as it does.

For the app's selected pair (:class:`~p2pview.tui.analysis.Selection`): both upstream
chains drawn through the tree (the common upstream device, the ACS bridges
and the bits that count), the walk step by step with its distance
arithmetic, ``cpu_supports_p2pdma()``, the host-bridge whitelist checks and
the function each looked at, the result, and the kernel's messages as
``dmesg`` shows them. With what-if edits, one line says what they changed
for this pair and ``o`` shows the explanation as the original gives it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Header, Static

from p2pview.kernel import Verdict, calc_map_type_and_dist
from p2pview.model import BDF
from p2pview.session import Session
from p2pview.tui.presenters.explain_content import Explanation, explain_pair
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.widgets.explain_picker import FunctionPicker
from p2pview.tui.widgets.footer import AppFirstFooter
from p2pview.tui.widgets.hanging import HangingStatic

#: What is on screen: the pair, the session it was computed on, original or edited.
ShownKey = tuple[tuple[BDF, BDF] | None, Session, bool, int]


class ExplainScreen(ModelScreen):
    """One pair's explanation, kept in step with the app's state."""

    HELP = """\
Why the kernel's `calc_map_type_and_dist()` decides the pair as it does, for the
kernel release chosen (see the header line).

- **Path**: both upstream chains drawn through the tree, from the host bridge
  down. `<- provider`, `<- client` and `<- common upstream device` mark the
  walk's ends and where the chains meet. Each function with ACS shows its
  redirect bits (RR, CR, EC) and Control register; `not counted` marks ACS
  the walk looks at but ignores, `ACS ?` an unreadable capability.
- **Decision**: the walk step by step: the chains, the distance arithmetic,
  the ACS checks, `cpu_supports_p2pdma()`, each host-bridge whitelist check
  and the function whose IDs it compared, and the result.
- **Kernel messages**: the lines the verbose call prints, exactly as `dmesg`
  shows them, then the boot-time lines of the ACS command-line parameters
  for functions on the path.

`s` swaps provider and client; `p` and `c` pick them from a list of every
function (type to filter); `t` takes the tree screen's selected function and
its peer. With what-if edits (screen 4), the line under the header says what
they changed for this pair, and `o` shows the explanation as the original
topology and kernel give it. `y` copies the `pci=disable_acs_redir=` line the
kernel suggests for the pair to the clipboard. The arrow keys and page keys
scroll.
"""

    BINDINGS = [
        Binding("s", "swap", "Swap"),
        Binding("p", "pick('provider')", "Provider"),
        Binding("c", "pick('client')", "Client"),
        Binding("t", "tree_pair", "Tree pair", show=False),
        Binding("o", "toggle_original", "Original", show=False),
    ]

    AUTO_FOCUS = "#explain-body"

    def __init__(self) -> None:
        super().__init__()
        self.showing_original = False
        self._shown: ShownKey | None = None

    def compose(self) -> ComposeResult:
        """A fixed header (pair, result, what-if line) over a scrolling body."""
        yield Header()
        with Vertical(id="explain-top"):
            yield Static(id="explain-header")
            yield Static(id="explain-change")
        with VerticalScroll(id="explain-body"):
            yield HangingStatic(id="explain-basis")
            yield Static(Content("Path through the tree"), classes="explain-heading")
            yield Static(id="explain-tree")
            yield Static(Content("How the kernel decides"), classes="explain-heading gap")
            yield HangingStatic(id="explain-steps")
            yield HangingStatic(id="explain-messages")
            yield HangingStatic(id="explain-notes")
        yield AppFirstFooter()

    # -- what is shown ----------------------------------------------------------------

    def current_pair(self) -> tuple[BDF, BDF] | None:
        """The selected pair, if both functions exist in the topology shown."""
        pair = self.selection.pair
        if pair is None:
            return None
        topology = self.whatif.original_topology if self.showing_original else self.whatif.topology
        provider, client = pair
        if provider not in topology or client not in topology:
            return None
        return pair

    def shown_session(self) -> Session:
        """The session explained: the edited one, or the original with ``o``."""
        return self.whatif.original.session if self.showing_original else self.whatif.session

    def current_verdict(self) -> Verdict | None:
        """The verdict on screen (``None`` without a pair)."""
        pair = self.current_pair()
        if pair is None:
            return None
        return calc_map_type_and_dist(self.shown_session().state, *pair)

    def refresh_model(self) -> None:
        """Redraw when the pair, the session or the original/edited choice changed."""
        if self.showing_original and not self.whatif.edits:
            self.showing_original = False
        pair = self.current_pair()
        session = self.shown_session()
        key: ShownKey = (pair, session, self.showing_original, len(self.whatif.edits))
        shown = self._shown
        if shown is not None and (
            shown[0] == key[0] and shown[1] is key[1] and shown[2:] == key[2:]
        ):
            return
        pair_changed = shown is None or shown[0] != pair
        self._shown = key
        self.refresh_bindings()
        if pair is None:
            self._show_nothing()
            return
        verdict = calc_map_type_and_dist(session.state, *pair)
        original = None if self.showing_original else self.whatif.original_verdict(*pair)
        self._show(
            explain_pair(
                session,
                verdict,
                original=original,
                edits=len(self.whatif.edits),
                showing_original=self.showing_original,
            )
        )
        if pair_changed:
            self.query_one("#explain-body", VerticalScroll).scroll_home(animate=False)

    def _show(self, explanation: Explanation) -> None:
        self.query_one("#explain-header", Static).update(explanation.header)
        change = self.query_one("#explain-change", Static)
        change.display = explanation.change is not None
        change.update(explanation.change or Content(""))
        basis = self.query_one("#explain-basis", Static)
        basis.display = bool(explanation.basis.plain)
        basis.update(explanation.basis)
        self.query_one("#explain-tree", Static).update(explanation.tree)
        self.query_one("#explain-steps", Static).update(explanation.steps)
        self.query_one("#explain-messages", Static).update(explanation.messages)
        notes = self.query_one("#explain-notes", Static)
        notes.display = bool(explanation.notes.plain)
        notes.update(explanation.notes)

    def _show_nothing(self) -> None:
        if len(self.whatif.topology) == 0:
            text = "This topology has no PCI functions to explain."
        else:
            text = "No pair chosen: press p to pick a provider and c to pick a client."
        self.query_one("#explain-header", Static).update(Content(text))
        self.query_one("#explain-change", Static).display = False
        for name in ("tree", "steps", "messages", "notes"):
            self.query_one(f"#explain-{name}", Static).update(Content(""))

    # -- keys -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out what does not apply to the pair on screen."""
        if self.p2p_app.whatif is None:
            return None
        if action == "swap":
            pair = self.current_pair()
            return True if pair is not None and pair[0] != pair[1] else None
        if action == "tree_pair":
            sel = self.selection
            tree = (sel.selected, sel.peer)
            if sel.selected is None or sel.peer is None or tree == sel.pair:
                return None
            return True
        if action == "pick":
            return True if len(self.whatif.topology) else None
        return True

    def _set_pair(self, pair: tuple[BDF, BDF]) -> None:
        self.p2p_app.select(pair=pair)

    def action_swap(self) -> None:
        """Explain the pair the other way round (client as provider)."""
        pair = self.current_pair()
        if pair is not None:
            self._set_pair((pair[1], pair[0]))

    def action_pick(self, side: str) -> None:
        """Choose the provider or the client from a list of every function."""
        pair = self.selection.pair
        current = None if pair is None else (pair[0] if side == "provider" else pair[1])
        title = f"Pick the {side} (type to filter, enter to pick, escape to cancel)"

        def picked(bdf: BDF | None) -> None:
            if bdf is None:
                return
            old = self.selection.pair or (bdf, bdf)
            self._set_pair((bdf, old[1]) if side == "provider" else (old[0], bdf))

        self.app.push_screen(FunctionPicker(title, self.whatif.topology, current), picked)

    def action_tree_pair(self) -> None:
        """Explain the function selected in the tree against its peer there."""
        sel = self.selection
        if sel.selected is not None and sel.peer is not None:
            self._set_pair((sel.selected, sel.peer))

    def action_toggle_original(self) -> None:
        """Show the explanation as the original topology and kernel give it, or the edited."""
        if not self.whatif.edits and not self.showing_original:
            self.notify(
                "No what-if edits: the explanation shown is the original (screen 4 edits)",
                timeout=4,
            )
            return
        self.showing_original = not self.showing_original
        self.refresh_model()
