"""Ranking areas (community areas, neighbourhoods, beats) by incidents and by rate per resident."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crimelens.analysis.inference import poisson_rate_interval
from crimelens.analysis.result import ChartSpec, Result, records_caveats
from crimelens.errors import DataError, SchemaError

__all__ = ["AreaRankResult", "poisson_rate_interval", "rank_areas"]

_COLUMNS = [
    "rank", "area", "name", "incidents", "share", "population", "rate", "rate_low", "rate_high", "rank_by_count",
]  # fmt: skip


@dataclass(frozen=True)
class AreaRankResult(Result):
    """Areas ranked by rate (or by count when no populations): see :func:`rank_areas`."""

    def chart(self) -> ChartSpec:
        by_rate = self.table["rate"].notna().any()
        y = "rate" if by_rate else "incidents"
        data = self.table[self.table[y].notna()].head(20).iloc[::-1].reset_index(drop=True)
        data = data.assign(label=data["name"].fillna(data["area"]))
        per = self.params.get("per", 100_000)
        return ChartSpec(
            kind="barh",
            data=data,
            x="label",
            y=y,
            title=self.title,
            x_label="area",
            y_label=f"incidents per {per:,} residents" if by_rate else "incidents",
        )


@records_caveats
def rank_areas(
    counts: pd.DataFrame,
    populations: pd.DataFrame | None = None,
    *,
    per: int = 100_000,
    top: int | None = None,
) -> AreaRankResult:
    """Areas by incidents, share of the total and rate per ``per`` residents with an exact 95% interval.

    ``counts``: columns ``area`` and ``incidents`` (rows of the same area, e.g. per week or offence, are
    summed: the rate is over the whole period the counts cover, not per year). ``populations``: columns
    ``area_id``, ``population`` and optionally ``name`` (ids are compared as text); areas listed there with
    no incidents are included with 0. The rate is incidents / population × ``per`` with the exact Poisson
    interval of :func:`poisson_rate_interval`; areas without a population get NaN and a note.

    ``rank`` is by rate (1 = highest; ties share the lowest rank; NA without a rate) when populations are
    given, else by count; ``rank_by_count`` is always given. ``top`` keeps the first ``top`` rows. Raw
    counts are not risk: big areas have more incidents because they have more people and places.
    """
    if not isinstance(counts, pd.DataFrame) or not {"area", "incidents"} <= set(counts.columns):
        got = ", ".join(map(str, counts.columns)) if isinstance(counts, pd.DataFrame) else type(counts).__name__
        raise SchemaError(f"counts: expected columns area and incidents, got {got}")
    if isinstance(per, bool) or not isinstance(per, int | np.integer) or per < 1:
        raise DataError(f"per: expected a whole number of residents ≥ 1 (e.g. 100000), got {per!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1):
        raise DataError(f"top: expected a whole number ≥ 1 or None, got {top!r}")
    inc = pd.to_numeric(counts["incidents"], errors="coerce")
    bad = inc.isna() | (inc < 0) | (inc != inc.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"counts: column incidents row {row}: expected a whole number ≥ 0, "
            f"got {str(counts['incidents'].iloc[row])!r}"
        )
    if counts["area"].isna().any():
        row = int(np.flatnonzero(counts["area"].isna().to_numpy())[0])
        raise DataError(f"counts: column area row {row}: expected an area id, got a missing value")
    summed = (
        pd.DataFrame({"area": counts["area"].astype(str).to_numpy(), "incidents": inc.to_numpy(dtype="float64")})
        .groupby("area", as_index=False)["incidents"]
        .sum()
    )
    notes: list[str] = []
    if populations is not None:
        if not isinstance(populations, pd.DataFrame) or not {"area_id", "population"} <= set(populations.columns):
            got = (
                ", ".join(map(str, populations.columns))
                if isinstance(populations, pd.DataFrame)
                else type(populations).__name__
            )
            raise SchemaError(f"populations: expected columns area_id, population and optionally name, got {got}")
        pop = pd.DataFrame(
            {
                "area": populations["area_id"].astype(str).to_numpy(),
                "population": pd.to_numeric(populations["population"], errors="coerce").to_numpy(dtype="float64"),
                "name": populations["name"].astype(object).to_numpy() if "name" in populations.columns else None,
            }
        ).drop_duplicates("area")
        negative = pop["population"] < 0
        if negative.any():
            raise DataError(
                f"populations: area {pop.loc[negative, 'area'].iloc[0]}: expected a population ≥ 0, "
                f"got {pop.loc[negative, 'population'].iloc[0]:g}"
            )
        frame = summed.merge(pop, on="area", how="outer")
        frame["incidents"] = frame["incidents"].fillna(0.0)
        unknown = sorted(set(summed["area"]) - set(pop["area"]))
        if unknown:
            notes.append(
                f"{len(unknown)} area(s) with incidents are not in the population table (no rate): "
                + ", ".join(unknown[:10])
                + (" …" if len(unknown) > 10 else "")
            )
        zero_pop = int(((frame["population"] == 0) | frame["population"].isna()).sum()) - len(unknown)
        if zero_pop:
            notes.append(f"{zero_pop} area(s) with a missing or zero population have no rate")
        frame.loc[frame["population"] == 0, "population"] = np.nan
    else:
        frame = summed.assign(population=np.nan, name=None)
        notes.append("no populations: areas ranked by count, which reflects their size as much as their risk")
    total = float(frame["incidents"].sum())
    if total == 0:
        raise DataError("counts: expected at least one incident to rank areas, got 0")
    frame["share"] = frame["incidents"] / total
    frame["rate"] = frame["incidents"] / frame["population"] * per
    low, high = poisson_rate_interval(frame["incidents"].to_numpy(), frame["population"].to_numpy() / per)
    frame["rate_low"], frame["rate_high"] = low, high
    frame["rank_by_count"] = frame["incidents"].rank(method="min", ascending=False).astype("Int64")
    by_rate = populations is not None and frame["rate"].notna().any()
    key = "rate" if by_rate else "incidents"
    frame["rank"] = frame[key].rank(method="min", ascending=False).astype("Int64")
    frame["incidents"] = frame["incidents"].round().astype("int64")
    frame["population"] = frame["population"].astype("Float64").round().astype("Int64")
    frame = frame.sort_values(["rank", "incidents", "area"], ascending=[True, False, True], na_position="last")
    table = frame[_COLUMNS].reset_index(drop=True)
    n_areas = len(table)
    if top is not None:
        table = table.head(int(top))
    if by_rate:
        notes.append(
            f"rates per {per:,} residents over the whole period of the counts, with exact Poisson 95% intervals; "
            "areas whose intervals overlap may not truly differ"
        )
    return AreaRankResult(
        title=f"Areas ranked by {'rate per ' + format(per, ',') + ' residents' if by_rate else 'incidents'}",
        table=table,
        params={"per": int(per), "top": top, "areas": n_areas, "incidents": int(total), "ranked_by": key},
        notes=tuple(notes),
    )
