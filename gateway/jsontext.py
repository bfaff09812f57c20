"""JSON from untrusted text, refused before parsing when nested too deep.

``json.loads`` recurses once per level of nesting, so a few kilobytes of
``[`` end in ``RecursionError`` (an exception nobody catches as bad input).
Every JSON document that arrives from outside is read through ``loads``
here, which measures the depth first with a linear scan and raises
``JsonTextError`` (a ``ValueError``, like every other refusal of the text).
"""

from __future__ import annotations

import json
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
        return json.loads(text)
    except ValueError as exc:  # bad JSON, or an integer too long to convert
        raise JsonTextError(str(exc)) from None
