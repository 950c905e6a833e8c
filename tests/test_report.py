"""The HTML report: built on the real datasets, parsed with the standard library's ``html.parser``.

The report is built once per dataset for this module (building takes a few seconds) on a private copy of
the same warehouse the ``fbi_con`` / ``marshall_con`` fixtures open; tests that need a connection of their
own use those fixtures.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from crimelens import warehouse
from crimelens.analysis.result import ChartSpec
from crimelens.errors import DataError, PartialReportingWarning, SourceError
from crimelens.insights import key_findings
from crimelens.report import STEPS, Section, build_report
from crimelens.report.blocks import Runner
from crimelens.report.charts import render_figure
from crimelens.report.tables import humanize

SECTION_ORDER = ["findings", "statistics", "jurisdictions", "trends", "hotspots", "provenance", "limitations"]
_VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


# -- a tiny DOM on top of html.parser ------------------------------------------------------------------
@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(" ".join(c.split()) if isinstance(c, str) else c.text() for c in self.children).strip()

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.attrs.get("class", "").split())
        ]

    def by_id(self, ident: str) -> Node:
        hits = [n for n in self.iter() if n.attrs.get("id") == ident]
        assert len(hits) == 1, f"expected one element with id {ident!r}, got {len(hits)}"
        return hits[0]


class _DomBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value) of every attribute

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        out = {k: v or "" for k, v in attrs}
        self.attributes += [(tag, k, v) for k, v in out.items()]
        return out

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, self._attrs(tag, attrs))
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, self._attrs(tag, attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return
        raise AssertionError(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


@dataclass
class Parsed:
    html: str
    root: Node
    attributes: list[tuple[str, str, str]]

    @property
    def metadata(self) -> dict[str, Any]:
        node = self.root.by_id("crimelens-metadata")
        return dict(json.loads(node.text()))


def parse(html: str) -> Parsed:
    builder = _DomBuilder()
    builder.feed(html)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed elements: {[n.tag for n in builder.stack[1:]]}"
    return Parsed(html, builder.root, builder.attributes)


def build(con: duckdb.DuckDBPyConnection, out: Path, **kwargs: Any) -> Parsed:
    path = build_report(con, out, **kwargs)
    assert path == out
    return parse(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fbi_report(_real_warehouses: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Parsed:
    base = tmp_path_factory.mktemp("report-fbi")
    shutil.copy(_real_warehouses["fbi-estimates"], base / "w.duckdb")
    con = warehouse.connect(base / "w.duckdb")
    try:
        return build(con, base / "report.html")
    finally:
        con.close()


@pytest.fixture(scope="module")
def marshall_report(_real_warehouses: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Parsed:
    base = tmp_path_factory.mktemp("report-marshall")
    shutil.copy(_real_warehouses["ucr-marshall"], base / "w.duckdb")
    con = warehouse.connect(base / "w.duckdb")
    try:
        return build(con, base / "report.html")
    finally:
        con.close()


@pytest.fixture(params=["fbi", "marshall"])
def any_report(request: pytest.FixtureRequest) -> Parsed:
    return request.getfixturevalue(f"{request.param}_report")  # type: ignore[no-any-return]


# -- structure -----------------------------------------------------------------------------------------
def test_sections_present_in_order(any_report: Parsed) -> None:
    sections = [n.attrs["id"] for n in any_report.root.find_all("section")]
    assert [s for s in sections if s in SECTION_ORDER] == SECTION_ORDER
    toc = [a.attrs["href"] for a in any_report.root.find_all("nav")[0].find_all("a")]
    assert toc == [f"#{s}" for s in sections]  # every section has a working anchor, in order
    for anchor in toc:
        any_report.root.by_id(anchor[1:])


def test_header_names_dataset_years_version_and_parameters(fbi_report: Parsed) -> None:
    header = fbi_report.root.find_all("header")[0]
    text = header.text()
    assert "Crime report: fbi-estimates" in header.find_all("h1")[0].text()
    assert "1979–2019 (41 years)" in text
    assert "0.1.0" in text and "Generated" in text and "UTC" in text
    assert "Top k" in text and "10" in text and "Random seed" in text
    meta = fbi_report.metadata
    assert meta["params"] == {
        "source": "fbi-estimates", "offence": "violent_crime", "year": 2019, "year_requested": None, "k": 10,
        "alpha": 0.05, "hotspot_share": 0.5, "hotspot_window": 10,
        # the model sections' settings (crimelens.report.models.ModelReportParams' defaults)
        "model_n_boot": 200, "model_test_years": 15, "model_seed": 0, "model_top": 10,
    }  # fmt: skip
    assert meta["seeds"] == {"models": 0}
    assert meta["analyses_failed"] == {}


def test_subsections_of_each_analysis_section(fbi_report: Parsed) -> None:
    def headings(section: str) -> list[str]:
        return [h.text() for h in fbi_report.root.by_id(section).find_all("h3")]

    assert headings("statistics") == [
        "Offence totals and shares, 2019",
        "Most common violent offences",
        "Violent-crime rate over time",
    ]
    assert headings("jurisdictions") == [
        "Top 10 by count and by rate, 2019",
        "Concentration: how much the top jurisdictions hold",
        "The highest-rate jurisdictions over time",
        "Violent crime rate by state, 2019",  # the FBI estimates are states: the state choropleth
        "Offence mix: District of Columbia against its peers",
    ]
    assert headings("trends") == [
        "Year-over-year changes in the national rate",
        "Turning points",
        "Fastest rising and falling long-run trends",
    ]
    assert headings("provenance") == [
        "Files behind this report",
        "Loads",
        "Years covered",
        "Partial-year reporting",
        "Data issues recorded at load",
    ]
    ranking = fbi_report.root.by_id("ranking")
    assert len(ranking.find_all("figure")) == 2  # by count and by rate, side by side
    assert "The rankings differ" in ranking.text()


def test_every_analysis_has_an_inline_chart(any_report: Parsed) -> None:
    charts = [f for f in any_report.root.find_all("figure") if "data-vega" in f.attrs]
    meta = any_report.metadata
    assert len(charts) >= len(meta["analyses"]) >= 11
    assert len(charts) == meta["charts"]
    for figure in charts:
        (target,) = [d for d in figure.find_all("div") if d.attrs.get("class") == "vega-chart"]
        assert target.attrs["role"] == "img" and target.attrs["aria-label"]
        (script,) = [s for s in figure.find_all("script") if s.attrs.get("class") == "vega-spec"]
        spec = json.loads(script.text())
        assert spec["$schema"].endswith("vega-lite/v6.json") and spec["usermeta"]["columns"]
    for figure in any_report.root.find_all("figure"):
        assert figure.find_all("figcaption")[0].text()
        details = figure.find_all("details")[0]
        assert details.find_all("summary") and details.find_all("table")
    ids = [n.attrs["id"] for n in any_report.root.iter() if "id" in n.attrs]
    assert len(ids) == len(set(ids)), "element ids must be unique on the page"


def test_nothing_is_fetched_from_outside(any_report: Parsed) -> None:
    for tag, name, value in any_report.attributes:
        if name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            assert value.startswith("#"), f"<{tag} {name}={value!r}> points off the page"
        if name == "style":
            assert "url(" not in value or "url(#" in value
    # the page outside its scripts: the Vega bundle's own source mentions <img> and <link> in strings
    page = re.sub(r"<script\b[^>]*>.*?</script>", "", any_report.html, flags=re.S)
    lowered = page.lower()
    assert "<link" not in lowered and "<img" not in lowered and "<iframe" not in lowered
    assert "@import" not in lowered and "@font-face" not in lowered
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", lowered)
    scripts = any_report.root.find_all("script")
    data = [s.attrs for s in scripts if s.attrs.get("type") == "application/json"]
    code = [s for s in scripts if s.attrs.get("type") != "application/json"]
    assert {"type": "application/json", "id": "crimelens-metadata"} in data
    assert all(
        a
        in (
            {"type": "application/json", "class": "vega-spec"},
            {"type": "application/json", "id": "crimelens-metadata"},
        )
        for a in data
    )
    # two inline scripts, no src: the vendored Vega bundle (once) and the code that draws the charts
    assert len(code) == 2 and all(not s.attrs for s in code)
    assert any_report.html.count("vl-convert-python for crimelens") == 1


# -- content -------------------------------------------------------------------------------------------
def test_findings_are_the_key_findings(fbi_report: Parsed, fbi_con: duckdb.DuckDBPyConnection) -> None:
    params = fbi_report.metadata["params"]
    expected = key_findings(fbi_con, params["source"], year=params["year"], k=params["k"]).findings
    # the classifier's findings (insights.models, from the model section's results: tests/test_report_models.py)
    # rank among them on the same scale
    items = [
        li
        for li in fbi_report.root.by_id("findings-list").find_all("li", "finding")
        if not li.attrs["data-kind"].startswith("model_")
    ]
    # the report renders insights' findings, in order, and builds none of its own
    assert [li.find_all("p", "headline")[0].text() for li in items] == [f.headline for f in expected]
    assert [li.find_all("p", "detail")[0].text() for li in items] == [f.detail for f in expected]
    assert len(expected) >= 5
    first = items[0].find_all("dl", "evidence")[0]
    assert [dt.text() for dt in first.find_all("dt")] == [humanize(k) for k in expected[0].evidence]
    # the numbers the findings state, computed here straight from the warehouse with SQL (not by crimelens)
    shown = {li.attrs["data-kind"]: li.text() for li in items}

    def sql(query: str) -> list[Any]:
        return fbi_con.execute(query).fetchall()

    (year,) = sql("SELECT max(year) FROM jurisdiction_year WHERE source = 'fbi-estimates' AND violent_crime > 0")[0]
    assert year == 2019
    states = (
        "FROM jurisdiction_year jy JOIN jurisdictions j USING (jurisdiction_id) "
        f"WHERE jy.source = 'fbi-estimates' AND j.kind <> 'nation' AND jy.year = {year}"
    )
    # most violent crime by count and by rate (count / population × 100,000), states and DC, 2019
    most, most_n = sql(f"SELECT j.name, jy.violent_crime {states} ORDER BY 2 DESC LIMIT 1")[0]
    worst, worst_rate = sql(f"SELECT j.name, jy.violent_crime * 1e5 / jy.population {states} ORDER BY 2 DESC")[0]
    assert (most, worst) == ("California", "District of Columbia")
    assert f"{most} records the most violent crime ({most_n:,} in {year})" in shown["counts_vs_rates"]
    assert f"{worst} has the highest rate ({worst_rate:,.1f} per 100,000 residents)" in shown["counts_vs_rates"]
    # the national rate, 2018 → 2019, from the nation rows
    (r0,), (r1,) = sql(
        "SELECT violent_crime * 1e5 / population FROM jurisdiction_year JOIN jurisdictions USING (jurisdiction_id) "
        "WHERE source = 'fbi-estimates' AND kind = 'nation' AND year IN (2018, 2019) ORDER BY year"
    )
    # −1.0% is well within the national series' own year-to-year variation (quasi-Poisson, BH across years)
    assert (
        f"did not change significantly from 2018 to 2019 (-{abs(r1 / r0 - 1) * 100:.1f}%)" in shown["national_change"]
    )
    assert f"{r0:,.1f} → {r1:,.1f} per 100,000" in shown["national_change"]
    # share of all violent crime held by the 10 states with the most
    share, n = sql(
        f"SELECT sum(v) FILTER (WHERE rk <= 10) / sum(v), count(*) "
        f"FROM (SELECT jy.violent_crime AS v, row_number() OVER (ORDER BY jy.violent_crime DESC) AS rk {states})"
    )[0]
    assert f"The 10 jurisdictions with the most violent crime ({10 / n:.1%} of {n})" in shown["concentration"]
    assert f"account for {share:.1%} of it in {year}" in shown["concentration"]
    # aggravated assault's share of the four violent offences, over states reporting all four
    (assault,) = sql(
        "SELECT sum(aggravated_assault) / sum(homicide + rape + robbery + aggravated_assault) "
        f"{states} AND homicide IS NOT NULL AND rape IS NOT NULL AND robbery IS NOT NULL "
        "AND aggravated_assault IS NOT NULL"
    )[0]
    assert f"Aggravated assault is the most common violent offence: {assault:.1%}" in shown["offence_mix"]


def test_provenance_lists_the_load(any_report: Parsed, request: pytest.FixtureRequest) -> None:
    meta = any_report.metadata
    (load,) = meta["loads"]
    table = any_report.root.by_id("loads-table")
    rows = [[td.text() for td in tr.find_all("td")] for tr in table.find_all("tr")[1:]]
    (row,) = rows
    assert row[0] == str(load["load_id"]) and row[1] == load["file"]
    assert load["sha256"][:12] in row and re.fullmatch(r"[0-9a-f]{64}", load["sha256"])
    expected_rows = {"fbi-estimates": "2,116", "ucr-marshall": "2,829"}[meta["params"]["source"]]
    assert row[4] == row[5] == expected_rows  # rows read, rows loaded
    assert row[6] == "0"  # rejected


def test_provenance_matches_the_warehouse(fbi_report: Parsed, fbi_con: duckdb.DuckDBPyConnection) -> None:
    loads = warehouse.list_loads(fbi_con)
    sha = str(loads["sha256"].iloc[0])
    text = fbi_report.root.by_id("provenance").text()
    assert sha[:12] in text and f"{int(loads['rows_loaded'].iloc[0]):,}" in text
    issues = fbi_con.execute("SELECT code, count(*) FROM load_issues GROUP BY code").fetchall()
    table = fbi_report.root.by_id("issues-table")
    cells = [[td.text() for td in tr.find_all("td")] for tr in table.find_all("tr")[1:]]
    assert {(c[1], int(c[2])) for c in cells} == {(code, n) for code, n in issues}


def _partial_rows_in_csv(path: Path) -> list[tuple[str, int, int]]:
    """(ORI, year, months) of every row of the raw file reporting 1-11 months (independent of crimelens)."""
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            months = rec["months_reported"].strip()
            # 1-11 months; 0 means "not stated" (docs/methods.md, "Reporting months")
            if months not in ("", "NA") and 1 <= int(float(months)) < 12:
                out.append((rec["ORI"].strip(), int(rec["year"]), int(float(months))))
    return out


def test_partial_years_are_listed(marshall_report: Parsed, real_file: Any) -> None:
    expected = _partial_rows_in_csv(real_file("ucr-marshall"))
    assert len(expected) == 35  # the Marshall file: 35 agency-years with 1-11 months (18 more say 0)
    table = marshall_report.root.by_id("partial-years-table")
    listed = []
    for tr in table.find_all("tr")[1:]:
        cells = [td.text() for td in tr.find_all("td")]
        entries = re.findall(r"(\d{4}) \((\d+)\)", cells[3])
        assert int(cells[2]) == len(entries)
        listed += [(cells[1], int(y), int(m)) for y, m in entries]
    assert sorted(listed) == sorted(expected)
    text = marshall_report.root.by_id("partial-years").text()
    assert f"{len(expected)} jurisdiction-years cover fewer than 12 months" in text


def test_fbi_has_no_partial_years_but_says_months_are_unknown(fbi_report: Parsed) -> None:
    text = fbi_report.root.by_id("partial-years").text()
    assert "No jurisdiction-year is recorded as covering fewer than 12 months" in text
    assert "2,116 jurisdiction-years the data do not say how many months" in text


def _definition_years(con: duckdb.DuckDBPyConnection, definition: str) -> str:
    row = con.execute(
        "SELECT min(year), max(year) FROM jurisdiction_year WHERE rape_definition = ?", [definition]
    ).fetchone()
    assert row is not None
    return f"{row[0]}–{row[1]}"


@pytest.mark.parametrize("which", ["fbi", "marshall"])
def test_limitations_state_the_2013_rape_definition_change(which: str, request: pytest.FixtureRequest) -> None:
    report: Parsed = request.getfixturevalue(f"{which}_report")
    con: duckdb.DuckDBPyConnection = request.getfixturevalue(f"{which}_con")
    items = report.root.by_id("limitations").find_all("li")
    titles = [li.find_all("strong")[0].text() for li in items]
    assert titles == [
        "Police-recorded crime is not all crime.",
        "Reporting and coverage change across years.",
        "The FBI's 2013 rape definition change.",
        "Population denominators are estimates.",
        "Rates for small places are noisy.",
        "Counties, cities and states are not directly comparable.",
        "Nothing here identifies individuals.",
    ]
    rape = items[2].text()
    assert f"rape counts for {_definition_years(con, 'legacy')} follow the legacy definition" in rape
    assert f"{_definition_years(con, 'revised')} the revised one" in rape
    assert re.search(r"from [\d,]+ in 2012 to [\d,]+ in 2013", rape)


def test_limitations_use_this_datasets_numbers(marshall_report: Parsed, real_file: Any) -> None:
    items = marshall_report.root.by_id("limitations").find_all("li")
    with real_file("ucr-marshall").open(newline="", encoding="utf-8") as f:
        months = [r["months_reported"].strip() for r in csv.DictReader(f)]
    partial = sum(1 for m in months if m not in ("NA", "0") and int(m) < 12)  # 1-11 months
    unstated = sum(1 for m in months if m in ("NA", "0"))  # 0 or missing: months not stated
    assert (partial, unstated) == (35, 155)
    assert f"{partial} jurisdiction-years report fewer than 12 months" in items[1].text()
    assert f"{unstated} jurisdiction-years do not say how many months they cover" in items[1].text()
    assert "This dataset mixes 60 cities, 8 counties" in items[5].text()


def test_hotspot_rule_is_stated(fbi_report: Parsed) -> None:
    text = fbi_report.root.by_id("hotspots").text()
    assert "ranks in the top 10 by violent-crime rate per 100,000 in at least 50% of the 10 years 2010–2019" in text
    assert fbi_report.root.by_id("hotspots").find_all("figure")


# -- parameters, progress, extension, escaping ---------------------------------------------------------
def test_progress_extra_sections_and_escaping(tmp_path: Path, fbi_con: duckdb.DuckDBPyConnection) -> None:
    out = tmp_path / "out"
    out.mkdir()
    steps: list[str] = []
    extra = Section("Incident-level analysis", "<p id='incidents-body'>Incidents &amp; more</p>")
    pair = ("Another section", "<p id='another-body'>x</p>")
    report = build(
        fbi_con,
        out / "r.html",
        year=2015,
        k=5,
        title="<script>alert('x')</script> & co",
        progress=steps.append,
        extra_sections=[extra, pair],
    )
    assert steps == list(STEPS)
    assert sorted(p.name for p in out.iterdir()) == ["r.html"]
    sections = [n.attrs["id"] for n in report.root.find_all("section")]
    assert sections.index("incident-level-analysis") == sections.index("another-section") - 1
    assert sections.index("another-section") == sections.index("provenance") - 1
    assert report.root.by_id("incidents-body").text() == "Incidents & more"
    assert report.root.find_all("h1")[0].text() == "<script>alert('x')</script> & co"
    assert "<script>alert" not in report.html
    assert report.metadata["params"]["year"] == 2015 and report.metadata["params"]["k"] == 5
    assert "Top 5 by count and by rate, 2015" in report.root.by_id("jurisdictions").text()


def test_invalid_parameters_are_reported(tmp_path: Path, fbi_con: duckdb.DuckDBPyConnection) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match=r"year: expected a year with violent-crime counts .*1979–2019.*got 1850"):
        build_report(fbi_con, out / "r.html", year=1850)
    with pytest.raises(DataError, match="k: expected a whole number ≥ 1, got 0"):
        build_report(fbi_con, out / "r.html", k=0)
    with pytest.raises(DataError, match="dataset 'nope' is not in the warehouse"):
        build_report(fbi_con, out / "r.html", "nope")
    with pytest.raises(SourceError, match="is a folder; expected a file name such as"):
        build_report(fbi_con, out)
    with pytest.raises(SourceError, match="does not exist"):
        build_report(fbi_con, out / "missing" / "r.html")
    with pytest.raises(DataError, match=r"extra_sections: expected report.Section or \(title, html\) pairs"):
        build_report(fbi_con, out / "r.html", extra_sections=[("only a title",)])  # type: ignore[list-item]
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, not even a partial file


# -- the runner: caveats shown, errors contained, foreign warnings passed on ----------------------------
def test_runner_turns_crimelens_warnings_into_caveats(fbi_con: duckdb.DuckDBPyConnection) -> None:
    run = Runner(fbi_con, "fbi-estimates")

    def partial() -> int:
        warnings.warn("3 years are partial", PartialReportingWarning, stacklevel=2)
        return 1

    def broken() -> int:
        raise DataError("offence 'x' is not known")

    def foreign() -> int:
        warnings.warn("something else", RuntimeWarning, stacklevel=2)
        return 2

    ok = run.run("partial", partial)
    assert ok.value == 1 and ok.caveats == ("3 years are partial",) and ok.error is None
    bad = run.run("broken", broken)
    assert (
        bad.value is None
        and bad.unavailable("X") == "X could not be computed for this dataset: offence 'x' is not known"
    )
    with pytest.warns(RuntimeWarning, match="something else"):
        assert run.run("foreign", foreign).value == 2
    assert run.analyses == ["partial", "broken", "foreign"] and list(run.failed) == ["broken"]


# -- charts --------------------------------------------------------------------------------------------
_YEARS = pd.DataFrame(
    {
        "year": [2010, 2011, 2012, 2013] * 2,
        "rate": [1.0, 2.5, 2.0, 3.0, 4.0, 3.5, None, 5.0],
        "name": ["A $1 <b>"] * 4 + ["B"] * 4,
        "flag": [False, True, False, False, False, False, False, True],
    }
)
_BARS = pd.DataFrame(
    {
        "name": ["Alpha", "Beta & co", "Gamma"],
        "share": pd.array([0.5, 0.3, None], dtype="Float64"),
        "count": pd.array([5, -2, None], dtype="Int64"),
        "flag": [True, False, False],
    }
)
_STACKS = pd.DataFrame({"who": ["A", "A", "B", "B"], "what": ["x", "y", "x", "y"], "v": [0.2, 0.8, 0.5, 0.5]})
SPECS = {
    "line": ChartSpec("line", _YEARS, "year", "rate", "Lines <by> name", series="name", highlight="flag"),
    "bar": ChartSpec("bar", _BARS, "name", "share", "Bars", highlight="flag", note="A note."),
    "barh": ChartSpec("barh", _BARS, "name", "count", "Horizontal bars", highlight="flag"),
    "stacked_barh": ChartSpec("stacked_barh", _STACKS, "who", "v", "Stacks", series="what"),
    "small_multiples": ChartSpec("small_multiples", _YEARS, "year", "rate", "Panels", facet="name", highlight="flag"),
    "scatter": ChartSpec("scatter", _YEARS, "year", "rate", "Points", series="name", highlight="flag"),
}


@pytest.mark.parametrize("kind", list(SPECS))
def test_render_figure_each_kind(kind: str) -> None:
    spec = SPECS[kind]
    assert spec.kind == kind
    fig = str(render_figure(spec, id_prefix="c1"))
    parsed = parse(fig)
    (figure,) = parsed.root.find_all("figure")
    assert figure.attrs["id"] == "c1" and "data-vega" in figure.attrs
    (script,) = [s for s in figure.find_all("script") if s.attrs.get("class") == "vega-spec"]
    vl = json.loads(script.text())
    # the chart's own data, in order: what "Download CSV" writes (NaN/NA become empty)
    assert vl["usermeta"]["columns"] == list(spec.data.columns)
    assert len(vl["data"]["values"]) == len(spec.data)
    assert "<b>" not in fig.split("vega-spec")[1].split("</script>")[0]  # no markup can close the script early
    # a static SVG for readers without JavaScript
    assert "<noscript>" in fig and "<svg" in fig.split("<noscript>")[1]
    assert str(render_figure(spec, id_prefix="c1")) == fig  # deterministic


def test_render_figure_caption_and_table() -> None:
    fig = render_figure(SPECS["bar"], id_prefix="f", caption="More.")
    parsed = parse(str(fig))
    figure = parsed.root.find_all("figure")[0]
    assert figure.find_all("figcaption")[0].text() == "Bars A note. More. Download CSV"
    rows = [[td.text() for td in tr.find_all("td")] for tr in figure.find_all("tr")[1:]]
    assert rows == [["Alpha", "50.0%", "5", "yes"], ["Beta & co", "30.0%", "-2", "no"], ["Gamma", "—", "—", "no"]]


def test_flat_line_becomes_a_sentence() -> None:
    flat = pd.DataFrame({"year": [2010, 2011, 2012], "rank": [1, 1, 1]})
    out = str(render_figure(ChartSpec("line", flat, "year", "rank", "Rank of A", y_label="rank")))
    assert "<figure" not in out
    assert "Rank of A: rank stayed at 1 from 2010 to 2012" in out


def test_render_figure_edge_cases() -> None:
    empty = str(render_figure(ChartSpec("line", _YEARS.head(0), "year", "rate", "Nothing")))
    assert "No data to show" in empty
    one = str(render_figure(ChartSpec("line", _YEARS.head(1), "year", "rate", "One year")))
    assert "data-vega" in one
    with pytest.raises(ValueError, match=r"chart 'Bad': every role must name a column of its data; allowed: year"):
        render_figure(ChartSpec("line", _YEARS, "year", "nope", "Bad"))


def test_render_figure_keeps_non_latin_text() -> None:
    spec = ChartSpec("barh", pd.DataFrame({"n": ["東京 police", "Zürich"], "v": [1, 2]}), "n", "v", "東京")
    fig = str(render_figure(spec))
    assert "東京 police" in fig and "Zürich" in fig


def test_tiny_dataset_report_still_complete(tmp_path: Path, tiny_con: duckdb.DuckDBPyConnection) -> None:
    """Three cities over three years: too short for some analyses, which say so instead of failing."""
    report = build(tiny_con, tmp_path / "tiny.html")
    sections = [n.attrs["id"] for n in report.root.find_all("section")]
    assert [s for s in sections if s in SECTION_ORDER] == SECTION_ORDER
    partial = report.root.by_id("partial-years-table")
    assert [td.text() for td in partial.find_all("td")] == ["City C", "C", "1", "2012 (6)"]
    text = report.root.by_id("limitations").text()
    assert "Every year of this dataset (2010–2012) uses the legacy definition" in text
    assert "No jurisdiction has the 5 or more fully reported years" in report.root.by_id("long-run-trends").text()


def test_static_svg_fallback_is_opt_in(tmp_path: Path, tiny_con: duckdb.DuckDBPyConnection) -> None:
    """By default a reader without JavaScript gets each chart's data table; --static-svg adds a picture."""
    plain, pictured = tmp_path / "plain.html", tmp_path / "svg.html"
    build_report(tiny_con, plain, models=False)
    build_report(tiny_con, pictured, models=False, static_svg=True)
    text, with_svg = plain.read_text(encoding="utf-8"), pictured.read_text(encoding="utf-8")
    n_figures = text.count("<figure")
    assert n_figures == with_svg.count("<figure") > 0
    assert 'class="static-chart"' not in text
    assert text.count("This chart is drawn with JavaScript, which is off") == n_figures
    noscripts = with_svg.split("<noscript>")[1:]
    assert sum("<svg" in n.split("</noscript>")[0] for n in noscripts) == with_svg.count('class="static-chart"') > 0
