"""The report's model sections: the classifier, crime and socio-economic conditions, the model card.

The report is built once on a private copy of the FBI state warehouse with the real state socio-economic panel
loaded (``../shared/data``); the test then computes the classifier and the regression itself, on its own
connection, and checks the figures the HTML shows against those result objects. The demo is run at small scale
in a temporary folder.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from crimelens import warehouse
from crimelens.insights.models import classifier_findings
from crimelens.models.classify import CAVEATS, ClassifyResult, classify
from crimelens.models.covariates import COVARIATE_CAVEATS, CovariateResult, covariate_regression
from crimelens.report import build_report
from crimelens.report.blocks import Runner
from crimelens.report.models import JURISDICTION_TARGETS, ModelReportParams, covariates_section
from crimelens.sources.covariates import read_covariates
from crimelens.warehouse.covariates import load_covariates
from test_report import Node, Parsed, parse

SOURCE = "fbi-estimates"
#: Smaller than the report's defaults, to keep the tests quick; the sections say what was used.
PARAMS = ModelReportParams(n_boot=100, test_years=8, seed=0, top=10)
LAST_YEAR = 2019  # the FBI file ends in 2019


@dataclass
class Built:
    report: Parsed
    classified: dict[str, ClassifyResult]
    regression: CovariateResult


@pytest.fixture(scope="module")
def fbi_models(_real_warehouses: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> Built:
    base = tmp_path_factory.mktemp("report-models")
    shutil.copy(_real_warehouses[SOURCE], base / "w.duckdb")
    con = warehouse.connect(base / "w.duckdb")
    try:
        panel = real_data / "fbi_estimated_crimes_1979_2019" / "us_state_income_inequality_2005_2015.csv"
        load_covariates(con, read_covariates(panel, "state-panel"))
        path = build_report(con, base / "report.html", model_params=PARAMS)
        parsed = parse(path.read_text(encoding="utf-8"))
    finally:
        con.close()
    # computed again, on a connection of its own, without the report's runner
    con = warehouse.connect(base / "w.duckdb")
    try:
        classified = {
            t: classify(
                con, SOURCE, target=t, start=LAST_YEAR - PARAMS.test_years + 1, seed=0, predict=True,
                n_boot=PARAMS.n_boot,
            )
            for t in JURISDICTION_TARGETS
        }  # fmt: skip
        regression = covariate_regression(con, SOURCE)
    finally:
        con.close()
    return Built(parsed, classified, regression)


def _rows(table: Node) -> list[list[str]]:
    return [[td.text() for td in tr.find_all("td")] for tr in table.find_all("tr") if tr.find_all("td")]


def _header(table: Node) -> list[str]:
    return [th.text() for th in table.find_all("th")]


def _ci(point: float, lo: float, hi: float, sign: str = "") -> str:
    return f"{point:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"


# -- sections and order ----------------------------------------------------------------------------------
def test_model_sections_sit_between_the_analyses_and_provenance(fbi_models: Built) -> None:
    sections = [n.attrs["id"] for n in fbi_models.report.root.find_all("section")]
    assert sections.index("hotspots") < sections.index("models") < sections.index("covariates")
    assert sections.index("covariates") < sections.index("model-card") < sections.index("provenance")
    toc = fbi_models.report.root.find_all("nav")[0].text()
    assert "Which places will be high-crime next period" in toc and "Model card" in toc
    meta = fbi_models.report.metadata
    assert meta["params"]["model_n_boot"] == 100 and meta["params"]["model_test_years"] == 8
    assert meta["seeds"]["models"] == 0
    assert f"models.classify[{SOURCE}:rise]" in meta["analyses"] and not meta["analyses_failed"]


# -- which places will be high-crime next period -------------------------------------------------------------
@pytest.mark.parametrize("target", JURISDICTION_TARGETS)
def test_metrics_table_shows_every_method_of_the_result(fbi_models: Built, target: str) -> None:
    res = fbi_models.classified[target]
    table = fbi_models.report.root.by_id(f"metrics-{SOURCE}-{target}")
    assert _header(table) == ["Method", "Kind", "ROC-AUC [95% CI]", "AUPRC [95% CI]", "F1 [95% CI]", "Brier [95% CI]"]
    rows = _rows(table)
    # every method in the result's nested ``methods`` (a field the section does not render from), baselines first
    assert [r[0] for r in rows] == list(res.methods)
    assert {r[1] for r in rows} == {"baseline", "model"}
    for row in rows:
        m = res.methods[row[0]]
        for cell, metric in zip(row[2:], ("roc_auc", "auprc", "f1", "brier"), strict=True):
            assert cell == _ci(m[metric], *m[f"{metric}_ci"]), (row[0], metric)
    for base in ("persistence_rank", "persistence_class", "historical_mean"):
        assert base in [r[0] for r in rows]
    if target == "rise":
        assert {"last_change", "common_trend"} <= {r[0] for r in rows}


@pytest.mark.parametrize("target", JURISDICTION_TARGETS)
def test_gain_table_and_plain_verdict(fbi_models: Built, target: str) -> None:
    res = fbi_models.classified[target]
    rows = _rows(fbi_models.report.root.by_id(f"gains-{SOURCE}-{target}"))
    expected = [
        [str(g.method), str(g.baseline), _ci(g.roc_auc, g.roc_auc_low, g.roc_auc_high, "+"),
         _ci(g.auprc, g.auprc_low, g.auprc_high, "+")]
        for g in res.gains.itertuples()
    ]  # fmt: skip
    assert rows == expected
    block = fbi_models.report.root.by_id(f"model-{SOURCE}-{target}").text()
    g = res.best_gain
    lo, hi = g["roc_auc_ci"]
    gain = _ci(g["roc_auc"], lo, hi, "+")
    assert gain in block
    if lo > 0:
        assert f"{g['method']} beats" in block
    else:  # honest either way: the interval includes 0 or lies below it
        assert "No model" in block and f"{g['method']} beats" not in block
    assert f"Tested on {PARAMS.test_years} years (2012–2019)" in block
    assert f"Base rate {res.base_rate:.3f}" in block
    assert "100 replicates resampling test years" in block  # the result's own note on its bootstrap


def test_top_quartile_is_not_beaten_by_last_years_rank(fbi_models: Built) -> None:
    # docs/models.md: on FBI states every method reaches ~0.995 and no model beats rank persistence
    res = fbi_models.classified["top-quartile"]
    assert res.best_gain["baseline"] == "persistence_rank"
    assert res.best_gain["roc_auc_ci"][0] <= 0
    text = fbi_models.report.root.by_id(f"model-{SOURCE}-top-quartile").text()
    assert (
        "No model beats last year's rank (persistence_rank)" in text or "No model is shown to beat last year's" in text
    )


@pytest.mark.parametrize("target", JURISDICTION_TARGETS)
def test_ranked_list_is_the_results_prediction(fbi_models: Built, target: str) -> None:
    res = fbi_models.classified[target]
    assert res.predictions is not None
    table = fbi_models.report.root.by_id(f"ranking-{SOURCE}-{target}")
    assert "Ranked list for 2020" in table.text()  # the year after the data
    rows = _rows(table)
    head = res.predictions.head(PARAMS.top)
    assert [r[1] for r in rows] == list(head["name"])
    assert [r[3] for r in rows] == [f"{p:.3f}" for p in head["probability"]]
    probs = [float(r[3]) for r in rows]
    assert probs == sorted(probs, reverse=True)
    assert f"Probability ({res.best_gain['method']})" in _header(table)
    # the latest rate is 2019's, e.g. the District of Columbia's 1,049.0 per 100,000 in the key findings
    dc = [r for r in rows if r[1] == "District of Columbia"]
    assert not dc or dc[0][2] == "1049.0"


@pytest.mark.parametrize("target", JURISDICTION_TARGETS)
def test_calibration_chart_is_the_results_chart(fbi_models: Built, target: str) -> None:
    res = fbi_models.classified[target]
    spec = res.chart()
    assert spec is not None
    block = fbi_models.report.root.by_id(f"model-{SOURCE}-{target}")
    figures = block.find_all("figure")
    assert figures and spec.title in figures[0].text()
    assert "data-vega" in figures[0].attrs
    # the chart plots the best model and the best baseline, whose names appear in its data table
    assert res.best_gain["method"] in figures[0].text() and res.best_gain["baseline"] in figures[0].text()


def test_model_findings_join_the_key_findings(fbi_models: Built) -> None:
    items = fbi_models.report.root.by_id("findings-list").find_all("li", cls="finding")
    shown = {li.find_all("p", "headline")[0].text(): li.attrs["data-kind"] for li in items}
    for res in fbi_models.classified.values():
        (finding,) = classifier_findings(res)
        assert shown.get(finding.headline) == finding.kind
        assert finding.kind in ("model_gain", "model_no_gain")
        # the finding's numbers are the result's: model and baseline ROC-AUC, the paired gain and its interval
        ev = finding.evidence
        g = res.best_gain
        assert ev["model"] == g["method"] and ev["baseline"] == g["baseline"]
        assert ev["roc_auc_gain_ci"] == pytest.approx(g["roc_auc_ci"])
        assert ev["baseline_roc_auc"] == pytest.approx(res.methods[g["baseline"]]["roc_auc"])


# -- crime and socio-economic conditions -----------------------------------------------------------------
def test_covariate_section_shows_the_regression(fbi_models: Built) -> None:
    r = fbi_models.regression
    block = fbi_models.report.root.by_id(f"covariates-{SOURCE}")
    rows = _rows(fbi_models.report.root.by_id(f"irr-{SOURCE}"))
    assert [row[0] for row in rows] == list(r.table["covariate"])
    assert [row[2] for row in rows] == [_ci(t.irr, t.irr_low, t.irr_high) for t in r.table.itertuples()]
    text = block.text()
    assert f"α = {r.alpha:.3f} [{r.alpha_ci[0]:.3f}, {r.alpha_ci[1]:.3f}]" in text
    assert f"over {r.n:,} observations" in text and r.n == 550
    more = _rows(fbi_models.report.root.by_id(f"more-than-expected-{SOURCE}"))
    less = _rows(fbi_models.report.root.by_id(f"less-than-expected-{SOURCE}"))
    assert [row[0] for row in more] == list(r.more_than_expected["name"])
    assert [row[0] for row in less] == list(r.less_than_expected["name"])
    assert [row[3] for row in more] == [f"{v:.2f}" for v in r.more_than_expected["ratio"]]
    assert float(more[0][3]) > 1 > float(less[0][3])
    # every interval that excludes 1 is named in a sentence; none that includes 1
    clear = r.table[(r.table["irr_low"] > 1) | (r.table["irr_high"] < 1)]
    for t in clear.itertuples():
        assert f"{t.covariate} ({t.irr:.2f} [{t.irr_low:.2f}, {t.irr_high:.2f}])" in text
    # states have no area map in the report: no map is drawn for them
    assert not block.find_all("figure", cls="map-figure")
    section = fbi_models.report.root.by_id("covariates").text()
    for caveat in COVARIATE_CAVEATS:
        assert caveat in section


def test_without_covariates_the_section_says_how_to_load_them(tiny_con: duckdb.DuckDBPyConnection) -> None:
    run = Runner(tiny_con, "tiny")
    section, results = covariates_section(run, ["tiny"], [])
    assert results == []
    (block,) = section.blocks
    assert "No socio-economic covariates are loaded" in block.paragraphs[0]
    assert "crimelens covariates load" in block.paragraphs[0] and "--preset state-panel" in block.paragraphs[0]


@pytest.fixture
def city_con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A small SIMULATED city with its 77 areas, and seeded area covariates (population, deprivation)."""
    import numpy as np

    from crimelens.simulate import simulate

    csv, areas = tmp_path / "city.csv", tmp_path / "areas.geojson"
    simulate(6_000, 1, 7, csv, start_year=2023, areas_out=areas)
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.load_incidents(con, csv, "chicago", source="simulated-city", simulated=True)
    warehouse.load_areas(
        con, areas, area_set="simulated-city-areas", area_kind="community_area", id_property="area_id",
        name_property="name", population_property="population",
    )  # fmt: skip
    feats = json.loads(areas.read_text())["features"]
    rng = np.random.default_rng(3)
    lines = ["area,name,pop,deprivation"] + [
        f"{f['properties']['area_id']},{f['properties']['name']},{f['properties']['population']},{rng.normal():.4f}"
        for f in feats
    ]
    (tmp_path / "cov.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "cov.toml").write_text(
        'source = "city-profile"\nunit_kind = "community_area"\n[columns]\nunit_id = "area"\nunit_name = "name"\n'
        '[constants]\nyear = 2023\n[covariates]\npopulation = "pop"\ndeprivation = "deprivation"\n'
    )
    load_covariates(con, read_covariates(tmp_path / "cov.csv", mapping=tmp_path / "cov.toml"))
    yield con
    con.close()


