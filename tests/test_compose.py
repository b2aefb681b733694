"""Static checks for docker-compose.yml, its deploy/ scripts and docs/docker.md.

No Docker needed: the compose file is parsed with PyYAML, `${VAR:-default}`
is resolved to its default the way `docker compose` would with an empty
environment, a required `${VAR:?message}` to the placeholder `<VAR>` (or, given
an environment, refused when unset or empty, as `docker compose` refuses), and
the shell scripts are syntax-checked / run against stub `temporal` and `nc`
commands. tests/test_deploy_postgres.py runs the PostgreSQL init script itself.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from worker.dev import SERVER_DYNAMIC_CONFIG, dev_server_command
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETUP_SCRIPT = ROOT / "deploy" / "register-search-attributes.sh"
SCHEMA_SCRIPT = ROOT / "deploy" / "temporal" / "setup-schema.sh"
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-roles.sh"
ENV_EXAMPLE = ROOT / ".env.example"
DOCS = ROOT / "docs" / "docker.md"

REQUIRED_SERVICES = {"postgresql", "temporal", "temporal-setup", "temporal-ui", "worker", "api"}

EXPECTED_SEARCH_ATTRIBUTES = {
    "CoursePhase": "Keyword",
    "AwaitingSteps": "KeywordList",
    "ClinicianId": "Keyword",
    "TherapistId": "Keyword",
    "NextDueAt": "Datetime",
    "Overdue": "Bool",
    "OnHold": "Bool",
    "NeedsClinicalReview": "Bool",
    "DosingSessionsCompleted": "Int",
    "InsuranceStatus": "Keyword",
    "NeedsAttention": "Keyword",
    "DischargeDueAt": "Datetime",
}
# Type names accepted by `temporal operator search-attribute create --type`.
VALID_SA_TYPES = {"Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"}

# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`; not `$${...}`
# (compose's escape for a literal `$`).
_INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingSecret(LookupError):
    """What `docker compose` refuses to start without (a `${VAR:?message}` left unset or empty)."""


def interpolate(value: str, env: Mapping[str, str] | None = None) -> str:
    """Resolve compose interpolation. Without `env`: an empty environment, where a required
    variable becomes the placeholder `<NAME>` so the rest of the file can still be checked."""

    def resolve(m: re.Match[str]) -> str:
        name, op, arg = m.group("name"), m.group("op") or "", m.group("arg") or ""
        if op.endswith("?"):
            if env is None:
                return f"<{name}>"
            missing = not env.get(name) if op == ":?" else name not in env
            if missing:
                raise MissingSecret(f"{name}: {arg}")
            return env[name]
        given = (env or {}).get(name)
        if op == ":-" and not given:
            return arg
        if op == "-" and given is None:
            return arg
        return given or ""

    return _INTERPOLATION.sub(resolve, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), "docker-compose.yml is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def published_ports(service: dict) -> list[tuple[int, int]]:
    """(host_port, container_port) pairs for short and long port syntax."""
    pairs = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if "published" in entry:
                pairs.append((int(interpolate(str(entry["published"]))), int(entry["target"])))
            continue
        parts = interpolate(str(entry)).split("/")[0].split(":")
        if len(parts) >= 2:
            pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def depends_on_names(service: dict) -> list[str]:
    deps = service.get("depends_on") or []
    return list(deps) if isinstance(deps, (list, dict)) else []


def parse_search_attributes(script: str) -> dict[str, str]:
    calls = re.findall(r"^\s*create_search_attribute\s+(\S+)\s+(\S+)\s*$", script, re.MULTILINE)
    names = [name for name, _ in calls]
    assert len(names) == len(set(names)), f"duplicate search attributes: {names}"
    return dict(calls)


# --- compose structure ------------------------------------------------------


def test_required_services_exist(services: dict) -> None:
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_published_ports(services: dict) -> None:
    assert (5432, 5432) in published_ports(services["postgresql"])
    assert (7233, 7233) in published_ports(services["temporal"])
    assert (8233, 8080) in published_ports(services["temporal-ui"])
    assert (8082, 8082) in published_ports(services["api"])


def test_no_host_port_published_twice(services: dict) -> None:
    host_ports = [hp for svc in services.values() for hp, _ in published_ports(svc)]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_depends_on_names_existing_services(services: dict) -> None:
    valid_conditions = {
        "service_started",
        "service_healthy",
        "service_completed_successfully",
    }
    for name, svc in services.items():
        deps = svc.get("depends_on") or []
        for dep in depends_on_names(svc):
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name, f"{name} depends on itself"
            if isinstance(deps, dict):
                condition = (deps[dep] or {}).get("condition", "service_started")
                assert condition in valid_conditions, f"{name} -> {dep}: {condition}"
                if condition == "service_healthy":
                    assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_images_are_pinned(services: dict) -> None:
    for name, svc in services.items():
        if "image" not in svc:
            assert "build" in svc, f"{name} has neither image nor build"
            continue
        image = interpolate(svc["image"])
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: image {image!r} has no tag"
        assert not image.endswith(":latest"), f"{name}: image {image!r} uses :latest"


def test_temporal_uses_server_image_with_postgres(services: dict) -> None:
    temporal = services["temporal"]
    assert interpolate(temporal["image"]).startswith("temporalio/server:")
    env = env_of(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["BIND_ON_IP"] == "0.0.0.0"
    assert "healthcheck" in temporal
    assert temporal.get("restart") in {"always", "unless-stopped"}


def test_schema_job_runs_before_server(services: dict) -> None:
    deps = services["temporal"]["depends_on"]
    schema_jobs = [
        dep for dep, spec in deps.items() if (spec or {}).get("condition") == "service_completed_successfully"
    ]
    assert schema_jobs, "temporal must wait for a schema setup job"
    job = services[schema_jobs[0]]
    assert interpolate(job["image"]).startswith("temporalio/admin-tools:")
    mounted = " ".join(job.get("volumes", []))
    script = ROOT / mounted.split(":")[0].lstrip("./")
    assert script == SCHEMA_SCRIPT
    assert "temporal-sql-tool" in script.read_text()


def test_the_schema_job_does_not_create_databases() -> None:
    # The Temporal role has no CREATEDB; `temporal-sql-tool create` would fail on a permission
    # error (PostgreSQL checks the privilege before whether the database exists).
    calls = [line.split("#")[0] for line in SCHEMA_SCRIPT.read_text().splitlines()]
    assert not any(re.search(r"sql_tool\b.*\bcreate\b", call) for call in calls)


def test_postgres_has_healthcheck_and_mounts_the_roles_init_script(services: dict) -> None:
    pg = services["postgresql"]
    assert interpolate(pg["image"]).startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    init_mounts = [v for v in pg["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init_mounts == ["./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-init-roles.sh:ro"]
    init_script = INIT_SCRIPT.read_text()
    assert "CREATE DATABASE" in init_script and "CREATE ROLE" in init_script
    assert "NOSUPERUSER NOCREATEDB" in init_script and "FROM PUBLIC" in init_script


def test_each_service_connects_as_its_own_role_never_the_superuser(services: dict) -> None:
    """The roles the init script creates are the ones Temporal and the service log in as."""
    pg = env_of(services["postgresql"])
    superuser = pg["POSTGRES_USER"]
    temporal = env_of(services["temporal"])
    assert temporal["POSTGRES_USER"] == pg["TEMPORAL_DB_USER"] == env_of(services["temporal-schema"])["POSTGRES_USER"]
    assert (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]) == (
        pg["TEMPORAL_DB_NAME"],
        pg["TEMPORAL_VISIBILITY_DB_NAME"],
    )
    assert temporal["POSTGRES_PWD"] == "<TEMPORAL_DB_PASSWORD>" == pg["TEMPORAL_DB_PASSWORD"]
    for name in ("worker", "api"):
        url = env_of(services[name])["DATABASE_URL"]
        assert url == f"postgresql://{pg['COURSE_DB_USER']}:<COURSE_DB_PASSWORD>@postgresql:5432/{pg['COURSE_DB_NAME']}"
    assert superuser not in {pg["TEMPORAL_DB_USER"], pg["COURSE_DB_USER"]}
    assert pg["TEMPORAL_DB_USER"] != pg["COURSE_DB_USER"]


# --- secrets ------------------------------------------------------------------

# A variable or environment key with one of these in its name carries a credential.
_SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|KEYS?\b|API_KEY")
# Not a secret despite the name: `staff_id:role:sha256hex` entries are hashes of staff tokens,
# optional because staff can come from the `staff` table; empty admits no one.
# BREAK_GLASS_VERIFY_KEYS: operators' public keys, optional (empty: no break-glass step accepted).
_HASHES_NOT_SECRETS = {"API_TOKENS", "BREAK_GLASS_VERIFY_KEYS"}
_WEAK_PASSWORDS = {"temporal", "course", "courses", "postgres", "password", "secret", "changeme", "admin"}


def _references(text: str) -> list[re.Match[str]]:
    return list(_INTERPOLATION.finditer(text))


def _compose_without_comments() -> str:
    return yaml.safe_dump(yaml.safe_load(COMPOSE_FILE.read_text()))


def _required_variables() -> set[str]:
    return {m.group("name") for m in _references(_compose_without_comments()) if m.group("op") == ":?"}


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def test_every_secret_variable_is_required_with_a_message() -> None:
    text = _compose_without_comments()
    secrets_seen = set()
    for m in _references(text):
        name = m.group("name")
        if not _SECRET_NAME.search(name) or name in _HASHES_NOT_SECRETS:
            continue
        secrets_seen.add(name)
        assert m.group("op") == ":?", f"{m.group(0)}: a secret must be `${{{name}:?message}}` (no default, not empty)"
        assert m.group("arg").strip(), f"{m.group(0)}: say how to provide it"
    assert {"POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "COURSE_DB_PASSWORD", "PAYLOAD_KEYS", "CODEC_TOKENS"} <= (
        secrets_seen
    )


def test_every_secret_bearing_setting_takes_its_value_from_a_required_variable(services: dict) -> None:
    """Keys like POSTGRES_PWD or a DATABASE_URL's password: never a literal, never a default."""
    for name, svc in services.items():
        env = svc.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        for key, raw in env.items():
            value = str(raw)
            if key == "DATABASE_URL":
                password = re.match(r"postgresql://[^:/@]+:(?P<password>[^@]*)@", value)
                assert password, f"{name}: DATABASE_URL without a password"
                value = password.group("password")
            elif not _SECRET_NAME.search(key) or key in _HASHES_NOT_SECRETS:
                continue
            refs = _references(value)
            assert len(refs) == 1 and refs[0].group(0) == value, f"{name}.{key}: {value!r} is not one variable"
            assert refs[0].group("op") == ":?", f"{name}.{key}: {value!r} has a default or may be empty"


