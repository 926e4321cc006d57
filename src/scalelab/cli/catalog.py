"""CLI command group: the model presets (``scalelab models``) and the device catalog (``scalelab gpus``).

``scalelab models`` lists every preset with its shape and parameter counts; ``scalelab models NAME``
(a preset, a ModelSpec TOML/JSON or a HF ``config.json``) shows one model in full. ``scalelab gpus`` and
``scalelab gpus NAME`` (or a device TOML) do the same for accelerators. JSON output carries raw SI numbers
and exact integer counts; human tables use decimal prefixes (B = 1e9 parameters).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit


def _model_row(spec: Any, human: bool, family: str = "", source: str = "") -> dict[str, Any]:
    from ..units import format_count

    c = spec.n_params()
    moe = spec.moe
    row: dict[str, Any] = {
        "name": spec.name,
        "layers": spec.n_layers,
        "d_model": spec.d_model,
        "heads/kv": f"{spec.n_heads}/{'MLA' if spec.mla else spec.n_kv_heads}",
        "experts": None if moe is None else f"{moe.n_experts}/{moe.top_k}"
        + (f"+{moe.n_shared_experts}" if moe.n_shared_experts else ""),
        "total": c.total,
        "active": c.active,
        "non-emb": c.non_embedding,
    }
    if human:
        for k in ("total", "active", "non-emb"):
            row[k] = format_count(row[k], digits=4)
        return row
    return {**spec.summary(), "params_embedding": c.embedding,
            "params_active_non_embedding": c.active_non_embedding, "family": family, "source": source}


def _model_detail(name: str, human: bool) -> dict[str, Any]:
    from ..arch import get_model
    from ..arch.loader import _alias_index, get_preset
    from ..units import format_count

    spec = get_model(name)
    preset = get_preset(name) if name.strip().lower() in _alias_index() else None
    counts = spec.n_params().to_dict()
    if not human:
        out: dict[str, Any] = {"spec": spec.to_dict(), "params": counts}
        if preset is not None:
            out.update(family=preset.family, source=preset.source, aliases=list(preset.aliases), notes=preset.notes)
        return out
    out = {k: v for k, v in spec.to_dict().items() if k not in ("moe", "mla") and v is not None}
    for block in ("moe", "mla"):
        sub = getattr(spec, block)
        if sub is not None:
            out.update({f"{block}.{k}": v for k, v in sub.to_dict().items() if v is not None})
    out.update({f"params.{k}": f"{format_count(v, digits=4)} ({v:,})" for k, v in counts.items()})
    if preset is not None:
        out.update(source=preset.source, aliases=", ".join(preset.aliases) or "-")
        if preset.notes:
            out["notes"] = preset.notes
    return out


def _gpu_row(entry: Any, human: bool) -> dict[str, Any]:
    row = entry.summary()
    if not human:
        return row
    row = {k: _num(v) for k, v in row.items()}
    # V100 has no BF16 units: show its FP16 peak, marked, rather than an empty cell.
    bf16 = row["bf16_tflops"] if row["bf16_tflops"] is not None else f"{row['fp16_tflops']}*"
    return {
        "name": row["name"],
        "bf16 TF/s": bf16,
        "fp8 TF/s": row["fp8_tflops"],
        "fp4 TF/s": row["fp4_tflops"],
        "HBM GB": row["memory_gb"],
        "HBM TB/s": row["hbm_tb_per_s"],
        "link GB/s": row["intra_node_gb_per_s"],
        "NIC GB/s": row["nic_gb_per_s"],
        "GPUs per node": row["gpus_per_node"],
    }


def _human_table(rows: list[dict[str, Any]], title: str) -> Any:
    """The shared table, with the name column kept whole on narrow terminals."""
    from rich import box

    from ._output import table

    t = table(rows, title=title)
    t.box = box.SIMPLE_HEAD  # no vertical rules: the catalog fits an 80-column terminal
    t.padding = (0, 1, 0, 0)
    for col in t.columns:  # cells never wrap; long headers may take two lines
        col.min_width = max([len(w) for w in str(col.header).split()]
                            + [len(str(r.get(str(col.header)) or "-")) for r in rows])
    return t


def _num(v: Any) -> Any:
    """Plain decimal text for table cells (10000, not 1e+04)."""
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return v


def _gpu_detail(name: str, human: bool) -> dict[str, Any]:
    from ..hardware.catalog import get_gpu_entry

    entry = get_gpu_entry(name)
    if not human:
        return entry.to_dict()
    out = {k: _num(v) for k, v in entry.summary().items() if v is not None}  # 49,140 MiB, not 4.914e+04
    out.update(aliases=", ".join(entry.aliases) or "-", source=entry.spec.source,
               efficiency_source=entry.efficiency_source)
    if entry.price_source:
        out["price_source"] = entry.price_source
    return out


def register(app: typer.Typer) -> None:
    """Add ``models`` and ``gpus`` to the root app."""

    @app.command("models")
    def models(
        name: Annotated[
            str | None,
            typer.Argument(help="Show one model: a preset name, a ModelSpec .toml/.json or a HF config.json."),
        ] = None,
        family: Annotated[
            str | None, typer.Option("--family", help="Only presets of this family (llama, qwen3_moe, gpt...).")
        ] = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """List the model presets with their parameter counts, or show one model in full."""
        from ..arch import list_presets

        human = fmt == OutputFormat.human
        if name is not None:
            emit(_model_detail(name, human), fmt, title=None)
            return
        rows = [_model_row(p.spec, human, p.family, p.source) for p in list_presets(family)]
        title = "Model presets (experts: routed/top-k+shared; counts in decimal units, B = 1e9)"
        emit(_human_table(rows, title) if human else rows, fmt)

    @app.command("gpus")
    def gpus(
        name: Annotated[
            str | None, typer.Argument(help="Show one device: a catalog name or a device .toml file.")
        ] = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """List the accelerator catalog (dense peaks, memory, links), or show one device with its sources."""
        from ..hardware import list_gpu_entries

        human = fmt == OutputFormat.human
        if name is not None:
            emit(_gpu_detail(name, human), fmt)
            return
        rows = [_gpu_row(e, human) for e in list_gpu_entries()]
        title = "Accelerators: dense peaks, link per GPU per direction (* = fp16, no bf16)"
        emit(_human_table(rows, title) if human else rows, fmt)
