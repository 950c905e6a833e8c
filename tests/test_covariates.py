"""Covariates: reading (sources/covariates.py), loading (warehouse/covariates.py), the negative-binomial regression
(models/covariates.py) and `crimelens covariates` through the real entry point."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app
from crimelens.errors import ConfigError, DataError, LoadRejected
from crimelens.models.covariates import covariate_regression, negative_binomial
from crimelens.sources.covariates import read_covariates
from crimelens.warehouse.covariates import covariate_values, load_covariates

runner = CliRunner()
HEADER = (
    "COMMUNITY_AREA_NUMBER,COMMUNITY_AREA_NAME,PERCENT_OF_HOUSING_CROWDED,PERCENT_HOUSEHOLDS_BELOW_POVERTY,"
    "PERCENT_AGED_16__UNEMPLOYED,PERCENT_AGED_25__WITHOUT_HIGH_SCHOOL_DIPLOMA,PERCENT_AGED_UNDER_18_OR_OVER_64,"
    "PER_CAPITA_INCOME,HARDSHIP_INDEX\n"
)


def _hardship(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


# -- reading ---------------------------------------------------------------------------------------------
def test_read_hardship_file_by_hand(tmp_path: Path) -> None:
    f = _hardship(
        tmp_path / "h.csv",
        ["1,Rogers Park,7.7,23.6,8.7,18.2,27.5,23939,39", "2,West Ridge,7.8,NA,8.8,20.8,38.5,23040,46"],
    )
    parsed = read_covariates(f, "chicago-hardship")
    # 2 rows × 7 covariates, one NA skipped → 13 values
    assert len(parsed.rows) == 13 and parsed.skipped_missing == 1 and parsed.rows_read == 2
    r = parsed.rows.set_index(["unit_id", "name"])["value"]
    assert r[("1", "hardship_index")] == 39 and r[("2", "per_capita_income")] == 23040
    assert ("2", "poverty_pct") not in r.index
    assert set(parsed.rows["year"]) == {2012} and set(parsed.rows["unit_kind"]) == {"community_area"}


def test_read_refuses_a_bad_value_naming_line_and_column(tmp_path: Path) -> None:
    f = _hardship(
        tmp_path / "h.csv",
        ["1,Rogers Park,7.7,23.6,8.7,18.2,27.5,23939,39", "2,West Ridge,7.8,17.2,8.8,20.8,38.5,23O40,46"],
    )
    with pytest.raises(LoadRejected, match=r"line 3, column PER_CAPITA_INCOME: expected a number, got '23O40'"):
        read_covariates(f, "chicago-hardship")
    with pytest.raises(ConfigError, match="covariate preset: expected one of"):
        read_covariates(f, "chicago")


def test_read_state_panel_maps_names_and_refuses_unknown_states(tmp_path: Path) -> None:
    head = (
        "Year,State,Labor force participation,Unemployment rate,Average household size,Poverty rate,"
        "Gini coefficient,Log of GDP per capita,Age\n"
    )
    f = tmp_path / "s.csv"
    f.write_text(head + "2005,Alabama,61.7,4.5,2.48,13.7,0.473,10.6,37.4\n2005,Illinois,66,5.7,2.6,12,0.47,10.9,36\n")
    parsed = read_covariates(f, "state-panel")
    assert set(parsed.rows["unit_id"]) == {"US-AL", "US-IL"} and len(parsed.rows) == 14
    f.write_text(head + "2005,Atlantis,61.7,4.5,2.48,13.7,0.473,10.6,37.4\n")
    with pytest.raises(LoadRejected, match="line 2, column State: expected a US state name or postal code"):
        read_covariates(f, "state-panel")


# -- loading ---------------------------------------------------------------------------------------------
def test_load_is_idempotent_replaces_and_keeps_provenance(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        f = _hardship(tmp_path / "h.csv", ["1,A,1,2,3,4,5,6,7", "2,B,1,2,3,4,5,6,8"])
        first = load_covariates(con, read_covariates(f, "chicago-hardship"))
        assert first.status == "loaded" and first.values_loaded == 14 and first.units == 2
        again = load_covariates(con, read_covariates(f, "chicago-hardship"))
        assert again.status == "unchanged" and again.load_id == first.load_id
        _hardship(f, ["1,A,1,2,3,4,5,6,9"])
        third = load_covariates(con, read_covariates(f, "chicago-hardship"))
        assert third.replaced_load_ids == (first.load_id,)
        values = covariate_values(con, ["chicago-hardship"])
        assert len(values) == 7 and set(values["unit_id"]) == {"1"}  # the whole dataset was replaced
        assert (con.execute("SELECT DISTINCT load_id FROM covariates").fetchall()) == [(third.load_id,)]
        status = dict(con.execute("SELECT load_id, status FROM loads").fetchall())
        assert status == {first.load_id: "replaced", third.load_id: "loaded"}
        with pytest.raises(DataError, match="not loaded"):
            covariate_values(con, ["nope"])
    finally:
        con.close()


def test_refused_file_leaves_the_warehouse_as_it_was(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        f = _hardship(tmp_path / "h.csv", ["1,A,1,2,3,4,5,6,7"])
        load_covariates(con, read_covariates(f, "chicago-hardship"))
        _hardship(f, ["1,A,1,2,3,4,5,6,7", "2,B,x,2,3,4,5,6,7"])
        with pytest.raises(LoadRejected):
            load_covariates(con, read_covariates(f, "chicago-hardship"))
        assert con.execute("SELECT count(*) FROM covariates").fetchone() == (7,)
        assert con.execute("SELECT count(*) FROM loads").fetchone() == (1,)
    finally:
        con.close()


# -- the regression --------------------------------------------------------------------------------------
def test_negative_binomial_recovers_known_rate_ratios() -> None:
    # simulated NB2 counts: rate per resident exp(-6 + 0.4 z1 - 0.2 z2), α = 0.3 (gamma-Poisson mixture)
    rng = np.random.default_rng(5)
    n = 3000
    X = pd.DataFrame({"z1": rng.normal(0, 1, n), "z2": rng.normal(0, 1, n)})
    pop = rng.uniform(5_000, 50_000, n)
    mu = pop * np.exp(-6 + 0.4 * X["z1"] - 0.2 * X["z2"])
    alpha = 0.3
    counts = rng.poisson(mu * rng.gamma(1 / alpha, alpha, n))
    fit = negative_binomial(counts.astype(float), X, pop)
    t = fit.table.set_index("covariate")
    # per SD of the sample (sd ≈ 1): IRR ≈ exp(0.4 · sd) and exp(-0.2 · sd)
    for name, beta in (("z1", 0.4), ("z2", -0.2)):
        truth = np.exp(beta * t.loc[name, "sd"])
        assert t.loc[name, "irr_low"] < truth < t.loc[name, "irr_high"], name
    assert fit.alpha_ci[0] < alpha < fit.alpha_ci[1]
    assert fit.converged and fit.expected.shape == (n,)


def test_regression_errors_without_covariates(tiny_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DataError, match="no covariates for 'tiny' are loaded"):
        covariate_regression(tiny_con)


@pytest.fixture(scope="module")
def chicago_db(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("cov") / "chicago.duckdb"
    areas = real_data / "chicago_community_areas"
    for args in (
        ["covariates", "load", str(areas / "ChicagoCensusData.csv"), "--preset", "chicago-hardship"],
        ["covariates", "load", str(areas / "chicago_community_areas_acs2014.csv"), "--preset", "chicago-acs"],
        ["ingest", str(real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz"), "--format", "chicago"],
    ):
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
    yield db


@pytest.mark.slow
def test_chicago_crime_and_hardship(chicago_db: Path, real_data: Path) -> None:
    con = warehouse.connect(chicago_db, read_only=True)
    try:
        r = covariate_regression(con, "chicago", covariates=["hardship_index"])
    finally:
        con.close()
    row = r.table.iloc[0]
    assert row["irr_low"] <= row["irr"] <= row["irr_high"]
    assert row["irr_low"] > 1  # more hardship, more recorded crime per resident: the well-known association
    assert r.n == 77 and r.alpha > 0 and r.alpha_ci[0] > 0  # crime counts are overdispersed
    # the residual table accounts for every incident with a community area 1–77, counted here from the raw file
    raw = pd.read_csv(real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz", usecols=["Community Area"])[
        "Community Area"
    ]
    assert r.residuals["observed"].sum() == int(raw.between(1, 77).sum())
    assert len(r.more_than_expected) == 5 and r.more_than_expected["ratio"].is_monotonic_decreasing
    assert any("Ecological fallacy" in n for n in r.notes) and any("not cause" in n for n in r.notes)


@pytest.mark.slow
def test_cli_covariates_on_chicago(chicago_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    shutil.copy(chicago_db, db)
    listing = runner.invoke(app, ["covariates", "list", "--json", "--db", str(db)])
    assert listing.exit_code == 0, listing.output
    assert {r["source"] for r in json.loads(listing.stdout)["rows"]} == {"chicago-acs", "chicago-hardship"}
    args = ["covariates", "regress", "--covariate", "poverty_pct", "--covariate", "unemployed_pct", "--db", str(db)]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "More recorded crime than the profile predicts" in table.stdout and "Loop" in table.stdout
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert data["command"] == "covariates regress"
    assert {"alpha", "alpha_ci", "residuals", "more_than_expected", "less_than_expected", "n"} <= set(data)
    assert [r["covariate"] for r in data["rows"]] == ["poverty_pct", "unemployed_pct"]
    bad = runner.invoke(app, [*args[:2], "--covariate", "income", "--db", str(db)])
    assert bad.exit_code == 1 and "covariate: expected names among" in bad.stderr


def test_state_panel_regression(fbi_con: duckdb.DuckDBPyConnection, real_data: Path) -> None:
    path = real_data / "fbi_estimated_crimes_1979_2019" / "us_state_income_inequality_2005_2015.csv"
    load_covariates(fbi_con, read_covariates(path, "state-panel"))
    r = covariate_regression(fbi_con, "fbi-estimates")
    assert r.n == 550 and r.clustered  # 50 states × 2005–2015, errors clustered by state
    assert (r.table["irr_low"] <= r.table["irr"]).all() and (r.table["irr"] <= r.table["irr_high"]).all()
    assert r.alpha > 0
    assert r.residuals["unit_id"].nunique() == 50 and r.residuals["unit_id"].str.match(r"^US-[A-Z]{2}$").all()


def test_cli_load_errors_are_one_line(tmp_path: Path) -> None:
    f = _hardship(tmp_path / "h.csv", ["1,A,1,2,3,4,5,6,x"])
    result = runner.invoke(
        app, ["covariates", "load", str(f), "--preset", "chicago-hardship", "--db", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 1 and "column HARDSHIP_INDEX: expected a number, got 'x'" in result.stderr
    result = runner.invoke(
        app, ["covariates", "load", str(f), "--preset", "nope", "--db", str(tmp_path / "w.duckdb"), "--json"]
    )
    assert result.exit_code == 1 and json.loads(result.stderr)["error"]["type"] == "ConfigError"


def test_any_covariate_csv_through_a_mapping_ncovr_counties(real_data: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "ncovr.toml"
    mapping.write_text(
        'source = "ncovr-1990"\nunit_kind = "county"\n[columns]\nunit_id = "FIPS"\nunit_name = "NAME"\n'
        '[constants]\nyear = 1990\n[covariates]\nresource_deprivation = "RD90"\nunemployment = "UE90"\n'
    )
    path = real_data / "ncovr_us_county_homicides_1960_1990" / "ncovr_nat.csv"
    raw = pd.read_csv(path, usecols=["FIPS", "RD90", "UE90"], dtype={"FIPS": str})  # an independent read
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["covariates", "load", str(path), "--mapping", str(mapping), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == "ncovr-1990" and report["unit_kind"] == "county" and report["years"] == [1990]
    assert report["units"] == raw["FIPS"].nunique() == 3085
    assert report["values_loaded"] == int(raw[["RD90", "UE90"]].notna().sum().sum())
    con = warehouse.connect(db, read_only=True)
    try:
        v = covariate_values(con, ["ncovr-1990"])
    finally:
        con.close()
    first = raw.iloc[0]
    got = v[(v["unit_id"] == str(first["FIPS"])) & (v["name"] == "resource_deprivation")]["value"].item()
    assert got == pytest.approx(first["RD90"])


def test_mapping_errors_are_one_line(tmp_path: Path) -> None:
    f = _hardship(tmp_path / "h.csv", ["1,A,1,2,3,4,5,6,7"])
    bad = tmp_path / "bad.toml"
    bad.write_text('unit_kind = "planet"\n[columns]\nunit_id = "COMMUNITY_AREA_NUMBER"\n')
    db = ["--db", str(tmp_path / "w.duckdb")]
    result = runner.invoke(app, ["covariates", "load", str(f), "--mapping", str(bad), *db])
    assert result.exit_code == 1 and "unit_kind: expected one of" in result.stderr and "'planet'" in result.stderr
    result = runner.invoke(app, ["covariates", "load", str(f), *db])
    assert result.exit_code == 1 and "expected either --preset NAME or --mapping FILE, got neither" in result.stderr


# -- UCI Communities and Crime ---------------------------------------------------------------------------------
UCI = "uci_communities_and_crime/CommViolPredUnnormalizedData.txt"


def test_uci_communities_preset_on_the_real_file(real_data: Path, tmp_path: Path) -> None:
    from crimelens.sources.covariates import PRESETS

    path = real_data / UCI
    columns = PRESETS["uci-communities"].columns
    # an independent read: pandas, '?' as missing (PROVENANCE.md), the same 16 columns
    raw = pd.read_csv(path, na_values="?", keep_default_na=False, usecols=["communityName", "state", *columns.values()])
    assert len(raw) == 2215  # PROVENANCE.md: 2,215 communities
    expected = raw.melt(id_vars=["communityName", "state"], var_name="column", value_name="value").dropna()
    db = tmp_path / "w.duckdb"
    result = runner.invoke(
        app, ["covariates", "load", str(path), "--preset", "uci-communities", "--db", str(db), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["unit_kind"] == "community" and report["years"] == [1990]
    assert report["units"] == 2215 and report["values_loaded"] == len(expected)
    con = warehouse.connect(db, read_only=True)
    try:
        got = covariate_values(con, ["uci-communities"])
    finally:
        con.close()
    # every value, compared with the independent read (ids are STATE:communityName)
    by_name = {v: k for k, v in columns.items()}
    want = expected.assign(
        unit_id=expected["state"] + ":" + expected["communityName"], name=expected["column"].map(by_name)
    ).set_index(["unit_id", "name"])["value"]
    have = got.set_index(["unit_id", "name"])["value"]
    assert set(have.index) == set(want.index)
    assert np.allclose(have.loc[want.index].to_numpy(), want.to_numpy())
    # the first line of the file, by hand: Berkeley Heights township, NJ, population 11,980, median household
    # income $75,122, 1.96 % under the poverty level
    first = have.loc["NJ:BerkeleyHeightstownship"]
    assert (first["population"], first["median_household_income"], first["poverty_pct"]) == (11980, 75122, 1.96)
    names = got.loc[got["unit_id"] == "NJ:BerkeleyHeightstownship", "unit_name"].unique().tolist()
    assert names == ["BerkeleyHeightstownship, NJ"]
    # race shares are not covariates here, nor the 1995 crime counts (outcomes)
    assert not {"racepctblack", "racePctWhite", "murders", "ViolentCrimesPerPop"} & set(columns.values())


def test_uci_communities_question_marks_are_missing_and_a_bad_state_is_refused(tmp_path: Path) -> None:
    from crimelens.sources.covariates import PRESETS

    columns = list(PRESETS["uci-communities"].columns.values())
    head = "communityName,state,countyCode," + ",".join(columns) + "\n"
    values = ["1000"] * len(columns)
    f = tmp_path / "uci.csv"
    f.write_text(
        head
        + "Springfieldcity,IL,?,"
        + ",".join(values)
        + "\n"
        + "Shelbyvillecity,IL,?,?,"
        + ",".join(values[1:])
        + "\n"
    )
    parsed = read_covariates(f, "uci-communities")
    # 2 rows × 16 covariates, one '?' skipped → 31 values
    assert (len(parsed.rows), parsed.skipped_missing) == (31, 1)
    assert set(parsed.rows["unit_id"]) == {"IL:Springfieldcity", "IL:Shelbyvillecity"}
    f.write_text(head + "Atlantiscity,ZZ,?," + ",".join(values) + "\n")
    with pytest.raises(LoadRejected, match="line 2, column state: expected a place name and a US state postal code"):
        read_covariates(f, "uci-communities")
