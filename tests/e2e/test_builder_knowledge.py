"""Knowledge bases in the visual builder, in a real browser, on the real worker stack.

The API is served over HTTP on the stack's database and broker; a knowledge worker parses and
embeds the uploads and a run worker runs the node test, so every status a document shows comes
from the real ingestion event stream and every chunk from a real search.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.builder_ui import (
    Mantle,
    add_block,
    new_context,
    screenshot,
    select_node,
    serious_violations,
    sign_in_by_link,
    wait_for,
)
from tests.builder_ui import serving as serving_builder
from tests.engine.conftest import Stack, running_stack

INGEST_MS = 60_000  # parsing and embedding on two busy cores, the embedding model's first load included
HANDBOOK = """# Lighthouse handbook

## Feeding the cats
The lighthouse keeper feeds the three cats at dawn with sardines from the harbour.

## Lamp maintenance
Clean the Fresnel lens every Sunday and replace the lamp's bulb when it flickers.
"""
BROKEN_PDF = "%PDF-1.4\nthis is not really a PDF"


# One stack (PostgreSQL + Redis, which CI has) keeps the suite short; the knowledge API's own
# tests run on both stacks.
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A run worker and a knowledge worker."""
    with running_stack("production", tmp_path_factory.mktemp("builder-knowledge")) as built:
        built.start_worker(queues="knowledge", beat=False)
        yield built


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[Mantle]:
    """The API and the builder over real HTTP, on the stack's database and broker."""
    key = str(stack.client.headers["authorization"]).removeprefix("Bearer ")
    with serving_builder(stack.settings, key) as live:
        yield live


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A tab whose context lets axe-core's script in (the page's own policy would refuse it)."""
    context = new_context(browser, bypass_csp=True)
    yield context.new_page()
    context.close()


def documents(stack: Stack, kb_id: str) -> dict[str, dict[str, Any]]:
    """The knowledge base's documents by file name, as the API lists them."""
    listed = stack.client.get(f"/v1/knowledge/{kb_id}/documents")
    assert listed.status_code == 200, listed.text
    return {d["filename"]: d for d in listed.json()["items"]}


