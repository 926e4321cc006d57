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
    [layout]                           # plan: the layout; search: degrees held fixed
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

A layout whose degrees do not divide the model or the cluster is an error here (exit 1, the reasons
and the allowed values); one that only runs out of memory is printed as an infeasible plan.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit


class OffloadChoice(StrEnum):
    none = "none"
    cpu = "cpu"
    nvme = "nvme"


class GatherChoice(StrEnum):
    micro_batch = "micro-batch"
    step = "step"


class ObjectiveChoice(StrEnum):
    step_time = "step_time"
    cost = "cost"


_SECTIONS = {
    "cluster": {"gpu", "n_gpus", "gpus_per_node", "price_per_gpu_hour"},
    "train": None,  # TrainSpec fields, checked by the spec itself
    "layout": None,  # Layout fields
    "plan": {"efficiency", "attention_efficiency", "dp_overlap", "ep_overlap", "measured_step_time_s",
             "measured_tflops_per_gpu", "mfu_peak_dtype", "memory_limit_bytes", "memory_reserve_bytes",
             "framework"},
    "search": {"top", "objective", "max_tp", "max_pp", "max_cp", "max_micro_batch", "max_interleave",
               "zero_stages", "recompute", "allow_offload", "allow_hsdp", "flash_attention", "memory_limit_bytes",
               "efficiency", "attention_efficiency", "dp_overlap", "ep_overlap", "memory_reserve_bytes",
               "framework"},
    "memory": None,  # MemoryConventions fields, checked by the dataclass
}

# ---- shared options -----------------------------------------------------------------------------------
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Model preset name or a TOML/JSON/HF config.json path.")
]
GpuOpt = Annotated[
    str | None, typer.Option("--gpu", help="GPU catalog name (see `scalelab gpus`) or a TOML/JSON file.")
]
NGpusOpt = Annotated[int | None, typer.Option("--n-gpus", "-n", help="GPUs in the job.")]
GpnOpt = Annotated[int | None, typer.Option("--gpus-per-node", help="GPUs per node (default: the catalog's).")]
PriceOpt = Annotated[
    float | None, typer.Option("--price", help="USD per GPU-hour (default: the catalog's indicative price).")
]
SeqOpt = Annotated[int | None, typer.Option("--seq-len", help="Tokens per sequence.")]
GbOpt = Annotated[int | None, typer.Option("--global-batch", help="Sequences per optimizer step.")]
GbtOpt = Annotated[
    int | None, typer.Option("--global-batch-tokens", help="Tokens per optimizer step (instead of --global-batch).")
]
MbOpt = Annotated[int | None, typer.Option("--micro-batch", help="Sequences per micro-batch per DP rank.")]
TokensOpt = Annotated[
    float | None, typer.Option("--tokens", help="Total training tokens (for days, GPU-hours, cost), e.g. 15e12.")
]
PrecOpt = Annotated[str | None, typer.Option("--precision", help="fp32, bf16, bf16-fp32-grad, fp8 or fp4.")]
OptimOpt = Annotated[str | None, typer.Option("--optimizer", help="adamw, adam8bit, adafactor, sgd or galore.")]
TpOpt = Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree.")]
PpOpt = Annotated[int | None, typer.Option("--pp", help="Pipeline stages.")]
CpOpt = Annotated[int | None, typer.Option("--cp", help="Context-parallel degree.")]
EpOpt = Annotated[int | None, typer.Option("--ep", help="Expert-parallel degree (MoE).")]
DpOpt = Annotated[int | None, typer.Option("--dp", help="Data-parallel degree (default: fills the cluster).")]
ZeroOpt = Annotated[int | None, typer.Option("--zero", help="ZeRO stage 0-3 (3 = FSDP).")]
RcOpt = Annotated[str | None, typer.Option(
    "--save-policy", "--recompute",
    help="Activation save policy: none, act, selective, selective-act, torchtitan-op, deepseek-v3, full, "
         "or recomputed modules joined by + (core_attn, act, layernorm, mla_up_proj).")]
FrameworkOpt = Annotated[str | None, typer.Option(
    "--framework", help="Framework profile: megatron, megatron-deepspeed, torchtitan, torchtitan-compile, "
    "deepspeed, deepseek-v3.")]
ActDtypeOpt = Annotated[str | None, typer.Option("--activation-dtype", help="Stored activations: fp32, bf16, fp8.")]
OptDtypeOpt = Annotated[str | None, typer.Option(
    "--optimizer-state-dtype", help="Optimizer moments: fp32 (default) or bf16 (DeepSeek-V3).")]
