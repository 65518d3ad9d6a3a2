"""Text every database can store: no NUL characters, no lone surrogates.

A Python string may hold `\\x00` (PostgreSQL refuses it in text and in JSONB) and lone surrogates
(`\\ud800` without its pair; no UTF-8 encoder accepts them). The API refuses both in what callers
send (`api/json_guard.py`); what Mantle produces itself (a model's words, a provider's stream, a
block's outputs) is made storable here instead: a NUL carries no text and is dropped, a lone
surrogate becomes U+FFFD, the replacement character a decoder shows for a broken byte.

A random-weight model emits byte 0 now and then; before this, that one write failed on
PostgreSQL, the request's text was never saved, and its caller waited until it gave up.
"""

from __future__ import annotations

import re
from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON written with `ensure_ascii` (json.dumps' default), a NUL is `\u0000` and a surrogate
# `\udXXX`; a high surrogate followed by a low one is a character above U+FFFF, and fine. An escape
# counts only after an even run of backslashes (`\\ud800` is a backslash, then the text "ud800").
_ESCAPED_LONE = re.compile(r"(?<!\\)(?:\\\\)*(?:\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})"
                           r"|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2})", re.IGNORECASE)


def storable_text(text: str) -> str:
    """`text` without NUL characters, its lone surrogates replaced; `text` itself when it is fine."""
    if NUL in text:
        text = text.replace(NUL, "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # a valid pair never reaches here as two code points: Python strings hold it as one
        text = _LONE_SURROGATE.sub(REPLACEMENT, text)
    return text


def dumped_is_storable(dumped: str) -> bool:
    """Whether a value that `json.dumps` (with `ensure_ascii`) wrote as `dumped` holds only
    storable strings: a quick test on text already made, with no second walk of the value."""
    if "\\u0000" in dumped and re.search(r"(?<!\\)(?:\\\\)*\\u0000", dumped):
        return False
    return "\\ud" not in dumped.lower() or _ESCAPED_LONE.search(dumped) is None


def storable(value: Any) -> Any:
    """A copy of `value` with every string in it (keys too) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value
