"""The API answers on each database backend."""

from tests.conftest import Tenant
from tests.factories import greeter_graph


def test_create_and_publish_app(tenant: Tenant) -> None:
    created = tenant.client.post("/v1/apps", json={"name": "Greeter", "graph": greeter_graph()})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    published = tenant.client.post(f"/v1/apps/{app_id}/publish", json={"note": "first"})
    assert published.status_code == 201, published.text
    assert published.json()["number"] == 1
    draft = tenant.client.get(f"/v1/apps/{app_id}").json()["draft"]
    assert draft["nodes"][0]["position"] == {"x": 10, "y": 20}


def test_other_org_sees_404(tenant: Tenant, other_tenant: Tenant) -> None:
    app_id = tenant.client.post("/v1/apps", json={"name": "Mine"}).json()["id"]
    assert other_tenant.client.get(f"/v1/apps/{app_id}").status_code == 404
    assert other_tenant.client.get("/v1/apps").json()["total"] == 0
