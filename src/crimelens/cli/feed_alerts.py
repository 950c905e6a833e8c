"""Spike alerts while `crimelens watch` runs: after each batch it commits, detect, store, and show or send each
alert once.

The feed (:mod:`crimelens.feeds`) sits below the alerts in the layers and knows nothing of them; this module, in
the CLI layer, joins the two. :class:`FeedAlerts` is a batch hook (``feeds.watch(..., hooks=[...])``) that calls
:func:`crimelens.alerts.run_after_batch`, which examines the latest whole periods, stores the new alerts by
their stable key and sends each one once per channel (the warehouse records every delivery).

A failing channel never stops ingest: its failure is said in one line, the alerts stay pending, and the channel
is skipped for the rest of that poll (so a dead webhook costs its retries at most once a poll) and tried again
on the next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from crimelens.errors import ConfigError, CrimeLensError

if TYPE_CHECKING:
    import duckdb
    from rich.console import Console

    from crimelens.alerts.notify import Channel
    from crimelens.feeds import BatchSummary

__all__ = ["FeedAlerts", "TerminalChannel", "channel_label", "check_alert_options"]


def channel_label(name: str) -> str:
    """A channel's name in words: ``the terminal``, the JSON-lines file's path, ``the webhook <url>``."""
    if name == "stdout":
        return "the terminal"
    if name.startswith("jsonl:"):
        return name.removeprefix("jsonl:")
    if name.startswith("webhook:"):
        return "the webhook " + name.removeprefix("webhook:")
    return name


@dataclass
class TerminalChannel:
    """Alerts on the terminal, one ``ALERT …`` line each (stdout; stderr when stdout carries ``--json``).

    Its name is ``stdout`` whichever stream it prints on: an alert shown once is not shown again by a later
    poll or a later run of ``crimelens watch``.
    """

    console: Console
    name: str = "stdout"

    def send(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            self.console.print(f"[bold red]ALERT[/bold red] {escape(str(r['message']))}", highlight=False,
                               soft_wrap=True)  # fmt: skip


def check_alert_options(method: str, unit: str | None, fdr: float | None, budget: float | None) -> str:
    """Validate the alert options of ``watch`` before any record is fetched; return the detector to run.

    Parameters
    ----------
    method
        ``auto`` (the pooled expectation: a feed holds incidents) or a detector of
        :data:`crimelens.alerts.detectors.METHODS`.
    unit
        ``week`` or ``month`` (None: week).
    fdr, budget
        False-alarm control, as :func:`crimelens.alerts.run.find_alerts` (at most one of them).

    Returns
    -------
    str
        The detector's name.
    """
    from crimelens.alerts.control import check_budget, check_fdr
    from crimelens.alerts.detectors import METHODS, P_VALUE_METHODS

    chosen = "pooled" if method == "auto" else method
    if chosen not in METHODS:
        raise ConfigError(f"--alert-method: expected auto or one of {', '.join(METHODS)}; got {method!r}")
    if unit not in (None, "week", "month"):
        raise ConfigError(f"--alert-period: a feed's incidents are counted by week or month; got {unit!r}")
    if fdr is not None and budget is not None:
        raise ConfigError(f"--fdr and --budget: expected one of them, got both ({fdr} and {budget})")
    if fdr is not None:
        check_fdr(fdr)
        if chosen not in P_VALUE_METHODS:
            raise ConfigError(
                f"--fdr: method {chosen} gives a score, not a p-value; expected --budget with it "
                f"(or a p-value method: {', '.join(P_VALUE_METHODS)})"
            )
    if budget is not None:
        check_budget(budget)
    return chosen


@dataclass
class FeedAlerts:
    """A batch hook for :func:`crimelens.feeds.watch`: alerts after each committed batch that changed the data.

    It runs after a batch that added, updated or removed records, and after the last page of a poll (which also
    retries deliveries that failed before); a page of unchanged records changes no count and is skipped.

    Parameters
    ----------
    method, unit, fdr, budget
        As :func:`crimelens.alerts.run_after_batch`.
    lookback
        Whole periods examined each time, the latest last.
    channels
        Where alerts go (:mod:`crimelens.alerts.notify`, or :class:`TerminalChannel`).
    say
        Shows a notice (one line) to the analyst.

    Attributes
    ----------
    runs
        Alert runs made.
    new
        Every alert first stored during this watch, as JSON-ready records with their one-line ``message``.
    failed
        Per channel, the last delivery error (alerts not sent are tried again on the next poll).
    """

    method: str = "pooled"
    unit: str | None = None
    lookback: int = 2
    fdr: float | None = None
    budget: float | None = None
    channels: Sequence[Channel] = ()
    say: Callable[[str], None] = print
    runs: int = 0
    new: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    control: str = ""
    _paused: dict[str, int] = field(default_factory=dict)
    _said: set[str] = field(default_factory=set)

    @staticmethod
    def due(batch: BatchSummary) -> bool:
        """Whether ``batch`` calls for an alert run: it changed the data, or it ends a poll."""
        return bool(batch.new or batch.updated or batch.deleted or batch.last)

    def __call__(self, con: duckdb.DuckDBPyConnection, source: str, batch: BatchSummary) -> None:
        import duckdb

        from crimelens.alerts import run_after_batch
        from crimelens.alerts.notify import alert_records

        if not self.due(batch):
            return
        channels = [c for c in self.channels if self._paused.get(c.name) != batch.poll]
        try:
            result, report = run_after_batch(con, source, method=self.method, unit=self.unit, lookback=self.lookback,
                                             fdr=self.fdr, budget=self.budget, channels=channels)  # fmt: skip
        except duckdb.InterruptException:
            raise KeyboardInterrupt from None  # Ctrl-C while an alert query ran: the watch stops as it would
        except CrimeLensError as exc:  # e.g. too little data yet: said once, ingest goes on
            self._say_once(f"Alerts could not run: {exc}. Ingest goes on.")
            return
        self.runs += 1
        self.control = result.notes[0] if result.notes else ""
        fresh = set(result.new_alerts)
        if fresh:
            table = result.table.loc[result.table["alert_key"].isin(fresh)]
            self.new.extend(alert_records(table))
        for name, why in report.failed.items():
            self._paused[name] = batch.poll
            self.failed[name] = why
            self.say(f"Alerts not sent to {channel_label(name)}: {why}. Ingest goes on; they are tried again on the "
                     "next poll.")  # fmt: skip
        for name in report.sent:
            if report.sent[name] and name in self.failed:
                del self.failed[name]

    def _say_once(self, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            self.say(text)

    def summary(self) -> dict[str, Any]:
        """What the alerts did during the watch, for ``--json``."""
        return {
            "method": self.method,
            "unit": self.unit or "week",
            "lookback": self.lookback,
            "fdr": self.fdr,
            "budget": self.budget,
            "control": self.control,
            "channels": [c.name for c in self.channels],
            "runs": self.runs,
            "new": [dict(r) for r in self.new],
            "failed": dict(self.failed),
        }
