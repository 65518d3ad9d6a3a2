"""Documents to sections of text: plain text, Markdown, HTML and PDF (pypdf).

A section is the text under one heading path (`Install › With Docker`) or on one PDF page, so
every chunk cut from it can say where it came from. Parsing is strict about what it cannot read:
an unreadable PDF or text that is not UTF-8 is a `ParseError` whose message the document's failed
state shows.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from core.storable import storable_text

FORMATS = ("text", "markdown", "html", "pdf")
SECTION_SEP = " › "
_EXTENSIONS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
               ".html": "html", ".htm": "html", ".pdf": "pdf"}
_MEDIA = {"text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
          "text/html": "html", "application/pdf": "pdf"}


class ParseError(ValueError):
    """The document cannot be read as the format it claims."""


@dataclass(frozen=True, slots=True)
class Section:
    """Text under one heading path, or on one page."""

    title: str
    text: str
    page: int | None = None


def detect_format(filename: str, content_type: str | None, content: bytes) -> str | None:
    """The document's format from its name, its media type or its first bytes; None when unknown."""
    lower = filename.lower()
    for ext, fmt in _EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _MEDIA:
        return _MEDIA[media]
    if content.startswith(b"%PDF-"):
        return "pdf"
    return None


def parse(content: bytes, fmt: str) -> list[Section]:
    """The sections of a document of format `fmt`, in text a database can store (a NUL byte in a
    text file, or one a PDF's font maps a glyph to, is dropped); raises ParseError."""
    sections = (Section(storable_text(s.title), storable_text(s.text), s.page) for s in _parse(content, fmt))
    return [s for s in sections if s.text.strip()]


def _parse(content: bytes, fmt: str) -> list[Section]:
    if fmt == "pdf":
        return _pdf(content)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"the document is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    if fmt == "markdown":
        return _markdown(text)
    if fmt == "html":
        return _html(text)
    return [Section("", text)] if text.strip() else []


def _pdf(content: bytes) -> list[Section]:
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise ParseError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ParseError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ParseError(f"the PDF cannot be read: {exc or type(exc).__name__}") from None
    return [Section(f"page {n}", text, n) for n, text in enumerate(pages, start=1) if text.strip()]


def _markdown(text: str) -> list[Section]:
    """Sections under each heading path, read from markdown-it's token map (line ranges)."""
    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    headings: list[tuple[int, int, int, str]] = []  # (first line, end line, level, title)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            title = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            headings.append((token.map[0], token.map[1], int(token.tag[1]), title))
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    starts = [h[0] for h in headings] + [len(lines)]
    preface = "\n".join(lines[:starts[0]]).strip()
    if preface:
        sections.append(Section("", preface))
    for n, (_, end, level, title) in enumerate(headings):
        path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
        body = "\n".join(lines[end:starts[n + 1]]).strip()
        if body:
            sections.append(Section(SECTION_SEP.join(t for _, t in path), body))
    return sections


class _HtmlText(HTMLParser):
    """Visible text by heading, without scripts and styles (the standard library's tolerant parser)."""

    SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    BLOCK = frozenset({"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "table",
                       "ul", "ol", "dd", "dt"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.heading: tuple[int, list[str]] | None = None
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = (int(tag[1]), [])
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading is not None:
            level, words = self.heading
            title = " ".join("".join(words).split())
            self.path = [(lvl, t) for lvl, t in self.path if lvl < level] + [(level, title)]
            self.heading = None
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.heading is not None:
            self.heading[1].append(data)
        else:
            self.parts.append(data)

    def _flush(self) -> None:
        text = re.sub(r"[ \t]+", " ", "".join(self.parts))
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
        if text:
            self.sections.append(Section(SECTION_SEP.join(t for _, t in self.path), text))
        self.parts = []

    def close(self) -> None:
        super().close()
        self._flush()


def _html(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return parser.sections
