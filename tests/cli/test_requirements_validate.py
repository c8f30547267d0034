"""`ccv requirements validate`: the CI gate for requirement files, in all three output formats.

Every file of fixtures/requirements-broken/ states in its first line the one finding it must
produce (`# expect: error CODE at line N`); the demo files must produce none.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import Result

from .helpers import DEAD_PG_URL, ROOT, assert_exit, run

BROKEN = ROOT / "fixtures" / "requirements-broken"
BROKEN_SCHEMA = BROKEN / "schema"
DEMO = ROOT / "fixtures" / "demo"
EXPECT = re.compile(r"^# expect: (error|warning) ([a-z-]+) at line (\d+)$")
TEXT_LINE = re.compile(r"^\s+(\d+):(\d+)\s+(error|warning)\s+([a-z-]+)\s+\S")
GITHUB_LINE = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),col=(\d+),title=([^:]+)::.+$")

Found = tuple[str, str, str, int]  # (file name relative to the broken folder, severity, code, line)


def _expected() -> dict[str, tuple[str, str, int]]:
    expected = {}
    for path in sorted(BROKEN.rglob("*.yaml")):
        if path.parent == BROKEN_SCHEMA:
            continue
        match = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
        assert match, f"{path} lacks its '# expect:' line"
        expected[path.relative_to(BROKEN).as_posix()] = (
            match.group(1),
            match.group(2),
            int(match.group(3)),
        )
    return expected


EXPECTED = _expected()
SINGLE_FILES = sorted(name for name in EXPECTED if "/" not in name)
# The pair shares one scenario id: they are only wrong together.
CASES = [*SINGLE_FILES, "duplicate-scenario"]


def _relative(file: str) -> str:
    return Path(file).resolve().relative_to(BROKEN).as_posix()


def _validate(*args: str | Path) -> Result:
    return run("requirements", "validate", *args)


def _findings(result: Result, output: str) -> list[Found]:
    """The findings of a run, read back from the output in `output` format."""
    found: list[Found] = []
    if output == "json":
        data = json.loads(result.stdout)
        for severity in ("error", "warning"):
            for f in data[severity + "s"]:
                assert set(f) == {"file", "line", "column", "code", "message"}
                assert f["column"] >= 1 and f["message"]
                found.append((_relative(f["file"]), severity, f["code"], f["line"]))
    elif output == "github":
        for line in result.stdout.splitlines():
            match = GITHUB_LINE.match(line)
            assert match, f"not an annotation: {line!r}"
            severity, file, line_no, _col, code = match.groups()
            found.append((_relative(file), severity, code, int(line_no)))
    else:
        current = None
        for line in result.stdout.splitlines():
            match = TEXT_LINE.match(line)
            if match:
                assert current is not None
                found.append((current, match.group(3), match.group(4), int(match.group(1))))
            elif line.strip() and not line.startswith(" ") and "checked:" not in line:
                current = _relative(line.strip())
    return sorted(found)


def _wanted(case: str) -> list[Found]:
    names = [n for n in EXPECTED if n == case or n.startswith(case + "/")]
    return sorted((name, *EXPECTED[name]) for name in names)


def test_the_broken_folder_covers_every_check_of_the_issue() -> None:
    codes = {code for _, code, _ in EXPECTED.values()}
    assert codes >= {
        "yaml-syntax",
        "unknown-key",
        "missing-key",
        "invalid-name",
        "invalid-value",
        "skip-on-hard",
        "unknown-field",
        "duplicate-requirement",
        "when-syntax",
        "when-undefined-field",
        "when-type",
        "when-call",
        "unknown-depends-on",
        "depends-on-cycle",
        "duplicate-scenario",
        "ask-without-prompt",
        "extract-without-hints",
        "no-schema",
    }


@pytest.mark.parametrize("output", ["json", "text", "github"])
@pytest.mark.parametrize("case", CASES)
def test_each_broken_file_yields_exactly_its_finding(case: str, output: str) -> None:
    wanted = _wanted(case)
    result = _validate(BROKEN / case, "--schema", BROKEN_SCHEMA, "--format", output)
    only_warnings = all(severity == "warning" for _, severity, _, _ in wanted)
    assert_exit(result, 0 if only_warnings else 1)
    assert _findings(result, output) == wanted


@pytest.mark.parametrize("case", [c for c in CASES if _wanted(c)[0][1] == "warning"])
def test_warnings_fail_only_under_strict(case: str) -> None:
    result = _validate(BROKEN / case, "--schema", BROKEN_SCHEMA, "--strict", "--json")
    assert_exit(result, 1)
    assert _findings(result, "json") == _wanted(case)


@pytest.mark.parametrize("output", ["json", "text", "github"])
def test_the_whole_broken_folder_at_once(output: str) -> None:
    result = _validate(BROKEN, "--format", output)
    assert_exit(result, 1)
    assert _findings(result, output) == sorted((n, *want) for n, want in EXPECTED.items())


def test_json_counts_the_files_checked() -> None:
    data = json.loads(_validate(BROKEN, "--format", "json").stdout)
    assert data["files"] == len(EXPECTED) + 1  # and the schema, which has no findings
    assert len(data["errors"]) + len(data["warnings"]) == len(EXPECTED)


def test_messages_carry_hints() -> None:
    data = json.loads(_validate(BROKEN, "--json").stdout)
    messages = {(_relative(f["file"]), f["code"]): f["message"] for f in data["errors"]}
    assert "did you mean 'fallback'" in messages[("unknown-key.yaml", "unknown-key")]
    assert "did you mean 'email'" in messages[("unknown-field.yaml", "unknown-field")]
    assert "compares incompatible types" in messages[("when-type.yaml", "when-type")]
    assert "call" in messages[("when-call.yaml", "when-call")]
    assert (
        "order_id -> refund_amount -> order_id"
        in messages[("depends-on-cycle.yaml", "depends-on-cycle")]
    )


def test_when_findings_point_at_the_token() -> None:
    data = json.loads(
        _validate(BROKEN / "when-syntax.yaml", "--schema", BROKEN_SCHEMA, "--json").stdout
    )
    [finding] = data["errors"]
    line = (BROKEN / "when-syntax.yaml").read_text(encoding="utf-8").splitlines()[8]
    assert line[finding["column"] - 1 :].startswith("> 500")


@pytest.mark.parametrize("output", ["json", "text", "github"])
def test_the_demo_requirements_are_clean_even_under_strict(output: str) -> None:
    result = _validate(DEMO, "--format", output, "--strict")
    assert_exit(result, 0)
    if output == "json":
        assert json.loads(result.stdout) == {"files": 6, "errors": [], "warnings": []}
    elif output == "github":
        assert result.stdout == ""
        assert "6 files checked: 0 errors, 0 warnings" in result.stderr
    else:
        assert result.stdout.strip() == "6 files checked: 0 errors, 0 warnings"


def test_requirements_without_their_schema_warn_but_pass() -> None:
    result = _validate(DEMO / "requirements", "--json")
    assert_exit(result, 0)
    data = json.loads(result.stdout)
    assert data["errors"] == []
    assert {w["code"] for w in data["warnings"]} == {"no-schema"}
    assert len(data["warnings"]) == 4
    assert_exit(_validate(DEMO / "requirements", "--strict"), 1)


def test_schema_option_and_schema_paths_are_equivalent() -> None:
    schemas = sorted((DEMO / "schema").glob("*.yaml"))
    with_option = _validate(
        DEMO / "requirements", "--schema", schemas[0], "--schema", schemas[1], "--json"
    )
    assert_exit(with_option, 0)
    assert json.loads(with_option.stdout) == {"files": 6, "errors": [], "warnings": []}


def test_validating_touches_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCV_DATABASE_URL", DEAD_PG_URL)  # any attempt to connect would fail
    result = run(
        "--database-url",
        f"sqlite:///{tmp_path / 'ccv.db'}",
        "requirements",
        "validate",
        DEMO,
        "--strict",
    )
    assert_exit(result, 0)
    assert_exit(_validate(DEMO, "--strict"), 0)
    assert list(tmp_path.iterdir()) == []  # the cwd: no ccv.db created


def test_validating_imports_no_database_engine() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "ccv",
            "requirements",
            "validate",
            str(DEMO),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["files"] == 6
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "ccv" in imported
    assert imported & {"sqlalchemy", "psycopg", "redis", "alembic"} == set()


SCENARIO = "tenant: acme\nagent: {agent}\nscenario: {scenario}\nrequires:\n  - field: email\n"
SCHEMA = "tenant: acme\nagent: {agent}\nfields:\n  - name: email\n    collection_prompt: Email?\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_directories_are_searched_recursively_and_skip_other_yaml(tmp_path: Path) -> None:
    _write(tmp_path / "schemas" / "bot.yml", SCHEMA.format(agent="bot"))
    _write(
        tmp_path / "req" / "deep" / "er" / "one.yaml", SCENARIO.format(agent="bot", scenario="one")
    )
    _write(tmp_path / "req" / "two.YAML", SCENARIO.format(agent="bot", scenario="two"))
    _write(tmp_path / "req" / "ci.yaml", "on: push\njobs: {}\n")  # not a ccv file: skipped
    _write(tmp_path / "req" / "notes.txt", "not yaml at all: [")
    _write(tmp_path / "req" / ".hidden" / "x.yaml", "broken: [")  # hidden: never read
    _write(tmp_path / "req" / ".draft.yaml", "broken: [")
    result = _validate(tmp_path, "--json", "--strict")
    assert_exit(result, 0)
    assert json.loads(result.stdout)["files"] == 3


def test_a_broken_yaml_file_in_a_directory_is_reported(tmp_path: Path) -> None:
    _write(tmp_path / "req" / "bad.yaml", "tenant: acme\nrequires: [\n")
    result = _validate(tmp_path / "req", "--json")
    assert_exit(result, 1)
    [finding] = json.loads(result.stdout)["errors"]
    assert finding["code"] == "yaml-syntax"


def test_a_named_file_of_neither_kind_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "ci.yaml", "on: push\n")
    result = _validate(path, "--json")
    assert_exit(result, 1)
    assert [f["code"] for f in json.loads(result.stdout)["errors"]] == ["invalid-file"]


def test_a_file_with_both_fields_and_requires_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "both.yaml", SCHEMA.format(agent="bot") + "requires: []\n")
    result = _validate(path, "--json")
    assert_exit(result, 1)
    assert [f["code"] for f in json.loads(result.stdout)["errors"]] == ["invalid-file"]


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("tenant: café\n".encode("latin-1"))
    result = _validate(path, "--json")
    assert_exit(result, 1)
    assert [f["code"] for f in json.loads(result.stdout)["errors"]] == ["invalid-file"]


def test_a_scenario_id_is_unique_per_tenant_across_agents(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", SCHEMA.format(agent="a"))
    _write(tmp_path / "b.yaml", SCHEMA.format(agent="b"))
    _write(tmp_path / "r1.yaml", SCENARIO.format(agent="a", scenario="same"))
    _write(tmp_path / "r2.yaml", SCENARIO.format(agent="b", scenario="same"))
    _write(
        tmp_path / "r3.yaml",
        SCENARIO.format(agent="a", scenario="same").replace("tenant: acme", "tenant: other"),
    )
    result = _validate(
        tmp_path / "a.yaml",
        tmp_path / "b.yaml",
        tmp_path / "r1.yaml",
        tmp_path / "r2.yaml",
        "--json",
    )
    assert_exit(result, 1)
    errors = json.loads(result.stdout)["errors"]
    assert [(Path(e["file"]).name, e["code"], e["line"]) for e in errors] == [
        ("r1.yaml", "duplicate-scenario", 3),
        ("r2.yaml", "duplicate-scenario", 3),
    ]
    assert "r2.yaml" in errors[0]["message"] and "r1.yaml" in errors[1]["message"]
    other_tenant = _validate(
        tmp_path / "r1.yaml", tmp_path / "r3.yaml", tmp_path / "a.yaml", "--json"
    )
    assert json.loads(other_tenant.stdout)["errors"] == []


def test_two_schema_files_for_one_agent_are_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "one.yaml", SCHEMA.format(agent="bot"))
    _write(tmp_path / "two.yaml", SCHEMA.format(agent="bot"))
    result = _validate(tmp_path, "--json")
    assert_exit(result, 1)
    assert [f["code"] for f in json.loads(result.stdout)["errors"]] == ["duplicate-agent"]


def test_a_broken_schema_is_reported_and_its_requirements_are_not_drowned(tmp_path: Path) -> None:
    _write(tmp_path / "s.yaml", SCHEMA.format(agent="bot").replace("name: email", "name: Email"))
    _write(tmp_path / "r.yaml", SCENARIO.format(agent="bot", scenario="one"))
    result = _validate(tmp_path, "--json")
    assert_exit(result, 1)
    data = json.loads(result.stdout)
    found = [(Path(f["file"]).name, f["code"]) for f in data["errors"]]
    assert found == [("s.yaml", "invalid-name")]
    assert data["warnings"] == []


def test_github_annotations_escape_their_properties(tmp_path: Path) -> None:
    path = _write(tmp_path / "a,b:c.yaml", SCENARIO.format(agent="bot", scenario="x"))
    result = _validate(path, "--format", "github")
    assert_exit(result, 0)
    [line] = result.stdout.splitlines()
    assert line.startswith("::warning file=")
    assert "a%2Cb%3Ac.yaml,line=2,col=1,title=no-schema::" in line


def test_text_output_is_grouped_by_file() -> None:
    result = _validate(
        BROKEN / "duplicate-scenario", BROKEN / "bad-level.yaml", "--schema", BROKEN_SCHEMA
    )
    assert_exit(result, 1)
    lines = result.stdout.splitlines()
    headers = [line for line in lines if line and not line.startswith(" ")]
    assert [Path(h).name for h in headers[:-1]] == ["bad-level.yaml", "first.yaml", "second.yaml"]
    assert headers[-1] == "4 files checked: 3 errors, 0 warnings"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = _validate(tmp_path / "nope.yaml")
    assert_exit(missing, 2)
    assert "no such file or directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = _validate(tmp_path / "empty")
    assert_exit(empty, 2)
    assert "no schema or requirements files found" in empty.stderr
    assert_exit(_validate(DEMO, "--format", "xml"), 2)
    assert_exit(_validate(DEMO, "--json", "--format", "github"), 2)
    assert_exit(_validate(), 2)
