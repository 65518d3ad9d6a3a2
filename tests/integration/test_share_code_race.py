"""Wrong access codes guessed at the same moment, from many connections, on SQLite and PostgreSQL.

Each guess takes one of the minute's attempts before its code is checked, so however the guesses
interleave, no more codes are checked than the limit allows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.public.guard import ACCESS_ATTEMPTS_PER_MINUTE
from tests.committed import Committed, committed_api
from tests.conftest import serve
from tests.webapps import publish, share, steady_minute, webapp_graph

GUESSES = 30
BODY = {"inputs": {"name": "Ada"}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def committed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Committed]:
    """The API on a database of its own, where each request has its own connection."""
    with committed_api(request.param, tmp_path_factory.mktemp("race")) as built:
        yield built


def _guess_together(url: str, slug: str, codes: list[str]) -> list[int]:
    """Post each code as an access code at the same moment; the status codes, in order."""
    barrier = threading.Barrier(len(codes))

    def guess(code: str) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait(timeout=30)
            return client.post(f"/s/{slug}/runs", json={**BODY, "access_code": code}).status_code

    with ThreadPoolExecutor(len(codes)) as pool:
        return list(pool.map(guess, codes))


def test_concurrent_wrong_guesses_check_no_more_codes_than_the_limit(committed: Committed) -> None:
    slug = share(committed.client, publish(committed.client, webapp_graph()), access_code="correct horse",
                 visitor_per_minute=None)["slug"]
    steady_minute(margin=20)
    with serve(committed.app) as live:
        answers = _guess_together(live.url, slug, [f"guess {i}" for i in range(GUESSES)])
        assert answers.count(403) == ACCESS_ATTEMPTS_PER_MINUTE, answers
        assert answers.count(429) == GUESSES - ACCESS_ATTEMPTS_PER_MINUTE, answers
        # The right code is refused too while the minute's attempts are spent.
        assert httpx.post(f"{live.url}/s/{slug}/runs", timeout=30,
                          json={**BODY, "access_code": "correct horse"}).status_code == 429


def test_right_codes_spend_no_attempts(committed: Committed) -> None:
    slug = share(committed.client, publish(committed.client, webapp_graph()), access_code="open sesame",
                 visitor_per_minute=None)["slug"]
    steady_minute(margin=20)
    with serve(committed.app) as live:
        def post(code: str) -> int:
            return httpx.post(f"{live.url}/s/{slug}/runs", timeout=30,
                              json={**BODY, "access_code": code}).status_code

        right = ACCESS_ATTEMPTS_PER_MINUTE + 5
        assert [post("open sesame") for _ in range(right)] == [202] * right
        # Every attempt of the minute is still there for typos.
        typos = [post("open sesam") for _ in range(ACCESS_ATTEMPTS_PER_MINUTE + 1)]
        assert typos == [403] * ACCESS_ATTEMPTS_PER_MINUTE + [429]
