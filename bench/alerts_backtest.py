"""Backtest crimelens' spike detectors on real series with injected spikes; write the "## Alerts backtest" section.

``.venv/bin/python bench/alerts_backtest.py`` loads, with the real loaders, into a temporary warehouse: Chicago 2022
(community-area weeks), Toronto MCI 2014–19 (neighbourhood weeks) and the Marshall Project UCR file
(jurisdiction-years, violent crime), from ``$CRIMELENS_DATA`` (default ``../shared/data`` beside the repository).
On each it runs :func:`crimelens.alerts.backtest.run_backtest`: thresholds calibrated to 1 false alarm per 100
series-periods on earlier data, false alarms measured on the later test periods with nothing injected, spikes of
+25/50/100% for 1–4 periods injected there, next to an oracle Poisson test (docs/alerts.md).

The section "## Alerts backtest" of ``bench/RESULTS.md`` is replaced (appended when absent); the rest of the file
is kept. ``--quick`` (one replicate, +100% spikes of 1–2 periods, three methods) is the smoke-test form.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HEADING = "## Alerts backtest"
CHICAGO = "chicago_crimes_2022_slim/crimes-2022-slim.csv.gz"
TORONTO = "toronto_mci_2014_2019/toronto_mci_2014_2019.csv.gz"
MARSHALL = "marshall_ucr_crime_1975_2015/ucr_crime_1975_2015.csv"
SHOWN = ("+25%x2", "+50%x2", "+100%x1", "+100%x2", "+100%x4")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _pct(v: Any) -> str:
    return "—" if v is None or v != v else f"{100 * v:.0f}%"


def _datasets(data: Path, folder: Path) -> list[tuple[str, Any]]:
    """(label, panel) for the three real datasets, each loaded by the real loaders."""
    from crimelens import sources, warehouse
    from crimelens.alerts.series import incident_series, ucr_series

    con = warehouse.connect(folder / "bench.duckdb")
    try:
        warehouse.load_incidents(con, data / CHICAGO, "chicago", source="chicago")
        warehouse.load_incidents(con, data / TORONTO, "toronto-mci", source="toronto")
        warehouse.load_parsed(con, sources.read(data / MARSHALL, "ucr-marshall"))
        return [
            ("Chicago 2022, community-area weeks (all offences)",
             incident_series(con, "chicago", unit="week", area="community_area")),
            ("Toronto MCI 2014–19, neighbourhood weeks (all MCIs)",
             incident_series(con, "toronto", unit="week", area="neighbourhood")),
            ("Marshall Project UCR 1975–2015, jurisdiction-years (violent crime)",
             ucr_series(con, "ucr-marshall", "violent_crime")),
        ]  # fmt: skip
    finally:
        con.close()


def _section(results: list[tuple[str, Any, float]], command: str, started: dt.datetime, quick: bool) -> str:
    from crimelens.alerts.backtest import targets_text

    lines = [
        HEADING,
        "",
        f"Generated {started:%Y-%m-%d %H:%M} UTC by `{command}`{' (quick mode)' if quick else ''}. Protocol "
        "(docs/alerts.md): thresholds calibrated to **1 false alarm per 100 series-periods** on the calibration "
        "periods (clean data); false alarms then *measured* on the later test periods with nothing injected; one "
        "spike per series per replicate injected in the test periods (+x% adds Poisson(x·μ) counts per period, μ "
        "the oracle's expected count); a spike is detected when an alarm falls in one of its periods (so +100%x2 "
        "means found within 2 weeks). The oracle is an exact Poisson test against the series' own mean over ± 26 "
        "weeks (± 2 years) around the period, the period left out: future knowledge no real-time method has. "
        "Detection in % (95% Clopper–Pearson interval for +100%x2); delay in periods after onset (0 = first).",
        "",
    ]
    for label, res, seconds in results:
        lines += [f"### {label}", ""]
        lines.append(
            f"{res.series} series; calibration {res.calibration_periods[0]} to {res.calibration_periods[1]}, test "
            f"{res.test_periods[0]} to {res.test_periods[1]}; {res.replicates} replicate(s), seed {res.seed}; "
            f"{seconds:.0f} s."
        )
        lines.append("")
        head = ["method", *SHOWN, "+100%x2 at matched rate", "delay +100%x2", "false alarms / 100 (test)", "PPV"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        tab = res.table.set_index(["method", "scenario"])
        for name, m in [*res.methods.items(), ("oracle", res.oracle)]:
            cells = [f"**{name}**" if name == "oracle" else name]
            for sc in SHOWN:
                v = m["detection"].get(sc)
                if sc == "+100%x2" and (name, sc) in tab.index:
                    r = tab.loc[(name, sc)]
                    cells.append(f"{_pct(v)} ({_pct(r['detection_low'])}–{_pct(r['detection_high'])})")
                else:
                    cells.append(_pct(v))
            cells.append(_pct(m["detection_at_matched_rate"].get("+100%x2")))
            delay = m["median_delay"].get("+100%x2")
            cells.append("—" if delay is None else f"{delay:g}")
            cells.append(f"{m['false_alarms_per_100']:.2f}")
            cells.append("—" if m["ppv"] is None else f"{m['ppv']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        for m, why in res.skipped.items():
            lines.append("")
            lines.append(f"`{m}` not run: {why}.")
        if not res.bands.empty:
            piv = res.bands.pivot_table(index="band", columns="method", values="detection", aggfunc="first")
            n = res.bands.groupby("band")["spikes"].max()
            order = [b for b in ("0–1", "1–2", "2–5", "5–10", "10–20", "≥20") if b in piv.index]
            methods = [c for c in [*res.methods, "oracle"] if c in piv.columns]
            lines += ["", "+100%x2 detection by expected count per period (band of μ at onset):", ""]
            lines.append("| μ band | spikes | " + " | ".join(methods) + " |")
            lines.append("|" + "---|" * (len(methods) + 2))
            for b in order:
                lines.append(f"| {b} | {int(n[b])} | " + " | ".join(_pct(piv.loc[b, c]) for c in methods) + " |")
        lines.append("")
        lines += [f"- {x}" if i else x for i, x in enumerate(targets_text(res.targets))]
        lines.append("")
        lines += [f"- Check: {c}" for c in res.checks]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Backtest the spike detectors on real series with injected spikes.")
    parser.add_argument("--quick", action="store_true", help="smoke-test form: 1 replicate, +100%% x1–2, 3 methods")
    parser.add_argument("--replicates", type=int, default=3, help="draws of spike onsets per dataset (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the spike draws (default 0)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("CRIMELENS_DATA", REPO.parent / "shared" / "data")),
        help="folder of the shared real data (default: $CRIMELENS_DATA, else ../shared/data beside the repository)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="results file (bench/RESULTS.md)")
    args = parser.parse_args(argv)
    missing = [p for p in (CHICAGO, TORONTO, MARSHALL) if not (args.data / p).is_file()]
    if missing:
        parser.error(f"--data: expected the shared files under {args.data}, missing: {', '.join(missing)}")
    from crimelens.alerts.backtest import run_backtest
    from crimelens.alerts.detectors import METHODS

    started = dt.datetime.now(dt.UTC)
    kwargs: dict[str, Any] = {"replicates": 1 if args.quick else args.replicates, "seed": args.seed}
    if args.quick:
        kwargs.update(sizes=(1.0,), durations=(1, 2), methods=("compstat", "recent-z", "pooled"))
    else:
        kwargs.update(methods=METHODS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        panels = _datasets(args.data, Path(tmp))
        _log(f"loaded the three datasets in {time.perf_counter() - t0:.0f} s")
        for label, panel in panels:
            t1 = time.perf_counter()
            res = run_backtest(panel, **kwargs)
            results.append((label, res, time.perf_counter() - t1))
            _log(f"{label}: {time.perf_counter() - t1:.0f} s; targets {res.targets}")
    command = "python bench/alerts_backtest.py" + (" --quick" if args.quick else "")
    section = _section(results, command, started, args.quick)
    from everyday import replace_section  # bench/ is on the path when this file runs as a script

    existing = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    args.out.write_text(replace_section(existing, section, HEADING), encoding="utf-8")
    _log(f"wrote the {HEADING[3:]!r} section of {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
