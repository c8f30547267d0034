"""Error types: each carries one sentence a user can act on and the SPEC §5 exit code."""

from __future__ import annotations


class CcvError(Exception):
    """Something the user can fix; the message is the whole story."""

    exit_code = 1


class FindingsError(CcvError):
    """The input was read but holds findings (invalid files, rejected records)."""

    exit_code = 1


class UsageError(CcvError):
    """The command was called wrongly (bad flag, bad value, missing option or extra)."""

    exit_code = 2


class MissingExtraError(UsageError):
    """The command needs an optional extra that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this command needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'ccv[{extra}]'"
        )


class NotFoundError(CcvError):
    """A customer, item or scenario does not exist for the tenant."""

    exit_code = 3


class RefusedError(CcvError):
    """The vault refused to do something destructive without confirmation."""

    exit_code = 4


class BackendError(CcvError):
    """A backend (database, Redis when required, LLM) is unreachable or failing."""

    exit_code = 5


class SchemaOutdatedError(BackendError):
    """The database schema is behind this version of ccv."""


class InvalidFilesError(FindingsError):
    """Input files hold errors; each finding says file:line:column and what is wrong."""

    def __init__(self, findings: list[tuple[str, int, int, str]]) -> None:
        self.findings = findings
        lines = [f"{file}:{line}:{column}: {message}" for file, line, column, message in findings]
        super().__init__("\n".join(lines))
