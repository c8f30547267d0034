"""The public, synchronous API: the CLI, the flows and agent runtimes all call this."""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, ParamSpec, TypeVar

from ccv import observe
from ccv.config import Settings, load_settings
from ccv.domain.enums import ItemKind, Source, SourceItemType, ValidationMode
from ccv.domain.identifiers import check_key, check_slug
from ccv.domain.models import (
    AuditPage,
    CacheFlush,
    CacheStats,
    CustomerList,
    DeleteResult,
    EraseResult,
    ExportResult,
    FieldDefinition,
    FieldVersion,
    IdentityList,
    IdentityResult,
    ImportResult,
    MergeResult,
    Profile,
    Report,
    SchemaApplyResult,
    SweepResult,
    Trace,
    ValidationReport,
)
from ccv.domain.timeutil import ensure_utc, format_time, utcnow
from ccv.errors import UsageError
from ccv.service import deletion, importing, jobs, lineage, profiles, schema, validation
from ccv.service.convert import field_from_row
from ccv.service.importing import Progress
from ccv.store.claims import Claimant
from ccv.store.database import Database

if TYPE_CHECKING:
    from ccv.domain.gaps import Gaps
    from ccv.service.fill import FillResult, Transcript
    from ccv.service.llm import StructuredModel
    from ccv.service.requirements import RequirementsApplyResult
    from ccv.store.cache import RedisCache


P = ParamSpec("P")
R = TypeVar("R")


