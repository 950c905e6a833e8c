"""The report in a real headless Chromium: served over HTTP, it renders, logs no error, fetches nothing else.

Opt-in with the ``browser`` marker (``pytest -m browser``); skipped when /usr/bin/chromium is absent
(``make test`` installs it). Playwright drives the system Chromium; it never downloads a browser.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pytest

from crimelens.report import build_report

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _js_str(value: Any) -> str:
    """A JSON value as JavaScript's String() writes it (the page builds the CSV in JavaScript)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: Marks that carry tooltips (bars, points, shapes), as Vega's SVG renderer labels them.
_TIPPED = "[aria-roledescription=bar], [aria-roledescription=circle], [aria-roledescription=point]"


def _hover(page: Any, mark: Any) -> None:
    """Move the mouse onto a chart mark, as a reader would (Vega shows tooltips on pointer moves)."""
    box = mark.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y, steps=3)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean (requests are checked through the browser instead)."""


@contextlib.contextmanager
def _serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 (random port); yield the URL of its report.html."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="report-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def fbi_2019_violent(fbi_con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The FBI's national 2019 estimates of the violent offences, by a plain query on the warehouse."""
    row = fbi_con.execute(
        "SELECT homicide, rape, robbery, aggravated_assault FROM jurisdiction_year "
        "WHERE source = 'fbi-estimates' AND jurisdiction_id = 'US' AND year = 2019"
    ).fetchone()
    assert row is not None
    return dict(zip(("Homicide", "Rape", "Robbery", "Aggravated assault"), map(int, row), strict=True))


