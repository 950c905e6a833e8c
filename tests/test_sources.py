"""Adapters on the real shared files: row counts and totals match an independent read with csv."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from crimelens import sources
from crimelens.errors import ConfigError, SourceError

EXPECTED_ROWS = {"ucr-marshall": 2829, "fbi-estimates": 2116, "marshall-states": 1683}


def _num(v: str) -> int | None:
    return None if v in ("", "NA") else int(v)


@pytest.mark.parametrize("fmt", sorted(EXPECTED_ROWS))
def test_real_file_rows_and_detection(fmt: str, real_file: Callable[[str], Path]) -> None:
    path = real_file(fmt)
    with path.open(newline="") as fh:
        n_csv = sum(1 for _ in csv.DictReader(fh))
    assert n_csv == EXPECTED_ROWS[fmt]
    assert sources.detect_format(path) == fmt
    parsed = sources.read(path)
    assert parsed.format == fmt
    assert parsed.rows_read == n_csv
    assert len(parsed.rows) == n_csv
    assert not parsed.errors


def test_marshall_totals_match_csv(real_file: Callable[[str], Path]) -> None:
    path = real_file("ucr-marshall")
    parsed = sources.read(path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for src, dst in [("homs_sum", "homicide"), ("rape_sum", "rape"), ("rob_sum", "robbery"),
                     ("agg_ass_sum", "aggravated_assault"), ("violent_crime", "violent_crime")]:  # fmt: skip
        expected = sum(v for r in rows if (v := _num(r[src])) is not None)
        missing = sum(1 for r in rows if _num(r[src]) is None)
        assert int(parsed.rows[dst].sum()) == expected
        assert int(parsed.rows[dst].isna().sum()) == missing  # missing stays missing, never zero
    # 1-11 months: a partial year; 0 months with counts given: months not stated (kept as an annual figure)
    partial = sum(1 for r in rows if r["months_reported"] not in ("NA", "0") and int(r["months_reported"]) < 12)
    assert len([i for i in parsed.warnings if i.code == "partial_year"]) == partial
    counts = ("homs_sum", "rape_sum", "rob_sum", "agg_ass_sum", "violent_crime")
    unstated = sum(1 for r in rows if r["months_reported"] == "0" and any(_num(r[c]) is not None for c in counts))
    assert len([i for i in parsed.warnings if i.code == "months_not_stated"]) == unstated > 0
    # the "National" rows become the nation; agencies keep their ORI
    assert set(parsed.jurisdictions.query("kind == 'nation'").jurisdiction_id) == {"US"}
    assert parsed.jurisdictions.set_index("jurisdiction_id").loc["ILCPD00", "name"] == "Chicago"
    # rape definition: revised from 2013
    defs = parsed.rows.groupby("rape_definition")["year"].agg(["min", "max"])
    assert defs.loc["legacy", "max"] == 2012 and defs.loc["revised", "min"] == 2013


def test_fbi_rape_definitions_and_mismatch_warnings(real_file: Callable[[str], Path]) -> None:
    path = real_file("fbi-estimates")
    parsed = sources.read(path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    mismatches, legacy_totals = 0, 0
    for r in rows:
        rape = _num(r["rape_revised"]) if _num(r["rape_revised"]) is not None else _num(r["rape_legacy"])
        parts = [_num(r["homicide"]), rape, _num(r["robbery"]), _num(r["aggravated_assault"])]
        if all(p is not None for p in parts) and sum(p for p in parts if p is not None) != _num(r["violent_crime"]):
            mismatches += 1
            legacy = [_num(r["homicide"]), _num(r["rape_legacy"]), _num(r["robbery"]), _num(r["aggravated_assault"])]
            if all(p is not None for p in legacy) and sum(p for p in legacy if p is not None) == _num(
                r["violent_crime"]
            ):
                legacy_totals += 1  # the total was built with the legacy rape count
    found = [i for i in parsed.warnings if i.code == "violent_sum_mismatch"]
    explained = [i for i in parsed.warnings if i.code == "violent_total_legacy_rape"]
    assert len(explained) == legacy_totals > 0
    assert len(found) == mismatches - legacy_totals > 0
    # the source total is kept, not replaced by the sum
    line = found[0].line
    kept = parsed.rows.set_index("line").loc[line, "violent_crime"]
    assert kept == _num(rows[line - 2]["violent_crime"])
    revised = parsed.rows[parsed.rows.rape_definition == "revised"]
    assert revised.year.min() == 2013
    assert revised[revised.year == 2013].rape_legacy.notna().all()  # both definitions published in 2013


def test_marshall_states_whole_us_file_maps_to_nation(real_data: Path) -> None:
    path = real_data / "marshall_ucr_state_rates_1985_2017" / "crime_rates_1985_2017_ucr_us_whole.csv"
    parsed = sources.read(path)
    assert set(parsed.rows.jurisdiction_id) == {"US"}
    assert len(parsed.rows) == 33


def test_unknown_format_and_mapping_misuse(real_file: Callable[[str], Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown format 'nope'; allowed: ucr-marshall"):
        sources.read(real_file("ucr-marshall"), "nope")
    with pytest.raises(ConfigError, match="needs a mapping file"):
        sources.read(real_file("ucr-marshall"), "mapped-csv")
    with pytest.raises(SourceError, match="file not found"):
        sources.read(tmp_path / "absent.csv", "ucr-marshall")
    with pytest.raises(SourceError, match="is a folder"):
        sources.read(tmp_path, "ucr-marshall")


def test_unknown_states_are_rejected_with_their_line(real_file: Callable[[str], Path], tmp_path: Path) -> None:
    for fmt, old, new, column in [
        ("fbi-estimates", '1979,"AK","Alaska"', '1979,"ZZ","Alaska"', "state_abbr"),
        ("marshall-states", '1985,"Alabama"', '1985,"Atlantis"', "state"),
    ]:
        text = real_file(fmt).read_text()
        assert old in text
        bad = tmp_path / f"{fmt}.csv"
        bad.write_text(text.replace(old, new, 1))
        parsed = sources.read(bad, fmt)
        assert [(e.line, e.column, e.code) for e in parsed.errors] == [
            (3 if fmt == "fbi-estimates" else 2, column, "unknown_state")
        ]


def test_rows_rejected_before_their_checks_finish_are_counted(real_file: Callable[[str], Path], tmp_path: Path) -> None:
    """A row dropped early (unknown state) counts as rejected, like one that fails a value check."""
    text = real_file("fbi-estimates").read_text()
    bad = tmp_path / "two_bad.csv"
    text = text.replace('1979,"AK","Alaska"', '1979,"ZZ","Alaska"', 1)  # line 3: dropped before its checks
    bad.write_text(text.replace(",15578,496,", ",15578,-496,", 1))  # line 4: fails a value check
    parsed = sources.read(bad, "fbi-estimates")
    assert len(parsed.errors) == 2
    assert parsed.rejected_lines == {3, 4} == {e.line for e in parsed.errors}
    assert len(parsed.rejected_lines) == 2 and len(parsed.rows) == 2116 - 2