def _key(value: str, what: str) -> str:
    try:
        return check_key(value, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _identity(channel: str, channel_user_id: str) -> tuple[str, str]:
    from ccv.domain.identity import check_channel, check_channel_user_id

    try:
        return check_channel(channel), check_channel_user_id(channel_user_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _actor(given: str | None) -> str:
    """The audit actor of a library call: `given` as is, else `<person> via library`."""
    from ccv.service.audit import acting

    return given if given is not None else acting("library")


def _timed(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Observe a library operation's latency in `ccv_operation_seconds` (ccv.observe)."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            with observe.timed(operation):
                return method(*args, **kwargs)

        return timed

    return decorate


class Vault:
    """A customer context vault over one database. Cheap to create; connects on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self._cache: RedisCache | None = None
        self._cache_lock = threading.Lock()

    @property
    def cache(self) -> RedisCache | None:
        """The Redis read cache (None without `redis_url`), built on first use; Redis itself is
        imported and connected only when the cache is first used."""
        if self.settings.redis_url is None:
            return None
        if self._cache is None:
            with self._cache_lock:
                if self._cache is None:
                    from ccv.store.cache import build_cache

                    self._cache = build_cache(self.settings, self.db)
        return self._cache

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        self.db.dispose()

    # Reads
    @_timed("get_profile")
    def get_profile(
        self,
        tenant: str,
        customer: str,
        *,
        as_of: datetime | None = None,
        history: bool = False,
        reveal_pii: bool = False,
        actor: str | None = None,
    ) -> Profile:
        return profiles.get_profile(
            self.db,
            _key(tenant, "tenant"),
            _key(customer, "customer"),
            as_of=ensure_utc(as_of) if as_of else None,
            history=history,
            reveal_pii=reveal_pii,
            # Only a reveal is audited: a plain read does not work out who is reading.
            actor=_actor(actor) if reveal_pii else "library",
            cache=self.cache,
        )

    def history(self, tenant: str, customer: str, name: str | None = None) -> list[FieldVersion]:
        """Every version of the customer's fields (or of one field), newest first, PII masked."""
        profile = self.get_profile(tenant, customer, history=True)
        versions = profile.history or {}
        if name is not None:
            return list(versions.get(name, []))
        return [v for key in sorted(versions) for v in versions[key]]

    @_timed("trace")
    def trace(self, tenant: str, item_id: str) -> Trace:
        return lineage.trace(self.db, _key(tenant, "tenant"), item_id)

    @_timed("validate_profile")
    def validate_profile(self, tenant: str, customer: str, agent: str) -> ValidationReport:
        try:
            check_slug(agent, "agent")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return validation.validate_profile(
            self.db, _key(tenant, "tenant"), _key(customer, "customer"), agent, cache=self.cache
        )

    def schema(self, tenant: str, agent: str | None = None) -> list[FieldDefinition]:
        return schema.show_schema(self.db, _key(tenant, "tenant"), agent)

    # Writes
    @_timed("save_field")
    def save_field(
        self,
        tenant: str,
        customer: str,
        name: str,
        value: Any,
        *,
        source: Source | str = Source.USER_PROVIDED,
        source_item_id: str | None = None,
        source_item_type: SourceItemType | str | None = None,
        source_metadata: dict[str, Any] | None = None,
        confidence: float = 1.0,
        requires_confirmation: bool = False,
        verified: bool = False,
        verification_method: str | None = None,
        collected_at: datetime | None = None,
        expires_at: datetime | None = None,
        item_id: str | None = None,
        validation_mode: ValidationMode | None = None,
        actor: str | None = None,
    ) -> FieldVersion:
        """Store one new version of a field, with validation, lineage and supersession applied."""
        fresh_id = item_id is None
        item_id = item_id or str(uuid.uuid4())
        raw: dict[str, Any] = {
            "kind": "field",
            "tenant": tenant,
            "customer": customer,
            "id": item_id,
            "name": name,
            "value": value,
            "source": str(source),
            "confidence": confidence,
            "requires_confirmation": requires_confirmation,
            "verified": verified,
            "collected_at": format_time(collected_at or utcnow()),
        }
        optional = {
            "source_item_id": source_item_id,
            "source_item_type": str(source_item_type) if source_item_type else None,
            "source_metadata": source_metadata,
            "verification_method": verification_method,
            "expires_at": format_time(expires_at),
        }
        raw.update({k: v for k, v in optional.items() if v is not None})
        row = importing.save_record(
            self.db,
            _key(tenant, "tenant"),
            raw,
            validation=validation_mode,
            actor=_actor(actor),
            fresh_id=fresh_id,
            cache=self.cache,
        )
        return field_from_row(row)

    @_timed("import_files")
    def import_files(
        self,
        paths: Sequence[Path],
        *,
        tenant: str | None = None,
        validation_mode: ValidationMode | None = None,
        dry_run: bool = False,
        actor: str | None = None,
        progress: Progress | None = None,
    ) -> ImportResult:
        return importing.import_files(
            self.db,
            paths,
            tenant=_key(tenant, "tenant") if tenant is not None else None,
            validation=validation_mode,
            dry_run=dry_run,
            actor=_actor(actor),
            progress=progress,
            cache=self.cache,
        )

    @_timed("apply_schema")
    def apply_schema(self, paths: Sequence[Path], *, dry_run: bool = False) -> SchemaApplyResult:
        """Store schema files (each the whole truth for its agent); `dry_run` rolls back and
        says what would change per definition."""
        return schema.apply_schema(self.db, paths, dry_run=dry_run, cache=self.cache)

    @_timed("expire")
    def expire(
        self,
        tenants: Sequence[str] | None = None,
        *,
        all_tenants: bool = False,
        now: datetime | None = None,
        apply: bool = False,
        actor: str | None = None,
        item_limit: int | None = jobs.DEFAULT_ITEM_LIMIT,
        claimant: Claimant | None = None,
    ) -> SweepResult:
        """Expire values past `expires_at`; counts are exact, items listed up to `item_limit`.

        `claimant` (scheduled runs): claim each tenant and skip those another run is sweeping
        or swept as of `now` or later (`SweepResult.skipped`)."""
        return jobs.expire(
            self.db,
            [_key(t, "tenant") for t in tenants or []],
            all_tenants=all_tenants,
            now=ensure_utc(now) if now else None,
            apply=apply,
            batch_size=self.settings.batch_size,
            actor=_actor(actor),
            item_limit=item_limit,
            cache=self.cache,
            claimant=claimant,
        )

    @_timed("orphans")
    def orphans(
        self,
        tenants: Sequence[str] | None = None,
        *,
        all_tenants: bool = False,
        apply: bool = False,
        actor: str | None = None,
        item_limit: int | None = jobs.DEFAULT_ITEM_LIMIT,
        claimant: Claimant | None = None,
    ) -> SweepResult:
        """Orphan items whose source is gone; counts exact, items listed up to `item_limit`.

        `claimant`: as in `expire`, as of the claimant's time."""
        return jobs.orphans(
            self.db,
            [_key(t, "tenant") for t in tenants or []],
            all_tenants=all_tenants,
            apply=apply,
            batch_size=self.settings.batch_size,
            actor=_actor(actor),
            item_limit=item_limit,
            cache=self.cache,
            claimant=claimant,
        )

    @_timed("delete")
    def delete(
        self, tenant: str, item_id: str, *, force: bool = False, actor: str | None = None
    ) -> DeleteResult:
        return deletion.delete_item(
            self.db,
            _key(tenant, "tenant"),
            item_id,
            force=force,
            actor=_actor(actor),
            cache=self.cache,
        )

    @_timed("erase")
    def erase(self, tenant: str, customer: str, *, actor: str | None = None) -> EraseResult:
        return deletion.erase_customer(
            self.db,
            _key(tenant, "tenant"),
            _key(customer, "customer"),
            actor=_actor(actor),
            cache=self.cache,
        )

    @_timed("apply_requirements")
    def apply_requirements(self, paths: Sequence[Path]) -> RequirementsApplyResult:
        """Validate requirement files (against the stored schemas and any schema files among
        `paths`), then store each as the whole truth for its scenario; idempotent."""
        from ccv.service.requirements import apply_requirements

        return apply_requirements(self.db, paths, cache=self.cache)

    @_timed("gaps")
    def gaps(
        self, tenant: str, customer: str, scenario: str, *, now: datetime | None = None
    ) -> Gaps:
        """The customer's unmet requirements of a scenario, in collection order, with prompts;
        expiry and freshness are judged at `now` (default: the current time)."""
        from ccv.service.gaps import find_customer_gaps

        try:
            check_slug(scenario, "scenario")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return find_customer_gaps(
            self.db,
            _key(tenant, "tenant"),
            _key(customer, "customer"),
            scenario,
            now=now,
            cache=self.cache,
        )

    def export_profiles(
        self,
        tenant: str,
        output: Path | BinaryIO,
        *,
        customers: Sequence[str] | None = None,
        actor: str | None = None,
    ) -> ExportResult:
        """Write `customers` (every customer of the tenant when None) as import records, JSON
        Lines in clear, to a binary stream or a file (gzip for `.gz`); audited per customer."""
        from ccv.service.export import export_to

        return export_to(
            self.db,
            _key(tenant, "tenant"),
            output,
            customers=None if customers is None else [_key(c, "customer") for c in customers],
            actor=_actor(actor),
        )

    def list_customers(
        self,
        tenant: str,
        *,
        where: Sequence[tuple[str, str]] = (),
        limit: int = 100,
        cursor: str | None = None,
    ) -> CustomerList:
        """The tenant's customers by id, a keyset page; `where`: (name, value) pairs that the
        customer's active values must equal (values typed by the tenant's definitions)."""
        from ccv.service.listing import list_customers

        return list_customers(
            self.db, _key(tenant, "tenant"), where=where, limit=limit, cursor=cursor
        )

    # Customer identity
    @_timed("resolve_identity")
    def resolve_identity(
        self,
        tenant: str,
        channel: str,
        channel_user_id: str,
        *,
        create: bool = False,
        customer: str | None = None,
        actor: str | None = None,
    ) -> IdentityResult:
        """The customer an identity belongs to (NotFoundError if none); with `create`, get or
        create it atomically: concurrent creators of one identity get one customer (a UUID
        unless `customer` names it)."""
        from ccv.service import identity

        return identity.resolve(
            self.db,
            _key(tenant, "tenant"),
            *_identity(channel, channel_user_id),
            create=create,
            customer=_key(customer, "customer") if customer is not None else None,
            actor=_actor(actor),
            cache=self.cache,
        )

    @_timed("link_identity")
    def link_identity(
        self,
        tenant: str,
        customer: str,
        channel: str,
        channel_user_id: str,
        *,
        verified: bool = False,
        move: bool = False,
        actor: str | None = None,
    ) -> IdentityResult:
        """Link an identity to an existing customer; one of another customer is refused
        (RefusedError) unless `move`."""
        from ccv.service import identity

        return identity.link(
            self.db,
            _key(tenant, "tenant"),
            _key(customer, "customer"),
            *_identity(channel, channel_user_id),
            verified=verified,
            move=move,
            actor=_actor(actor),
            cache=self.cache,
        )

    @_timed("unlink_identity")
    def unlink_identity(
        self, tenant: str, channel: str, channel_user_id: str, *, actor: str | None = None
    ) -> IdentityResult:
        from ccv.service import identity

        return identity.unlink(
            self.db,
            _key(tenant, "tenant"),
            *_identity(channel, channel_user_id),
            actor=_actor(actor),
            cache=self.cache,
        )

    def list_identities(
        self,
        tenant: str,
        customer: str,
        *,
        reveal_pii: bool = False,
        actor: str | None = None,
    ) -> IdentityList:
        from ccv.service import identity

        return identity.list_identities(
            self.db,
            _key(tenant, "tenant"),
            _key(customer, "customer"),
            reveal_pii=reveal_pii,
            actor=_actor(actor),
        )

    @_timed("merge_customers")
    def merge_customers(
        self,
        tenant: str,
        source: str,
        target: str,
        *,
        apply: bool = False,
        actor: str | None = None,
    ) -> MergeResult:
        """Merge SOURCE into TARGET (dry run unless `apply`): SOURCE's versions and identities
        move in one transaction and SOURCE becomes an alias of TARGET."""
        from ccv.service.merge import merge_customers

        return merge_customers(
            self.db,
            _key(tenant, "tenant"),
            _key(source, "customer"),
            _key(target, "customer"),
            apply=apply,
            actor=_actor(actor),
            cache=self.cache,
        )

    # Observability
    @_timed("audit")
    def audit(
        self,
        tenant: str,
        *,
        customer: str | None = None,
        item_id: str | None = None,
        event: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> AuditPage:
        """The tenant's audit events newest first, one keyset page (SPEC §11)."""
        from ccv.service import audit

        return audit.list_events(
            self.db,
            _key(tenant, "tenant"),
            customer=_key(customer, "customer") if customer is not None else None,
            item_id=item_id,
            event=event,
            actor=actor,
            since=ensure_utc(since) if since else None,
            until=ensure_utc(until) if until else None,
            limit=limit,
            cursor=cursor,
        )

    @_timed("report")
    def report(
        self,
        tenants: Sequence[str] | None = None,
        *,
        all_tenants: bool = False,
        now: datetime | None = None,
    ) -> Report:
        """Counts per tenant (SPEC §11), each one aggregate query over the reported tenants."""
        from ccv.service import report

        return report.report(
            self.db,
            [_key(t, "tenant") for t in tenants or []],
            all_tenants=all_tenants,
            now=ensure_utc(now) if now else None,
        )

    # The read cache
    def cache_stats(self) -> CacheStats:
        """Hits, misses and errors of every process using this Redis (and prefix), and the hit
        rate. UsageError without a Redis configured, BackendError when it is unreachable."""
        from ccv.service import cache

        return cache.stats(self.cache)

    def flush_cache(self, tenant: str | None = None) -> CacheFlush:
        """Drop one tenant's cached entries (one operation), or all of them."""
        from ccv.service import cache

        return cache.flush(self.cache, _key(tenant, "tenant") if tenant is not None else None)

    # LLM gap fill
    @_timed("fill")
    def fill(
        self,
        tenant: str,
        customer: str,
        scenario: str,
        transcript: Path | Transcript,
        *,
        model: StructuredModel | str | None = None,
        api_base: str | None = None,
        apply: bool = False,
        reveal_pii: bool = False,
        actor: str | None = None,
    ) -> FillResult:
        """Fill the customer's gaps in `scenario` from a conversation transcript (a file or a
        `Transcript`) with one LLM call; dry run unless `apply`. `model` is a litellm model
        string (default CCV_LLM_MODEL) or any `StructuredModel`."""
        from ccv.service.fill import fill_gaps, read_transcript
        from ccv.service.llm import build_model

        try:
            check_slug(scenario, "scenario")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        conversation = read_transcript(transcript) if isinstance(transcript, Path) else transcript
        chosen: StructuredModel | None
        if model is None or isinstance(model, str):
            name = model or self.settings.llm_model
            chosen = build_model(self.settings, model=name, api_base=api_base) if name else None
        else:
            chosen = model
        return fill_gaps(
            self.db,
            _key(tenant, "tenant"),
            _key(customer, "customer"),
            scenario,
            conversation,
            chosen,
            apply=apply,
            reveal_pii=reveal_pii,
            actor=_actor(actor),
            cache=self.cache,
        )


def open_vault(settings: Settings | None = None, **overrides: Any) -> Vault:
    """Open a vault from Settings (environment, ccv.toml) with optional overrides."""
    return Vault(settings or load_settings(**overrides))


__all__ = ["ItemKind", "Vault", "open_vault"]
