"""models/features.py, baselines.py and classify.py: features from earlier periods only, baselines, models, and
real-data evaluations (Marshall, FBI states, Chicago 2022 community-area weeks, Toronto neighbourhood-months)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crimelens import warehouse
from crimelens.errors import ConfigError, DataError, NotFittedError, SparseDataWarning
from crimelens.models.baselines import ScoreBaseline, historical_mean, last_change, past_share, percentile_rank
from crimelens.models.classify import (
    ClassifyResult,
    LightGBMClassifier,
    LogisticClassifier,
    classify,
    evaluate_design,
)
from crimelens.models.features import Panel, build_design, jurisdiction_panel, target_threshold

N_BOOT = 200  # enough for the properties checked here; the CLI uses 1000


def _panel(values: pd.DataFrame, kind: str = "year") -> Panel:
    return Panel(values=values, period_kind=kind, unit="jurisdiction", measure="rate", source="test")


# -- baselines and features by hand ---------------------------------------------------------------------
def test_baseline_transforms_by_hand() -> None:
    wide = pd.DataFrame({"a": [10.0, 20.0, np.nan], "b": [30.0, 10.0, 40.0]}, index=[2000, 2001, 2002])
    assert percentile_rank(wide).loc[2000].tolist() == [0.5, 1.0]  # two units: ranks 1, 2 of 2
    assert percentile_rank(wide).loc[2002, "b"] == 1.0 and np.isnan(percentile_rank(wide).loc[2002, "a"])
    assert historical_mean(wide)["a"].tolist() == [10.0, 15.0, 15.0]  # missing 2002 skipped
    assert historical_mean(wide)["b"].tolist() == pytest.approx([30.0, 20.0, 80 / 3])
    # 20/10 - 1 = 1.0; 10/30 - 1 = -2/3; 40/10 - 1 = 3
    assert last_change(wide).loc[2001].tolist() == pytest.approx([1.0, -2 / 3])
    assert last_change(wide).loc[2002, "b"] == pytest.approx(3.0)
    ind = pd.DataFrame({"a": [1.0, 0.0, 1.0]})
    assert past_share(ind)["a"].tolist() == pytest.approx([1.0, 0.5, 2 / 3])


def test_score_baseline_learns_the_sign_on_training_rows() -> None:
    x = pd.DataFrame({"s": np.linspace(0, 1, 40)})
    y = (x["s"] < 0.5).astype(int).to_numpy()  # a lower score means the event: the slope must come out negative
    base = ScoreBaseline("s").fit(x, y)
    assert base.coef_ < 0
    p = base.predict_proba(pd.DataFrame({"s": [0.0, 1.0, np.nan]}))[:, 1]
    assert p[0] > 0.9 and p[1] < 0.1 and 0 < p[2] < 1  # missing takes the training median
    with pytest.raises(NotFittedError):
        ScoreBaseline("s").predict_proba(x)


def test_score_baseline_equals_scikit_learn_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    s = rng.normal(3, 2, 300)
    y = (rng.random(300) < 1 / (1 + np.exp(-(s - 3)))).astype(int)
    mine = ScoreBaseline("s", penalty=0.01).fit(pd.DataFrame({"s": s}), y)
    z = ((s - s.mean()) / s.std()).reshape(-1, 1)
    ref = LogisticRegression(C=100.0, tol=1e-10, max_iter=10_000).fit(z, y)
    assert mine.coef_ == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert mine.intercept_ == pytest.approx(ref.intercept_[0], rel=1e-4, abs=1e-6)


def test_design_targets_and_features_by_hand() -> None:
    # 4 units, 3 years. 2001 values 10, 20, 30, 40 → top quartile (k = ceil(.25·4) = 1): unit d only
    v = pd.DataFrame(
        {"a": [10.0, 10.0, 12.0], "b": [20.0, 20.0, 21.0], "c": [30.0, 30.0, 30.0], "d": [40.0, 40.0, 20.0]},
        index=pd.Index([2000, 2001, 2002], name="period"),
    )
    d = build_design(_panel(v), "top-quartile").frame.set_index(["period", "unit"])
    # the row predicting 2002 uses 2001's values; its outcome is 2002's class: c (30) is top, d fell to 20
    assert d.loc[(2002, "c"), "y"] == 1 and d.loc[(2002, "d"), "y"] == 0
    assert d.loc[(2002, "d"), "b_persistence_class"] == 1  # d was top in 2001
    assert d.loc[(2002, "d"), "rank"] == 1.0 and d.loc[(2002, "a"), "rank"] == 0.25
    assert d.loc[(2002, "a"), "log_value"] == pytest.approx(np.log1p(10.0))
    assert d.loc[(2002, "a"), "log_change"] == pytest.approx(0.0)  # 10 → 10
    assert np.isnan(d.loc[(2001, "a"), "log_change"])  # no year before 2000
    # the period after the data: outcome unknown, predicted period 2003
    assert d.loc[(2003, "a"), "feature_period"] == 2002 and np.isnan(d.loc[(2003, "a"), "y"])
    rise = build_design(_panel(v), "rise", 0.1).frame.set_index(["period", "unit"])
    # a: 10 → 12 is +20 % ≥ 10 %; b: 20 → 21 is +5 %; d: 40 → 20 falls
    assert rise.loc[(2002, "a"), "y"] == 1 and rise.loc[(2002, "b"), "y"] == 0 and rise.loc[(2002, "d"), "y"] == 0
    assert {"b_last_change", "b_common_trend"} <= set(rise.columns)


def test_target_threshold_validation() -> None:
    assert target_threshold("top-quartile", None) == 0.25
    assert target_threshold("top-share", None) == 0.20
    assert target_threshold("rise", None) == 0.10
    with pytest.raises(ConfigError, match="target: expected one of top-quartile, top-share, rise, got 'top'"):
        target_threshold("top", None)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        target_threshold("top-share", 1.5)
    with pytest.raises(ConfigError, match="--target top-share"):
        target_threshold("top-quartile", 0.2)


def test_estimators_follow_the_contract() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    X.iloc[::7, 1] = np.nan
    y = (X["a"] + rng.normal(0, 0.5, 200) > 0).astype(int).to_numpy()
    for est in (LogisticClassifier(C=0.5, random_state=3), LightGBMClassifier(n_estimators=20, random_state=3)):
        params = dict(vars(est))
        assert not any(k.endswith("_") for k in params)  # __init__ stores parameters only
        with pytest.raises(NotFittedError):
            est.predict_proba(X)
        assert est.fit(X, y) is est
        p = est.predict_proba(X)
        assert p.shape == (200, 2) and np.allclose(p.sum(axis=1), 1)
        assert hasattr(est, "model_") and list(est.classes_) == [0, 1]
    again = LightGBMClassifier(n_estimators=20, random_state=3).fit(X, y).predict_proba(X)
    assert np.array_equal(again, LightGBMClassifier(n_estimators=20, random_state=3).fit(X, y).predict_proba(X))


# -- leakage ---------------------------------------------------------------------------------------------
def _synthetic_weeks(seed: int = 0, units: int = 20, weeks: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    level = rng.gamma(2.0, 10.0, units)
    index = pd.date_range("2021-01-04", periods=weeks, freq="W-MON", name="period")
    counts = rng.poisson(level[None, :] * (1 + 0.3 * np.sin(np.arange(weeks) / 6))[:, None])
    return pd.DataFrame(counts.astype(float), index=index, columns=[f"u{i:02d}" for i in range(units)])


def _scores_for(design: object, period: object) -> pd.DataFrame:
    run, _ = evaluate_design(design, start=period, end=period, min_train=8, n_boot=0)  # type: ignore[arg-type]
    preds = run.predictions.sort_values("unit", ignore_index=True)
    return preds.drop(columns=["y"])


def test_leakage_changing_the_predicted_period_leaves_its_predictions_unchanged(
    marshall_con: duckdb.DuckDBPyConnection,
) -> None:
    year = 2005
    for target in ("top-quartile", "rise"):
        before = _scores_for(build_design(jurisdiction_panel(marshall_con), target), year)
        marshall_con.execute(
            "UPDATE jurisdiction_year SET violent_crime = violent_crime * 3 + 7, robbery = robbery * 5, "
            "population = population // 2 WHERE year >= ? AND source = 'ucr-marshall'",
            [year],
        )
        after_design = build_design(jurisdiction_panel(marshall_con), target)
        after = _scores_for(after_design, year)
        pd.testing.assert_frame_equal(before, after)
        # the change did reach the data: the outcome of the predicted year is different
        frame = after_design.frame
        assert frame.loc[frame["period"] == year + 1, "log_value"].notna().all()
        marshall_con.execute(
            "UPDATE jurisdiction_year SET violent_crime = (violent_crime - 7) // 3, robbery = robbery // 5, "
            "population = population * 2 WHERE year >= ? AND source = 'ucr-marshall'",
            [year],
        )


def test_leakage_weeks_with_seasonal_features() -> None:
    v = _synthetic_weeks(weeks=70)
    panel = _panel(v, "week")
    design = build_design(panel, "top-share", 0.2)
    assert "log_value_season_ago" in design.features and "season_sin" in design.features
    test = v.index[30]
    before = _scores_for(design, test)
    changed = v.copy()
    changed.loc[test:] = changed.loc[test:].to_numpy()[::-1, ::-1] * 4  # scramble the predicted week and after
    after = _scores_for(build_design(dataclasses.replace(panel, values=changed), "top-share", 0.2), test)
    pd.testing.assert_frame_equal(before, after)


def test_the_leakage_check_catches_a_leaky_feature() -> None:
    # the same check, on a design given a feature that peeks at the predicted week, must see the change
    v = _synthetic_weeks()
    test = v.index[20]

    def leaky(values: pd.DataFrame) -> object:
        design = build_design(_panel(values, "week"), "top-share", 0.2)
        frame = design.frame.copy()
        nxt = np.log1p(values.shift(-1)).to_numpy()
        rows = {p: i for i, p in enumerate(values.index)}
        cols = {u: j for j, u in enumerate(values.columns)}
        frame["peek"] = [nxt[rows[p], cols[u]] for p, u in zip(frame["feature_period"], frame["unit"], strict=True)]
        return dataclasses.replace(design, frame=frame, features=(*design.features, "peek"))

    before = _scores_for(leaky(v), test)
    changed = v.copy()
    changed.loc[test:] = changed.loc[test:].to_numpy()[:, ::-1]
    after = _scores_for(leaky(changed), test)
    assert not before["lightgbm"].equals(after["lightgbm"])


# -- errors ----------------------------------------------------------------------------------------------
def test_classify_user_errors(tiny_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ConfigError, match="unit: a jurisdiction-year dataset's unit is 'jurisdiction'"):
        classify(tiny_con, unit="beat")
    with pytest.raises(ConfigError, match="period"):
        classify(tiny_con, period="week")
    with pytest.raises(DataError, match="at least 4 jurisdictions"):
        classify(tiny_con)  # three cities cannot be ranked in quartiles
    with pytest.raises(DataError, match="'nowhere' is not in the warehouse"):
        classify(tiny_con, "nowhere")


def test_any_mapped_csv_jurisdiction_year_dataset(tmp_path: Path) -> None:
    """Target (d): a jurisdiction-year file loaded through a mapping, with a seeded synthetic panel."""
    from crimelens import sources

    rng = np.random.default_rng(11)
    lines = ["city,year,pop,violent,months"]
    for c in range(12):
        level = rng.uniform(200, 1500)
        for year in range(1995, 2011):
            level *= rng.lognormal(0, 0.12)
            lines.append(f"City {c},{year},100000,{round(level)},12")
    (tmp_path / "panel.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "panel.toml").write_text(
        'source = "synthetic-cities"\n[columns]\njurisdiction = "city"\nyear = "year"\npopulation = "pop"\n'
        'violent_crime = "violent"\nmonths_reported = "months"\n[constants]\nkind = "city"\n'
    )
    con = warehouse.connect(tmp_path / "w.duckdb")
    try:
        warehouse.load_parsed(con, sources.read(tmp_path / "panel.csv", mapping=tmp_path / "panel.toml"))
        with pytest.warns(SparseDataWarning, match="positive outcomes"):
            r = classify(con, target="top-quartile", n_boot=50)  # 3 of 12 cities on top a year: 15 in 5 years
        assert r.source == "synthetic-cities" and r.test_periods == tuple(range(2006, 2011))
        _honest(r)
        assert [w.category for w in r.warnings] == ["SparseDataWarning"]
    finally:
        con.close()


# -- real data -------------------------------------------------------------------------------------------
def _honest(result: ClassifyResult) -> None:
    """Properties every evaluation must have."""
    tested = list(result.folds["test_period"])
    assert tested == sorted(tested)
    assert (result.folds["train_end"] < result.folds["test_period"]).all()
    for _, row in result.table.iterrows():
        for m in ("roc_auc", "auprc", "brier"):
            assert row[f"{m}_low"] <= row[m] <= row[f"{m}_high"], (row["method"], m)
    lo, hi = result.best_gain["roc_auc_ci"]
    assert lo <= result.best_gain["roc_auc"] <= hi
    assert set(result.table["method"]) >= {"persistence_rank", "persistence_class", "historical_mean", "logistic"}
    assert 0 < result.base_rate < 1
    assert any("Feedback loop" in n for n in result.notes) and any("Place-based" in n for n in result.notes)


def test_marshall_top_quartile_persistence_is_hard_to_beat(marshall_con: duckdb.DuckDBPyConnection) -> None:
    r = classify(marshall_con, target="top-quartile", start=2000, end=2014, n_boot=N_BOOT, predict=True)
    _honest(r)
    m = r.methods
    assert m["persistence_rank"]["roc_auc"] > 0.95  # this year's rank nearly decides next year's quartile
    assert abs(r.base_rate - 0.25) < 0.03  # a quartile, ties at the boundary included
    assert r.test_periods == tuple(range(2000, 2015))
    # no model is far ahead of rank persistence on this easy target
    assert abs(r.best_gain["roc_auc"]) < 0.03
    assert r.predictions is not None and r.predictions["period"].eq(2016).all()
    assert r.predictions["rank"].tolist() == list(range(1, len(r.predictions) + 1))
    assert r.predictions["probability"].is_monotonic_decreasing
    assert r.chart() is not None and r.chart().series == "method"  # type: ignore[union-attr]


def test_marshall_rise_is_hard_and_shows_no_leakage(marshall_con: duckdb.DuckDBPyConnection) -> None:
    r = classify(marshall_con, target="rise", start=2000, end=2014, n_boot=N_BOOT)
    _honest(r)
    assert set(r.table["method"]) >= {"last_change", "common_trend", "lightgbm"}
    assert 0.03 < r.base_rate < 0.2
    # a year-ahead rise is hard: an ROC-AUC far above the reference 0.64 would point to leakage
    assert max(v["roc_auc"] for v in r.methods.values()) < 0.75
    assert all(v["roc_auc"] > 0.35 for v in r.methods.values())


def test_fbi_states_both_targets(fbi_con: duckdb.DuckDBPyConnection) -> None:
    for target in ("top-quartile", "rise"):
        r = classify(fbi_con, target=target, start=2000, end=2014, n_boot=N_BOOT)
        _honest(r)
        assert r.unit == "jurisdiction" and r.period == "year"
        assert (r.folds["n_test"] == 51).all()  # 50 states and DC
    assert r.methods["logistic"]["roc_auc"] < 0.85


@pytest.fixture(scope="module")
def incident_db(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("classify") / "incidents.duckdb"
    con = warehouse.connect(db)
    warehouse.load_incidents(con, real_data / "chicago_crimes_2022_slim" / "crimes-2022-slim.csv.gz", "chicago")
    warehouse.load_incidents(con, real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz", "toronto-mci")
    con.close()
    yield db


@pytest.mark.slow
def test_chicago_community_area_weeks(incident_db: Path) -> None:
    con = warehouse.connect(incident_db, read_only=True)
    try:
        r = classify(con, "chicago", target="top-share", n_boot=N_BOOT)
    finally:
        con.close()
    _honest(r)
    assert r.unit == "community_area" and r.period == "week"
    assert (r.folds["n_test"] == 77).all()  # Chicago's 77 community areas
    assert r.methods["persistence_rank"]["roc_auc"] > 0.9
    assert any("part" in n and "week" in n for n in r.notes)  # partial first/last weeks left out


@pytest.mark.slow
def test_toronto_neighbourhood_months(incident_db: Path) -> None:
    con = warehouse.connect(incident_db, read_only=True)
    try:
        r = classify(con, "toronto-mci", target="top-share", unit="neighbourhood", start="2017-01-01", n_boot=N_BOOT)
    finally:
        con.close()
    _honest(r)
    assert r.period == "month" and (r.folds["n_test"] == 140).all()  # 140 neighbourhoods
    assert r.test_periods[0] == "2017-01-01" and len(r.test_periods) == 36
    assert "log_value_season_ago" in r.features
    assert r.methods["persistence_rank"]["roc_auc"] > 0.9


# -- covariates ------------------------------------------------------------------------------------------
def _state_covariates(path: Path, rows: list[str]) -> Path:
    head = (
        "Year,State,Labor force participation,Unemployment rate,Average household size,Poverty rate,"
        "Gini coefficient,Log of GDP per capita,Age\n"
    )
    path.write_text(head + "".join(r + "\n" for r in rows))
    return path


def test_covariates_come_only_from_years_up_to_the_feature_period(
    fbi_con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    from crimelens.models.features import add_covariates
    from crimelens.sources.covariates import read_covariates
    from crimelens.warehouse.covariates import load_covariates

    f = _state_covariates(
        tmp_path / "s.csv", ["2010,Alabama,60,5,2.5,10,0.4,10,37", "2012,Alabama,61,6,2.5,20,0.4,10,38"]
    )
    load_covariates(fbi_con, read_covariates(f, "state-panel"))
    panel = jurisdiction_panel(fbi_con)
    design, columns, note = add_covariates(fbi_con, panel, build_design(panel, "rise"))
    assert "cov_poverty_rate" in columns and "state-panel" in note
    al = design.frame[design.frame["unit"] == "US-AL"].set_index("feature_period")["cov_poverty_rate"]
    # 2009: nothing published yet; 2010 and 2011: the 2010 value; 2012 on: the 2012 value
    assert np.isnan(al[2009]) and al[2010] == 10 and al[2011] == 10 and al[2012] == 20 and al[2019] == 20
    assert design.frame.loc[design.frame["unit"] == "US-IL", "cov_poverty_rate"].isna().all()
    assert len(design.frame) == len(build_design(panel, "rise").frame)  # rows neither added nor dropped


def test_covariate_ablation_on_the_state_panel(fbi_con: duckdb.DuckDBPyConnection, real_data: Path) -> None:
    from crimelens.sources.covariates import read_covariates
    from crimelens.warehouse.covariates import load_covariates

    with pytest.raises(DataError, match="covariates: expected socio-economic covariates of states"):
        classify(fbi_con, covariates=True, n_boot=10)
    path = real_data / "fbi_estimated_crimes_1979_2019" / "us_state_income_inequality_2005_2015.csv"
    load_covariates(fbi_con, read_covariates(path, "state-panel"))
    r = classify(fbi_con, target="rise", start=2006, end=2015, covariates=True, n_boot=N_BOOT)
    _honest(r)
    assert {"logistic_cov", "lightgbm_cov"} <= set(r.methods)
    assert list(r.ablation["method"]) == ["logistic_cov", "lightgbm_cov"]
    assert list(r.ablation["without"]) == ["logistic", "lightgbm"]
    for _, row in r.ablation.iterrows():
        # the paired difference is the difference of the two points, and its interval holds it
        assert row["roc_auc"] == pytest.approx(
            r.methods[row["method"]]["roc_auc"] - r.methods[row["without"]]["roc_auc"]
        )
        assert row["roc_auc_low"] <= row["roc_auc"] <= row["roc_auc_high"]
    assert any(n.startswith("Covariates from state-panel") for n in r.notes)
