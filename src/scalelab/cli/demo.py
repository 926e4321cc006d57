"""``scalelab demo``: the main job (train an isoFLOP grid, fit, forecast, prove on a held-out run, plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit


def register(app: typer.Typer) -> None:
    """Add ``scalelab demo`` to the root app."""

    @app.command()
    def demo(
        quick: Annotated[
            bool, typer.Option("--quick", help="The two-minute version: smaller grid and budgets.")
        ] = False,
        seed: Annotated[int, typer.Option(help="Seed of every run and of the bootstrap.")] = 0,
        store: Annotated[Path | None, typer.Option(help="Run store (default $SCALELAB_HOME/runs.sqlite).")] = None,
        out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("scalelab-report.html"),
        workers: Annotated[int | None, typer.Option(min=1, help="Local worker processes for the grid.")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log lines instead of a live display.")] = False,
        mixtures: Annotated[bool, typer.Option(
            "--mixtures", help="The data-mixture demo instead: proxies on random mixtures of the corpus' domains, "
                               "a mixture regression, and the chosen mixture checked at a larger size.")] = False,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Train an isoFLOP grid of tiny GPTs on the embedded corpus, fit the Chinchilla law, forecast a
        held-out larger run and train it, then plan the recipe at production scale; writes an HTML report."""
        from ..demo import run_demo
        from ._long_work import log_lines_wanted, resumable, route_progress_logs

        if mixtures:
            from ..demo_mixtures import run_mixture_demo

            emit(run_mixture_demo(quick=quick, seed=seed), fmt)
            return

        lines = log_lines_wanted(quiet, fmt == OutputFormat.json)
        if lines:
            route_progress_logs()
        with resumable():
            result = run_demo(quick=quick, seed=seed, store=store, out=out, workers=workers, quiet=lines)
        emit(result, fmt)
