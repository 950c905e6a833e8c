"""The synthetic city (crimelens.simulate) and `crimelens simulate`."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens import simulate as synthetic
from crimelens.cli import app
from crimelens.errors import ConfigError, SourceError
from crimelens.geo import forward
from crimelens.simulate import (
    BOX,
    CHICAGO_HEADER,
    FAMILIES,
    IUCR_TABLE,
    SimulationSummary,
    simulate,
    simulated_areas,
)

CHICAGO_DATE = "%m/%d/%Y %I:%M:%S %p"
N = 40_000


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationSummary, pd.DataFrame]:
    out = tmp_path_factory.mktemp("sim") / "clustered.csv"
    summary = simulate(N, 2, 7, out, start_year=2020)
    return summary, _read(out)


@pytest.fixture(scope="module")
def unclustered(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationSummary, pd.DataFrame]:
    out = tmp_path_factory.mktemp("sim") / "unclustered.csv"
    summary = simulate(N, 2, 7, out, start_year=2020, branching_ratio=0.0)
    return summary, _read(out)


def _times(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["Date"], format=CHICAGO_DATE)


def _family(frame: pd.DataFrame) -> pd.Series:
    return frame["IUCR"].map({row[0]: row[5] for row in IUCR_TABLE})


# -- format ------------------------------------------------------------------------------------------------
def test_header_is_the_chicago_export_plus_the_simulated_marker(tmp_path: Path) -> None:
    out = tmp_path / "s.csv.gz"
    simulate(50, 1, 1, out)
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n")
        rows = [line.rstrip("\n") for line in fh]
    assert header == (
        "ID,Case Number,Date,Block,IUCR,Primary Type,Description,Location Description,Arrest,Domestic,Beat,"
        "District,Ward,Community Area,FBI Code,X Coordinate,Y Coordinate,Year,Updated On,Latitude,Longitude,Location,"
        "crimelens_simulated"
    )
    assert tuple(header.split(",")) == (*CHICAGO_HEADER, "crimelens_simulated")
    assert len(rows) == 50 and all(r.endswith(",SIMULATED") for r in rows)


def test_row_format_matches_the_chicago_export(clustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    _, frame = clustered
    assert frame["ID"].str.fullmatch(r"\d+").all() and frame["ID"].is_unique
    assert frame["Case Number"].str.fullmatch(r"[A-Z]{2}\d{6,7}").all() and frame["Case Number"].is_unique
    assert set(frame["Arrest"]) == {"true", "false"} and set(frame["Domestic"]) == {"true", "false"}
    assert frame["Beat"].str.fullmatch(r"\d{4}").all() and frame["District"].str.fullmatch(r"\d{3}").all()
    assert frame["Block"].str.fullmatch(r"\d{3}XX [NSEW] [0-9A-Z ]+").all()
    assert (frame["X Coordinate"] == "").all() and (frame["Y Coordinate"] == "").all()
    location = "(" + frame["Latitude"] + ", " + frame["Longitude"] + ")"
    assert (frame["Location"] == location).all()
    # Beat = district (2 digits) + sector + beat, as in Chicago's beat numbers
    assert (frame["Beat"].str[:2].astype(int) == frame["District"].astype(int)).all()


def test_dates_parse_with_the_chicago_format_and_stay_in_the_years(
    clustered: tuple[SimulationSummary, pd.DataFrame],
) -> None:
    _, frame = clustered
    when = _times(frame)  # raises on any date not in MM/DD/YYYY hh:mm:ss AM/PM
    assert when.min() >= pd.Timestamp("2020-01-01") and when.max() < pd.Timestamp("2022-01-01")
    assert (when.dt.year.astype(str) == frame["Year"]).all()
    assert when.is_monotonic_increasing
    updated = pd.to_datetime(frame["Updated On"], format=CHICAGO_DATE)
    assert (updated > when).all()
    # no local time in the spring-forward gap (02:00–02:59 on 8 Mar 2020 and 14 Mar 2021)
    gap_days = when.dt.date.isin([dt.date(2020, 3, 8), dt.date(2021, 3, 14)])
    assert not (gap_days & (when.dt.hour == 2)).any()
    # case numbers: year prefix (2020 → JD, 2021 → JE)
    assert set(frame["Case Number"].str[:2]) == {"JD", "JE"}


def test_coordinates_and_area_ids_agree(clustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    _, frame = clustered
    lat, lon = frame["Latitude"].astype(float), frame["Longitude"].astype(float)
    south, north, west, east = BOX
    assert lat.between(south, north).all() and lon.between(west, east).all()
    areas = {f["properties"]["area_id"]: f["geometry"]["coordinates"][0] for f in simulated_areas(7)["features"]}
    sample = frame.sample(2000, random_state=0)
    for area, la, lo in zip(sample["Community Area"], sample["Latitude"], sample["Longitude"], strict=True):
        ring = np.asarray(areas[area])
        assert ring[:, 0].min() - 1e-6 <= float(lo) <= ring[:, 0].max() + 1e-6
        assert ring[:, 1].min() - 1e-6 <= float(la) <= ring[:, 1].max() + 1e-6
    assert frame["Community Area"].astype(int).between(1, 77).all()
    assert frame["Ward"].astype(int).between(1, 50).all()


def test_offence_codes_are_consistent(clustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    _, frame = clustered
    combos = {tuple(row[:4]) for row in IUCR_TABLE}
    seen = set(frame[["IUCR", "Primary Type", "Description", "FBI Code"]].itertuples(index=False, name=None))
    assert seen <= combos and len(seen) >= 25
    # the table itself follows the FBI's summary codes (hand-checked against Chicago's IUCR list)
    expected_fbi = {"HOMICIDE": "01A", "CRIMINAL SEXUAL ASSAULT": "02", "ROBBERY": "03", "BURGLARY": "05",
                    "THEFT": "06", "MOTOR VEHICLE THEFT": "07", "ARSON": "09", "DECEPTIVE PRACTICE": "11",
                    "CRIMINAL DAMAGE": "14", "WEAPONS VIOLATION": "15", "NARCOTICS": "18"}  # fmt: skip
    for code, primary, description, fbi, *_ in IUCR_TABLE:
        if primary in expected_fbi:
            assert fbi == expected_fbi[primary], code
        elif primary in ("ASSAULT", "BATTERY"):
            aggravated = description.startswith("AGGRAVATED")
            assert fbi == {("ASSAULT", True): "04A", ("BATTERY", True): "04B", ("ASSAULT", False): "08A",
                           ("BATTERY", False): "08B"}[primary, aggravated], code  # fmt: skip
        else:
            assert fbi == "26", code
    # domestic battery is always domestic
    assert (frame.loc[frame["IUCR"] == "0486", "Domestic"] == "true").all()


def test_offence_shares_are_realistic(clustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    _, frame = clustered
    shares = frame["Primary Type"].value_counts(normalize=True)
    assert list(shares.index[:2]) == ["THEFT", "BATTERY"]
    # homicide: 0.0010 of raw shares summing to 0.8272 → 0.121 %; 40,000 × 0.00121 ≈ 48 ± 3·√48·1.2
    assert 0.0006 < shares["HOMICIDE"] < 0.0019


# -- reproducibility and size ---------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    simulate(20_000, 1, 11, a, areas_out=tmp_path / "a.geojson")
    simulate(20_000, 1, 11, b, areas_out=tmp_path / "b.geojson")
    simulate(20_000, 1, 12, c, areas_out=tmp_path / "c.geojson")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert (tmp_path / "a.geojson").read_bytes() == (tmp_path / "b.geojson").read_bytes()
    assert (tmp_path / "a.geojson").read_bytes() != (tmp_path / "c.geojson").read_bytes()


def test_many_batches_are_reproducible_and_continuous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "_CHUNK", 1_000)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    simulate(4_500, 2, 5, a)
    simulate(4_500, 2, 5, b)
    assert a.read_bytes() == b.read_bytes()
    frame = _read(a)
    ids = frame["ID"].astype(int)
    assert (ids.diff().iloc[1:] == 1).all()
    assert _times(frame).is_monotonic_increasing
    # case numbers restart at 100000 each year and count up without gaps
    for _, group in frame.groupby("Year"):
        numbers = group["Case Number"].str[2:].astype(int)
        assert numbers.iloc[0] == 100_000 and (numbers.diff().iloc[1:] == 1).all()


def test_case_numbers_stay_unique_past_six_digits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "_CASE_BASE", 999_000)  # as if 899,000 cases had already been numbered
    simulate(3_000, 1, 5, tmp_path / "a.csv")
    numbers = _read(tmp_path / "a.csv")["Case Number"]
    assert numbers.is_unique
    # 999,000 + 0 … 2,999: the first 1,000 keep six digits, the other 2,000 have seven
    assert numbers.iloc[0] == "JC999000" and numbers.iloc[-1] == "JC1001999"
    assert (numbers.str.len() == 9).sum() == 2_000


@pytest.mark.parametrize(("n", "eta"), [(1, 0.25), (7, 0.0), (3_001, 0.25), (5_000, 0.9), (5_000, 0.6)])
def test_row_count_is_exact(tmp_path: Path, n: int, eta: float) -> None:
    out = tmp_path / "n.csv"
    summary = simulate(n, 1, 3, out, branching_ratio=eta)
    assert summary.rows == n
    with out.open() as fh:
        assert sum(1 for _ in fh) == n + 1
    p = summary.params
    assert p["generated_events"] - p["trimmed"] + p["topped_up"] == n
    assert p["background_events"] == max(1, round(n * (1 - eta)))


def test_invalid_arguments_name_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--incidents: expected a whole number from 1 to 200,000,000, got 0"):
        simulate(0, 1, 1, tmp_path / "x.csv")
    with pytest.raises(ConfigError, match=r"--branching-ratio: expected a number from 0 to 0.9 .*got 1.0"):
        simulate(10, 1, 1, tmp_path / "x.csv", branching_ratio=1.0)
    with pytest.raises(ConfigError, match=r"--years: expected .* 1 to 50, got 0"):
        simulate(10, 0, 1, tmp_path / "x.csv")
    with pytest.raises(ConfigError, match=r"seed: expected a non-negative integer, got -1"):
        simulated_areas(-1)
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(SourceError, match=r"cannot write the simulated file: expected a writable file path"):
        simulate(10, 1, 1, tmp_path)  # a directory


# -- the model -------------------------------------------------------------------------------------------------
def _expected_ratio(
    params: dict[str, Any], family_weights: dict[str, float], days_a: pd.DatetimeIndex, days_b: pd.DatetimeIndex
) -> float:
    """Expected count ratio of two sets of days from the model: Σ_f π_f Σ_d season_f(d)·week_f(d)."""

    def mass(days: pd.DatetimeIndex) -> float:
        epoch_day = (days - pd.Timestamp("1970-01-01")).days.to_numpy() + 0.5
        total = 0.0
        for f, weight in family_weights.items():
            amp, peak = params["season"][f]
            week = np.asarray(params["week"][f]) / np.mean(params["week"][f])
            season = 1 + amp * np.cos(2 * np.pi * (np.mod(epoch_day, 365.2425) - peak) / 365.2425)
            total += weight * float((season * week[days.day_of_week.to_numpy()]).sum())
        return total

    return mass(days_a) / mass(days_b)


def test_summer_peak_matches_the_seasonal_parameters(unclustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    summary, frame = unclustered
    month = _times(frame).dt.month
    observed = (month == 7).sum() / (month == 1).sum()
    days = pd.date_range("2020-01-01", "2021-12-31", freq="D")
    expected = _expected_ratio(
        summary.params, summary.params["family_shares"], days[days.month == 7], days[days.month == 1]
    )
    # amplitudes 0.12–0.22 → July/January ≈ (1 + ~0.17)/(1 − ~0.17) ≈ 1.4; ~3,000 January events: SE ≈ 0.035
    assert 1.3 < expected < 1.55
    assert observed == pytest.approx(expected, abs=0.12)
    assert observed > 1.25


def test_weekly_and_daily_cycles(unclustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    summary, frame = unclustered
    when, family = _times(frame), _family(frame)
    violent = when[family == "violence"]
    observed = (violent.dt.day_of_week == 5).sum() / (violent.dt.day_of_week == 1).sum()
    days = pd.date_range("2020-01-01", "2021-12-31", freq="D")
    expected = _expected_ratio(
        summary.params, {"violence": 1.0}, days[days.day_of_week == 5], days[days.day_of_week == 1]
    )
    # Saturday 1.18 vs Tuesday 0.90 → ≈ 1.31; ~2,000 violent events per weekday: SE ≈ 0.04
    assert expected == pytest.approx(1.18 / 0.90, abs=0.03)
    assert observed == pytest.approx(expected, abs=0.13)
    # violence peaks at night, theft by day (hour 0 also holds the 2 % heaped at midnight)
    night = violent.dt.hour.isin([20, 21, 22, 23, 0, 1]).mean()
    thefts = when[family == "theft"]
    assert night > thefts.dt.hour.isin([20, 21, 22, 23, 0, 1]).mean() + 0.05
    assert 9 <= thefts.dt.hour.value_counts().idxmax() <= 18
    # heaping: 25 % on the hour, 2 % at midnight, the other 73 % uniform over 60 minutes:
    # 0.25 + 0.02 + 0.73/60 = 0.2822 on minute 0 (SE √(0.28·0.72/40,000) ≈ 0.002)
    assert (when.dt.minute == 0).mean() == pytest.approx(0.2822, abs=0.01)


def test_offence_mix_varies_by_place(unclustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    from scipy.stats import chi2_contingency

    _, frame = unclustered
    table = pd.crosstab(frame["Community Area"], _family(frame))
    assert chi2_contingency(table.to_numpy()).pvalue < 1e-12
    theft_share = table["theft"] / table.sum(axis=1)
    assert theft_share.max() - theft_share.min() > 0.15


def _knox_ratio(frame: pd.DataFrame, metres: float = 200.0, days: float = 7.0) -> float:
    """Close-in-space pairs also close in time, over the same with times permuted (Knox 1964 test)."""
    from scipy.spatial import cKDTree

    # distances in the plane the city is drawn in: crimelens.geo's equal-area projection centred on the box
    x, y = forward(frame["Longitude"].astype(float), frame["Latitude"].astype(float), (BOX[2] + BOX[3]) / 2,
                   (BOX[0] + BOX[1]) / 2)  # fmt: skip
    xy = np.column_stack([x, y])
    t = (_times(frame) - pd.Timestamp("2020-01-01")).dt.total_seconds().to_numpy() / 86_400
    pairs = cKDTree(xy).query_pairs(metres, output_type="ndarray")
    observed = (np.abs(t[pairs[:, 0]] - t[pairs[:, 1]]) <= days).sum()
    rng = np.random.default_rng(0)
    permuted = []
    for _ in range(5):
        tp = rng.permutation(t)
        permuted.append((np.abs(tp[pairs[:, 0]] - tp[pairs[:, 1]]) <= days).sum())
    return float(observed / np.mean(permuted))


def test_near_repeats_present_with_branching_and_absent_without(
    clustered: tuple[SimulationSummary, pd.DataFrame], unclustered: tuple[SimulationSummary, pd.DataFrame]
) -> None:
    # offspring: P(within 200 m) = 1 − exp(−200²/(2·120²)) ≈ 0.75, P(lag ≤ 7 d) = 1 − exp(−7/3) ≈ 0.90, so
    # each of the ~10,000 offspring adds ~0.68 close pairs (parent–child) over a permuted baseline that the
    # hotspots make large; seed 7 gives 1.60 with branching 0.25 and 0.99 without
    clustered_ratio = _knox_ratio(clustered[1])
    unclustered_ratio = _knox_ratio(unclustered[1])
    assert clustered_ratio > 1.4
    assert 0.85 < unclustered_ratio < 1.15
    assert clustered[0].params["branching_ratio"] == 0.25 and unclustered[0].params["generations"] == 0


# -- areas and CLI -------------------------------------------------------------------------------------------
def test_simulated_areas_geojson() -> None:
    areas = simulated_areas(7)
    assert areas["type"] == "FeatureCollection" and areas["simulated"] is True
    assert len(areas["features"]) == 77
    ids = [f["properties"]["area_id"] for f in areas["features"]]
    assert ids == [str(i) for i in range(1, 78)]
    assert all(f["properties"]["simulated"] is True for f in areas["features"])
    pops = [f["properties"]["population"] for f in areas["features"]]
    assert all(isinstance(p, int) and p > 0 for p in pops)
    # lognormal(log 35,000, 0.45): total ≈ 77 × 35,000 × e^(0.45²/2) ≈ 2.97 M (Chicago: 2.7 M)
    assert 2_000_000 < sum(pops) < 4_000_000
    # the 77 rectangles tile the box: areas sum to the box area in square degrees
    total = sum(
        (max(x for x, _ in f["geometry"]["coordinates"][0]) - min(x for x, _ in f["geometry"]["coordinates"][0]))
        * (max(y for _, y in f["geometry"]["coordinates"][0]) - min(y for _, y in f["geometry"]["coordinates"][0]))
        for f in areas["features"]
    )
    assert total == pytest.approx((BOX[1] - BOX[0]) * (BOX[3] - BOX[2]), rel=1e-4)


def test_cli_simulate_writes_and_labels_simulated_data(tmp_path: Path) -> None:
    runner = CliRunner()
    out, areas = tmp_path / "sim.csv.gz", tmp_path / "areas.geojson"
    args = ["simulate", "--incidents", "2000", "--years", "2", "--seed", "9", "--out", str(out)]
    result = runner.invoke(app, [*args, "--areas-out", str(areas)])
    assert result.exit_code == 0, result.output
    assert "SIMULATED" in result.stdout and "synthetic data, not real" in result.stdout
    frame = pd.read_csv(out, dtype=str)
    assert len(frame) == 2000 and set(frame["Year"]) == {"2019", "2020"}
    assert json.loads(areas.read_text())["simulated"] is True
    as_json = runner.invoke(app, [*args[:-1], str(tmp_path / "again.csv"), "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["simulated"] is True and data["rows"] == 2000 and data["params"]["seed"] == 9
    assert gzip.decompress(out.read_bytes()) == (tmp_path / "again.csv").read_bytes()
    bad = runner.invoke(app, ["simulate", "--incidents", "0", "--out", str(tmp_path / "bad.csv")])
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines() == [
        "Error: --incidents: expected a whole number from 1 to 200,000,000, got 0"
    ]


# -- against the real Chicago file --------------------------------------------------------------------------
def test_shape_resembles_real_chicago_2022(real_data: Path, clustered: tuple[SimulationSummary, pd.DataFrame]) -> None:
    path = real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"
    if not path.exists():
        pytest.skip(f"real data file {path} is absent")
    real = pd.read_csv(path, usecols=["Date", "Primary Type"])
    _, frame = clustered
    ours = frame["Primary Type"].value_counts(normalize=True)
    theirs = real["Primary Type"].value_counts(normalize=True)
    assert list(ours.index[:2]) == list(theirs.index[:2]) == ["THEFT", "BATTERY"]
    common = ours.index.intersection(theirs.index)
    assert len(common) == 15
    # the main types' shares within a factor 1.5 of the real file's, after rescaling to the types both have
    # (homicide is deliberately lower, ~0.1 %; the catch-all types have fewer descriptions here)
    main = ["THEFT", "BATTERY", "ASSAULT", "CRIMINAL DAMAGE", "MOTOR VEHICLE THEFT", "BURGLARY", "ROBBERY",
            "CRIMINAL SEXUAL ASSAULT", "ARSON"]  # fmt: skip
    ratio = ours[main] * theirs[common].sum() / theirs[main]
    assert ratio.between(1 / 1.5, 1.5).all(), ratio
    real_hours = pd.to_datetime(real["Date"]).dt.hour.value_counts(normalize=True).sort_index()
    our_hours = _times(frame).dt.hour.value_counts(normalize=True).sort_index()
    assert np.corrcoef(real_hours.to_numpy(), our_hours.to_numpy())[0, 1] > 0.8
    assert set(FAMILIES) == set(_family(frame))


def test_docs_examples_run_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import shlex

    doc = (Path(__file__).resolve().parents[1] / "docs" / "simulator.md").read_text(encoding="utf-8")
    command = re.search(r"```console\n(crimelens simulate .*)\n```", doc)
    snippet = re.search(r"```python\n(.*?)```", doc, re.S)
    header = re.search(r"```\n(ID,Case Number,.*)\n```", doc)
    assert command and snippet and header
    assert tuple(header.group(1).split(",")) == (*CHICAGO_HEADER, "crimelens_simulated")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, shlex.split(command.group(1))[1:])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "city.csv.gz", usecols=["ID"])) == 50_000
    first = (tmp_path / "city.csv.gz").read_bytes()
    namespace: dict[str, Any] = {}
    exec(snippet.group(1), namespace)
    assert namespace["summary"].rows == 50_000 and namespace["summary"].params["seed"] == 42
    assert (tmp_path / "city.csv.gz").read_bytes() == first
    assert json.loads((tmp_path / "city-areas.geojson").read_text())["simulated"] is True


# -- simulated files never mix with real data -----------------------------------------------------------------
def test_a_plain_ingest_of_a_simulated_file_loads_it_as_simulated(tmp_path: Path) -> None:
    # the README's example: simulate, then a plain `crimelens ingest city.csv` (no --format, --source or
    # --simulated): it must not become the real "chicago" dataset
    csv = tmp_path / "city.csv"
    db = str(tmp_path / "w.duckdb")
    made = CliRunner().invoke(app, ["simulate", "--incidents", "500", "--years", "1", "--seed", "7", "--out", str(csv)])
    assert made.exit_code == 0, made.output
    assert f"Load it with: crimelens ingest {csv}" in made.stdout
    loaded = CliRunner().invoke(app, ["ingest", str(csv), "--db", db])
    assert loaded.exit_code == 0, loaded.output
    assert "as dataset simulated-city" in loaded.stdout
    con = duckdb.connect(db, read_only=True)
    try:
        assert con.execute("SELECT source, simulated FROM incident_sources").fetchall() == [("simulated-city", True)]
        assert con.execute("SELECT count(*) FROM incidents WHERE source = 'chicago'").fetchall() == [(0,)]
    finally:
        con.close()


def test_a_simulated_file_is_refused_under_a_real_dataset_name(tmp_path: Path, real_data: Path) -> None:
    csv = tmp_path / "city.csv"
    simulate(300, 1, 3, csv)
    db = str(tmp_path / "w.duckdb")
    runner = CliRunner()
    # a format's own name, before any real data is loaded
    named = runner.invoke(app, ["ingest", str(csv), "--source", "chicago", "--db", db])
    assert named.exit_code == 1, named.output
    assert "city.csv was made by `crimelens simulate` (column crimelens_simulated): it loads only as a simulated" in (
        named.stderr
    )
    assert "'chicago' is the name of a real data format" in named.stderr and "Traceback" not in named.output
    # a dataset that holds real incidents
    real = real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"
    assert runner.invoke(app, ["ingest", str(real), "--source", "mycity", "--db", db]).exit_code == 0
    before = duckdb.connect(db, read_only=True)
    n = before.execute("SELECT count(*) FROM incidents").fetchall()
    before.close()
    mixed = runner.invoke(app, ["ingest", str(csv), "--source", "mycity", "--format", "chicago", "--db", db])
    assert mixed.exit_code == 1 and "'mycity' holds real incidents" in mixed.stderr
    # --simulated on an unmarked file may not join a real dataset either
    flagged = runner.invoke(app, ["ingest", str(real), "--source", "mycity", "--simulated", "--db", db])
    assert flagged.exit_code == 1 and "'mycity' holds real incidents" in flagged.stderr
    after = duckdb.connect(db, read_only=True)
    try:
        assert after.execute("SELECT count(*) FROM incidents").fetchall() == n  # nothing was written
        assert after.execute("SELECT bool_or(simulated) FROM incident_sources").fetchall() == [(False,)]
    finally:
        after.close()
