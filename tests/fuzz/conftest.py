"""Fixtures of the input fuzz tests: the same isolation as the CLI tests."""

from tests.cli.conftest import _isolated as _isolated  # noqa: F401 - the autouse fixture
