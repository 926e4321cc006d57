"""Published run tables that ship with scalelab, in the style of ``sklearn.datasets``.

Only tables whose source states a licence that allows redistribution ship here (MIT or Apache-2.0); each
folder under ``scalelab/datasets/data/`` holds the files with the original ``LICENSE``, a ``NOTICE``
(source repository, commit, authors, what was changed) and ``tables.toml`` (the metadata loaders return).
Data without a stated licence (Epoch AI's digitised Chinchilla points, Step Law, SLDBench, (Mis)Fitting,
scaling-law-analysis) never ships: scalelab's own tests read it from ``../shared/anchors`` and skip when it
is absent.

Loaders (rows; licence):

- ``load_gadre2024()``: open_lm over-training runs with downstream evals (104; MIT);
  ``table="grid"``: the shape and warmup sweep (435)
- ``load_porian2024()``: isoFLOP points (1,745; MIT); ``table="optimal_pairs"`` (177),
  ``table="exponents"`` (15)
- ``load_muennighoff2023()``: repeated-data runs of the default fit (182; Apache-2.0); ``table="all"`` (296)
- ``load_regmix(scale, split)``: mixtures and per-domain losses, 1m train (512), 1m/60m test (256),
  1b test (64) (MIT); ``load_regmix_configs()``: the four named 1B mixtures (4)
- ``load_chinchilla_table3()`` (9) and ``load_chinchilla_table_a9()`` (50): Hoffmann et al. 2022's tables
  as transcribed in nanoGPT (MIT)
- ``load_chinchilla_package_example()``: the ``chinchilla`` package's df.csv (234; Apache-2.0)

Each loader returns a :class:`Dataset`: ``data`` (column -> numpy array), ``frame`` (a pandas DataFrame,
needs ``scalelab[data]``), ``columns`` (what each column holds, with units), ``citation``, ``licence``,
``source``, ``description`` and ``law_columns`` (the mapping ``scalelab.laws.load_runs`` takes).
``scalelab datasets`` lists them and ``scalelab datasets export NAME OUT.csv`` writes one out.

This package imports nothing above ``scalelab.units``/``scalelab.errors`` (DESIGN.md layout).

Examples
--------
>>> from scalelab.datasets import load_muennighoff2023
>>> ds = load_muennighoff2023()
>>> len(ds), ds.licence, ds.law_columns["U"]
(182, 'Apache-2.0', 'unique_tokens')
>>> from scalelab.laws import load_runs
>>> runs = load_runs(ds.data, columns=ds.law_columns)      # N, D, U, L ready for MuennighoffLaw
"""

from __future__ import annotations

from ..errors import ConfigError, UnknownNameError, explain
from ._dataset import EXPORT_SUFFIXES, Dataset, DatasetInfo
from ._registry import registry

__all__ = [
    "EXPORT_SUFFIXES",
    "Dataset",
    "DatasetInfo",
    "get_dataset",
    "list_datasets",
    "load_chinchilla_package_example",
    "load_chinchilla_table3",
    "load_chinchilla_table_a9",
    "load_gadre2024",
    "load_muennighoff2023",
    "load_porian2024",
    "load_regmix",
    "load_regmix_configs",
]


def list_datasets() -> list[DatasetInfo]:
    """Every shipped table's metadata (name, rows, licence, citation, source, loader), without loading it.

    >>> [d.name for d in list_datasets()][:2]
    ['gadre2024', 'gadre2024-grid']
    """
    return list(registry().values())


def get_dataset(name: str) -> Dataset:
    """Load a shipped table by its registry name (``scalelab datasets`` lists them).

    >>> get_dataset("chinchilla-table3").data["params"][:2]
    array([4.e+08, 1.e+09])
    """
    from ._dataset import load_table

    info = registry().get(name.strip().lower())
    if info is None:
        raise UnknownNameError("dataset", name, registry(), fix="run `scalelab datasets` to list them")
    return load_table(info)


