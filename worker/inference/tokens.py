"""A model's tokenizer as the batching engine uses it: text in and out, chat prompts, end tokens."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.storable import storable_text


class Tokenizer:
    """Wraps a Transformers tokenizer (and the model's end-of-sequence tokens)."""

    def __init__(self, hf: Any, eos_token_ids: Iterable[int] = ()) -> None:
        self.hf = hf
        ids = {int(i) for i in eos_token_ids}
        if hf.eos_token_id is not None:
            ids.add(int(hf.eos_token_id))
        self.eos_token_ids = frozenset(ids)
        pad = hf.pad_token_id if hf.pad_token_id is not None else hf.eos_token_id
        self.pad_token_id = int(pad) if pad is not None else 0

    @classmethod
    def for_model(cls, hf: Any, model: Any) -> Tokenizer:
        """The tokenizer with the end tokens the model's generation config declares."""
        config = getattr(model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None) if config is not None else None
        return cls(hf, [] if eos is None else ([eos] if isinstance(eos, int) else list(eos)))

    @property
    def has_chat_template(self) -> bool:
        """Whether the model ships a chat template."""
        return bool(getattr(self.hf, "chat_template", None))

    def encode(self, text: str) -> list[int]:
        """Token ids of a plain prompt."""
        return list(self.hf(text, add_special_tokens=True)["input_ids"])

    def chat(self, user: str, system: str | None = None) -> list[int]:
        """Token ids of a one-turn chat, ending where the assistant's answer begins."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user})
        text = self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.hf(text, add_special_tokens=False)["input_ids"])

    def messages(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a whole conversation (system, user and assistant turns), ending where the
        assistant's next answer begins; without a chat template, the turns' texts one per paragraph."""
        if not self.has_chat_template:
            return self.encode("\n\n".join(m["content"] for m in messages))
        text = self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.hf(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens left out), storable: a model may emit byte 0,
        which no database column takes (see `core/storable.py`)."""
        return storable_text(str(self.hf.decode(ids, skip_special_tokens=True)))
