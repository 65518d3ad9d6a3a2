"""A tiny random GPT-J and a byte-level tokenizer: a real model to test and benchmark the serving
code with, built in memory in well under a second, nothing downloaded.

`save_tiny(folder)` writes it as a deployable folder (config, safetensors, tokenizer), so a
deployment with `source: <folder>` serves it through the whole stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

EOS = "<|endoftext|>"
CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}")


def byte_tokenizer() -> Any:
    """A fast tokenizer with one token per byte and an end-of-text token (id 256)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet, key=lambda c: bytes(c, "utf-8")))}
    vocab[EOS] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    hf.chat_template = CHAT_TEMPLATE
    return hf


def tiny_gptj(seed: int = 0, layers: int = 2, hidden: int = 64, heads: int = 4, positions: int = 4096,
              dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Any:
    """A random GPT-J small enough to decode thousands of tokens a second on a laptop CPU."""
    from transformers import GPTJConfig, GPTJForCausalLM

    config = GPTJConfig(vocab_size=257, n_positions=positions, n_embd=hidden, n_layer=layers, n_head=heads,
                        rotary_dim=hidden // heads // 2, bos_token_id=256, eos_token_id=256)
    torch.manual_seed(seed)
    model: Any = GPTJForCausalLM(config)
    model = model.to(device=device, dtype=dtype)
    model.generation_config.pad_token_id = 256
    return model.eval()


def save_tiny(folder: Path, seed: int = 0) -> Path:
    """Write the tiny model and its tokenizer to `folder` (a deployable source)."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_gptj(seed).save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
    return folder
