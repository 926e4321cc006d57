"""CLI command group ``scalelab datasets``: the published run tables that ship with scalelab.

``scalelab datasets`` lists them (name, rows, licence, citation); ``scalelab datasets show NAME`` prints one
table's provenance and column descriptions; ``scalelab datasets export NAME OUT`` writes it as CSV, JSON or
Parquet, chosen by OUT's suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit, err_console, table


def _list_rows(human: bool) -> list[dict[str, Any]]:
    from ..datasets import list_datasets

    if not human:
        return [d.to_dict() for d in list_datasets()]
    return [{"name": d.name, "rows": f"{d.n_rows:,}", "licence": d.licence, "citation": d.short_citation}
            for d in list_datasets()]


def register(app: typer.Typer) -> None:
    """Add ``datasets`` (list), ``datasets show`` and ``datasets export`` to the root app."""
    datasets_app = typer.Typer(help="List, show and export the published run tables shipped with scalelab.",
                               invoke_without_command=True, no_args_is_help=False)

    @datasets_app.callback()
    def datasets_list(ctx: typer.Context, fmt: FormatOpt = OutputFormat.human) -> None:
        """List the published run tables shipped with scalelab: name, rows, licence, citation."""
        if ctx.invoked_subcommand is not None:
            return
        human = fmt == OutputFormat.human
        rows = _list_rows(human)
        title = "Published run tables (scalelab datasets show NAME; scalelab datasets export NAME OUT.csv)"
        emit(table(rows, title=title) if human else rows, fmt)

    @datasets_app.command("show")
    def datasets_show(
        name: Annotated[str, typer.Argument(help="Dataset name, as `scalelab datasets` lists it.")],
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Show one table: what it is, whom to cite, its licence and every column with its unit."""
        from ..datasets import get_dataset

        emit(get_dataset(name), fmt)

    @datasets_app.command("export")
    def datasets_export(
        name: Annotated[str, typer.Argument(help="Dataset name, as `scalelab datasets` lists it.")],
        out: Annotated[Path, typer.Argument(help="Output file: .csv, .json (records) or .parquet.")],
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Write one table to a file; the suffix picks the format (.csv, .json or .parquet)."""
        from ..datasets import get_dataset

        ds = get_dataset(name)
        path = ds.export(out)
        licence_file = ds.licence_file
        if fmt == OutputFormat.json:
            emit({"name": ds.name, "path": str(path), "rows": len(ds), "licence": ds.licence,
                  "licence_file": str(licence_file), "citation": ds.citation}, fmt)
            return
        err_console.print(f"wrote {len(ds):,} rows of {ds.name} to {path}", markup=False)
        err_console.print(f"licence {ds.licence}: keep its notice with the copy ({licence_file}, and NOTICE "
                          f"beside it); cite {ds.short_citation}", markup=False)

    app.add_typer(datasets_app, name="datasets")
