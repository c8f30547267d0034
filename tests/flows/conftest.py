"""Flow tests: one Prefect test server for the whole session, and databases for the flows.

Prefect reads its settings when it is first imported, so they are set here, before any test
module of this folder imports it: no telemetry (it once printed a "database is locked"
traceback), a PREFECT_HOME of the run's own, and room for a slow CI machine to start the
temporary server.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="ccv-prefect-home-")
atexit.register(shutil.rmtree, _PREFECT_HOME, True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "60"
os.environ.pop("PREFECT_API_URL", None)  # never a developer's real server
os.environ.pop("PREFECT_API_KEY", None)

from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from flows._common import close_vaults  # noqa: E402


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A temporary Prefect server (SQLite) for every flow run of the session; its API URL."""
    from prefect.settings import PREFECT_API_URL

    with prefect_test_harness(server_startup_timeout=None):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def flow_db(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[str]:
    """Flows run on the test's database (CCV_DATABASE_URL) and the session's Prefect server."""
    monkeypatch.setenv("CCV_DATABASE_URL", database_url)
    yield database_url
    # The test's database goes away with it: so do the vaults the flows opened on it.
    close_vaults()
