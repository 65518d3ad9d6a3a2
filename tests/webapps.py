"""Helpers for shared web app tests: a web-form app, publishing it, sharing it, reading its page."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from fastapi.testclient import TestClient

from blocks.text_template import TemplateBlock
from tests.factories import edge, node

FIELDS: list[dict[str, Any]] = [
    {"name": "name", "kind": "text", "label": "Your name", "max_length": 40,
     "help": "As you like to be called"},
    {"name": "story", "kind": "long_text", "label": "Your story", "required": False},
    {"name": "age", "kind": "number", "minimum": 0, "maximum": 130, "step": 1, "required": False},
    {"name": "tone", "kind": "choice", "choices": ["warm", "formal"], "default": "warm"},
    {"name": "loud", "kind": "checkbox", "label": "Shout it"},
]


def webapp_graph(template: str = "Hello, {{ name }}!{% if loud %} HELLO!{% endif %}",
                 fields: list[dict[str, Any]] | None = None, middle: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """webapp.input → text.template → output; `middle` nodes (fed `text`, giving `value`) go before output."""
    nodes = [node("form", "webapp.input", fields=fields or FIELDS, submit_label="Greet me"),
             node("greet", "text.template", template=template)]
    used = TemplateBlock.from_config({"template": template}).input_ports()
    edges = [edge("form", name, "greet", name) for name in used]
    last, port = "greet", "text"
    for extra in middle or []:
        nodes.append(extra)
        edges.append(edge(last, port, extra["id"], "text" if extra["type"] == "human.review" else "value"))
        last, port = extra["id"], "text" if extra["type"] == "human.review" else "value"
    nodes.append(node("out", "output", fields=[{"name": "greeting", "type": "string", "label": "Greeting"}]))
    edges.append(edge(last, port, "out", "greeting"))
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def publish(client: TestClient, graph: dict[str, Any], name: str = "Greeter <b>web</b>",
            description: str = "Says hello on the web.") -> str:
    """Create and publish an app; its id."""
    created = client.post("/v1/apps", json={"name": name, "description": description, "graph": graph})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    published = client.post(f"/v1/apps/{app_id}/publish")
    assert published.status_code == 201, published.text
    return app_id


def share(client: TestClient, app_id: str, **settings: Any) -> dict[str, Any]:
    """Create a share link of the app; the share as the API returns it."""
    created = client.post(f"/v1/apps/{app_id}/shares", json=settings)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def page_config(html: str) -> dict[str, Any]:
    """The JSON data block a public page hands its script (URLs and the page token)."""
    found = re.search(r'<script type="application/json" id="mantle-config">(.*?)</script>', html, re.S)
    assert found, "the page has no config block"
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def steady_minute(margin: float = 15.0) -> None:
    """Wait (at most `margin` s) until the minute has `margin` s left, so a per-minute window holds."""
    deadline = time.monotonic() + margin + 1
    while 60 - time.time() % 60 < margin:
        assert time.monotonic() < deadline, "the clock did not move on"
        time.sleep(0.05)
