"""`ccv audit` (SPEC §11): filters, newest first, keyset pages, actors; both dialects."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from ccv.store.tables import audit_events

from .helpers import Ccv, write_jsonl

KEYS = {
    "at",
    "tenant",
    "customer",
    "item_id",
    "name",
    "event",
    "from_status",
    "to_status",
    "actor",
    "detail",
}
OLD = "44444444-4444-4444-8444-444444444444"


def _field(customer: str, name: str, value: Any, collected: str, **more: Any) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "customer": customer,
        "name": name,
        "value": value,
        "collected_at": collected,
        **more,
    }


@pytest.fixture
def acme(ccv: Ccv, monkeypatch: pytest.MonkeyPatch) -> Ccv:
    """Supersessions by ana's import, an expiry by a cron job, a reveal by bob."""
    first = [
        _field("c-1", "tier", "silver", "2026-01-01T00:00:00Z", id=OLD),
        _field("c-1", "risk", 3, "2026-01-01T00:00:00Z", expires_at="2026-02-01T00:00:00Z"),
        _field("c-2", "tier", "gold", "2026-01-01T00:00:00Z"),
    ]
    write_jsonl(Path("first.jsonl"), first)
    assert ccv.json("profile", "import", "first.jsonl", "--validation", "disabled")["inserted"] == 3
    write_jsonl(Path("second.jsonl"), [_field("c-1", "tier", "gold", "2026-03-01T00:00:00Z")])
    monkeypatch.setenv("CCV_ACTOR", "user:ana")
    assert (
        ccv.json("profile", "import", "second.jsonl", "--validation", "disabled")["superseded"] == 1
    )
    monkeypatch.delenv("CCV_ACTOR")
    ccv.json("--actor", "cron:nightly", "profile", "expire", "--tenant", "acme", "--apply")
    ccv.json("--actor", "user:bob", "profile", "show", "c-2", "--tenant", "acme", "--reveal-pii")
    return ccv


def _audit(ccv: Ccv, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = ccv.json("audit", "--tenant", "acme", *args)
    return result


def test_every_event_is_listed_newest_first_with_the_spec_keys(acme: Ccv) -> None:
    page = _audit(acme)
    assert page["truncated"] is False
    events = page["events"]
    assert [e["event"] for e in events] == ["reveal_pii", "status_change", "status_change"]
    for event in events:
        assert event.keys() >= KEYS
        assert event["tenant"] == "acme"
    reveal, expiry, supersession = events
    assert reveal["actor"] == "user:bob via cli:profile show"
    assert expiry["actor"] == "cron:nightly via cli:profile expire"
    assert (expiry["name"], expiry["from_status"], expiry["to_status"]) == (
        "risk",
        "active",
        "expired",
    )
    assert supersession["actor"] == "user:ana via cli:profile import"
    assert (supersession["item_id"], supersession["to_status"]) == (OLD, "superseded")
    stamps = [datetime.fromisoformat(e["at"]) for e in events]
    assert stamps == sorted(stamps, reverse=True)
    assert all(s.utcoffset() is not None for s in stamps)


def test_the_default_actor_is_the_os_user_via_the_command(ccv: Ccv) -> None:
    write_jsonl(Path("a.jsonl"), [_field("c-9", "tier", "a", "2026-01-01T00:00:00Z")])
    write_jsonl(Path("b.jsonl"), [_field("c-9", "tier", "b", "2026-02-01T00:00:00Z")])
    for name in ("a.jsonl", "b.jsonl"):
        ccv.json("profile", "import", name, "--validation", "disabled")
    [event] = _audit(ccv)["events"]
    assert event["actor"] == f"user:{getpass.getuser()} via cli:profile import"


@pytest.mark.parametrize(
    ("args", "events"),
    [
        (("--customer", "c-2"), ["reveal_pii"]),
        (("--customer", "c-1"), ["status_change", "status_change"]),
        (("--item", OLD), ["status_change"]),
        (("--item", OLD.upper()), ["status_change"]),
        (("--event", "reveal_pii"), ["reveal_pii"]),
        (("--event", "erase"), []),
        (("--actor", "user:ana"), ["status_change"]),
        (("--actor", "user:ana via cli:profile import"), ["status_change"]),
        (("--actor", "user:an"), []),
        (("--actor", "cron:nightly", "--customer", "c-2"), []),
    ],
)
def test_filters(acme: Ccv, args: tuple[str, ...], events: list[str]) -> None:
    assert [e["event"] for e in _audit(acme, *args)["events"]] == events


def test_since_is_inclusive_and_until_exclusive(acme: Ccv) -> None:
    events = _audit(acme)["events"]
    middle = events[1]["at"]
    assert [e["at"] for e in _audit(acme, "--since", middle)["events"]] == [
        events[0]["at"],
        middle,
    ]
    assert [e["at"] for e in _audit(acme, "--until", middle)["events"]] == [events[2]["at"]]
    assert _audit(acme, "--since", "2999-01-01")["events"] == []


def test_keyset_pages_cover_every_event_once(acme: Ccv) -> None:
    # Many events with the same time: the sweep's transitions share its `now`.
    engine = create_engine(acme.database_url)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            audit_events.insert(),
            [
                {
                    "tenant": "acme",
                    "customer": "c-3",
                    "item_name": f"f{n}",
                    "event": "status_change",
                    "from_status": "active",
                    "to_status": "expired",
                    "actor": "cli:profile expire",
                    "at": at,
                }
                for n in range(7)
            ],
        )
    engine.dispose()
    everything = _audit(acme, "--limit", "1000")["events"]
    assert len(everything) == 10
    seen: list[dict[str, Any]] = []
    cursor: list[str] = []
    while True:
        page = _audit(acme, "--limit", "3", *cursor)
        seen.extend(page["events"])
        if not page["truncated"]:
            assert page["next_cursor"] is None
            break
        cursor = ["--cursor", page["next_cursor"]]
    assert seen == everything
    # Older events recorded no person, only the command: they list as they were stored.
    assert {e["actor"] for e in everything if e["customer"] == "c-3"} == {"cli:profile expire"}
    assert all(e["detail"] == {} for e in everything if e["customer"] == "c-3")
    [supersession] = [e for e in everything if e["to_status"] == "superseded"]
    assert set(supersession["detail"]) == {"superseded_by_id"}


def test_text_view_and_usage_errors(acme: Ccv) -> None:
    shown = acme("audit", "--tenant", "acme", "--limit", "2")
    assert shown.exit_code == 0, shown.stderr
    assert "reveal_pii" in shown.stdout and "--cursor" in shown.stdout
    acme.fails("audit", "--tenant", "acme", "--cursor", "not-a-cursor", code=2)
    acme.fails("audit", "--tenant", "acme", "--limit", "0", code=2)
    acme.fails("audit", "--tenant", "acme", "--since", "yesterday-ish", code=2)
    acme.fails("--actor", "bad\x07actor", "audit", "--tenant", "acme", code=2)
