"""docker-compose.yml and the Dockerfile: a valid file (Debian's `docker-compose` validates it
offline) whose commands, entrypoints and environment variables are the ones the code has."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ccv.cli.app import app
from ccv.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))


def _command(service: str) -> list[str]:
    command = SERVICES[service].get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def _shell_steps(service: str) -> list[list[str]]:
    """The commands of a `sh -c "a && b && exec c"` service, each split into words."""
    command = _command(service)
    assert command[:2] == ["sh", "-c"], command
    steps = [shlex.split(step) for step in command[2].split("&&")]
    return [step[1:] if step[0] == "exec" else step for step in steps]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required under CI=true (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return subprocess.run(
        [binary, "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_config_validates_the_file() -> None:
    done = _compose("config", "-q")
    assert done.returncode == 0, done.stderr


def test_the_scale_out_profile_validates_and_adds_only_its_own_services() -> None:
    done = _compose("--profile", "scale-out", "config", "-q")
    assert done.returncode == 0, done.stderr
    # (Debian's docker-compose 1.29 lists every service in `config --services`: read the file.)
    profiled = {name for name, service in SERVICES.items() if "profiles" in service}
    assert {tuple(SERVICES[name]["profiles"]) for name in profiled} == {("scale-out",)}
    assert set(SERVICES) - profiled == {"postgres", "redis", "prefect-server", "migrate", "worker"}


def _needs(service: str) -> set[str]:
    """Every service `service` waits for, directly or not."""
    found: set[str] = set()
    todo = [service]
    while todo:
        for dependency in SERVICES[todo.pop()].get("depends_on", {}):
            if dependency not in found:
                found.add(dependency)
                todo.append(dependency)
    return found


def test_the_scale_out_stack_is_citus_with_two_workers_a_redis_cluster_and_two_workers() -> None:
    citus = [n for n, s in SERVICES.items() if s.get("image", "").startswith("citusdata/citus:")]
    nodes = {n for n in citus if "healthcheck" in SERVICES[n]}
    assert nodes == {"citus-coordinator", "citus-worker-1", "citus-worker-2"}
    setup = " ".join(_command("citus-setup"))
    assert "citus_set_coordinator_host('citus-coordinator', 5432)" in setup
    for worker in ("citus-worker-1", "citus-worker-2"):
        assert f"citus_add_node('{worker}', 5432)" in setup
    redis_nodes = [n for n, s in SERVICES.items() if "--cluster-enabled" in _command(n)]
    assert sorted(redis_nodes) == ["redis-node-1", "redis-node-2", "redis-node-3"]
    create = " ".join(_command("redis-cluster-setup"))
    assert "--cluster create redis-node-1:6379 redis-node-2:6379 redis-node-3:6379" in create
    pools = {d["work_pool"]["name"] for d in PREFECT_YAML["deployments"]}
    workers = ["worker-scale-out-1", "worker-scale-out-2"]
    for worker in workers:
        # Both workers join the deployments' pool, and run on the whole scale-out stack only.
        start = _shell_steps(worker)[-1] if _command(worker)[0] == "sh" else _command(worker)
        assert start[:5] == ["prefect", "worker", "start", "--pool", *pools]
        assert {"citus-setup", "redis-cluster-setup", "migrate-scale-out"} <= _needs(worker)
        assert not {"migrate", "worker", "redis"} & _needs(worker)
        assert SERVICES[worker]["environment"]["CCV_REDIS_URL"] == "redis://redis-node-1:6379/0"
    assert _command("migrate-scale-out") == ["ccv", "db", "upgrade"]


def test_the_stack_has_its_services_on_the_promised_versions() -> None:
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")
    assert SERVICES["prefect-server"]["image"].startswith("prefecthq/prefect:3")
    assert SERVICES["migrate"]["build"] == SERVICES["worker"]["build"] == "."


def test_services_come_up_in_order_on_health_checks() -> None:
    for service in ("postgres", "redis", "prefect-server", "worker"):
        assert SERVICES[service]["healthcheck"]["test"], service
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["migrate"]["restart"] == "no"  # one-shot
    assert SERVICES["prefect-server"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    assert SERVICES["worker"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "prefect-server": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def _profile(service: dict[str, Any]) -> str:
    return ",".join(service.get("profiles", [])) or "default"


def test_every_ccv_variable_is_a_setting_and_the_services_share_one_database() -> None:
    settings = set(Settings.model_fields)
    urls: dict[str, set[str]] = {}
    for name, service in SERVICES.items():
        for variable in service.get("environment", {}):
            if variable.startswith("CCV_"):
                assert variable.removeprefix("CCV_").lower() in settings, (name, variable)
        if "CCV_DATABASE_URL" in service.get("environment", {}):
            urls.setdefault(_profile(service), set()).add(
                service["environment"]["CCV_DATABASE_URL"]
            )
    # One database per profile: the single node's, and the Citus coordinator's.
    assert urls.keys() == {"default", "scale-out"}
    assert urls["scale-out"] == {"postgresql://postgres@citus-coordinator:5432/ccv"}
    [url] = urls["default"]
    postgres = SERVICES["postgres"]["environment"]
    assert url.endswith(f"@postgres:5432/{postgres['POSTGRES_DB']}")
    # The worker's settings load as the flows will read them.
    worker = {k: v for k, v in SERVICES["worker"]["environment"].items() if k.startswith("CCV_")}
    loaded = Settings(**{k.removeprefix("CCV_").lower(): v for k, v in worker.items()})
    assert loaded.database_url.startswith("postgresql+psycopg://")
    assert str(loaded.requirements_dir) in [v.split(":")[1] for v in SERVICES["worker"]["volumes"]]


def test_every_prefect_variable_is_a_prefect_setting() -> None:
    from prefect.settings import Settings as PrefectSettings
    from prefect.settings.legacy import _get_valid_setting_names

    valid = _get_valid_setting_names(PrefectSettings)
    for name, service in SERVICES.items():
        for variable in service.get("environment", {}):
            if variable.startswith("PREFECT_"):
                assert variable in valid, (name, variable)
    port = SERVICES["worker"]["environment"]["PREFECT_WORKER_WEBSERVER_PORT"]
    assert f"127.0.0.1:{port}/health" in " ".join(SERVICES["worker"]["healthcheck"]["test"])
    api = SERVICES["worker"]["environment"]["PREFECT_API_URL"]
    assert api == "http://prefect-server:4200/api"
    assert "4200" in _command("prefect-server")


def test_ccv_commands_in_the_compose_file_exist() -> None:
    command = _command("migrate")
    assert command == ["ccv", "db", "upgrade"]
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert re.search(r"\bccv\b", DOCKERFILE.split("CMD", 1)[1])


def test_the_worker_deploys_prefect_yaml_and_serves_its_pool() -> None:
    pools = {d["work_pool"]["name"] for d in PREFECT_YAML["deployments"]}
    [pool] = pools
    create, deploy, start = _shell_steps("worker")
    assert create == ["prefect", "work-pool", "create", pool, "--type", "process", "--overwrite"]
    assert deploy == ["prefect", "--no-prompt", "deploy", "--all"]
    assert start[:5] == ["prefect", "worker", "start", "--pool", pool]
    assert "--with-healthcheck" in start


def test_the_image_holds_what_the_deployments_load() -> None:
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, re.M)
    copied = re.findall(r"^COPY (.+) \./", DOCKERFILE, re.M)
    sources = {part for line in copied for part in line.split()}
    for deployment in PREFECT_YAML["deployments"]:
        path = deployment["entrypoint"].split(":")[0]
        assert (ROOT / path).is_file()
        assert path.split("/")[0] in sources
    assert {"prefect.yaml", "ccv", "migrations", "pyproject.toml"} <= sources
    extras = re.search(r'^RUN pip install "\.\[([a-z,]+)\]"$', DOCKERFILE, re.M)
    assert extras is not None
    # the deployments import Prefect; `ccv metrics serve` runs from the same image
    assert {"flows", "metrics"} <= set(extras.group(1).split(","))
    for volume in SERVICES["postgres"]["volumes"]:
        host = volume.split(":")[0]
        if host.startswith("."):
            assert (ROOT / host).is_file(), volume
