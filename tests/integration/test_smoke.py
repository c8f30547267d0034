from ccv.vault import Vault


def test_demo_profile_shows_active_email_and_lineage(demo_vault: Vault) -> None:
    profile = demo_vault.get_profile("northwind-bank", "c-1001")
    assert profile.fields["email"].id == "a51149bb-e060-4724-a411-4258751b4c83"
    assert profile.fields["email"].masked
    trace = demo_vault.trace("northwind-bank", "bef7e268-ffe9-46ab-a058-1ccace1d62e0")
    assert [item.kind for item in trace.chain] == ["field", "asset", "external"]
