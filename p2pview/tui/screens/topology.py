"""The topology screen: the PCIe tree with badges, and the highlighted function in full.

The tree shows host bridges, ports and functions with their names from
pci.ids and badges (ACS redirect, p2pmem, kind, IOMMU group, link). The
detail pane shows the highlighted function: IDs, class, port type, the ACS
registers bit by bit, BARs, p2pmem, driver, NUMA node, link, and its verdict
against the peer. ``p`` makes the highlighted function the peer; ``enter``
(or ``e``) explains the pair; ``f`` (or ``/``) finds a function.

Moving the cursor, choosing a peer or explaining a pair changes the app's
``selection``; the screens that show it redraw when they are next shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Header, Input, Label, Tree

from p2pview.kernel import KernelState
from p2pview.model import BDF, AddressError, RootBus, Topology
from p2pview.sources.pciids import PciNames
from p2pview.tui.presenters.pci_labels import NodeKey, Part, RowContext, device_rows, search_text
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.widgets.footer import AppFirstFooter
from p2pview.tui.widgets.pci_detail import PciDetail, device_detail, host_bridge_detail, pair_for
from p2pview.tui.widgets.pci_tree import ALL_AT_ONCE, PciTree, TreePlan, plan_tree

#: A tree's shape: each function with its parent, and the host bridges.
Shape = tuple[tuple[tuple[BDF, BDF | None], ...], tuple[RootBus, ...]]


def shape_of(topology: Topology) -> Shape:
    """What decides the tree's nodes (edits that change only badges keep it)."""
    return (
        tuple((d.bdf, d.parent) for d in topology.devices),
        tuple(hb.root for hb in topology.host_bridges),
    )


@dataclass(frozen=True)
class _Built:
    """Rows and plan for one topology, made off the UI thread for big trees."""

    ctx: RowContext
    rows: dict[NodeKey, tuple[Part, ...]]
    plan: TreePlan


