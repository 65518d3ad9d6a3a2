"""The `mantle` command line: run the services, migrate, and manage organizations and keys."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

import click
import structlog
from sqlalchemy.orm import Session, sessionmaker

from core.logging import choose_format, configure_logging
from core.settings import SECRET_KEY_FILE, Settings, get_settings
from twilio_sim.cli import twilio_sim

log = structlog.get_logger("mantle.cli")


def _setup() -> None:
    settings = get_settings()
    explicit = "log_format" in settings.model_fields_set  # MANTLE_LOG_FORMAT was set
    configure_logging(settings.log_level, choose_format(settings.log_format, explicit))


@click.group()
def main() -> None:
    """Mantle: a backend for low-code AI apps."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """Everything on embedded defaults: migrate, seed a local organization, serve the API and its
    workers; SIGTERM, SIGHUP or Ctrl-C stops them all, and a worker that dies is started again."""
    from cli.seed import seed_local
    from migrations.run import upgrade
    from models.db import session_factory

    # Links it prints and the API returns (sign-in, shares, webhooks) name where it listens,
    # unless a public URL was configured; the workers inherit it.
    os.environ.setdefault("MANTLE_PUBLIC_BASE_URL", f"http://{host}:{port}")
    get_settings.cache_clear()
    _setup()
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    seeded = seed_local(session_factory(settings.resolved_database_url), settings.data_dir)
    _queue_docs(settings, seeded.org_name)
    link = _builder_link(session_factory(settings.resolved_database_url), seeded.api_key)
    # The sign-in link is the first line a person sees; what follows says what runs where.
    click.echo(f"Open the builder: http://{host}:{port}/builder/sign-in?token={link}")
    click.echo("                  (a one-time sign-in link; or open /builder and sign in with the key)")
    click.echo(f"Mantle is starting at http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    click.echo(f"Organization: {seeded.org_name}")
    click.echo(f"API key:      {seeded.api_key}")
    click.echo("Example apps:")
    for app_id, name, version in seeded.apps:
        click.echo(f"  {name:<22} {app_id}  (published version {version})")
    if seeded.shares:
        click.echo("Shared web apps (open in a browser, no account needed):")
        for name, slug in seeded.shares:
            click.echo(f"  {name:<22} http://{host}:{port}/s/{slug}")
    click.echo(f"\nTry: curl -H 'Authorization: Bearer {seeded.api_key}' http://{host}:{port}/v1/apps\n")
    up_log = structlog.get_logger("mantle.up")
    up_log.info(f"database: {settings.resolved_database_url}")
    key_file = settings.data_dir / SECRET_KEY_FILE
    if key_file.exists() and key_file.read_text().strip() == settings.secret_key:
        up_log.info(f"secret key: {key_file.resolve()} (made on first start; keep it with the database)")
    if os.geteuid() == 0:  # Celery would warn in each worker; said once here instead
        up_log.warning("running as root, and so do the workers: outside a sandbox, run mantle as a user")
    _pull_default(settings)
    _serve_supervised(host, port, settings)


def _serve_supervised(host: str, port: int, settings: Settings) -> None:
    """Serve the API in this process and the workers beside it until SIGTERM, SIGHUP or SIGINT
    (see cli/supervisor.py); the API's /readyz names a worker that is missing or warming up."""
    import uvicorn

    from cli.supervisor import Child, Supervisor, free_port

    class Server(uvicorn.Server):
        """uvicorn, without its own signal handling: it would re-raise SIGTERM once shut down,
        and the default action would end this process before it stops the workers."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    worker = [sys.executable, "-m", "cli", "worker"]
    runs_port, inference_port = free_port(), settings.inference_metrics_port or free_port()
    supervisor = Supervisor([
        # The run worker also ingests knowledge documents (queue `knowledge`).
        Child("run worker", [*worker, "--queues", "runs,knowledge", "--beat", "--health-port",
                             str(runs_port)],
              runs_port),
        # Model serving in its own process: it holds the weights, the API and run worker never do.
        Child("inference worker", [*worker, "--queues", "inference", "--health-port", str(inference_port)],
              inference_port)],
        on_ready=lambda: log.info(f"Mantle is ready at http://{host}:{port} (the API and both workers)"))
    servers: list[Server] = []
    stopped_by: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        for server in servers:
            if server.should_exit and signum == signal.SIGINT:
                server.force_exit = True  # a second Ctrl-C: stop waiting for open connections
            server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # before any worker starts
        signal.signal(signum, stop)
    supervisor.start()  # the workers warm up while the API loads
    try:
        from api.main import create_server_app

        app = create_server_app()
        app.state.worker_probes = supervisor.probes()
        servers.append(Server(uvicorn.Config(app, host=host, port=port, log_config=None)))
        if not stopped_by:
            servers[0].run()
    finally:
        supervisor.stop()
    if stopped_by:
        log.info(f"stopped on {signal.Signals(stopped_by[0]).name}")


def _queue_docs(settings: Settings, org_name: str) -> None:
    """Put the README in the local organization's "Mantle docs" knowledge base, queued for the run
    worker to ingest (the example "Answer from our docs" searches it)."""
    from cli.seed_docs import seed_docs
    from models.db import session_factory
    from worker.knowledge_queue import send_ingest
    from worker.transport import make_celery

    queued = seed_docs(session_factory(settings.resolved_database_url), org_name)
    if queued:
        celery = make_celery(settings)
        for document_id, ingestion in queued:
            send_ingest(celery, document_id, ingestion)


def _builder_link(sessions: sessionmaker[Session], api_key: str) -> str:
    """A fresh one-time sign-in secret for the seeded key (printed on every start, like Jupyter's)."""
    from models.browser_sessions import create_link
    from models.db import session_scope
    from models.orgs import authenticate

    with session_scope(sessions) as session:
        key = authenticate(session, secret=api_key)
        assert key is not None, "the seeded key was just checked"
        return create_link(session, key=key)


def _pull_default(settings: Settings) -> None:
    """Make the default model's weights local once (a GGUF conversion, with a progress bar)."""
    from inference.deployments import DEFAULT_MODEL, configured
    from worker.inference.sources import ModelUnavailable, ensure_local, is_ready, local_folder

    deployment = configured(settings).get(DEFAULT_MODEL)
    if deployment is None or is_ready(local_folder(deployment, settings)):
        return
    log.info(f"preparing the default model {DEFAULT_MODEL} (once)")
    try:
        ensure_local(deployment, settings, progress=sys.stderr.isatty())
    except ModelUnavailable as exc:  # the app still starts; llm.prompt nodes fail with this message
        log.error(f"default model unavailable: {exc}")


@main.command()
@click.option("--queues", default="runs", show_default=True, help="Comma-separated queues to consume.")
@click.option("--concurrency", type=int, default=None, help="Worker processes (default: from settings).")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default=None,
              help="Default: threads for inference queues (one batching engine per process); else solo at "
                   "concurrency 1, prefork above.")
