"""`crimelens watch`: poll a city's open-data crime feed into the warehouse, showing each page as it lands."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from crimelens.cli.options import DbOpt, JsonOpt
from crimelens.cli.render import envelope, err, print_json
from crimelens.cli.support import command, command_name, db_path
from crimelens.config import SETTINGS, get_setting

if TYPE_CHECKING:
    from crimelens.feeds import BatchSummary, PollSummary, WatchResult

__all__ = ["watch_cmd"]


def _setting_help(name: str) -> str:
    s = SETTINGS[name]
    return f"{s.help} [env: {s.env_var}; default: {s.default}]"


@command("watch")
def watch_cmd(
    feed: Annotated[
        str,
        typer.Argument(
            help="The feed to watch: chicago (Chicago crimes, ijzp-q8t2), nyc-complaints (NYPD complaints, year to "
            "date, 5uac-w243) or la-crime (LAPD crime data 2020 on, 2nrs-mtv8; frozen since March 2024).",
            metavar="SOURCE",
            show_default=False,
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Base URL of the open-data portal serving the feed (default: the feed's own portal, e.g. "
            "https://data.cityofchicago.org); a mirror or a local test server can be given instead.",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Dataset name the records load into (default: the feed's name followed by -feed, e.g. "
            "chicago-feed). A feed keeps its own dataset: records are merged into it by the feed's ids.",
        ),
    ] = None,
    interval: Annotated[float | None, typer.Option("--interval", help=_setting_help("feed_interval"))] = None,
    once: Annotated[bool, typer.Option("--once", help="Poll once (reading every page due) and stop.")] = False,
    max_polls: Annotated[
        int | None, typer.Option("--max-polls", help="Stop after this many polls (default: run until Ctrl-C).")
    ] = None,
    reconcile_every: Annotated[
        int | None, typer.Option("--reconcile-every", help=_setting_help("feed_reconcile_every"))
    ] = None,
    page_size: Annotated[int | None, typer.Option("--page-size", help=_setting_help("feed_page_size"))] = None,
    paging: Annotated[
        str,
        typer.Option(
            "--paging",
            help="How pages are read: keyset (after the last record id read; safe while the feed changes) or "
            "offset ($offset; only for portals that refuse id comparisons: a record updated while a poll runs "
            "can be skipped).",
        ),
    ] = "keyset",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Watch a city's open-data crime feed: load new and updated records as they appear, and remove deleted ones.

    Each page of records is checked like a file and committed together with the feed's progress, so an
    interrupted watch (Ctrl-C, a crash, a lost connection) resumes where it stopped, without losing or
    duplicating a record. Nothing is contacted unless you run this command.
    """
    import stamina.instrumentation

    from crimelens import warehouse
    from crimelens.feeds import Feed, RetryPolicy, get_preset, watch

    # each retry is shown as one readable line (notify, below) instead of stamina's own log records
    stamina.instrumentation.set_on_retry_hooks([])

    preset = get_preset(feed)
    every = float(get_setting("feed_interval", interval))
    reconcile = int(get_setting("feed_reconcile_every", reconcile_every))
    size = int(get_setting("feed_page_size", page_size))
    target = Feed(preset, source or preset.default_source, (url or preset.default_url).rstrip("/"), size, paging)
    polls = 1 if once else max_polls
    policy = RetryPolicy.from_settings()
    con = warehouse.connect(db_path(db))
    try:
        cadence = "once" if polls == 1 else f"every {every:g} s" + (f", {polls} polls" if polls else "; Ctrl-C stops")
        err.print(
            f"Watching [bold]{preset.name}[/bold] ({preset.title}, {preset.dataset}) at {target.url} into dataset "
            f"[bold]{target.source}[/bold]; polling {cadence}.",
            highlight=False,
            soft_wrap=True,
        )
        for caveat in preset.caveats:
            err.print(f"[yellow]Caveat:[/yellow] {caveat}", highlight=False, soft_wrap=True)
        result = watch(
            con,
            target,
            interval=every,
            max_polls=polls,
            reconcile_every=reconcile,
            app_token=str(get_setting("feed_app_token")),
            policy=policy,
            progress=_show_batch,
            on_poll=_show_poll,
            notify=lambda text: err.print(f"  [yellow]{text}[/yellow]", highlight=False, soft_wrap=True),
        )
    finally:
        con.close()
    _show_summary(result)
    if as_json:
        print_json(envelope(command_name(), result))


def _when(value: dt.datetime | None) -> str:
    return "none yet" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _show_batch(batch: BatchSummary) -> None:
    if batch.kind == "reconciliation":
        err.print(
            f"poll {batch.poll} · reconciliation: {batch.rows:,} ids listed; {batch.deleted:,} records deleted at "
            "the source removed",
            highlight=False,
            soft_wrap=True,
        )
        return
    if batch.last:
        moved = f"now {_when(batch.watermark)}"
    else:
        moved = f"{_when(batch.watermark)}, {_when(batch.upper)} once the poll ends"
    dropped = f", {batch.dropped:,} dropped ({_reasons(batch.dropped_reasons)})" if batch.dropped else ", 0 dropped"
    removed = f", {batch.deleted:,} earlier versions removed" if batch.deleted else ""
    err.print(
        f"poll {batch.poll} · page {batch.page}: {batch.rows:,} rows ({batch.new:,} new, {batch.updated:,} updated, "
        f"{batch.unchanged:,} unchanged{dropped}{removed}) · watermark {moved}",
        highlight=False,
        soft_wrap=True,
    )


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{r} {n:,}" for r, n in reasons.items())


def _show_poll(p: PollSummary) -> None:
    resumed = " (resumed after an interruption)" if p.resumed else ""
    err.print(
        f"Poll {p.poll}{resumed} done in {p.seconds:.1f} s: {p.rows:,} rows in {_pages(p.pages)}, {p.new:,} new, "
        f"{p.updated:,} updated, {p.unchanged:,} unchanged, {p.dropped:,} dropped, {p.deleted:,} deleted; "
        f"watermark {_when(p.watermark)}.",
        highlight=False,
        soft_wrap=True,
    )


def _pages(n: int) -> str:
    return "1 page" if n == 1 else f"{n:,} pages"


def _show_summary(result: WatchResult) -> None:
    t = result.totals
    why = {
        "max_polls": "",
        "stopped": "",
        "interrupted": " Stopped by Ctrl-C: the next run resumes after the last page committed.",
    }
    polls = "poll" if len(result.polls) == 1 else "polls"
    err.print(
        f"[bold]Summary:[/bold] {len(result.polls)} {polls}, {t['rows']:,} rows read in {_pages(t['pages'])}: "
        f"{t['new']:,} new, {t['updated']:,} updated, {t['unchanged']:,} unchanged, {t['dropped']:,} dropped, "
        f"{t['deleted']:,} deleted. Dataset {result.source} holds {result.incidents:,} incidents.{why[result.stopped]}",
        highlight=False,
        soft_wrap=True,
    )
