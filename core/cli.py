"""The `mantle` command line: run the services, migrate, and manage organizations and keys."""

from __future__ import annotations

import signal
import subprocess
import sys

import click

from core.logging import configure_logging
from core.settings import get_settings


def _setup() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, "console" if sys.stderr.isatty() else settings.log_format)


@click.group()
def main() -> None:
    """Mantle: a backend for low-code AI apps."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """Everything on embedded defaults: migrate, seed a local organization, serve the API."""
    import uvicorn

    from core.seed import seed_local
    from migrations.run import upgrade
    from models.db import session_factory

    _setup()
    settings = get_settings()
    click.echo(f"• database: {settings.resolved_database_url}", err=True)
    upgrade(settings.resolved_database_url)
    seeded = seed_local(session_factory(settings.resolved_database_url), settings.data_dir)
    click.echo("")
    click.echo(f"Mantle is starting at http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    click.echo(f"Organization: {seeded.org_name}")
    click.echo(f"API key:      {seeded.api_key}")
    click.echo("Example apps:")
    for app_id, name, version in seeded.apps:
        click.echo(f"  {name:<20} {app_id}  (published version {version})")
    click.echo(f"\nTry: curl -H 'Authorization: Bearer {seeded.api_key}' http://{host}:{port}/v1/apps\n")
    # One process group: Ctrl-C reaches the worker too, and we wait for its warm shutdown.
    worker = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--queues", "runs", "--beat"])
    click.echo(f"• run worker started (pid {worker.pid})", err=True)
    try:
        uvicorn.run("api.main:create_app", factory=True, host=host, port=port, log_config=None)
    finally:
        _stop(worker)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask a child process to finish its work and exit; kill it if it will not."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@main.command()
@click.option("--queues", default="runs", show_default=True, help="Comma-separated queues to consume.")
@click.option("--concurrency", type=int, default=None, help="Worker processes (default: from settings).")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork",
              show_default=True)
@click.option("--beat/--no-beat", default=False, help="Also run the scheduler (reaper) in this process.")
def worker(queues: str, concurrency: int | None, pool: str, beat: bool) -> None:
    """A Celery worker for the run queue (and, later, inference)."""
    _setup()
    from worker.celery_app import celery_app

    settings = get_settings()
    argv = ["worker", "--queues", queues, "--pool", pool, "--loglevel", settings.log_level,
            "--concurrency", str(concurrency or settings.worker_concurrency), "--without-mingle",
            "--without-gossip", "--hostname", f"mantle-{queues.replace(',', '-')}@%h"]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def api(host: str, port: int, workers: int) -> None:
    """Serve the API only (the database must be migrated)."""
    import uvicorn

    _setup()
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_config=None)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from migrations.run import upgrade

    _setup()
    upgrade(get_settings().resolved_database_url, revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` empties the database)."""
    from migrations.run import downgrade

    _setup()
    downgrade(get_settings().resolved_database_url, revision)


@main.group()
def orgs() -> None:
    """Organizations."""


@orgs.command("create")
@click.argument("name")
def orgs_create(name: str) -> None:
    """Create an organization called NAME."""
    from core.errors import MantleError
    from models.db import session_factory, session_scope
    from models.orgs import create_org

    try:
        with session_scope(session_factory(get_settings().resolved_database_url)) as session:
            org = create_org(session, name=name)
            click.echo(f"created organization {org.name} ({org.id})")
    except MantleError as exc:
        raise click.ClickException(exc.message) from None


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--name", default="admin", show_default=True, help="A label for the key.")
@click.option("--role", type=click.Choice(["admin", "builder", "reviewer"]), default="admin",
              show_default=True)
def keys_create(org_name: str, name: str, role: str) -> None:
    """Create an API key; the key alone is printed on the last line."""
    from core.errors import MantleError
    from models import audit
    from models.db import session_factory, session_scope
    from models.orgs import Role, create_key, get_org_by_name

    try:
        with session_scope(session_factory(get_settings().resolved_database_url)) as session:
            org = get_org_by_name(session, name=org_name)
            key, secret = create_key(session, org_id=org.id, name=name, role=Role(role))
            audit.record(session, org_id=org.id, actor="cli", action="key.create",
                         target_type="api_key", target_id=key.id, details={"name": name, "role": role})
    except MantleError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"created {role} key {key.prefix}… for {org_name}; it is shown only once:", err=True)
    click.echo(secret)


if __name__ == "__main__":
    main()
