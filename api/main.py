"""The FastAPI application: routes under /v1, one error shape, metrics and health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from api import errors, public, threads
from api.json_guard import JsonText
from api.key_cache import KeyCache
from api.mcp_api.endpoint import McpEndpoint
from api.middleware import BodyLimit, RequestContext
from api.openai_api import routes as openai_routes
from api.openai_api.errors import OpenAIErrors
from api.routes import (
    apps,
    blocks,
    builder_page,
    credentials,
    drafts,
    health,
    knowledge,
    models,
    org,
    people,
    phone_numbers,
    policies,
    retention,
    review_page,
    reviews,
    runs,
    schedules,
    session,
    shares,
    twilio,
    usage,
    webhooks,
)
from api.warm import warm_up
from api.watch import RunWatcher
from api.webhook_inbound import OpenedTargets
from blocks.registry import Registry, load_registry
from core.gc_tuning import freeze_startup_objects
from core.settings import Settings, get_settings
from models.db import session_factory
from worker.reviews import watch_queue_depth
from worker.submit import Submitter


def create_app(
    settings: Settings | None = None,
    sessions: sessionmaker[Session] | None = None,
    registry: Registry | None = None,
    freeze_gc: bool = False,
    warm: bool = False,
) -> FastAPI:
    """Build the API; tests pass their own session factory and registry. `freeze_gc`: leave the
    objects alive after start-up out of garbage collection (for server processes only: a test
    process builds many apps, and the frozen ones' cycles would never be collected). `warm`:
    do what the first requests would pay for before serving (see api/warm.py)."""
    settings = settings or get_settings()
    watcher = RunWatcher(settings.resolved_database_url)
    mcp = McpEndpoint()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        threads.install(app.state, settings.api_run_threads)
        await watcher.start()
        if warm:
            await run_in_threadpool(warm_up, app)
        if freeze_gc:  # the app is built and its modules imported: see core/gc_tuning.py
            freeze_startup_objects()
        async with mcp.run():
            yield
        await watcher.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Mantle",
        version="0.1.0",
        summary="Build, validate, version, publish and run AI apps made of blocks.",
        responses=errors.ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.key_cache = KeyCache(settings.auth_cache_s)
    app.state.session_cache = KeyCache(settings.auth_cache_s)
    app.state.watcher = watcher
    app.state.session_factory = sessions or session_factory(settings.resolved_database_url)
    # Polling reads (a run's status, its events) must not queue behind writers on SQLite; on
    # PostgreSQL each of their statements commits on its own (one round trip, no BEGIN).
    app.state.read_sessions = sessions or session_factory(settings.resolved_database_url, readonly=True,
                                                          autocommit=True)
    app.state.registry = registry or load_registry(tuple(settings.block_plugins))
    app.state.submitter = Submitter(app.state.registry, settings)
    app.state.webhook_targets = OpenedTargets()
    errors.install(app)
    # The busiest routes first: a request is matched against the routes in order, and on a hot
    # webhook post walking the whole /v1 table cost a tenth of the API's CPU.
    app.include_router(webhooks.public_router)  # public: the URL's token (and a signature) admit
    app.include_router(twilio.router)  # public: Twilio signs these requests
    for module in (runs, blocks, apps, drafts, org, reviews, shares, credentials, phone_numbers, models,
                   policies, webhooks, schedules, session, people, usage, knowledge, retention):
        app.include_router(module.router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(openai_routes.router)  # /openai/v1: OpenAI's shapes, a Mantle key
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]))  # apps as MCP tools
    app.include_router(review_page.router)
    builder_page.install(app)
    public.install(app)
    watch_queue_depth(app.state.read_sessions)
    health.watch(app)
    app.add_middleware(JsonText)  # inside BodyLimit: it reads only bodies within the limit
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       uploads=(knowledge.UPLOAD_PATH, settings.knowledge_max_document_bytes + 64 * 1024))
    app.state.serving = threads.Serving()
    app.add_middleware(RequestContext, serving=app.state.serving)
    app.add_middleware(OpenAIErrors)  # outermost: rewrites every error under /openai/
    return app


def create_server_app() -> FastAPI:
    """The API as `mantle api` and `mantle up` serve it (uvicorn's factory, one per process)."""
    return create_app(freeze_gc=True, warm=True)
