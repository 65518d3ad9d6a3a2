"""Liveness, readiness and Prometheus metrics of the API.

`/readyz` answers 503 naming every dependency that is down (the database, the broker, and under
`mantle up` the workers it supervises: see cli/supervisor.py), in the one error shape;
`/metrics` merges the values of every API process of this server (see
`worker/metrics_export.py`) and adds the deployment's queue depths, counted when scraped.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from inference.deployments import configured
from knowledge.stores import describe
from worker.metrics_export import exposition, watch_broker
from worker.probes import broker_probe, database_probe, run_probes
from worker.transport import INFERENCE_QUEUE, RUNS_QUEUE

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> dict[str, str] | Response:
    """The process can serve: the database and the broker answer, and under `mantle up` its
    workers run and are warm (503 names what does not)."""
    state = request.app.state
    probes = {"database": database_probe(state.session_factory),
              "broker": broker_probe(state.submitter.celery),
              **getattr(state, "worker_probes", {})}
    down = await run_in_threadpool(run_probes, probes)
    if down:
        return error_response(503, [{"loc": [name], "msg": reason, "type": "unavailable"}
                                    for name, reason in down.items()])
    return {"status": "ready", **dict.fromkeys(probes, "ok"),
            "knowledge": await run_in_threadpool(_knowledge_search, state.session_factory)}


def _knowledge_search(sessions: sessionmaker[Session]) -> str:
    """How knowledge is searched here: `sqlite-vec`, `pgvector`, or `pgvector missing: exact search`."""
    try:
        return describe(sessions.kw["bind"])
    except SQLAlchemyError as exc:  # not migrated yet: ready for everything else
        return f"unknown ({type(exc).__name__})"


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus metrics of this API server (every process of it)."""
    body, content_type = await run_in_threadpool(exposition)
    return Response(body, media_type=content_type)


def watch(app: FastAPI) -> None:
    """Report the depth of every queue a worker consumes when metrics are scraped."""
    queues = [RUNS_QUEUE, INFERENCE_QUEUE, *(d.queue for d in configured(app.state.settings).values())]
    watch_broker(app.state.submitter.celery, queues)