LogitsDtypeOpt = Annotated[str | None, typer.Option("--logits-dtype", help="Logits of the loss: fp32 or bf16.")]
ReserveOpt = Annotated[float | None, typer.Option(
    "--memory-reserve-gib", help="GiB of each GPU kept for the CUDA context and workspaces (default 1).")]
SpOpt = Annotated[bool | None, typer.Option("--sequence-parallel/--no-sequence-parallel",
                                               help="Megatron sequence parallelism (default: on when tp > 1).")]
VOpt = Annotated[int | None, typer.Option("--interleave", help="Virtual pipeline stages per rank.")]
OoOpt = Annotated[OffloadChoice | None, typer.Option("--offload-optimizer", help="Offload optimizer states.")]
GatherOpt = Annotated[GatherChoice | None, typer.Option(
    "--zero3-gather", help="ZeRO-3 gathers per micro-batch (default) or once per step, keeping the stage "
    "unsharded (torchtitan under PP; its framework profile sets it).")]
OpOpt = Annotated[OffloadChoice | None, typer.Option("--offload-params", help="Offload parameters (needs --zero 3).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML/JSON file with [cluster], [train], [layout], [plan], [search] tables."),
]
EffOpt = Annotated[
    float | None,
    typer.Option("--efficiency", help="Matmul efficiency, fraction of dense peak (default: the device's)."),
]
EpOverlapOpt = Annotated[
    float | None,
    typer.Option("--ep-overlap", help="Fraction of expert all-to-all hidden behind compute (0 default; 1 = DualPipe)."),
]


def _read_config(path: Path | None) -> dict[str, Any]:
    from .._config_files import read_config_file
    from ..errors import ConfigError, explain

    if path is None:
        return {}
    data = read_config_file(path)
    allowed = {"model", *_SECTIONS}
    bad = sorted(set(data) - allowed)
    if bad:
        raise ConfigError(explain(f"unknown table(s) in {path}", value=bad, allowed=", ".join(sorted(allowed)),
                                  fix="put options under [cluster], [train], [layout], [plan] or [search]"))
    for section, keys in _SECTIONS.items():
        value = data.get(section, {})
        if not isinstance(value, dict):
            raise ConfigError(explain(f"[{section}] in {path} must be a table", value=value))
        if keys is not None:
            unknown = sorted(set(value) - keys)
            if unknown:
                raise ConfigError(explain(f"unknown key(s) in [{section}] of {path}", value=unknown,
                                          allowed=", ".join(sorted(keys))))
    return data


