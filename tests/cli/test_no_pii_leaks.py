"""No PII value reaches a log line, an audit event or Redis (SPEC §11, README "Operating ccv").

PII-flagged values (the demo's and a customer's of our own, one of them invalid so validation
failures are logged for a PII field) go through every command at `--log-level debug
--log-format json` with the Redis cache on, on both dialects; then stderr of every run, every
audit row and every Redis key and value are searched for each value.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from ccv.store.cache import Keys
from ccv.store.database import Database
from ccv.store.sealing import Sealer
from ccv.store.tables import audit_events

from .fake_provider import FakeProvider
from .helpers import DEMO, DEMO_SCHEMAS, TENANT, Ccv, assert_exit, write_jsonl

CUSTOMER = "c-secret"
ASSET = "9b1f6a52-3c0e-4f4e-9a52-1f0d2b7c6e11"
NAME_ID = "5d6e7f80-91a2-4b3c-8d4e-5f60718293a4"
SECRETS = {
    "email": "zq.secret.mail@example.org",
    "phone": "+4915112345678",
    "national_id_number": "SECRET-ID-77",  # fails the definition's pattern
    "legal_name": "Zyxwv Secretname",
    "address_line": "17 Hidden Lane, Nowhere",
    "date_of_birth": "1961-07-23",
}
FILLED_EMAIL = "zq.filled.secret@example.org"
# Channel identities whose ids are an email address and phone numbers.
IDENTITY_IDS = {
    "email": "zq.identity.secret@example.org",
    "whatsapp": "+4917099887766",
    "sms": "+4917055443322",
}
TRANSCRIPT_NAME = "Quentin Transcriptname"


def _records() -> list[dict[str, Any]]:
    base = {"tenant": TENANT, "customer": CUSTOMER, "collected_at": "2026-02-01T10:00:00Z"}
    records: list[dict[str, Any]] = [
        {
            **base,
            "kind": "asset",
            "id": ASSET,
            "name": "id_card_front",
            "asset_type": "image",
            "storage_uri": "s3://bucket/c-secret/id.jpg",
        },
        {
            **base,
            "id": NAME_ID,
            "name": "legal_name",
            "value": SECRETS["legal_name"],
            "source": "document_extracted",
            "source_item_type": "profile_asset",
            "source_item_id": ASSET,
        },
        # Past its expiry: `profile expire --apply` moves it.
        {**base, "name": "phone", "value": SECRETS["phone"], "expires_at": "2026-03-01T00:00:00Z"},
    ]
    for name in ("email", "national_id_number", "address_line", "date_of_birth"):
        records.append({**base, "name": name, "value": SECRETS[name]})
    records.append(
        {
            "kind": "identity",
            "tenant": TENANT,
            "customer": CUSTOMER,
            "channel": "email",
            "channel_user_id": IDENTITY_IDS["email"],
            "verified": True,
        }
    )
    return records


def _demo_pii_values() -> set[str]:
    """Every value the demo stores in a PII-flagged field."""
    import yaml

    pii = set()
    for schema in DEMO_SCHEMAS:
        for definition in yaml.safe_load(schema.read_text(encoding="utf-8"))["fields"]:
            if definition.get("is_pii"):
                pii.add(definition["name"])
    values = set()
    for line in (DEMO / "profiles.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("name") in pii and "value" in record:
            values.add(str(record["value"]))
    assert len(values) >= 10, values
    return values


class Recorder:
    """Runs `ccv --log-level debug --log-format json ...` and keeps every stderr line."""

    def __init__(self, ccv: Ccv) -> None:
        self.ccv = ccv
        self.stderr: list[str] = []
        self.events: list[dict[str, Any]] = []

    def __call__(self, *args: str | Path, code: int = 0) -> str:
        result = self.ccv("--log-level", "debug", "--log-format", "json", *args)
        assert_exit(result, code)
        self.stderr.append(result.stderr)
        for line in result.stderr.splitlines():
            if line.startswith("{"):
                self.events.append(json.loads(line))
        return result.stdout


@pytest.fixture
def recorded(
    ccv: Ccv,
    redis_target: Any,
    provider: FakeProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Recorder:
    monkeypatch.setenv("CCV_REDIS_URL", redis_target.url)
    monkeypatch.setenv("CCV_CACHE_PREFIX", redis_target.prefix)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run = Recorder(ccv)
    run("db", "current")
    run("schema", "apply", *DEMO_SCHEMAS)
    run("schema", "show", "--tenant", TENANT)
    run("profile", "import", DEMO / "profiles.jsonl")
    records = tmp_path / "secret.jsonl"
    write_jsonl(records, _records())
    run("profile", "import", records, "--validation", "warn", "--json")
    run("profile", "import", DEMO / "customers.csv", "--tenant", TENANT)
    run("requirements", "validate", DEMO / "requirements")
    run("requirements", "apply", DEMO / "requirements")
    for customer, invalid in (("c-1001", 0), (CUSTOMER, 1)):
        for _ in range(2):  # a miss, then a hit
            run("profile", "show", customer, "--tenant", TENANT)
            run(
                "profile",
                "validate",
                customer,
                "--tenant",
                TENANT,
                "--agent",
                "support-bot",
                code=invalid,
            )
            run("profile", "gaps", customer, "--tenant", TENANT, "--scenario", "refund-request")
        run("profile", "show", customer, "--tenant", TENANT, "--reveal-pii", "--json")
        run("profile", "show", customer, "--tenant", TENANT, "--history", "--json")
        run("profile", "show", customer, "--tenant", TENANT, "--as-of", "2026-06-01T00:00:00Z")
    run("profile", "trace", NAME_ID, "--tenant", TENANT)
    run("profile", "trace", ASSET, "--tenant", TENANT, "--json")

    transcript = tmp_path / "chat.json"
    turns = [
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": f"I am {TRANSCRIPT_NAME}, mail me at {FILLED_EMAIL}"},
    ]
    transcript.write_text(json.dumps({"session_id": "s-9", "turns": turns}), encoding="utf-8")
    answer = {
        "values": [
            {
                "field": "email",
                "value": FILLED_EMAIL,
                "turn": 1,
                "quote": FILLED_EMAIL,
                "confidence": 0.9,
            }
        ]
    }
    provider.answer(json.dumps(answer))
    fill = ["profile", "fill", CUSTOMER, "--tenant", TENANT, "--scenario", "refund-request"]
    llm = ["--model", "openai/local-test", "--api-base", provider.api_base]
    run(*fill, "--transcript", transcript, *llm, "--apply")

    tree = tmp_path / "tree"
    shutil.copytree(DEMO / "schema", tree / "schema")
    shutil.copytree(DEMO / "requirements", tree / "requirements")
    provider.answer(json.dumps({"requirements": [{"field": "email", "confidence": 0.9}]}))
    run(
        "requirements",
        "extract",
        tree / "requirements" / "refund-request.yaml",
        "--schema",
        tree / "schema",
        *llm,
    )

    identity = ("--tenant", TENANT, "--channel", "whatsapp", "--id", IDENTITY_IDS["whatsapp"])
    made = json.loads(run("identity", "resolve", *identity, "--create", "--json"))
    run("identity", "resolve", *identity)
    run("identity", "resolve", *identity[:2], "--channel", "sms", "--id", IDENTITY_IDS["sms"],
        code=3)  # fmt: skip
    run("identity", "link", CUSTOMER, *identity[:2], "--channel", "sms", "--id",
        IDENTITY_IDS["sms"], "--verified")  # fmt: skip
    run("identity", "link", CUSTOMER, *identity, code=4)  # taken: the message masks the id
    run("identity", "list", CUSTOMER, "--tenant", TENANT)
    run("identity", "list", CUSTOMER, "--tenant", TENANT, "--reveal-pii", "--json")
    run("profile", "merge", made["customer"], "--into", CUSTOMER, "--tenant", TENANT)
    run("profile", "merge", made["customer"], "--into", CUSTOMER, "--tenant", TENANT, "--apply")
    run("profile", "show", made["customer"], "--tenant", TENANT)
    run("identity", "unlink", *identity)

    run("profile", "expire", "--tenant", TENANT)
    run("profile", "expire", "--tenant", TENANT, "--apply", "--json")
    run("profile", "delete", ASSET, "--tenant", TENANT, "--force")
    run("profile", "orphans", "--all-tenants", "--apply")
    run("report", "--tenant", TENANT)
    run("report", "--all-tenants", "--json")
    run("report", "--tenant", TENANT, "--format", "prometheus")
    run("audit", "--tenant", TENANT)
    run("audit", "--tenant", TENANT, "--customer", CUSTOMER, "--json")
    run("cache", "stats")
    run("profile", "erase", "c-1001", "--tenant", TENANT, "--yes")
    run("profile", "show", CUSTOMER, "--tenant", TENANT)  # refills the cache after the writes
    return run


def _leaks(haystack: str, values: set[str]) -> list[str]:
    return sorted(value for value in values if value in haystack)


def test_no_pii_value_in_logs_audit_or_redis(recorded: Recorder, redis_target: Any) -> None:
    values = _demo_pii_values() | set(SECRETS.values()) | {FILLED_EMAIL, TRANSCRIPT_NAME}
    values |= set(IDENTITY_IDS.values())

    # The logs said what happened: the events the issue lists, with their ids and codes.
    names = {event["event"] for event in recorded.events}
    assert {"import", "validation_failure", "lineage_traversal", "status_transition"} <= names
    assert {"fill", "extraction", "delete", "erase"} <= names
    assert {"identity_link", "identity_unlink", "merge"} <= names
    failure = next(e for e in recorded.events if e["event"] == "validation_failure")
    assert (failure["tenant"], failure["field"], failure["code"]) == (
        TENANT,
        "national_id_number",
        "pattern",
    )
    assert all(e["level"] and e["ts"] for e in recorded.events)
    assert _leaks("\n".join(recorded.stderr), values) == []

    engine = create_engine(recorded.ccv.database_url)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(audit_events))]
    engine.dispose()
    assert {row["event"] for row in rows} >= {"status_change", "reveal_pii", "delete", "erase"}
    assert {row["event"] for row in rows} >= {"identity_link", "identity_unlink", "merge"}
    assert _leaks(json.dumps(rows, default=str), values) == []

    client = redis_target.client
    keys = sorted(client.scan_iter(match=f"{redis_target.prefix}:*", count=1000))
    assert any(b":p:" in key for key in keys)  # profiles are cached
    stored, opened = [], []
    sealer = Sealer(Database(recorded.ccv.database_url))
    for key in keys:
        stored.append(key)
        kind = client.type(key)
        if kind == b"string":
            value = client.get(key)
            stored.append(value)
            if Keys.is_entry(key.decode()):
                plain = sealer.open(TENANT, key.decode(), value[1:])
                assert plain is not None
                opened.append(plain)
        elif kind == b"hash":
            stored.extend(k + v for k, v in client.hgetall(key).items())
        else:
            raise AssertionError(f"unexpected {kind!r} at {key!r}")
    assert _leaks(b"".join(stored).decode("latin-1"), values) == []
    # What the cache holds, opened with the tenant's key, does carry the customer's values.
    assert SECRETS["email"] in b"".join(opened).decode()
    sealer.db.dispose()
