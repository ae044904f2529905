"""Checks on untrusted input: the error type, quoting, value ranges, document shape.

Captures and dumps come from other people's machines, and p2pview is run as
root on them. Every reader raises :class:`SourceError` with one line naming the
file and the field or line; values from the input are quoted through
:func:`quote` (cut to a readable length); numbers are range-checked where they
are read (:func:`check_bits`, :func:`check_span`); and JSON and TOML text is
checked by :func:`check_json_shape` / :func:`check_toml_shape` before the
standard library parses it, because both parsers recurse once per nesting
level, Python's ``int()`` refuses more than 4300 decimal digits with a
``ValueError``, and ``tomllib`` takes time quadratic in the parts of a dotted
key.
"""

from __future__ import annotations

import re
import reprlib

from p2pview.model.errors import InputError

#: Characters of an input value a message quotes.
QUOTE_CHARS = 40
#: No message is longer than this, whatever it quotes.
MAX_MESSAGE = 600
#: Nesting of arrays and tables (inline or not) a JSON or TOML document may use.
#: Topology files nest four deep; scenario files three.
MAX_NESTING = 32
#: Digits in one number: a 64-bit value needs 20 decimal or 16 hex digits.
MAX_DIGITS = 40
#: Parts of one dotted TOML key or table name (``a.b.c`` has three).
MAX_KEY_PARTS = 32

U8 = 8
U16 = 16
U24 = 24
U32 = 32
U64 = 64


class SourceError(InputError):
    """Input that cannot be read: the message names the file and the field or line.

    The message is cut to :data:`MAX_MESSAGE` characters, so that no input,
    however long, makes an unbounded line on stderr.
    """

    def __init__(self, message: str) -> None:
        super().__init__(cut(message, MAX_MESSAGE))


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = QUOTE_CHARS
_REPR.maxother = QUOTE_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """A value from the input as a message shows it: ``repr`` cut to ``limit`` characters.

    Strings and bytes longer than ``limit`` end in ``...`` and say their
    length; other values (lists, tables from JSON/TOML, however deeply nested)
    are shown two levels deep at most.
    """
    if isinstance(value, str | bytes):
        if len(value) <= limit:
            return repr(value)
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}... ({len(value):,} {unit})"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return show_int(value)
    return cut(_REPR.repr(value), limit * 2)


def show_int(value: int) -> str:
    """A number for a message: hex up to 64 bits, else how many bits it has."""
    if value.bit_length() > 64:
        sign = "a negative " if value < 0 else "a "
        return f"{sign}{value.bit_length()}-bit number"
    return f"{value:#x}" if value >= 0 else f"-{-value:#x}"


def check_bits(value: int, bits: int, what: str = "") -> int:
    """``value`` when it is a non-negative number of at most ``bits`` bits.

    Raises:
        ValueError: ``"[what ]0x1ffff does not fit 16 bits"`` or ``"... is negative"``.
    """
    if 0 <= value < 1 << bits:
        return value
    prefix = f"{what} " if what else ""
    if value < 0:
        raise ValueError(f"{prefix}{show_int(value)} is negative")
    raise ValueError(f"{prefix}{show_int(value)} does not fit {bits} bits")


def check_span(start: int, size: int, what: str = "") -> None:
    """An address range ``[start, start + size)`` that lies within the 64-bit address space.

    Raises:
        ValueError: a negative start, a size that is not positive, or an end past 2^64.
    """
    prefix = f"{what}: " if what else ""
    if start < 0:
        raise ValueError(f"{prefix}address {show_int(start)} is negative")
    if size <= 0:
        raise ValueError(f"{prefix}size {show_int(size)} is not positive")
    if start + size > 1 << 64:
        raise ValueError(
            f"{prefix}{show_int(start)} + {show_int(size)} ends past the 64-bit address space"
        )


def check_number_text(text: str) -> None:
    """Refuse a number written with more than :data:`MAX_DIGITS` characters before converting it.

    Raises:
        ValueError: naming the length; the text is quoted cut.
    """
    if len(text) > MAX_DIGITS:
        raise ValueError(f"{quote(text)}: too long for a number (at most {MAX_DIGITS} characters)")


# -- document shape, checked before json/tomllib parse ------------------------------


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


