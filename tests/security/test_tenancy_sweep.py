"""Every route, aimed at another organization's objects with a valid key of its own: nothing leaks.

The routes come from the app's route table, so a route added later is swept without an edit
here. Each route that names an object by id is called with the other organization's ids and
bodies generated from the route's own schema; it must answer exactly as it answers for an id
that does not exist (404, or the same 4xx), and never with the other organization's data. Every
list answers without the other organization's rows, even when filtered by its ids. Routes public
by design (`routes.PUBLIC_BY_DESIGN`) are checked by the tests in test_public_surfaces.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.core.result import Ok

from tests.security.routes import every_route, is_public, path_params
from tests.security.world import Owned, discover

Operation = APIOperation[Any, Any, Any, Any]
EXAMPLES = 4  # generated requests per route and organization pair


def operations(api: TestClient) -> dict[str, Operation]:
    """The API's operations by label (`GET /v1/apps`), from its own schema."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    found = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        found[result.ok().label] = result.ok()
    return found


def nowhere(params: dict[str, str]) -> dict[str, str]:
    """The same parameters naming objects that do not exist."""
    fake = {"name": "no-such-thing", "number": "99", "phone": "+15559999999"}
    return {k: fake.get(k, str(uuid.uuid4())) for k in params}


def answers(operation: Operation, params: dict[str, str], key: str) -> list[tuple[int, str, int]]:
    """Requests generated for `operation` with `params`, sent with `key`: for each, the status, the
    body, and the status of the same request aimed at objects that do not exist."""
    found: list[tuple[int, str, int]] = []
    headers = {"Authorization": f"Bearer {key}"}

    @given(case=operation.as_strategy(GenerationMode.POSITIVE, path_parameters=params, headers=headers))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def send(case: schemathesis.Case[Any]) -> None:
        if case.query and "wait" in case.query:
            case.query["wait"] = 0
        aimed = case.call()
        case.path_parameters = nowhere(params)
        found.append((aimed.status_code, aimed.text, case.call().status_code))

    send()
    return found


def test_the_route_table_is_walked_whole(api: TestClient) -> None:
    walked = {f"{method} {path}" for method, path in every_route(api.app)}
    assert set(operations(api)) <= walked
    assert {"GET /review/items/{review_id}", "GET /s/{slug}", "GET /metrics"} <= walked  # not in the schema


def test_another_organizations_ids_are_404_on_every_route(api: TestClient,
                                                          world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    ops = operations(api)
    keyed = sorted((m, p) for m, p in every_route(api.app) if path_params(p) and not is_public(p))
    assert len(keyed) >= 30, keyed
    failures = []
    for method, path in keyed:
        operation = ops.get(f"{method} {path}")
        for name in path_params(path):
            discover(victim, path, name, ops)  # a route added later: find (or make) one of theirs
        params = victim.params_for(path)
        unknown = [p for p in path_params(path) if not params.get(p)]
        if operation is None or unknown:
            failures.append(f"{method} {path}: not swept (no schema, or the sweep cannot make another "
                            f"organization's {unknown}: add one to tests/security/world.py)")
            continue
        results = answers(operation, {p: params[p] for p in path_params(path)}, attacker.tenant.key)
        for status, body, status_if_missing in results:
            if status < 400 or (status != 404 and status != status_if_missing):
                failures.append(f"{method} {path}: {status} for another organization's id "
                                f"({status_if_missing} for a missing one): {body[:200]}")
            # Echoing the id the caller sent is no leak; naming any other object of theirs is.
            leaked = [s for s in victim.secrets() - set(params.values()) if s in body]
            if leaked:
                failures.append(f"{method} {path}: answer names another organization's {leaked}")
        if not any(status == 404 for status, _, _ in results):
            failures.append(f"{method} {path}: no generated request reached the organization check")
    assert not failures, "\n".join(failures)
    assert_untouched(victim)


def test_lists_never_include_another_organizations_rows(api: TestClient, world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    ops = operations(api)
    failures = []
    for label, operation in sorted(ops.items()):
        if operation.method.upper() != "GET" or is_public(operation.path) or label.endswith("/events"):
            continue
        own = attacker.params_for(operation.path)
        path = operation.path.format(**{p: own.get(p, "") for p in path_params(operation.path)})
        # Filters by id get the other organization's ids: they must match nothing.
        theirs = victim.params_for(operation.path)
        query = {p.name: theirs.get(p.name, theirs["app_id"]) for p in operation.iter_parameters()
                 if str(p.location).endswith("QUERY") and p.name.endswith("_id")}
        for params in ({}, query) if query else ({},):
            answer = attacker.tenant.client.get(path, params=params)
            if answer.status_code >= 500:
                failures.append(f"GET {path} {params}: {answer.status_code}")
            leaked = [s for s in victim.secrets() if s in answer.text]
            if leaked:
                failures.append(f"GET {path} {params}: answer names another organization's {leaked}")
    assert not failures, "\n".join(failures)


def test_a_pruned_run_is_gone_to_its_organization_and_unknown_to_another(world: tuple[Owned, Owned]) -> None:
    victim, attacker = world
    pruned = victim.ids["pruned_run_id"]
    gone = victim.tenant.client.get(f"/v1/runs/{pruned}")
    assert gone.status_code == 410 and "the app's retention policy" in gone.text, gone.text
    for path in (f"/v1/runs/{pruned}", f"/v1/runs/{pruned}/graph", f"/v1/runs/{pruned}/events"):
        answer = attacker.tenant.client.get(path)
        assert answer.status_code == 404 and "retention" not in answer.text, (path, answer.text)


def assert_untouched(owned: Owned) -> None:
    """Every object of `owned` is still there, unchanged by the other organization's calls."""
    client, ids = owned.tenant.client, owned.ids
    assert client.get("/v1/org/retention").json()["keep_days"] == 3650
    assert client.get(f"/v1/apps/{ids['app_id']}/retention").json()["keep_runs"] == 1000
    app = client.get(f"/v1/apps/{ids['app_id']}").json()
    assert app["name"] == "victim greeter" and app["latest_version"] == 1 and app["draft_revision"] == 1
    assert client.get(f"/v1/runs/{ids['run_id']}").json()["status"] == "queued"
    assert client.get(f"/v1/reviews/{ids['review_id']}").json()["status"] == "pending"
    assert client.get(f"/v1/apps/{ids['app_id']}/shares/{ids['share_id']}").json()["state"] == "active"
    assert client.get(f"/v1/credentials/{ids['credential_id']}").status_code == 200
    numbers = client.get(f"/v1/apps/{ids['sms_app_id']}/phone-numbers").json()
    assert ids["route_id"] in str(numbers)
    assert client.get(f"/v1/models/{ids['name']}").status_code == 200
    assert any(k["id"] == ids["key_id"] and k["revoked_at"] is None for k in client.get("/v1/keys").json())
    assert [m["user_id"] for m in client.get("/v1/members").json()] == [ids["user_id"]]
    assert ids["session_id"] in str(client.get("/v1/sessions").json())
    assert ids["invitation_id"] in str(client.get("/v1/invitations").json())