@click.option("--beat/--no-beat", default=False, help="Also run the scheduler (reaper) in this process.")
@click.option("--health-port", type=int, default=None,
              help="Serve /healthz, /readyz and /metrics on this port (inference workers default to "
                   "MANTLE_INFERENCE_METRICS_PORT; 0: off).")
@click.option("--warm-up/--no-warm-up", default=True, show_default=True,
              help="Build the policy engine (PII analyzer, profanity model) before consuming, so the "
                   "first governed run does not wait for it.")
def worker(queues: str, concurrency: int | None, pool: str | None, beat: bool,
           health_port: int | None, warm_up: bool) -> None:
    """A Celery worker for the run queue, or (`--queues inference`) one that serves models."""
    from cli.supervisor import die_with_supervisor

    if die_with_supervisor():  # started by `mantle up`: never outlive it
        # `mantle up` said once that it runs as root; Celery would say it again in each worker.
        warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
    from cli.metrics_dir import use_private_metrics_dir

    use_private_metrics_dir("worker")  # before anything imports prometheus_client
    _setup()
    from worker.celery_app import celery_app

    settings = get_settings()
    serves_models = any(q == "inference" or q.startswith("inference.") for q in queues.split(","))
    warm_up = warm_up and not serves_models  # an inference worker runs no policies
    if not serves_models:  # a run worker: every kind of wait its blocks may start must have a handler
        _require_wait_handlers(settings)
    warmed = threading.Event()
    if health_port is None:
        health_port = settings.inference_metrics_port if serves_models else 0
    if health_port:
        _serve_worker_health(health_port, serves_models, warmed if warm_up else None)
    if warm_up:
        _warm_up_policies(warmed)
    if serves_models:
        # A progress bar per model load is noise in a log; `mantle models pull` still shows one.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from worker.inference.tasks import start_serving

        start_serving()
        pool = pool or "threads"
        concurrency = concurrency or settings.inference_concurrency
    from celery import signals

    from core.gc_tuning import freeze_startup_objects

    # Out of the collector's sight once started (core/gc_tuning.py): the worker process, and each
    # prefork child after it forks.
    signals.worker_ready.connect(lambda **_: freeze_startup_objects(), weak=False)
    signals.worker_process_init.connect(lambda **_: freeze_startup_objects(), weak=False)
    concurrency = concurrency or settings.worker_concurrency
    # One process runs one task at a time either way; the solo pool runs it in the process that
    # took it from the broker, without prefork's hand-off to a child and back (a pipe, a pickle
    # each way and a second process to wake). What it gives up, hard time limits on tasks, Mantle
    # does not use: blocks bound their own waits.
    pool = pool or ("solo" if concurrency == 1 else "prefork")
    # No banner (--quiet): multi-line text on stdout breaks a log of JSON lines; this line says it.
    log.info(f"worker starting on queue {queues} ({pool} pool, concurrency {concurrency})", queues=queues,
             pool=pool, concurrency=concurrency)
    argv = ["--quiet", "worker", "--queues", queues, "--pool", pool, "--loglevel", settings.log_level,
            "--concurrency", str(concurrency), "--without-mingle",
            "--without-gossip", "--hostname", f"mantle-{queues.replace(',', '-')}@%h"]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


