"""Sections to chunks: passages of about `size` characters that overlap by about `overlap`.

Cuts fall on paragraph boundaries, then sentence boundaries, then words, so a passage reads as
written; the section's heading path is prepended to the text that is embedded (not to the text
shown), which keeps a short passage under `Install › With Docker` findable by what it is about.
Written here rather than taken from a text-splitter library because none ships in our
dependencies and this one is small: a greedy packing of pieces, recursively split when too long.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.parsing import Section

_SEPARATORS = (re.compile(r"\n\s*\n"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+"))


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage: its place in the document, its section and its text."""

    position: int
    section: str
    text: str
    page: int | None = None

    @property
    def embed_text(self) -> str:
        """What is embedded: the heading path, then the passage."""
        return f"{self.section}\n{self.text}" if self.section else self.text


def _pieces(text: str, size: int, level: int = 0) -> list[str]:
    """`text` split on the coarsest separator that makes every piece at most `size` characters."""
    if len(text) <= size:
        return [text]
    if level >= len(_SEPARATORS):
        return [text[i:i + size] for i in range(0, len(text), size)]
    out: list[str] = []
    for part in _SEPARATORS[level].split(text):
        if part.strip():
            out.extend(_pieces(part.strip(), size, level + 1))
    return out


def _pack(pieces: list[str], size: int, overlap: int) -> Iterable[str]:
    """Greedy passages of pieces up to `size`; each starts with the last `overlap` characters' pieces."""
    current: list[str] = []
    length = 0
    for piece in pieces:
        if current and length + len(piece) + 1 > size:
            yield "\n".join(current)
            kept: list[str] = []
            kept_len = 0
            for prev in reversed(current):
                if kept_len + len(prev) + 1 > overlap:
                    break
                kept.insert(0, prev)
                kept_len += len(prev) + 1
            current, length = kept, kept_len
        current.append(piece)
        length += len(piece) + 1
    if current:
        yield "\n".join(current)


def chunk(sections: Iterable[Section], *, size: int, overlap: int) -> list[Chunk]:
    """The chunks of a document's sections, numbered from 0 in reading order."""
    chunks: list[Chunk] = []
    for section in sections:
        for text in _pack(_pieces(section.text.strip(), size), size, overlap):
            if text.strip():
                chunks.append(Chunk(len(chunks), section.title, text.strip(), section.page))
    return chunks
