"""`crimelens watch`: poll a city's open-data crime feed into the warehouse, showing each page as it lands."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from crimelens.cli.options import DbOpt, JsonOpt
from crimelens.cli.render import envelope, err, print_json
from crimelens.cli.support import command, command_name, db_path
from crimelens.config import SETTINGS, get_setting
from crimelens.errors import ConfigError

if TYPE_CHECKING:
    from crimelens.alerts.notify import Channel
    from crimelens.cli.feed_alerts import FeedAlerts
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
    alerts: Annotated[
        bool,
        typer.Option(
            "--alerts/--no-alerts",
            help="After each batch that changes the data, flag areas whose latest weeks are unusually high for "
            "them (stored once in the warehouse, shown once on the terminal, sent once to --jsonl and --webhook).",
        ),
    ] = True,
    alert_method: Annotated[
        str,
        typer.Option(
            "--alert-method",
            help="Spike detector: auto (the pooled expectation, the best on weekly incident series in the "
            "backtest), compstat, recent-z, seasonal-z, seasonal-exact, glm, pooled, cusum, ewma (see "
            "docs/alerts.md; seasonal-*, glm need a prior year of data).",
        ),
    ] = "auto",
    alert_period: Annotated[
        str | None,
        typer.Option("--alert-period", help="Alerts count incidents by week (default) or month."),
    ] = None,
    fdr: Annotated[
        float | None,
        typer.Option(
            "--fdr",
            help="Alerts: false discovery rate over the area-periods examined (Benjamini–Hochberg; p-value "
            "methods). Default 0.05 unless --budget is given.",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            help="Alerts: false alarms allowed per 100 area-periods, a threshold calibrated on the earlier data "
            "(the default, 1, for cusum, ewma and compstat).",
        ),
    ] = None,
    jsonl: Annotated[
        Path | None,
        typer.Option("--jsonl", help="Append each new alert, one JSON object a line, to this file (once each)."),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            help="POST each new alert as JSON to this URL (once each; retried with backoff; a failure never stops "
            "ingest and is tried again on the next poll).",
        ),
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Watch a city's open-data crime feed: load new and updated records as they appear, and remove deleted ones.

    Each page of records is checked like a file and committed together with the feed's progress, so an
    interrupted watch (Ctrl-C, a crash, a lost connection) resumes where it stopped, without losing or
    duplicating a record. Nothing is contacted unless you run this command. After each batch that changes the
    data, spike alerts run on the latest weeks (unless --no-alerts): each alert is printed, stored and sent once.
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
    hook = _alert_hook(alerts, alert_method, alert_period, fdr, budget, jsonl, webhook, as_json)
    # a channel's failure is said once, by the hook, in words for the analyst; not again as a log record
    notify_log = logging.getLogger("crimelens.alerts.notify")
    level = notify_log.level
    notify_log.setLevel(logging.ERROR)
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
            err.print(f"[yellow]Caveat:[/yellow] {escape(str(caveat))}", highlight=False, soft_wrap=True)
        if hook is not None:
            err.print(_alerts_line(hook), highlight=False, soft_wrap=True)
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
            hooks=[] if hook is None else [hook],
        )
    finally:
        con.close()
        notify_log.setLevel(level)
    _show_summary(result)
    if hook is not None:
        _show_alerts(hook)
    if as_json:
        print_json(envelope(command_name(), result, alerts=None if hook is None else hook.summary()))


def _alert_hook(
    enabled: bool,
    method: str,
    period: str | None,
    fdr: float | None,
    budget: float | None,
    jsonl: Path | None,
    webhook: str | None,
    as_json: bool,
) -> FeedAlerts | None:
    """The alerts run after each batch, with their channels; None with --no-alerts. Checked before any fetch."""
    from crimelens.cli.feed_alerts import FeedAlerts, TerminalChannel, check_alert_options
    from crimelens.cli.render import out

    if not enabled:
        if jsonl is not None or webhook is not None:
            raise ConfigError("--no-alerts: no alert is run, so none can be sent; drop --jsonl and --webhook")
        return None
    chosen = check_alert_options(method, period, fdr, budget)
    from crimelens.alerts.notify import JsonlChannel, WebhookChannel

    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise ConfigError(f"--webhook: expected an http:// or https:// URL, got {webhook!r}")
    # the terminal shows alerts on stdout, or on stderr when stdout carries the --json document
    channels: list[Channel] = [TerminalChannel(err if as_json else out)]
    if jsonl is not None:
        channels.append(JsonlChannel(jsonl))
    if webhook is not None:
        channels.append(WebhookChannel(webhook))

    def say(text: str) -> None:
        err.print(f"  [yellow]{text}[/yellow]", highlight=False, soft_wrap=True)

    return FeedAlerts(method=chosen, unit=period, fdr=fdr, budget=budget, channels=channels, say=say)


def _alerts_line(hook: FeedAlerts) -> str:
    from crimelens.alerts.detectors import METHOD_LABELS, P_VALUE_METHODS
    from crimelens.cli.feed_alerts import channel_label

    sent = ", ".join(channel_label(c.name) for c in hook.channels)
    if hook.budget is not None or (hook.fdr is None and hook.method not in P_VALUE_METHODS):
        control = f"at most {hook.budget or 1:g} false alarms per 100 area-{hook.unit or 'week'}s"
    else:
        control = f"false discovery rate {hook.fdr or 0.05:g}"
    return (
        f"Alerts after each batch that changes the data: {METHOD_LABELS[hook.method]} on the latest "
        f"{hook.lookback} whole {hook.unit or 'week'}s, {control}; each new alert once to {sent}."
    )


def _show_alerts(hook: FeedAlerts) -> None:
    n = len(hook.new)
    from crimelens.cli.feed_alerts import channel_label

    failed = ", ".join(channel_label(name) for name in hook.failed)
    failed = f" Not yet sent to {failed}: tried again on the next run." if failed else ""
    err.print(
        f"[bold]Alerts:[/bold] {n} new alert{'s' if n != 1 else ''} in {hook.runs} alert "
        f"run{'s' if hook.runs != 1 else ''}"
        f"; each is stored in the warehouse (table alerts) and never shown or sent twice.{failed}",
        highlight=False,
        soft_wrap=True,
    )


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