def _require_wait_handlers(settings: Settings) -> None:
    """Refuse to start a run worker whose blocks may suspend with a kind no handler takes."""
    from blocks.registry import load_registry
    from worker.engine import MissingWaitHandler, require_wait_handlers

    try:
        require_wait_handlers(load_registry(tuple(settings.block_plugins)))
    except MissingWaitHandler as exc:
        raise click.ClickException(str(exc)) from None


def _warm_up_policies(warmed: threading.Event) -> None:
    """Build the policy engine in the worker's main process before it forks its pool: the first
    governed run would otherwise wait seconds for it, and prefork children share the pages."""
    import time

    from governance.evaluate import warm_up

    started = time.perf_counter()
    warm_up()
    warmed.set()
    log.info(f"policy engine ready in {time.perf_counter() - started:.1f} s",
             seconds=round(time.perf_counter() - started, 2))


def _serve_worker_health(port: int, serves_models: bool, warmed: threading.Event | None) -> None:
    """Start the worker's health endpoint before it loads models or connects (see worker/health.py)."""
    from celery import signals

    from models.db import session_factory
    from worker.celery_app import celery_app
    from worker.health import serve_health
    from worker.metrics_export import mark_process_dead
    from worker.probes import Probe, broker_probe, database_probe

    probes: dict[str, Probe] = {
        # read-only: a probe takes no writer's turn and, on SQLite, no write lock
        "database": database_probe(session_factory(get_settings().resolved_database_url, readonly=True)),
        "broker": broker_probe(celery_app)}
    if serves_models:
        from worker.inference.tasks import pinned_models_probe

        probes["model"] = pinned_models_probe
    if warmed is not None:
        probes["policy_engine"] = lambda: None if warmed.is_set() else "warming up the policy engine"
    serve_health(port, probes)
    # A prefork child that exits takes its live gauges with it; its counters stay in the sum.
    signals.worker_process_shutdown.connect(lambda pid=None, **_: mark_process_dead(pid or os.getpid()),
                                            weak=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def api(host: str, port: int, workers: int) -> None:
    """Serve the API only (the database must be migrated)."""
    from cli.metrics_dir import use_private_metrics_dir

    use_private_metrics_dir("api")  # several uvicorn workers answer /metrics with one sum
    import uvicorn

    _setup()
    # No access log: a line per request costs CPU on the hot path, and the request metrics
    # (mantle_http_requests_total) and the request id on every application log line cover it.
    uvicorn.run("api.main:create_server_app", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False, loop="uvloop", http="httptools",
                # Longer than any client's or proxy's idle keep-alive (httpx: 5 s), so the server
                # never closes a connection just as a client sends on it (a RemoteProtocolError).
                timeout_keep_alive=75)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="heads")
