"""Compare named jurisdictions side by side: every offence as counts and rates, in the order asked, each one's rank
among its peers, partial years flagged, and a reference series (the nation, or a state) from another dataset.

The Crime Data Explorer's first view sets an agency beside its state and the nation; a warehouse often holds the
agencies in one dataset (the Marshall Project's 68 cities) and the nation in another (the FBI estimates), so the
reference may come from any loaded jurisdiction-year dataset (``reference="fbi-estimates:US"``). Every filter
(source, offences, years) runs in DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from crimelens.analysis.inference import poisson_rate_interval
from crimelens.analysis.jurisdictions.panel import check_offence, offences_present, panel
from crimelens.analysis.jurisdictions.ranking import find_jurisdiction, find_jurisdictions, rejoin_names
from crimelens.analysis.jurisdictions.statistics import RATE_BASE, offence_frame, period_label
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import DataError
from crimelens.schema import OFFENCE_LABELS
from crimelens.sources.states import NATION_ID
from crimelens.warehouse import list_sources, resolve_source

__all__ = ["JurisdictionComparison", "compare_jurisdictions", "parse_reference"]

#: Columns of :attr:`JurisdictionComparison.table` (one row per offence, jurisdiction and year).
TABLE_COLUMNS = [
    "offence", "label", "year", "jurisdiction_id", "name", "count", "population", "rate_per_100k",
    "months_reported", "partial", "rank_by_rate", "n_ranked",
]  # fmt: skip
#: Columns of :attr:`JurisdictionComparison.peers` (one row per offence and jurisdiction, over the whole span).
PEER_COLUMNS = [
    "offence", "label", "jurisdiction_id", "name", "count", "rate_per_100k", "rate_low", "rate_high", "rank_by_rate",
    "n_ranked", "years", "partial_years",
]  # fmt: skip
#: Columns of :attr:`JurisdictionComparison.reference`.
REFERENCE_COLUMNS = [
    "offence", "label", "year", "source", "jurisdiction_id", "name", "count", "population", "rate_per_100k", "partial",
]  # fmt: skip


@dataclass(frozen=True)
class JurisdictionComparison(Result):
    """Named jurisdictions side by side.

    ``table``: one row per offence, jurisdiction (in the order asked) and year (:data:`TABLE_COLUMNS`); ``rank_by_rate``
    is the jurisdiction's rank by rate that year among the ``n_ranked`` jurisdictions of its dataset with a rate
    (1 = highest; the nation is never a peer). ``peers``: the same over the whole span (:data:`PEER_COLUMNS`), the
    rate with its exact 95% Poisson interval. ``reference``: the reference series (:data:`REFERENCE_COLUMNS`), empty
    when none is loaded.
    """

    peers: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference: pd.DataFrame = field(default_factory=pd.DataFrame)

    def chart(self) -> ChartSpec:
        """Rates per 100,000: one panel per offence, one line per jurisdiction, and the reference as a line."""
        cols = ["label", "year", "name", "rate_per_100k", "partial"]
        data = self.table[cols]
        if not self.reference.empty:
            ref = self.reference.assign(name=self.reference["name"] + " (reference)")[cols]
            data = pd.concat([data, ref], ignore_index=True)
        data = data.dropna(subset=["rate_per_100k"]).reset_index(drop=True)
        n_offences = int(data["label"].nunique()) if not data.empty else 0
        return ChartSpec(
            kind="small_multiples" if n_offences > 1 else "line",
            data=data,
            x="year",
            y="rate_per_100k",
            title=self.title,
            series="name",
            facet="label" if n_offences > 1 else None,
            x_label="year",
            y_label="per 100,000 residents",
            highlight="partial",
            note="Highlighted points are years with fewer than 12 months reported."
            + (" The reference line is from another dataset." if not self.reference.empty else ""),
        )


def parse_reference(text: str) -> tuple[str, str]:
    """``'SOURCE'`` or ``'SOURCE:JURISDICTION'`` as (source, jurisdiction); the jurisdiction defaults to the nation."""
    if not isinstance(text, str) or not text.strip() or text.strip().startswith(":"):
        raise DataError(f"reference: expected SOURCE or SOURCE:JURISDICTION (e.g. fbi-estimates:US-IL), got {text!r}")
    src, _, jur = text.strip().partition(":")
    return src.strip(), (jur.strip() or NATION_ID)


def _check_offences(con: duckdb.DuckDBPyConnection, src: str, offences: Sequence[str] | None) -> list[str]:
    present = offences_present(con, src)
    if offences is None:
        return present
    if isinstance(offences, str) or not offences:
        raise DataError(f"offences: expected a list of one or more offences, got {offences!r}")
    chosen: list[str] = []
    for o in offences:
        check_offence(o)
        if o not in present:
            raise DataError(
                f"offence {o!r}: dataset {src!r} has no {o} counts; offences it holds: {', '.join(present)}"
            )
        if o not in chosen:
            chosen.append(o)
    return chosen


def _check_span(start: int | None, end: int | None) -> None:
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise DataError(f"{name}: expected a whole year such as 1990, got {value!r}")
    if start is not None and end is not None and start > end:
        raise DataError(f"period: expected start ≤ end, got start={start}, end={end}")


def _ranked(of: pd.DataFrame) -> pd.DataFrame:
    """Each non-national row with its rank by rate that year (ties share the best rank) and how many were ranked."""
    local = of[of["kind"] != "nation"].copy()
    by_year = local.groupby("year")["rate_per_100k"]
    local["rank_by_rate"] = by_year.rank(method="min", ascending=False).round().astype("Int64")
    local["n_ranked"] = by_year.transform("count").astype("int64")
    return local


def _span_ranks(local: pd.DataFrame) -> pd.DataFrame:
    """Per jurisdiction over the span: count, rate (sum of counts over sum of populations, years with both) and its
    rank among the jurisdictions with a rate."""
    both = local[local["count"].notna() & local["population"].notna()]
    agg = both.groupby(["jurisdiction_id", "name"], as_index=False).agg(
        count=("count", "sum"), pop=("population", "sum"), years=("year", "nunique"), partial_years=("partial", "sum")
    )
    agg["rate_per_100k"] = agg["count"] / agg["pop"] * RATE_BASE
    low, high = poisson_rate_interval(agg["count"].to_numpy(dtype=float), agg["pop"].to_numpy(dtype=float))
    agg["rate_low"], agg["rate_high"] = low * RATE_BASE, high * RATE_BASE
    agg["rank_by_rate"] = agg["rate_per_100k"].rank(method="min", ascending=False).round().astype("Int64")
    agg["n_ranked"] = int(agg["rate_per_100k"].notna().sum())
    agg["count"] = agg["count"].round().astype("Int64")
    agg["partial_years"] = agg["partial_years"].astype("int64")
    return agg


def _default_reference(con: duckdb.DuckDBPyConnection, src: str) -> tuple[str, str] | None:
    """The nation from another loaded dataset (the first, by name, that has a national row), else this one's."""
    rows = con.execute(
        "SELECT DISTINCT source FROM jurisdiction_year WHERE jurisdiction_id = ? ORDER BY source", [NATION_ID]
    ).fetchall()
    with_nation = [str(r[0]) for r in rows]
    others = [s for s in with_nation if s != src]
    if others:
        return others[0], NATION_ID
    return (src, NATION_ID) if src in with_nation else None


