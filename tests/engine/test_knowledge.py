"""Knowledge bases on both stacks, with a real knowledge worker: uploads in every format, ingestion
progress and its event stream, failures with their reason, retrieval through a published app with
filters, re-index, model change, delete, organization scoping, bad input, and the seeded example
that answers from the README."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from cli.seed import seed_local
from cli.seed_docs import DOCS_KB, seed_docs
from models import knowledge as kb_store
from models.db import session_factory, session_scope
from tests.engine.conftest import Stack, running_stack, wait_until
from tests.factories import edge, node
from worker.knowledge_queue import send_ingest

MARKDOWN = b"""# Lighthouse handbook

## Feeding the cats
The lighthouse keeper feeds the three cats at dawn with sardines from the harbour.

## Lamp maintenance
Clean the Fresnel lens every Sunday and replace the lamp's bulb when it flickers.
"""
TEXT = b"Tide tables are posted on the harbour office door every Monday morning."
HTML = (b"<html><head><style>p{color:red}</style><script>var secret = 1;</script></head><body>"
        b"<h1>Harbour rules</h1><p>Boats must be moored on the east pier after sunset.</p></body></html>")


def pdf_of(pages: list[str]) -> bytes:
    """A small PDF whose pages hold these lines of text (Helvetica)."""
    writer = PdfWriter()
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                             NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    for line in pages:
        page = writer.add_blank_page(612, 792)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode())
        page[NameObject("/Contents")] = stream
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module", params=["embedded", "production"])
def kstack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack with a run worker and a knowledge worker; uploads over 300 kB are refused, and a
    document unmoved for 3 s is sent again."""
    with running_stack(request.param, tmp_path_factory.mktemp("knowledge"),
                       extra={"knowledge_max_document_bytes": 300_000,
                              "knowledge_resend_after_s": 3}) as built:
        built.start_worker(queues="knowledge", beat=False)
        yield built


def upload(stack: Stack, kb_id: str, name: str, content: bytes, metadata: dict[str, Any] | None = None,
           content_type: str = "application/octet-stream") -> Any:
    """POST a document; returns the response."""
    data = {"metadata": json.dumps(metadata)} if metadata is not None else {}
    return stack.client.post(f"/v1/knowledge/{kb_id}/documents",
                             files={"file": (name, content, content_type)}, data=data)


def documents(stack: Stack, kb_id: str) -> dict[str, dict[str, Any]]:
    """The knowledge base's documents by file name."""
    listed = stack.client.get(f"/v1/knowledge/{kb_id}/documents")
    assert listed.status_code == 200, listed.text
    return {d["filename"]: d for d in listed.json()["items"]}


def settled(stack: Stack, kb_id: str) -> dict[str, dict[str, Any]]:
    """The documents once none is queued, parsing or embedding."""
    found: dict[str, dict[str, Any]] = wait_until(
        lambda: (docs := documents(stack, kb_id))
        and all(d["status"] in ("ready", "failed") for d in docs.values()) and docs,
        60, "documents to be ingested")
    return found


def events(stack: Stack, kb_id: str, **params: str) -> list[dict[str, Any]]:
    """The knowledge base's Server-Sent Events, followed until nothing is left to ingest."""
    with stack.client.stream("GET", f"/v1/knowledge/{kb_id}/events", params=params) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append(json.loads(fields["data"]))
    return found


def retrieve_app(stack: Stack, kb: str, **config: Any) -> str:
    """A published app: trigger.api(query) → knowledge.retrieve → output (chunks, context, sources)."""
    return stack.publish({
        "schema_version": 1,
        "nodes": [node("in", "trigger.api", fields=[{"name": "query"}]),
                  node("kb", "knowledge.retrieve", knowledge_base=kb, **config),
                  node("out", "output", fields=[{"name": "chunks", "type": "any"}, {"name": "context"},
                                                   {"name": "sources", "type": "any"}])],
        "edges": [edge("in", "query", "kb", "query"), edge("kb", "chunks", "out", "chunks"),
                  edge("kb", "context", "out", "context"), edge("kb", "sources", "out", "sources")],
    }, name=f"retrieve-{uuid.uuid4().hex[:6]}")


def ask(stack: Stack, app_id: str, query: str) -> dict[str, Any]:
    """Run the retrieval app; its outputs."""
    run = stack.wait_run(stack.run(app_id, {"query": query})["id"])
    assert run["status"] == "succeeded", run
    outputs: dict[str, Any] = run["outputs"]
    return outputs