@contextlib.contextmanager
def _open_page(url: str, *, width: int) -> Iterator[tuple[Any, list[str], list[str]]]:
    """Debian Chromium on ``url`` (a report served from 127.0.0.1), every request off this machine aborted.

    Yields the page, the list of requests that tried to leave the machine and the list of console errors, page
    errors and failed requests; the caller asserts both are empty once it is done.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Chromium (make test installs it) to run browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    outside: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if urlsplit(r.request.url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            response = page.goto(url, wait_until="load")
            assert response is not None and response.status == 200
            yield page, outside, errors
        finally:
            browser.close()


@pytest.fixture
def served_report(fbi_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> Iterator[str]:
    """The report on the FBI estimates, served from its folder on 127.0.0.1 (random port); yields its URL."""
    site = tmp_path / "site"
    site.mkdir()
    build_report(fbi_con, site / "report.html")
    with _serve(site) as url:
        yield url


def test_report_renders_offline_in_chromium(served_report: str, fbi_2019_violent: dict[str, int]) -> None:
    with _open_page(served_report, width=1200) as (page, outside, errors):
        heading = page.locator("#findings-heading")
        assert heading.is_visible() and heading.inner_text() == "Key findings"
        assert page.locator("#findings-list > li").count() >= 5
        page.wait_for_selector("html.charts-ready", timeout=60_000)
        assert page.locator("figure.vega-failed").count() == 0
        n_svg = page.locator("figure[data-vega] .vega-chart svg").count()
        assert n_svg == page.locator("figure[data-vega]").count() > 0
        # the charts really draw: the first one has a laid-out, non-empty box
        box = page.locator("figure[data-vega] .vega-chart svg").first.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        # hovering a mark shows its exact figures in a tooltip
        first = page.locator("figure[data-vega]").first
        first.scroll_into_view_if_needed()
        _hover(page, first.locator(_TIPPED).first)
        tip = page.locator("#vg-tooltip-element")
        tip.wait_for(state="visible", timeout=5_000)
        assert tip.inner_text().strip()
        # "Download CSV" writes the chart's own data: every row and column of its spec, in order
        with page.expect_download() as info:
            first.locator("button.csv-download").click()
        csv_text = Path(info.value.path()).read_text(encoding="utf-8")
        spec = json.loads(first.locator("script.vega-spec").text_content() or "{}")
        got = list(csv.reader(io.StringIO(csv_text)))
        cols = spec["usermeta"]["columns"]
        assert got[0] == cols
        expected = [["" if r.get(c) is None else _js_str(r[c]) for c in cols] for r in spec["data"]["values"]]
        assert got[1:] == expected
        # ... and that data is the result's table: the 2019 counts of the violent offences, here from a plain
        # query on the warehouse (not through crimelens' analyses)
        assert spec["title"]["text"] == "Violent offences recorded, 2019" and cols[:2] == ["label", "count"]
        assert {row[0]: int(row[1]) for row in got[1:]} == fbi_2019_violent
        # phone width: nothing spills sideways
        page.set_viewport_size({"width": 375, "height": 800})
        page.wait_for_timeout(500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        # table-of-contents anchors lead to their sections
        page.locator("nav.toc a[href='#limitations']").click()
        assert page.locator("#limitations-heading").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        # the US state choropleth (the FBI estimates are states): drawn, with a state's figures on hover
        page.set_viewport_size({"width": 1200, "height": 900})
        state_map = page.locator("#state-map figure.map-figure")
        state_map.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        states = state_map.locator("[aria-roledescription=geoshape]")
        assert states.count() == 51
        _hover(page, states.nth(26))  # MT in postal-code order: large and northern, so the tooltip stays on the map
        tip = page.locator("#vg-tooltip-element")
        tip.wait_for(state="visible", timeout=5_000)
        text = tip.inner_text()
        assert "Montana" in text and "rate per 100k" in text and "partial year" in text, text
        page.locator("#state-map").screenshot(path=str(ARTIFACTS / "report_state_map.png"))
    assert outside == [], f"the report asked for outside resources: {outside}"
    assert errors == [], f"console errors, page errors or failed requests: {errors}"
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000
    assert (ARTIFACTS / "report_state_map.png").stat().st_size > 30_000


@pytest.fixture
def served_incident_report(tmp_path: Path) -> Iterator[str]:
    """A report on a small SIMULATED city (incidents + areas with population), served from 127.0.0.1."""
    from crimelens import warehouse
    from crimelens.simulate import simulate
    from crimelens.warehouse import load_areas

    csv, areas = tmp_path / "city.csv", tmp_path / "areas.geojson"
    simulate(20_000, 1, 7, csv, areas_out=areas)
    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.load_incidents(con, csv, "chicago", source="simulated-city", simulated=True)
    load_areas(
        con, areas, area_set="sim-areas", area_kind="community_area", id_property="area_id", name_property="name",
        population_property="population",
    )  # fmt: skip
    site = tmp_path / "site"
    site.mkdir()
    build_report(con, site / "report.html")
    con.close()
    with _serve(site) as url:
        yield url


def test_incident_maps_render_offline_in_chromium(served_incident_report: str) -> None:
    with _open_page(served_incident_report, width=1200) as (page, outside, errors):
        heading = page.locator("#incidents-simulated-city-heading")
        assert heading.is_visible() and "SIMULATED" in heading.inner_text()
        page.wait_for_selector("html.charts-ready", timeout=60_000)
        maps = page.locator("figure.map-figure .vega-chart svg")
        # hour × weekday, area choropleth, density, Gi* and persistent hot spots
        assert maps.count() >= 5
        for i in range(maps.count()):
            box = maps.nth(i).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150, i
        # every map of simulated data says so on the map itself
        assert page.locator("figure.map-figure .vega-chart svg", has_text="SIMULATED DATA").count() >= 4
        # outlines of the loaded areas are drawn, and the top cells carry place names
        gi = page.locator("figure.map-figure", has_text="Hot (red)").first
        assert "Outlines: sim-areas" in gi.inner_text()
        gi.scroll_into_view_if_needed()
        _hover(page, gi.locator("[aria-roledescription=geoshape]").nth(3))
        page.locator("#vg-tooltip-element").wait_for(state="visible", timeout=5_000)
        assert "hotspot" in page.locator("#vg-tooltip-element").inner_text()
        # findings from the incident section head the report (only incidents were loaded)
        assert page.locator("#findings-list > li", has_text="simulated-city (simulated)").count() >= 2
        ARTIFACTS.mkdir(exist_ok=True)
        gi.screenshot(path=str(ARTIFACTS / "report_incidents_gi_tooltip.png"))
        page.locator("#incidents-simulated-city").screenshot(path=str(ARTIFACTS / "report_incidents.png"))
    assert outside == [], f"the report asked for outside resources: {outside}"
    assert errors == [], f"console or page errors: {errors}"
    assert (ARTIFACTS / "report_incidents.png").stat().st_size > 50_000


@pytest.fixture
def served_toronto_report(real_data: Path, tmp_path: Path) -> Iterator[str]:
    """A report on the REAL Toronto MCI incidents (2014-2019), served from 127.0.0.1."""
    from crimelens import warehouse

    con = warehouse.connect(tmp_path / "w.duckdb")
    warehouse.load_incidents(con, real_data / "toronto_mci_2014_2019" / "toronto_mci_2014_2019.csv.gz", "toronto-mci")
    site = tmp_path / "site"
    site.mkdir()
    build_report(con, site / "report.html", models=False)
    con.close()
    with _serve(site) as url:
        yield url


def test_toronto_report_maps_with_place_names_and_tooltips(served_toronto_report: str) -> None:
    with _open_page(served_toronto_report, width=1100) as (page, outside, errors):
        page.wait_for_selector("html.charts-ready", timeout=60_000)
        assert page.locator("figure.vega-failed").count() == 0
        persistent = page.locator("figure.map-figure", has_text="Persistent hot spots").first
        text = persistent.inner_text()
        # no Toronto boundary file is loaded: the data's footprint is outlined instead, and places are named
        # from the neighbourhoods the incidents carry
        assert "footprint" in text
        assert "Moss Park" in text or "Bay Street Corridor" in text or "Church-Yonge Corridor" in text, text
        persistent.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        stable = persistent.locator("[aria-roledescription=geoshape]")
        assert stable.count() > 50
        _hover(page, stable.nth(1))  # nth(0) is the footprint; then the stable cells, busiest first
        tip = page.locator("#vg-tooltip-element")
        tip.wait_for(state="visible", timeout=5_000)
        tip_text = tip.inner_text()
        assert "status" in tip_text and "incidents" in tip_text, tip_text
        assert "null" not in tip_text
        ARTIFACTS.mkdir(exist_ok=True)
        persistent.screenshot(path=str(ARTIFACTS / "report_toronto.png"))
    assert outside == [], f"the report asked for outside resources: {outside}"
    assert errors == [], f"console or page errors: {errors}"
    assert (ARTIFACTS / "report_toronto.png").stat().st_size > 30_000


@pytest.fixture
def served_comparison_report(marshall_con: duckdb.DuckDBPyConnection, real_file, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The brief's comparison on REAL data (Marshall cities, the FBI national series as reference), served."""
    from crimelens import sources, warehouse
    from crimelens.report import Focus

    warehouse.load_parsed(marshall_con, sources.read(real_file("fbi-estimates")))
    site = tmp_path / "site"
    site.mkdir()
    focus = Focus(
        offence="robbery", jurisdiction="Chicago", compare=("New York City", "Los Angeles", "Chicago"), start=1990,
        end=2015,
    )  # fmt: skip
    build_report(marshall_con, site / "report.html", "ucr-marshall", models=False, forecast=False, focus=focus)
    with _serve(site) as url:
        yield url


def test_comparison_report_renders_in_chromium(served_comparison_report: str) -> None:
    with _open_page(served_comparison_report, width=1100) as (page, outside, errors):
        page.wait_for_selector("html.charts-ready", timeout=60_000)
        assert page.locator("figure.vega-failed").count() == 0
        section = page.locator("#comparison")
        text = section.inner_text()
        assert text.index("New York City") < text.index("Los Angeles") < text.index("Chicago")
        charts = section.locator("figure[data-vega] .vega-chart svg")
        assert charts.count() >= 1
        first = section.locator("figure[data-vega]").first
        first.scroll_into_view_if_needed()
        marks = first.locator(_TIPPED)
        assert marks.count() > 0
        _hover(page, marks.first)
        page.locator("#vg-tooltip-element").wait_for(state="visible", timeout=5_000)
        ARTIFACTS.mkdir(exist_ok=True)
        section.screenshot(path=str(ARTIFACTS / "report_comparison.png"))
    assert outside == [], f"the report asked for outside resources: {outside}"
    assert errors == [], f"console or page errors: {errors}"
    assert (ARTIFACTS / "report_comparison.png").stat().st_size > 30_000