def _reference(
    con: duckdb.DuckDBPyConnection,
    ref: tuple[str, str],
    offences: list[str],
    start: int | None,
    end: int | None,
    asked: bool,
) -> tuple[pd.DataFrame, list[str]]:
    ref_src, ref_query = ref
    ref_src = resolve_source(con, ref_src)
    present = offences_present(con, ref_src)
    _, frame = panel(con, ref_src, offences=[o for o in offences if o in present], start=start, end=end)
    jid, name, _ = find_jurisdiction(frame, ref_query) if not frame.empty else (ref_query, ref_query, "")
    notes: list[str] = []
    missing = [o for o in offences if o not in present]
    if missing and asked and len(missing) == len(offences):
        raise DataError(
            f"reference {ref_src}:{ref_query}: dataset {ref_src!r} has no counts of "
            f"{', '.join(missing)}; offences it holds: {', '.join(present)}"
        )
    if missing:
        notes.append(f"the reference dataset {ref_src!r} has no {', '.join(missing)} counts: no reference line there")
    parts = []
    for o in offences:
        if o not in present:
            continue
        of = offence_frame(frame, o)
        of = of[(of["jurisdiction_id"] == jid) & of["count"].notna()]
        parts.append(of.assign(offence=o, label=OFFENCE_LABELS[o], source=ref_src, name=name))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=REFERENCE_COLUMNS)
    if not table.empty:
        table["count"] = table["count"].round().astype("Int64")
        table["population"] = table["population"].round().astype("Int64")
    return table.reindex(columns=REFERENCE_COLUMNS).reset_index(drop=True), notes


