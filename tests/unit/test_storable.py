"""Text no database stores (NUL characters, lone surrogates) is made storable where Mantle produces
text itself: a model's words, a document's passages, a block's outputs (see `core/storable.py`)."""

from __future__ import annotations

import json

from core.storable import dumped_is_storable, storable, storable_text
from knowledge.parsing import parse
from tests.inference import tiny_backend


def test_nul_is_dropped_and_a_lone_surrogate_replaced_while_good_text_is_kept() -> None:
    assert storable_text("a\x00b") == "ab"
    assert storable_text("x\ud800y\udc00") == "x\ufffdy\ufffd"
    assert storable_text("fine 😀 é") == "fine 😀 é"
    assert storable({"k\x00": ["\ud83d", 3, None, {"n": "ok"}]}) == {"k": ["\ufffd", 3, None, {"n": "ok"}]}


def test_the_quick_test_on_dumped_json_tells_storable_from_not() -> None:
    for good in ["plain", "😀 pair", {"a": ["é", "\\ud800 as text", "\\u0000 too"]}]:
        assert dumped_is_storable(json.dumps(good)), good
    for bad in ["a\x00", "\ud800", "\udc00 low", {"k": "😀\ud83d"}, ["\ud83d"]]:
        assert not dumped_is_storable(json.dumps(bad)), bad


def test_a_model_that_emits_byte_zero_gives_text_without_it() -> None:
    tokenizer = tiny_backend().tokenizer  # one token per byte: token 0 is the NUL byte
    nul = tokenizer.hf.convert_tokens_to_ids(tokenizer.hf.convert_ids_to_tokens(tokenizer.encode("\x00")))
    assert tokenizer.decode([*tokenizer.encode("Ad"), *nul, *tokenizer.encode("a")]) == "Ada"


def test_a_document_with_nul_bytes_gives_passages_without_them() -> None:
    assert [s.text for s in parse(b"Moor at\x00 the east pier.", "text")] == ["Moor at the east pier."]
    assert parse(b"\x00\x00", "text") == []
