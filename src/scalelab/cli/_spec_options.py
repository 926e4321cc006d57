"""The options of ``scalelab plan`` and ``scalelab search``, declared once and derived from the specs.

Every option is one :class:`SpecOption`: the flags a user types, the type typer parses, the help, the
config-file table it belongs to and the field it sets there. The ``[layout]`` and ``[train]`` options
are read from :class:`~scalelab.planner.Layout` and :class:`~scalelab.planner.TrainSpec` (a new field
gets a flag, with its docstring as help, and a key in the file, with no more code); :data:`_FIELD_CLI`
holds only the few flags whose spelling or help differs from the field's. The ``[plan]`` and ``[search]``
tables take exactly the keywords of :func:`~scalelab.planner.plan` and
:func:`~scalelab.planner.search_layouts`, ``[memory]`` the fields of ``MemoryConventions``.

One precedence rule for every option (:func:`merge`): a flag given on the command line beats the config
file's value, which beats the spec's default.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ._options import FormatOpt
from ._output import OutputFormat

BOTH = frozenset({"plan", "search"})
RUN = "run"
"""The table of the command's own options: ``[plan]`` for ``plan``, ``[search]`` for ``search``."""
TABLES = ("cluster", "train", "layout", "plan", "search", "memory")
"""Config-file tables, besides the top-level ``model`` key."""


@dataclass(frozen=True)
class SpecOption:
    """One command-line option and the config-file key it stands for."""

    param: str
    """Parameter name of the command function (what typer passes)."""
    flags: tuple[str, ...]
    type: Any
    """What typer parses: int, float, str, bool or an Enum of choices."""
    help: str
    table: str | None
    """Config-file table (``model``, ``cluster``, ``train``, ``layout``, :data:`RUN`, ``memory``); ``None``
    for an option of the command itself (``--explain``, ``--config``, ``--format``)."""
    field: str
    """Key it sets in that table."""
    commands: frozenset[str] = BOTH
    convert: Callable[[Any], Any] | None = None
    """Flag value -> field value (GiB -> bytes, a dtype name -> bytes); ``None`` from it means not given."""
    replaces: tuple[str, ...] = ()
    """Fields of the same table that the flag overrides when given (a batch in tokens or in sequences)."""
    default: Any = None


# ---- options derived from Layout and TrainSpec -----------------------------------------------------------

_RECOMPUTE_HELP = ("Activation save policy: none, act, selective, selective-act, torchtitan-op, deepseek-v3, "
                   "full, or recomputed modules joined by + (core_attn, act, layernorm, mla_up_proj).")
#: CLI spelling, type or help of the fields whose flag is not simply ``--field-name`` with the docstring's
#: first sentence.
_FIELD_CLI: dict[tuple[str, str], dict[str, Any]] = {
    ("train", "global_batch"): {"help": "Sequences per optimizer step.", "replaces": ("global_batch_tokens",)},
    ("train", "global_batch_tokens"): {"help": "Tokens per optimizer step (instead of --global-batch).",
                                       "replaces": ("global_batch",)},
    ("train", "total_tokens"): {"flags": ("--tokens",),
                                "help": "Total training tokens (for days, GPU-hours, cost), e.g. 15e12."},
    # free text checked by the spec, whose error lists the allowed values
    ("train", "precision"): {"type": str, "help": "fp32, bf16, bf16-fp32-grad, fp8 or fp4."},
    ("train", "optimizer"): {"type": str, "help": "adamw, adam8bit, adafactor, sgd or galore."},
    ("layout", "dp"): {"help": "Data-parallel degree (default: fills the cluster)."},
    ("layout", "sequence_parallel"): {"help": "Megatron sequence parallelism (default: on when tp > 1)."},
    ("layout", "recompute"): {"flags": ("--save-policy", "--recompute"), "help": _RECOMPUTE_HELP},
    ("layout", "zero3_gather"): {"help": "ZeRO-3 gathers per micro-batch (default) or once per step, keeping the "
                                         "stage unsharded (torchtitan under PP; its framework profile sets it)."},
}


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a field docstring, without reST markup (``x``, :class:`~a.b.X`)."""
    text = " ".join((doc or "").split())
    text = re.sub(r":\w+:`~?([^`]*)`", lambda m: m.group(1).rsplit(".", 1)[-1], text).replace("``", "")
    end = re.search(r"\.(?=\s+[A-Z])", text)
    return text[: end.start() + 1] if end else text


def _choices(name: str, values: tuple[Any, ...]) -> type[Enum]:
    """A str Enum of a Literal's values, so typer shows and checks them as choices."""
    return StrEnum(name, {str(v): str(v) for v in values})  # type: ignore[return-value]