def test_no_default_or_literal_password_anywhere() -> None:
    text = _compose_without_comments()
    for m in _references(text):
        if m.group("op") in {":-", "-"}:
            assert m.group("arg").lower() not in _WEAK_PASSWORDS, f"{m.group(0)}: a fallback password"
    for script in (INIT_SCRIPT, SCHEMA_SCRIPT):
        body = script.read_text()
        # A fallback to another variable is fine (`${SQL_PASSWORD:-${POSTGRES_PWD:?...}}`); to a word is not.
        assert not re.search(r"(PASSWORD|PWD)[A-Z_]*:?-[^$}]", body), f"{script.name}: a password with a fallback"
    assert not re.search(r"postgresql://\w+:(?!\$\{)", text), "a literal password in a database URL"


def test_compose_refuses_to_start_without_any_one_secret() -> None:
    """What `docker compose config` does: each required variable, unset or empty, is an error naming it."""
    required = _required_variables()
    full = {name: f"value-of-{name.lower()}" for name in required}
    rendered = _compose_without_comments()
    interpolate(rendered, full)
    for name in sorted(required):
        for absent in ({k: v for k, v in full.items() if k != name}, {**full, name: ""}):
            with pytest.raises(MissingSecret, match=rf"^{name}: \S"):
                interpolate(rendered, absent)


