"""A seeded synthetic city: simulated incident records in the City of Chicago crimes export schema.

Everything written here is **simulated**. The city lies inside Chicago's bounding box so that maps, grids and
projections behave as they do on real Chicago data, but no record describes a real event.

The model, all of it drawn from one ``numpy.random.default_rng`` stream per seed:

* **Areas.** 77 community areas (a 7 × 11 grid of rectangles, numbered row by row from the north-west), each
  with a synthetic population; 24 districts (4 × 6), 9 beats per district (3 × 3) and 50 wards (5 × 10), all
  derived from the location, so an incident's area ids always agree with its coordinates.
* **Background.** An inhomogeneous Poisson process per offence *family* (violence, theft, burglary, vehicle,
  disorder): a spatial mixture of a smooth gradient (area population × a south-west gradient) and Gaussian
  hotspots whose strength depends on the hotspot's kind and the family (so the offence mix varies by place),
  times a separable temporal profile: seasonal cosine × day-of-week × hour-of-day (so the mix varies by time).
  Times are drawn by thinning (Lewis & Shedler 1979, "Simulation of nonhomogeneous Poisson processes by
  thinning", Naval Research Logistics Quarterly 26(3)).
* **Near repeats.** A Hawkes / ETAS-style branching process (Hawkes 1971; Mohler et al. 2011, "Self-exciting
  point process modeling of crime", JASA 106(493)): every event has Poisson(``branching_ratio``) offspring of the
  same offence code, after an exponential lag and at a Gaussian displacement; generated generation by generation.
  The background is sized so that the expected total is ``n_incidents``; a deterministic random trim or top-up
  (extra background events) then makes the count exact.
* **Recording artefacts.** Times are kept to the minute; a share are heaped on the hour and at midnight, as in
  the real file; local times falling in the spring-forward gap are moved one hour later.

The CSV has the exact header of "Crimes - 2001 to present"; X/Y Coordinate (Illinois State Plane) are empty.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crimelens.errors import ConfigError, SourceError
from crimelens.geo import forward, inverse

__all__ = [
    "AREA_GRID",
    "BOX",
    "CHICAGO_HEADER",
    "DEFAULT_BRANCHING_RATIO",
    "FAMILIES",
    "IUCR_TABLE",
    "SimulationSummary",
    "simulate",
    "simulated_areas",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: Called with (steps done, total steps) as the simulation advances.
Progress = Callable[[int, int], None]

#: The header of the City of Chicago "Crimes - 2001 to present" export, column for column.
CHICAGO_HEADER: tuple[str, ...] = (
    "ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description", "Location Description",
    "Arrest", "Domestic", "Beat", "District", "Ward", "Community Area", "FBI Code", "X Coordinate",
    "Y Coordinate", "Year", "Updated On", "Latitude", "Longitude", "Location",
)  # fmt: skip

#: Chicago's bounding box: (south, north, west, east) in degrees WGS84.
BOX: tuple[float, float, float, float] = (41.65, 42.02, -87.94, -87.53)
#: Community-area grid: (columns west→east, rows north→south).
AREA_GRID: tuple[int, int] = (7, 11)
_DISTRICT_GRID = (4, 6)
_WARD_GRID = (5, 10)
_ORIGIN = (41.8820, -87.6278)  # State & Madison: the zero of Chicago's address grid
_FEET_PER_ADDRESS = 6.6  # 800 address numbers per mile
_BLOCK_M = 100 * _FEET_PER_ADDRESS * 0.3048  # one hundred-block, in metres
_CASE_BASE = 100_000  # first case number of each year (JC100000); a 7th digit appears past 899,999 a year
ID_BASE = 90_000_000  # far above the real file's ids: a simulated record cannot be mistaken for a real one
DEFAULT_BRANCHING_RATIO = 0.25

#: Offence families: each has its own temporal profile and its own affinity to each kind of hotspot.
FAMILIES: tuple[str, ...] = ("violence", "theft", "burglary", "vehicle", "disorder")

# (IUCR, Primary Type, Description, FBI Code, share, family, P(arrest), P(domestic), location set).
# Codes and descriptions are real Chicago IUCR combinations; shares are rounded from the 2022 file
# (../shared/data/chicago_crimes_2022_slim), homicide lowered to about 0.1 % and the rest renormalised.
IUCR_TABLE: tuple[tuple[str, str, str, str, float, str, float, float, str], ...] = (
    ("0110", "HOMICIDE", "FIRST DEGREE MURDER", "01A", 0.0010, "violence", 0.28, 0.08, "street"),
    ("0265", "CRIMINAL SEXUAL ASSAULT", "AGGRAVATED - OTHER", "02", 0.0020, "violence", 0.03, 0.20, "home"),
    ("0281", "CRIMINAL SEXUAL ASSAULT", "NON-AGGRAVATED", "02", 0.0046, "violence", 0.03, 0.19, "home"),
    ("031A", "ROBBERY", "ARMED - HANDGUN", "03", 0.0145, "violence", 0.05, 0.01, "street"),
    ("0320", "ROBBERY", "STRONG ARM - NO WEAPON", "03", 0.0081, "violence", 0.06, 0.03, "street"),
    ("0326", "ROBBERY", "AGGRAVATED VEHICULAR HIJACKING", "03", 0.0053, "violence", 0.04, 0.00, "vehicle"),
    ("041A", "BATTERY", "AGGRAVATED - HANDGUN", "04B", 0.0092, "violence", 0.10, 0.03, "street"),
    ("0430", "BATTERY", "AGGRAVATED - OTHER DANGEROUS WEAPON", "04B", 0.0071, "violence", 0.18, 0.30, "mixed"),
    ("051A", "ASSAULT", "AGGRAVATED - HANDGUN", "04A", 0.0198, "violence", 0.08, 0.12, "street"),
    ("0520", "ASSAULT", "AGGRAVATED - KNIFE / CUTTING INSTRUMENT", "04A", 0.0057, "violence", 0.15, 0.30, "mixed"),
    ("0460", "BATTERY", "SIMPLE", "08B", 0.0585, "violence", 0.12, 0.10, "mixed"),
    ("0486", "BATTERY", "DOMESTIC BATTERY SIMPLE", "08B", 0.0799, "violence", 0.17, 1.00, "home"),
    ("0560", "ASSAULT", "SIMPLE", "08A", 0.0565, "violence", 0.07, 0.25, "mixed"),
    ("0610", "BURGLARY", "FORCIBLE ENTRY", "05", 0.0174, "burglary", 0.03, 0.04, "burglary"),
    ("0620", "BURGLARY", "UNLAWFUL ENTRY", "05", 0.0118, "burglary", 0.05, 0.05, "burglary"),
    ("0810", "THEFT", "OVER $500", "06", 0.0848, "theft", 0.01, 0.03, "mixed"),
    ("0820", "THEFT", "$500 AND UNDER", "06", 0.0798, "theft", 0.02, 0.05, "mixed"),
    ("0860", "THEFT", "RETAIL THEFT", "06", 0.0372, "theft", 0.15, 0.00, "retail"),
    ("0890", "THEFT", "FROM BUILDING", "06", 0.0194, "theft", 0.02, 0.08, "retail"),
    ("0870", "THEFT", "POCKET-PICKING", "06", 0.0070, "theft", 0.01, 0.00, "street"),
    ("0910", "MOTOR VEHICLE THEFT", "AUTOMOBILE", "07", 0.0700, "vehicle", 0.02, 0.01, "vehicle"),
    ("0920", "MOTOR VEHICLE THEFT", "ATTEMPT - AUTOMOBILE", "07", 0.0087, "vehicle", 0.02, 0.01, "vehicle"),
    ("1020", "ARSON", "BY FIRE", "09", 0.0018, "burglary", 0.05, 0.07, "home"),
    ("1310", "CRIMINAL DAMAGE", "TO PROPERTY", "14", 0.0521, "disorder", 0.03, 0.15, "home"),
    ("1320", "CRIMINAL DAMAGE", "TO VEHICLE", "14", 0.0598, "vehicle", 0.02, 0.10, "vehicle"),
    ("1153", "DECEPTIVE PRACTICE", "FINANCIAL IDENTITY THEFT OVER $ 300", "11", 0.0126, "theft", 0.00, 0.01, "home"),
    ("1150", "DECEPTIVE PRACTICE", "CREDIT CARD FRAUD", "11", 0.0096, "theft", 0.02, 0.01, "retail"),
    ("143A", "WEAPONS VIOLATION", "UNLAWFUL POSSESSION - HANDGUN", "15", 0.0236, "disorder", 0.95, 0.00, "street"),
    ("2027", "NARCOTICS", "POSSESS - CRACK", "18", 0.0050, "disorder", 0.98, 0.00, "street"),
    ("2024", "NARCOTICS", "POSSESS - HEROIN (WHITE)", "18", 0.0033, "disorder", 0.98, 0.00, "street"),
    ("1330", "CRIMINAL TRESPASS", "TO LAND", "26", 0.0100, "disorder", 0.30, 0.05, "mixed"),
    ("2826", "OTHER OFFENSE", "HARASSMENT BY ELECTRONIC MEANS", "26", 0.0097, "disorder", 0.02, 0.40, "home"),
)

# Location Description sets: (description, weight).
_LOCATION_SETS: dict[str, tuple[tuple[str, float], ...]] = {
    "street": (("STREET", 0.45), ("SIDEWALK", 0.2), ("ALLEY", 0.08), ("PARKING LOT / GARAGE (NON RESIDENTIAL)", 0.1),
               ("RESIDENCE", 0.07), ("APARTMENT", 0.05), ("GAS STATION", 0.05)),
    "home": (("APARTMENT", 0.45), ("RESIDENCE", 0.35), ("RESIDENCE - PORCH / HALLWAY", 0.08), ("STREET", 0.07),
             ("SIDEWALK", 0.05)),
    "retail": (("SMALL RETAIL STORE", 0.3), ("DEPARTMENT STORE", 0.2), ("GROCERY FOOD STORE", 0.15),
               ("RESTAURANT", 0.15), ("COMMERCIAL / BUSINESS OFFICE", 0.1), ("STREET", 0.1)),
    "vehicle": (("STREET", 0.7), ("PARKING LOT / GARAGE (NON RESIDENTIAL)", 0.12), ("ALLEY", 0.05),
                ("RESIDENCE - GARAGE", 0.05), ("VEHICLE NON-COMMERCIAL", 0.08)),
    "burglary": (("APARTMENT", 0.35), ("RESIDENCE", 0.25), ("RESIDENCE - GARAGE", 0.15), ("SMALL RETAIL STORE", 0.1),
                 ("COMMERCIAL / BUSINESS OFFICE", 0.1), ("RESTAURANT", 0.05)),
    "mixed": (("STREET", 0.3), ("APARTMENT", 0.2), ("RESIDENCE", 0.2), ("SIDEWALK", 0.1), ("OTHER (SPECIFY)", 0.1),
              ("COMMERCIAL / BUSINESS OFFICE", 0.1)),
}  # fmt: skip

# Hour-of-day profiles (0–23, relative; normalised to mean 1), shaped after the 2022 file without its heaping
# at midnight and noon.
_HOURS: dict[str, tuple[float, ...]] = {
    "violence": (1.40, 1.20, 1.00, 0.75, 0.55, 0.42, 0.40, 0.50, 0.65, 0.75, 0.85, 0.95,
                 1.00, 1.00, 1.05, 1.20, 1.25, 1.30, 1.30, 1.30, 1.35, 1.40, 1.45, 1.45),
    "theft": (0.70, 0.52, 0.47, 0.40, 0.36, 0.31, 0.41, 0.60, 0.89, 1.20, 1.35, 1.45,
              1.60, 1.50, 1.45, 1.45, 1.45, 1.45, 1.35, 1.20, 1.00, 0.87, 0.74, 0.60),
    "burglary": (0.90, 0.80, 0.75, 0.70, 0.60, 0.55, 0.60, 0.85, 1.20, 1.35, 1.35, 1.30,
                 1.30, 1.20, 1.20, 1.20, 1.15, 1.10, 1.05, 1.00, 0.95, 0.95, 0.95, 0.95),
    "vehicle": (1.30, 1.00, 0.90, 0.80, 0.70, 0.60, 0.55, 0.65, 0.75, 0.80, 0.80, 0.80,
                0.90, 0.85, 0.90, 1.00, 1.10, 1.25, 1.35, 1.40, 1.45, 1.45, 1.45, 1.40),
    "disorder": (0.90, 0.66, 0.56, 0.43, 0.31, 0.26, 0.32, 0.48, 0.74, 0.96, 1.09, 1.22,
                 1.35, 1.25, 1.20, 1.20, 1.20, 1.15, 1.20, 1.43, 1.54, 1.45, 1.21, 1.02),
}  # fmt: skip
# Day-of-week factors, Monday first.
_WEEK: dict[str, tuple[float, ...]] = {
    "violence": (0.92, 0.90, 0.90, 0.93, 1.02, 1.18, 1.15),
    "theft": (1.04, 1.05, 1.05, 1.04, 1.08, 0.95, 0.79),
    "burglary": (1.05, 1.02, 1.02, 1.01, 1.02, 0.96, 0.92),
    "vehicle": (0.97, 0.96, 0.97, 0.97, 1.03, 1.07, 1.03),
    "disorder": (1.02, 1.03, 1.03, 1.01, 1.04, 0.95, 0.92),
}
# Seasonal cosine: (amplitude, peak day of year): factor 1 + a·cos(2π(doy − peak)/365.2425).
_SEASON: dict[str, tuple[float, float]] = {
    "violence": (0.22, 196.0),
    "theft": (0.18, 210.0),
    "burglary": (0.12, 220.0),
    "vehicle": (0.15, 235.0),
    "disorder": (0.12, 170.0),
}
_YEAR_DAYS = 365.2425
# Hotspot kinds and each family's affinity to them.
_HOTSPOT_KINDS: tuple[str, ...] = ("nightlife", "retail", "residential", "drug market")
_AFFINITY: dict[str, tuple[float, ...]] = {
    "violence": (3.0, 0.5, 1.0, 2.0),
    "theft": (1.0, 4.0, 0.5, 0.5),
    "burglary": (0.5, 1.0, 3.0, 0.5),
    "vehicle": (1.0, 1.5, 2.0, 0.5),
    "disorder": (1.0, 0.5, 0.5, 4.0),
}
# Share of each family's background events drawn from hotspots (the rest follow the smooth gradient).
_HOTSPOT_SHARE: dict[str, float] = {"violence": 0.45, "theft": 0.5, "burglary": 0.3, "vehicle": 0.35, "disorder": 0.55}
_N_HOTSPOTS = 36
_GRADIENT = (0.9, 0.5)  # log-intensity slopes towards the south and the west edge
_LAG_DAYS = 3.0  # mean offspring lag
_DISPLACEMENT_M = 120.0  # offspring displacement: sd per axis (mean distance 120·√(π/2) ≈ 150 m)
_HOUR_HEAP = 0.25  # share of times recorded on the hour
_MIDNIGHT_HEAP = 0.02  # share recorded at 12:00 AM (date known, time not)


# The city is drawn in metres on crimelens' one equal-area projection (crimelens.geo), centred on the box;
# x, y below are metres east and north of the box's south-west corner. The projection is cylindrical, so the
# box is a rectangle in the plane; areas (rectangles in degrees) are found from latitude and longitude.
_LON0, _LAT0 = (BOX[2] + BOX[3]) / 2, (BOX[0] + BOX[1]) / 2


def _plane(lat: Any, lon: Any) -> tuple[F64, F64]:
    """Metres east and north of the box's south-west corner of WGS84 points."""
    x, y = forward(lon, lat, _LON0, _LAT0)
    return x - _SW[0], y - _SW[1]


