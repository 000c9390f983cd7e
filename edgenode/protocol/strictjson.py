"""JSON for signed documents: one meaning per byte string.

Python's ``json`` keeps the last of two equal keys, reads ``NaN`` and ``Infinity``, and lets
``"\\ud800"`` through as a lone surrogate.  Another publishing tool may keep the first key or
refuse the rest, and then it and the node disagree about what was signed.  So manifests, key
lists and schedules are read here, and anything that two parsers could read differently is
refused.  The builder writes with ``dumps`` so it cannot produce what nodes would refuse.
"""

from __future__ import annotations

import json


class StrictJSONError(ValueError):
    """Raised for JSON that is valid to Python but ambiguous to other parsers."""


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _no_constant(name: str):
    raise StrictJSONError(f"{name} is not JSON")


def _check_text(value) -> None:
    # Iterative: a deeply nested document must not turn into a RecursionError here.
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            _utf8(v)
        elif isinstance(v, dict):
            for k, item in v.items():
                _utf8(k)
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)


def _utf8(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJSONError("lone surrogate in a string") from None


def loads(data: bytes | str):
    """Parse JSON, refusing duplicate keys, NaN/Infinity and lone surrogates (StrictJSONError)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    _check_text(doc)
    return doc


def dumps(doc, **kwargs) -> str:
    """Serialise a document that ``loads`` will read back unchanged (no NaN, no lone surrogate)."""
    kwargs.setdefault("ensure_ascii", False)
    text = json.dumps(doc, allow_nan=False, **kwargs)
    _check_text(doc)
    return text