@click.option("--wait", "wait_s", type=float, default=0, show_default=True,
              help="Seconds to keep retrying while the database does not accept connections yet.")
def db_upgrade(revision: str, wait_s: float) -> None:
    """Apply migrations up to REVISION (default: every head)."""
    from migrations.run import upgrade

    _setup()
    url = get_settings().resolved_database_url
    if wait_s > 0:
        from models.db import make_engine
        from worker.probes import wait_for_database

        engine = make_engine(url)
        try:
            wait_for_database(engine, wait_s)
        except Exception as exc:  # the last connection error, after every retry
            raise click.ClickException(f"the database did not answer within {wait_s:g} s: {exc}") from None
        finally:
            engine.dispose()
    upgrade(url, revision)
    click.echo("database is up to date", err=True)


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


@orgs.command("quota")
@click.argument("name")
@click.option("--tokens-per-day", type=click.IntRange(min=0), default=None,
              help="Model tokens (prompt and completion) per UTC day; omit for no limit.")
@click.option("--requests-per-minute", type=click.IntRange(min=0), default=None,
              help="Model calls per minute; omit for no limit.")
@click.option("--on-exceed", type=click.Choice(["fail", "wait"]), default="fail", show_default=True,
              help="A run's model node over quota: fail with the reason, or wait for the window.")
def orgs_quota(name: str, tokens_per_day: int | None, requests_per_minute: int | None,
               on_exceed: str) -> None:
    """Set organization NAME's model quota (the options left out are unlimited)."""
    from core.errors import MantleError
    from models import audit, quotas
    from models.db import session_factory, session_scope
    from models.orgs import get_org_by_name

    try:
        with session_scope(session_factory(get_settings().resolved_database_url)) as session:
            org = get_org_by_name(session, name=name)
            quotas.set_quota(session, org_id=org.id, tokens_per_day=tokens_per_day,
                             requests_per_minute=requests_per_minute, on_exceed=quotas.OnExceed(on_exceed))
            audit.record(session, org_id=org.id, actor="cli", action="quota.update",
                         target_type="organization", target_id=org.id,
                         details={"tokens_per_day": tokens_per_day, "on_exceed": on_exceed,
                                  "requests_per_minute": requests_per_minute})
    except MantleError as exc:
        raise click.ClickException(exc.message) from None
    tokens = "unlimited" if tokens_per_day is None else tokens_per_day
    requests = "unlimited" if requests_per_minute is None else requests_per_minute
    limits = f"{tokens} tokens per day, {requests} requests per minute"
    click.echo(f"quota of {name}: {limits}; over it, a run's model node will {on_exceed}")


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
            key, secret = create_key(session, org_id=org.id, name=name, role=Role(role), created_by="cli")
            audit.record(session, org_id=org.id, actor="cli", action="key.create",
                         target_type="api_key", target_id=key.id, details={"name": name, "role": role})
    except MantleError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"created {role} key {key.prefix}… for {org_name}; it is shown only once:", err=True)
    click.echo(secret)


@main.group()
def users() -> None:
    """People's accounts (for the first admin, and for recovery)."""


def _password_link(secret: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/builder/reset-password?token={secret}"


@users.command("create")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--role", type=click.Choice(["admin", "builder", "reviewer"]), default="admin",
              show_default=True)
@click.option("--password", "ask", is_flag=True, default=False,
              help="Type the password now (asked twice); without it a random one is set and the "
                   "printed link lets the person choose theirs.")
