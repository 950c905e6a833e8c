"""A corpus of broken variants of the real files: each gives one clear line naming file, line and column,
exits 1, and leaves the warehouse exactly as it was."""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens import warehouse
from crimelens.cli import app

runner = CliRunner()

TABLES = ("jurisdiction_year", "jurisdictions", "loads", "load_issues", "schema_migrations")


def snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        con.close()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _replace_field(text_line: str, index: int, value: str) -> str:
    import csv
    import io

    fields = next(csv.reader([text_line.rstrip("\r\n")]))
    fields[index] = value
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow(fields)
    return buf.getvalue()


# Each variant: (name, builder(src_lines, src_path, out_path) -> None, expected line, expected column regex)
Builder = Callable[[list[str], Path, Path], None]


def _write(out: Path, lines: list[str]) -> None:
    out.write_text("".join(lines), encoding="utf-8")


def truncated_mid_row(lines: list[str], src: Path, out: Path) -> None:
    _write(out, lines[:100])
    with out.open("a", encoding="utf-8") as fh:
        fh.write(lines[100][:25])  # cut inside line 101, after the first fields


def truncated_in_quotes(lines: list[str], src: Path, out: Path) -> None:
    _write(out, lines[:50])
    with out.open("a", encoding="utf-8") as fh:
        fh.write(lines[50][:4])  # '"NM0' : the file ends inside a quoted value on line 51


def semicolons(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [ln.replace(",", ";") for ln in lines])


def latin1(lines: list[str], src: Path, out: Path) -> None:
    body = "".join([*lines[:10], _replace_field(lines[10], 2, "Baltimöre"), *lines[11:]])
    out.write_bytes(body.encode("latin-1"))


def missing_column(lines: list[str], src: Path, out: Path) -> None:
    import csv
    import io

    rows = list(csv.reader(io.StringIO("".join(lines))))
    drop = rows[0].index("rob_sum")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow(r[:drop] + r[drop + 1 :])
    out.write_text(buf.getvalue(), encoding="utf-8")


def text_in_count(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:200], _replace_field(lines[200], 6, "many"), *lines[201:]])


def negative_count(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:300], _replace_field(lines[300], 4, "-3"), *lines[301:]])


def duplicate_key(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:400], lines[120], *lines[400:]])


def empty_file(lines: list[str], src: Path, out: Path) -> None:
    out.write_bytes(b"")


def header_only(lines: list[str], src: Path, out: Path) -> None:
    _write(out, lines[:1])


def random_bytes(lines: list[str], src: Path, out: Path) -> None:
    out.write_bytes(random.Random(20151).randbytes(10 * 1024 * 1024))


def year_20l5(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:2800], _replace_field(lines[2800], 1, "20l5"), *lines[2801:]])


def impossible_year(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:77], _replace_field(lines[77], 1, "2150"), *lines[78:]])


def zero_population(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:500], _replace_field(lines[500], 3, "0"), *lines[501:]])


def months_13(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:600], _replace_field(lines[600], 9, "13"), *lines[601:]])


def extra_field(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:700], lines[700].rstrip("\n") + ",42\n", *lines[701:]])


def gzipped(lines: list[str], src: Path, out: Path) -> None:
    out.write_bytes(gzip.compress("".join(lines).encode("utf-8"), mtime=0))


def duplicate_header(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [lines[0].replace('"rape_sum"', '"homs_sum"'), *lines[1:]])


def float_count(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:900], _replace_field(lines[900], 7, "12.5"), *lines[901:]])


def empty_year(lines: list[str], src: Path, out: Path) -> None:
    _write(out, [*lines[:1000], _replace_field(lines[1000], 1, ""), *lines[1001:]])


# name, builder, expected line (None: checked by pattern only), column pattern
VARIANTS: list[tuple[str, Builder, int, str]] = [
    ("truncated_mid_row", truncated_mid_row, 101, r"column \d+"),
    ("truncated_in_quotes", truncated_in_quotes, 51, r"column 1"),
    ("wrong_delimiter", semicolons, 1, r"column 1"),
    ("latin1_encoding", latin1, 11, r"column \d+"),
    ("missing_column", missing_column, 1, r"column rob_sum"),
    ("text_in_count", text_in_count, 201, r"column rob_sum"),
    ("negative_count", negative_count, 301, r"column homs_sum"),
    ("duplicate_key", duplicate_key, 401, r"column department_name"),
    ("empty_file", empty_file, 1, r"column 1"),
    ("header_only", header_only, 2, r"column 1"),
    ("random_10mb", random_bytes, 1, r"column \d+"),
    ("year_20l5", year_20l5, 2801, r"column year"),
    ("impossible_year", impossible_year, 78, r"column year"),
    ("zero_population", zero_population, 501, r"column total_pop"),
    ("months_13", months_13, 601, r"column months_reported"),
    ("extra_field", extra_field, 701, r"column \d+"),
    ("gzipped_csv", gzipped, 1, r"column \d+"),
    ("duplicate_header", duplicate_header, 1, r"column \d+"),
    ("fractional_count", float_count, 901, r"column agg_ass_sum"),
    ("empty_year", empty_year, 1001, r"column year"),
]


@pytest.fixture
def loaded_db(tmp_path: Path, real_file: Callable[[str], Path]) -> Path:
    """A warehouse already holding the FBI state estimates: the 'earlier data' that must survive."""
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(real_file("fbi-estimates")), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


