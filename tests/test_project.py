"""Project hygiene, no database: the README and CI agree, linters pass, `--help` stays light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Heavy or engine-building packages that `ccv --help` must not load (STYLE.md, SPEC §5 extras).
FORBIDDEN_ON_HELP = {"prefect", "litellm", "alembic", "sqlalchemy"}


def _fenced_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)]


def _python_dirs() -> list[str]:
    return [name for name in ("ccv", "flows") if (ROOT / name).is_dir()]


def test_readme_test_command_is_the_last_command_of_ci_run() -> None:
    blocks = _fenced_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    readme_command = blocks[1].strip()
    assert "\n" not in readme_command, readme_command
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in ci_lines if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == readme_command


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [str(BIN / "ruff"), "check", *_python_dirs()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run(
        [str(BIN / "mypy"), *_python_dirs()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_by(*args: str) -> set[str]:
    """Top-level packages a fresh `python -m ccv ARGS` imports (from -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ccv", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage:" in result.stdout
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            modules.add(name.split(".")[0])
    assert "ccv" in modules  # the import log was read
    return modules


def test_top_level_help_imports_no_engine_prefect_litellm_or_alembic() -> None:
    assert _imported_by("--help") & FORBIDDEN_ON_HELP == set()


@pytest.mark.parametrize(
    "args", [["profile", "--help"], ["profile", "import", "--help"], ["db", "--help"]]
)
def test_subcommand_help_imports_no_engine_prefect_litellm_or_alembic(args: list[str]) -> None:
    assert _imported_by(*args) & FORBIDDEN_ON_HELP == set()


def test_importing_the_cli_app_loads_nothing_heavy() -> None:
    code = (
        "import sys; from ccv.cli.app import app; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert "typer" in loaded
    assert loaded & FORBIDDEN_ON_HELP == set()
