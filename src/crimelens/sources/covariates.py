"""Socio-economic covariate files: read, check and map to long rows (unit, year, covariate name, value).

Each supported file has a preset (:data:`PRESETS`): which column holds the unit id, which year the figures
refer to (a column, or a fixed year for a one-year snapshot), and which columns are covariates under which
canonical name. A value that is not a number is an error that names file, line and column. An empty or
``NA`` value is skipped and counted. The whole file is refused when it has any error: nothing is loaded
(:class:`~crimelens.errors.LoadRejected`).

Covariates are area-level (ecological) figures: they describe places, never the people in them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crimelens.errors import ConfigError, LoadRejected
from crimelens.sources.base import CsvRecords, Issue
from crimelens.sources.states import resolve_state

__all__ = ["PRESETS", "CovariateFile", "CovariatePreset", "preset_from_mapping", "read_covariates"]

_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "."})


@dataclass(frozen=True)
class CovariatePreset:
    """How one covariate file maps to long rows.

    ``unit``: ``'int'`` (an integer area number, e.g. a Chicago community area), ``'state'`` (a state name
    or postal code, mapped to ``US-XX``), ``'text'`` (any id) or ``'place'`` (a place named within a state:
    ``id_column`` holds the state's postal code and ``name_column`` the place's name; the id is
    ``XX:Name``, as no code identifies every place). ``year_column`` or ``year``: the year of each row, or
    one year for the whole file. ``columns``: canonical covariate name → file column. ``missing``: the
    file's own marks for a missing value (beside empty and ``NA``), e.g. ``?``.
    """

    name: str
    unit_kind: str
    id_column: str
    unit: str  # 'int' | 'state' | 'text' | 'place'
    columns: dict[str, str]
    description: str
    name_column: str | None = None
    year_column: str | None = None
    year: int | None = None
    missing: tuple[str, ...] = ()


PRESETS: dict[str, CovariatePreset] = {
    p.name: p
    for p in (
        CovariatePreset(
            name="chicago-hardship",
            unit_kind="community_area",
            id_column="COMMUNITY_AREA_NUMBER",
            name_column="COMMUNITY_AREA_NAME",
            unit="int",
            year=2012,
            columns={
                "crowded_housing_pct": "PERCENT_OF_HOUSING_CROWDED",
                "poverty_pct": "PERCENT_HOUSEHOLDS_BELOW_POVERTY",
                "unemployed_pct": "PERCENT_AGED_16__UNEMPLOYED",
                "no_high_school_pct": "PERCENT_AGED_25__WITHOUT_HIGH_SCHOOL_DIPLOMA",
                "dependency_pct": "PERCENT_AGED_UNDER_18_OR_OVER_64",
                "per_capita_income": "PER_CAPITA_INCOME",
                "hardship_index": "HARDSHIP_INDEX",
            },
            description="City of Chicago, selected socio-economic indicators 2008-2012, with the hardship index",
        ),
        CovariatePreset(
            name="chicago-acs",
            unit_kind="community_area",
            id_column="ComAreaID",
            name_column="community",
            unit="int",
            year=2014,
            columns={"population": "Pop2014", "poverty_pct_acs": "Pov14P"},
            description="American Community Survey 2014 by Chicago community area (population, share in poverty)",
        ),
        CovariatePreset(
            name="state-panel",
            unit_kind="state",
            id_column="State",
            unit="state",
            year_column="Year",
            columns={
                "labor_force_participation": "Labor force participation",
                "unemployment_rate": "Unemployment rate",
                "household_size": "Average household size",
                "poverty_rate": "Poverty rate",
                "gini": "Gini coefficient",
                "log_gdp_per_capita": "Log of GDP per capita",
                "median_age": "Age",
            },
            description="State-year socio-economic panel 2005-2015 (its publisher is uncertain; see PROVENANCE)",
        ),
        # UCI Communities and Crime Unnormalized (Redmond 2009; UCI dataset 211): 2,215 US communities, 1990
        # Census figures in raw units. The file's race shares are left out on purpose (an area's racial make-up is
        # not a cause of crime, and modelling it invites exactly the ecological reading the caveats warn about),
        # as are its 1990 LEMAS police figures (missing for most communities) and its 1995 crime counts (outcomes,
        # not covariates).
        CovariatePreset(
            name="uci-communities",
            unit_kind="community",
            id_column="state",
            name_column="communityName",
            unit="place",
            year=1990,
            missing=("?",),
            columns={
                "population": "population",
                "household_size": "householdsize",
                "urban_pct": "pctUrban",
                "median_household_income": "medIncome",
                "per_capita_income": "perCapInc",
                "poverty_pct": "PctPopUnderPov",
                "no_high_school_pct": "PctNotHSGrad",
                "unemployed_pct": "PctUnemployed",
                "two_parent_families_pct": "PctFam2Par",
                "kids_two_parents_pct": "PctKids2Par",
                "crowded_housing_pct": "PctPersDenseHous",
                "housing_occupied_pct": "PctHousOccup",
                "vacant_boarded_pct": "PctVacantBoarded",
                "rent_share_of_income_pct": "MedRentPctHousInc",
                "same_house_since_1985_pct": "PctSameHouse85",
                "population_density": "PopDens",
            },
            description="UCI Communities and Crime (unnormalized): 1990 Census figures for 2,215 US communities",
        ),
    )
}


@dataclass
class CovariateFile:
    """What was read from one covariate file: long rows and every issue found."""

    path: Path
    preset: str
    unit_kind: str
    sha256: str
    rows: pd.DataFrame  # unit_kind, unit_id, unit_name, year, name, value
    rows_read: int
    skipped_missing: int
    issues: list[Issue] = field(default_factory=list)


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_UNIT_KINDS = ("community_area", "neighbourhood", "district", "beat", "census_tract", "state", "county")


def preset_from_mapping(path: Path) -> CovariatePreset:
    """A preset read from a TOML mapping file, for any covariate CSV.

    ``unit_kind`` (community_area, neighbourhood, district, beat, census_tract, state, county);
    ``[columns]`` ``unit_id`` (required), ``unit_name``, ``year`` (or ``[constants]`` ``year``); and
    ``[covariates]``: covariate name → column. State units are read as names or postal codes (``US-XX``);
    area numbers as integers; anything else as text.
    """
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"covariate mapping {path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"covariate mapping {Path(path).name}: not valid TOML ({exc})") from None
    kind = data.get("unit_kind")
    if kind not in _UNIT_KINDS:
        raise ConfigError(
            f"covariate mapping {Path(path).name}: unit_kind: expected one of {', '.join(_UNIT_KINDS)}, got {kind!r}"
        )
    columns = data.get("columns", {})
    covariates = data.get("covariates", {})
    year = data.get("constants", {}).get("year")
    if "unit_id" not in columns:
        raise ConfigError(f"covariate mapping {Path(path).name}: [columns] unit_id: expected the id column, got none")
    if "year" not in columns and not isinstance(year, int):
        raise ConfigError(
            f"covariate mapping {Path(path).name}: expected [columns] year or [constants] year = YYYY, got neither"
        )
    if not covariates or not all(isinstance(v, str) for v in covariates.values()):
        raise ConfigError(
            f'covariate mapping {Path(path).name}: [covariates]: expected name = "column" lines, got {covariates!r}'
        )
    unit = "state" if kind == "state" else ("int" if kind == "community_area" else "text")
    return CovariatePreset(
        name=str(data.get("source") or Path(path).stem),
        unit_kind=str(kind),
        id_column=str(columns["unit_id"]),
        unit=unit,
        columns={str(k): str(v) for k, v in covariates.items()},
        description=f"mapped with {Path(path).name}",
        name_column=columns.get("unit_name"),
        year_column=columns.get("year"),
        year=year if "year" not in columns else None,
    )


def read_covariates(path: Path, preset: str | None = None, *, mapping: Path | None = None) -> CovariateFile:
    """Read a covariate file with a preset; refuse it whole (LoadRejected) when any value is not valid.

    Parameters
    ----------
    path
        The CSV file.
    preset
        A name in :data:`PRESETS`.
    mapping
        Instead of a preset, a TOML mapping file (:func:`preset_from_mapping`).

    Returns
    -------
    CovariateFile
        Long rows; ``skipped_missing`` counts the empty or NA values left out.
    """
    if mapping is not None:
        spec = preset_from_mapping(mapping)
        preset = spec.name
    elif preset in PRESETS:
        spec = PRESETS[preset]
    else:
        raise ConfigError(
            f"covariate preset: expected one of {', '.join(PRESETS)} (or a mapping file with --mapping), got {preset!r}"
        )
    issues: list[Issue] = []
    out: list[tuple[str, str, str | None, int, str, float]] = []
    skipped = 0
    n = 0
    with CsvRecords(Path(path)) as records:
        wanted = [spec.id_column, *spec.columns.values()]
        wanted += [c for c in (spec.year_column, spec.name_column) if c is not None]
        records.require(wanted, f"covariates ({preset})")
        index = {name: i for i, name in enumerate(records.header)}
        sha = records.sha256
        for line, fields in records:
            n += 1
            raw_id = fields[index[spec.id_column]].strip()
            unit_name = fields[index[spec.name_column]].strip() if spec.name_column else None
            if spec.unit == "state":
                found = resolve_state(raw_id)
                if found is None or found[2] != "state":
                    issues.append(
                        Issue(records.name, line, spec.id_column, "error", "bad_unit",
                              f"expected a US state name or postal code, got {raw_id!r}")
                    )  # fmt: skip
                    continue
                unit_id, unit_name = found[0], found[1]
            elif spec.unit == "place":
                found = resolve_state(raw_id)
                place = unit_name or ""
                if found is None or found[2] != "state" or not place:
                    column = spec.id_column if place else str(spec.name_column)
                    issues.append(
                        Issue(records.name, line, column, "error", "bad_unit",
                              f"expected a place name and a US state postal code, got {place!r} in {raw_id!r}")
                    )  # fmt: skip
                    continue
                code = str(found[3])
                unit_id, unit_name = f"{code}:{place}", f"{place}, {code}"
            elif spec.unit == "text":
                if not raw_id:
                    issues.append(
                        Issue(records.name, line, spec.id_column, "error", "bad_unit", "expected an id, got ''")
                    )
                    continue
                unit_id = raw_id
            else:
                if not raw_id.isdigit():
                    issues.append(
                        Issue(records.name, line, spec.id_column, "error", "bad_unit",
                              f"expected a whole area number, got {raw_id!r}")
                    )  # fmt: skip
                    continue
                unit_id = str(int(raw_id))
            if spec.year_column is not None:
                raw_year = fields[index[spec.year_column]].strip()
                if not raw_year.isdigit() or not 1900 <= int(raw_year) <= 2100:
                    issues.append(
                        Issue(records.name, line, spec.year_column, "error", "bad_year",
                              f"expected a year 1900–2100, got {raw_year!r}")
                    )  # fmt: skip
                    continue
                year = int(raw_year)
            else:
                assert spec.year is not None
                year = spec.year
            for name, column in spec.columns.items():
                text = fields[index[column]].strip()
                if text.lower() in _MISSING or text in spec.missing:
                    skipped += 1
                    continue
                value = _number(text)
                if value is None:
                    issues.append(
                        Issue(records.name, line, column, "error", "bad_number", f"expected a number, got {text!r}")
                    )
                    continue
                out.append((spec.unit_kind, unit_id, unit_name, year, name, value))
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise LoadRejected(f"{len(errors)} invalid value(s), nothing loaded; the first: {errors[0]}", list(issues))
    rows = pd.DataFrame(out, columns=["unit_kind", "unit_id", "unit_name", "year", "name", "value"])
    dup = rows.duplicated(["unit_id", "year", "name"])
    if dup.any():
        first = rows[dup].iloc[0]
        raise LoadRejected(
            f"{Path(path).name}: unit {first['unit_id']} year {first['year']} appears more than once; expected "
            "one row per unit and year",
            list(issues),
        )
    return CovariateFile(Path(path), preset, spec.unit_kind, sha, rows, n, skipped, issues)