@pytest.fixture(scope="module")
def handbook(kstack: Stack) -> dict[str, Any]:
    """A knowledge base holding one document of each format, ingested."""
    created = kstack.client.post("/v1/knowledge",
                                 json={"name": "handbook", "chunk_size": 300, "chunk_overlap": 50})
    assert created.status_code == 201, created.text
    kb = created.json()
    assert (kb["embedding_model"], kb["dimensions"]) == ("wordllama-l2-256", 256)
    kb_id = kb["id"]
    uploads = [("handbook.md", MARKDOWN, {"team": "keepers"}), ("tides.txt", TEXT, {"team": "harbour"}),
               ("rules.html", HTML, {"team": "harbour"}),
               ("logbook.pdf", pdf_of(["The keeper logged a storm on the ninth of March.",
                                       "Supplies arrive by ferry on Thursdays."]), {"team": "keepers"})]
    for name, content, meta in uploads:
        response = upload(kstack, kb_id, name, content, meta)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
    return {"id": kb_id, "docs": settled(kstack, kb_id)}


def test_every_format_is_ingested_with_its_progress_on_the_event_stream(kstack: Stack,
                                                                        handbook: dict[str, Any]) -> None:
    docs = handbook["docs"]
    assert {n: (d["status"], d["format"]) for n, d in docs.items()} == {
        "handbook.md": ("ready", "markdown"), "tides.txt": ("ready", "text"), "rules.html": ("ready", "html"),
        "logbook.pdf": ("ready", "pdf")}
    assert all(d["chunks"] >= 1 and d["chunks_embedded"] == d["chunks"] for d in docs.values())
    assert docs["logbook.pdf"]["chunks"] == 2  # one per page
    md = docs["handbook.md"]
    statuses = [e["type"] for e in events(kstack, handbook["id"], document_id=md["id"])]
    assert statuses[0] == "queued" and statuses[-1] == "ready"
    assert {"parsing", "embedding"} <= set(statuses)
    listed = kstack.client.get(f"/v1/knowledge/{handbook['id']}").json()
    assert listed["documents"] == {"ready": 4}
    ready = kstack.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    # The test PostgreSQL has no pgvector: it says so (tests/integration/test_knowledge_pgvector.py has it).
    assert ready.json()["knowledge"] in (
        ("sqlite-vec",) if kstack.name == "embedded" else ("pgvector", "pgvector missing: exact search"))


def test_a_published_app_retrieves_cited_chunks_with_filters(kstack: Stack, handbook: dict[str, Any]) -> None:
    app_id = retrieve_app(kstack, "handbook", top_k=2)
    found = ask(kstack, app_id, "When are the cats fed?")
    top = found["chunks"][0]
    assert top["document"] == "handbook.md" and "sardines" in top["text"]
    assert top["section"] == "Lighthouse handbook › Feeding the cats"
    assert isinstance(top["position"], int) and 0 < top["score"] <= 1
    assert found["sources"][0] == "[1] handbook.md § Lighthouse handbook › Feeding the cats"
    assert found["context"].startswith("[1] handbook.md § Lighthouse handbook › Feeding the cats\n")

    from_pdf = ask(kstack, app_id, "storm logged in March")["chunks"][0]
    assert (from_pdf["document"], from_pdf["page"]) == ("logbook.pdf", 1)
    html = ask(kstack, app_id, "where are boats moored after sunset")["chunks"][0]
    assert html["document"] == "rules.html" and "secret" not in html["text"]

    harbour_only = retrieve_app(kstack, handbook["id"], top_k=5, filters={"metadata": {"team": "harbour"}})
    assert {c["document"] for c in ask(kstack, harbour_only, "cats sardines lamp")["chunks"]} <= {
        "tides.txt", "rules.html"}
    tides_id = handbook["docs"]["tides.txt"]["id"]
    one_doc = retrieve_app(kstack, "handbook", filters={"document_ids": [tides_id]})
    assert {c["document"] for c in ask(kstack, one_doc, "cats")["chunks"]} == {"tides.txt"}
    strict = retrieve_app(kstack, "handbook", min_score=0.99)
    assert ask(kstack, strict, "When are the cats fed?")["chunks"] == []


