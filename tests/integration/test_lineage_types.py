"""A source of type session, tool or external ends a chain even when its id is a vault id."""

from __future__ import annotations

import json
from pathlib import Path

from ccv.domain.enums import ValidationMode
from ccv.vault import Vault

FIELD = "00000000-0000-4000-8000-000000000004"
NOTE = "00000000-0000-4000-8000-000000000005"


def test_a_session_id_equal_to_a_vault_id_is_no_lineage_link(vault: Vault, tmp_path: Path) -> None:
    records = [
        {"tenant": "t1", "customer": "c", "id": FIELD, "name": "tier", "value": "pro"},
        {
            "tenant": "t1",
            "customer": "c",
            "id": NOTE,
            "name": "note",
            "value": "x",
            "source_item_id": FIELD,
            "source_item_type": "session",
        },
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    vault.import_files([path], validation_mode=ValidationMode.DISABLED)

    assert vault.trace("t1", FIELD).dependents == []
    assert [item.kind for item in vault.trace("t1", NOTE).chain] == ["external"]
    deleted = vault.delete("t1", FIELD)  # not refused: nothing in the vault derives from it
    assert deleted.orphaned == []
    assert vault.get_profile("t1", "c").fields["note"].status.value == "active"
