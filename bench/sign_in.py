"""Sign-in timing: an unknown email and a wrong password should take the same time.

Prints one JSON line: `unknown_email_ms` and `wrong_password_ms` (medians of `POST /v1/session`
in process, on the embedded database, with the attempt limits raised so no 429 cuts the work
short), their ratio (`ratio`, goal: within 0.9–1.1), and `right_password_ms` beside them. Both
failing paths verify an argon2id hash (a dummy one for an unknown email), so they differ only
by the account lookup. Run from the repository root: `.venv/bin/python bench/sign_in.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402

from api.main import create_app  # noqa: E402
from core.settings import Settings  # noqa: E402
from migrations.run import upgrade  # noqa: E402
from models import accounts  # noqa: E402
from models.db import session_factory, session_scope  # noqa: E402
from models.orgs import Role, create_org  # noqa: E402

PASSWORD = "violet-harbor-1987"


def timed_ms(client: TestClient, email: str, password: str, expect: int) -> float:
    """The time of one sign-in with this email and password."""
    started = time.perf_counter()
    answer = client.post("/v1/session", json={"email": email, "password": password})
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == expect, answer.text
    return elapsed


def main() -> None:
    """Measure and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/mantle.db"
        upgrade(url)
        with session_scope(session_factory(url)) as session:
            org = create_org(session, name="bench")
            user = accounts.create_user(session, email="ada@example.com", password=PASSWORD)
            accounts.add_member(session, org_id=org.id, user_id=user.id, role=Role.builder)
        settings = Settings(data_dir=Path(folder), database_url=url, secret_key="bench",
                            sign_in_per_account=10_000, sign_in_per_address=10_000)
        client = TestClient(create_app(settings))
        timed_ms(client, "ada@example.com", PASSWORD, 201)  # warm up
        samples: dict[str, list[float]] = {"unknown": [], "wrong": [], "right": []}
        for _ in range(args.rounds):  # interleaved, so a busy moment weighs on each alike
            samples["unknown"].append(timed_ms(client, "nobody@example.com", "not-the-password", 401))
            samples["wrong"].append(timed_ms(client, "ada@example.com", "not-the-password", 401))
            samples["right"].append(timed_ms(client, "ada@example.com", PASSWORD, 201))
        unknown, wrong, right = (statistics.median(samples[k]) for k in ("unknown", "wrong", "right"))
    print(json.dumps({"unknown_email_ms": round(unknown, 1), "wrong_password_ms": round(wrong, 1),
                      "ratio": round(unknown / wrong, 3), "right_password_ms": round(right, 1),
                      "rounds": args.rounds}))


if __name__ == "__main__":
    main()
