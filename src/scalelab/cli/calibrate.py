"""``scalelab calibrate``: measure this machine's matmul and memory-bound throughput into a device profile
(a catalog TOML file that ``scalelab plan --gpu PATH`` accepts and the tunnel's plan -> prove columns use)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit


def register(app: typer.Typer) -> None:
    """Add ``scalelab calibrate`` to the root app."""

    @app.command()
    def calibrate(
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Profile to write (default $SCALELAB_HOME/device.toml, used by tunnel runs).")] = None,
        device: Annotated[str, typer.Option(help="Device to measure: cpu, cuda, cuda:1 ...")] = "cpu",
        threads: Annotated[int, typer.Option(min=0, help="CPU threads while measuring (0: torch's setting). "
                                             "Tunnel runs of small models use 1.")] = 1,
        dtype: Annotated[list[str] | None, typer.Option(
            "--dtype", help="Matmul dtype(s) to time: fp32, bf16, fp16 (default fp32 on CPU, fp32 and bf16 "
                            "on GPU).")] = None,
        quick: Annotated[bool, typer.Option("--quick", help="Small sizes, short timings (tests).")] = False,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Time torch.matmul at the tunnel's sizes and a large copy; write them as a device profile."""
        from ..tunnel.calibrate import calibrate as measure
        from ..tunnel.calibrate import write_profile
        from ..tunnel.perf import profile_path

        cal = measure(device=device, quick=quick, threads=threads or None,
                      dtypes=tuple(dtype) if dtype else None)
        path = write_profile(cal, out if out is not None else profile_path())
        if fmt == OutputFormat.json:
            emit({**cal.to_dict(), "profile": str(path)}, fmt)
            return
        emit(cal, fmt)
        typer.echo(f"wrote {path}; use it with `scalelab plan --gpu {path}`")
