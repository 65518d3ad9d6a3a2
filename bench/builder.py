"""Builder benchmark: open a 500-node app in headless Chromium, and the draft save round trip.

Prints one JSON line:
- `open_500_ms`: median wall time from navigating to the app's editor URL to an idle canvas (its
  nodes drawn, the live validation answered, and the browser idle for a frame), for the
  500-node, 1,000-edge graph of bench/validate.py. Goal: under 1,500 ms.
- `save_p95_ms`: p95 of the autosave `PUT /v1/apps/{id}/draft` round trip of that graph as the
  page sends it after a node is dragged (request start to response end, from the browser's own
  resource timing). Goal: under 150 ms.
Beside them, the baselines measured in the same process: `open_empty_ms`, the same navigation for
a one-node app (the fixed cost of the page), and `save_api_p95_ms`, the same PUT sent from Python
without a browser (the cost of the route itself).

The API is served in this process on the embedded database (SQLite), as `make up` serves it;
`--database-url` picks another. Run from the repository root: `.venv/bin/python bench/builder.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from api.main import create_app  # noqa: E402
from bench.timing import p95  # noqa: E402
from bench.validate import big_graph  # noqa: E402
from core.settings import Settings  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models.db import session_factory  # noqa: E402
from models.orgs import Role, create_key, create_org  # noqa: E402
from tests.conftest import CHROMIUM, serve  # noqa: E402

OPEN_GOAL_MS = 1500
SAVE_GOAL_MS = 150
# Resolves once the browser has painted twice and then found itself idle.
IDLE = """() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(
  () => (window.requestIdleCallback ?? setTimeout)(() => done(true)))))"""


def _open(page: Any, url: str) -> float:
    """Milliseconds from navigation to an idle canvas with its nodes drawn and the draft loaded."""
    start = time.perf_counter()
    with page.expect_response(lambda r: r.url.endswith("/draft")):
        page.goto(url)
    page.wait_for_selector(".react-flow__node")
    page.wait_for_selector('[data-testid="save-state"]')
    page.evaluate(IDLE)
    return (time.perf_counter() - start) * 1000


def _save_timing(page: Any, node: str, step: int) -> float:
    """Drag `node` a little and return the round trip of the autosave PUT it causes."""
    box = page.locator(f'[data-testid="rf__node-{node}"]').bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    with page.expect_response(lambda r: r.request.method == "PUT" and r.url.endswith("/draft")) as answer:
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 15 + step % 3, y + 5, steps=3)
        page.mouse.up()
    response = answer.value
    assert response.status == 200, response.text()
    response.finished()  # the timing's last entries are known once the body has arrived
    timing = response.request.timing
    return float(timing["responseEnd"] - timing["requestStart"])


def main() -> None:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--saves", type=int, default=30)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="mantle-bench-builder-"))
    url = args.database_url or f"sqlite:///{data_dir / 'mantle.db'}"
    upgrade(url)
    sessions = session_factory(url)
    with sessions() as s:
        org = create_org(s, name="bench")
        _, key = create_key(s, org_id=org.id, name="bench", role=Role.admin)
        s.commit()
    settings = Settings(data_dir=data_dir, database_url=url, secret_key="bench-builder-secret")
    graph = big_graph()
    with serve(create_app(settings, freeze_gc=True)) as server:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        big = api.post("/v1/apps", json={"name": "Five hundred", "graph": graph}).json()["id"]
        small = api.post("/v1/apps", json={"name": "One", "graph": {"nodes": graph["nodes"][:1], "edges": []}}
                         ).json()["id"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            link = api.post("/v1/session/links").json()["url"]  # signs the browser in, as `make up`'s
            page.goto(link.replace(settings.public_base_url.rstrip("/"), server.url))
            page.wait_for_selector('[data-testid="apps-list"]')
            first = graph["nodes"][0]["id"]
            opens = [_open(page, f"{server.url}/builder/apps/{big}") for _ in range(args.opens)]
            empties = [_open(page, f"{server.url}/builder/apps/{small}") for _ in range(args.opens)]
            page.screenshot(path=str(data_dir / "open.png"))
            page.goto(f"{server.url}/builder/apps/{big}")
            page.wait_for_selector(".react-flow__node")
            page.wait_for_selector('[data-testid="save-state"]')
            node = page.locator(".react-flow__node").first.get_attribute("data-id")
            saves = [_save_timing(page, node or first, i) for i in range(args.saves)]
            browser.close()
        draft = api.get(f"/v1/apps/{big}/draft")
        revision, body = draft.json()["revision"], draft.json()["graph"]
        direct = []
        for _ in range(args.saves):
            start = time.perf_counter()
            answer = api.put(f"/v1/apps/{big}/draft", json=body, headers={"If-Match": f'"{revision}"'})
            direct.append((time.perf_counter() - start) * 1000)
            revision = answer.json()["revision"]
    print(json.dumps({
        "bench": "builder", "nodes": len(graph["nodes"]), "edges": len(graph["edges"]),
        "open_500_ms": round(statistics.median(opens), 1),
        "open_empty_ms": round(statistics.median(empties), 1),
        "open_goal_ms": OPEN_GOAL_MS, "save_p95_ms": round(p95(saves), 1),
        "save_api_p95_ms": round(p95(direct), 1), "save_goal_ms": SAVE_GOAL_MS,
        "database": url.split(":", 1)[0],
    }))


if __name__ == "__main__":
    main()