def _flag_type(name: str, annotation: Any) -> Any:
    """The type typer parses for a field, or ``None`` for a field with no flag (a nested spec)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _flag_type(name, args[0]) if len(args) == 1 else None
    if typing.get_origin(annotation) is Annotated:
        return _flag_type(name, args[0])
    if typing.get_origin(annotation) is Literal:
        if all(isinstance(a, str) for a in args):
            return _choices(name.title().replace("_", ""), tuple(args))
        return type(args[0]) if len({type(a) for a in args}) == 1 else None
    return annotation if annotation in (int, float, str, bool) else None


def spec_field_options(table: str, spec: Any) -> list[SpecOption]:
    """One option per field of the pydantic ``spec`` that a flag can hold, in the spec's order."""
    out = []
    for name, info in spec.model_fields.items():
        kind = _flag_type(name, info.annotation)
        if kind is None:
            continue  # nested specs (TrainSpec.lora) live in the config file only
        over = _FIELD_CLI.get((table, name), {})
        flag = "--" + name.replace("_", "-")
        flags = over.get("flags", (f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,))
        param = flags[0].split("/")[0][2:].replace("-", "_")  # the flag's name, as the guard and errors show it
        out.append(SpecOption(param=param, flags=flags, type=over.get("type", kind), table=table, field=name,
                              help=over.get("help", _first_sentence(info.description)),
                              replaces=over.get("replaces", ())))
    return out


# ---- the other options, declared here once -------------------------------------------------------------

def _gib(v: float) -> float:
    from ..units import GiB

    return v * GiB


def _dtype(v: str) -> float:
    from ..units import dtype_bytes

    return dtype_bytes(v)


class ObjectiveChoice(StrEnum):
    step_time = "step_time"
    cost = "cost"


