"""`profile import` from standard input and from gzipped files (SPEC §12), and its progress bar."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ccv.cli.app import app

from .helpers import Ccv, assert_exit, flat

RECORDS = [
    {"tenant": "acme", "customer": "c-1", "name": "nickname", "value": "Ana"},
    {"tenant": "acme", "customer": "c-2", "name": "nickname", "value": "Bo"},
]
JSONL = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
ARRAY = json.dumps(RECORDS).encode()
CSV = b"tenant,customer,nickname\nacme,c-1,Ana\nacme,c-2,Bo\n"


def _piped(ccv: Ccv, data: bytes, *args: str) -> dict[str, object]:
    argv = ["--database-url", ccv.database_url, "profile", "import", "-", "--json", *args]
    result = ccv.runner.invoke(app, argv, input=data)
    assert_exit(result, 0)
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.mark.parametrize(
    "data", [JSONL, ARRAY, CSV, gzip.compress(JSONL)], ids=["jsonl", "array", "csv", "gzip"]
)
def test_standard_input_in_any_format(ccv: Ccv, data: bytes) -> None:
    result = _piped(ccv, data, "--validation", "disabled")
    assert (result["inserted"], result["rejected"]) == (2, 0)
    shown = ccv.json("profile", "show", "c-2", "--tenant", "acme")
    assert shown["fields"]["nickname"]["value"] == "Bo"
    assert _piped(ccv, data, "--validation", "disabled")["unchanged"] == 2


def test_errors_on_standard_input_name_it(ccv: Ccv) -> None:
    argv = ["--database-url", ccv.database_url, "profile", "import", "-", "--json"]
    result = ccv.runner.invoke(app, [*argv, "--validation", "disabled"], input=b'{"x": 1}\n')
    assert_exit(result, 1)
    assert json.loads(result.stdout)["errors"][0]["file"] == "<stdin>"


@pytest.mark.parametrize("name", ["records.jsonl.gz", "records.json.gz", "records.csv.gz"])
def test_gzipped_files(ccv: Ccv, tmp_path: Path, name: str) -> None:
    plain = {".jsonl": JSONL, ".json": ARRAY, ".csv": CSV}[Path(name).suffixes[0]]
    path = tmp_path / name
    path.write_bytes(gzip.compress(plain))
    result = ccv.json("profile", "import", path, "--validation", "disabled")
    assert (result["inserted"], result["rejected"]) == (2, 0)


def test_a_broken_gzip_file_is_a_usage_error_that_stores_nothing(ccv: Ccv, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(JSONL)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(JSONL)[:-12])
    result = ccv.fails("profile", "import", good, truncated, code=2)
    assert f"{truncated}: cannot decompress" in flat(result.stderr)
    notgz = tmp_path / "plain.jsonl.gz"
    notgz.write_bytes(JSONL)
    result = ccv.fails("profile", "import", notgz, code=2)
    assert "not gzip data" in flat(result.stderr)
    ccv.fails("profile", "show", "c-1", "--tenant", "acme", code=3)


def test_an_unknown_suffix_says_what_is_read(ccv: Ccv, tmp_path: Path) -> None:
    path = tmp_path / "records.txt"
    path.write_bytes(JSONL)
    result = ccv.fails("profile", "import", path, code=2)
    assert "expected .jsonl, .json or .csv (optionally .gz), or - for standard input" in flat(
        result.stderr
    )


def test_the_progress_bar_shows_counts_rate_and_time_left() -> None:
    from rich.console import Console

    from ccv.cli.render import import_progress

    console = Console(record=True, force_terminal=True, width=120)
    with import_progress(console) as bar:
        task = bar.add_task("records checked and stored", total=4000)
        bar.update(task, completed=1000)
        bar.update(task, completed=2000)
        bar.refresh()
        shown = console.export_text()
    assert "records checked and stored" in shown
    assert "2000/4000" in shown
    assert "/s" in shown and ":" in shown  # a rate, and the time left as h:mm:ss
