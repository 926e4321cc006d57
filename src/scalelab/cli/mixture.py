"""CLI command group ``scalelab mixture``: data-mixture regression (RegMix-style).

``fit`` regresses one loss column on the domain weights and saves the model as JSON; ``predict`` gives
each mixture's loss with its band; ``optimize`` searches for the mixture with the lowest predicted loss.
Rows of the mixture and loss tables pair up by an ``index`` column when both have one, by order otherwise.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit, err_console


class ModelChoice(StrEnum):
    lightgbm = "lightgbm"
    linear = "linear"
    loglinear = "loglinear"
    law = "law"


def _columns_for(model: Any, path: Path) -> np.ndarray:
    """The weights of ``path`` in the model's domain order (columns matched by name)."""
    from ..errors import DataError, explain
    from ..mixtures import read_mixtures

    _, domains, W = read_mixtures(path)
    missing = [d for d in model.domains_ if d not in domains]
    extra = [d for d in domains if d not in model.domains_]
    if missing or extra:
        raise DataError(explain(f"{path}: the domain columns differ from the model's",
                                value={"missing": missing, "unexpected": extra},
                                allowed=", ".join(model.domains_),
                                fix="use the columns of the mixture table the model was fitted on"))
    return W[:, [domains.index(d) for d in model.domains_]]


def register(app: typer.Typer) -> None:
    """Add ``mixture fit``, ``mixture predict`` and ``mixture optimize`` to the root app."""
    mixture_app = typer.Typer(help="Data-mixture regression: fit, predict and optimise mixtures (RegMix).",
                              no_args_is_help=True)

    @mixture_app.command("fit")
    def mixture_fit(
        mixtures: Annotated[Path, typer.Option("--mixtures",
                                               help="CSV: one weight column per domain, optional 'index'.")],
        losses: Annotated[Path, typer.Option("--losses", help="CSV of losses, optional 'index' to pair rows.")],
        target: Annotated[str, typer.Option("--target", help="The loss column to regress.")],
        out: Annotated[Path, typer.Option("--out", help="Where to write the fitted model (JSON).")],
        model: Annotated[ModelChoice, typer.Option(
            "--model", help="lightgbm (RegMix), linear, loglinear, or law (Data Mixing Laws' exponential form).",
        )] = ModelChoice.lightgbm,
        level: Annotated[float, typer.Option("--level", help="Coverage of the prediction band.")] = 0.9,
        seed: Annotated[int, typer.Option("--seed", help="Seeds LightGBM and the bootstrap.")] = 42,
        calibrate_folds: Annotated[int, typer.Option(
            "--calibrate-folds", min=0,
            help="Calibrate the band on out-of-fold residuals over this many folds (0: as fitted).")] = 5,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Fit a regression from mixture weights to one loss column and save it as JSON."""
        from ..mixtures import MixtureRegressor, read_mixtures, read_target
        from ..mixtures._io import pair_rows
        from ._files import refuse_overwriting_inputs, write_or_warn

        refuse_overwriting_inputs({"--out": out}, {"mixtures file": mixtures, "losses file": losses})
        mix_index, domains, W = read_mixtures(mixtures)
        loss_index, y = read_target(losses, target)
        W, y = pair_rows(mix_index, W, loss_index, y)
        m = MixtureRegressor(model=model.value, level=level, random_state=seed,
                             conformal_folds=calibrate_folds).fit(W, y, domains=domains, target=target)
        out = write_or_warn(m.save, out)  # a folder typo never throws the fitted model away
        result = {"model": model.value, "target": target, "n_train": len(y), "n_domains": len(domains),
                  "uncertainty": m.uncertainty_, "level": level, "band_margin": m.margin_,
                  "train_spearman": m.score(W, y), "out": str(out)}
        if fmt == OutputFormat.human:
            err_console.print(f"fitted {model.value} on {len(y)} mixtures of {len(domains)} domains -> {out}",
                              markup=False)
        emit(result, fmt, title="Mixture model")

    @mixture_app.command("predict")
    def mixture_predict(
        model_path: Annotated[Path, typer.Argument(help="A model written by `scalelab mixture fit --out`.")],
        mixtures: Annotated[Path, typer.Option("--mixtures", help="CSV of mixtures, columns named as in the fit.")],
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Predicted loss of each mixture, with its band, one row per mixture in file order."""
        from .._csv import read_csv_columns
        from ..mixtures import MixtureRegressor
        from ..mixtures._io import INDEX

        m = MixtureRegressor.load(model_path)
        W = _columns_for(m, mixtures)
        index = read_csv_columns(mixtures).get(INDEX)
        loss = m.predict(W)
        lo, hi = m.predict_interval(W)
        rows = []
        for i in range(len(W)):
            row: dict[str, Any] = {"index": index[i]} if index is not None else {}
            row.update(loss=float(loss[i]), loss_lo=float(lo[i]), loss_hi=float(hi[i]))
            rows.append(row)
        emit(rows, fmt, title=f"Predicted {m.target_} ({m.level:.0%} band)")

    @mixture_app.command("optimize")
    def mixture_optimize(
        model_path: Annotated[Path, typer.Argument(help="A model written by `scalelab mixture fit --out`.")],
        prior: Annotated[Path | None, typer.Option("--prior", help="CSV whose (mean) row centres the search; "
                                                   "default: the mean training mixture.")] = None,
        n_samples: Annotated[int, typer.Option("--samples", help="Dirichlet samples drawn.")] = 100_000,
        top_k: Annotated[int, typer.Option("--top-k", help="Average the best k samples.")] = 128,
        max_weight: Annotated[float, typer.Option("--max-weight", help="Cap on any one domain's weight.")] = 1.0,
        seed: Annotated[int, typer.Option("--seed", help="Seeds the sampling.")] = 0,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Search for the mixture with the lowest predicted loss (RegMix: sample around a prior, average the top k)."""
        from ..mixtures import MixtureRegressor, optimize_mixture

        m = MixtureRegressor.load(model_path)
        p = None if prior is None else _columns_for(m, prior).mean(axis=0)
        emit(optimize_mixture(m, prior=p, n_samples=n_samples, top_k=top_k, max_weight=max_weight,
                              random_state=seed), fmt)

    app.add_typer(mixture_app, name="mixture")