_PLAN, _SEARCH = frozenset({"plan"}), frozenset({"search"})
_CLUSTER = [
    SpecOption("model", ("--model", "-m"), str, "Model preset name or a TOML/JSON/HF config.json path.", "model",
               "model"),
    SpecOption("gpu", ("--gpu",), str, "GPU catalog name (see `scalelab gpus`) or a TOML/JSON file.", "cluster",
               "gpu"),
    SpecOption("n_gpus", ("--n-gpus", "-n"), int, "GPUs in the job.", "cluster", "n_gpus"),
    SpecOption("gpus_per_node", ("--gpus-per-node",), int, "GPUs per node (default: the catalog's).", "cluster",
               "gpus_per_node"),
    SpecOption("price", ("--price",), float, "USD per GPU-hour (default: the catalog's indicative price).",
               "cluster", "price_per_gpu_hour"),
]
_RUN = [
    SpecOption("measured_step_time", ("--measured-step-time",), float,
               "Measured seconds per step: report MFU/HFU/days from it.", RUN, "measured_step_time_s", _PLAN),
    SpecOption("measured_tflops", ("--measured-tflops",), float,
               "Measured TFLOP/s per GPU (recompute included).", RUN, "measured_tflops_per_gpu", _PLAN),
    SpecOption("top", ("--top",), int, "How many plans to show.", RUN, "top", _SEARCH),
    SpecOption("objective", ("--objective",), ObjectiveChoice, "Rank by step time or by cost.", RUN, "objective",
               _SEARCH),
    SpecOption("max_cp", ("--max-cp",), int, "Largest context-parallel degree to try.", RUN, "max_cp", _SEARCH),
    SpecOption("max_interleave", ("--max-interleave",), int, "Most virtual pipeline stages per rank to try (8).",
               RUN, "max_interleave", _SEARCH),
    SpecOption("no_offload", ("--no-offload",), bool, "Do not consider CPU offload.", RUN, "allow_offload", _SEARCH,
               convert=lambda v: False if v else None, default=False),
    SpecOption("activation_offload", ("--activation-offload",), bool,
               "Also try CPU activation offloading (pp 1): a layout that does not fit gets the fewest offloaded "
               "layers that make it fit.", RUN, "activation_offload", _SEARCH,
               convert=lambda v: True if v else None, default=False),
    SpecOption("explain_layout", ("--explain",), str,
               "A layout as search prints it (e.g. 'dp128 tp8 pp16 v4 z1 sp norc mb1'): show term by term why "
               "the best plan beats it.", None, "explain", _SEARCH),
    SpecOption("efficiency", ("--efficiency",), float,
               "Matmul efficiency, fraction of dense peak (default: the device's).", RUN, "efficiency"),
    SpecOption("attention_efficiency", ("--attention-efficiency",), float,
               "Attention-core efficiency, fraction of dense peak (default: the device's, or its matmul efficiency "
               "where the catalog has no attention-kernel figure: b200, gb200, mi250x, mi300x, mi325x, tpu-v5p, "
               "v100-sxm).", RUN, "attention_efficiency"),
    SpecOption("ep_overlap", ("--ep-overlap",), float,
               "Fraction of expert all-to-all hidden behind compute (0 default; 1 = DualPipe).", RUN, "ep_overlap"),
    SpecOption("tp_overlap", ("--tp-overlap",), float,
               "Fraction of TP collectives hidden behind the GEMMs they feed or drain, at most those GEMMs' time "
               "(0 default; nemo: 1 = Transformer Engine's userbuffers overlap).", RUN, "tp_overlap"),
    SpecOption("async_tp", ("--async-tp",), bool,
               "torch's AsyncTP (torchtitan enable_async_tensor_parallel): hide the sequence-parallel collectives "
               "inductor fuses with their GEMMs (not with --tp-overlap).", RUN, "async_tp",
               convert=lambda v: True if v else None, default=False),
    SpecOption("pp_overlap", ("--pp-overlap",), float,
               "Fraction of pipeline sends hidden behind compute with interleaving (0 default; nemo: 1 = "
               "Megatron-Core's overlap_p2p_comm).", RUN, "pp_overlap"),
    SpecOption("framework", ("--framework",), str, "Framework profile: megatron, nemo, megatron-deepspeed, "
               "torchtitan, torchtitan-compile, torchtitan-compile-2025, deepspeed, llm-foundry, llm-foundry-triton, "
               "deepseek-v3.", RUN, "framework"),
    SpecOption("activation_dtype", ("--activation-dtype",), str, "Stored activations: fp32, bf16, fp8.", "memory",
               "activation_bytes", convert=_dtype),
    SpecOption("optimizer_state_dtype", ("--optimizer-state-dtype",), str,
               "Optimizer moments: fp32 (default) or bf16 (DeepSeek-V3).", "memory", "optimizer_state_bytes",
               convert=_dtype),
    SpecOption("logits_dtype", ("--logits-dtype",), str, "Logits of the loss: fp32 or bf16.", "memory",
               "logits_bytes", convert=_dtype),
    SpecOption("gradient_dtype", ("--gradient-dtype",), str,
               "Stored gradients (the buffer the optimizer reads): fp32 or bf16 (default: the precision's; nemo: "
               "bf16, as NVIDIA's performance recipes set grad_sync_dtype).", "memory", "grad_bytes", convert=_dtype),
    SpecOption("memory_reserve_gib", ("--memory-reserve-gib",), float,
               "GiB of each GPU kept for the CUDA context and workspaces (default 1).", RUN, "memory_reserve_bytes",
               convert=_gib),
    SpecOption("config", ("--config", "-c"), Path,
               "TOML/JSON file with [cluster], [train], [layout], [plan], [search] tables.", None, "config"),
]


def spec_options() -> list[SpecOption]:
    """Every option of ``plan`` and ``search``: model and cluster, then the TrainSpec and Layout fields, then
    the options of the planner functions, memory conventions and the config file."""
    from ..planner.layout import Layout, TrainSpec

    return [*_CLUSTER, *spec_field_options("train", TrainSpec), *spec_field_options("layout", Layout), *_RUN]