def test_env_example_lists_every_required_variable_and_no_value() -> None:
    example = _env_example()
    assert _required_variables() <= set(example), "a required variable missing from .env.example"
    for name, value in example.items():
        if _SECRET_NAME.search(name):
            assert value == "", f".env.example must not carry a value for {name}"
    ignored = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert ".env" in ignored, "the filled-in .env must stay out of git"
    assert ".env" in DOCKERIGNORE.read_text().split(), "and out of the image"


# --- Temporal UI ----------------------------------------------------------------


def test_the_ui_has_write_actions_off(services: dict) -> None:
    """Anyone reaching the UI could otherwise terminate or reset a course; it has no sign-in here.
    A literal, not a variable: turning it on is a change to review, not a setting."""
    raw = services["temporal-ui"]["environment"]
    assert raw["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    docs = DOCS.read_text()
    assert "TEMPORAL_DISABLE_WRITE_ACTIONS" in docs and "runbook.md#reset-cancel-terminate" in docs


def test_worker_environment(services: dict) -> None:
    env = env_of(services["worker"])
    for key in ("TEMPORAL_ADDRESS", "DATABASE_URL", "COURSE_TASK_QUEUE", "TEMPORAL_NAMESPACE"):
        assert env.get(key), f"worker env {key} missing/empty"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["COURSE_TASK_QUEUE"] == "treatment-courses"
    assert env["DATABASE_URL"] == "postgresql://course:<COURSE_DB_PASSWORD>@postgresql:5432/courses"
    # Break-glass steps are accepted only against the operators' own public keys, when given.
    assert "BREAK_GLASS_VERIFY_KEYS" in env and "BREAK_GLASS_KEY" not in env


def test_api_serves_the_console_with_the_workers_keys_and_database(services: dict) -> None:
    api, worker = services["api"], services["worker"]
    assert api["command"] == ["course", "api"]
    env, worker_env = env_of(api), env_of(worker)
    for key in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "COURSE_TASK_QUEUE", "DATABASE_URL"):
        assert env[key] == worker_env[key], key
    assert api["environment"]["PAYLOAD_KEYS"] == worker["environment"]["PAYLOAD_KEYS"]
    assert (env["API_HOST"], env["API_PORT"]) == ("0.0.0.0", "8082")
    assert "8082/openapi.json" in " ".join(api["healthcheck"]["test"])


