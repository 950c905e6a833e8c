"""`crimelens alerts` (detect spikes, store and notify them) and `crimelens alerts backtest` (injected spikes).

Thin shell over :mod:`crimelens.alerts`: parse options, call :func:`~crimelens.alerts.run.run_alerts` or
:func:`~crimelens.alerts.backtest.run_backtest`, render.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from crimelens.cli.options import AreaOpt, CsvOpt, DbOpt, JsonOpt, LimitOpt, SeedOpt, SourceOpt
from crimelens.cli.render import busy, emit, envelope, err, out, print_csv, print_json, show_table
from crimelens.cli.support import app, command_name, guarded, open_warehouse, protect
from crimelens.errors import ConfigError

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    name="alerts",
    help=(
        "Early warning: flag where, and for which offences, recorded crime is spiking beyond what is normal for "
        "that place and season (incidents: area × offence × week or month; UCR data: jurisdiction × offence × "
        "year). Each alert gives the observed and expected count with its interval, the p-value or score, the "
        "method and since when the series has been elevated; alerts are stored once and can be sent to a "
        "JSON-lines file or a webhook. `crimelens alerts backtest` measures how well each method finds injected "
        "spikes at the same false-alarm rate."
    ),
    invoke_without_command=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

MethodOpt = Annotated[
    str,
    typer.Option(
        "--method",
        help="Detector: auto (glm on yearly data, pooled otherwise), compstat, recent-z, seasonal-z, "
        "seasonal-exact, glm, pooled, cusum, ewma (see docs/alerts.md).",
    ),
]
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--period",
        "--unit",
        help="Time unit of the series: week or month for incidents (default week); year for UCR data.",
    ),
]
OffencesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--offence",
        help="Incidents: one series per offence given (repeat; default all offences together). UCR data: the "
        "offence column (default violent_crime).",
    ),
]
AlertSinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="First period examined: a date YYYY-MM-DD (incidents) or a year (UCR). Default: the latest period. "
        "Earlier periods are the history expectations are learnt from.",
    ),
]
FdrOpt = Annotated[
    float | None,
    typer.Option(
        "--fdr",
        help="False discovery rate over every series-period examined (Benjamini–Hochberg; p-value methods). "
        "Default 0.05 unless --budget is given.",
    ),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget",
        help="False alarms allowed per 100 series-periods: a threshold calibrated on the history before --since "
        "(any method; the default for cusum, ewma and compstat is 1).",
    ),
]
JsonlOpt = Annotated[
    Path | None, typer.Option("--jsonl", help="Append new alerts, one JSON object a line, to this file.")
]
WebhookOpt = Annotated[
    str | None,
    typer.Option(
        "--webhook",
        help="POST new alerts as JSON to this URL (retried with backoff; a failure is reported, never fatal).",
    ),
]
NoStoreOpt = Annotated[
    bool,
    typer.Option("--no-store", help="Do not record the alerts in the warehouse (nothing is then notified)."),
]

_SHOWN = ["where_name", "offence", "period", "observed", "expected", "expected_low", "expected_high", "p_value",
          "q_value", "score", "elevated_since"]  # fmt: skip


def _method(method: str, con: Any, source: str | None) -> str:
    if method != "auto":
        return method
    from crimelens.alerts.series import source_kind

    return "glm" if source_kind(con, source)[1] == "ucr" else "pooled"


def _since(value: str | None) -> str | int | dt.date | None:
    if value is None:
        return None
    if value.isdigit() and len(value) == 4:
        return int(value)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since: expected a date YYYY-MM-DD or a year such as 2010, got {value!r}") from None


def _alerts(
    ctx: typer.Context,
    db: DbOpt = None,
    source: SourceOpt = None,
    method: MethodOpt = "auto",
    period: PeriodOpt = None,
    area: AreaOpt = None,
    offence: OffencesOpt = None,
    since: AlertSinceOpt = None,
    fdr: FdrOpt = None,
    budget: BudgetOpt = None,
    jsonl: JsonlOpt = None,
    webhook: WebhookOpt = None,
    no_store: NoStoreOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Flag series whose latest counts are unusually high for their place and season."""
    if ctx.invoked_subcommand is not None:
        return
    import dataclasses

    from crimelens.alerts.notify import Channel, JsonlChannel, WebhookChannel, deliver
    from crimelens.alerts.run import run_alerts
    from crimelens.config import get_setting

    if no_store and (jsonl or webhook):
        raise ConfigError("--no-store: alerts are sent once by their record in the warehouse; drop --jsonl/--webhook")
    area_col = get_setting("area", area)
    with open_warehouse(db, read_only=no_store) as con, busy("Looking for spikes"):
        result = run_alerts(
            con,
            source,
            method=_method(method, con, source),
            unit=period,
            area=None if area_col == "auto" else area_col,
            offences=tuple(offence or ()),
            since=_since(since),
            fdr=fdr,
            budget=budget,
            store=not no_store,
        )
        channels: list[Channel] = []
        if jsonl is not None:
            channels.append(JsonlChannel(jsonl))
        if webhook is not None:
            channels.append(WebhookChannel(webhook))
        if channels:
            report = deliver(con, result.table, channels)
            result = dataclasses.replace(result, delivery=report.to_dict())
            for name, why in report.failed.items():
                err.print(
                    f"[yellow]Not sent:[/yellow] {escape(str(name))}: {escape(str(why))} (tried again on the next run)",
                    soft_wrap=True,
                )
            for name, n in report.sent.items():
                err.print(f"Sent {n} alert(s) to {name} ({report.skipped.get(name, 0)} sent before).", soft_wrap=True)
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    emit(result, as_json=False, limit=limit, columns=_SHOWN)
    if not no_store:
        out.print(f"[dim]{len(result.new_alerts)} new alert(s) stored (data version {result.data_version}).[/dim]")


