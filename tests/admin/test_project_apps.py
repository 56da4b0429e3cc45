"""The project form's app fields: the service unit and the named actions as lines."""

from __future__ import annotations

from tests.admin.conftest import Browser
from tests.admin.test_pages import _db, _field_error

FORM = {"name": "Web", "slug": "web", "template_vmid": "9000"}


async def test_app_service_and_actions_through_the_form(dash: Browser, app: object) -> None:
    actions = "migrate: /srv/app/bin/migrate --yes\n\n!reset: rm -rf /srv/app/cache\n"
    r = await dash.post_form(
        "/admin/projects", {**FORM, "app_service": "myapp.service", "app_actions": actions}
    )
    assert r.status_code == 204, r.text
    web = await _db(app).fetch_one("SELECT * FROM projects WHERE slug = 'web'")
    assert web["app_service"] == "myapp.service"
    assert web["app_actions"] == [
        {"name": "migrate", "command": "/srv/app/bin/migrate --yes", "confirm": False},
        {"name": "reset", "command": "rm -rf /srv/app/cache", "confirm": True},
    ]
    r = await dash.open(f"/admin/projects/{web['id']}/edit")
    assert "migrate: /srv/app/bin/migrate --yes\n!reset: rm -rf /srv/app/cache" in r.text
    assert 'value="myapp.service"' in r.text
    # clearing the unit and the actions
    r = await dash.post_form(
        f"/admin/projects/{web['id']}", {**FORM, "app_service": "", "app_actions": ""}
    )
    assert r.status_code == 204, r.text
    row = await _db(app).fetch_one("SELECT * FROM projects WHERE id = %(id)s", {"id": web["id"]})
    assert row["app_service"] is None and row["app_actions"] == []


async def test_bad_app_fields_are_named(dash: Browser) -> None:
    for values, field in (
        ({"app_service": "myapp"}, "app_service"),
        ({"app_actions": "no colon here"}, "app_actions"),
        ({"app_actions": "Bad Name: x"}, "app_actions"),
        ({"app_actions": "a: x\na: y"}, "app_actions"),
    ):
        r = await dash.post_form("/admin/projects", {**FORM, **values})
        assert r.status_code == 422, (values, r.text)
        assert _field_error(r.text, field), values


async def test_warm_pool_size_through_the_form(dash: Browser, app: object) -> None:
    r = await dash.post_form("/admin/projects", {**FORM, "warm_pool_size": "3"})
    assert r.status_code == 204, r.text
    web = await _db(app).fetch_one("SELECT * FROM projects WHERE slug = 'web'")
    assert web["warm_pool_size"] == 3
    r = await dash.open(f"/admin/projects/{web['id']}/edit")
    assert 'name="warm_pool_size"' in r.text and 'value="3"' in r.text
    for bad in ("-1", "21", "two"):
        r = await dash.post_form(f"/admin/projects/{web['id']}", {**FORM, "warm_pool_size": bad})
        assert r.status_code == 422, (bad, r.text)
        assert _field_error(r.text, "warm_pool_size"), bad
    r = await dash.post_form(f"/admin/projects/{web['id']}", {**FORM, "warm_pool_size": "0"})
    assert r.status_code == 204, r.text
    row = await _db(app).fetch_one("SELECT * FROM projects WHERE id = %(id)s", {"id": web["id"]})
    assert row["warm_pool_size"] == 0
