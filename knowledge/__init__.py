"""Knowledge bases: documents turned into searchable chunks, for apps that answer from them.

The path of a document, in plain words:

* `parsing`: the uploaded bytes (plain text, Markdown, HTML, PDF) become sections of text, each
  with the heading path (or page) it sits under, so a chunk can be cited.
* `chunking`: sections are cut into overlapping passages of about `chunk_size` characters, on
  paragraph and sentence boundaries where they fall.
* `embedding`: passages become unit vectors with a model that runs offline (the weights ship inside
  the `wordllama` wheel), loaded once per process; the model is recorded per knowledge base.
* `stores`: chunks are indexed for vector search (sqlite-vec on SQLite; pgvector with an HNSW
  index on PostgreSQL, or an exact scan where the extension is missing) and for keyword search
  (FTS5; PostgreSQL full text).
* `search`: hybrid search: the vector and keyword rankings fused by reciprocal rank, with filters.

Ingestion runs on the `knowledge` queue's workers (`worker/knowledge.py`); the API only stores the
bytes and queues them, and never loads the model.
"""