def _merge(base: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """Flags that were given (not None) override the config file's values."""
    out = dict(base)
    out.update({k: (v.value if isinstance(v, Enum) else v) for k, v in flags.items() if v is not None})
    return out


def _inputs(cfg: dict[str, Any], model: str | None, gpu: str | None, n_gpus: int | None, gpus_per_node: int | None,
            price: float | None, train_flags: dict[str, Any]):
    from ..arch.loader import get_model, model_from_dict
    from ..errors import ConfigError, explain
    from ..hardware.catalog import get_cluster
    from ..planner import TrainSpec

    m = model if model is not None else cfg.get("model")
    if m is None:
        raise ConfigError(explain("no model given", fix="pass --model NAME (see `scalelab models`) or a config file"))
    model_spec = model_from_dict(m, where="[model]") if isinstance(m, dict) else get_model(m)
    c = _merge(cfg.get("cluster", {}), gpu=gpu, n_gpus=n_gpus, gpus_per_node=gpus_per_node, price_per_gpu_hour=price)
    if "gpu" not in c or "n_gpus" not in c:
        raise ConfigError(explain("the cluster needs a GPU and a GPU count",
                                  fix="pass --gpu NAME --n-gpus N (see `scalelab gpus`)"))
    cluster = get_cluster(c["gpu"], c["n_gpus"], c.get("gpus_per_node"), c.get("price_per_gpu_hour"))
    t = _merge(cfg.get("train", {}), **train_flags)
    if train_flags.get("global_batch_tokens") is not None and train_flags.get("global_batch") is None:
        t.pop("global_batch", None)  # the flag's batch in tokens overrides the file's batch in sequences
    if "seq_len" not in t:
        t["seq_len"] = model_spec.seq_len
    train = TrainSpec(**t)
    return model_spec, cluster, train


def _memory_options(cfg: dict[str, Any], framework: str | None, activation_dtype: str | None,
                    optimizer_state_dtype: str | None, logits_dtype: str | None,
                    reserve_gib: float | None) -> dict[str, Any]:
    """plan()/search_layouts() keywords for memory: the framework's conventions, then ``[memory]`` of the
    config file, then the dtype flags; and the reserve."""
    import dataclasses

    from ..errors import ConfigError, explain
    from ..planner import MemoryConventions
    from ..planner.frameworks import get_framework
    from ..units import GiB, dtype_bytes

    out: dict[str, Any] = {}
    if framework is not None:
        out["framework"] = framework
    base = get_framework(framework).memory if framework is not None else MemoryConventions()
    fields = dict(cfg.get("memory", {}))
    for key, dtype in (("activation_bytes", activation_dtype), ("optimizer_state_bytes", optimizer_state_dtype),
                       ("logits_bytes", logits_dtype)):
        if dtype is not None:
            fields[key] = dtype_bytes(dtype)
    if fields:
        try:
            out["memory_conventions"] = dataclasses.replace(base, **fields)
        except TypeError:
            names = [f.name for f in dataclasses.fields(MemoryConventions)]
            raise ConfigError(explain("unknown key(s) in [memory]", value=sorted(set(fields) - set(names)),
                                      allowed=", ".join(names))) from None
    if reserve_gib is not None:
        out["memory_reserve_bytes"] = reserve_gib * GiB
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


def register(app: typer.Typer) -> None:
    """Add ``plan`` and ``search`` to the root app."""

    @app.command("plan")
    def plan_cmd(
        model: ModelOpt = None, gpu: GpuOpt = None, n_gpus: NGpusOpt = None, gpus_per_node: GpnOpt = None,
        price: PriceOpt = None, seq_len: SeqOpt = None, global_batch: GbOpt = None,
        global_batch_tokens: GbtOpt = None, micro_batch: MbOpt = None, tokens: TokensOpt = None,
        precision: PrecOpt = None, optimizer: OptimOpt = None, tp: TpOpt = None, pp: PpOpt = None,
        cp: CpOpt = None, ep: EpOpt = None, dp: DpOpt = None, zero: ZeroOpt = None, recompute: RcOpt = None,
        sequence_parallel: SpOpt = None, interleave: VOpt = None, offload_optimizer: OoOpt = None,
        offload_params: OpOpt = None, zero3_gather: GatherOpt = None,
        measured_step_time: Annotated[
            float | None,
            typer.Option("--measured-step-time", help="Measured seconds per step: report MFU/HFU/days from it."),
        ] = None,
        measured_tflops: Annotated[
            float | None, typer.Option("--measured-tflops", help="Measured TFLOP/s per GPU (recompute included).")
        ] = None,
        efficiency: EffOpt = None,
        ep_overlap: EpOverlapOpt = None,
        framework: FrameworkOpt = None,
        activation_dtype: ActDtypeOpt = None,
        optimizer_state_dtype: OptDtypeOpt = None,
        logits_dtype: LogitsDtypeOpt = None,
        memory_reserve_gib: ReserveOpt = None,
        config: ConfigOpt = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Evaluate one layout: memory per GPU, FLOPs, step time, MFU/HFU, days, GPU-hours and cost."""
        from ..errors import LayoutError, explain
        from ..planner import Layout, plan

        cfg = _read_config(config)
        mdl, cluster, train = _inputs(cfg, model, gpu, n_gpus, gpus_per_node, price, dict(
            seq_len=seq_len, global_batch=global_batch, global_batch_tokens=global_batch_tokens,
            total_tokens=tokens, precision=precision, optimizer=optimizer))
        lay = _merge(cfg.get("layout", {}), tp=tp, pp=pp, cp=cp, ep=ep, dp=dp, zero=zero, recompute=recompute,
                     sequence_parallel=sequence_parallel, interleave=interleave, micro_batch=micro_batch,
                     offload_optimizer=offload_optimizer, offload_params=offload_params, zero3_gather=zero3_gather)
        lay.setdefault("sequence_parallel", lay.get("tp", 1) > 1)
        layout = Layout(**lay)
        opts = _merge(cfg.get("plan", {}), efficiency=efficiency, measured_step_time_s=measured_step_time,
                      measured_tflops_per_gpu=measured_tflops, ep_overlap=ep_overlap, framework=framework)
        opts.update(_memory_options(cfg, opts.pop("framework", None), activation_dtype, optimizer_state_dtype,
                                    logits_dtype, memory_reserve_gib))
        result = plan(mdl, cluster, train, layout, **opts)
        structural = [r for r in result.reasons if not r.startswith(("out of memory", "offload needs"))]
        if structural:
            raise LayoutError(explain(f"impossible layout {layout.short()} for {mdl.name} on {cluster.n_gpus} GPUs: "
                                      + "; ".join(structural), allowed=_layout_hints(mdl, cluster, train),
                                      fix="change the degrees, or run `scalelab search` to list layouts that fit"))
        emit(result, fmt)

    @app.command("search")
    def search_cmd(
        model: ModelOpt = None, gpu: GpuOpt = None, n_gpus: NGpusOpt = None, gpus_per_node: GpnOpt = None,
        price: PriceOpt = None, seq_len: SeqOpt = None, global_batch: GbOpt = None,
        global_batch_tokens: GbtOpt = None, micro_batch: MbOpt = None, tokens: TokensOpt = None,
        precision: PrecOpt = None, optimizer: OptimOpt = None, tp: TpOpt = None, pp: PpOpt = None,
        cp: CpOpt = None, ep: EpOpt = None, dp: DpOpt = None, zero: ZeroOpt = None, recompute: RcOpt = None,
        interleave: VOpt = None,
        top: Annotated[int | None, typer.Option("--top", help="How many plans to show.")] = None,
        objective: Annotated[
            ObjectiveChoice | None, typer.Option("--objective", help="Rank by step time or by cost.")
        ] = None,
        max_cp: Annotated[int | None, typer.Option("--max-cp", help="Largest context-parallel degree to try.")] = None,
        no_offload: Annotated[bool, typer.Option("--no-offload", help="Do not consider CPU offload.")] = False,
        explain_layout: Annotated[str | None, typer.Option(
            "--explain", help="A layout as search prints it (e.g. 'dp128 tp8 pp16 v4 z1 sp norc mb1'): show term "
                              "by term why the best plan beats it.")] = None,
        efficiency: EffOpt = None,
        ep_overlap: EpOverlapOpt = None,
        framework: FrameworkOpt = None,
        activation_dtype: ActDtypeOpt = None,
        optimizer_state_dtype: OptDtypeOpt = None,
        logits_dtype: LogitsDtypeOpt = None,
        memory_reserve_gib: ReserveOpt = None,
        config: ConfigOpt = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Search the parallel layouts that fit and rank them; degrees given as flags are held fixed."""
        from ..planner import search_layouts

        cfg = _read_config(config)
        mdl, cluster, train = _inputs(cfg, model, gpu, n_gpus, gpus_per_node, price, dict(
            seq_len=seq_len, global_batch=global_batch, global_batch_tokens=global_batch_tokens,
            total_tokens=tokens, precision=precision, optimizer=optimizer))
        fixed = _merge(cfg.get("layout", {}), tp=tp, pp=pp, cp=cp, ep=ep, dp=dp, zero=zero, recompute=recompute,
                       interleave=interleave, micro_batch=micro_batch)
        opts = _merge(cfg.get("search", {}), top=top, objective=objective, max_cp=max_cp, efficiency=efficiency,
                      ep_overlap=ep_overlap, framework=framework)
        opts.update(_memory_options(cfg, opts.pop("framework", None), activation_dtype, optimizer_state_dtype,
                                    logits_dtype, memory_reserve_gib))
        if no_offload:
            opts["allow_offload"] = False
        if "zero_stages" in opts:
            opts["zero_stages"] = tuple(opts["zero_stages"])
        if "recompute" in opts:
            opts["recompute"] = tuple(opts["recompute"])
        result = search_layouts(mdl, cluster, train, fixed=fixed or None, **opts)
        if explain_layout is not None:
            from ..planner.explain import explain_layout as compare

            emit(compare(result, explain_layout), fmt)
            return
        emit(result, fmt)
        if not result.n_feasible:  # the report says why; a script must not read "no layout" as success
            from ._output import err_console

            err_console.print(f"no layout of {mdl.name} fits on {cluster.n_gpus} GPUs. Fix: add GPUs, shorten "
                              "--seq-len, lower --micro-batch, or use a smaller model", markup=False)
            raise typer.Exit(1)
