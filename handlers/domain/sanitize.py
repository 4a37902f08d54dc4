"""Text sanitization for task fields, and the JSON Schema patterns that describe it exactly.

A text field goes through these steps, in this order:

1. control characters (Unicode category Cc, plus lone surrogates, which cannot be stored)
   are removed; a description keeps its tabs and new lines;
2. leading and trailing whitespace is trimmed (everything ``str.isspace`` calls whitespace,
   plus U+FEFF, the byte-order mark);
3. the length is checked: what remains must be 1 to ``max_chars`` characters;
4. the text is normalized to Unicode NFC;
5. HTML special characters (``& < > " '``) are escaped.

Checking the length before NFC and escaping keeps the rule expressible as a regular
expression over the raw input, which is what the published OpenAPI document carries
(``TITLE_PATTERN`` / ``DESCRIPTION_PATTERN``), so a client or a fuzzer reading the schema
knows exactly which strings are accepted. Stored text can therefore be longer than the
limit once escaped (``<`` becomes ``&lt;``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final

# Whitespace that trimming removes and that is not a control character (controls are
# removed anyway): exactly the non-Cc characters for which str.isspace() is true, + U+FEFF.
_SPACE_CODEPOINTS: Final = (
    0x20,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
    0xFEFF,
)
_CONTROL_CODEPOINTS: Final = (*range(0x00, 0x20), *range(0x7F, 0xA0))
_TRIM_CHARS: Final = "".join(map(chr, (*_CONTROL_CODEPOINTS, *_SPACE_CODEPOINTS)))

# The same sets written as regex escapes, readable in the published JSON document and
# understood alike by Python, ECMAScript and Rust regex engines.


def _escaped_class(codepoints: tuple[int, ...]) -> str:
    """Regex class body for ``codepoints`` (sorted), contiguous runs written as ranges."""
    runs: list[tuple[int, int]] = []
    for point in codepoints:
        if runs and runs[-1][1] == point - 1:
            runs[-1] = (runs[-1][0], point)
        else:
            runs.append((point, point))

    def esc(point: int) -> str:
        return " " if point == 0x20 else f"\\u{point:04x}"

    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in runs)


_SPACES_ESCAPED: Final = _escaped_class(_SPACE_CODEPOINTS)
_CONTROL_ESCAPED: Final = r"\x00-\x1f\x7f-\x9f"
_CONTROL_EXCEPT_TAB_NL_ESCAPED: Final = r"\x00-\x08\x0b-\x1f\x7f-\x9f"

# What is removed from the raw text; lone surrogates too (JSON can carry them, but they
# cannot be encoded to UTF-8 for DynamoDB).
_REMOVE_ALL_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REMOVE_CONTROLS_KEEP_TAB_NL: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


EDGE_CLASS: Final = f"{_CONTROL_ESCAPED}{_SPACES_ESCAPED}"
"""Regex class body of what trimming drops at either end (controls and whitespace)."""


def _length_pattern(removed: str, max_chars: int) -> str:
    """A regex matching raw strings that are 1..max_chars long after removal and trim.

    ``edge`` = what trimming and removal drop at the ends; a kept character is anything
    not in ``removed``. The first visible character is followed by at most
    ``max_chars - 1`` kept characters (each possibly preceded by removed ones), then
    only edge characters.
    """
    edge = EDGE_CLASS
    return f"^[{edge}]*[^{edge}](?:[{removed}]*[^{removed}]){{0,{max_chars - 1}}}[{edge}]*$"


def text_pattern(*, max_chars: int, keep_tab_newline: bool) -> str:
    """The JSON Schema ``pattern`` equivalent to :func:`clean_text` + the length rule."""
    removed = _CONTROL_EXCEPT_TAB_NL_ESCAPED if keep_tab_newline else _CONTROL_ESCAPED
    return _length_pattern(removed, max_chars)


def clean_text(value: str, *, keep_tab_newline: bool) -> str:
    """Remove control characters (keeping tab/new line if asked) and trim whitespace."""
    remover = _REMOVE_CONTROLS_KEEP_TAB_NL if keep_tab_newline else _REMOVE_ALL_CONTROLS
    return remover.sub("", value).strip(_TRIM_CHARS)


def trim(value: str) -> str:
    """Trim whitespace and control characters at both ends only."""
    return value.strip(_TRIM_CHARS)


def finish_text(cleaned: str) -> str:
    """Normalize to NFC and escape HTML special characters (after the length check)."""
    return html.escape(unicodedata.normalize("NFC", cleaned), quote=True)