def users_create(email: str, org_name: str, role: str, ask: bool) -> None:
    """Create an account for EMAIL in an organization (or add an existing account to it); a
    one-time set-password link is printed on the last line."""
    from core.errors import MantleError
    from models import accounts, audit
    from models.db import session_factory, session_scope
    from models.orgs import Role, get_org_by_name

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True) if ask else None
    try:
        with session_scope(session_factory(get_settings().resolved_database_url)) as session:
            org = get_org_by_name(session, name=org_name)
            user = accounts.find_user(session, email=accounts.normalize_email(email))
            created = user is None
            if user is None:
                user = accounts.create_user(session, email=email,
                                            password=password or accounts.generated_password())
            accounts.add_member(session, org_id=org.id, user_id=user.id, role=Role(role))
            audit.record(session, org_id=org.id, actor="cli", action="member.add", target_type="user",
                         target_id=user.id, details={"email": user.email, "role": role})
            secret = accounts.create_password_link(session, user=user) if created and not ask else None
            address = user.email
    except MantleError as exc:
        raise click.ClickException(exc.message) from None
    what = "created the account" if created else "added the existing account"
    click.echo(f"{what} {address} to {org_name} as {role}", err=True)
    if secret is not None:
        click.echo("open this one-time link within 24 hours to choose the password:", err=True)
        click.echo(_password_link(secret))


@users.command("reset-password")
@click.argument("email")
def users_reset_password(email: str) -> None:
    """Print a one-time link (valid 24 hours) that sets a new password for EMAIL's account."""
    from models import accounts
    from models.db import session_factory, session_scope

    with session_scope(session_factory(get_settings().resolved_database_url)) as session:
        user = accounts.find_user(session, email=email)
        if user is None:
            raise click.ClickException(f"no account has the email {email.strip().lower()}")
        secret = accounts.create_password_link(session, user=user)
    click.echo(f"a one-time link to set the password of {email.strip().lower()} (valid 24 hours):", err=True)
    click.echo(_password_link(secret))


@main.group()
def credentials() -> None:
    """Stored credentials (Twilio, …)."""


@credentials.command("rotate")
def credentials_rotate() -> None:
    """Re-encrypt every stored credential with MANTLE_SECRET_KEY (after moving the old key to
    MANTLE_SECRET_KEY_FALLBACKS); then the fallback can be dropped."""
    from core.crypto import cipher_for
    from core.errors import MantleError
    from models.credentials import rotate_all
    from models.db import session_factory, session_scope

    settings = get_settings()
    try:
        with session_scope(session_factory(settings.resolved_database_url)) as session:
            count = rotate_all(session, cipher=cipher_for(settings))
    except MantleError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"re-encrypted {count} credential(s) with the current secret key")


@main.group()
def models() -> None:
    """Model deployments served by the inference workers."""


@models.command("list")
def models_list() -> None:
    """The deployments in settings, and whether their weights are on this machine."""
    from inference.deployments import configured
    from worker.inference.sources import is_ready, local_folder

    settings = get_settings()
    for name, d in configured(settings).items():
        if is_ready(local_folder(d, settings)):
            local = "local"
        else:
            local = "converts on first use" if d.kind in ("package", "gguf") else "not pulled"
        click.echo(f"{name:<24} {d.backend:<9} {d.dtype:<8} {d.device:<6} {local:<10} {d.source}")


@models.command("pull")
@click.argument("name")
def models_pull(name: str) -> None:
    """Make a deployment's weights local: convert a GGUF file once, or download a hub model."""
    from inference.deployments import configured
    from worker.inference.sources import ModelUnavailable, ensure_local

    _setup()
    settings = get_settings()
    deployment = configured(settings).get(name)
    if deployment is None:
        known = ", ".join(configured(settings))
        raise click.ClickException(f"unknown model deployment {name!r}; known: {known}")
    try:
        folder = ensure_local(deployment, settings, allow_download=True, progress=True)
    except ModelUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name} is ready at {folder}")


main.add_command(twilio_sim)

if __name__ == "__main__":
    main()
