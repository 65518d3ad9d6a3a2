"""Documents to citable passages: formats recognised, headings kept as paths, scripts left out,
passages cut at paragraphs and overlapping, unreadable input refused with the reason."""

from __future__ import annotations

import pytest

from knowledge.chunking import chunk
from knowledge.parsing import ParseError, Section, detect_format, parse
from knowledge.search import fuse


def test_formats_are_told_by_name_media_type_or_first_bytes() -> None:
    assert detect_format("notes.MD", None, b"") == "markdown"
    assert detect_format("page", "text/html; charset=utf-8", b"<p>") == "html"
    assert detect_format("upload.bin", None, b"%PDF-1.7 ...") == "pdf"
    assert detect_format("photo.png", "image/png", b"\x89PNG") is None


def test_markdown_sections_carry_their_heading_path() -> None:
    text = (b"Intro line.\n\n# Guide\n\n## Install\nRun make.\n\n### With Docker\nUse compose.\n\n"
            b"## Use\nOpen it.\n")
    assert [(s.title, s.text) for s in parse(text, "markdown")] == [
        ("", "Intro line."), ("Guide \u203a Install", "Run make."),
        ("Guide \u203a Install \u203a With Docker", "Use compose."), ("Guide \u203a Use", "Open it.")]


def test_html_keeps_visible_text_under_its_headings() -> None:
    html = (b"<html><head><title>t</title><style>p{}</style></head><body><script>var key='x';</script>"
            b"<h1>Rules</h1><p>Moor on the <b>east</b> pier.</p><h2>Fees</h2><ul><li>Ten pounds</li></ul>"
            b"</body>")
    assert [(s.title, s.text) for s in parse(html, "html")] == [
        ("Rules", "Moor on the east pier."), ("Rules \u203a Fees", "Ten pounds")]


def test_unreadable_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ParseError, match="PDF cannot be read"):
        parse(b"%PDF-1.4 not really", "pdf")
    with pytest.raises(ParseError, match="not UTF-8"):
        parse("caf\u00e9".encode("latin-1"), "text")


def test_chunks_are_cut_at_paragraphs_and_overlap() -> None:
    paragraphs = [f"Paragraph {n} " + "word " * 30 for n in range(6)]
    chunks = chunk([Section("Guide", "\n\n".join(paragraphs))], size=400, overlap=200)
    assert len(chunks) > 1 and [c.position for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text) <= 400 for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.text.split("\n")[0] in before.text  # each starts with the end of the one before
    assert chunks[0].embed_text.startswith("Guide\nParagraph 0")


def test_fusion_prefers_what_both_rankings_found() -> None:
    assert fuse([(1.0, [1, 2, 3]), (1.0, [3, 4, 1])])[:2] == [1, 3]
    assert fuse([(0.5, [7]), (1.0, [8])]) == [8, 7]
