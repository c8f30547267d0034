"""Hostile input through the real CLI: every file gets exit 0 or 1, one `file:line` sentence per
problem, no traceback, no PII echoed, and exactly the reported records stored.

The inputs are generated (hypothesis): JSON Lines of random records and random bytes, wide CSVs
with random cells, schema and requirements YAML with random structure, mutations and `when`
conditions. Imports run on both dialects (the `database_url` fixture).
"""

from __future__ import annotations

import csv
import io
import json
import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from typer.testing import Result

from tests.cli.helpers import Ccv, assert_exit, run

# A value no message may repeat: values can be PII, and errors are printed and logged.
SENTINEL = "PII-SENTINEL-7f3a"

SCHEMA = """\
tenant: acme
agent: bot
fields:
  - name: email
    value_type: email
    is_pii: true
    collection_prompt: "What is your email?"
  - name: nickname
    value_type: string
    collection_prompt: "What should we call you?"
  - name: age
    value_type: integer
    collection_prompt: "How old are you?"
  - name: tier
    value_type: enum
    allowed_values: [free, pro]
    collection_prompt: "Which plan are you on?"
"""

# CCV_TEST_FUZZ_EXAMPLES=2000 for a long hunt; CI runs the default.
FUZZ = settings(
    max_examples=int(os.environ.get("CCV_TEST_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ---------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.just(SENTINEL),
    st.sampled_from(["ana@example.com", "free", "pro", "42", "2026-03-01T10:00:00Z", ""]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_ids = st.one_of(
    st.sampled_from(
        ["c-1", "c-2", "", " ", "c-1\n", "../../etc/passwd", "c\x00nul", "☃", "x" * 300]
    ),
    st.text(max_size=40),
)
RECORD_KEYS = {
    "kind": st.sampled_from(["field", "asset", "Field", "", "widget"]) | json_values,
    "tenant": st.sampled_from(["acme", "acme", "acme", "other", "", "ACME"]) | json_values,
    "customer": hostile_ids | json_values,
    "id": st.uuids().map(str) | hostile_ids | json_values,
    "name": st.sampled_from(["email", "nickname", "age", "tier", "unknown", ""]) | json_values,
    "value": json_values,
    "source": st.sampled_from(["user_provided", "imported", "llm_extracted", "oops"]) | json_values,
    "collected_at": st.sampled_from(["2026-03-01T10:00:00Z", "2026-13-45", "yesterday", ""])
    | json_values,
    "source_item_id": hostile_ids | json_values,
    "source_item_type": st.sampled_from(["session", "profile_field", "profile_asset", "x"])
    | json_values,
    "confidence": st.floats(allow_nan=False) | json_values,
    "verified": st.booleans() | json_values,
    "asset_type": st.sampled_from(["image", "document", "x"]) | json_values,
    "storage_uri": st.text(max_size=20) | json_values,
    "bogus": json_values,
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A record built mostly of the right keys, with any values (often plausible ones)."""
    base: dict[str, Any] = {"tenant": "acme", "customer": draw(st.sampled_from(["c-1", "c-2"]))}
    keys = draw(st.lists(st.sampled_from(sorted(RECORD_KEYS)), unique=True, max_size=7))
    for key in keys:
        base[key] = draw(RECORD_KEYS[key])
    if draw(st.booleans()):  # a plausible value for its field, so that some records are stored
        base["name"], base["value"] = draw(
            st.sampled_from(
                [("nickname", "Ana"), ("age", 41), ("tier", "pro"), ("email", "ana@example.com")]
            )
        )
    return base


raw_lines = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    st.text(max_size=40).map(lambda t: t.replace("\n", "").replace("\r", "").encode()),
    st.sampled_from(
        [
            b"{",
            b"[" * 2000,
            b'{"tenant": "acme", "customer": "c-1", "name": "age", "value": 1e400}',
            b'{"tenant": "acme", "customer": "c-1", "name": "nickname", "value": NaN}',
            b'{"tenant": "acme", "customer": "c-1", "name": "nickname", "value": "\\ud800"}',
            b'{"tenant": "acme", "customer": "c-1", "name": "nickname", "value": "\xed\xa0\x80"}',
            b'{"tenant": "acme", "customer": "c-1", "name": "nickname", "value": "a"} trailing',
            b'{"tenant": "acme", "customer": "c-1", "name": "nickname", "value": "\x00"}',
            b"[]",
            b"null",
            b'"just a string"',
            b"\xef\xbb\xbf{}",
        ]
    ),
)
jsonl_lines = st.lists(
    st.one_of(records().map(lambda r: json.dumps(r, ensure_ascii=False).encode()), raw_lines),
    min_size=1,
    max_size=8,
)

DIALECTS_AND_BULK = pytest.mark.parametrize(
    "database_url", ["sqlite", "postgresql", "postgresql-bulk"], indirect=True
)


# --- helpers ------------------------------------------------------------------------------------


def _stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            fields = conn.execute(text("SELECT count(*) FROM fields")).scalar_one()
            assets = conn.execute(text("SELECT count(*) FROM assets")).scalar_one()
    finally:
        engine.dispose()
    return int(fields) + int(assets)


def _one_line_messages(messages: list[str], *, values: bool = False) -> None:
    """One sentence per problem; with `values` (profile records), never a value repeated."""
    for message in messages:
        assert message.strip(), "an empty message"
        assert "\n" not in message and "\r" not in message, message
        if values:
            assert SENTINEL not in message, f"a value is echoed: {message}"


def _check_import(ccv: Ccv, path: Path, *, tenant: bool = False) -> dict[str, Any]:
    """Import `path` (--json), then again in text, and check what both report and store."""
    extra = ["--tenant", "acme"] if tenant else []
    before = _stored(ccv.database_url)
    result = ccv("profile", "import", path, *extra, "--json")
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert_exit(result, 1 if report["rejected"] else 0)
    assert report["rejected"] == len(report["errors"])
    assert report["inserted"] + report["unchanged"] + report["rejected"] == report["records"]
    assert _stored(ccv.database_url) - before == report["inserted"]
    assert all(isinstance(e["line"], int) and e["line"] >= 1 for e in report["errors"])
    _one_line_messages([e["message"] for e in report["errors"]], values=True)

    # The same file again, in text: nothing new is stored, and every rejection names file:line.
    again = ccv("profile", "import", path, *extra)
    assert_exit(again, result.exit_code)
    assert _stored(ccv.database_url) - before == report["inserted"]
    rejected = [line for line in again.output.splitlines() if line.startswith("rejected ")]
    assert len(rejected) == report["rejected"]
    for line in rejected:
        assert line.startswith(f"rejected {path}:"), line
        number = line[len(f"rejected {path}:") :].split(":", 1)[0]
        assert number.isdigit(), line
    assert SENTINEL not in again.output
    return report


# --- profile import -----------------------------------------------------------------------------


@pytest.fixture
def acme(database_url: str, tmp_path: Path) -> Ccv:
    ccv = Ccv(database_url)
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    assert_exit(ccv("schema", "apply", schema), 0)
    return ccv


@DIALECTS_AND_BULK
@FUZZ
@given(lines=jsonl_lines)
@example(
    lines=[
        b'{"tenant": "acme", "customer": "c-1", "name": "age", "value": "'
        + SENTINEL.encode()
        + b'"}'
    ]
)
@example(lines=[b"\x00\x00", b'{"customer": "c-1", "name": "nickname", "value": "ok"}'])
@example(  # huge: a 4 MiB value and a 1 MiB customer id
    lines=[
        json.dumps(
            {"customer": "c-1", "tenant": "acme", "name": "nickname", "value": "x" * 2**22}
        ).encode(),
        json.dumps(
            {"customer": "y" * 2**20, "tenant": "acme", "name": "nickname", "value": "z"}
        ).encode(),
    ]
)
def test_any_jsonl_file_is_imported_record_by_record(
    acme: Ccv, tmp_path: Path, lines: list[bytes]
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = _check_import(acme, path)
    assert report["records"] == sum(1 for line in lines if line.strip())
    assert all(1 <= e["line"] <= len(lines) for e in report["errors"])


csv_cells = st.one_of(
    st.text(max_size=12),
    st.just(SENTINEL),
    st.sampled_from(["", "41", "-0", "1e3", "pro", "free", "ana@example.com", "a,b", '"q"', "\n"]),
)


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["customer", "email", "nickname", "age", "tier", "unknown", "", "Age"]),
        min_size=1,
        max_size=5,
    ),
    rows=st.lists(st.lists(csv_cells, min_size=0, max_size=6), max_size=6),
)
def test_any_wide_csv_is_imported_cell_by_cell(
    acme: Ccv, tmp_path: Path, header: list[str], rows: list[list[str]]
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "customers.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    _check_import(acme, path, tenant=True)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_as_a_csv_file_are_an_answer_not_a_crash(
    acme: Ccv, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "raw.csv"
    path.write_bytes(b"customer,nickname\n" + data)
    _check_import(acme, path, tenant=True)


# --- schema and requirements YAML ---------------------------------------------------------------

REQUIREMENTS = """\
tenant: acme
agent: bot
scenario: signup
requires:
  - field: nickname
    level: soft
    fallback: ask
    collection_order: 1
  - field: age
    level: hard
    fallback: ask
    collection_order: 2
    when: {when}
"""


def _check_findings(result: Result, files: dict[str, str]) -> dict[str, Any]:
    """`requirements validate --format json`: exit 0 or 1, findings inside the files they name."""
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert_exit(result, 1 if report["errors"] else 0)
    for finding in report["errors"] + report["warnings"]:
        name = Path(finding["file"]).name
        assert name in files, finding
        lines = files[name].splitlines() or [""]
        assert 1 <= finding["line"] <= len(lines) + 1, finding
        assert finding["column"] >= 1, finding
        assert finding["code"], finding
        _one_line_messages([finding["message"]])
    return report


def _mutate(source: str, edits: list[tuple[int, str, int]]) -> str:
    """`source` with each (position, insertion, deletion length) applied."""
    text_ = source
    for position, insertion, deletion in edits:
        at = position % (len(text_) + 1)
        text_ = text_[:at] + insertion + text_[at + deletion :]
    return text_


yaml_noise = st.sampled_from(
    [
        ":",
        "- ",
        "\n",
        "  ",
        "\t",
        "&a ",
        "*a",
        "!!python/object:os.system ",
        "{",
        "]",
        "'",
        '"',
        "\x00",
        "\x07",
        "\ufeff",
        "%YAML 1.1\n",
        "---\n",
        "? ",
        "#",
        "|",
        ">",
        "<<: *a\n",
        SENTINEL,
    ]
) | st.text(max_size=6)
edits = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2000), yaml_noise, st.integers(0, 8)),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(schema_edits=edits, requirements_edits=edits)
@example(
    schema_edits=[(0, "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n", 0)],
    requirements_edits=[(10, "\x00", 0)],
)
def test_broken_yaml_is_findings_with_positions(
    tmp_path: Path,
    schema_edits: list[tuple[int, str, int]],
    requirements_edits: list[tuple[int, str, int]],
) -> None:
    files = {
        "schema.yaml": _mutate(SCHEMA, schema_edits),
        "signup.yaml": _mutate(REQUIREMENTS.format(when="\"tier == 'pro'\""), requirements_edits),
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    result = run(
        "requirements",
        "validate",
        tmp_path / "signup.yaml",
        "--schema",
        tmp_path / "schema.yaml",
        "--format",
        "json",
    )
    _check_findings(result, files)


yaml_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "tenant",
                    "agent",
                    "fields",
                    "name",
                    "value_type",
                    "requires",
                    "field",
                    "level",
                    "fallback",
                    "when",
                    "depends_on",
                    "allowed_values",
                    "scenario",
                    "is_pii",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@FUZZ
@given(document=yaml_documents)
def test_any_yaml_structure_is_findings_or_a_schema(
    database_url: str, tmp_path: Path, document: Any
) -> None:
    content = yaml.safe_dump(document, allow_unicode=True)
    files = {"doc.yaml": content}
    path = tmp_path / "doc.yaml"
    path.write_text(content, encoding="utf-8")
    _check_findings(run("requirements", "validate", path, "--format", "json"), files)
    # `schema apply` on the same file: applied, or refused with file:line and nothing stored.
    ccv = Ccv(database_url)
    assert_exit(ccv("schema", "show", "--tenant", "acme"), 0)  # creates the SQLite file
    before = _definitions(ccv.database_url)
    result = ccv("schema", "apply", path)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for line in result.stderr.splitlines():
        if line.startswith("error:"):
            assert line.startswith(f"error: {path}:"), line
    if result.exit_code != 0:
        assert _definitions(ccv.database_url) == before


def _definitions(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM field_definitions")).scalar_one())
    finally:
        engine.dispose()


# --- `when` conditions --------------------------------------------------------------------------

tokens = st.sampled_from(
    [
        "age",
        "tier",
        "nickname",
        "email",
        "undefined_field",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "not in",
        "and",
        "or",
        "not",
        "(",
        ")",
        "[",
        "]",
        ",",
        "'pro'",
        "'free'",
        "18",
        "-1",
        "1e308",
        "true",
        "false",
        "null",
        "'",
        '"',
        "\\",
        "__import__('os')",
        "lambda",
        ";",
        "#",
    ]
)
conditions = st.one_of(
    st.lists(tokens, min_size=1, max_size=9).map(" ".join),
    st.text(alphabet=string.printable, max_size=30),
)


@FUZZ
@given(condition=conditions, age=json_values, tier=json_values)
@example(condition="age >= 18 and tier in ['pro', 'free']", age="41", tier=["pro"])
@example(condition="not (age < 1e308) or nickname == null", age=2**70, tier=None)
def test_any_when_is_a_finding_or_a_gaps_answer(
    tmp_path: Path, condition: str, age: Any, tier: Any
) -> None:
    """A condition that validates is evaluated on any stored values without failing `gaps`."""
    schema = tmp_path / "schema.yaml"
    schema.write_text(SCHEMA, encoding="utf-8")
    requirements = tmp_path / "signup.yaml"
    body = REQUIREMENTS.format(when=json.dumps(condition))
    requirements.write_text(body, encoding="utf-8")
    files = {"schema.yaml": SCHEMA, "signup.yaml": body}
    report = _check_findings(
        run("requirements", "validate", requirements, "--schema", schema, "--format", "json"),
        files,
    )
    if report["errors"]:
        return
    ccv = Ccv(f"sqlite:///{tmp_path / 'when.db'}")
    assert_exit(ccv("schema", "apply", schema), 0)
    assert_exit(ccv("requirements", "apply", requirements), 0)
    records = tmp_path / "values.jsonl"
    records.write_text(
        "\n".join(
            json.dumps({"tenant": "acme", "customer": "c-1", "name": name, "value": value})
            for name, value in (("age", age), ("tier", tier), ("nickname", "Ana"))
        )
        + "\n",
        encoding="utf-8",
    )
    # Warn: values of any JSON type are stored, so the condition meets what it does not expect.
    # (A value holding NUL is still rejected: no database stores it.)
    imported = ccv("profile", "import", records, "--validation", "warn", "--json")
    assert_exit(imported, 1 if json.loads(imported.stdout)["rejected"] else 0)
    gaps = ccv.json("profile", "gaps", "c-1", "--tenant", "acme", "--scenario", "signup")
    assert {m["field"] for m in gaps["missing"]} | set(gaps["satisfied"]) <= {"nickname", "age"}
    assert "nickname" in gaps["satisfied"]


# --- a database that fails part-way -------------------------------------------------------------

FAIL_MARK = "FAIL-5-MARK"
TRIGGERS = {
    # A real failure of the real database, raised by the insert of any value holding FAIL_MARK.
    "sqlite": [
        f"""CREATE TRIGGER fuzz_fail BEFORE INSERT ON fields
            WHEN CAST(NEW.value AS TEXT) LIKE '%{FAIL_MARK}%'
            BEGIN SELECT RAISE(ABORT, 'fuzz: the disk failed'); END""",
    ],
    "postgresql": [
        f"""CREATE FUNCTION fuzz_fail() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.value::text LIKE '%{FAIL_MARK}%' THEN
                RAISE EXCEPTION 'fuzz: the disk failed' USING ERRCODE = '58030';
              END IF;
              RETURN NEW;
            END $$""",
        "CREATE TRIGGER fuzz_fail BEFORE INSERT ON fields"
        " FOR EACH ROW EXECUTE FUNCTION fuzz_fail()",
    ],
}
DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS fuzz_fail"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS fuzz_fail ON fields",
        "DROP FUNCTION IF EXISTS fuzz_fail()",
    ],
}


@pytest.fixture
def failing(acme: Ccv) -> Iterator[Ccv]:
    """The acme vault, on a database whose insert of a FAIL_MARK value fails."""
    dialect = "sqlite" if acme.database_url.startswith("sqlite") else "postgresql"
    engine = create_engine(acme.database_url)
    try:
        with engine.begin() as conn:
            for statement in TRIGGERS[dialect]:
                conn.execute(text(statement))
        yield acme
    finally:
        with engine.begin() as conn:
            for statement in DROP[dialect]:
                conn.execute(text(statement))
        engine.dispose()


@DIALECTS_AND_BULK
@FUZZ
@given(lines=jsonl_lines, at=st.integers(min_value=0, max_value=8))
def test_a_run_that_exits_5_stores_nothing(
    failing: Ccv, tmp_path: Path, lines: list[bytes], at: int
) -> None:
    doomed = json.dumps(
        {"tenant": "acme", "customer": "c-9", "name": "nickname", "value": FAIL_MARK}
    ).encode()
    lines = [*lines[:at], doomed, *lines[at:]]
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = _stored(failing.database_url)
    result = failing("profile", "import", path)
    assert_exit(result, 5)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert _stored(failing.database_url) == before
