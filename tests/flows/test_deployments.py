"""`prefect.yaml`: Prefect reads what we meant (its model silently drops unknown keys and takes
any cron string), the entrypoints load with Prefect's own loader, the parameters fit the flows,
and `prefect deploy --all` works against a Prefect server."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel, WorkPoolConfig
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
DEPLOYMENTS = PREFECT_YAML["deployments"]
# SPEC §7: expiry every 5 minutes, orphans every 15, extraction hourly.
EXPECTED = {
    "flows/expiry.py:expire": ("expire", "*/5 * * * *"),
    "flows/orphans.py:orphans": ("orphans", "*/15 * * * *"),
    "flows/extract.py:extract": ("extract", "0 * * * *"),
}
POOL = "ccv"


def _keys(model: Any) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_prefect_yaml_holds_only_keys_prefect_reads() -> None:
    assert set(PREFECT_YAML) <= _keys(PrefectYamlModel)
    for deployment in DEPLOYMENTS:
        assert set(deployment) <= _keys(DeploymentConfig), deployment["entrypoint"]
        assert set(deployment["work_pool"]) <= _keys(WorkPoolConfig)
        for schedule in deployment["schedules"]:
            assert set(schedule) <= {"cron", "timezone", "active", "day_or"}


def test_prefect_yaml_declares_the_three_scheduled_jobs_on_the_ccv_pool() -> None:
    assert sorted(d["entrypoint"] for d in DEPLOYMENTS) == sorted(EXPECTED)
    assert {d["work_pool"]["name"] for d in DEPLOYMENTS} == {POOL}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["entrypoint"])
def test_entrypoint_loads_and_schedule_and_parameters_fit_the_flow(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # entrypoints are relative to where `prefect deploy` runs
    flow = load_flow_from_entrypoint(deployment["entrypoint"], use_placeholder_flow=False)
    name, cron = EXPECTED[deployment["entrypoint"]]
    assert flow.name == name

    [schedule] = deployment["schedules"]
    assert schedule["cron"] == cron
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # raises when invalid

    signature = inspect.signature(flow.fn)
    assert set(deployment["parameters"]) <= set(signature.parameters)
    # Every parameter left out has a default, and the values given pass the flow's validation.
    missing = set(signature.parameters) - set(deployment["parameters"])
    assert all(signature.parameters[p].default is not inspect.Parameter.empty for p in missing)
    validated = flow.validate_parameters(deployment["parameters"])
    assert {key: validated[key] for key in deployment["parameters"]} == deployment["parameters"]
    if "apply" in signature.parameters or "write" in signature.parameters:
        assert deployment["parameters"].get("apply", deployment["parameters"].get("write"))


def test_cron_validation_in_this_test_catches_a_bad_cron() -> None:
    with pytest.raises(ValueError, match="Invalid cron"):
        CronSchedule(cron="*/5 * * *", timezone="UTC")


def test_prefect_deploy_all_against_a_prefect_server(prefect_server: str, tmp_path: Path) -> None:
    """What the README and the compose worker do: create the pool, deploy everything."""
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    prefect = [sys.executable, "-m", "prefect"]
    for command in (
        [*prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"],
        [*prefect, "--no-prompt", "deploy", "--all"],
    ):
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for entrypoint, (name, cron) in EXPECTED.items():
            deployment = client.read_deployment_by_name(f"{name}/scheduled")
            assert deployment.entrypoint == entrypoint
            assert deployment.work_pool_name == POOL
            assert [s.schedule.cron for s in deployment.schedules] == [cron]  # type: ignore[union-attr]
            assert deployment.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
            ]
            declared = next(d for d in DEPLOYMENTS if d["entrypoint"] == entrypoint)
            assert deployment.parameters == declared["parameters"]
