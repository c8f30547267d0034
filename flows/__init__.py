"""Prefect flows that run ccv's scheduled jobs (SPEC §7): `expire`, `orphans` and `extract`.

Entry points for `prefect.yaml`: `flows/expiry.py:expire`, `flows/orphans.py:orphans`,
`flows/extract.py:extract`. Each task body is one call into ccv; this package only
orchestrates (tenants fan out to tasks, database failures are retried, counts are reported).
Its modules import Prefect: install `ccv[flows]`.
"""
