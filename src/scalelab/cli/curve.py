"""CLI command group ``scalelab curve``: forecast a run's loss from the start of its learning curve.

``scalelab curve forecast CURVE.csv --step COL --loss COL --total-steps T`` fits a power law to the
observed prefix (in steps, or in the cumulative learning rate with ``--schedule``); with
``--reference REF.csv`` (completed runs, one ``--run`` id column) it learns the curve's shape from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit


def _curve(path: Path, step: str, loss: str) -> dict[str, list[str]]:
    from .._csv import read_csv_columns
    from ..errors import DataError, explain, suggest

    cols = read_csv_columns(path)
    for c in (step, loss):
        if c not in cols:
            close = suggest(c, cols)
            raise DataError(explain(f"{path} has no column {c!r}", value=c, allowed=", ".join(cols),
                                    fix=f"did you mean {close[0]!r}?" if close else "pass --step/--loss column names"))
    return cols


def register(app: typer.Typer) -> None:
    """Add ``curve forecast`` to the root app."""
    curve_app = typer.Typer(help="Learning-curve forecasts with bands.", no_args_is_help=True)

    @curve_app.command("forecast")
    def curve_forecast(
        curve: Annotated[Path, typer.Argument(help="CSV of the run so far: a step column and a loss column.")],
        step: Annotated[str, typer.Option("--step", help="Name of the step column.")],
        loss: Annotated[str, typer.Option("--loss", help="Name of the loss column.")],
        total_steps: Annotated[int, typer.Option("--total-steps", help="Planned length of the run (steps).")],
        at: Annotated[list[int] | None, typer.Option("--at", help="Also forecast at this step (repeatable).")] = None,
        schedule: Annotated[str | None, typer.Option(
            "--schedule", help="LR schedule for the prefix fit: constant, cosine or wsd.")] = None,
        warmup_steps: Annotated[int, typer.Option("--warmup-steps", help="Warmup steps of the schedule.")] = 0,
        reference: Annotated[Path | None, typer.Option(
            "--reference", help="CSV of completed runs (run id, step, loss, total_steps columns).")] = None,
        run: Annotated[str, typer.Option("--run", help="Run id column of --reference.")] = "run",
        level: Annotated[float, typer.Option("--level", help="Coverage of the band.")] = 0.95,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Forecast the loss at --total-steps (and at --at steps) with a band, from the curve so far."""
        from .._csv import to_floats
        from ..curves import CrossRunForecaster, PrefixForecaster
        from ..errors import DataError, explain

        cols = _curve(curve, step, loss)
        t, L = to_floats(cols[step], f"{curve}: {step}"), to_floats(cols[loss], f"{curve}: {loss}")
        if reference is None:
            fc = PrefixForecaster(schedule=schedule, warmup_steps=warmup_steps, level=level).forecast(
                t, L, total_steps, at=at)
        else:
            rc = _curve(reference, step, loss)
            for c in (run, "total_steps"):
                if c not in rc:
                    raise DataError(explain(f"{reference} has no column {c!r}", allowed=", ".join(rc),
                                            fix="give the reference runs a run id and a total_steps column"))
            rt, rL = to_floats(rc[step], f"{reference}: {step}"), to_floats(rc[loss], f"{reference}: {loss}")
            rT = to_floats(rc["total_steps"], f"{reference}: total_steps")
            ids = np.array(rc[run])
            refs = [(rt[ids == i], rL[ids == i], int(rT[ids == i][0])) for i in dict.fromkeys(rc[run])]
            fc = CrossRunForecaster(level=level).fit(refs).forecast(t, L, total_steps, at=at)
        emit(fc, fmt)

    @curve_app.command("law")
    def curve_law(
        checkpoints: Annotated[Path, typer.Argument(help="CSV of checkpoints: size, step and loss columns.")],
        n: Annotated[str, typer.Option("--n", help="Name of the model-size column (parameters).")],
        step: Annotated[str, typer.Option("--step", help="Name of the step (or tokens) column.")],
        loss: Annotated[str, typer.Option("--loss", help="Name of the loss column.")],
        at: Annotated[list[str] | None, typer.Option(
            "--at", help="Predict at N:STEP, e.g. 1.2e9:16000 (repeatable).")] = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Fit L(N, t) = E + A N^-alpha + B t^-beta to every checkpoint; optionally predict at --at points."""
        from .._csv import to_floats
        from ..curves import CheckpointLaw
        from ..errors import ConfigError, explain

        cols = _curve(checkpoints, step, loss)
        if n not in cols:
            _curve(checkpoints, n, loss)
        law = CheckpointLaw.fit(*(to_floats(cols[c], f"{checkpoints}: {c}") for c in (n, step, loss)))
        points = []
        for item in at or []:
            try:
                pn, ps = (float(x) for x in item.split(":"))
            except ValueError:
                raise ConfigError(explain("--at must be N:STEP", value=item, fix="e.g. --at 1.2e9:16000")) from None
            points.append({"n_params": pn, "step": ps, "loss": float(law.predict(pn, ps))})
        if fmt == OutputFormat.json:
            emit({**law.to_dict(), "at": points}, fmt)
        else:
            typer.echo(law.report())
            for p in points:
                typer.echo(f"  N={p['n_params']:.4g}, step {p['step']:.6g}: loss {p['loss']:.4f}")

    app.add_typer(curve_app, name="curve")