class TopologyScreen(ModelScreen):
    """The PCIe tree and the detail pane of the highlighted function."""

    HELP = """\
The PCIe hierarchy as the kernel walks it: host bridges, Root Ports, switch
ports and functions. Each row shows the address, what the function is, its
label, badges and its name from pci.ids.

**Badges**: `ACS RR CR` - ACS redirect bits set after boot (these send P2P
traffic up to the host bridge); `acs` - ACS present, no redirect; `ACS?` -
ACS could not be read (assumed no redirect); `p2pmem 256M` - a P2PDMA provider
(`unpublished`: only usable by name); `grp N` - IOMMU group; `Gen4 x16` - link
(`↓`: running below its maximum); ` peer ` - the function verdicts are shown
against. Host bridges show the function whose IDs the whitelist checks.

The detail pane shows the highlighted function: its verdict against the peer,
the ACS capability and control bits (and their value after the command-line
parameters), p2pmem, IDs and class, BARs, driver, NUMA node, IOMMU group, link.

**Keys**: arrows move; `space` expands or collapses; `shift+space` all siblings;
`p` makes the highlighted function the peer; `enter` or `e` explains
(highlighted, peer) on the Explain screen (the function with p2pmem is the
provider); `f` or `/` finds a function by address, `vendor:device`, label,
name or driver (`enter` next match, `escape` closes; `n` repeats);
`tab` moves to the detail pane to scroll it; `v` (narrow terminals) shows the
details full size and back (`escape` too).
"""

    BINDINGS = [
        Binding("p", "set_peer", "Peer"),
        Binding("e", "explain", "Explain"),
        Binding("f,slash", "find", "Find", key_display="f"),
        Binding("n", "find_next", "Next match", show=False),
        Binding("v", "toggle_details", "Details"),
        # shown only while the find bar or the full-size details are open
        Binding("escape", "close", "Close"),
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    class _RowsBuilt(Message):
        """Rows for a big tree, made in a worker."""

        def __init__(self, built: _Built, shape: Shape) -> None:
            super().__init__()
            self.built = built
            self.shape = shape

    class _Relabelled(Message):
        """New badges for a big tree after a what-if edit, made in a worker."""

        def __init__(self, ctx: RowContext, rows: Mapping[NodeKey, tuple[Part, ...]]) -> None:
            super().__init__()
            self.ctx = ctx
            self.rows = rows

    def __init__(self) -> None:
        super().__init__()
        self._ctx: RowContext | None = None
        #: The engine state a worker is badging the rows for.
        self._relabelling: KernelState | None = None
        self._shape: Shape | None = None
        self._search: dict[NodeKey, str] | None = None
        self._query = ""
        self._matches: list[NodeKey] = []
        self._match_index = -1
        self._bindings_state: tuple[object, ...] = ()
        #: What the detail pane shows: (function or host bridge, peer, row context).
        self._detail_of: tuple[object, ...] | None = None

    # -- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """The tree beside (or above) the detail pane; the find bar hidden below."""
        yield Header()
        with Horizontal(id="topology-body"):
            yield PciTree(id="pci-tree", classes="pane")
            yield PciDetail(id="pci-detail", classes="pane")
        with Horizontal(id="find-bar"):
            yield Input(
                placeholder="find: address, vendor:device, label, name or driver"
                " (enter: next, escape: close)",
                id="find",
            )
            yield Label("", id="find-status")
        yield AppFirstFooter()

    @property
    def pci_tree(self) -> PciTree:
        """The PCI tree."""
        return self.query_one("#pci-tree", PciTree)

    @property
    def ready(self) -> bool:
        """Every row is in the tree (big trees are named in a worker, added in chunks)."""
        return self._ctx is not None and not self.pci_tree.populating

    @property
    def detail(self) -> PciDetail:
        """The detail pane."""
        return self.query_one("#pci-detail", PciDetail)

    def on_mount(self) -> None:
        """Focus the tree, then draw (the base class redraws on every change it shows)."""
        self.pci_tree.focus()
        self.query_one("#find-bar").display = False
        super().on_mount()

    # -- drawing ------------------------------------------------------------------

    def refresh_model(self) -> None:
        """Rebuild the tree when its shape changed, else relabel it; redraw the details."""
        whatif = self.whatif
        state = whatif.session.state
        names = PciNames.load()
        shape = shape_of(whatif.topology)
        tree = self.pci_tree
        tree.border_title = Content(f"{whatif.topology.name or 'PCI tree'}")
        if shape != self._shape:
            self._shape = shape
            self._ctx = None  # no rows until they are built
            self._search = None
            if len(whatif.topology) + len(whatif.topology.host_bridges) > ALL_AT_ONCE:
                tree.loading = True
                self._build_rows(shape)
            else:
                self._show_built(_build(state, names, self.selection.selected))
        elif self._ctx is not None and self._ctx.state is not state:
            # A what-if edit: the same tree, new badges (a big tree's in a worker).
            if len(whatif.topology) + len(whatif.topology.host_bridges) <= ALL_AT_ONCE:
                self._relabel()
            elif self._relabelling is not state:
                self._relabelling = state
                self._relabel_rows(state)
        self.refresh_selection()

    def refresh_selection(self) -> None:
        """Follow the selection and the peer (cheap when the cursor is already there)."""
        self.pci_tree.peer = self.selection.peer
        self._sync_cursor()
        self._show_detail()

    @work(thread=True, exclusive=True, exit_on_error=False, group="topology-rows")
    def _build_rows(self, shape: Shape) -> None:
        """Name and badge every function of a big tree, off the UI thread."""
        built = _build(self.whatif.session.state, PciNames.load(), self.selection.selected)
        self.post_message(self._RowsBuilt(built, shape))

    def on_topology_screen__rows_built(self, message: _RowsBuilt) -> None:
        """A worker finished the rows: add the nodes (if the tree is still that shape)."""
        if message.shape == self._shape:
            self._show_built(message.built)

    def _show_built(self, built: _Built) -> None:
        self._ctx = built.ctx
        tree = self.pci_tree
        tree.peer = self.selection.peer
        tree.populate(built.plan, on_done=self._populated)
        tree.loading = False
        if built.ctx.state is not self.whatif.session.state:
            self._relabel()  # an edit landed while the worker named the rows

    @work(thread=True, exclusive=True, exit_on_error=False, group="topology-relabel")
    def _relabel_rows(self, state: KernelState) -> None:
        """Badge every function of a big tree for a new engine state, off the UI thread."""
        ctx = RowContext.of(state, PciNames.load())
        self.post_message(self._Relabelled(ctx, device_rows(ctx)))

    def on_topology_screen__relabelled(self, message: _Relabelled) -> None:
        """A worker badged the rows: show them if the analysis is still in that state."""
        if self._ctx is not None and message.ctx.state is self.whatif.session.state:
            self._relabelling = None
            self._ctx = message.ctx
            self._search = None
            self.pci_tree.set_rows(message.rows)
            self._show_detail()

    def _relabel(self) -> None:
        """New badges from the current engine state, on the same nodes."""
        self._ctx = RowContext.of(self.whatif.session.state, PciNames.load())
        self._search = None
        self.pci_tree.set_rows(device_rows(self._ctx))

    def _populated(self) -> None:
        self._sync_cursor(force=True)
        self._show_detail()

    def _sync_cursor(self, force: bool = False) -> None:
        """Put the cursor on the selected function if it is elsewhere."""
        tree = self.pci_tree
        selected = self.selection.selected
        if tree.populating:
            return
        if selected is not None and (force or tree.cursor_key != selected):
            if not tree.reveal(selected) and tree.cursor_line < 0 and tree.last_line >= 0:
                tree.move_cursor_to_line(0)
        elif tree.cursor_line < 0 and tree.last_line >= 0:
            tree.move_cursor_to_line(0)

    def _show_detail(self, key: NodeKey | None = None) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        key = key if key is not None else self.pci_tree.cursor_key
        if key is None:
            key = self.selection.selected
        peer = self.selection.peer
        if self._detail_of == (key, peer, ctx):
            return  # drawn already (a cursor move and the selection it sets)
        self._detail_of = (key, peer, ctx)
        detail = self.detail
        if isinstance(key, BDF) and key in ctx.topology:
            detail.border_title = Content(f"Function {key}")
            detail.show(device_detail(ctx, key, peer))
        elif isinstance(key, RootBus):
            detail.border_title = Content(f"Host bridge {key}")
            detail.show(host_bridge_detail(ctx, key))
        else:
            detail.border_title = Content("Details")
            detail.show(Content.styled("Nothing selected", "$foreground-muted"))

    def on_resize(self) -> None:
        """The breakpoint classes may have changed: so may the footer's keys."""
        self.call_after_refresh(self._refresh_bindings_if_changed)

    # -- tree events --------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#pci-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[NodeKey]) -> None:
        key = event.node.data
        self._show_detail(key)
        if isinstance(key, BDF):
            self.p2p_app.select(selected=key)
        self._refresh_bindings_if_changed()

    def _refresh_bindings_if_changed(self) -> None:
        """Redraw the footer only when a key's availability changed (it is slow to redraw)."""
        key = self.pci_tree.cursor_key
        state = (
            isinstance(key, BDF),
            key == self.selection.peer,
            self.selection.peer is None,
            bool(self._query),
            self.has_class("-narrow"),
            self.has_class("-details"),
        )
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    @on(PciTree.ExplainRequested)
    def _explain_requested(self, event: PciTree.ExplainRequested) -> None:
        if isinstance(event.key, BDF):
            self.action_explain()
        elif event.key is not None:
            node = self.pci_tree.node_for(event.key)
            if node is not None:
                node.toggle()

    # -- actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out the keys that do not apply to the highlighted node."""
        if self._ctx is None:
            return None if action in ("set_peer", "explain", "find", "find_next") else True
        if action in ("set_peer", "explain"):
            # on a host-bridge row these say why they do nothing
            return True if self.pci_tree.cursor_key is not None else None
        if action == "find_next":
            return True if self._query else None
        if action == "close":
            # hidden (not greyed) when there is nothing to close
            return self.query_one("#find", Input).has_focus or self.has_class("-details")
        if action == "toggle_details":
            # only narrow terminals stack the panes; wide ones show both in full
            return self.has_class("-narrow") or self.has_class("-details")
        return True

    def _highlighted_function(self, purpose: str) -> BDF | None:
        """The function under the cursor; on a host-bridge row, say what ``purpose`` needs."""
        key = self.pci_tree.cursor_key
        if isinstance(key, RootBus):
            self.notify(
                f"{key} is a host bridge, not a PCI function: highlight a function to {purpose}",
                severity="warning",
                timeout=4,
            )
            return None
        return key if isinstance(key, BDF) else None

    def action_set_peer(self) -> None:
        """Make the highlighted function the peer that verdicts are shown against."""
        key = self._highlighted_function("make it the peer")
        if key is None:
            return
        if key == self.selection.peer:
            self.notify(f"{key} is already the peer", timeout=3)
            return
        self.p2p_app.select(peer=key)
        self._refresh_bindings_if_changed()

    def action_explain(self) -> None:
        """Explain (highlighted, peer) on the Explain screen."""
        key = self._highlighted_function("explain it against the peer")
        peer = self.selection.peer
        if key is None or peer is None:
            return
        self.p2p_app.select(selected=key, pair=pair_for(self.whatif.session.state, key, peer))
        self.p2p_app.show("explain")

    def action_toggle_details(self) -> None:
        """On narrow terminals: the detail pane full size, and back."""
        if self.has_class("-details"):
            self.remove_class("-details")
            self.pci_tree.focus()
        else:
            self.add_class("-details")
            self.detail.focus()
        self._refresh_bindings_if_changed()

    def action_expand_all(self) -> None:
        """Unfold every node."""
        self.pci_tree.root.expand_all()

    def action_collapse_all(self) -> None:
        """Fold every node but the host bridges, keeping the highlighted function in view."""
        tree = self.pci_tree
        key = tree.cursor_key
        for child in tree.root.children:
            child.collapse_all()
            child.expand()
        if key is not None:
            tree.reveal(key)

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's actions, for the command palette."""
        yield SystemCommand(
            "Make the highlighted function the peer (p)",
            "Verdicts in the detail pane are shown against the peer",
            self.action_set_peer,
        )
        yield SystemCommand(
            "Explain the pair (e, enter)",
            "The highlighted function and the peer on the Explain screen",
            self.action_explain,
        )
        yield SystemCommand(
            "Find a function (f, /)",
            "By address, vendor:device, label, pci.ids name or driver",
            self.action_find,
        )
        yield SystemCommand("Expand the whole tree", "Unfold every node", self.action_expand_all)
        yield SystemCommand(
            "Collapse the tree", "Fold everything below the host bridges", self.action_collapse_all
        )

    # -- finding ------------------------------------------------------------------

    def action_find(self) -> None:
        """Open the find bar."""
        bar = self.query_one("#find-bar")
        bar.display = True
        find = self.query_one("#find", Input)
        find.focus()
        if find.value:
            find.select_all()

    def action_find_next(self) -> None:
        """The next function matching the last search."""
        if self._query:
            self._find(self._query, advance=True)

    @on(Input.Changed, "#find")
    def _find_changed(self, event: Input.Changed) -> None:
        self._find(event.value, advance=False)

    @on(Input.Submitted, "#find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self._find(event.value, advance=True)

    def action_close(self) -> None:
        """Close the find bar, or the full-size details, and go back to the tree."""
        if self.query_one("#find", Input).has_focus:
            self.query_one("#find-bar").display = False
            self.pci_tree.focus()
        elif self.has_class("-details"):
            self.action_toggle_details()

    def _search_index(self) -> dict[NodeKey, str]:
        if self._search is None:
            ctx = self._ctx
            index: dict[NodeKey, str] = {}
            if ctx is not None:
                for hb in ctx.topology.host_bridges:
                    index[hb.root] = f"{hb.name}\n{hb.label or ''}".lower()
                for dev in ctx.topology.devices:
                    index[dev.bdf] = search_text(ctx, dev)
            self._search = index
        return self._search

    def matches(self, query: str) -> list[NodeKey]:
        """Nodes matching ``query``, in tree order: an exact address first, else substrings."""
        text = query.strip().lower()
        if not text:
            return []
        ctx = self._ctx
        if ctx is not None:
            try:
                exact = BDF.parse(text)
            except AddressError:
                pass
            else:
                if exact in ctx.topology:
                    return [exact]
        index = self._search_index()
        return [key for key, words in index.items() if text in words]

    def _find(self, query: str, advance: bool) -> None:
        """Go to the first match of a new query, or the next match of the same one."""
        status = self.query_one("#find-status", Label)
        if query != self._query:
            self._query = query
            self._matches = self._in_tree_order(self.matches(query))
            self._match_index = 0
        elif advance and self._matches:
            self._match_index = (self._match_index + 1) % len(self._matches)
        self._refresh_bindings_if_changed()
        if not self._matches:
            status.update(Content.styled("no match" if query.strip() else "", "$text-error"))
            return
        key = self._matches[self._match_index]
        self.pci_tree.reveal(key)
        self._show_detail(key)
        if isinstance(key, BDF):
            self.p2p_app.select(selected=key)
        status.update(Content(f"{self._match_index + 1} of {len(self._matches)}"))

    def _in_tree_order(self, keys: list[NodeKey]) -> list[NodeKey]:
        ctx = self._ctx
        if ctx is None or len(keys) < 2:
            return keys
        wanted = set(keys)
        order: list[NodeKey] = []
        for hb in ctx.topology.host_bridges:
            if hb.root in wanted:
                order.append(hb.root)
            order.extend(b for b in ctx.topology.subtree(hb.root) if b in wanted)
        return order


def _build(state: KernelState, names: PciNames, selected: BDF | None) -> _Built:
    """Rows and the expansion plan for the state's topology (runs in a worker for big trees)."""
    ctx = RowContext.of(state, names)
    rows = dict(device_rows(ctx))
    reveal = () if selected is None else (selected,)
    return _Built(ctx, rows, plan_tree(ctx.topology, rows, reveal=reveal))