def test_an_unreadable_pdf_fails_with_the_reason(kstack: Stack, handbook: dict[str, Any]) -> None:
    response = upload(kstack, handbook["id"], "broken.pdf", b"%PDF-1.4\nthis is not really a PDF")
    assert response.status_code == 202
    doc_id = response.json()["id"]
    failed = wait_until(lambda: (d := kstack.client.get(f"/v1/knowledge/{handbook['id']}/documents/{doc_id}")
                                 .json())["status"] == "failed" and d, 60, "the broken PDF to fail")
    assert "PDF" in failed["error"]
    assert [e["type"] for e in events(kstack, handbook["id"], document_id=doc_id)][-1] == "failed"
    assert kstack.client.delete(f"/v1/knowledge/{handbook['id']}/documents/{doc_id}").status_code == 204


def test_reindex_and_delete_change_what_is_found(kstack: Stack) -> None:
    kb_id = kstack.client.post("/v1/knowledge", json={"name": "rotating"}).json()["id"]
    first = upload(kstack, kb_id, "a.md", MARKDOWN).json()
    second = upload(kstack, kb_id, "b.txt", TEXT).json()
    settled(kstack, kb_id)
    again = kstack.client.post(f"/v1/knowledge/{kb_id}/documents/{first['id']}/reindex")
    assert again.status_code == 202 and again.json()["status"] == "queued"
    assert settled(kstack, kb_id)["a.md"]["status"] == "ready"
    app_id = retrieve_app(kstack, "rotating", top_k=10)
    assert {c["document"] for c in ask(kstack, app_id, "tide tables harbour")["chunks"]} == {"a.md", "b.txt"}

    assert kstack.client.delete(f"/v1/knowledge/{kb_id}/documents/{second['id']}").status_code == 204
    assert {c["document"] for c in ask(kstack, app_id, "tide tables harbour")["chunks"]} == {"a.md"}
    assert kstack.client.get(f"/v1/knowledge/{kb_id}/documents/{second['id']}").status_code == 404

    changed = kstack.client.patch(f"/v1/knowledge/{kb_id}", json={"embedding_model": "wordllama-l2-64"})
    assert changed.status_code == 200 and changed.json()["dimensions"] == 64
    doc = settled(kstack, kb_id)["a.md"]
    assert (doc["status"], doc["embedding_model"]) == ("ready", "wordllama-l2-64")
    assert ask(kstack, app_id, "When are the cats fed?")["chunks"][0]["document"] == "a.md"

    assert kstack.client.delete(f"/v1/knowledge/{kb_id}").status_code == 204
    assert kstack.client.get(f"/v1/knowledge/{kb_id}").status_code == 404
    gone = kstack.wait_run(kstack.run(app_id, {"query": "cats"})["id"])
    assert gone["status"] == "failed" and "no knowledge base 'rotating'" in json.dumps(gone)


