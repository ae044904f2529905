"""The base of the errors p2pview raises on purpose.

Every error meant for a user derives from :class:`P2pviewError`; its message
is one line that names what is at fault (the file and field, the option, the
name, the tool). There are two families:

- :class:`InputError`: input p2pview cannot use (a file, a field, an option, a
  name the user gave);
- :class:`ToolError`: input that is fine, but a tool or the environment failed
  it (QEMU or a build tool missing, a guest that did not boot, a build that
  failed).

The command line reports either on stderr in one line with exit status 2, the
TUI in a notice. Anything else that reaches a face is a bug in p2pview and is
shown as one.
"""

from __future__ import annotations


class P2pviewError(Exception):
    """An error p2pview raises on purpose, with a one-line message for the user."""


class InputError(P2pviewError, ValueError):
    """Input p2pview cannot use: a file, a field, an option, a name.

    Also a ``ValueError``, so that callers that check values with the standard
    exception keep working.
    """


class ToolError(P2pviewError, RuntimeError):
    """A tool or the environment failed, not the input: the message says what to fix.

    QEMU or a build tool is missing, a guest did not boot or printed nothing
    usable, a build failed, a tool wrote what p2pview cannot read. Also a
    ``RuntimeError``, as :class:`InputError` is a ``ValueError``.
    """
