"""Every ``--json`` command prints one envelope holding every field of its result and every column its terminal
table shows; ``--csv`` prints the same table; errors under ``--json`` are JSON on stderr with the usual exit codes."""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.alerts.run import AlertsResult
from crimelens.analysis.incidents.hotspots import GiStarResult, PersistentCellsResult
from crimelens.analysis.incidents.knox import KnoxResult
from crimelens.analysis.incidents.ranking import AreaRankResult
from crimelens.analysis.incidents.spatial import ConcentrationResult, KdeResult
from crimelens.analysis.incidents.summaries import IncidentCounts, Timing
from crimelens.analysis.jurisdictions.comparison import JurisdictionComparison
from crimelens.analysis.jurisdictions.hotspots import Hotspots
from crimelens.analysis.jurisdictions.ranking import Concentration, Profile, Ranking
from crimelens.analysis.jurisdictions.statistics import OffenceTotals, Rates
from crimelens.analysis.jurisdictions.trends import LongRunTrends, TurningPoints, YearOverYear
from crimelens.analysis.result import Result
from crimelens.cli import app
from crimelens.insights import Findings
from crimelens.models.classify import ClassifyResult
from crimelens.models.hotspots import ForecastEvaluation, HotspotPrediction

pytestmark = [pytest.mark.filterwarnings(r"ignore:fetch_arrow_table\(\) is deprecated:DeprecationWarning")]

runner = CliRunner()
ENVELOPE = {"command", "title", "params", "rows", "notes", "warnings"}

JURISDICTION_COMMANDS: list[tuple[list[str], type[Result]]] = [
    (["stats", "--year", "2015"], OffenceTotals),
    (["rates", "--year", "2015"], Rates),
    (["rank", "--year", "2015"], Ranking),
    (["profile", "Chicago"], Profile),
    (["concentration", "--year", "2015"], Concentration),
    (["compare", "Chicago", "Houston"], JurisdictionComparison),
    (["trends"], LongRunTrends),
    (["yoy"], YearOverYear),
    (["turning-points", "--jurisdiction", "New York City"], TurningPoints),
    (["hotspots", "--k", "5"], Hotspots),
    (["findings"], Findings),
    (["loads"], Result),
    (["issues"], Result),
    (["alerts", "--since", "2010"], AlertsResult),
]
INCIDENT_COMMANDS: list[tuple[list[str], type[Result]]] = [
    (["incidents", "counts", "--period", "month"], IncidentCounts),
    (["incidents", "when"], Timing),
    (["incidents", "areas"], AreaRankResult),
    (["incidents", "concentration"], ConcentrationResult),
    (["incidents", "density", "--cell", "400"], KdeResult),
    (["incidents", "hotspots", "--cell", "400", "--permutations", "99"], GiStarResult),
    (["incidents", "persistent", "--cell", "400"], PersistentCellsResult),
    (["incidents", "near-repeat", "--permutations", "99", "--max-points", "2000"], KnoxResult),
    (["findings", "--source", "simulated-city"], Findings),
    (
        ["forecast", "evaluate", "--train-days", "90", "--methods", "naive,sepp", "--cell-size", "400"],
        ForecastEvaluation,
    ),
    (["forecast", "predict", "--train-days", "90", "--cell-size", "400", "--method", "sepp"], HotspotPrediction),
]


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding a small SIMULATED city (3,000 incidents, one year) and its community areas."""
    folder = tmp_path_factory.mktemp("city")
    csv, areas, db = folder / "city.csv", folder / "areas.geojson", folder / "w.duckdb"
    made = runner.invoke(app, ["simulate", "--incidents", "3000", "--seed", "3", "--out", str(csv), "--areas-out",
                               str(areas)])  # fmt: skip
    assert made.exit_code == 0, made.output
    loaded = runner.invoke(app, ["ingest", str(csv), "--format", "chicago", "--source", "simulated-city",
                                 "--simulated", "--db", str(db)])  # fmt: skip
    assert loaded.exit_code == 0, loaded.output
    areas_loaded = runner.invoke(app, ["areas", str(areas), "--set", "sim-areas", "--kind", "community_area",
                                       "--id", "area_id", "--name", "name", "--population", "population",
                                       "--db", str(db)])  # fmt: skip
    assert areas_loaded.exit_code == 0, areas_loaded.output
    return db


@pytest.fixture
def marshall_db(_real_warehouses: dict[str, Path], tmp_path: Path) -> Path:
    db = tmp_path / "m.duckdb"
    shutil.copy(_real_warehouses["ucr-marshall"], db)
    return db


def _shown_columns(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the columns of every terminal table a command prints."""
    from crimelens.cli import render

    shown: list[list[str]] = []
    real = render.show_table

    def spy(frame: pd.DataFrame, title: str = "", limit: int | None = 25, console: Any = render.out,
            columns: Any = None, labels: Any = None) -> None:  # fmt: skip
        cols = [c for c in columns if c in frame.columns] if columns is not None else list(frame.columns)
        shown.append([str(c) for c in cols])
        real(frame, title, limit, console, columns, labels)

    for name in ("render", "jurisdictions", "incidents", "data", "jobs", "models", "forecast"):
        module = importlib.import_module(f"crimelens.cli.{name}")
        if hasattr(module, "show_table"):
            monkeypatch.setattr(module, "show_table", spy)
    return shown


