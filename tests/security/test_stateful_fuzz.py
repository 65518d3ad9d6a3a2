"""Schemathesis, statefully: create an app → put a draft → validate → publish → run → read the run.

Each step's request is generated from the API's own schema (valid and invalid alike) and aimed
at the ids the earlier steps created; sometimes the draft is a real graph, so the later steps
get past "nothing to publish". No answer may be a 500 or break the schema it documents.
(tests/integration/test_fuzz.py fuzzes each operation alone; this follows the builder's path.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.factories import greeter_graph
from tests.integration.test_fuzz import Fuzzed, fuzzed  # noqa: F401  (the fixture)
from tests.security.test_tenancy_sweep import Operation

FLOWS = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def steps(fuzzed: Fuzzed) -> Iterator[dict[str, Operation]]:  # noqa: F811
    """The operations of the flow, by label."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    wanted = ["POST /v1/apps", "PUT /v1/apps/{app_id}/draft", "POST /v1/apps/{app_id}/validate",
              "POST /v1/apps/{app_id}/publish", "POST /v1/apps/{app_id}/runs", "GET /v1/runs/{run_id}"]
    found = {r.ok().label: r.ok() for r in schema.get_all_operations()}
    yield {label: found[label] for label in wanted}


def test_the_builders_path_never_fails_or_breaks_its_schema(fuzzed: Fuzzed,  # noqa: F811
                                                            steps: dict[str, Operation]) -> None:
    auth = {"Authorization": f"Bearer {fuzzed.key}"}
    runs_started: list[str] = []
    seen: list[str] = []  # create/publish/run statuses of the valid-path flows, for the message

    def case(data: st.DataObject, label: str, **path: str) -> Any:
        modes = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
        mode = data.draw(modes, label=f"{label} mode")
        drawn = data.draw(steps[label].as_strategy(mode, headers=auth, path_parameters=path or None),
                          label=label)
        if drawn.query and "wait" in drawn.query:
            drawn.query["wait"] = 0  # no worker runs here
        return drawn

    def call(drawn: Any) -> Any:
        response = drawn.call()
        drawn.validate_response(response, checks=CHECKS)
        return response

    @given(data=st.data())
    @settings(max_examples=FLOWS, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def flow(data: st.DataObject) -> None:
        # Half the flows keep to a valid path (so later steps are reached), with generated extras.
        happy = data.draw(st.booleans(), label="valid path")
        create = case(data, "POST /v1/apps")
        if happy:  # a fresh name: other tests on this module's app may have taken the drawn one
            create.body, create.headers = {"name": f"flow {uuid.uuid4()}"}, auth
        created = call(create)
        if created.status_code != 201:
            return
        app_id = created.json()["id"]
        draft = case(data, "PUT /v1/apps/{app_id}/draft", app_id=app_id)
        if happy:
            draft.body, draft.headers = greeter_graph(), auth
        call(draft)
        call(case(data, "POST /v1/apps/{app_id}/validate", app_id=app_id))
        publish = case(data, "POST /v1/apps/{app_id}/publish", app_id=app_id)
        if happy:
            publish.body, publish.headers, publish.query = {"note": "fuzzed"}, auth, {}
        publish_answer = call(publish)
        run = case(data, "POST /v1/apps/{app_id}/runs", app_id=app_id)
        if happy:
            run.body = {"inputs": {"name": data.draw(st.text(max_size=50), label="name")}}
            run.headers, run.query = auth, {}
        started = call(run)
        if happy:
            seen.append(f"{created.status_code}/{publish_answer.status_code}/{started.status_code}"
                        f" {started.text[:200]}")
        if started.status_code in (200, 202):
            runs_started.append(started.json()["id"])
            call(case(data, "GET /v1/runs/{run_id}", run_id=started.json()["id"]))

    flow()
    assert runs_started, f"no generated flow got as far as starting a run: {seen}"
