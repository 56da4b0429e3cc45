"""Settings: refusals with reasons, and every setting documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.config import SETTINGS_GROUPS, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_malformed_secrets_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    with pytest.raises(
        SettingsError, match="ENCRYPTION_KEY: ENCRYPTION_KEY must be exactly 64 hex"
    ):
        load_settings(encryption_key="abc")
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings(jwt_secret="0" * 64)
    with pytest.raises(SettingsError, match="API_TOKEN: is a placeholder"):
        load_settings(api_token="changeme")
    with pytest.raises(SettingsError, match="missing required secret"):
        load_settings().require_secrets()


def test_serve_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "controlplane.cli", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "API_TOKEN" in result.stderr and "ENCRYPTION_KEY" in result.stderr


def test_every_setting_belongs_to_exactly_one_group() -> None:
    owners: dict[str, list[str]] = {}
    for group in SETTINGS_GROUPS:
        assert issubclass(Settings, group), f"{group.__name__} is not composed into Settings"
        for name in group.model_fields:
            owners.setdefault(name, []).append(group.__name__)
    assert {name: groups for name, groups in owners.items() if len(groups) > 1} == {}
    assert set(Settings.model_fields) == set(owners), "a field defined outside the groups"


def test_every_setting_is_in_env_example_and_readme() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    # The first cell of a table row names one setting or several (`A` / `B`).
    in_readme = {
        name
        for line in readme.splitlines()
        if line.startswith("| ")
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1])
    }
    for group in SETTINGS_GROUPS:
        fields = {name.upper() for name in group.model_fields}
        assert fields - documented == set(), f"{group.__name__}: missing from .env.example"
        assert fields - in_readme == set(), f"{group.__name__}: missing from the README's tables"
    fields = {name.upper() for name in Settings.model_fields}
    assert documented - fields - {"POSTGRES_PASSWORD"} == set(), "documented but unknown"


def test_secrets_never_show_in_repr() -> None:
    s = Settings(
        _env_file=None, api_token="a-very-long-admin-token", encryption_key="0123456789abcdef" * 4
    )  # type: ignore[call-arg]
    assert "a-very-long-admin-token" not in repr(s) and "0123456789abcdef" not in repr(s)


def test_env_file_is_private_from_its_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No window in which the new file holds secrets but others may read it: with every way
    # of changing a mode afterwards disabled, the file is still 0600.
    import os

    from controlplane.envfile import ensure_env

    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(os, "fchmod", lambda *a, **k: None)
    old = os.umask(0o022)
    try:
        ensure_env(tmp_path / ".env", {})
    finally:
        os.umask(old)
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"


def test_an_existing_env_file_is_made_private(tmp_path: Path) -> None:
    from controlplane.envfile import ensure_env

    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=INFO\n")
    env_file.chmod(0o644)
    ensure_env(env_file, {})
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_init_env_generates_missing_secrets_once(tmp_path: Path) -> None:
    from controlplane.envfile import ensure_env, read_env

    env_file = tmp_path / ".env"
    created = ensure_env(env_file, {})
    assert set(created) == {"API_TOKEN", "ENCRYPTION_KEY", "JWT_SECRET", "SETUP_TOKEN"}
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert ensure_env(env_file, {}) == {}
    values = read_env(env_file)
    Settings(_env_file=None, **{k.lower(): v for k, v in values.items()}).require_secrets()  # type: ignore[arg-type]


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "0.0.0.0/1", "10.0.0.0/7", "::/6"])
def test_catch_all_tenant_networks_are_refused(network: str) -> None:
    from controlplane.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"TENANT_NETWORKS: .*too wide"):
        load_settings(_env_file=None, tenant_networks=network)
    assert load_settings(_env_file=None, tenant_networks="10.20.0.0/16").tenant_networks == [
        "10.20.0.0/16"
    ]


@pytest.mark.parametrize("origins", ["localhost:5173,5174", "localhost:5173", "http://x/app",
                                     "ftp://x.example", "http://:5173"])  # fmt: skip
def test_cors_origins_without_a_scheme_are_refused_saying_what_is_expected(
    origins: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT / "tests")  # no .env here
    with pytest.raises(SettingsError, match=r"CORS_ORIGINS: .* is not an origin: write each as"):
        load_settings(cors_origins=origins)


def test_cors_origins_are_kept_as_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "tests")
    got = load_settings(cors_origins="http://localhost:5173, https://app.example.com/")
    assert got.cors_origins == ["http://localhost:5173", "https://app.example.com"]


@pytest.mark.parametrize(
    ("bind", "port", "expected"),
    [
        ("127.0.0.1", "8080", "http://localhost:8080"),
        ("0.0.0.0", "9000", "http://localhost:9000"),
        ("192.0.2.7", "8443", "http://192.0.2.7:8443"),
        ("2001:db8::5", "8080", "http://[2001:db8::5]:8080"),
    ],
)
def test_public_url_defaults_from_the_bind_address_and_port(
    bind: str, port: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT / "tests")
    monkeypatch.setenv("BIND_ADDR", bind)
    monkeypatch.setenv("HOST_PORT", port)
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    assert load_settings().public_url == expected
    monkeypatch.setenv("PUBLIC_URL", "https://cp.example.com")
    assert load_settings().public_url == "https://cp.example.com"


def test_compose_port_listen_address_and_health_check_agree() -> None:
    """HOST_PORT is the host's port; inside the container the server listens on the port
    the mapping targets and the image's health check asks."""
    import yaml

    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["controlplane"]
    env = service["environment"]
    (mapping,) = service["ports"]
    inside = mapping.rsplit(":", 1)[1]
    assert "${HOST_PORT" in mapping.rsplit(":", 1)[0]
    assert str(env["HOST_PORT"]) == inside and env["BIND_ADDR"] == "0.0.0.0"
    assert "${HOST_PORT:-8080}" in env["PUBLIC_URL"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    health = next(line for line in dockerfile.splitlines() if "/healthz" in line)
    assert "os.environ.get('HOST_PORT', '8080')" in health
    assert f"HOST_PORT={inside}" in dockerfile