def _degrees(x: Any, y: Any) -> tuple[F64, F64]:
    """(lat, lon) of points given in metres from the box's south-west corner (the inverse of :func:`_plane`)."""
    lon, lat = inverse(np.asarray(x) + _SW[0], np.asarray(y) + _SW[1], _LON0, _LAT0)
    return lat, lon


_SW = tuple(float(v[0]) for v in forward([BOX[2]], [BOX[0]], _LON0, _LAT0))
_NE = tuple(float(v[0]) for v in forward([BOX[3]], [BOX[1]], _LON0, _LAT0))
_WIDTH = _NE[0] - _SW[0]  # metres west→east
_HEIGHT = _NE[1] - _SW[1]  # metres south→north
#: y (metres) of the community-area rows' edges, south to north (rows are equal in latitude).
_AREA_ROW_Y = _plane(np.linspace(BOX[0], BOX[1], AREA_GRID[1] + 1), np.full(AREA_GRID[1] + 1, BOX[2]))[1]


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate` wrote: row count, span, seed, file, wall time and every model parameter."""

    rows: int
    years: int
    seed: int
    path: Path
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    areas_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulated": True,
            "rows": self.rows,
            "years": self.years,
            "seed": self.seed,
            "path": str(self.path),
            "areas_path": None if self.areas_path is None else str(self.areas_path),
            "seconds": round(self.seconds, 3),
            "params": self.params,
        }


@dataclass(frozen=True)
class _City:
    populations: I64  # 77 community areas, row-major from the north-west
    area_weight: F64  # smooth-gradient share of each area (sums to 1)
    hot_xy: F64  # (K, 2) hotspot centres, metres from the south-west corner
    hot_sd: F64  # (K,) metres
    hot_kind: npt.NDArray[np.int64]  # (K,) index into _HOTSPOT_KINDS
    hot_strength: F64  # (K,)


def _city(seed: int) -> _City:
    """The fixed geography for a seed (independent of how many incidents are drawn)."""
    rng = np.random.default_rng([seed, 1])
    cols, rows = AREA_GRID
    pops = np.round(rng.lognormal(math.log(35_000), 0.45, cols * rows), -1).astype(np.int64)
    cx = (np.arange(cols * rows) % cols + 0.5) / cols  # 0 west … 1 east
    cy = 1 - (np.arange(cols * rows) // cols + 0.5) / rows  # 0 south … 1 north
    south, west = _GRADIENT
    weight = pops * np.exp(south * (1 - cy) + west * (1 - cx)) * rng.lognormal(0.0, 0.25, cols * rows)
    k = _N_HOTSPOTS
    margin = 1500.0
    xy = np.column_stack([rng.uniform(margin, _WIDTH - margin, k), rng.uniform(margin, _HEIGHT - margin, k)]).astype(
        np.float64
    )
    sd = np.exp(rng.uniform(math.log(150.0), math.log(900.0), k))
    kind = rng.integers(0, len(_HOTSPOT_KINDS), k).astype(np.int64)
    strength = 1.0 + rng.pareto(1.5, k)
    # the first hotspot is downtown: retail, the strongest
    xy[0] = [float(v[0]) for v in _plane([_ORIGIN[0]], [_ORIGIN[1]])]
    sd[0], kind[0], strength[0] = 700.0, 1, float(strength.max()) * 1.5
    return _City(pops, weight / weight.sum(), xy, sd, kind, strength)


def _box_shares(lat: F64, lon: F64) -> tuple[F64, F64]:
    """Where points lie in the box in degrees: (0 west … 1 east, 0 north … 1 south)."""
    return (lon - BOX[2]) / (BOX[3] - BOX[2]), (BOX[1] - lat) / (BOX[1] - BOX[0])


def _area_index(lat: F64, lon: F64, grid: tuple[int, int]) -> I64:
    """0-based cell of a (columns, rows) grid of equal rectangles in degrees over the box, numbered row by row
    from the north-west (the rectangles of :func:`simulated_areas`)."""
    cols, rows = grid
    east, south = _box_shares(lat, lon)
    col = np.clip((east * cols).astype(np.int64), 0, cols - 1)
    row = np.clip((south * rows).astype(np.int64), 0, rows - 1)
    return row * cols + col


def simulated_areas(seed: int) -> dict[str, Any]:
    """The 77 simulated community areas of the city for ``seed`` as a GeoJSON FeatureCollection (WGS84).

    Each feature has properties ``area_id`` (``"1"``–``"77"``, as in the incidents' Community Area column),
    ``name``, ``population`` and ``simulated: true``; the collection itself carries ``"simulated": true``.
    """
    _check_seed(seed)
    city = _city(seed)
    cols, rows = AREA_GRID
    dlat = (BOX[1] - BOX[0]) / rows
    dlon = (BOX[3] - BOX[2]) / cols
    features = []
    for i in range(cols * rows):
        r, c = divmod(i, cols)
        n, w = BOX[1] - r * dlat, BOX[2] + c * dlon
        s, e = n - dlat, w + dlon
        ring = [[round(w, 6), round(s, 6)], [round(e, 6), round(s, 6)], [round(e, 6), round(n, 6)],
                [round(w, 6), round(n, 6)], [round(w, 6), round(s, 6)]]  # fmt: skip
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "area_id": str(i + 1),
                    "name": f"Simulated Area {i + 1}",
                    "population": int(city.populations[i]),
                    "simulated": True,
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {
        "type": "FeatureCollection",
        "name": "crimelens simulated city: community areas",
        "simulated": True,
        "seed": seed,
        "features": features,
    }


# -- sampling -----------------------------------------------------------------------------------------------
def _profiles(family: str) -> tuple[F64, F64, float, float]:
    hours = np.asarray(_HOURS[family], dtype=np.float64)
    week = np.asarray(_WEEK[family], dtype=np.float64)
    amp, peak = _SEASON[family]
    return hours / hours.mean(), week / week.mean(), amp, peak


def _sample_times(rng: np.random.Generator, n: int, family: str, t0: int, t1: int) -> F64:
    """``n`` times (epoch seconds, local) in [t0, t1) from season × weekday × hour, by thinning."""
    hours, week, amp, peak = _profiles(family)
    bound = (1 + amp) * week.max() * hours.max()
    out: list[F64] = []
    need = n
    while need > 0:
        m = int(need * bound * 1.1) + 64
        t = rng.uniform(t0, t1, m)
        days = t / 86_400.0
        day = np.floor(days).astype(np.int64)
        doy = np.mod(days, _YEAR_DAYS)  # 1970-01-01 is day 0 of its year; drift < 1 day over this century
        rate = (
            (1 + amp * np.cos(2 * np.pi * (doy - peak) / _YEAR_DAYS))
            * week[(day + 3) % 7]  # 1970-01-01 was a Thursday
            * hours[((days - day) * 24).astype(np.int64)]
        )
        keep = t[rng.random(m) * bound < rate][:need]
        out.append(keep)
        need -= keep.size
    return np.concatenate(out)


def _sample_places(rng: np.random.Generator, n: int, family: str, city: _City) -> tuple[F64, F64]:
    """``n`` locations (metres from the south-west corner): gradient or a hotspot of the family's liking."""
    cols, rows = AREA_GRID
    hot_w = city.hot_strength * np.asarray(_AFFINITY[family])[city.hot_kind]
    hot_p = hot_w / hot_w.sum()
    xs: list[F64] = []
    ys: list[F64] = []
    need = n
    while need > 0:
        from_hot = rng.random(need) < _HOTSPOT_SHARE[family]
        area = rng.choice(cols * rows, size=need, p=city.area_weight)
        x = (area % cols + rng.random(need)) * (_WIDTH / cols)
        row = rows - 1 - area // cols  # from the south
        y = _AREA_ROW_Y[row] + rng.random(need) * (_AREA_ROW_Y[row + 1] - _AREA_ROW_Y[row])
        h = rng.choice(len(hot_p), size=need, p=hot_p)
        dx, dy = rng.standard_normal(need), rng.standard_normal(need)
        x = np.where(from_hot, city.hot_xy[h, 0] + dx * city.hot_sd[h], x)
        y = np.where(from_hot, city.hot_xy[h, 1] + dy * city.hot_sd[h], y)
        inside = (x >= 0) & (x < _WIDTH) & (y >= 0) & (y < _HEIGHT)
        xs.append(x[inside])
        ys.append(y[inside])
        need -= int(inside.sum())
    return np.concatenate(xs), np.concatenate(ys)


def _background(
    rng: np.random.Generator, n: int, city: _City, t0: int, t1: int, shares: F64
) -> tuple[F64, F64, F64, I64]:
    """``n`` background events: (time, x, y, offence-code index), grouped by family."""
    counts = rng.multinomial(n, shares)
    code_family = np.array([FAMILIES.index(row[5]) for row in IUCR_TABLE])
    ts, xs, ys, ks = [], [], [], []
    for f, family in enumerate(FAMILIES):
        codes = np.flatnonzero(code_family == f)
        m = int(counts[codes].sum())
        if m == 0:
            continue
        ts.append(_sample_times(rng, m, family, t0, t1))
        x, y = _sample_places(rng, m, family, city)
        xs.append(x)
        ys.append(y)
        ks.append(np.repeat(codes, counts[codes]).astype(np.int64))
    return np.concatenate(ts), np.concatenate(xs), np.concatenate(ys), np.concatenate(ks)


def _offspring(
    rng: np.random.Generator, t: F64, x: F64, y: F64, k: I64, eta: float, t1: int
) -> tuple[F64, F64, F64, I64, int]:
    """Add every generation of near-repeat offspring; returns the events and the number of generations."""
    parts = [(t, x, y, k)]
    generations = 0
    while eta > 0 and parts[-1][0].size:
        pt, px, py, pk = parts[-1]
        children = rng.poisson(eta, pt.size)
        idx = np.repeat(np.arange(pt.size), children)
        ct = pt[idx] + rng.exponential(_LAG_DAYS * 86_400.0, idx.size)
        cx = px[idx] + rng.standard_normal(idx.size) * _DISPLACEMENT_M
        cy = py[idx] + rng.standard_normal(idx.size) * _DISPLACEMENT_M
        ok = (ct < t1) & (cx >= 0) & (cx < _WIDTH) & (cy >= 0) & (cy < _HEIGHT)
        parts.append((ct[ok], cx[ok], cy[ok], pk[idx][ok]))
        generations += 1
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        generations,
    )


def _epoch(year: int) -> int:
    return int(np.datetime64(f"{year}-01-01", "s").astype(np.int64))


def _spring_forward_gaps(first: int, last: int) -> I64:
    """Epoch minute of 02:00 on the second Sunday of March (US rule since 2007) for each year."""
    starts = []
    for year in range(first, last + 1):
        march1 = np.datetime64(f"{year}-03-01", "D").astype(np.int64)
        sunday = march1 + (3 - march1) % 7  # epoch day 3 (1970-01-04) was a Sunday
        starts.append((sunday + 7) * 1440 + 120)
    return np.asarray(starts, dtype=np.int64)


# -- text columns ---------------------------------------------------------------------------------------------
_NS_NAMES = (
    "ALDER", "ASPEN", "BALSAM", "BIRCH", "BUCKEYE", "CEDAR", "CHESTNUT", "CYPRESS", "DOGWOOD", "ELDER", "ELM",
    "FIR", "GINKGO", "HAWTHORN", "HAZEL", "HEMLOCK", "HICKORY", "HOLLY", "JUNIPER", "LARCH", "LAUREL", "LINDEN",
    "LOCUST", "MAGNOLIA", "MAPLE", "MULBERRY", "OAK", "OSAGE", "PAWPAW", "PECAN", "PINE", "POPLAR", "REDBUD",
    "SASSAFRAS", "SPRUCE", "SUMAC", "SYCAMORE", "TAMARACK", "TUPELO", "WALNUT", "WILLOW", "YEW",
)  # fmt: skip
_EW_NAMES = (
    "ALBATROSS", "BITTERN", "CARDINAL", "CRANE", "DOVE", "EGRET", "FALCON", "FINCH", "GROUSE", "HERON", "IBIS",
    "JAY", "KESTREL", "KINGFISHER", "LARK", "MARTIN", "MERLIN", "ORIOLE", "OSPREY", "OWL", "PLOVER", "QUAIL",
    "RAVEN", "ROBIN", "SANDPIPER", "SPARROW", "SWALLOW", "SWIFT", "TANAGER", "TERN", "THRUSH", "WARBLER", "WREN",
)  # fmt: skip
_SUFFIXES = ("AVE", "ST", "BLVD", "DR")


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def _block_text(key: int) -> str:
    """Hundred-block address (e.g. ``"063XX S ELM AVE"``) from its packed key."""
    street = key % 1024 - 512
    hundred = (key // 1024) % 1024
    direction = (key // (1024 * 1024)) % 4
    on_ew = key // (4 * 1024 * 1024)
    d = "NSEW"[direction]
    if on_ew:  # east-west street: numbered south of Madison, birds to the north
        if street == 0:
            name = "MADISON ST"
        elif street < 0:
            name = f"{_ordinal(-street)} ST"
        else:
            name = f"{_EW_NAMES[street % len(_EW_NAMES)]} {_SUFFIXES[(street // len(_EW_NAMES)) % 4]}"
    elif street == 0:
        name = "STATE ST"
    else:
        i = street + 256
        name = f"{_NS_NAMES[i % len(_NS_NAMES)]} {_SUFFIXES[(i // len(_NS_NAMES)) % 4]}"
    return f"{hundred:03d}XX {d} {name}"


def _block_keys(rng: np.random.Generator, x: F64, y: F64) -> I64:
    """Pack each incident's hundred block: which street it is on, the direction and the hundred number."""
    ox, oy = (float(v[0]) for v in _plane([_ORIGIN[0]], [_ORIGIN[1]]))
    dx, dy = x - ox, y - oy
    on_ew = rng.random(x.size) < 0.5
    along = np.where(on_ew, dx, dy)  # the address number grows along the street
    across = np.where(on_ew, dy, dx)  # which street: the nearest one across
    hundred = np.minimum(np.abs(along) // _BLOCK_M, 1023).astype(np.int64)
    street = np.clip(np.rint(across / _BLOCK_M), -511, 511).astype(np.int64)
    direction = np.where(on_ew, np.where(dx < 0, 3, 2), np.where(dy < 0, 1, 0)).astype(np.int64)
    return ((on_ew.astype(np.int64) * 4 + direction) * 1024 + hundred) * 1024 + street + 512


def _case_prefix(year: int) -> str:
    """Two letters by year as in Chicago's case numbers (2019 → JC, 2020 → JD, …)."""
    i = 9 * 26 + 2 + (year - 2019)
    return chr(65 + i // 26) + chr(65 + i % 26)


# -- the public entry point -----------------------------------------------------------------------------------
def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"simulation seed: expected a non-negative integer, got {seed!r}")


def _validate(n_incidents: int, years: int, seed: int, start_year: int, branching_ratio: float) -> None:
    _check_seed(seed)
    if not 1 <= n_incidents <= 200_000_000:
        raise ConfigError(f"--incidents: expected a whole number from 1 to 200,000,000, got {n_incidents:,}")
    if not 1 <= years <= 50:
        raise ConfigError(f"--years: expected a whole number of years from 1 to 50, got {years}")
    if not 1970 <= start_year <= 2100 - years:
        raise ConfigError(f"--start-year: expected a year from 1970 to {2100 - years}, got {start_year}")
    if not 0.0 <= branching_ratio <= 0.9:
        raise ConfigError(
            f"--branching-ratio: expected a number from 0 to 0.9 (below 1: stable), got {branching_ratio}"
        )


def simulate(
    n_incidents: int,
    years: int,
    seed: int,
    out: Path,
    *,
    start_year: int = 2019,
    areas_out: Path | None = None,
    branching_ratio: float = DEFAULT_BRANCHING_RATIO,
    progress: Progress | None = None,
) -> SimulationSummary:
    """Write exactly ``n_incidents`` simulated incidents over ``years`` years from ``start_year`` to ``out``.

    The file has the Chicago "Crimes - 2001 to present" header (gzip-compressed when ``out`` ends in ``.gz``);
    ``areas_out``, when given, receives :func:`simulated_areas`. The same arguments always give the same bytes.
    ``branching_ratio`` is the mean number of near-repeat offspring per event (0 turns near repeats off).
    Methods: Lewis & Shedler (1979) thinning for the background; Hawkes (1971) / Mohler et al. (2011)
    branching for near repeats (see the module docstring).
    """
    _validate(n_incidents, years, seed, start_year, branching_ratio)
    started = time.perf_counter()
    steps = 5

    def step(done: int) -> None:
        if progress is not None:
            progress(done, steps)

    city = _city(seed)
    rng = np.random.default_rng([seed, 2])
    t0, t1 = _epoch(start_year), _epoch(start_year + years)
    shares = np.array([row[4] for row in IUCR_TABLE])
    shares = shares / shares.sum()
    step(1)

    n_background = max(1, round(n_incidents * (1 - branching_ratio)))
    t, x, y, k = _background(rng, n_background, city, t0, t1, shares)
    step(2)
    t, x, y, k, generations = _offspring(rng, t, x, y, k, branching_ratio, t1)
    generated = t.size
    if generated > n_incidents:  # trim at random
        keep = np.ones(generated, dtype=bool)
        keep[rng.choice(generated, generated - n_incidents, replace=False)] = False
        t, x, y, k = t[keep], x[keep], y[keep], k[keep]
    elif generated < n_incidents:  # top up with background events
        more = _background(rng, n_incidents - generated, city, t0, t1, shares)
        t, x, y, k = (np.concatenate([a, b]) for a, b in zip((t, x, y, k), more, strict=True))
    step(3)

    minute = (t // 60).astype(np.int64)
    del t
    heap = rng.random(minute.size)
    minute = np.where(heap < _HOUR_HEAP, minute - minute % 60, minute)
    minute = np.where(heap >= 1 - _MIDNIGHT_HEAP, minute - minute % 1440, minute)
    for gap in _spring_forward_gaps(start_year, start_year + years - 1):
        minute[(minute >= gap) & (minute < gap + 60)] += 60
    order = np.argsort(minute, kind="stable")
    minute, x, y, k = minute[order], x[order], y[order], k[order]
    del order, heap
    params = _params(seed, n_incidents, years, start_year, branching_ratio, n_background, generated, generations)
    step(4)

    _write_csv(_batches(rng, minute, x, y, k.astype(np.int8), start_year, years), out)
    if areas_out is not None:
        areas_out.parent.mkdir(parents=True, exist_ok=True)
        areas_out.write_text(json.dumps(simulated_areas(seed), indent=1) + "\n", encoding="utf-8")
    step(5)
    return SimulationSummary(n_incidents, years, seed, out, time.perf_counter() - started, params, areas_path=areas_out)


_CHUNK = 1 << 20  # rows formatted per batch: bounds memory; fixed, so the random stream (and output) is too


def _batches(
    rng: np.random.Generator, minute: I64, x: F64, y: F64, k: npt.NDArray[np.int8], start_year: int, years: int
) -> Any:
    """The incidents as a stream of Arrow record batches (numbers and dictionary-encoded text) for DuckDB."""
    import pyarrow as pa

    n = minute.size
    year_starts = np.asarray([_epoch(y) // 60 for y in range(start_year, start_year + years)], dtype=np.int64)
    year_first = np.searchsorted(minute, year_starts)
    prefixes = pa.array([_case_prefix(y) for y in range(start_year, start_year + years)], pa.string())
    places = sorted({p for s in _LOCATION_SETS.values() for p, _ in s})
    place_dict = pa.array(places, pa.string())
    code_sets = [row[8] for row in IUCR_TABLE]
    set_choices = {
        name: (np.cumsum([w for _, w in options]), np.asarray([places.index(p) for p, _ in options], np.int8))
        for name, options in _LOCATION_SETS.items()
    }
    columns = {
        "iucr": pa.array([row[0] for row in IUCR_TABLE], pa.string()),
        "primary_type": pa.array([row[1] for row in IUCR_TABLE], pa.string()),
        "description": pa.array([row[2] for row in IUCR_TABLE], pa.string()),
        "fbi": pa.array([row[3] for row in IUCR_TABLE], pa.string()),
    }
    arrest_p = np.asarray([row[6] for row in IUCR_TABLE])
    domestic_p = np.asarray([row[7] for row in IUCR_TABLE])
    block_text: dict[int, str] = {}
    dcols, drows = _DISTRICT_GRID

    def batch(lo: int, hi: int) -> Any:
        m = hi - lo
        kk, xx, yy, mm = k[lo:hi], x[lo:hi], y[lo:hi], minute[lo:hi]
        u = rng.random(m)
        place = np.zeros(m, dtype=np.int8)
        for name, (cum, ids) in set_choices.items():
            rows_in = np.isin(kk, [i for i, s in enumerate(code_sets) if s == name])
            pick = np.minimum(np.searchsorted(cum / cum[-1], u[rows_in], side="right"), ids.size - 1)
            place[rows_in] = ids[pick]
        arrest = rng.random(m) < arrest_p[kk]
        domestic = rng.random(m) < domestic_p[kk]
        unique_keys, block = np.unique(_block_keys(rng, xx, yy), return_inverse=True)
        texts = [block_text.setdefault(int(b), _block_text(int(b))) for b in unique_keys]
        lat, lon = (np.round(v, 9) for v in _degrees(xx, yy))  # as written: area ids agree with these
        district_cell = _area_index(lat, lon, _DISTRICT_GRID)
        east, south = _box_shares(lat, lon)
        sector = np.minimum((south * drows) % 1.0 * 3, 2).astype(np.int64) + 1
        beat_no = np.minimum((east * dcols) % 1.0 * 3, 2).astype(np.int64) + 1
        year_idx = np.searchsorted(year_starts, mm, side="right") - 1
        updated = (mm // 1440 + rng.integers(1, 31, m)) * 86_400 + (15 * 3600 + 46 * 60 + 55)
        codes = pa.array(kk)
        return pa.record_batch(
            {
                "id": pa.array(ID_BASE + 1 + np.arange(lo, hi, dtype=np.int64)),
                "case_prefix": pa.DictionaryArray.from_arrays(pa.array(year_idx.astype(np.int8)), prefixes),
                "case_no": pa.array(_CASE_BASE + np.arange(lo, hi, dtype=np.int64) - year_first[year_idx]),
                "ts": pa.array((mm * 60).astype("datetime64[s]")),
                "block": pa.array(texts, pa.string()).take(pa.array(block.astype(np.int32))),
                **{name: pa.DictionaryArray.from_arrays(codes, values) for name, values in columns.items()},
                "place": pa.DictionaryArray.from_arrays(pa.array(place), place_dict),
                "arrest": pa.array(arrest),
                "domestic": pa.array(domestic),
                "beat": pa.array(((district_cell + 1) * 100 + sector * 10 + beat_no).astype(np.int32)),
                "district": pa.array((district_cell + 1).astype(np.int32)),
                "ward": pa.array((_area_index(lat, lon, _WARD_GRID) + 1).astype(np.int32)),
                "area": pa.array((_area_index(lat, lon, AREA_GRID) + 1).astype(np.int32)),
                "year": pa.array((start_year + year_idx).astype(np.int32)),
                "updated": pa.array(updated.astype("datetime64[s]")),
                "lat": pa.array(lat),
                "lon": pa.array(lon),
            }
        )

    first = batch(0, min(n, _CHUNK))

    def stream() -> Any:
        yield first
        for lo in range(_CHUNK, n, _CHUNK):
            yield batch(lo, min(n, lo + _CHUNK))

    return pa.RecordBatchReader.from_batches(first.schema, stream())


_SELECT = """
SELECT id AS "ID",
       printf('%s%06d', case_prefix, case_no) AS "Case Number",
       strftime(ts, '%m/%d/%Y %I:%M:%S %p') AS "Date",
       block AS "Block", iucr AS "IUCR", primary_type AS "Primary Type", description AS "Description",
       place AS "Location Description", arrest AS "Arrest", domestic AS "Domestic",
       lpad(CAST(beat AS VARCHAR), 4, '0') AS "Beat", lpad(CAST(district AS VARCHAR), 3, '0') AS "District",
       ward AS "Ward", area AS "Community Area", fbi AS "FBI Code",
       NULL::INTEGER AS "X Coordinate", NULL::INTEGER AS "Y Coordinate", year AS "Year",
       strftime(updated, '%m/%d/%Y %I:%M:%S %p') AS "Updated On",
       printf('%.9f', lat) AS "Latitude", printf('%.9f', lon) AS "Longitude",
       printf('(%.9f, %.9f)', lat, lon) AS "Location",
       'SIMULATED' AS "crimelens_simulated"
FROM incidents
"""


def _write_csv(table: Any, out: Path) -> None:
    """Format and write with DuckDB's parallel CSV writer (row order kept; gzip when ``out`` ends in .gz)."""
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    compression = "gzip" if out.name.endswith(".gz") else "none"
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET memory_limit = '1GB'")
        con.register("incidents", table)
        target = str(out).replace("'", "''")
        con.execute(f"COPY ({_SELECT}) TO '{target}' (FORMAT csv, HEADER true, COMPRESSION {compression})")
    except duckdb.IOException as exc:
        raise SourceError(f"{out}: cannot write the simulated file: expected a writable file path ({exc})") from None
    finally:
        con.close()


def _params(
    seed: int,
    n_incidents: int,
    years: int,
    start_year: int,
    eta: float,
    n_background: int,
    generated: int,
    generations: int,
) -> dict[str, Any]:
    """Every parameter of a run, for the record (docs, report metadata, tests)."""
    shares = np.array([row[4] for row in IUCR_TABLE])
    shares = shares / shares.sum()
    family_shares = {f: float(shares[[row[5] == f for row in IUCR_TABLE]].sum()) for f in FAMILIES}
    return {
        "simulated": True,
        "seed": seed,
        "n_incidents": n_incidents,
        "years": years,
        "start_year": start_year,
        "box": list(BOX),
        "area_grid": list(AREA_GRID),
        "district_grid": list(_DISTRICT_GRID),
        "ward_grid": list(_WARD_GRID),
        "branching_ratio": eta,
        "lag_days": _LAG_DAYS,
        "displacement_m": _DISPLACEMENT_M,
        "n_hotspots": _N_HOTSPOTS,
        "hotspot_share": dict(_HOTSPOT_SHARE),
        "gradient_south_west": list(_GRADIENT),
        "season": {f: list(v) for f, v in _SEASON.items()},
        "week": {f: list(v) for f, v in _WEEK.items()},
        "hours": {f: list(v) for f, v in _HOURS.items()},
        "family_shares": family_shares,
        "hour_heap": _HOUR_HEAP,
        "midnight_heap": _MIDNIGHT_HEAP,
        "background_events": n_background,
        "generated_events": generated,
        "generations": generations,
        "trimmed": max(0, generated - n_incidents),
        "topped_up": max(0, n_incidents - generated),
    }
