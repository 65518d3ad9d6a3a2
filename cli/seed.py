"""The embedded deployment's first organization, its local API key and the example apps."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blocks.registry import default_registry
from builder.graph import Graph
from builder.validation import analyze
from models import apps as app_store
from models import audit
from models.apps import App
from models.db import session_scope
from models.orgs import Organization, Role, authenticate, create_key, create_org
from models.shares import DEFAULT_LIMITS, Share, new_slug

LOCAL_ORG = "local"


@dataclass(frozen=True)
class Seeded:
    """What `mantle up` prints: the organization, its key and the example apps."""

    org_name: str
    api_key: str
    apps: list[tuple[str, str, int]]  # (id, name, latest version)
    shares: list[tuple[str, str]] = field(default_factory=list)  # (app name, public slug)


def _key_file(data_dir: Path) -> Path:
    return data_dir / "local-api-key"


def seed_local(sessions: sessionmaker[Session], data_dir: Path) -> Seeded:
    """Make sure the local organization, an admin key and the examples exist; idempotent.

    Keys are stored hashed, so the local key's secret is kept in a 0600 file in the data
    directory to be printed again on the next start.
    """
    key_file = _key_file(data_dir)
    with session_scope(sessions) as session:
        org = session.scalar(select(Organization).where(Organization.name == LOCAL_ORG))
        if org is None:
            org = create_org(session, name=LOCAL_ORG)
        secret = key_file.read_text().strip() if key_file.exists() else ""
        if not secret or authenticate(session, secret=secret) is None:
            _, secret = create_key(session, org_id=org.id, name="local admin", role=Role.admin)
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secret + "\n")
            os.chmod(key_file, 0o600)
        existing = set(session.scalars(select(App.name).where(App.org_id == org.id)))
        for doc in _examples():
            if doc["name"] not in existing:
                _install_example(session, org.id, doc)
        rows = session.execute(
            select(App.id, App.name, App.latest_version).where(App.org_id == org.id).order_by(App.name)
        ).all()
        shares = _share_web_examples(session, org.id, [str(d["name"]) for d in _examples()])
        return Seeded(LOCAL_ORG, secret, [(str(r[0]), r[1], r[2]) for r in rows], shares)


def _examples() -> list[dict[str, object]]:
    folder = resources.files("cli") / "examples"
    return [json.loads(f.read_text()) for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".json")]


def _share_web_examples(session: Session, org_id: uuid.UUID, names: list[str]) -> list[tuple[str, str]]:
    """A public link to each example that starts from a web form (made once, kept across starts)."""
    found = []
    examples = select(App).where(App.org_id == org_id, App.name.in_(names), App.latest_version > 0)
    for app in session.scalars(examples.order_by(App.name)):
        version = app_store.get_version(session, app=app)
        if not any(n.get("type") == "webapp.input" for n in version.graph.get("nodes", [])):
            continue
        share = session.scalar(select(Share).where(Share.app_id == app.id, Share.revoked_at.is_(None),
                                                   Share.label == "example").limit(1))
        if share is None:
            share = Share(org_id=org_id, app_id=app.id, slug=new_slug(), label="example", created_by="seed",
                          **DEFAULT_LIMITS)
            session.add(share)
        found.append((app.name, share.slug))
    return found


def _install_example(session: Session, org_id: object, doc: dict[str, object]) -> None:
    draft = Graph.model_validate(doc["draft"])
    problems = analyze(draft, default_registry()).problems
    if problems:  # a shipped example must be valid; fail loudly in development
        raise RuntimeError(f"example {doc['name']!r} is invalid: {problems}")
    app = app_store.create_app(session, org_id=org_id, name=str(doc["name"]),  # type: ignore[arg-type]
                               description=str(doc.get("description", "")), draft=draft.dump())
    app_store.publish(session, app=app, graph=draft.dump(), note="example", actor="seed")
    audit.record(session, org_id=app.org_id, actor="seed", action="app.import", target_type="app",
                 target_id=app.id, details={"example": True})