@records_caveats
def compare_jurisdictions(
    con: duckdb.DuckDBPyConnection,
    source: str | None = None,
    *,
    jurisdictions: Sequence[str],
    offences: Sequence[str] | None = None,
    start: int | None = None,
    end: int | None = None,
    reference: str | None = None,
    with_reference: bool = True,
) -> JurisdictionComparison:
    """Named jurisdictions side by side, each offence as counts and rates per 100,000, in the order asked.

    Parameters
    ----------
    con, source
        The warehouse and the jurisdiction-year dataset (default: the only one loaded).
    jurisdictions
        Names or ids (case-insensitive), kept in this order; unknown names raise :class:`DataError` listing the
        closest names.
    offences
        The offences to compare (default: every offence the dataset has counts of). An offence the dataset lacks
        raises :class:`DataError` listing the offences it holds.
    start, end
        First and last year (inclusive; None leaves that side open).
    reference
        ``SOURCE`` or ``SOURCE:JURISDICTION``: the series to draw as a reference line (the nation when no
        jurisdiction is given). Default: the nation from another loaded dataset, else this dataset's own national
        rows, else none (said in ``notes``). ``with_reference=False`` leaves it out.

    Returns
    -------
    JurisdictionComparison
        ``table`` year by year with each jurisdiction's rank among its peers that year, ``peers`` over the span,
        ``reference``. Rates are counts / population × 100,000 (annual figures, not annualised: a partial year's
        rate is short of a full year's and is flagged ``partial``). The span rank uses sum(counts) /
        sum(population) over the years with both, its interval the exact Poisson interval (Garwood 1936).

    References
    ----------
    FBI Crime Data Explorer, "Compare" view (agency, state and national rates side by side).
    The Marshall Project, "Crime in Context" (2016).
    """
    if isinstance(jurisdictions, str) or not jurisdictions:
        raise DataError(f"jurisdictions: expected a list of one or more names or ids, got {jurisdictions!r}")
    _check_span(start, end)
    src = resolve_source(con, source)
    chosen = _check_offences(con, src, offences)
    _, frame = panel(con, src, offences=chosen, start=start, end=end)
    if frame.empty:
        years = con.execute("SELECT min(year), max(year) FROM jurisdiction_year WHERE source = ?", [src]).fetchone()
        have = f"{years[0]}–{years[1]}" if years and years[0] is not None else "none"
        raise DataError(f"period: expected years within {have} (dataset {src!r}), got {start}–{end}")
    ids = find_jurisdictions(frame, rejoin_names(frame, jurisdictions))
    order = {j: i for i, j in enumerate(ids)}
    tables, peer_tables = [], []
    notes: list[str] = []
    for o in chosen:
        of = offence_frame(frame, o)
        ranked = _ranked(of)
        own = pd.concat([ranked[ranked["jurisdiction_id"].isin(ids)], of[of["jurisdiction_id"].isin(ids)]])
        own = own.drop_duplicates(["jurisdiction_id", "year"])  # the nation, when asked for, has no rank
        skipped = int(own["count"].isna().sum())
        if skipped:
            notes.append(f"{o}: {skipped} jurisdiction-year(s) without a count left out (never read as zero)")
        own = own[own["count"].notna()].assign(offence=o, label=OFFENCE_LABELS[o])
        tables.append(own)
        span = _span_ranks(ranked)
        peer_tables.append(span[span["jurisdiction_id"].isin(ids)].assign(offence=o, label=OFFENCE_LABELS[o]))
    table = pd.concat(tables, ignore_index=True)
    table = table.assign(_o=table["offence"].map(chosen.index), _j=table["jurisdiction_id"].map(order))
    table = table.sort_values(["_o", "_j", "year"])
    for col in ("count", "population", "months_reported", "rank_by_rate", "n_ranked"):
        table[col] = table[col].astype("Float64").round().astype("Int64")
    peers = pd.concat(peer_tables, ignore_index=True)
    peers = peers.assign(_o=peers["offence"].map(chosen.index), _j=peers["jurisdiction_id"].map(order))
    peers = peers.sort_values(["_o", "_j"])[PEER_COLUMNS].reset_index(drop=True)
    lo, hi = int(table["year"].min()), int(table["year"].max())
    partial = table[table["partial"]]
    if not partial.empty:
        shown = ", ".join(
            f"{n} {', '.join(str(y) for y in sorted(set(g['year'])))}" for n, g in partial.groupby("name", sort=False)
        )
        notes.append(f"years with fewer than 12 months reported (their counts and rates are short): {shown}")
    if "rape" in chosen or "violent_crime" in chosen:
        defs = set(frame.loc[frame["jurisdiction_id"].isin(ids), "rape_definition"].dropna())
        if {"legacy", "revised"} <= defs:
            notes.append(
                "rape counts follow the FBI's legacy definition before 2013 and the broader revised one after: rape "
                "and violent crime are not like-for-like across the change"
            )
    ref_pair = parse_reference(reference) if reference is not None else _default_reference(con, src)
    if not with_reference:
        ref_pair = None
    ref_table = pd.DataFrame(columns=REFERENCE_COLUMNS)
    if ref_pair is not None:
        ref_table, ref_notes = _reference(con, ref_pair, chosen, lo, hi, asked=reference is not None)
        notes.extend(ref_notes)
    elif with_reference:
        loaded = ", ".join(list_sources(con))
        notes.append(f"no national series is loaded to draw as a reference (datasets: {loaded})")
    names = ", ".join(dict.fromkeys(table["name"]))
    what = OFFENCE_LABELS[chosen[0]] if len(chosen) == 1 else f"{len(chosen)} offences"
    return JurisdictionComparison(
        title=f"{what}: {names}, {period_label(lo, hi)}",
        table=table[TABLE_COLUMNS].reset_index(drop=True),
        params={
            "source": src,
            "offences": chosen,
            "jurisdiction_ids": ids,
            "start": lo,
            "end": hi,
            "period": period_label(lo, hi),
            "reference": None if ref_pair is None else f"{ref_pair[0]}:{ref_pair[1]}",
            "rates": "per 100,000 residents; annual figures, not annualised (partial years are flagged)",
        },
        notes=tuple(notes),
        peers=peers,
        reference=ref_table,
    )
