"""The demo as a new portal user meets it: sign up, verify from the mail the demo's SMTP
sink caught, create a tenant, open its app through SSO; then a second run of the demo
still has the tenant's container (the simulator's state is kept under var/)."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.auth.conftest import PASSWORD
from tests.foundation.test_process_lifecycle import free_port, process_env, wait_until

# The simulator gives a container the same loopback address in every process and its app
# listens on the project's port (8080), so two of these modules running at once in
# pytest-xdist workers would answer each other's requests: one worker runs them all.
pytestmark = pytest.mark.xdist_group("simulated-apps-on-port-8080")


def _start(tmp_path: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    out = (tmp_path / name).open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "demo"],
        cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(lambda: "controlplane demo is running" in (tmp_path / name).read_text(),
               90, "the demo to start")  # fmt: skip
    return demo


def _stop(demo: subprocess.Popen[bytes]) -> None:
    demo.send_signal(signal.SIGTERM)
    try:
        assert demo.wait(timeout=40) == 0
    except subprocess.TimeoutExpired:
        demo.kill()
        raise


def test_a_portal_user_in_the_demo(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_urlsafe(24)
    env = process_env(port, token, tmp_path / "var" / "pg", CADDY_ADMIN_URL="", PORTAL_DIR="")
    env.pop("SETUP_TOKEN", None)
    base = f"http://127.0.0.1:{port}"
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    demo = _start(tmp_path, env, "first.out")
    try:
        printed = (tmp_path / "first.out").read_text()
        assert f"saved in {tmp_path / 'var' / 'mail'}" in printed
        assert "dashboard setup token: set SETUP_TOKEN" in printed
        assert "customer portal: not built" in printed  # no portal/build under its folder
        user = httpx.Client(base_url=base)
        r = user.post("/api/v1/auth/register", json={"email": "ada@example.com",
                                                     "password": PASSWORD})  # fmt: skip
        assert r.status_code == 201, r.text
        found = wait_until(
            lambda: re.search(r"verify-email\?token=([\w-]+)", (tmp_path / "first.out").read_text()),
            30, "the verification mail",
        )  # fmt: skip
        assert list((tmp_path / "var" / "mail").glob("*.eml"))
        r = user.post("/api/v1/auth/verify-email", json={"token": found.group(1)})
        assert r.status_code == 200 and r.json()["email_verified"], r.text
        r = user.post("/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        user.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        assert [p["slug"] for p in user.get("/api/v1/user/projects").json()] == ["demo"]
        r = user.post("/api/v1/user/tenants", json={"subdomain": "hello"})
        assert r.status_code == 202, r.text
        tenant_id = r.json()["id"]
        wait_until(
            lambda: user.get(f"/api/v1/user/tenants/{tenant_id}").json()["status"] == "active",
            60, "the tenant to become active",
        )  # fmt: skip
        ip = admin.get(f"/api/v1/tenants/{tenant_id}").json()["ip_address"]
        sso = user.post(f"/api/v1/user/tenants/{tenant_id}/sso-token").json()["token"]
        page = httpx.get(f"http://{ip}:8080/sso", params={"token": sso})
        assert page.status_code == 200 and "Logged in as <b>ada@example.com</b>" in page.text
    finally:
        _stop(demo)
    assert (tmp_path / "var" / "pvesim.json").exists()
    # The second run finds the container again, on its address, its app answering.
    demo = _start(tmp_path, env, "second.out")
    try:
        assert "(3 containers restored)" in (tmp_path / "second.out").read_text()
        assert httpx.get(f"http://{ip}:8080/").json()["hostname"] == "hello"
    finally:
        _stop(demo)