def test_area_covariates_get_a_residual_map(city_con: duckdb.DuckDBPyConnection) -> None:
    run = Runner(city_con, "simulated-city")
    section, (res,) = covariates_section(run, [], ["simulated-city"])
    expected = covariate_regression(city_con, "simulated-city", ["city-profile"])
    assert list(res.table["irr"]) == pytest.approx(list(expected.table["irr"]))
    (block,) = section.blocks
    html = "".join(str(t) for t in block.tables)
    assert _ci(*expected.table.loc[0, ["irr", "irr_low", "irr_high"]].astype(float)) in html
    maps = [str(f) for f in block.figures if "map-figure" in str(f)]
    assert len(maps) == 1 and "vega-spec" in maps[0] and "observed / expected" in maps[0]


# -- the model card --------------------------------------------------------------------------------------
def test_model_card_says_what_the_models_are_and_are_not(fbi_models: Built) -> None:
    card = fbi_models.report.root.by_id("model-card").text()
    for caveat in CAVEATS:  # police-recorded data, feedback loop, place-based only, uncertainty
        assert caveat in card
    assert "never people" in card and "Never use these models, or their inputs, to score a person" in card
    assert "later than the data each method was trained on" in card and "naive baselines" in card
    assert "Association, not cause" in card and "Ecological fallacy" in card
    assert "seed 0; 100 bootstrap replicates; the latest 8 predicted years" in card


