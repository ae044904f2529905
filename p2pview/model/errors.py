"""The base of the errors p2pview raises on purpose.

Every error meant for a user derives from :class:`P2pviewError`; its message
is one line that names what is at fault (the file and field, the option, the
name). :class:`InputError` is input p2pview cannot use: the command line
reports it on stderr with exit status 2, the TUI in a notice. Anything else
that reaches a face is a bug in p2pview and is shown as one.
"""

from __future__ import annotations


class P2pviewError(Exception):
    """An error p2pview raises on purpose, with a one-line message for the user."""


class InputError(P2pviewError, ValueError):
    """Input p2pview cannot use: a file, a field, an option, a name.

    Also a ``ValueError``, so that callers that check values with the standard
    exception keep working.
    """
