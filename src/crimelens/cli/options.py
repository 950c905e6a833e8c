"""The options commands share, each declared once with one help text (defaults that are settings come from
:mod:`crimelens.config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crimelens.config import SETTINGS

__all__ = [
    "AlphaOpt",
    "AreaOpt",
    "CellOpt",
    "CsvOpt",
    "DbOpt",
    "EndOpt",
    "EngineOpt",
    "IncidentOffenceOpt",
    "JsonOpt",
    "KOpt",
    "LimitOpt",
    "OffenceOpt",
    "ParquetOpt",
    "PermOpt",
    "ReferenceOpt",
    "SeedOpt",
    "SinceOpt",
    "SourceOpt",
    "StartOpt",
    "UntilOpt",
    "YearOpt",
]


def _setting_help(name: str) -> str:
    s = SETTINGS[name]
    return f"{s.help} [env: {s.env_var}; default: {s.default}]"


DbOpt = Annotated[Path | None, typer.Option("--db", help=_setting_help("db"))]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Dataset to analyse (its source name, see `crimelens loads`). Needed only when several are loaded.",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON (every field of the result) instead of a table."),
]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print the result's table as CSV instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows to show in the table (0 = all).")]

# -- jurisdiction-year analyses ------------------------------------------------------------------------------
OffenceOpt = Annotated[
    str,
    typer.Option(
        "--offence",
        help="Offence: violent_crime, homicide, rape, robbery, aggravated_assault, property_crime, "
        "burglary, larceny, motor_vehicle_theft.",
    ),
]
YearOpt = Annotated[int | None, typer.Option("--year", help="One year (default: the latest in the data).")]
StartOpt = Annotated[int | None, typer.Option("--start", help="First year of a span (inclusive).")]
EndOpt = Annotated[int | None, typer.Option("--end", help="Last year of a span (inclusive).")]
AlphaOpt = Annotated[float | None, typer.Option("--alpha", help=_setting_help("alpha"))]
KOpt = Annotated[int | None, typer.Option("--k", help=_setting_help("top_k"))]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(
        "--reference",
        help="The series drawn beside the jurisdictions, from any loaded dataset: SOURCE or SOURCE:JURISDICTION, "
        "e.g. fbi-estimates (the nation) or fbi-estimates:US-IL (Illinois). Default: the nation from another "
        "loaded dataset, else this dataset's own national rows.",
    ),
]

# -- incident analyses ---------------------------------------------------------------------------------------
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Where the counting runs: duckdb (default, this machine) or spark (local Spark, or a cluster via "
        "SPARK_REMOTE/spark-submit; needs the `spark` extra and Java 17).",
    ),
]
ParquetOpt = Annotated[
    Path | None,
    typer.Option("--parquet", help="Read incidents from this Parquet file or folder instead of the warehouse."),
]
IncidentOffenceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--offence",
        help="Only these offences (repeat the option): homicide, rape, robbery, aggravated_assault, burglary, "
        "larceny, motor_vehicle_theft, arson, other_assault, other.",
    ),
]
SinceOpt = Annotated[str | None, typer.Option("--since", help="First day included (YYYY-MM-DD).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Last day included (YYYY-MM-DD).")]
CellOpt = Annotated[float | None, typer.Option("--cell", help=_setting_help("cell_m"))]
SeedOpt = Annotated[int | None, typer.Option("--seed", help=_setting_help("seed"))]
PermOpt = Annotated[int | None, typer.Option("--permutations", help=_setting_help("permutations"))]
AreaOpt = Annotated[str | None, typer.Option("--area", help=_setting_help("area"))]