alerts_app.callback(invoke_without_command=True)(protect(_alerts, "alerts"))

ReplicatesOpt = Annotated[
    int, typer.Option("--replicates", help="Independent draws of spike onsets and sizes (more: narrower intervals).")
]
QuickOpt = Annotated[
    bool, typer.Option("--quick", help="A fast smoke run: one replicate, +100% spikes of 1 and 2 periods only.")
]
MethodsOpt = Annotated[
    list[str] | None,
    typer.Option("--method", help="Methods compared (repeat; default every method that the data allow)."),
]
BacktestBudgetOpt = Annotated[
    float, typer.Option("--budget", help="False alarms per 100 series-periods every method is calibrated to.")
]


@guarded(alerts_app, "backtest")
def backtest(
    db: DbOpt = None,
    source: SourceOpt = None,
    method: MethodsOpt = None,
    period: PeriodOpt = None,
    area: AreaOpt = None,
    offence: OffencesOpt = None,
    budget: BacktestBudgetOpt = 1.0,
    replicates: ReplicatesOpt = 3,
    seed: SeedOpt = None,
    quick: QuickOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Inject spikes of known size into the real series and measure each method's detection, delay and PPV."""
    from crimelens.alerts.backtest import run_backtest, targets_text
    from crimelens.alerts.detectors import METHODS
    from crimelens.alerts.run import build_panel
    from crimelens.config import get_setting

    area_col = get_setting("area", area)
    with open_warehouse(db) as con:
        panel = build_panel(con, source, unit=period, area=None if area_col == "auto" else area_col,
                            offences=tuple(offence or ()))  # fmt: skip
    kwargs: dict[str, Any] = {}
    if quick:
        kwargs = {"sizes": (1.0,), "durations": (1, 2)}
        replicates = 1
    with busy("Backtesting the detectors on injected spikes"):
        result = run_backtest(
            panel,
            methods=tuple(method) if method else METHODS,
            budget=budget,
            replicates=replicates,
            seed=int(get_setting("seed", seed)),
            **kwargs,
        )
    if as_json:
        print_json(envelope(command_name(), result))
        return
    if as_csv:
        print_csv(result.table)
        return
    show_table(summary_table(result), result.title, limit=None)
    for check in result.checks:
        out.print(f"Check: {check}", soft_wrap=True)
    for line in targets_text(result.targets):
        out.print(line.replace("**", ""), soft_wrap=True)
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]", soft_wrap=True)


def summary_table(result: Any) -> Any:
    """One row per method (and the oracle): detection per scenario, false alarms per 100 and PPV."""
    import pandas as pd

    rows = []
    for name, m in [*result.methods.items(), ("oracle", result.oracle)]:
        row: dict[str, Any] = {"method": name}
        row.update(m["detection"])
        row["false_alarms_per_100"] = m["false_alarms_per_100"]
        row["ppv"] = m["ppv"]
        rows.append(row)
    return pd.DataFrame(rows)


app.add_typer(alerts_app, name="alerts")