def command_options(command: str) -> list[SpecOption]:
    return [o for o in spec_options() if command in o.commands]


def command_function(command: str, body: Callable[[dict[str, Any]], None], doc: str) -> Callable[..., None]:
    """A typer command function whose parameters are the options of ``command`` (plus ``--format``); it calls
    ``body`` with every parameter by name."""
    params, hints = [], {}
    for o in command_options(command):
        kind = o.type if o.default is not None else o.type | None
        hint: Any = Annotated[kind, typer.Option(*o.flags, help=o.help)]
        params.append(inspect.Parameter(o.param, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=hint))
        hints[o.param] = hint
    params.append(inspect.Parameter("fmt", inspect.Parameter.KEYWORD_ONLY, default=OutputFormat.human,
                                    annotation=FormatOpt))
    hints["fmt"] = FormatOpt

    def run(**kwargs: Any) -> None:
        body(kwargs)

    run.__name__ = run.__qualname__ = f"{command}_cmd"
    run.__doc__ = doc
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {**hints, "return": None}
    return run


# ---- config file and precedence ----------------------------------------------------------------------------

def _table_keys() -> dict[str, set[str] | None]:
    """The keys each config-file table takes (``None``: checked by the dataclass itself)."""
    import dataclasses

    from ..planner import MemoryConventions, plan, search_layouts
    from ..planner.layout import Layout, TrainSpec

    def keywords(func: Callable[..., Any]) -> set[str]:
        return {p.name for p in inspect.signature(func).parameters.values()
                if p.kind is p.KEYWORD_ONLY and not p.name.startswith("_")
                and p.name not in ("conventions", "memory_conventions", "fixed")}

    return {"cluster": {o.field for o in _CLUSTER if o.table == "cluster"}, "train": set(TrainSpec.model_fields),
            "layout": set(Layout.model_fields), "plan": keywords(plan), "search": keywords(search_layouts),
            "memory": {f.name for f in dataclasses.fields(MemoryConventions)}}


def read_config(path: Path | None) -> dict[str, Any]:
    """The config file's tables, each checked for unknown keys ({} without a file)."""
    from .._config_files import read_config_file
    from ..errors import ConfigError, explain

    if path is None:
        return {}
    data = read_config_file(path)
    allowed = {"model", *TABLES}
    bad = sorted(set(data) - allowed)
    if bad:
        raise ConfigError(explain(f"unknown table(s) in {path}", value=bad, allowed=", ".join(sorted(allowed)),
                                  fix="put options under [cluster], [train], [layout], [plan] or [search]"))
    for table, keys in _table_keys().items():
        value = data.get(table, {})
        if not isinstance(value, dict):
            raise ConfigError(explain(f"[{table}] in {path} must be a table", value=value))
        unknown = sorted(set(value) - keys) if keys is not None else []
        if unknown:
            raise ConfigError(explain(f"unknown key(s) in [{table}] of {path}", value=unknown,
                                      allowed=", ".join(sorted(keys or ()))))
    return data


def merge(command: str, cfg: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """The config file's tables with the flags that were given on top: ``{"model": ..., "cluster": {...},
    "train": {...}, "layout": {...}, "run": {...}, "memory": {...}}``; ``run`` is ``[plan]`` or ``[search]``."""
    out: dict[str, Any] = {t: dict(cfg.get(t, {})) for t in ("cluster", "train", "layout", "memory")}
    out[RUN] = dict(cfg.get(command, {}))
    out["model"] = cfg.get("model")
    options = command_options(command)
    given = {(o.table, o.field) for o in options if flags.get(o.param) is not None}
    for o in options:
        value = flags.get(o.param)
        if value is None or o.table is None:
            continue
        value = value.value if isinstance(value, Enum) else value
        if o.convert is not None:
            value = o.convert(value)
            if value is None:
                continue
        if o.table == "model":
            out["model"] = value
            continue
        for other in o.replaces:
            if (o.table, other) not in given:
                out[o.table].pop(other, None)
        out[o.table][o.field] = value
    return out
