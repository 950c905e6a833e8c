"""Seeded generator of a large, valid file in the ``ucr-marshall`` format (made-up agencies).

The header, quoting and value styles follow The Marshall Project's ``ucr_crime_1975_2015.csv``: quoted
ORI and department name, bare numbers, ``NA`` for missing values, rates with 15 significant digits.
Every row passes crimelens validation; about 2% of rows report fewer than 12 months (the real file has
53 such rows in 2,829, each a ``partial_year`` warning) and about 0.2% lack a rape count (``NA``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HEADER", "SynthSpec", "write_ucr_marshall"]

HEADER: tuple[str, ...] = (
    "ORI", "year", "department_name", "total_pop", "homs_sum", "rape_sum", "rob_sum", "agg_ass_sum",
    "violent_crime", "months_reported", "violent_per_100k", "homs_per_100k", "rape_per_100k", "rob_per_100k",
    "agg_ass_per_100k", "source", "url",
)  # fmt: skip
_STATES: tuple[str, ...] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
    "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
)  # fmt: skip
#: Shares of violent crime by offence (homicide, rape, robbery, aggravated assault), roughly the FBI's.
_SHARES = np.array([0.012, 0.07, 0.33, 0.588])
_CHUNK = 50_000


@dataclass(frozen=True)
class SynthSpec:
    """What was written: rows, agencies, the year span, and the seed."""

    path: Path
    rows: int
    agencies: int
    first_year: int
    last_year: int
    seed: int
    partial_rows: int
    missing_rape: int


def _num(values: np.ndarray, missing: np.ndarray) -> list[str]:
    return ["NA" if m else str(v) for v, m in zip(values.tolist(), missing.tolist(), strict=True)]


def _rate(counts: np.ndarray, pop: np.ndarray, missing: np.ndarray) -> list[str]:
    rates = (counts / pop * 100_000).tolist()
    return ["NA" if m else f"{r:.15g}" for r, m in zip(rates, missing.tolist(), strict=True)]


def write_ucr_marshall(
    path: Path, rows: int, *, seed: int = 20240611, years: int = 100, last_year: int = 2015
) -> SynthSpec:
    """Write ``rows`` jurisdiction-years: agency ``i // years`` in year ``last_year - years + 1 + i % years``.

    Counts are Poisson draws around a per-agency rate that follows a rise-and-fall curve over the span,
    so rankings and trends have structure; the same ``seed`` always writes the same bytes.
    """
    if rows < 1:
        raise ValueError(f"rows: expected a whole number ≥ 1, got {rows!r}")
    years = min(years, rows)
    first_year = last_year - years + 1
    agencies = -(-rows // years)
    rng = np.random.default_rng(seed)
    base_pop = np.clip(rng.lognormal(np.log(120_000), 1.0, agencies), 2_000, 9_000_000)
    growth = rng.normal(0.006, 0.008, agencies)
    base_rate = np.clip(rng.lognormal(np.log(550), 0.6, agencies), 20, 5_000)
    peak = rng.integers(first_year + years // 3, first_year + 2 * years // 3 + 1, agencies)
    curvature = rng.uniform(0.2, 0.8, agencies)
    states = [_STATES[a % len(_STATES)] for a in range(agencies)]
    ids = [f"{st}{a:05d}" for a, st in enumerate(states)]
    names = [f"Agency {a} County, {st}." if a % 10 == 7 else f"Agency {a}, {st}." for a, st in enumerate(states)]
    partial_rows = missing_rape = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(f'"{h}"' for h in HEADER) + "\n")
        for lo in range(0, rows, _CHUNK):
            idx = np.arange(lo, min(lo + _CHUNK, rows))
            n = len(idx)
            agency = idx // years
            year = first_year + idx % years
            t = (year - first_year).astype(float)
            pop = np.maximum(
                1_000, np.round(base_pop[agency] * (1 + growth[agency]) ** t * rng.normal(1, 0.01, n))
            ).astype(np.int64)
            shape = 1 + curvature[agency] * np.exp(-(((year - peak[agency]) / (years / 5)) ** 2))
            rate = base_rate[agency] * shape * rng.lognormal(0, 0.08, n)
            lam = np.outer(pop * rate / 100_000, _SHARES)
            parts = rng.poisson(lam)
            no_rape = rng.random(n) < 0.002
            months = np.where(rng.random(n) < 0.02, rng.integers(1, 12, n), 12)
            partial_rows += int((months < 12).sum())
            missing_rape += int(no_rape.sum())
            violent = parts[:, 0] + np.where(no_rape, 0, parts[:, 1]) + parts[:, 2] + parts[:, 3]
            present = np.zeros(n, dtype=bool)
            cols: list[list[str]] = [
                [f'"{ids[a]}"' for a in agency.tolist()],
                [str(y) for y in year.tolist()],
                [f'"{names[a]}"' for a in agency.tolist()],
                _num(pop, present),
                _num(parts[:, 0], present),
                _num(parts[:, 1], no_rape),
                _num(parts[:, 2], present),
                _num(parts[:, 3], present),
                _num(violent, present),
                _num(months, present),
                _rate(violent, pop, present),
                _rate(parts[:, 0], pop, present),
                _rate(parts[:, 1], pop, no_rape),
                _rate(parts[:, 2], pop, present),
                _rate(parts[:, 3], pop, present),
            ]
            tail = ",NA,NA\n"
            fh.write("".join(",".join(fields) + tail for fields in zip(*cols, strict=True)))
        fh.flush()
        os.fsync(fh.fileno())  # on disk before any timing starts, so write-back does not compete with the jobs
    return SynthSpec(path, rows, agencies, first_year, last_year, seed, partial_rows, missing_rape)