def _pick(loader: str, argument: str, value: str, choices: dict[str, str]) -> Dataset:
    """Load the table that ``loader(argument=value)`` names, or say which values exist."""
    if value not in choices:
        raise ConfigError(explain(f"{loader}() has no {argument} {value!r}", value=value,
                                  allowed=", ".join(repr(c) for c in choices),
                                  fix=f"call {loader}({argument}={next(iter(choices))!r})"))
    return get_dataset(choices[value])


def load_gadre2024(table: str = "runs") -> Dataset:
    """Gadre et al. 2024's open_lm runs (mlfoundations/scaling, MIT).

    Parameters
    ----------
    table : ``"runs"`` (104 runs, 11M-6.9B parameters, token multipliers M = D/N from 5 to 640, three
        corpora: hyperparameters, loss on 8 evaluation sets with 95% intervals, 46 downstream accuracies)
        or ``"grid"`` (435-entry shape and warmup sweep).

    Columns of ``"runs"`` (see ``ds.columns`` for all 85): ``dataset_name`` (c4_original, rpj,
    rw_original), ``model``, ``params`` (N, total), ``tokens`` (D), ``tokens_per_param`` (M),
    ``flops_6ND`` (C, FLOP), ``loss_c4_val`` (nats/token; the target the paper fits), ``acc_<task>``.

    Citation: S. Y. Gadre et al. (2024), arXiv:2403.08540.

    Examples
    --------
    >>> ds = load_gadre2024()
    >>> rpj = ds.data["dataset_name"] == "rpj"
    >>> int(rpj.sum()), ds.law_columns["L"]
    (35, 'loss_c4_val')
    """
    return _pick("load_gadre2024", "table", table, {"runs": "gadre2024", "grid": "gadre2024-grid"})


def load_porian2024(table: str = "isoflops") -> Dataset:
    """Porian et al. 2024's isoFLOP data (formll/resolving-scaling-law-discrepancies, MIT).

    Parameters
    ----------
    table : ``"isoflops"`` (1,745 points: loss of each model size ``n`` at each budget ``flops``),
        ``"optimal_pairs"`` (177 per-budget optima ``n_star``, ``t_star``, ``loss_star`` with bootstrap
        spreads) or ``"exponents"`` (15 fitted exponents ``a_n_exponent_bs_median_weighted`` with 95%
        intervals).

    Every table has the configuration columns ``source_file, label, dataset, hparams, warmup, decay,
    param_count, val``: filter to one configuration before fitting (``param_count`` changes what ``n``
    counts). Units: ``flops`` FLOP, ``n`` parameters, ``t`` tokens, ``loss`` nats/token.

    Citation: T. Porian et al. (2024), NeurIPS 2024, arXiv:2406.19146.

    Examples
    --------
    >>> ex = load_porian2024("exponents").data
    >>> round(float(ex["a_n_exponent_bs_median_weighted"][0]), 4), str(ex["label"][0])
    (0.8353, 'Reproducing Kaplan et al.')
    """
    return _pick("load_porian2024", "table", table, {
        "isoflops": "porian2024", "optimal_pairs": "porian2024-optimal-pairs", "exponents": "porian2024-exponents"})


def load_muennighoff2023(table: str = "default_fit") -> Dataset:
    """Muennighoff et al. 2023's repeated-data runs (huggingface/datablations, Apache-2.0).

    Parameters
    ----------
    table : ``"default_fit"`` (the 182 runs of the paper's default data-constrained fit, which gives
        R_D* = 15.39 and R_N* = 5.31) or ``"all"`` (296 runs, 7.1M-8.7B parameters, 1-9000 epochs).

    Columns: ``params`` (N), ``tokens`` (D, tokens seen), ``unique_tokens`` (U_D), ``epochs`` (D / U_D),
    ``val_loss`` (held-out C4, nats/token), ``run_key``, ``parsed_name``, ``comment``.

    Citation: N. Muennighoff et al. (2023), NeurIPS 2023, arXiv:2305.16264.

    Examples
    --------
    >>> d = load_muennighoff2023().data
    >>> float(d["epochs"].max()) >= 1.0
    True
    """
    return _pick("load_muennighoff2023", "table", table,
                 {"default_fit": "muennighoff2023", "all": "muennighoff2023-all"})


