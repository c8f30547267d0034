"""fixtures/demo.sh, step by step, through the CLI on both dialects."""

from __future__ import annotations

from .helpers import DEMO, DEMO_SCHEMAS, TENANT, Ccv, assert_exit

KYC_STATUS = "bef7e268-ffe9-46ab-a058-1ccace1d62e0"
ID_CARD = "d7a7a3cc-8c3d-4f16-9293-de8fc88b2875"
DANGLING_SOURCE = "46e3897a-83d3-45a6-b506-e7d2ca6e3fc8"


def _line_of(text: str) -> int:
    lines = (DEMO / "profiles.jsonl").read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def test_demo_script_runs_end_to_end(ccv: Ccv) -> None:
    applied = ccv.json("schema", "apply", *DEMO_SCHEMAS)
    assert (applied["files"], applied["created"]) == (2, 20)

    imported = ccv.json("profile", "import", DEMO / "profiles.jsonl")
    assert {k: imported[k] for k in ("records", "inserted", "rejected", "warnings")} == {
        "records": 256,
        "inserted": 256,
        "rejected": 0,
        "warnings": 1,
    }
    assert imported["errors"] == []

    wide = ccv.json("profile", "import", DEMO / "customers.csv", "--tenant", TENANT)
    assert wide["rejected"] == 0
    assert wide["inserted"] == wide["records"] > 0

    shown = ccv("profile", "show", "c-1001", "--tenant", TENANT, "--history")
    assert_exit(shown, 0)
    assert "a51149bb-e060-4724-a411-4258751b4c83" in shown.stdout  # email v2, in history
    assert "e5121482-3929-4d22-a255-accb1a466884" in shown.stdout  # email v1, superseded

    for item in (KYC_STATUS, ID_CARD):
        traced = ccv("profile", "trace", item, "--tenant", TENANT)
        assert_exit(traced, 0)
        assert "id_card_front" in traced.stdout
        assert "national_id_number" in traced.stdout

    assert_exit(ccv("profile", "expire", "--tenant", TENANT), 0)


def test_dangling_reference_warning_names_file_and_line(ccv: Ccv) -> None:
    ccv.json("schema", "apply", *DEMO_SCHEMAS)
    result = ccv("profile", "import", DEMO / "profiles.jsonl")
    assert_exit(result, 0)
    line = _line_of(f'"source_item_id": "{DANGLING_SOURCE}"')
    assert f"profiles.jsonl:{line}:" in result.stdout
    assert DANGLING_SOURCE in result.stdout


def test_wide_csv_cells_become_imported_fields_and_empty_cells_none(ccv: Ccv) -> None:
    ccv.json("schema", "apply", *DEMO_SCHEMAS)
    ccv.json("profile", "import", DEMO / "customers.csv", "--tenant", TENANT)
    profile = ccv.json("profile", "show", "c-2002", "--tenant", TENANT)
    assert profile["fields"]["account_tier"]["value"] == "basic"
    assert profile["fields"]["account_tier"]["source"] == "imported"
    assert profile["fields"]["card_last4"]["value"] == "0093"  # a string keeps its zeros
    assert "preferred_language" not in profile["fields"]  # the cell is empty


def test_reimporting_the_demo_changes_nothing(ccv: Ccv) -> None:
    first = ccv.json("schema", "apply", *DEMO_SCHEMAS)
    again = ccv.json("schema", "apply", *DEMO_SCHEMAS)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, first["created"])

    ccv.json("profile", "import", DEMO / "profiles.jsonl")
    before = ccv.json("profile", "show", "c-1001", "--tenant", TENANT, "--history")
    second = ccv.json("profile", "import", DEMO / "profiles.jsonl")
    assert (second["inserted"], second["superseded"], second["rejected"]) == (0, 0, 0)
    assert second["unchanged"] == second["records"] == 256
    after = ccv.json("profile", "show", "c-1001", "--tenant", TENANT, "--history")
    assert after["history"] == before["history"]
