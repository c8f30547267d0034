"""Requirement extraction with a fake model: pre-pass, thresholds, merging, cache, --write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ccv.errors import BackendError
from ccv.service.extractor import LLMRequirementExtractor, prepass
from ccv.service.requirements import validate_requirements

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FILE = """\
# Hand-written header comment: must survive --write.
tenant: northwind-bank
agent: support-bot
scenario: change-tier
description: >
  The customer asks to change {{profile.account_tier}}; we greet them by {{profile.legal_name}}.
rules:
  - id: adults
    text: Only adults may upgrade.
requires:
  - field: email   # a human wrote this one
    level: soft
    fallback: ask
    when: "is_adult == true and kyc_status == 'verified'"
  - field: legal_name
    level: hard
    fallback: ask
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "demo" / "schema", tmp_path / "schema")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "change-tier.yaml").write_text(FILE, encoding="utf-8")
    return tmp_path


def proposal(field: str, confidence: float = 0.9, **extra: object) -> dict:
    return {"field": field, "confidence": confidence, "quote": "Only adults may upgrade.", **extra}


def extractor(tree: Path, model) -> LLMRequirementExtractor:
    return LLMRequirementExtractor(model, schema_paths=[tree / "schema"])


def test_prepass_takes_condition_and_template_fields_without_the_llm() -> None:
    import yaml

    found = {s.field: s for s in prepass(yaml.safe_load(FILE))}
    assert set(found) == {"is_adult", "kyc_status", "account_tier"}  # legal_name is required
    assert all(s.confidence == 1.0 and not s.needs_human_review for s in found.values())
    assert found["is_adult"].source == "condition"
    assert found["account_tier"].source == "template"
    assert found["account_tier"].quote == "{{profile.account_tier}}"


def test_suggestions_are_merged_checked_and_thresholded(tree: Path, fake_model) -> None:
    model = fake_model(
        {
            "requirements": [
                proposal("email", 0.99, level="hard"),  # human-written: never overwritten
                proposal("date_of_birth", 0.95, rule="adults", fallback="block"),
                proposal("phone", 0.5, level="soft"),
                proposal("address_line", 0.9, when="no_such_field > 1"),
                proposal("account_tier", 0.3),  # the pre-pass already has it, certain
                proposal("date_of_birth_confirmed", 0.9),  # unknown to the schema
            ],
            "definitions": [
                {"name": "date_of_birth_confirmed", "value_type": "boolean", "is_pii": False}
            ],
        }
    )
    result = extractor(tree, model).extract([tree / "requirements"], write=False)
    (file,) = result.files
    assert len(model.calls) == 1
    got = {s["field"]: s for s in file.suggestions}
    assert set(got) == {
        "is_adult",
        "kyc_status",
        "account_tier",
        "date_of_birth",
        "phone",
        "address_line",
        "date_of_birth_confirmed",
    }
    assert got["account_tier"]["confidence"] == 1.0
    assert got["date_of_birth"]["needs_human_review"] is False
    assert got["date_of_birth"]["rule"] == "adults"
    assert got["phone"]["needs_human_review"] is True  # confidence 0.5 < 0.8
    assert got["address_line"]["when"] is None  # names an undefined field: dropped
    assert got["address_line"]["needs_human_review"] is True
    assert got["date_of_birth_confirmed"]["defined"] is False
    assert file.definitions == [
        {
            "name": "date_of_birth_confirmed",
            "value_type": "boolean",
            "is_pii": False,
            "collection_prompt": None,
        }
    ]
    assert "+  - field: date_of_birth\n" in file.diff
    assert "date_of_birth_confirmed" not in file.diff  # not defined: not written
    assert file.written is False
    assert (tree / "requirements" / "change-tier.yaml").read_text(encoding="utf-8") == FILE


def test_write_keeps_comments_order_and_human_requirements(tree: Path, fake_model) -> None:
    model = fake_model({"requirements": [proposal("email", 0.99, level="hard"), proposal("phone")]})
    result = extractor(tree, model).extract([tree / "requirements"], write=True)
    assert result.files[0].written is True
    text = (tree / "requirements" / "change-tier.yaml").read_text(encoding="utf-8")
    assert text.startswith(FILE)  # everything a human wrote, comments included, is untouched
    added = text[len(FILE) :]
    assert "- field: is_adult" in added and "- field: phone" in added
    assert "field: email" not in added
    assert "confidence: 1.0" in added
    validation = validate_requirements([tree / "requirements"], [tree / "schema"])
    assert validation.errors == []


def test_an_unchanged_file_costs_no_llm_call(tree: Path, fake_model) -> None:
    first = fake_model({"requirements": [proposal("phone")]})
    extractor(tree, first).extract([tree / "requirements"], write=False)
    again = fake_model()  # no answers queued: a call would fail the test
    result = extractor(tree, again).extract([tree / "requirements"], write=True)
    assert again.calls == [] and result.files[0].cached is True
    # The file it wrote asks the same question: still no call, and nothing more to write.
    after = extractor(tree, fake_model()).extract([tree / "requirements"], write=True)
    assert after.files[0].cached is True and after.files[0].diff == ""


def test_another_model_or_schema_is_another_question(tree: Path, fake_model) -> None:
    extractor(tree, fake_model({"requirements": []})).extract([tree / "requirements"], write=False)
    other = fake_model({"requirements": []}, name="other/model")
    extractor(tree, other).extract([tree / "requirements"], write=False)
    assert len(other.calls) == 1
    schema = tree / "schema" / "support-bot.yaml"
    schema.write_text(schema.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    text = schema.read_text(encoding="utf-8").replace("Email address", "E-mail address")
    schema.write_text(text, encoding="utf-8")
    changed = fake_model({"requirements": []})
    extractor(tree, changed).extract([tree / "requirements"], write=False)
    assert len(changed.calls) == 1


def test_a_failing_llm_writes_no_file(tree: Path, fake_model) -> None:
    second = tree / "requirements" / "z-second.yaml"
    second.write_text(FILE.replace("change-tier", "change-tier-2"), encoding="utf-8")
    model = fake_model(
        {"requirements": [proposal("phone")]},
        BackendError("the LLM fake/model failed (HTTP 500): boom"),
    )
    with pytest.raises(BackendError):
        extractor(tree, model).extract([tree / "requirements"], write=True)
    assert (tree / "requirements" / "change-tier.yaml").read_text(encoding="utf-8") == FILE
    assert second.read_text(encoding="utf-8") == FILE.replace("change-tier", "change-tier-2")


def test_the_prompt_holds_the_text_the_schema_and_what_is_required(tree: Path, fake_model) -> None:
    model = fake_model({"requirements": []})
    extractor(tree, model).extract([tree / "requirements" / "change-tier.yaml"], write=False)
    prompt = model.calls[0][-1]["content"]
    assert "- adults: Only adults may upgrade." in prompt
    assert '"name": "phone", "type": "phone"' in prompt
    assert "Already required (do not repeat): email, legal_name" in prompt