_REGMIX_SPLITS = {("1m", "train"): "regmix-1m-train", ("1m", "test"): "regmix-1m-test",
                  ("60m", "test"): "regmix-60m-test", ("1b", "test"): "regmix-1b-test"}


def load_regmix(scale: str = "1m", split: str = "train") -> Dataset:
    """RegMix's data-mixture runs (sail-sg/regmix, MIT): 17 Pile-domain weights -> 13 domain losses.

    Parameters
    ----------
    scale, split : ``("1m", "train")`` 512 mixtures on 1M-parameter proxies; ``("1m", "test")`` 256
        held-out mixtures; ``("60m", "test")`` the same 256 mixtures on 60M models; ``("1b", "test")`` 64
        mixtures on 1B models trained for 25B tokens.

    Columns: ``index`` (mixture id), ``train_the_pile_<domain>`` (token weights, ``ds.feature_names``),
    ``metric/the_pile_<domain>_val_loss`` (nats/token, ``ds.target_names``).

    Citation: Q. Liu et al. (2025), ICLR 2025, arXiv:2407.01492.

    Examples
    --------
    >>> ds = load_regmix("1b", "test")
    >>> len(ds), len(ds.feature_names), len(ds.target_names)
    (64, 17, 13)
    """
    key = (str(scale).lower(), str(split).lower())
    if key not in _REGMIX_SPLITS:
        raise ConfigError(explain("load_regmix() has no such scale and split", value=f"{scale}, {split}",
                                  allowed=", ".join(f"({s!r}, {p!r})" for s, p in _REGMIX_SPLITS),
                                  fix="only the 1m scale has a train split; 60m and 1b are test sets"))
    return get_dataset(_REGMIX_SPLITS[key])


def load_regmix_configs() -> Dataset:
    """RegMix's four named 1B training mixtures (human, doremi, pile_cc_only, regmix) as 17 domain weights.

    Citation: Q. Liu et al. (2025), ICLR 2025, arXiv:2407.01492 (mixture_config/config_1b/*.yaml).

    Examples
    --------
    >>> c = load_regmix_configs().data
    >>> c["name"].tolist(), round(float(c["train_the_pile_pile_cc"][3]), 4)
    (['human', 'doremi', 'pile_cc_only', 'regmix'], 0.8701)
    """
    return get_dataset("regmix-1b-configs")


def load_chinchilla_table3() -> Dataset:
    """Hoffmann et al. 2022 Table 3 (compute-optimal tokens for 400M ... 10T parameters), via nanoGPT (MIT).

    Columns: ``params`` (N), ``tokens_approach1``, ``tokens_approach2`` (D, tokens).

    Citation: J. Hoffmann et al. (2022), arXiv:2203.15556, Table 3.

    Examples
    --------
    >>> t = load_chinchilla_table3().data
    >>> float(t["tokens_approach1"][0] / t["params"][0])
    20.0
    """
    return get_dataset("chinchilla-table3")


def load_chinchilla_table_a9() -> Dataset:
    """Hoffmann et al. 2022 Table A9: the 50 Chinchilla model shapes (44M-16.2B), via nanoGPT (MIT).

    Columns: ``params_reported`` (N as printed), ``d_model``, ``ffw_size``, ``kv_size`` (d_head),
    ``n_heads``, ``n_layers``.

    Citation: J. Hoffmann et al. (2022), arXiv:2203.15556, Table A9.

    Examples
    --------
    >>> len(load_chinchilla_table_a9())
    50
    """
    return get_dataset("chinchilla-table-a9")


def load_chinchilla_package_example() -> Dataset:
    """The example run table of the ``chinchilla`` package (kyo-takano/chinchilla, Apache-2.0): 234 of Epoch
    AI's digitised Chinchilla runs (C > 1e18, N < D).

    Columns: ``C`` (FLOP), ``N`` (parameters), ``D`` (tokens, C / 6N), ``loss``.

    Citation: kyo-takano/chinchilla examples/llm/df.csv; T. Besiroglu et al. (2024), arXiv:2404.10102.

    Examples
    --------
    >>> ds = load_chinchilla_package_example()
    >>> len(ds), ds.n_convention
    (234, 'total')
    """
    return get_dataset("chinchilla-package-example")
