"""Every crimelens setting, declared once: name, type, default and help.

Precedence: command-line flag > ``CRIMELENS_*`` environment variable > config file > default.
The config file is TOML (``crimelens.toml`` in the working directory, or the path in ``CRIMELENS_CONFIG``)
with the setting names as keys.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimelens.errors import ConfigError

__all__ = ["SETTINGS", "Setting", "get_setting", "load_config_file"]


@dataclass(frozen=True)
class Setting:
    """One setting: its name, Python type, default and a help text for analysts."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        return "CRIMELENS_" + self.name.upper()


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("db", str, "crimelens.duckdb", "Path of the DuckDB warehouse file."),
        Setting(
            "data",
            str,
            "../shared/data",
            "Folder holding the shared real datasets used by tests and benchmarks.",
        ),
        Setting(
            "max_errors",
            int,
            0,
            "How many invalid rows a file may have and still load (the invalid rows are skipped and "
            "reported). 0 means any error rejects the whole file.",
        ),
        Setting("top_k", int, 10, "How many jurisdictions rankings, hotspots and concentration consider."),
        Setting(
            "hotspot_share",
            float,
            0.5,
            "Share of the years in a window (0-1) a jurisdiction must spend in the top k to count as a "
            "persistent hotspot.",
        ),
        Setting("hotspot_window", int, 10, "Length in years of the window persistent hotspots look at."),
        Setting("alpha", float, 0.05, "Significance level for trend and change tests."),
        Setting(
            "min_count",
            int,
            20,
            "Fewest offences a jurisdiction or area must record to be named in a 'highest rate' finding: on a "
            "handful of offences a rate is mostly chance (those left out are counted).",
        ),
        Setting(
            "cell_m",
            float,
            150.0,
            "Grid cell size in metres for incident maps, hot spots, persistent cells and density (square cells "
            "on an equal-area plane; about a street block).",
        ),
        Setting(
            "permutations",
            int,
            999,
            "Monte Carlo permutations of the Gi* and Knox tests (0 = analytic p-values only where available).",
        ),
        Setting("seed", int, 0, "Random seed of permutation tests (recorded with every result)."),
        Setting(
            "area",
            str,
            "auto",
            "Area column incident rankings and maps use: community_area, neighbourhood, district, beat, "
            "census_tract, or auto (the one the incidents fill most).",
        ),
        Setting(
            "spark_master",
            str,
            "local[2]",
            "Spark master for --engine spark: local[N] runs on this machine with N cores; a cluster URL "
            "(spark://host:7077, yarn) runs there.",
        ),
        Setting("spark_driver_memory", str, "1g", "Memory of the Spark driver for --engine spark (e.g. 1g, 4g)."),
        Setting(
            "feed_app_token",
            str,
            "",
            "Socrata app token sent with every feed request (header X-App-Token); without one, open-data portals "
            "throttle requests sooner. Empty: no token.",
        ),
        Setting("feed_page_size", int, 5000, "Records asked for per feed page (SODA's $limit; at most 50,000)."),
        Setting(
            "feed_timeout",
            float,
            60.0,
            "Seconds one feed request may take, from connecting to the last byte, before it is abandoned and retried.",
        ),
        Setting("feed_attempts", int, 6, "Attempts per feed request (the first try and its retries) before giving up."),
        Setting(
            "feed_retry_time",
            float,
            300.0,
            "Longest time in seconds spent retrying one feed request (the waits included) before giving up.",
        ),
        Setting(
            "feed_wait_initial",
            float,
            1.0,
            "First wait in seconds before retrying a failed feed request; each later wait doubles, plus random "
            "jitter of up to the same amount.",
        ),
        Setting(
            "feed_wait_max",
            float,
            60.0,
            "Longest wait in seconds between two attempts of a feed request, also the most a server's "
            "Retry-After is honoured.",
        ),
        Setting("feed_interval", float, 300.0, "Seconds between two polls of `crimelens watch`."),
        Setting(
            "feed_reconcile_every",
            int,
            288,
            "`crimelens watch` lists every record id of the feed every N polls (and on a run's first poll) to "
            "remove records the publisher deleted (288: daily at a 5-minute interval); 0 = never.",
        ),
    ]
}


def load_config_file(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the TOML config file, if there is one; unknown keys are an error."""
    env = os.environ if environ is None else environ
    path = Path(env.get("CRIMELENS_CONFIG", "crimelens.toml"))
    if not path.exists():
        if "CRIMELENS_CONFIG" in env:
            raise ConfigError(f"config file {path}: not found (named by CRIMELENS_CONFIG)")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}; allowed: {', '.join(sorted(SETTINGS))}")
    return data


def get_setting(name: str, cli_value: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """Resolve one setting by precedence: CLI value, environment, config file, default."""
    setting = SETTINGS[name]
    env = os.environ if environ is None else environ
    if cli_value is not None:
        return cli_value
    raw: Any = env.get(setting.env_var)
    origin = f"environment variable {setting.env_var}"
    if raw is None:
        file_values = load_config_file(env)
        if name not in file_values:
            return setting.default
        raw = file_values[name]
        origin = f"config file setting {name!r}"
    try:
        return setting.type(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: expected {setting.type.__name__}, got {raw!r}") from exc
