"""The report's comparison section: named jurisdictions side by side (``crimelens report --compare ...``).

It renders one :class:`~crimelens.analysis.jurisdictions.comparison.JurisdictionComparison` (the same result
``crimelens compare`` prints): a sentence per offence on where each place stands among its peers, the chart (rates,
a panel per offence, the reference series as a line), the span table with ranks and intervals, and a year-by-year
table of rates and counts with partial years flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from crimelens.analysis.jurisdictions.comparison import compare_jurisdictions
from crimelens.report.blocks import Block, PageSection, Runner
from crimelens.report.tables import format_value, records, render_table

__all__ = ["comparison_section"]


def _wide(table: pd.DataFrame, reference: pd.DataFrame, ids: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Year by year: a rate and a count column per jurisdiction in the order asked, the reference, partial years."""
    names = dict(zip(table["jurisdiction_id"], table["name"], strict=False))
    wide = pd.DataFrame({"year": sorted(set(table["year"]))}).set_index("year")
    labels: dict[str, str] = {"year": "Year"}
    for jid in ids:
        part = table[table["jurisdiction_id"] == jid].set_index("year")
        if part.empty:
            continue
        wide[f"rate {jid}"] = part["rate_per_100k"]
        wide[f"count {jid}"] = part["count"]
        labels[f"rate {jid}"] = f"{names[jid]}: rate per 100,000"
        labels[f"count {jid}"] = f"{names[jid]}: count"
    if not reference.empty:
        ref = reference.set_index("year")
        wide["rate reference"] = ref["rate_per_100k"]
        labels["rate reference"] = f"{ref['name'].iloc[0]} ({ref['source'].iloc[0]}): rate per 100,000"
    wide["partial years"] = table[table["partial"]].groupby("year")["name"].agg(", ".join)
    wide["partial years"] = wide["partial years"].fillna("")
    labels["partial years"] = "Fewer than 12 months reported"
    return wide.reset_index(), labels


def comparison_section(
    run: Runner,
    jurisdictions: Sequence[str],
    *,
    offences: Sequence[str] | None,
    start: int | None,
    end: int | None,
    reference: str | None = None,
) -> PageSection:
    """The comparison of ``jurisdictions`` (in that order) on ``offences`` over ``start``–``end``."""
    section = PageSection(
        "comparison",
        "Comparison",
        intro=[
            "The places asked for, side by side in the order given: rates per 100,000 residents (counts beside "
            "them), each place's rank among all the jurisdictions of the dataset, and a reference series (the "
            "nation, or a state) from another loaded dataset where one is available. Rates are yearly figures, not "
            "annualised: a year with fewer than 12 months reported is short and is flagged."
        ],
    )
    out = run.run(
        "comparison.compare_jurisdictions",
        compare_jurisdictions,
        run.con,
        run.source,
        jurisdictions=list(jurisdictions),
        offences=None if offences is None else list(offences),
        start=start,
        end=end,
        reference=reference,
    )
    block = Block("Side by side", anchor="comparison-side-by-side")
    if out.value is None:
        block.unavailable = out.unavailable("The comparison")
        section.blocks.append(block)
        return section
    res = out.value
    peers = res.peers
    period = str(res.params.get("period", ""))
    for offence in res.params["offences"]:
        part = peers[peers["offence"] == offence]
        if part.empty:
            continue
        label = str(part["label"].iloc[0]).lower()
        n = int(part["n_ranked"].iloc[0])
        standing = "; ".join(
            f"{r['name']} {format_value(r['rate_per_100k'], 'rate')} per 100,000 (rank {r['rank_by_rate']} of {n})"
            for r in records(part)
        )
        ref = res.reference[res.reference["offence"] == offence]
        ref_text = ""
        if not ref.empty:
            pop = ref["population"].astype("float64").sum()
            rate = float(ref["count"].astype("float64").sum()) / pop * 100_000 if pop else float("nan")
            ref_text = (
                f" The reference, {ref['name'].iloc[0]} (dataset {ref['source'].iloc[0]}), recorded "
                f"{format_value(rate, 'rate')} per 100,000 over the same years."
            )
        block.paragraphs.append(f"{label.capitalize()}, {period}: {standing}.{ref_text}")
    block.figures += run.figure(res.chart())
    block.tables.append(
        render_table(
            peers,
            max_rows=None,
            columns=[
                "label",
                "name",
                "rank_by_rate",
                "n_ranked",
                "rate_per_100k",
                "rate_low",
                "rate_high",
                "count",
                "partial_years",
            ],
            labels={
                "label": "Offence",
                "rank_by_rate": "Rank by rate",
                "n_ranked": "Of",
                "rate_low": "Rate, low (95%)",
                "rate_high": "Rate, high (95%)",
                "partial_years": "Partial years",
            },
            caption=f"Over {period}: rank by rate among the jurisdictions of {res.params['source']} (1 = highest)",
            table_id="comparison-peers",
        )
    )
    ids = list(res.params["jurisdiction_ids"])
    for offence in res.params["offences"]:
        part = res.table[res.table["offence"] == offence]
        if part.empty:
            continue
        wide, labels = _wide(part, res.reference[res.reference["offence"] == offence], ids)
        block.tables.append(
            render_table(
                wide.iloc[::-1],
                max_rows=None,
                labels=labels,
                caption=f"{part['label'].iloc[0]}, year by year (latest first)",
            )
        )
    for note in res.notes:
        sentence = note[0].upper() + note[1:] + ("" if note.endswith(".") else ".")
        block.notes.append(sentence)
    block.caveats.extend(out.caveats)
    section.blocks.append(block)
    return section
