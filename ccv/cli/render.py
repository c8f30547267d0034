"""Rich renderings of service results (the JSON output needs none: models dump themselves)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from ccv.domain.models import (
    AuditPage,
    FieldVersion,
    Identity,
    IdentityList,
    ImportResult,
    MergeResult,
    Profile,
    Report,
    SweepResult,
    Trace,
    TraceItem,
    TraceNode,
    ValidationReport,
)
from ccv.domain.timeutil import format_time

_STATUS_STYLE = {
    "active": "green",
    "superseded": "dim",
    "expired": "yellow",
    "orphaned": "red",
}


def _value(field: FieldVersion) -> str:
    text = field.value if isinstance(field.value, str) else json.dumps(field.value)
    return escape(text if len(text) <= 60 else text[:57] + "...")


def _source(source_type: Any, source_id: str | None) -> str:
    if source_id is None:
        return ""
    kind = source_type.value if source_type is not None else "?"
    short = source_id if len(source_id) <= 18 else source_id[:8] + "…"
    return escape(f"{kind}:{short}")


def _status(status: Any) -> str:
    value = status.value if status is not None else "-"
    return f"[{_STATUS_STYLE.get(value, 'white')}]{value}[/]"


def _short_time(value: Any) -> str:
    """ISO 8601 with its offset, to the second (tables have no room for microseconds)."""
    if value is None:
        return ""
    text = format_time(value.replace(microsecond=0)) or ""
    return text


def profile(console: Console, data: Profile) -> None:
    console.print(
        f"[bold]{escape(data.customer)}[/] in tenant [bold]{escape(data.tenant)}[/] "
        f"as of {format_time(data.as_of)}"
    )
    table = Table(show_lines=False)
    for column in ("field", "value", "source", "from", "collected", "expires", "conf."):
        table.add_column(column)
    for name, field in sorted(data.fields.items()):
        table.add_row(
            name,
            _value(field),
            field.source.value,
            _source(field.source_item_type, field.source_item_id),
            _short_time(field.collected_at),
            _short_time(field.expires_at),
            f"{field.confidence:.2f}",
        )
    console.print(table)
    if data.assets:
        assets = Table(title="assets")
        for column in ("asset", "type", "uri", "collected", "derived fields"):
            assets.add_column(column)
        for asset in data.assets:
            assets.add_row(
                asset.name,
                asset.asset_type.value,
                escape(asset.storage_uri or ""),
                _short_time(asset.collected_at),
                str(len(asset.analysis_field_ids)),
            )
        console.print(assets)
    if data.history:
        history = Table(title="history (newest first)")
        for column in ("field", "value", "status", "source", "collected", "id"):
            history.add_column(column)
        for name in sorted(data.history):
            for version in data.history[name]:
                history.add_row(
                    name,
                    _value(version),
                    _status(version.status),
                    version.source.value,
                    _short_time(version.collected_at),
                    version.id,
                )
        console.print(history)
    if data.identities:
        console.print(_identities(data.identities))
    masked = any(f.masked for f in data.fields.values()) or any(i.masked for i in data.identities)
    if masked:
        console.print("[dim]PII is masked; --reveal-pii shows it (and is audited).[/]")


def _identities(identities: list[Identity]) -> Table:
    table = Table(title="identities")
    for column in ("channel", "id", "verified", "linked", "source"):
        table.add_column(column)
    for identity in identities:
        table.add_row(
            escape(identity.channel),
            escape(identity.channel_user_id),
            "yes" if identity.verified else "",
            _short_time(identity.linked_at),
            escape(identity.source),
        )
    return table


def identity_list(console: Console, data: IdentityList) -> None:
    console.print(
        f"[bold]{escape(data.customer)}[/] in tenant [bold]{escape(data.tenant)}[/]: "
        f"{len(data.identities)} identit{'y' if len(data.identities) == 1 else 'ies'}"
    )
    if data.identities:
        console.print(_identities(data.identities))
    if any(i.masked for i in data.identities):
        console.print("[dim]Email and phone ids are masked; --reveal-pii shows them (audited).[/]")


def merge(console: Console, data: MergeResult) -> None:
    verb = "merged" if data.applied else "would merge"
    console.print(
        f"{verb} [bold]{escape(data.source)}[/] into [bold]{escape(data.target)}[/] "
        f"(tenant {escape(data.tenant)}): {data.fields} field version(s), "
        f"{data.assets} asset version(s), {data.identities} identit"
        f"{'y' if data.identities == 1 else 'ies'}",
        highlight=False,
    )
    if data.names:
        console.print(f"names: {escape(', '.join(data.names))}", highlight=False)
    if data.superseded:
        table = Table(title="superseded by the merge (the newest version of each name wins)")
        for column in ("kind", "name", "customer", "id", "was", "superseded by"):
            table.add_column(column)
        for change in data.superseded:
            table.add_row(
                change.kind.value,
                change.name,
                escape(change.customer),
                change.id,
                _status(change.from_status),
                change.superseded_by_id,
            )
        console.print(table)
    else:
        console.print("no version is superseded", highlight=False)
    if data.aliases:
        console.print(
            f"aliases of {escape(data.source)} now name {escape(data.target)}: "
            f"{escape(', '.join(data.aliases))}",
            highlight=False,
        )
    if not data.applied:
        console.print("dry run: pass --apply to merge", highlight=False)


def _label(item: TraceItem, focus: bool = False) -> str:
    star = "[bold cyan]★[/] " if focus else ""
    if item.kind == "external":
        return f"{star}[magenta]{escape(item.name or '')}[/] {escape(item.id)} (outside the vault)"
    if item.kind == "missing":
        return f"{star}[red]missing[/] {escape(item.id)} (dangling reference)"
    who = f" · {escape(item.customer)}" if item.customer else ""
    return (
        f"{star}{item.kind} [bold]{escape(item.name or '')}[/] {item.id[:8]} "
        f"{_status(item.status)}{who}"
    )


def trace(console: Console, data: Trace) -> None:
    path = list(reversed(data.chain))
    root = Tree(_label(path[0]) if path else _label(data.item, focus=True))
    node = root
    for item in path[1:]:
        node = node.add(_label(item))
    if path:
        node = node.add(_label(data.item, focus=True))

    def grow(parent: Tree, children: list[TraceNode]) -> None:
        for child in children:
            grow(parent.add(_label(child.item)), child.dependents)

    grow(node, data.dependents)
    console.print(root)
    if data.truncated:
        console.print("[yellow]the chain is deeper than the traversal limit; shown truncated[/]")


def import_result(console: Console, result: ImportResult) -> None:
    verb = "would import" if result.dry_run else "imported"
    console.print(
        f"{result.records} record(s): {verb} {result.inserted}, superseded {result.superseded}, "
        f"unchanged {result.unchanged}, rejected {result.rejected}, warnings {result.warnings}"
    )
    for issue in result.warning_details:
        console.print(
            f"[yellow]warning[/] {escape(issue.file)}:{issue.line}: {escape(issue.message)}"
        )
    for issue in result.errors:
        console.print(
            f"[red]rejected[/] {escape(issue.file)}:{issue.line}: {escape(issue.message)}"
        )


def sweep(console: Console, result: SweepResult, what: str) -> None:
    verb = what if result.applied else f"would be {what} (dry run; --apply to change)"
    for tenant, found in result.tenants.items():
        console.print(f"[bold]{escape(tenant)}[/]: {found.count} item(s) {verb}")
        for item in found.items[:50]:
            console.print(
                f"  {item.kind.value} {item.id} {escape(item.customer)} {item.name} "
                f"({item.status.value})"
            )
        if found.count > min(50, len(found.items)):
            console.print(
                f"  … and {found.count - min(50, len(found.items))} more "
                "(--json lists up to --limit, 0 for all)"
            )
    console.print(f"total: {result.total}")


def validation(console: Console, report: ValidationReport) -> None:
    table = Table(title=f"{report.customer} against agent {report.agent}")
    table.add_column("field")
    table.add_column("result")
    table.add_column("message")
    style = {"valid": "green", "invalid": "red", "undefined": "dim", "expired": "yellow"}
    for check in report.results:
        table.add_row(
            check.field, f"[{style[check.status]}]{check.status}[/]", escape(check.message or "")
        )
    console.print(table)
    console.print("[green]valid[/]" if report.valid else "[red]invalid[/]")


def audit(console: Console, page: AuditPage) -> None:
    if not page.events:
        console.print("no audit events match")
        return
    table = Table(show_lines=False)
    for column in ("at", "event", "customer", "item", "name", "status", "actor"):
        table.add_column(column, overflow="fold")
    for event in page.events:
        change = ""
        if event.from_status or event.to_status:
            change = f"{event.from_status or '-'} → {event.to_status or '-'}"
        table.add_row(
            _short_time(event.at),
            escape(event.event),
            escape(event.customer or ""),
            (event.item_id or "")[:8],
            escape(event.name or ""),
            change,
            escape(event.actor),
        )
    console.print(table)
    if page.truncated:
        console.print(f"more events: --cursor {page.next_cursor}")


def report(console: Console, result: Report) -> None:
    console.print(f"report at {_short_time(result.now)}")
    if not result.tenants:
        console.print("no tenants")
    for tenant, found in result.tenants.items():
        console.print(f"\n[bold]{escape(tenant)}[/]")
        table = Table(show_header=True)
        table.add_column("status")
        table.add_column("fields", justify="right")
        table.add_column("assets", justify="right")
        for status in found.fields:
            table.add_row(
                _status_name(status), str(found.fields[status]), str(found.assets.get(status, 0))
            )
        console.print(table)
        console.print(
            f"customers {found.customers}, identities {found.identities}, "
            f"overdue {found.overdue}, expiring within 1d {found.expiring['1d']} / "
            f"7d {found.expiring['7d']}, requiring confirmation {found.requires_confirmation}"
        )
        histogram = ", ".join(f"{d}: {n}" for d, n in found.lineage.histogram.items())
        console.print(f"lineage depth: max {found.lineage.max_depth} ({histogram})")
        if found.invalid:
            failing = ", ".join(f"{escape(f)} {n}" for f, n in found.invalid.items())
            console.print(f"[red]invalid values[/]: {failing}")
        else:
            console.print("invalid values: none")


def _status_name(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def import_progress(console: Console) -> Any:
    """The import's progress bar: every record counts twice (checked, then stored), with the
    rate and the time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f}/s")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