_JSON_TOKENS = re.compile(
    r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{}]|[0-9]{' + str(MAX_DIGITS + 1) + ",}"
)


def check_json_shape(text: str) -> None:
    """Refuse JSON nested deeper than :data:`MAX_NESTING` or with over-long numbers.

    Python's ``json`` recurses once per array or object level (a
    ``RecursionError`` near 1,000 levels) and ``int()`` refuses long numbers
    with a ``ValueError`` that is not a ``JSONDecodeError``.

    Raises:
        ValueError: ``"line N: ..."``.
    """
    depth = 0
    for m in _JSON_TOKENS.finditer(text):
        token = m.group()
        first = token[0]
        if first == '"':
            continue
        if first in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise ValueError(
                    f"line {_line(text, m.start())}: arrays and objects nested more than"
                    f" {MAX_NESTING} deep"
                )
        elif first in "]}":
            depth = max(depth - 1, 0)
        else:
            raise ValueError(
                f"line {_line(text, m.start())}: a number of {len(token):,} digits (at most"
                f" {MAX_DIGITS})"
            )


_TOML_BARE = r"[A-Za-z0-9_+-]++"
_TOML_QUOTED_KEY = r"\"[^\"\\\n]*+(?:\\.[^\"\\\n]*+)*+\"|'[^'\n]*+'"
_TOML_KEY_PART = rf"(?:{_TOML_BARE}|{_TOML_QUOTED_KEY})"
_TOML_TOKENS = re.compile(
    r'"""(?:[^"\\]++|\\.|"(?!""))*+"""'  # multi-line basic string
    r"|'''(?:[^']++|'(?!''))*+'''"  # multi-line literal string
    rf"|(?P<key>{_TOML_KEY_PART}(?:[ \t]*+\.[ \t]*+{_TOML_KEY_PART})*+)"  # keys, values, strings
    r"|#[^\n]*+"  # comment
    r"|[\[\]{}]",
    re.DOTALL,
)
_LONG_DIGITS = re.compile(r"[0-9_]{" + str(MAX_DIGITS + 1) + ",}")
_HEX_BODY = re.compile(r"0[xob][0-9a-fA-F_]{" + str(MAX_DIGITS + 1) + ",}")


def check_toml_shape(text: str) -> None:
    """Refuse TOML nested deeper than :data:`MAX_NESTING`, with over-long numbers or dotted keys.

    ``tomllib`` recurses once per array or inline-table level and spends time
    quadratic in the parts of a dotted key (100,000 parts exhaust memory).

    Raises:
        ValueError: ``"line N: ..."``.
    """
    depth = 0
    for m in _TOML_TOKENS.finditer(text):
        token = m.group()
        first = token[0]
        if first in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise ValueError(
                    f"line {_line(text, m.start())}: arrays and tables nested more than"
                    f" {MAX_NESTING} deep"
                )
        elif first in "]}":
            depth = max(depth - 1, 0)
        elif m["key"] is not None and len(token) > MAX_DIGITS:
            if first not in "\"'" and token.count(".") >= MAX_KEY_PARTS:
                raise ValueError(
                    f"line {_line(text, m.start())}: a dotted key of more than"
                    f" {MAX_KEY_PARTS} parts"
                )
            if first not in "\"'" and (_LONG_DIGITS.search(token) or _HEX_BODY.search(token)):
                raise ValueError(
                    f"line {_line(text, m.start())}: a number of more than {MAX_DIGITS} digits"
                )


_SIZE_RE = re.compile(r"^\s*(0x[0-9a-fA-F]+|\d+)\s*([kKmMgGtT]i?[bB]?)?\s*$")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_int(value: object, *, sizes: bool = False) -> int:
    """An int from TOML/JSON: a number, ``"0x..."``, or with ``sizes`` ``"64M"``.

    Raises:
        ValueError: not a number, or one written with more than 40 characters
            (the input is quoted cut).
    """
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        check_number_text(text)
        if sizes:
            m = _SIZE_RE.match(text)
            if m:
                base = int(m[1], 0)
                unit = (m[2] or "")[:1].lower()
                return base * _UNITS.get(unit, 1)
        try:
            return int(text, 0)
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {quote(value)}")