# -- graceful degradation --------------------------------------------------------------------------------
def test_a_dataset_too_short_for_the_classifier_says_so_in_one_line(
    tmp_path: Path, tiny_con: duckdb.DuckDBPyConnection
) -> None:
    report = parse(build_report(tiny_con, tmp_path / "tiny.html", model_params=PARAMS).read_text(encoding="utf-8"))
    models = report.root.by_id("models")
    blocks = models.find_all("div", cls="block")
    assert len(blocks) == len(JURISDICTION_TARGETS)
    for block in blocks:
        (line,) = block.find_all("p", cls="unavailable")
        assert "could not be computed for this dataset" in line.text() and "\n" not in line.text()
        assert not block.find_all("table") and not block.find_all("figure")
    assert report.root.by_id("model-card").find_all("p")
    assert "No socio-economic covariates are loaded" in report.root.by_id("covariates").text()
    assert set(report.metadata["analyses_failed"]) == {f"models.classify[tiny:{t}]" for t in JURISDICTION_TARGETS}
    assert "no model" not in report.root.by_id("findings").text().lower()
    # the rest of the report is whole
    for anchor in ("statistics", "jurisdictions", "trends", "hotspots", "provenance", "limitations"):
        report.root.by_id(anchor)


def test_models_can_be_left_out(tmp_path: Path, tiny_con: duckdb.DuckDBPyConnection) -> None:
    report = parse(build_report(tiny_con, tmp_path / "tiny.html", models=False).read_text(encoding="utf-8"))
    ids = {n.attrs.get("id") for n in report.root.find_all("section")}
    assert not ids & {"models", "covariates", "model-card"}


# -- the demo ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_report_has_the_model_sections(tmp_path: Path) -> None:
    from crimelens.demo import run_demo

    run = run_demo(tmp_path / "demo", incidents=20_000)
    report = parse(run.report.read_text(encoding="utf-8"))
    models = report.root.by_id("models")
    for target in JURISDICTION_TARGETS:
        block = report.root.by_id(f"model-{SOURCE}-{target}")
        assert not block.find_all("p", cls="unavailable")
        assert report.root.by_id(f"metrics-{SOURCE}-{target}") and report.root.by_id(f"ranking-{SOURCE}-{target}")
    assert report.root.by_id("model-simulated-city-top-share")
    assert "Tested on 15 years (2005–2019)" in models.text()  # the report's defaults: the latest 15 years
    assert "200 bootstrap replicates" in models.text()
    cov = report.root.by_id("covariates").text()
    assert cov.count("No socio-economic covariates are loaded") == 2 and "crimelens covariates load" in cov
    assert "Place-based only" in report.root.by_id("model-card").text()
    findings = report.root.by_id("findings").text()
    assert re.search(r"fbi-estimates: no model (beats|is shown to beat) last year's rank", findings) or (
        "fbi-estimates: " in findings and "better than" in findings
    )
    assert run.seconds < 120
