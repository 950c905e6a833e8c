"""Grid hotspot forecasters: where crime is most likely next period, as expected counts per square cell.

Every forecaster follows the estimator contract (``__init__`` stores parameters; ``fit(events, cutoff,
horizon)`` returns self and uses only incidents *before* ``cutoff``; learned state ends in ``_``;
``predict()`` gives each cell's expected count over ``[cutoff, cutoff + horizon)`` and ``score_cells()`` the
ranking score; ``random_state`` where a method draws). Cells are those of a :class:`GridEvents` rectangle, in
the row-major order of :class:`crimelens.analysis.incidents.panel.GridPanel`. All computation is vectorised
numpy / scipy (kernels are applied by FFT convolution, pairs of the point process are built offset by offset),
never a Python loop over cells.

- :class:`NaiveForecaster`: counts over the last N days.
- :class:`RetrospectiveForecaster`: quartic-kernel density of the last N days (retrospective hotspot map).
- :class:`ProspectiveForecaster`: Bowers, Johnson & Pease (2004) prospective hotspotting.
- :class:`SpaceTimeKDEForecaster`: Gaussian in space × exponential decay in time.
- :class:`SEPPForecaster`: the grid self-exciting point process of Mohler et al. (2015), fitted by EM.
- :class:`LightGBMForecaster`: gradient-boosted Poisson regression on lagged cell features.

:func:`nb_interval` turns an expected count into a 90 % interval (the shortest whole-number range under a
negative binomial whose dispersion :func:`nb_dispersion` estimates on earlier periods); :func:`pit_coverage`
checks the calibration of those distributions (the randomised PIT).

Counts are of *recorded* incidents: a forecast of them reproduces where police record crime (reporting,
patrol intensity), and acting on it changes what gets recorded next (a feedback loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crimelens.errors import ConfigError, DataError, NotFittedError
from crimelens.geo import FloatArray, IntArray

__all__ = [
    "FORECASTERS",
    "GridEvents",
    "LightGBMForecaster",
    "NaiveForecaster",
    "ProspectiveForecaster",
    "RetrospectiveForecaster",
    "SEPPForecaster",
    "SpaceTimeKDEForecaster",
    "downsample_zeros",
    "lagged_features",
    "make_forecaster",
    "nb_dispersion",
    "nb_interval",
    "pit_coverage",
]

BoolArray = npt.NDArray[np.bool_]


# -- the data every forecaster takes ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GridEvents:
    """Incidents placed on a rectangle of grid cells.

    Parameters
    ----------
    nx, ny : int
        Cells west–east and south–north of the rectangle.
    cell_m : float
        Cell size in metres.
    cell : IntArray
        Each incident's cell, row-major from the south-west corner (``row · nx + column``).
    x, y : FloatArray
        Each incident's position in metres from the rectangle's south-west corner (``0 ≤ x < nx · cell_m``).
    day : IntArray
        Each incident's day (days since any fixed epoch, the same for ``cutoff``).
    frac : FloatArray
        Time of day as a fraction of the day (the middle of the hour or day it is known to).
    resolution : FloatArray
        How precisely the time is known, in days (1 for a date only, 1/24 for an hour, 1/1440 for a minute).
    violent : BoolArray
        Whether the offence is violent (homicide, rape, robbery, aggravated assault).
    area : IntArray
        Each incident's area (neighbourhood, community area) as an integer code, −1 unknown.
    """

    nx: int
    ny: int
    cell_m: float
    cell: IntArray
    x: FloatArray
    y: FloatArray
    day: IntArray
    frac: FloatArray
    resolution: FloatArray
    violent: BoolArray
    area: IntArray

    def __post_init__(self) -> None:
        n = np.asarray(self.cell).size
        for name in ("x", "y", "day", "frac", "resolution", "violent", "area"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise DataError(f"grid events: expected {n} values of {name} (one per incident), got another number")
        if n and (int(np.min(self.cell)) < 0 or int(np.max(self.cell)) >= self.nx * self.ny):
            raise DataError(f"grid events: expected cells 0 … {self.nx * self.ny - 1}, got one outside")

    @classmethod
    def build(
        cls,
        nx: int,
        ny: int,
        cell_m: float,
        x: Any,
        y: Any,
        day: Any,
        *,
        frac: Any = None,
        resolution: Any = None,
        violent: Any = None,
        area: Any = None,
    ) -> GridEvents:
        """Events from positions (metres from the south-west corner) and days; cells follow from positions.

        ``frac`` defaults to 0.5 (the middle of the day) and ``resolution`` to 1 day: date-only timestamps.
        """
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        cx = np.floor(xs / cell_m).astype(np.int64)
        cy = np.floor(ys / cell_m).astype(np.int64)
        if xs.size and (cx.min() < 0 or cx.max() >= nx or cy.min() < 0 or cy.max() >= ny):
            raise DataError(f"grid events: expected positions within the {nx} × {ny} cells of {cell_m:g} m")
        n = xs.size
        return cls(
            nx=int(nx),
            ny=int(ny),
            cell_m=float(cell_m),
            cell=cy * nx + cx,
            x=xs,
            y=ys,
            day=np.asarray(day, dtype=np.int64),
            frac=np.full(n, 0.5) if frac is None else np.asarray(frac, dtype=float),
            resolution=np.ones(n) if resolution is None else np.asarray(resolution, dtype=float),
            violent=np.zeros(n, dtype=bool) if violent is None else np.asarray(violent, dtype=bool),
            area=np.full(n, -1, dtype=np.int64) if area is None else np.asarray(area, dtype=np.int64),
        )

    @property
    def n_cells(self) -> int:
        return self.nx * self.ny

    @property
    def time(self) -> FloatArray:
        """Time in days (day + fraction of the day)."""
        out: FloatArray = self.day + self.frac
        return out

    def select(self, keep: BoolArray) -> GridEvents:
        """The incidents where ``keep`` is true."""
        return GridEvents(
            nx=self.nx, ny=self.ny, cell_m=self.cell_m, cell=self.cell[keep], x=self.x[keep], y=self.y[keep],
            day=self.day[keep], frac=self.frac[keep], resolution=self.resolution[keep],
            violent=self.violent[keep], area=self.area[keep],
        )  # fmt: skip

    def window(self, start: float, end: float) -> GridEvents:
        """The incidents of days ``start ≤ day < end``."""
        return self.select((self.day >= start) & (self.day < end))

    def counts(self, start: float, end: float, weights: Any = None) -> FloatArray:
        """Incidents per cell on days ``start ≤ day < end`` (optionally weighted)."""
        keep = (self.day >= start) & (self.day < end)
        w = None if weights is None else np.asarray(weights, dtype=float)[keep]
        out: FloatArray = np.bincount(self.cell[keep], weights=w, minlength=self.n_cells).astype(float)
        return out


def _check_positive(name: str, value: Any, *, whole: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (float(value) >= 0 if allow_zero else float(value) > 0)
    if ok and whole:
        ok = float(value) == int(value)
    if not ok:
        kind = "a whole number" if whole else "a number"
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}: expected {kind} {bound}, got {value!r}")


class _Forecaster:
    """What every grid forecaster shares: the fitted check, the cutoff guard and the scaled expectation."""

    name = ""
    random_state: int | None = None
    expected_: FloatArray

    def _begin(self, events: GridEvents, cutoff: int, horizon: int) -> GridEvents:
        """Validate and keep only incidents before ``cutoff`` (the guard against leakage)."""
        if not isinstance(events, GridEvents):
            raise DataError(f"events: expected GridEvents, got {type(events).__name__}")
        _check_positive("horizon", horizon, whole=True)
        self.cutoff_ = int(cutoff)
        self.horizon_ = int(horizon)
        self.n_cells_ = events.n_cells
        return events.select(events.day < self.cutoff_)

    def _check_fitted(self) -> None:
        if "expected_" not in self.__dict__:
            raise NotFittedError(f"{type(self).__name__}: call fit(events, cutoff, horizon) before predicting")

    def predict(self) -> FloatArray:
        """Expected incidents per cell over ``[cutoff, cutoff + horizon)``."""
        self._check_fitted()
        return self.expected_

    def score_cells(self) -> FloatArray:
        """The ranking score per cell (higher: more likely); here the expected count."""
        return self.predict()

    def _scale(self, surface: FloatArray, events: GridEvents, window: int) -> FloatArray:
        """A risk surface as expected counts: its shares of the recent rate (incidents of the last ``window``
        days × horizon / window)."""
        recent = float(np.count_nonzero(events.day >= self.cutoff_ - window))
        total = float(surface.sum())
        rate = recent * self.horizon_ / window
        out: FloatArray = surface / total * rate if total > 0 else np.zeros_like(surface)
        return out


# -- kernels on the grid ----------------------------------------------------------------------------------
def _subgrid(cell_m: float, target_m: float = 75.0) -> int:
    """Sub-cells per cell side so kernels are evaluated on a ~75 m lattice (about the precision of recorded
    locations, often offset to an intersection)."""
    return max(1, round(cell_m / target_m))


def _convolve_cells(
    events: GridEvents, weights: FloatArray, kernel_of_distance: Any, reach_m: float, sub: int
) -> FloatArray:
    """Σ_i w_i K(‖cell point − event i‖), averaged over each cell's ``sub × sub`` lattice points.

    Events are placed at the centre of their ``cell_m / sub`` sub-cell (``sub = 1``: at their cell's centre);
    the kernel is applied by FFT convolution, so the cost does not grow with the number of events.
    """
    from scipy.signal import fftconvolve

    step = events.cell_m / sub
    mx, my = events.nx * sub, events.ny * sub
    sx = np.clip(np.floor(events.x / step).astype(np.int64), 0, mx - 1)
    sy = np.clip(np.floor(events.y / step).astype(np.int64), 0, my - 1)
    grid = np.bincount(sy * mx + sx, weights=weights, minlength=mx * my).reshape(my, mx)
    r = math.floor(reach_m / step)
    offs = np.arange(-r, r + 1) * step
    dist = np.hypot(offs[None, :], offs[:, None])
    kernel = kernel_of_distance(dist)
    if grid.sum() == 0:
        return np.zeros(events.n_cells)
    dens = fftconvolve(grid, kernel, mode="full")[r : r + my, r : r + mx]
    dens = np.clip(dens, 0.0, None)  # FFT round-off
    out: FloatArray = dens.reshape(events.ny, sub, events.nx, sub).mean(axis=(1, 3)).ravel()
    return out


def quartic(d: Any, bandwidth: float) -> FloatArray:
    """Quartic (biweight) kernel ``(1 − (d/h)²)²`` for ``d < h``, else 0 (unnormalised; Chainey 2013)."""
    u = np.asarray(d, dtype=float) / bandwidth
    out: FloatArray = np.where(u < 1, (1 - u**2) ** 2, 0.0)
    return out


class NaiveForecaster(_Forecaster):
    """Counts over the last N days: the place-based persistence forecast.

    Score of a cell: its incidents on the ``window`` days before the cutoff; expected count: that count ×
    horizon / window.

    Parameters
    ----------
    window : int
        Days counted (365: last year's hotspots).

    References
    ----------
    Chainey, S., Tompson, L. & Uhlig, S. (2008). The utility of hotspot mapping for predicting spatial
    patterns of crime. *Security Journal* 21, 4-28. Adepeju, M., Rosser, G. & Cheng, T. (2016). Novel evaluation
    metrics for sparse spatio-temporal point process hotspot predictions. *Crime Science* 5(7) (naive counts as
    the baseline every forecaster must beat).
    """

    name = "naive"

    def __init__(self, window: int = 365) -> None:
        self.window = window

    def fit(self, events: GridEvents, cutoff: int, horizon: int = 7) -> NaiveForecaster:
        _check_positive("window", self.window, whole=True)
        ev = self._begin(events, cutoff, horizon)
        self.counts_ = ev.counts(self.cutoff_ - self.window, self.cutoff_)
        self.expected_ = self.counts_ * self.horizon_ / self.window
        return self

    def score_cells(self) -> FloatArray:
        self._check_fitted()
        return self.counts_


class RetrospectiveForecaster(_Forecaster):
    """Retrospective hotspot map: a quartic-kernel density of the incidents of the last N days.

    ``score(c) = Σ_i K(‖c − x_i‖)`` over incidents of the window, with the quartic kernel
    ``K(d) = (1 − d²/h²)²`` for ``d < h``, averaged over the cell (a ~75 m lattice), then scaled to the recent
    rate as expected counts.

    Parameters
    ----------
    window : int
        Days of incidents used.
    bandwidth : float
        Kernel radius h in metres.

    References
    ----------
    Chainey, S. (2013). Examining the influence of cell size and bandwidth size on kernel density estimation
    crime hotspot maps for predicting spatial patterns of crime. *Bulletin of the Geographical Society of
    Liège* 60, 7-19. Bowers, Johnson & Pease (2004) call this the retrospective method; open_cp's
    ``RetroHotSpot`` is the same estimator.
    """

    name = "retrospective"

    def __init__(self, window: int = 365, bandwidth: float = 300.0) -> None:
        self.window = window
        self.bandwidth = bandwidth

    def fit(self, events: GridEvents, cutoff: int, horizon: int = 7) -> RetrospectiveForecaster:
        _check_positive("window", self.window, whole=True)
        _check_positive("bandwidth", self.bandwidth)
        ev = self._begin(events, cutoff, horizon).window(cutoff - self.window, cutoff)
        h = float(self.bandwidth)
        self.surface_ = _convolve_cells(ev, np.ones(ev.cell.size), lambda d: quartic(d, h), h, _subgrid(ev.cell_m))
        self.expected_ = self._scale(self.surface_, ev, self.window)
        return self


class ProspectiveForecaster(_Forecaster):
    """Prospective hotspotting (Bowers, Johnson & Pease 2004).

    ``score(c) = Σ_i 1/(1 + d_i) · 1/(1 + w_i)`` over incidents within ``bandwidth`` metres and ``weeks``
    weeks of the cutoff, where ``d_i`` is the distance between the centres of cell c and of the incident's cell
    in cell widths, and ``w_i`` the whole weeks elapsed between the incident and the cutoff (0 for the last
    week), as in the paper (their cells were 50 m, the bandwidths 400 m and two months).

    Parameters
    ----------
    bandwidth : float
        Spatial bandwidth in metres (cells whose centres are farther do not count).
    weeks : int
        Temporal bandwidth in weeks.

    References
    ----------
    Bowers, K. J., Johnson, S. D. & Pease, K. (2004). Prospective hot-spotting: the future of crime mapping?
    *British Journal of Criminology* 44(5), 641-658.
    """

    name = "prospective"

    def __init__(self, bandwidth: float = 400.0, weeks: int = 8) -> None:
        self.bandwidth = bandwidth
        self.weeks = weeks

    def fit(self, events: GridEvents, cutoff: int, horizon: int = 7) -> ProspectiveForecaster:
        _check_positive("bandwidth", self.bandwidth)
        _check_positive("weeks", self.weeks, whole=True)
        ev = self._begin(events, cutoff, horizon).window(cutoff - 7 * self.weeks, cutoff)
        elapsed = (cutoff - 1 - ev.day) // 7  # whole weeks: 0 for the last 7 days
        reach = float(self.bandwidth) / ev.cell_m  # in cell widths
        kernel = _prospective_kernel(reach, ev.cell_m)
        self.surface_ = _convolve_cells(
            ev, (1.0 / (1.0 + elapsed)).astype(np.float64), kernel, reach * ev.cell_m + 1e-6, 1
        )
        self.expected_ = self._scale(self.surface_, ev, 7 * self.weeks)
        return self


def _prospective_kernel(reach_cells: float, cell_m: float) -> Any:
    """Bowers' spatial weight 1/(1 + d), d in cell widths, 0 beyond the bandwidth; the lattice gives metres."""
    return lambda d_m: np.where(d_m / cell_m <= reach_cells + 1e-9, 1.0 / (1.0 + d_m / cell_m), 0.0)


class SpaceTimeKDEForecaster(_Forecaster):
    """Space-time kernel density: a Gaussian kernel in space times an exponential decay in time.

    ``score(c) = Σ_i exp(−‖c − x_i‖² / 2σ²) · exp(−(T − t_i)/τ)`` over incidents of the window (T the cutoff),
    the spatial kernel truncated at 3σ and averaged over the cell (a ~75 m lattice).

    Parameters
    ----------
    window : int
        Days of incidents used.
    sigma : float
        Spatial bandwidth σ in metres.
    tau : float
        Temporal e-folding time τ in days.

    References
    ----------
    Nakaya, T. & Yano, K. (2010). Visualising crime clusters in a space-time cube: an exploratory data-analysis
    approach using space-time kernel density estimation and scan statistics. *Transactions in GIS* 14(3),
    223-239. Brunsdon, C., Corcoran, J. & Higgs, G. (2007). Visualising space and time in crime patterns: a
    comparison of methods. *Computers, Environment and Urban Systems* 31(1), 52-75.
    """

    name = "stkde"

    def __init__(self, window: int = 365, sigma: float = 150.0, tau: float = 120.0) -> None:
        self.window = window
        self.sigma = sigma
        self.tau = tau

    def fit(self, events: GridEvents, cutoff: int, horizon: int = 7) -> SpaceTimeKDEForecaster:
        _check_positive("window", self.window, whole=True)
        _check_positive("sigma", self.sigma)
        _check_positive("tau", self.tau)
        ev = self._begin(events, cutoff, horizon).window(cutoff - self.window, cutoff)
        s = float(self.sigma)
        weights = np.exp(-(cutoff - ev.time) / float(self.tau))
        self.surface_ = _convolve_cells(
            ev, weights, lambda d: np.exp(-(d**2) / (2 * s * s)) * (d <= 3 * s), 3 * s, _subgrid(ev.cell_m)
        )
        self.expected_ = self._scale(self.surface_, ev, self.window)
        return self


# -- the grid self-exciting point process ----------------------------------------------------------------
def _pairs(cell: IntArray, t: FloatArray, res: FloatArray, max_lag: float) -> tuple[IntArray, IntArray, FloatArray]:
    """(parent j, child i, lag t_i − t_j) of every ordered pair in one cell with ``0 < lag ≤ max_lag``.

    Pairs closer than the coarser time precision of the two are *unordered* (two incidents known only to the
    same day: which came first is unknown) and left out. Built offset by offset in (cell, time) order: a loop
    over the offset, never over cells.
    """
    order = np.lexsort((t, cell))
    c, tt, rr = cell[order], t[order], res[order]
    parents: list[IntArray] = []
    children: list[IntArray] = []
    lags: list[FloatArray] = []
    n = c.size
    k = 1
    while k < n:
        same = c[k:] == c[:-k]
        lag = tt[k:] - tt[:-k]
        ok = same & (lag <= max_lag)
        if not ok.any():
            break
        ordered = ok & (lag >= np.maximum(rr[k:], rr[:-k]) - 1e-9)
        idx = np.flatnonzero(ordered)
        parents.append(order[idx])
        children.append(order[idx + k])
        lags.append(lag[idx])
        k += 1
    if not parents:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(parents), np.concatenate(children), np.concatenate(lags)


class SEPPForecaster(_Forecaster):
    """Grid self-exciting point process (ETAS-like Hawkes process per cell), fitted by expectation-maximisation.

    The intensity in cell n is ``λ_n(t) = μ_n + Σ_{t_i < t, i in n} θ ω exp(−ω (t − t_i))``: a constant
    background per cell plus exponentially decaying excitation by the cell's earlier incidents. EM (Mohler et
    al. 2015, appendix; Veen & Schoenberg 2008): the E step gives each incident the probabilities that it is
    background (``μ/λ``) or triggered by each earlier incident (``θωe^{−ωΔ}/λ``); the M step sets
    ``μ_n = Σ p_background / T``, ``θ = Σ p_triggered / N`` and ``ω = Σ p_triggered / Σ p_triggered Δ``.
    The forecast for ``[T, T + h)`` integrates the intensity:
    ``μ_n h + θ Σ_i (e^{−ω(T − t_i)} − e^{−ω(T + h − t_i)})``.

    **Date-only timestamps.** Two incidents known only to the same day cannot be ordered; a fit that orders
    them (both at midnight, or by record order) reads repeat records of one event as instant triggering and
    drives ω to infinity, while a fit that drops them with a strict ``<`` on whole days shifts every lag.
    Here times sit at the middle of the unit they are known to (noon for a date, half past for an hour) and a
    pair closer than the coarser precision of the two is treated as *unordered*: neither triggers the other
    (it still counts in the background). Triggering is then learned from lags of one day or more.

    Parameters
    ----------
    window : int
        Days of incidents fitted (the background rate is per day over this window).
    max_lag : float
        Longest lag in days a pair may have (the kernel is truncated there).
    iterations : int
        EM iterations (at most; stops when θ and ω change by less than 1e-6).

    References
    ----------
    Mohler, G. O., Short, M. B., Brantingham, P. J., Schoenberg, F. P. & Tita, G. E. (2011). Self-exciting point
    process modeling of crime. *Journal of the American Statistical Association* 106(493), 100-108.
    Mohler, G. O., Short, M. B., Malinowski, S., Johnson, M., Tita, G. E., Bertozzi, A. L. & Brantingham, P. J.
    (2015). Randomized controlled field trials of predictive policing. *Journal of the American Statistical
    Association* 110(512), 1399-1411. Veen, A. & Schoenberg, F. P. (2008). Estimation of space-time branching
    process models in seismology using an EM-type algorithm. *JASA* 103(482), 614-624.
    """

    name = "sepp"

    def __init__(self, window: int = 365, max_lag: float = 90.0, iterations: int = 60) -> None:
        self.window = window
        self.max_lag = max_lag
        self.iterations = iterations

    def fit(self, events: GridEvents, cutoff: int, horizon: int = 7) -> SEPPForecaster:
        _check_positive("window", self.window, whole=True)
        _check_positive("max_lag", self.max_lag)
        _check_positive("iterations", self.iterations, whole=True)
        ev = self._begin(events, cutoff, horizon).window(cutoff - self.window, cutoff)
        t = ev.time
        big_t = float(self.window)
        n = t.size
        _, child, lag = _pairs(ev.cell, t, ev.resolution, float(self.max_lag))
        counts = np.bincount(ev.cell, minlength=ev.n_cells).astype(float)
        mu = counts / (2 * big_t)
        theta, omega = 0.5, 1.0 / 7.0
        self.n_iter_ = 0
        for it in range(int(self.iterations)):
            trig = theta * omega * np.exp(-omega * lag)
            lam = mu[ev.cell] + np.bincount(child, weights=trig, minlength=n)
            p_trig = trig / lam[child]
            p_back = mu[ev.cell] / lam
            mu = np.bincount(ev.cell, weights=p_back, minlength=ev.n_cells) / big_t
            s = float(p_trig.sum())
            new_theta = s / n if n else 0.0
            new_omega = s / float((p_trig * lag).sum()) if s > 0 else omega
            new_omega = min(new_omega, 1e3)
            done = abs(new_theta - theta) < 1e-6 and abs(new_omega - omega) < 1e-6 * max(1.0, omega)
            theta, omega = new_theta, new_omega
            self.n_iter_ = it + 1
            if done or s == 0:
                break
        self.mu_, self.theta_, self.omega_ = mu, theta, omega
        since = cutoff - t
        excite = theta * (np.exp(-omega * since) - np.exp(-omega * (since + horizon)))
        self.expected_ = mu * horizon + np.bincount(ev.cell, weights=excite, minlength=ev.n_cells)
        return self


# -- gradient boosting on lagged cell features ----------------------------------------------------------
#: The features of :class:`LightGBMForecaster`, in order.
LGBM_FEATURES = (
    "n7", "n28", "n91", "n365", "ring1_n28", "ring1_n365", "ring2_n365", "area_n365_per_cell",
    "days_since_last", "violent_share_365", "same_season_last_year", "season_sin", "season_cos",
    "n730", "decayed_365", "ring1_decayed_365",
)  # fmt: skip


def _ring_sum(values: FloatArray, nx: int, ny: int, radius: int) -> FloatArray:
    """Σ of ``values`` over the cells at Chebyshev distance exactly ``radius`` (the ring around each cell).

    Summed over the ring's ``8 · radius`` shifted copies of the zero-padded grid (cells beyond the edge count 0),
    rounded to 1e-6.
    """
    grid = np.pad(values.reshape(ny, nx), radius)
    total = np.zeros((ny, nx))
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if max(abs(dx), abs(dy)) == radius:
                total += grid[radius + dy : radius + dy + ny, radius + dx : radius + dx + nx]
    out: FloatArray = np.clip(np.rint(total * 1e6) / 1e6, 0, None).ravel()
    return out


def lagged_features(events: GridEvents, cutoff: int, horizon: int, cells: BoolArray | None = None) -> FloatArray:
    """The :data:`LGBM_FEATURES` of every cell at ``cutoff`` (of the ``cells`` where true, when given), from
    incidents before it only (cells × features).

    Counts of the cell over the last 7, 28, 91 and 365 days; of its ring of 8 neighbours (28, 365 days) and of
    the ring at two cells (365 days); of its area per cell (the area most of the cell's incidents fall in);
    days since its last incident (capped at 730); the violent share of its last 365 days (NaN without any);
    its count over the same weeks a year before (from 365 days before the cutoff, ``horizon`` days, widened by
    a period each side); the season of the cutoff (sine and cosine of the day of the year); its count over 730
    days; and its whole history before the cutoff with each incident weighted ``exp(−age / 365 days)`` (the
    time scale chosen on 2018 weeks of Toronto, before any 2019 test week was scored), for the cell and its
    ring of 8 neighbours. Long memory matters: a cell's rate is better estimated from several years than one.
    """
    ev = events.select(events.day < cutoff)
    nx, ny, nc = ev.nx, ev.ny, ev.n_cells
    n = {w: ev.counts(cutoff - w, cutoff) for w in (7, 28, 91, 365)}
    last = np.full(nc, -np.inf)
    np.maximum.at(last, ev.cell, ev.day.astype(float))
    days_since = np.minimum(cutoff - last, 730.0)
    violent = ev.counts(cutoff - 365, cutoff, ev.violent)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n[365] > 0, violent / n[365], np.nan)
    # area: each cell's most frequent area over its incidents before the cutoff
    area_feature = np.zeros(nc)
    known = ev.area >= 0
    if known.any():
        n_area = int(ev.area.max()) + 1
        # (cell, area) tallies over the cells with a known area only (a few thousand rows, not every cell)
        has = np.bincount(ev.cell[known], minlength=nc) > 0
        row = np.cumsum(has) - 1
        with_area = np.flatnonzero(has)
        pair = np.bincount(row[ev.cell[known]] * n_area + ev.area[known], minlength=with_area.size * n_area)
        cell_area = np.full(nc, -1, dtype=np.int64)
        cell_area[with_area] = pair.reshape(with_area.size, n_area).argmax(axis=1)
        recent = (ev.day >= cutoff - 365) & known
        area_total = np.bincount(ev.area[recent], minlength=n_area).astype(float)
        cells_in = np.bincount(cell_area[has], minlength=n_area).astype(float)
        per_cell = np.divide(area_total, cells_in, out=np.zeros(n_area), where=cells_in > 0)
        area_feature = np.where(has, per_cell[np.maximum(cell_area, 0)], 0.0)
    season = ev.counts(cutoff - 365 - horizon, cutoff - 365 + 2 * horizon)
    decayed = ev.counts(-(2**62), cutoff, np.exp(-(cutoff - ev.day) / 365.0))
    doy = 2 * math.pi * ((cutoff % 365.25) / 365.25)
    cols = [
        n[7], n[28], n[91], n[365],
        _ring_sum(n[28], nx, ny, 1), _ring_sum(n[365], nx, ny, 1), _ring_sum(n[365], nx, ny, 2),
        area_feature, days_since, share, season, np.full(nc, math.sin(doy)), np.full(nc, math.cos(doy)),
        ev.counts(cutoff - 730, cutoff), decayed, _ring_sum(decayed, nx, ny, 1),
    ]  # fmt: skip
    rows = None if cells is None else np.flatnonzero(cells)
    out: FloatArray = np.column_stack(cols if rows is None else [c[rows] for c in cols])
    return out


#: Days of history a training cutoff of :class:`LightGBMForecaster` needs before it (its 91-day features).
MIN_HISTORY_DAYS = 91


class LightGBMForecaster(_Forecaster):
    """Gradient-boosted Poisson regression of next period's count on lagged cell features (LightGBM).

    Trained on earlier cutoffs only: ``n_cutoffs`` cutoffs spread over the ``window`` days before the
    *refit date* (each at least ``target_days`` before it, so its target period ends before that date), rows
    = cells with an incident before that cutoff, features :func:`lagged_features`, target = the cell's count
    over the next ``target_days`` days (rescaled to the horizon). Small and deterministic (one thread, fixed seed).
    A training cutoff needs :data:`MIN_HISTORY_DAYS` of incidents before it; with none (a short history, such as
    one month), it cannot learn and gives the naive forecast instead (``fallback_`` is True).

    **Refitting every ``refit_days``.** The trees are refitted on a fixed schedule: the refit date of a forecast
    cutoff is the latest day ``≤ cutoff`` that is a whole number of ``refit_days`` since 1970-01-01, and the
    model learns only from incidents before it. Forecasts whose cutoffs share a refit date share one model (the
    same estimator object, fitted on the same events, keeps it: ``refitted_`` says whether this call trained);
    only the features are recomputed at each cutoff, from every incident before it. The model is thus at most
    ``refit_days − 1`` days older than the cutoff, and never sees anything on or after the cutoff. The default,
    91 days (13 weeks), was chosen on the 52 weeks of 2018 of Toronto, before any 2019 week was scored: it kept the
    margin over naive of a refit every 28 days while a week's forecast costs, averaged over the forecasts a refit
    serves, well under 0.1 s on a 150 m grid of Toronto.

    **Fewer rows of cold cells (negative downsampling).** Most training rows are cells with nothing in their
    target period, and most of those are *cold*: at most ``cold_max`` incidents over the 365 days before the
    training cutoff. A seeded ``zero_fraction`` of those cold zero rows is kept, each weighted ``1 / zero_fraction``
    (:func:`downsample_zeros`); every other row is kept with weight 1. The weighted Poisson likelihood keeps its
    expectation, so the rates stay unbiased, and the trees grow on about half the rows (Toronto at 150 m: 94,000
    → about 43,000 rows). Warm cells, where the top of the ranking is decided, keep all their rows. The rows kept
    depend only on ``random_state`` and the refit date.

    Parameters
    ----------
    window : int
        Days over which training cutoffs are spread.
    n_cutoffs : int
        Training cutoffs.
    target_days : int
        Days the training target counts (at least the horizon), rescaled to the horizon: a month's count is a
        less noisy rate to learn than a week's.
    refit_days : int
        Days between refits (1: refit for every cutoff).
    zero_fraction : float
        Share (> 0, ≤ 1) of the training rows of cold cells with a zero target that are kept, weighted by its
        inverse (1: every row, unweighted).
    cold_max : int or None
        A cell is cold at a training cutoff when it had at most this many incidents over the 365 days before it
        (None: every zero row may be dropped).
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM's parameters.
    random_state : int
        Seed.

    References
    ----------
    Ke, G. et al. (2017). LightGBM: a highly efficient gradient boosting decision tree. *NeurIPS* 30.
    Mohler, G. & Porter, M. D. (2018). Rotational grid, PAI-maximizing crime forecasts. *Statistical Analysis
    and Data Mining* 11(5), 227-236 (boosted trees on lagged grid counts in the NIJ challenge).
    """

    name = "lightgbm"

    def __init__(
        self,
        window: int = 365,
        n_cutoffs: int = 8,
        target_days: int = 28,
        n_estimators: int = 60,
        learning_rate: float = 0.1,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        random_state: int = 0,
        refit_days: int = 91,
        zero_fraction: float = 0.2,
        cold_max: int | None = 2,
    ) -> None:
        self.window = window
        self.n_cutoffs = n_cutoffs
        self.target_days = target_days
        self.refit_days = refit_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state
        self.zero_fraction = zero_fraction
        self.cold_max = cold_max

    def fit(self, events: GridEvents, cutoff: int, horizon: int = 7) -> LightGBMForecaster:
        _check_positive("window", self.window, whole=True)
        _check_positive("n_cutoffs", self.n_cutoffs, whole=True)
        _check_positive("refit_days", self.refit_days, whole=True)
        _check_fraction(self.zero_fraction)
        if self.cold_max is not None:
            _check_positive("cold_max", self.cold_max, whole=True, allow_zero=True)
        ev = self._begin(events, cutoff, horizon)
        anchor = cutoff - cutoff % int(self.refit_days)
        key = (anchor, int(horizon))
        kept = self.__dict__.get("_trained")
        self.refitted_ = not (kept is not None and kept[0] is events and kept[1] == key)
        if self.refitted_:
            self._train(ev, anchor, int(horizon))
            self._trained = (events, key)
        self.anchor_ = anchor
        if self.fallback_:  # too little history to learn from: the naive forecast, said in the result's notes
            self.expected_ = ev.counts(cutoff - self.window, cutoff) * horizon / self.window
            return self
        if self.model_ is None:  # nothing happened in any training target period
            self.expected_ = np.zeros(ev.n_cells)
            return self
        seen = ev.counts(-(2**62), cutoff) > 0
        pred = np.zeros(ev.n_cells)
        if seen.any():
            feats = lagged_features(ev, cutoff, horizon, seen)
            pred[seen] = np.asarray(self.model_.predict(feats), dtype=float)
        self.expected_ = pred
        return self

    def _train(self, ev: GridEvents, anchor: int, horizon: int) -> None:
        """Fit the trees on training cutoffs whose target periods end by ``anchor`` (incidents before it only)."""
        import lightgbm as lgb

        ev = ev.select(ev.day < anchor)
        span = max(horizon, int(self.target_days))  # a longer target period: a less noisy rate to learn
        latest = anchor - span
        spacing = max(1, (self.window - span) // max(1, self.n_cutoffs - 1))
        cutoffs = [latest - k * spacing for k in range(int(self.n_cutoffs))]
        first_day = float(ev.day.min()) if ev.day.size else float(anchor)
        cutoffs = [c for c in cutoffs if c - MIN_HISTORY_DAYS >= first_day]
        self.fallback_ = not cutoffs
        self.model_: Any = None
        self.train_cutoffs_ = tuple(cutoffs)
        if self.fallback_:
            return
        xs: list[FloatArray] = []
        ys: list[FloatArray] = []
        for c in cutoffs:  # a few cutoffs, each vectorised over every cell
            seen = ev.counts(-(2**62), c) > 0
            xs.append(lagged_features(ev, c, horizon, seen))
            ys.append(ev.counts(c, c + span)[seen] * (horizon / span))
        x, y = np.vstack(xs), np.concatenate(ys)
        if y.sum() == 0:
            return
        cold = None if self.cold_max is None else x[:, LGBM_FEATURES.index("n365")] <= self.cold_max
        x, y, w = downsample_zeros(x, y, float(self.zero_fraction), _seed(self.random_state, anchor), cold)
        params = {
            "objective": "poisson",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_child_samples),
            "seed": int(self.random_state or 0),
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }
        data = lgb.Dataset(x, y, weight=w, params={"verbose": -1}, free_raw_data=True)
        self.model_ = lgb.train(params, data, num_boost_round=int(self.n_estimators))


def _check_fraction(fraction: Any) -> None:
    _check_positive("zero_fraction", fraction)
    if float(fraction) > 1:
        raise ConfigError(f"zero_fraction: expected the share of zero rows kept, > 0 and ≤ 1, got {fraction!r}")


def _seed(random_state: int | None, anchor: int) -> int:
    """A seed for the rows kept at one refit date: the same refit date and seed give the same rows."""
    return int(np.random.SeedSequence([int(random_state or 0), int(anchor) % 2**32]).generate_state(1)[0])


def downsample_zeros(
    x: FloatArray, y: FloatArray, fraction: float, seed: int, eligible: BoolArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Training rows with every nonzero target and a seeded ``fraction`` of the zero ones, and their weights.

    Only zero rows where ``eligible`` is true (all when None) may be dropped; each is kept with probability
    ``fraction``. Kept eligible zero rows weigh ``1 / fraction`` and every other row 1, so every weighted sum over
    the rows (the Poisson log-likelihood, its gradients and hessians) has the same expectation as over all rows
    (inverse-probability weighting; Horvitz & Thompson 1952): the fit stays unbiased while the trees grow on
    fewer rows. ``fraction = 1`` keeps every row, unweighted (weights ``None``).

    References
    ----------
    He, X. et al. (2014). Practical lessons from predicting clicks on ads at Facebook. *ADKDD '14*, §6.2
    (negative downsampling; they recalibrate the predictions afterwards, here the kept rows are weighted).
    Horvitz, D. G. & Thompson, D. J. (1952). A generalization of sampling without replacement from a finite
    universe. *JASA* 47(260), 663-685.
    """
    _check_fraction(fraction)
    if fraction == 1:
        return x, y, None
    zero = (y == 0) if eligible is None else (y == 0) & eligible
    keep = ~zero | (np.random.default_rng(seed).random(y.size) < fraction)
    w = np.where(zero[keep], 1.0 / fraction, 1.0)
    return x[keep], y[keep], w


# -- registry ---------------------------------------------------------------------------------------------
FORECASTERS: dict[str, type[_Forecaster]] = {
    "naive": NaiveForecaster,
    "retrospective": RetrospectiveForecaster,
    "prospective": ProspectiveForecaster,
    "stkde": SpaceTimeKDEForecaster,
    "sepp": SEPPForecaster,
    "lightgbm": LightGBMForecaster,
}


def make_forecaster(name: str, *, window: int = 365, seed: int = 0) -> Any:
    """A fresh forecaster by name, with the training window (days) and seed given."""
    if name not in FORECASTERS:
        raise ConfigError(f"method: expected one of {', '.join(FORECASTERS)}, got {name!r}")
    if name == "prospective":
        return ProspectiveForecaster()
    if name == "lightgbm":
        return LightGBMForecaster(window=window, random_state=seed)
    return FORECASTERS[name](window=window)  # type: ignore[call-arg]


# -- intervals on expected counts -------------------------------------------------------------------------
def nb_dispersion(y: Any, mu: Any) -> float:
    """The NB2 dispersion α (variance ``μ + α μ²``) of counts ``y`` around predicted means ``mu``, by moments:
    ``α = max(0, Σ[(y − μ)² − y] / Σ μ²)`` (Cameron & Trivedi 2013, §3.2); 0 means Poisson.

    References
    ----------
    Cameron, A. C. & Trivedi, P. K. (2013). *Regression Analysis of Count Data*, 2nd ed., Cambridge.
    """
    ya, ma = np.asarray(y, dtype=float), np.asarray(mu, dtype=float)
    denom = float((ma**2).sum())
    if denom <= 0:
        return 0.0
    return max(0.0, float((((ya - ma) ** 2) - ya).sum()) / denom)


def _nb_dist(mu: Any, alpha: float) -> Any:
    """The frozen scipy distribution of a negative binomial count with mean ``mu`` and NB2 dispersion ``alpha``
    (Poisson when α = 0)."""
    from scipy import stats

    m = np.maximum(np.asarray(mu, dtype=float), 1e-12)
    if alpha <= 1e-9:
        return stats.poisson(m)
    size = 1.0 / alpha
    return stats.nbinom(size, size / (size + m))


def nb_interval(mu: Any, alpha: float, level: float = 0.9) -> tuple[FloatArray, FloatArray]:
    """The shortest whole-number interval ``[lo, hi]`` holding at least ``level`` of a negative binomial count with
    mean ``mu`` and dispersion ``alpha`` (Poisson when α = 0); the lowest among equally short ones.

    For each lower bound ``lo`` from 0 to ``L = F⁻¹(1 − level)`` (a higher one leaves less than ``level`` above
    it), the upper bound is the smallest ``hi`` with ``F(hi) − F(lo − 1) ≥ level``; the narrowest pair wins
    (every ``lo`` is tried when L ≤ 100, else 101 spread evenly). For counts the equal-tailed interval wastes its
    lower tail: a cell expecting 2 incidents (Poisson) gets ``[0, 5]`` (98.3 %) where ``[0, 4]`` holds 94.7 %. A
    whole-number interval cannot hold exactly ``level``: it holds at least that much.
    """
    _check_level(level)
    dist = _nb_dist(mu, alpha)
    shape = np.shape(np.asarray(mu, dtype=float))
    top = np.asarray(dist.ppf(1.0 - level), dtype=float).reshape(shape)
    steps = int(min(100, top.max())) if top.size else 0
    best_lo, best_hi = np.zeros(shape), np.full(shape, np.inf)
    for j in range(steps + 1):
        lo = np.floor(top * (j / steps)) if steps else np.zeros(shape)
        below = np.asarray(dist.cdf(lo - 1), dtype=float).reshape(shape)
        hi = np.asarray(dist.ppf(np.minimum(below + level, 1.0)), dtype=float).reshape(shape)
        better = (hi - lo) < (best_hi - best_lo)
        best_lo, best_hi = np.where(better, lo, best_lo), np.where(better, hi, best_hi)
    return best_lo, best_hi


def _check_level(level: float) -> None:
    if not isinstance(level, float | int) or isinstance(level, bool) or not 0 < level < 1:
        raise ConfigError(f"level: expected a probability strictly between 0 and 1, got {level!r}")


def pit_coverage(y: Any, mu: Any, alpha: float, level: float = 0.9) -> float:
    """The share of counts ``y`` whose randomised probability integral transform falls in the central ``level``
    band of their predicted negative binomial distribution (mean ``mu``, dispersion ``alpha``).

    For a whole-number count the PIT is uniform on ``[F(y − 1), F(y)]``; the share of that range inside
    ``[(1 − level)/2, (1 + level)/2]``, averaged over counts, equals ``level`` when the predicted distributions
    are calibrated, however many counts are zero (Czado, Gneiting & Held 2009). It complements the share of
    counts inside :func:`nb_interval`, which a whole-number interval keeps at or above ``level``.

    References
    ----------
    Czado, C., Gneiting, T. & Held, L. (2009). Predictive model assessment for count data. *Biometrics* 65(4),
    1254-1261.
    """
    _check_level(level)
    ya = np.asarray(y, dtype=float)
    if ya.size == 0:
        return float("nan")
    dist = _nb_dist(mu, alpha)
    upper, lower = np.asarray(dist.cdf(ya), dtype=float), np.asarray(dist.cdf(ya - 1), dtype=float)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    inside = np.clip(np.minimum(upper, hi_q) - np.maximum(lower, lo_q), 0.0, None)
    width = upper - lower
    share = np.divide(inside, width, out=np.zeros_like(width), where=width > 1e-15)
    return float(share.mean())