def _row_keys_and_values(data: Any) -> tuple[set[str], set[str]]:
    """Every key anywhere in the JSON, and every value of every record list."""
    keys: set[str] = set()
    values: set[str] = set()
    if isinstance(data, dict):
        keys |= set(data)
        for v in data.values():
            k2, v2 = _row_keys_and_values(v)
            keys |= k2
            values |= v2
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                keys |= set(item)
                values |= {str(v) for v in item.values()}
            k2, v2 = _row_keys_and_values(item)
            keys |= k2
            values |= v2
    return keys, values


def _check(args: list[str], cls: type[Result], db: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    shown = _shown_columns(monkeypatch)
    table = runner.invoke(app, [*args, "--db", str(db)])
    assert table.exit_code == 0, table.output
    result = runner.invoke(app, [*args, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert set(data) >= ENVELOPE, sorted(data)
    assert data["command"] == (" ".join(args[:2]) if args[0] in ("incidents", "model", "forecast") else args[0])
    for f in dataclasses.fields(cls):
        assert (f.name if f.name != "table" else "rows") in data, f"{args}: field {f.name} missing from --json"
    keys, values = _row_keys_and_values(data)
    if cls is Findings:  # its own table: "#" (rank), "Finding" (headline and detail), "Evidence"
        shown.append(["rank", "headline", "detail", "evidence"])
    if cls is ConcentrationResult:  # a sentence of the summary figures, no table
        shown.append(["units_total", "incidents_total", "top_1pct", "top_5pct", "top_10pct", "units_for_half", "gini"])
    assert shown, f"{args}: printed no table"
    for columns in shown:
        for col in columns:
            # a column is a field of the records, or (pivoted tables) one of their values, e.g. a weekday
            assert col in keys or any(v.startswith(col) for v in values), f"{args}: column {col!r} not in --json"
    return data


@pytest.mark.parametrize("args,cls", JURISDICTION_COMMANDS, ids=[" ".join(a[0][:1]) for a in JURISDICTION_COMMANDS])
def test_jurisdiction_json_holds_every_field_and_shown_column(
    args: list[str], cls: type[Result], marshall_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _check(args, cls, marshall_db, monkeypatch)


@pytest.mark.slow
def test_model_json_holds_every_field_and_shown_column(marshall_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["model", "classify", "--target", "rise", "--start", "2010", "--predict"]
    data = _check(args, ClassifyResult, marshall_db, monkeypatch)
    assert {"persistence_rank", "historical_mean", "logistic", "lightgbm"} <= set(data["methods"])


@pytest.mark.parametrize("args,cls", INCIDENT_COMMANDS, ids=[" ".join(a[0][:2]) for a in INCIDENT_COMMANDS])
def test_incident_json_holds_every_field_and_shown_column(
    args: list[str], cls: type[Result], city_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _check(args, cls, city_db, monkeypatch)
    if args[0] == "incidents":
        assert data["scope"]["source"] == "simulated-city"


def test_formerly_dropped_fields(marshall_db: Path, city_db: Path) -> None:
    turning = json.loads(
        runner.invoke(app, ["turning-points", "--jurisdiction", "New York City", "--json", "--db", str(marshall_db)])
        .stdout
    )  # fmt: skip
    assert turning["series"] and {"year", "rate_per_100k", "turning_point"} <= set(turning["series"][0])
    knox = json.loads(
        runner.invoke(app, ["incidents", "near-repeat", "--permutations", "99", "--json", "--db", str(city_db)]).stdout
    )
    # n_pairs: the pairs within the widest distance band, of the n(n - 1) / 2 pairs; the table counts those of
    # them that are also within the widest time band
    n = knox["params"]["points"]
    assert sum(r["observed"] for r in knox["rows"]) <= knox["n_pairs"] <= n * (n - 1) // 2
    assert knox["n_pairs"] > 0 and f"{knox['n_pairs']:,} close pairs" in knox["title"]
    profile = json.loads(runner.invoke(app, ["profile", "Chicago", "--json", "--db", str(marshall_db)]).stdout)
    assert {"offence", "share", "peer_median_share"} <= set(profile["mix"][0])
    gi = json.loads(
        runner.invoke(app, ["incidents", "hotspots", "--permutations", "0", "--json", "--db", str(city_db)]).stdout
    )
    hot = sum(r["hotspot"] == "hot" for r in gi["rows"])
    assert gi["n_hot"] == hot and gi["n_cold"] == sum(r["hotspot"] == "cold" for r in gi["rows"])


def test_findings_evidence_is_structured(marshall_db: Path) -> None:
    data = json.loads(runner.invoke(app, ["findings", "--json", "--db", str(marshall_db)]).stdout)
    assert data["findings"] and all(isinstance(f["evidence"], dict) for f in data["findings"])
    assert all(isinstance(r["evidence"], dict) for r in data["rows"])
    assert all(0 <= f["score"] <= 1 for f in data["findings"])


def test_statistical_warnings_reach_json(city_db: Path) -> None:
    # three months of a small city: about 750 incidents over 168 weekday-hours (< 5 each) is sparse
    result = runner.invoke(
        app, ["incidents", "when", "--since", "2019-01-01", "--until", "2019-03-31", "--json", "--db", str(city_db)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "Caveat:" in result.stderr
    assert data["warnings"] and all(w["category"] == "SparseDataWarning" for w in data["warnings"])
    assert any(w["message"] in result.stderr for w in data["warnings"])


def test_csv_is_the_json_table(marshall_db: Path) -> None:
    args = ["rank", "--year", "2015", "--db", str(marshall_db)]
    csv = runner.invoke(app, [*args, "--csv"])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout))
    rows = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["rows"]
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows) > 60
    assert frame["name"].tolist() == [r["name"] for r in rows]


def test_errors_under_json_are_json_with_the_same_exit_codes(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["rank", "--json", "--db", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and missing.stdout == ""
    error = json.loads(missing.stderr)
    assert error["command"] == "rank" and error["exit_code"] == 1
    assert error["error"]["type"] == "SourceError" and "not found" in error["error"]["message"]
    usage = runner.invoke(app, ["rank", "--top", "many", "--json"])
    assert usage.exit_code == 2
    error = json.loads(usage.stderr)
    assert error["exit_code"] == 2 and error["error"]["type"] == "UsageError" and "--top" in error["error"]["message"]
    plain = runner.invoke(app, ["rank", "--db", str(tmp_path / "none.duckdb")])
    assert plain.exit_code == 1 and plain.stderr.startswith("Error:") and plain.stderr[-1] == "\n"


def test_findings_on_a_warehouse_holding_only_incidents(city_db: Path) -> None:
    # before: "the warehouse holds no crime data yet"
    table = runner.invoke(app, ["findings", "--db", str(city_db)])
    assert table.exit_code == 0, table.output
    assert "simulated-city (simulated): half of all located incidents fall in" in " ".join(table.stdout.split())
    data = json.loads(runner.invoke(app, ["findings", "--json", "--db", str(city_db)]).stdout)
    kinds = {f["kind"] for f in data["findings"]}
    assert {"incident_concentration", "incident_peak_time"} <= kinds
    assert all(f["source"] == "simulated-city" and 0 <= f["score"] <= 1 for f in data["findings"])
    assert data["params"]["cell_m"] == 150.0 and data["params"]["permutations"] == 999