def test_a_person_fills_a_knowledge_base_and_an_app_retrieves_from_it(
        stack: Stack, server: Mantle, page: Page, tmp_path: Path) -> None:
    sign_in_by_link(page, server)
    page.get_by_test_id("knowledge-link").click()
    expect(page.get_by_test_id("knowledge-page")).to_contain_text("No knowledge base yet")

    form = page.get_by_test_id("create-knowledge")
    form.get_by_label("Name").fill("bad/name")
    form.get_by_role("button", name="Create knowledge base").click()
    # The API's reason, said beside the field it names.
    expect(form.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(form).to_contain_text("should match pattern")
    form.get_by_label("Name").fill("lighthouse")
    form.get_by_label("Description").fill("How the keepers run the lighthouse")
    form.get_by_label("Chunk size (characters)").fill("300")
    form.get_by_label("Overlap (characters)").fill("50")
    form.get_by_role("button", name="Create knowledge base").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("lighthouse")
    kb_id = page.url.rsplit("/", 1)[1]
    kb = stack.client.get(f"/v1/knowledge/{kb_id}").json()
    assert (kb["chunk_size"], kb["chunk_overlap"], kb["embedding_model"]) == (300, 50, "wordllama-l2-256")
    expect(page.get_by_test_id("knowledge-base")).to_contain_text("Upload a document above")

    # A file the server cannot read is refused at once, with its reason.
    files = page.get_by_label("Files to upload")
    files.set_input_files({"name": "notes.docx", "mimeType": "application/octet-stream",
                           "buffer": b"PK\x03\x04"})
    expect(page.get_by_test_id("upload-area").get_by_role("alert")).to_contain_text(
        "notes.docx: cannot tell the format of 'notes.docx'")
    assert documents(stack, kb_id) == {}

    # A Markdown file chosen with the file input becomes ready, its chunks counted.
    handbook = tmp_path / "handbook.md"
    handbook.write_text(HANDBOOK)
    files.set_input_files(handbook)
    row = page.get_by_test_id("document-row").filter(has_text="handbook.md")
    expect(row).to_have_attribute("data-status", "ready", timeout=INGEST_MS)
    chunks = documents(stack, kb_id)["handbook.md"]["chunks"]
    assert chunks >= 2
    expect(row.get_by_test_id("document-status")).to_have_text(f"✓ Ready: {chunks} chunks")
    expect(row.get_by_test_id("document-chunks")).to_have_text(str(chunks))

    # A PDF dropped on the page that cannot be read fails, with the worker's reason.
    dropped = page.evaluate_handle(
        """(text) => { const dt = new DataTransfer();
                       dt.items.add(new File([text], "broken.pdf", {type: "application/pdf"}));
                       return dt; }""",
        BROKEN_PDF)
    page.get_by_test_id("upload-area").dispatch_event("drop", {"dataTransfer": dropped})
    broken = page.get_by_test_id("document-row").filter(has_text="broken.pdf")
    expect(broken).to_have_attribute("data-status", "failed", timeout=INGEST_MS)
    reason = documents(stack, kb_id)["broken.pdf"]["error"]
    assert "PDF" in reason
    expect(broken.get_by_test_id("document-error")).to_have_text(reason)
    expect(page.get_by_test_id("knowledge-base").get_by_role("status").last).to_have_text(
        "2 documents: 1 ready, 1 failed")
    screenshot(page, "builder-knowledge-base")
    assert serious_violations(page) == [], "a knowledge base with a ready and a failed document"

    # Re-indexing goes through the statuses again, live, and so does new chunking; deleting asks first.
    row.get_by_role("button", name="Re-index handbook.md").click()
    expect(row).to_have_attribute("data-status", "ready", timeout=INGEST_MS)
    indexed = documents(stack, kb_id)["handbook.md"]["indexed_at"]
    page.get_by_text("Settings", exact=True).click()
    settings = page.get_by_role("form", name="Settings of lighthouse")
    settings.get_by_label("Chunk size (characters)").fill("150")
    settings.get_by_label("Overlap (characters)").fill("20")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.get_by_role("status")).to_have_text("Saved: every document is being indexed again.")
    wait_for(lambda: (d := documents(stack, kb_id)["handbook.md"])["status"] == "ready"
             and d["indexed_at"] != indexed, "the handbook to be indexed again", INGEST_MS / 1000)
    assert stack.client.get(f"/v1/knowledge/{kb_id}").json()["chunk_size"] == 150
    rechunked = documents(stack, kb_id)["handbook.md"]["chunks"]
    expect(row.get_by_test_id("document-status")).to_have_text(f"✓ Ready: {rechunked} chunks")
    broken.get_by_role("button", name="Delete broken.pdf").click()
    confirm = page.get_by_role("dialog", name="Delete broken.pdf?")
    confirm.get_by_role("button", name="Delete document").click()
    expect(broken).to_have_count(0)
    assert set(documents(stack, kb_id)) == {"handbook.md"}

    page.get_by_test_id("knowledge-link").click()
    listed = page.get_by_test_id("knowledge-row").filter(has_text="lighthouse")
    expect(listed).to_contain_text("1 document: 1 ready")
    assert serious_violations(page) == [], "the knowledge bases"

    # An app's Retrieve block picks the base from a list, and testing the node brings chunks back.
    app_id = server.create_app("Ask the handbook")
    page.goto(f"{server.url}/builder/apps/{app_id}")
    add_block(page, "knowledge.retrieve", 300, 200, "retrieve_1")
    panel = select_node(page, "retrieve_1")
    picker = panel.get_by_role("combobox", name="Knowledge Base")
    expect(picker.locator("option", has_text="lighthouse (1 ready)")).to_have_count(1)
    picker.select_option(label="lighthouse (1 ready)")
    # The block keeps the base's name (unique in the organization), which an exported app carries along.
    def picked() -> list[Any]:
        return [n["config"].get("knowledge_base") for n in server.draft(app_id)["graph"].get("nodes", [])]

    wait_for(lambda: picked() == ["lighthouse"], "the draft to be saved with the base picked")
    expect(picker).to_have_value("lighthouse")

    panel.get_by_role("button", name="Test this node").click()
    dialog = page.get_by_role("dialog", name="Test retrieve_1 alone")
    dialog.get_by_label("query").fill("When are the cats fed?")
    dialog.get_by_role("button", name="Run this node").click()
    outputs = dialog.get_by_test_id("run-outputs")
    expect(dialog.get_by_test_id("run-status")).to_have_text("✓ Succeeded", timeout=INGEST_MS)
    expect(outputs).to_contain_text("sardines")
    expect(outputs).to_contain_text("[1] handbook.md § Lighthouse handbook › Feeding the cats")
    screenshot(page, "builder-knowledge-node-test")
    assert serious_violations(page) == [], "the editor testing a Retrieve block"
