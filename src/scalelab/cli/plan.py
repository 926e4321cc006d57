"""CLI commands ``scalelab plan`` (evaluate one layout) and ``scalelab search`` (rank the layouts that fit).

Precedence: command-line flags override a ``--config`` TOML/JSON file, which overrides the defaults.
The file has one table per spec, with the Python field names::

    model = "llama-3.1-70b"            # or a [model] table of ModelSpec fields, or a file path
    [cluster]
    gpu = "h100-sxm"
    n_gpus = 512
    price_per_gpu_hour = 2.5
    [train]
    seq_len = 8192
    global_batch_tokens = 16_000_000
    total_tokens = 15e12
    [layout]                           # plan: the layout; search: fields held fixed
    tp = 8
    pp = 4
    zero = 1
    recompute = "selective"
    [plan]                             # options of scalelab.plan
    framework = "megatron"
    efficiency = 0.6
    dp_overlap = 1.0
    memory_reserve_bytes = 1073741824
    [memory]                           # MemoryConventions fields (after the framework's)
    optimizer_state_bytes = 2
    logits_copies = 1
    [search]                           # options of scalelab.search_layouts
    top = 5
    objective = "step_time"
    max_cp = 8

Every option is declared once, in :mod:`scalelab.cli._spec_options`: the ``[train]`` and ``[layout]``
flags and keys are the fields of ``TrainSpec`` and ``Layout``, so both commands take the same ones.

A layout whose degrees do not divide the model or the cluster is an error here (exit 1, the reasons
and the allowed values); one that only runs out of memory is printed as an infeasible plan.
"""

from __future__ import annotations

from typing import Any

import typer

from ._output import emit
from ._spec_options import RUN, command_function, merge, read_config


def _inputs(command: str, kwargs: dict[str, Any]):
    """(model, cluster, train, the layout table, the command's own options) from the config file and flags."""
    from ..arch.loader import get_model, model_from_dict
    from ..errors import ConfigError, explain
    from ..hardware.catalog import get_cluster
    from ..planner import TrainSpec

    t = merge(command, read_config(kwargs["config"]), kwargs)
    m = t["model"]
    if m is None:
        raise ConfigError(explain("no model given", fix="pass --model NAME (see `scalelab models`) or a config file"))
    model_spec = model_from_dict(m, where="[model]") if isinstance(m, dict) else get_model(m)
    c = t["cluster"]
    if "gpu" not in c or "n_gpus" not in c:
        raise ConfigError(explain("the cluster needs a GPU and a GPU count",
                                  fix="pass --gpu NAME --n-gpus N (see `scalelab gpus`)"))
    cluster = get_cluster(c["gpu"], c["n_gpus"], c.get("gpus_per_node"), c.get("price_per_gpu_hour"))
    train = TrainSpec(**{"seq_len": model_spec.seq_len, **t["train"]})
    return model_spec, cluster, train, t["layout"], _memory_options(t[RUN], t["memory"])


def _memory_options(opts: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """plan()/search_layouts() keywords: the command's options, with the memory conventions of the
    framework (or the defaults) updated by ``[memory]`` and the dtype flags (keys checked by read_config)."""
    import dataclasses

    from ..planner import MemoryConventions
    from ..planner.frameworks import get_framework

    out = dict(opts)
    if fields:
        framework = out.get("framework")
        base = get_framework(framework).memory if framework is not None else MemoryConventions()
        if out.get("async_tp"):  # as plan() does with the profile's conventions: AsyncTP saves the shards
            base = dataclasses.replace(base, sp_saves_gathered_inputs=False)
        out["memory_conventions"] = dataclasses.replace(base, **fields)
    return out


def _layout_hints(model, cluster, train) -> str:
    def divisors(n: int, cap: int | None = None) -> list[int]:
        return [d for d in range(1, n + 1) if n % d == 0 and (cap is None or d <= cap)]

    heads = [d for d in divisors(model.n_heads, cluster.n_gpus)
             if model.mla is not None or model.n_kv_heads % d == 0 or d % model.n_kv_heads == 0]
    parts = [f"tp in {heads}", f"pp <= {model.n_layers}",
             f"cp in {divisors(train.seq_len, 64)}", f"tp*pp*cp*dp = {cluster.n_gpus}"]
    if model.moe is not None:
        parts.append(f"ep in {divisors(model.moe.n_experts)} dividing dp*cp")
    return "; ".join(parts)


def _plan(kwargs: dict[str, Any]) -> None:
    from ..errors import LayoutError, explain
    from ..planner import Layout, plan

    mdl, cluster, train, lay, opts = _inputs("plan", kwargs)
    lay.setdefault("sequence_parallel", lay.get("tp", 1) > 1)
    layout = Layout(**lay)
    result = plan(mdl, cluster, train, layout, **opts)
    structural = [r for r in result.reasons if not r.startswith(("out of memory", "offload needs"))]
    if structural:
        raise LayoutError(explain(f"impossible layout {layout.short()} for {mdl.name} on {cluster.n_gpus} GPUs: "
                                  + "; ".join(structural), allowed=_layout_hints(mdl, cluster, train),
                                  fix="change the degrees, or run `scalelab search` to list layouts that fit"))
    emit(result, kwargs["fmt"])


def _search(kwargs: dict[str, Any]) -> None:
    from ..planner import search_layouts

    mdl, cluster, train, fixed, opts = _inputs("search", kwargs)
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}  # zero_stages, recompute
    result = search_layouts(mdl, cluster, train, fixed=fixed or None, **opts)
    fmt = kwargs["fmt"]
    if kwargs["explain_layout"] is not None:
        from ..planner.explain import explain_layout as compare

        emit(compare(result, kwargs["explain_layout"]), fmt)
        return
    emit(result, fmt)
    if not result.n_feasible:  # the report says why; a script must not read "no layout" as success
        from ._output import err_console

        if any("out of memory" in reason for reason in result.rejected_counts):
            fix = "add GPUs, shorten --seq-len, lower --micro-batch, or use a smaller model"
        else:  # nothing ran out of memory: the degrees cannot split this batch or model over so many GPUs
            fix = (f"no degrees split a global batch of {train.global_batch} sequences (and this model) over "
                   f"{cluster.n_gpus} GPUs: use fewer GPUs, or a global batch that many of them can share")
        err_console.print(f"no layout of {mdl.name} fits on {cluster.n_gpus} GPUs. Fix: {fix}", markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``plan`` and ``search`` to ``app``, their options built from the specs (imports the planner)."""
    app.command("plan")(command_function(
        "plan", _plan, "Evaluate one layout: memory per GPU, FLOPs, step time, MFU/HFU, days, GPU-hours and cost."))
    app.command("search")(command_function(
        "search", _search, "Search the parallel layouts that fit and rank them; degrees given as flags are held "
                           "fixed."))
