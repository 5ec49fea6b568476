"""deploy/compose.yaml (PostgreSQL + Prefect server + workers) against the Compose Specification's JSON schema,
and its wiring. Docker is not available here, so the stack itself has not run: this is what can be checked
without it. The schema is the one docker-compose 1.29.2 ships (compose/config/compose_spec.json), read from
the wheel that `make compose-schema` (a `make test` prerequisite) downloads into .cache/."""

import json
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
WHEEL = ROOT / ".cache" / "docker_compose-1.29.2-py2.py3-none-any.whl"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)((?:[^{}]|\{[^{}]*\})*))?\}")


def interpolate(value, env: dict):
    """Compose's ``${VAR}``, ``${VAR:-default}`` (nested defaults too) and ``${VAR:?message}``, recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        name, op, arg = m.groups()
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return interpolate(arg, env) if op == ":-" else ""

    return _VAR.sub(sub, value)


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(COMPOSE.read_text())


def test_valid_under_the_compose_spec_schema(doc):
    assert WHEEL.exists(), "run `make compose-schema` (a prerequisite of `make test`)"
    with zipfile.ZipFile(WHEEL) as z:
        schema = json.loads(z.read("compose/config/compose_spec.json"))
    jsonschema.Draft201909Validator.check_schema(schema)
    jsonschema.Draft201909Validator(schema).validate(doc)
    broken = {**doc, "services": {**doc["services"], "postgres": {**doc["services"]["postgres"], "helthcheck": {}}}}
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):  # the schema does catch a typo
        jsonschema.Draft201909Validator(schema).validate(broken)


def test_wiring_on_a_non_default_port(doc):
    env = {"PG_PASSWORD": "s3cret", "PREFECT_PORT": "4391"}
    s = interpolate(doc, env)["services"]
    pg, server, worker = s["postgres"], s["prefect-server"], s["worker"]
    db = urlsplit(server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"])
    assert db.scheme == "postgresql+asyncpg" and db.hostname == "postgres" and db.port == 5432
    assert (db.username, db.password, db.path) == (pg["environment"]["POSTGRES_USER"],
                                                   pg["environment"]["POSTGRES_PASSWORD"],
                                                   "/" + pg["environment"]["POSTGRES_DB"])
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy" and "pg_isready" in str(pg["healthcheck"])
    # published on loopback only, and the UI is told the published port (issue 23: a UI off port 4200)
    assert server["ports"] == ["127.0.0.1:4391:4200"]
    assert server["environment"]["PREFECT_UI_API_URL"] == "http://127.0.0.1:4391/api"
    assert server["command"][-4:] == ["--host", "0.0.0.0", "--port", "4200"]
    assert server["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile" and worker["working_dir"] == "/opt/varreason"
    assert "WORKDIR /opt/varreason" in (ROOT / "deploy" / "Dockerfile").read_text()
    mounts = {v.split(":")[1] for v in worker["volumes"]}
    assert {"/opt/varreason/artifacts", "/opt/varreason/state"} <= mounts
    assert worker["environment"]["PREFECT_LOCAL_STORAGE_PATH"].startswith("/opt/varreason/state/")
    gpu = s["gpu-worker"]
    assert gpu["profiles"] == ["gpu"] and gpu["command"][4] == "vr-gpu" and gpu["environment"] == worker["environment"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    named = {v.split(":")[0] for svc in s.values() for v in svc.get("volumes", []) if not v.startswith(".")}
    assert named == set(doc["volumes"])


def test_password_is_required_and_images_are_pinned(doc):
    with pytest.raises(KeyError, match="PG_PASSWORD"):
        interpolate(doc, {})
    import prefect

    images = {name: svc.get("image", "") for name, svc in doc["services"].items()}
    assert images["prefect-server"] == f"prefecthq/prefect:{prefect.__version__}-python3.11", images
    assert re.fullmatch(r"postgres:\d+", images["postgres"])
