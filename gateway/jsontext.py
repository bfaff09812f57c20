"""JSON from untrusted text: only what RFC 8259 allows, nested no deeper than the gateway needs.

Every JSON document that arrives from outside is read through ``loads``
here, which raises ``JsonTextError`` (a ``ValueError``) for text that

- nests too deep: ``json.loads`` recurses once per level, so a few
  kilobytes of ``[`` end in ``RecursionError``; the depth is measured first
  with a linear scan;
- holds a string with a lone surrogate (``"\\ud800"``): a ``str`` that
  cannot be encoded, which would fail wherever it is later written out;
- holds ``NaN``, ``Infinity`` or a number too large for a float, which
  Python reads but JSON does not have.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

# Far deeper than any document the gateway reads (a provider's event is
# four or five levels), far shallower than the interpreter's recursion limit.
MAX_DEPTH = 32

# A string (skipped whole, so brackets inside it do not count) or a bracket.
# For text that is not JSON the scan may pair quotes differently from the
# parser; the parser then fails at the first such place, before it has
# recursed into anything the scan did not count.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Only an escape can put a surrogate into a string decoded from UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonTextError(ValueError):
    """The text is not JSON the gateway will read; the message says why."""


def nesting_depth(text: str) -> int:
    """How deep the brackets of ``text`` go, outside its strings."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON text, or JsonTextError.

    Bytes are decoded as ``json.loads`` would (UTF-8, or UTF-16/32 told
    apart by their zero bytes).
    """
    try:
        text = data.decode(json.detect_encoding(data)) if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise JsonTextError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    # Only a text with that many brackets can nest that deep: the usual
    # document skips the scan.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonTextError(f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except ValueError as exc:  # bad JSON, or an integer too long to convert
        raise JsonTextError(str(exc)) from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            # A pair of escapes reads as one character; a lone one stays.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonTextError("a string holds a lone surrogate (not Unicode text)") from None
    return value


def _no_constant(name: str) -> Any:
    raise JsonTextError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise JsonTextError(f"number {text[:20]} is too large")
    return number