def test_another_organization_sees_none_of_it(kstack: Stack, handbook: dict[str, Any]) -> None:
    other = {"Authorization": f"Bearer {kstack.new_org_key()}"}
    kb_id, doc_id = handbook["id"], handbook["docs"]["tides.txt"]["id"]
    assert kstack.client.get("/v1/knowledge", headers=other).json()["items"] == []
    for method, path in [("GET", f"/v1/knowledge/{kb_id}"), ("GET", f"/v1/knowledge/{kb_id}/documents"),
                         ("GET", f"/v1/knowledge/{kb_id}/documents/{doc_id}"),
                         ("POST", f"/v1/knowledge/{kb_id}/documents/{doc_id}/reindex"),
                         ("DELETE", f"/v1/knowledge/{kb_id}/documents/{doc_id}"),
                         ("PATCH", f"/v1/knowledge/{kb_id}"), ("GET", f"/v1/knowledge/{kb_id}/events"),
                         ("DELETE", f"/v1/knowledge/{kb_id}")]:
        response = kstack.client.request(method, path, headers=other, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
    response = kstack.client.post(f"/v1/knowledge/{kb_id}/documents", headers=other,
                                  files={"file": ("x.txt", b"hello", "text/plain")})
    assert response.status_code == 404
    # Their app naming our knowledge base finds nothing of ours.
    theirs = kstack.client.post("/v1/apps", headers=other, json={"name": "spy", "graph": {
        "schema_version": 1,
        "nodes": [node("in", "trigger.api", fields=[{"name": "query"}]),
                  node("kb", "knowledge.retrieve", knowledge_base=kb_id), node("out", "output")],
        "edges": [edge("in", "query", "kb", "query"), edge("kb", "context", "out", "text")]}}).json()
    assert kstack.client.post(f"/v1/apps/{theirs['id']}/publish", headers=other).status_code == 201
    run = kstack.client.post(f"/v1/apps/{theirs['id']}/runs", headers=other,
                             json={"inputs": {"query": "cats"}})
    run_id = run.json()["id"]
    ended = wait_until(lambda: (r := kstack.client.get(f"/v1/runs/{run_id}", headers=other).json())["status"]
                       in ("succeeded", "failed") and r, 30, "the other organization's run")
    assert ended["status"] == "failed" and "sardines" not in json.dumps(ended)


def test_bad_input_is_a_clear_4xx(kstack: Stack, handbook: dict[str, Any]) -> None:
    client, kb_id = kstack.client, handbook["id"]
    cases = [
        (client.post("/v1/knowledge", json={"name": "x", "embedding_model": "nope"}), 422, "embedding_model"),
        (client.post("/v1/knowledge", json={"name": "y", "chunk_size": 200, "chunk_overlap": 200}), 422,
         "chunk_overlap"),
        (client.post("/v1/knowledge", json={"name": "handbook"}), 409, "name"),
        (upload(kstack, kb_id, "photo.png", b"\x89PNG\r\n"), 422, "file"),
        (upload(kstack, kb_id, "empty.txt", b""), 422, "file"),
        (upload(kstack, kb_id, "big.txt", b"a" * 300_001), 413, "file"),
        (upload(kstack, kb_id, "huge.txt", b"a" * 400_000), 413, "body"),
        (client.post(f"/v1/knowledge/{kb_id}/documents", files={"file": ("m.txt", b"hi", "text/plain")},
                     data={"metadata": "[1, 2"}), 422, "metadata"),
        (client.post(f"/v1/knowledge/{kb_id}/documents"), 422, "file"),
        (client.get("/v1/knowledge/not-a-uuid"), 422, "kb_id"),
    ]
    for response, code, where in cases:
        assert response.status_code == code, response.text
        detail = response.json()["detail"]
        assert any(where in item["loc"] or where in item["msg"] for item in detail), detail
    latin1 = upload(kstack, kb_id, "latin.txt", "café crème".encode("latin-1"))
    doc_id = latin1.json()["id"]
    failed = wait_until(lambda: (d := client.get(f"/v1/knowledge/{kb_id}/documents/{doc_id}").json())
                        ["status"] == "failed" and d, 60, "the latin-1 text to fail")
    assert "not UTF-8" in failed["error"]
    assert client.delete(f"/v1/knowledge/{kb_id}/documents/{doc_id}").status_code == 204


def test_the_seeded_docs_example_cites_the_readme(kstack: Stack, tmp_path: Path) -> None:
    seeded = seed_local(session_factory(kstack.database_url), tmp_path)
    queued = seed_docs(session_factory(kstack.database_url), seeded.org_name)
    assert len(queued) == 1
    for document_id, ingestion in queued:
        send_ingest(kstack.celery, document_id, ingestion)
    local = {"Authorization": f"Bearer {seeded.api_key}"}
    kb = next(k for k in kstack.client.get("/v1/knowledge", headers=local).json()["items"]
              if k["name"] == DOCS_KB)
    wait_until(lambda: kstack.client.get(f"/v1/knowledge/{kb['id']}", headers=local)
               .json()["documents"] == {"ready": 1}, 60, "the README to be ingested")
    assert seed_docs(session_factory(kstack.database_url), seeded.org_name) == []  # once
    app_id = next(app_id for app_id, name, _ in seeded.apps if name == "Answer from our docs")
    question = "How do I share an app with people who have no account?"
    tested = kstack.client.post(f"/v1/apps/{app_id}/draft/nodes/search/test", params={"wait": 20},
                                headers=local, json={"inputs": {"query": question}})
    assert tested.status_code == 200, tested.text
    outputs = tested.json()["outputs"]
    assert outputs["sources"][0].startswith("[1] README.md § Mantle › "), outputs["sources"]
    assert any("Shared web apps" in source for source in outputs["sources"]), outputs["sources"]
    assert outputs["context"].startswith(outputs["sources"][0] + "\n")


def test_a_document_whose_message_was_lost_is_sent_again(kstack: Stack) -> None:
    kb_id = kstack.client.post("/v1/knowledge", json={"name": "lost and found"}).json()["id"]
    with session_scope(session_factory(kstack.database_url)) as session:
        kb = kb_store.get_base(session, org_id=kstack.org_id, kb_id=uuid.UUID(kb_id))
        # Stored and queued like an upload whose message the broker lost: nothing is sent.
        kb_store.add_document(session, kb=kb, filename="lost.txt", format="text", content=TEXT, sha256="-",
                              meta={})
    assert settled(kstack, kb_id)["lost.txt"]["status"] == "ready"
