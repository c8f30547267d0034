"""Usage errors exit 2 with one `error:` message on stderr and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import TENANT, Ccv, assert_exit, error_lines, run, write_jsonl


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "expire"],
        ["profile", "expire", "--tenant", "acme", "--all-tenants"],
        ["profile", "orphans"],
        ["profile", "orphans", "--tenant", "acme", "--all-tenants"],
        ["profile", "show", "c-1001", "--tenant", TENANT, "--as-of", "yesterday"],
        ["profile", "show", "c-1001", "--tenant", TENANT, "--as-of", "2026-02-30"],
        ["profile", "expire", "--tenant", TENANT, "--now", "soon"],
        ["profile", "import", "in.jsonl", "--validation", "bogus"],
    ],
    ids=[
        "expire-no-tenant",
        "expire-both",
        "orphans-no-tenant",
        "orphans-both",
        "bad-as-of",
        "impossible-date",
        "bad-now",
        "bad-validation",
    ],
)
def test_bad_arguments_are_usage_errors(demo: Ccv, args: list[str]) -> None:
    write_jsonl(Path("in.jsonl"), [{"tenant": TENANT, "customer": "c-x", "name": "email"}])
    demo.fails(*args, code=2)


def test_expire_without_a_tenant_says_what_to_pass(demo: Ccv) -> None:
    result = demo.fails("profile", "expire", code=2)
    assert "--tenant" in result.stderr
    assert "--all-tenants" in result.stderr


def test_an_unknown_global_option_is_a_usage_error() -> None:
    result = run("--bogus", "profile", "show", "c-1", "--tenant", "t")
    assert_exit(result, 2)
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "show", "c-1", "--tenant", "t", "--bogus"],
        ["profile", "show", "c-1"],
        ["profile", "frobnicate"],
        ["profile", "expire", "--tenant", "t", "--apply", "yes-please"],
    ],
    ids=["unknown-option", "missing-tenant", "unknown-command", "extra-argument"],
)
def test_a_usage_error_inside_a_subcommand_exits_2_not_internal_error(args: list[str]) -> None:
    result = run("--database-url", "sqlite:///ccv.db", *args)
    assert_exit(result, 2)
    assert result.stdout == ""
    assert "internal error" not in result.stderr
    assert result.stderr.strip()  # says what is wrong


def test_top_level_help_exits_0() -> None:
    result = run("--help")
    assert_exit(result, 0)
    assert "profile" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args",
    [["profile", "--help"], ["profile", "show", "--help"], ["db", "--help"], ["profile"]],
    ids=["group-help", "command-help", "db-help", "group-without-command"],
)
def test_subcommand_help_exits_0_without_errors(args: list[str]) -> None:
    result = run(*args)
    assert_exit(result, 0 if args[-1] == "--help" else 2)
    assert error_lines(result) == []
    assert "Usage:" in result.output


def test_findings_exit_1_without_an_internal_error_message(demo: Ccv) -> None:
    write_jsonl(Path("in.jsonl"), [{"tenant": TENANT, "customer": "c-x", "name": "nope"}])
    result = demo("profile", "import", "in.jsonl", "--json")
    assert_exit(result, 1)
    assert "internal error" not in result.stderr


def test_a_long_error_message_stays_on_one_line(demo: Ccv) -> None:
    result = demo.fails(
        "profile", "delete", "d7a7a3cc-8c3d-4f16-9293-de8fc88b2875", "--tenant", TENANT, code=4
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_malformed_settings_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("database_url = [\n", encoding="utf-8")
    result = run("--config", config, "db", "current")
    assert_exit(result, 2)
    assert str(config) in result.stderr and "TOML" in result.stderr


def test_a_setting_of_the_wrong_type_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCV_BATCH_SIZE", "abc")
    result = run("db", "current")
    assert_exit(result, 2)
    assert "CCV_BATCH_SIZE" in result.stderr
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("url", ["mysql://x/y", "garbage"])
def test_an_unsupported_database_url_is_a_usage_error(url: str) -> None:
    result = run("--database-url", url, "profile", "show", "c", "--tenant", TENANT)
    assert_exit(result, 2)
    assert "sqlite:///" in result.stderr and "postgresql://" in result.stderr
