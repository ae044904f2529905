"""What the screens show, apart from how: text, rows and cells built from the analysis.

No widgets live here (those are in :mod:`p2pview.tui.widgets`): each module turns
the analysis, a verdict or a trace into Textual ``Content``, rows or plain data, so
that it can be tested and timed without an app.
"""