def test_corpus_has_at_least_15_broken_variants() -> None:
    assert len(VARIANTS) >= 15


@pytest.mark.parametrize(("name", "build", "line", "column"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_broken_variant_is_rejected_cleanly(
    name: str,
    build: Builder,
    line: int,
    column: str,
    tmp_path: Path,
    loaded_db: Path,
    real_file: Callable[[str], Path],
) -> None:
    src = real_file("ucr-marshall")
    bad = tmp_path / f"{name}.csv"
    build(_lines(src), src, bad)
    before = snapshot(loaded_db)
    result = runner.invoke(app, ["ingest", str(bad), "--format", "ucr-marshall", "--db", str(loaded_db)])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("Error: "), message
    assert bad.name in message, message
    assert f"line {line}," in message or f"line {line}:" in message, message
    assert re.search(column, message), message
    assert "Traceback" not in result.output
    assert snapshot(loaded_db) == before


def test_bad_variant_without_format_also_fails_cleanly(
    tmp_path: Path, loaded_db: Path, real_file: Callable[[str], Path]
) -> None:
    src = real_file("ucr-marshall")
    bad = tmp_path / "missing.csv"
    missing_column(_lines(src), src, bad)
    before = snapshot(loaded_db)
    result = runner.invoke(app, ["ingest", str(bad), "--db", str(loaded_db)])
    assert result.exit_code == 1
    assert "missing.csv, line 1, column rob_sum: required column missing" in result.stderr
    assert snapshot(loaded_db) == before


@pytest.mark.parametrize("variant", ["bom", "crlf"])
def test_harmless_variants_load_identically(variant: str, tmp_path: Path, real_file: Callable[[str], Path]) -> None:
    """A UTF-8 byte-order mark or Windows line endings are not errors: the same rows load."""
    src = real_file("ucr-marshall")
    data = src.read_bytes()
    changed = b"\xef\xbb\xbf" + data if variant == "bom" else data.replace(b"\n", b"\r\n")
    f = tmp_path / f"{variant}.csv"
    f.write_bytes(changed)
    for path, db in ((src, tmp_path / "a.duckdb"), (f, tmp_path / "b.duckdb")):
        result = runner.invoke(app, ["ingest", str(path), "--db", str(db)])
        assert result.exit_code == 0, result.output
    a, b = snapshot(tmp_path / "a.duckdb"), snapshot(tmp_path / "b.duckdb")
    assert a["jurisdiction_year"] == b["jurisdiction_year"]
    assert len(b["jurisdiction_year"]) == 2829


def test_errors_over_threshold_load_nothing_and_under_threshold_skip_rows(
    tmp_path: Path, loaded_db: Path, real_file: Callable[[str], Path]
) -> None:
    src = real_file("ucr-marshall")
    lines = _lines(src)
    bad = tmp_path / "two_bad.csv"
    _write(
        bad,
        [
            *lines[:10],
            _replace_field(lines[10], 4, "x"),
            *lines[11:20],
            _replace_field(lines[20], 5, "-1"),
            *lines[21:],
        ],
    )
    before = snapshot(loaded_db)
    args = ["ingest", str(bad), "--db", str(loaded_db), "--errors-out", str(tmp_path / "issues.csv")]
    result = runner.invoke(app, [*args, "--max-errors", "1"])
    assert result.exit_code == 1
    assert "and 1 more error" in result.stderr
    assert snapshot(loaded_db) == before
    issues = (tmp_path / "issues.csv").read_text().splitlines()
    assert any("line" not in x and ",11,homs_sum,error,not_a_number," in x for x in issues)
    result = runner.invoke(app, [*args, "--max-errors", "2"])
    assert result.exit_code == 0, result.output
    con = warehouse.connect(loaded_db)
    n, rejected = con.execute(
        "SELECT rows_loaded, rows_rejected FROM loads WHERE source = 'ucr-marshall'"
    ).fetchone() or (0, 0)
    con.close()
    assert (n, rejected) == (2827, 2)


def test_encoding_option_reads_latin1(tmp_path: Path, real_file: Callable[[str], Path]) -> None:
    src = real_file("ucr-marshall")
    bad = tmp_path / "latin.csv"
    latin1(_lines(src), src, bad)
    db = tmp_path / "l.duckdb"
    result = runner.invoke(app, ["ingest", str(bad), "--db", str(db), "--encoding", "latin-1"])
    assert result.exit_code == 0, result.output
    con = warehouse.connect(db)
    names = {r[0] for r in con.execute("SELECT name FROM jurisdictions").fetchall()}
    con.close()
    assert "Baltimöre" in names


def test_wrong_delimiter_and_negative_count_messages_say_what_to_do(
    tmp_path: Path, real_file: Callable[[str], Path]
) -> None:
    src = real_file("ucr-marshall")
    for build, expected in [
        (semicolons, "the header has no commas; the file seems to be separated by semicolons"),
        (negative_count, "column homs_sum: expected a count (a whole number ≥ 0), got '-3'"),
    ]:
        bad = tmp_path / f"{build.__name__}.csv"
        build(_lines(src), src, bad)
        result = runner.invoke(app, ["ingest", str(bad), "--db", str(tmp_path / "w.duckdb")])
        assert result.exit_code == 1
        assert expected in result.stderr, result.stderr
