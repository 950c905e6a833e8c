"""`crimelens covariates …`: load socio-economic covariates, and relate crime to them (negative binomial)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from crimelens.cli.options import CsvOpt, DbOpt, EndOpt, JsonOpt, LimitOpt, OffenceOpt, SourceOpt, StartOpt
from crimelens.cli.render import busy, emit, out, print_json, show_table
from crimelens.cli.support import command_name, guarded, open_warehouse

__all__ = ["covariates_app"]

covariates_app = typer.Typer(
    name="covariates",
    help=(
        "Socio-economic covariates: load them (`crimelens covariates load FILE --preset NAME`), list them, and "
        "relate crime to them with a negative-binomial regression (`crimelens covariates regress`): rate ratios "
        "with intervals, the dispersion, and the places with much more or less crime than their profile predicts."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _command(name: str) -> Callable[[F], F]:
    return guarded(covariates_app, name)


@_command("load")
def load_cmd(
    path: Annotated[Path, typer.Argument(help="The covariate CSV file.")],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="How to read the file: chicago-hardship (ChicagoCensusData.csv), chicago-acs "
            "(chicago_community_areas_acs2014.csv), state-panel (us_state_income_inequality_2005_2015.csv) or "
            "uci-communities (CommViolPredUnnormalizedData.txt, UCI Communities and Crime: 1990 Census figures "
            "of 2,215 US communities).",
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="Instead of a preset, a TOML file naming the unit_kind, the id and year columns and the "
            "covariate columns (see docs/models.md).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The covariate dataset's name (default: the preset's name).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a covariate file into the warehouse (checked, atomic, idempotent; a new file replaces the old)."""
    from crimelens.errors import ConfigError
    from crimelens.sources.covariates import read_covariates
    from crimelens.warehouse.covariates import load_covariates

    if (preset is None) == (mapping is None):
        raise ConfigError(
            "covariates load: expected either --preset NAME or --mapping FILE, got " + ("both" if preset else "neither")
        )
    parsed = read_covariates(path, preset, mapping=mapping)
    with open_warehouse(db, read_only=False) as con:
        report = load_covariates(con, parsed, name)
    if as_json:
        print_json({"command": command_name(), **report.to_dict()})
        return
    verb = "Already loaded" if report.status == "unchanged" else "Loaded"
    out.print(
        f"{verb}: {report.values_loaded:,} values of {len(report.covariates)} covariates for {report.units} "
        f"{report.unit_kind.replace('_', ' ')}s ({', '.join(map(str, report.years))}) from {report.file_name} as "
        f"{report.source} (load {report.load_id}); {report.skipped_missing} empty values skipped.",
        highlight=False,
    )


@_command("list")
def list_cmd(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The covariate datasets loaded: unit kind, units, years and covariate names."""
    from crimelens.warehouse.covariates import list_covariate_sources

    with open_warehouse(db) as con:
        frame = list_covariate_sources(con)
    if as_json:
        from crimelens.analysis.result import frame_records

        print_json({"command": command_name(), "title": "Covariate datasets", "rows": frame_records(frame)})
        return
    show_table(frame, "Covariate datasets", None)


@_command("regress")
def regress_cmd(
    source: SourceOpt = None,
    covariate_source: Annotated[
        list[str] | None,
        typer.Option("--from", help="Covariate dataset(s) to use (repeat; default: every one of the right kind)."),
    ] = None,
    covariate: Annotated[
        list[str] | None,
        typer.Option("--covariate", help="Only these covariates (repeat; default: all but population)."),
    ] = None,
    offence: OffenceOpt = "violent_crime",
    start: StartOpt = None,
    end: EndOpt = None,
    top: Annotated[int, typer.Option("--top", help="How many places to list above and below their prediction.")] = 5,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    limit: LimitOpt = 25,
) -> None:
    """Crime counts against socio-economic covariates: rate ratios per standard deviation, with intervals."""
    from crimelens.models.covariates import covariate_regression

    with open_warehouse(db) as con, busy("Fitting the regression", quiet=as_json or as_csv):
        result = covariate_regression(
            con, source, covariate_source, covariates=covariate, offence=offence, start=start, end=end, top=top
        )
    if as_json or as_csv:
        emit(result, as_json=as_json, as_csv=as_csv)
        return
    show_table(result.table, result.title, None if limit == 0 else limit)
    show_table(result.more_than_expected, "More recorded crime than the profile predicts", None)
    show_table(result.less_than_expected, "Less recorded crime than the profile predicts", None)
    for note in result.notes:
        out.print(f"[dim]Note: {escape(note)}[/dim]")
