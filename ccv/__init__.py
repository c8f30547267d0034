"""Customer Context Vault: customer context for conversational AI agents.

    from ccv import open_vault
    vault = open_vault(database_url="sqlite:///ccv.db")
    profile = vault.get_profile("acme", "c-1001")

Names are loaded lazily so that `ccv --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "open_vault": "ccv.vault",
    "Vault": "ccv.vault",
    "Settings": "ccv.config",
    "CcvError": "ccv.errors",
    "Profile": "ccv.domain.models",
    "FieldVersion": "ccv.domain.models",
    "AssetVersion": "ccv.domain.models",
    "FieldDefinition": "ccv.domain.models",
    "Trace": "ccv.domain.models",
    "SweepResult": "ccv.domain.models",
    "ImportResult": "ccv.domain.models",
    "Status": "ccv.domain.enums",
    "Source": "ccv.domain.enums",
    "SourceItemType": "ccv.domain.enums",
    "ValidationMode": "ccv.domain.enums",
}

if TYPE_CHECKING:
    from ccv.config import Settings
    from ccv.domain.enums import Source, SourceItemType, Status, ValidationMode
    from ccv.domain.models import (
        AssetVersion,
        FieldDefinition,
        FieldVersion,
        ImportResult,
        Profile,
        SweepResult,
        Trace,
    )
    from ccv.errors import CcvError
    from ccv.vault import Vault, open_vault


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ccv' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AssetVersion",
    "CcvError",
    "FieldDefinition",
    "FieldVersion",
    "ImportResult",
    "Profile",
    "Settings",
    "Source",
    "SourceItemType",
    "Status",
    "SweepResult",
    "Trace",
    "ValidationMode",
    "Vault",
    "open_vault",
]