def test_worker_is_scalable(services: dict) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "container_name prevents --scale"
    assert not worker.get("ports"), "published ports prevent --scale"
    assert worker.get("restart") == "unless-stopped"
    deps = worker["depends_on"]
    assert deps["temporal"]["condition"] == "service_healthy"
    assert deps["postgresql"]["condition"] == "service_healthy"
    assert deps["temporal-setup"]["condition"] == "service_completed_successfully"


def test_ui_points_at_temporal(services: dict) -> None:
    env = env_of(services["temporal-ui"])
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env.get("TEMPORAL_CORS_ORIGINS")
    assert "TEMPORAL_CODEC_ENDPOINT" in COMPOSE_FILE.read_text()


def test_mounted_host_paths_exist(services: dict) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: mount source {source} missing"


def test_setup_job_runs_the_registration_script(services: dict) -> None:
    setup = services["temporal-setup"]
    assert interpolate(setup["image"]).startswith("temporalio/admin-tools:")
    mounts = {v.split(":")[0]: v.split(":")[1] for v in setup["volumes"]}
    container_path = mounts.get("./deploy/register-search-attributes.sh")
    assert container_path, "register-search-attributes.sh is not mounted"
    command = setup["command"] if isinstance(setup["command"], str) else " ".join(setup["command"])
    assert container_path in command
    assert setup["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_the_clinics_schedules_are_set_up_once_the_search_attributes_exist(services: dict) -> None:
    """Compose runs `course setup-cluster` (the Schedules of issue 20) after temporal-setup, with
    the keys the Schedules' encrypted input needs and the same task queue as the workers."""
    job = services["clinic-schedules"]
    assert job["command"] == ["course", "setup-cluster"] and "build" in job
    assert job["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    env, worker = env_of(job), env_of(services["worker"])
    for key in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "COURSE_TASK_QUEUE", "PAYLOAD_KEYS"):
        assert env[key] == worker[key], key
    assert str(job.get("restart", "")).startswith("on-failure")


# --- setup script -----------------------------------------------------------


def test_script_registers_all_search_attributes() -> None:
    script = SETUP_SCRIPT.read_text()
    assert parse_search_attributes(script) == EXPECTED_SEARCH_ATTRIBUTES
    assert set(EXPECTED_SEARCH_ATTRIBUTES.values()) <= VALID_SA_TYPES
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script


@pytest.mark.parametrize("script", sorted((ROOT / "deploy").rglob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path) -> None:
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh available")
    result = subprocess.run([sh, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _write_stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _run_setup_script(tmp_path: Path, existing: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the script with stub nc/temporal; `existing` = SAs already on the server."""
    if shutil.which("sh") is None:
        pytest.skip("no sh available")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    _write_stub(bin_dir / "nc", "exit 0\n")
    _write_stub(bin_dir / "getent", "exit 2\n")
    existing_cases = "".join(
        f'    {name}) [ "$type" = {typ} ] && {{ echo "already exists"; exit 0; }};'
        f' echo "search attribute {name} already exists and has different type"; exit 1 ;;\n'
        for name, typ in existing.items()
    )
    _write_stub(
        bin_dir / "temporal",
        f'echo "$*" >> "{log}"\n'
        'case "$*" in\n'
        '  "operator namespace describe"*) exit 1 ;;\n'
        '  "operator search-attribute create"*)\n'
        '    name=""; type=""\n'
        "    while [ $# -gt 0 ]; do\n"
        '      case "$1" in --name) name="$2"; shift ;; --type) type="$2"; shift ;; esac\n'
        "      shift\n"
        "    done\n"
        '    case "$name" in\n'
        f"{existing_cases}"
        "    esac\n"
        '    echo "Search attributes have been added"; exit 0 ;;\n'
        "esac\n"
        "exit 0\n",
    )
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_ADDRESS": "temporal:7233",
        "SETUP_MAX_ATTEMPTS": "2",
        "SETUP_RETRY_SLEEP": "0",
    }
    result = subprocess.run(["sh", str(SETUP_SCRIPT)], capture_output=True, text=True, env=env, timeout=60, check=False)
    result.calls = log.read_text().splitlines() if log.exists() else []  # type: ignore[attr-defined]
    return result


def test_setup_script_creates_namespace_and_attributes(tmp_path: Path) -> None:
    result = _run_setup_script(tmp_path, existing={"CoursePhase": "Keyword"})
    assert result.returncode == 0, result.stdout + result.stderr
    calls = result.calls  # type: ignore[attr-defined]
    assert any(c.startswith("operator namespace create") and "--namespace default" in c for c in calls)
    created = {}
    for call in calls:
        m = re.search(r"search-attribute create .*--namespace default --name (\S+) --type (\S+)", call)
        if m:
            created[m.group(1)] = m.group(2)
    assert created == EXPECTED_SEARCH_ATTRIBUTES


def test_setup_script_fails_on_type_conflict(tmp_path: Path) -> None:
    result = _run_setup_script(tmp_path, existing={"Overdue": "Keyword"})
    assert result.returncode != 0
    assert "Overdue" in result.stderr


# --- docs -------------------------------------------------------------------


def test_docs_mention_ports_and_usage() -> None:
    text = DOCS.read_text()
    for port in ("5432", "7233", "8233"):
        assert port in text, f"docs/docker.md does not mention port {port}"
    assert "--scale worker=3" in text
    assert "docker compose up -d" in text
    assert "TEMPORAL_ADDRESS=localhost:7233" in text


# --- worker image -------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK_FILE = ROOT / "requirements.lock"


def _dockerfile_final_stage() -> list[str]:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    joined, current = [], ""
    for line in lines:  # join `\` continuations, drop comments
        if not current and (not line or line.startswith("#")):
            continue
        current += line.removesuffix("\\") + " "
        if not line.endswith("\\"):
            joined.append(current.strip())
            current = ""
    last_from = max(i for i, line in enumerate(joined) if line.upper().startswith("FROM "))
    return joined[last_from:]


def test_worker_is_built_from_the_dockerfile_with_a_healthcheck(services: dict) -> None:
    worker = services["worker"]
    build = worker.get("build")
    assert build in (".", "./") or (isinstance(build, dict) and build.get("context") in (".", "./"))
    assert "image" not in worker, "image + build would tag the build with that name"
    assert "command" not in worker and not worker.get("volumes"), "the image runs `course worker` itself"
    test = " ".join(worker["healthcheck"]["test"])
    assert "/healthz" in test and "urllib" in test
    env = env_of(worker)
    assert env["HEALTH_BIND"].endswith(":8080") and ":8080/healthz" in test
    assert env["METRICS_BIND"].endswith(":9464")
    assert "PAYLOAD_KEYS: ${PAYLOAD_KEYS:?" in COMPOSE_FILE.read_text(), "PAYLOAD_KEYS must stay required"


def test_dockerfile_is_small_non_root_and_pinned() -> None:
    text = DOCKERFILE.read_text()
    assert "python:3.11-slim" in text
    final = _dockerfile_final_stage()
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the worker must not run as root"
    assert any(line.startswith("CMD ") and '"course", "worker"' in line for line in final)
    exposed = {port for line in final if line.startswith("EXPOSE ") for port in line.split()[1:]}
    assert {"9464", "8080"} <= exposed
    healthcheck = next(line for line in final if line.startswith("HEALTHCHECK "))
    assert "urllib" in healthcheck and "/healthz" in healthcheck
    assert "requirements.lock" in text and "--no-deps" in text


def test_lock_file_pins_every_runtime_dependency() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for raw in LOCK_FILE.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{line}: not pinned"
            pins[canonicalize_name(requirement.name)] = spec.version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a runtime dependency but not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    test_only = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["test"]}
    assert not test_only & set(pins), f"test tools in the runtime lock: {sorted(test_only & set(pins))}"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", ".git", ".course-data", "tests/histories"} <= ignored


def test_docs_describe_the_image_and_the_runbook() -> None:
    text = DOCS.read_text()
    assert "build: ." in text and "/healthz" in text and "9464" in text
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    for topic in (
        "docker compose up -d --scale worker=",
        "PAYLOAD_KEY_ID",
        "python -m tests.histories.export --address",
        "changing-the-workflow.md",
        "pg_dump",
        "rebuild_summaries",
    ):
        assert topic in runbook, f"docs/runbook.md does not cover {topic!r}"


def test_the_ui_is_pointed_at_the_codec_server_which_needs_keys_and_tokens() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    codec = services["codec-server"]
    assert codec["command"] == ["course", "codec-server"]
    assert "PAYLOAD_KEYS:?" in str(codec["environment"]["PAYLOAD_KEYS"]).replace("${", "").replace("}", "")
    assert "CODEC_TOKENS:?" in str(codec["environment"]["CODEC_TOKENS"]).replace("${", "").replace("}", "")
    assert any(str(p).endswith(":8081:8081") for p in codec["ports"])
    assert "8081" in str(services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"])


def test_the_servers_dynamic_config_is_what_course_dev_runs_with(services: dict) -> None:
    """The compose server and `course dev`'s dev server differ from the server's defaults in the
    same way (eager activities): a benchmark or test run against one holds for the other."""
    temporal = env_of(services["temporal"])
    mounted = ROOT / "deploy" / "temporal" / "dynamicconfig" / Path(temporal["DYNAMIC_CONFIG_FILE_PATH"]).name
    config = yaml.safe_load(mounted.read_text())
    for key, value in SERVER_DYNAMIC_CONFIG.items():
        assert config[key] == [{"value": value, "constraints": {}}], key
    command = dev_server_command(Settings(), Path("/tmp/dev"))
    pairs = {command[i + 1] for i, arg in enumerate(command) if arg == "--dynamic-config-value"}
    assert pairs == {"system.enableActivityEagerExecution=true"}
