"""CLI command ``scalelab budget``: a budget (GPUs x days, dollars, GPU-hours or FLOPs) -> a complete run.

Prints N, D, the shape, LR/batch/schedule, the best layout with days, GPU-hours, cost and MFU, and the
forecast loss; ``--recipe FILE.toml`` writes a recipe that ``scalelab plan --config`` reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit


def register(app: typer.Typer) -> None:
    """Add ``budget`` to the root app."""

    @app.command("budget")
    def budget_cmd(
        gpu: Annotated[str | None, typer.Option("--gpu", help="GPU catalog name or a TOML/JSON file.")] = None,
        n_gpus: Annotated[int | None, typer.Option("--n-gpus", "-n", help="GPUs in the job.")] = None,
        days: Annotated[float | None, typer.Option("--days", help="Wall-clock budget in days.")] = None,
        dollars: Annotated[float | None, typer.Option("--dollars", help="Budget in USD (at --price).")] = None,
        gpu_hours: Annotated[float | None, typer.Option("--gpu-hours", help="Budget in GPU-hours.")] = None,
        flops: Annotated[float | None, typer.Option("--flops", help="Budget in training FLOPs (C = 6ND).")] = None,
        law: Annotated[str, typer.Option(
            "--law", help="Chinchilla preset (hoffmann2022 = Hoffmann's approach 3, besiroglu2024, ...) or a "
                          "saved fit (.json).")] = "besiroglu2024",
        unique_tokens: Annotated[float | None, typer.Option(
            "--unique-tokens", help="Unique tokens available; repetition costed by Muennighoff et al. 2023.")] = None,
        inference_tokens: Annotated[float | None, typer.Option(
            "--inference-tokens", help="Tokens served over the model's life: size for the least training + "
                                       "inference FLOPs at the budget's Chinchilla-optimal loss (Sardana et al. "
                                       "2024; needs --flops).")] = None,
        hyperparams: Annotated[str, typer.Option(
            "--hyperparams", help="LR and batch law: deepseek (Bi et al. 2024) or steplaw (Li et al. 2025).")
        ] = "deepseek",
        seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")] = 4096,
        vocab_size: Annotated[int, typer.Option("--vocab-size", help="Vocabulary of the model.")] = 128256,
        price: Annotated[float | None, typer.Option("--price", help="USD per GPU-hour (default: catalog's).")] = None,
        framework: Annotated[str | None, typer.Option("--framework", help="Framework profile for the search.")] = None,
        recipe: Annotated[Path | None, typer.Option(
            "--recipe", help="Write a TOML recipe that `scalelab plan --config` accepts.")] = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Turn a budget into a run: N, D, shape, LR, batch, layout, days, cost and the loss band."""
        from ..budgeting import budget
        from ._files import refuse_overwriting_inputs

        # --gpu takes a device file too; a saved fit for --law/--hyperparams is only a file when it exists
        refuse_overwriting_inputs({"--recipe": recipe}, {"--law file": law, "--hyperparams file": hyperparams,
                                                         "--gpu file": gpu})
        opts: dict[str, Any] = {} if framework is None else {"framework": framework}
        run = budget(gpu=gpu, n_gpus=n_gpus, days=days, dollars=dollars, gpu_hours=gpu_hours, flops=flops,
                     law=law, unique_tokens=unique_tokens, inference_tokens=inference_tokens,
                     hyperparams=hyperparams, seq_len=seq_len,
                     vocab_size=vocab_size, price_per_gpu_hour=price, **opts)
        if recipe is not None:
            recipe.write_text(run.to_toml(), encoding="utf-8")
        emit(run, fmt)
