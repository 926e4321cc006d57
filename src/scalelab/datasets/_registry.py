"""The registry of shipped tables: one :class:`DatasetInfo` per table, grouped by the source they come
from. Only sources whose licence allows redistribution are here (MIT, Apache-2.0); the facts (commit,
authors, row counts, column meanings) are those of ``shared/anchors/<folder>/PROVENANCE.md``.

Losses are natural-log cross-entropy (nats per token) wherever the source trained with PyTorch's
cross-entropy (open_lm, Megatron-DeepSpeed, TinyLlama's trainer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._dataset import DatasetInfo

__all__ = ["REGISTRY", "REGMIX_DOMAINS", "REGMIX_LOSS_DOMAINS"]


@dataclass(frozen=True)
class _Source:
    """What every table from one repository shares."""

    folder: str
    licence: str
    citation: str
    short_citation: str
    source: str

    def table(self, **fields: Any) -> DatasetInfo:
        return DatasetInfo(folder=self.folder, licence=self.licence, citation=self.citation,
                           short_citation=self.short_citation, source=self.source, **fields)


_GADRE = _Source(
    folder="mlfoundations-scaling", licence="MIT",
    citation='S. Y. Gadre et al. (2024), "Language models scale reliably with over-training and on '
             'downstream tasks", arXiv:2403.08540',
    short_citation="Gadre et al. 2024 (arXiv:2403.08540)",
    source="https://github.com/mlfoundations/scaling @ a003c4913793ac2ae7ef87b28ecb562955d026d5 "
           "(exp_data/ as of 741b9ef142a23b7ef2870849508a4cb31374722f)")
_PORIAN = _Source(
    folder="resolving-scaling-law-discrepancies", licence="MIT",
    citation='T. Porian, M. Wortsman, J. Jitsev, L. Schmidt, Y. Carmon (2024), "Resolving Discrepancies in '
             'Compute-Optimal Scaling of Language Models", NeurIPS 2024, arXiv:2406.19146',
    short_citation="Porian et al. 2024 (arXiv:2406.19146)",
    source="https://github.com/formll/resolving-scaling-law-discrepancies @ "
           "0dc60d91b8a525858a3067fc9e4a46ff5374cc6f (data as of 859f146abdb9c03f679fb04e9a870402f5585757)")
_MUENNIGHOFF = _Source(
    folder="datablations", licence="Apache-2.0",
    citation='N. Muennighoff et al. (2023), "Scaling Data-Constrained Language Models", NeurIPS 2023, '
             'arXiv:2305.16264',
    short_citation="Muennighoff et al. 2023 (arXiv:2305.16264)",
    source="https://github.com/huggingface/datablations @ 13701315b163f1c54642b94ad237b2699187c3ee "
           "(utils/parametric_fit.ipynb)")
_REGMIX = _Source(
    folder="regmix", licence="MIT",
    citation='Q. Liu et al. (2025), "RegMix: Data Mixture as Regression for Language Model Pre-training", '
             'ICLR 2025, arXiv:2407.01492',
    short_citation="Liu et al. 2025, RegMix (arXiv:2407.01492)",
    source="https://github.com/sail-sg/regmix @ b004d3a3f39846dcec6b3740da22bcd1ba95a5d0 (data/)")
_NANOGPT = _Source(
    folder="nanogpt", licence="MIT",
    citation='J. Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models", arXiv:2203.15556; '
             "as transcribed in karpathy/nanoGPT scaling_laws.ipynb",
    short_citation="Hoffmann et al. 2022 (arXiv:2203.15556), via nanoGPT",
    source="https://github.com/karpathy/nanoGPT @ 3adf61e154c3fe3fca428ad6bc3818b27a3b8291 "
           "(scaling_laws.ipynb as of ff9085d0bc6e09824d8a192376d173ed1b5fc0ae)")
_TAKANO = _Source(
    folder="chinchilla-kyo-takano", licence="Apache-2.0",
    citation="kyo-takano/chinchilla (PyPI package `chinchilla`), examples/llm/df.csv: a subset of "
             'T. Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt", arXiv:2404.10102, '
             "who digitised J. Hoffmann et al. (2022), arXiv:2203.15556, Figure 4",
    short_citation="kyo-takano/chinchilla; Besiroglu et al. 2024 (arXiv:2404.10102)",
    source="https://github.com/kyo-takano/chinchilla @ 75e5858f6e7c5b60d1fab69f66258132347b060c "
           "(examples/llm/df.csv as of e1847b3db70aa097e6b972f0875de84c450f48c0)")

_NATS = "nats/token"

# ---------------------------------------------------------------------------------------------- Gadre 2024
_GADRE_EVALS = {
    "openlm": "OpenLM validation set", "c4_val": "C4 validation set", "paloma_c4_en": "Paloma C4-en",
    "paloma_dolma_100_programing_languages": "Paloma Dolma-100-programming-languages",
    "paloma_falcon-refinedweb": "Paloma Falcon-RefinedWeb", "paloma_ptb": "Paloma PTB",
    "paloma_redpajama": "Paloma RedPajama", "val_de-en_100": "German-English validation set (de-en)",
}
_GADRE_RUNS = _GADRE.table(
    name="gadre2024", loader="load_gadre2024()", title="104 open_lm runs, 11M-6.9B parameters, token multipliers "
    "5-640, three corpora: losses on 8 evaluation sets and 46 downstream accuracies",
    files=("gadre2024_runs_flat.csv",), n_rows=104,
    description="One row per trained model: 4 small shapes (10.6M, 78.9M, 153.7M, 411.6M parameters) at "
    "token multipliers M = D/N = 20 x {0.25 ... 32} (C4 lacks M = 640 for the 411.6M model), open_lm_1b at "
    "M = 20 plus one over-trained run, open_lm_7b at M = 20, each on C4 (c4_original), RedPajama (rpj) and "
    "RefinedWeb (rw_original). The paper fits its loss law to the four small shapes at M = 20 plus the 11M "
    "model at M = 320 (C4-eval loss) and predicts the 1.4B M = 640 and 6.9B M = 20 runs (0.71% and 0.73% "
    "relative error on RedPajama). Flattened from exp_data/models/*.json and exp_data/evals/*.json.",
    columns={
        "name": "run id: <dataset_name>-<model>-<chinchilla_multiplier>",
        "dataset_name": "training corpus: c4_original (C4), rpj (RedPajama), rw_original (RefinedWeb)",
        "model": "open_lm shape d=<width>_l=<layers>_h=<heads>, or open_lm_1b / open_lm_7b",
        "params": "N, parameters including embeddings (count)",
        "params_no_embed": "parameters excluding embeddings (count)",
        "tokens": "D, training tokens (count)",
        "chinchilla_multiplier": "M / 20: tokens per parameter in units of Chinchilla's 20 (dimensionless)",
        "tokens_per_param": "M = D / N, tokens per parameter (dimensionless)",
        "flops_6ND": "C = 6 N D, training compute (FLOP)",
        "lr": "peak learning rate",
        "wd": "weight decay (AdamW)",
        "warmup": "warmup length (steps)",
        "cooldown_end_lr": "learning rate at the end of the cosine schedule",
        "global_bs": "global batch size (sequences, as open_lm counts it)",
        "seed": "random seed where the model JSON records one (NaN otherwise)",
    },
    column_patterns=(
        *((rf"loss_(lower|upper)95_({e})", f"{{0}} bound of the 95% interval of the loss on {label} ({_NATS})")
          for e, label in _GADRE_EVALS.items()),
        *((rf"loss_({e})", f"final loss on {label} ({_NATS})") for e, label in _GADRE_EVALS.items()),
        (r"acc_(.+)", "accuracy on the in-context-learning task {0} (fraction, 0-1)"),
    ),
    law_columns={"N": "params", "D": "tokens", "C": "flops_6ND", "L": "loss_c4_val"},
    n_convention="total",
)
_GADRE_GRID = _GADRE.table(
    name="gadre2024-grid", loader='load_gadre2024(table="grid")',
    title="435-entry architecture and warmup sweep of open_lm models (exp_data/grid.json)",
    files=("grid_flat.csv",), n_rows=435,
    description="The shape/warmup search behind the paper's model choices: widths, depths and heads at "
    "learning rate 0.003 and weight decay 0.033, warmup 100-2000 steps, 2.0e8-8.2e9 tokens. Each key of "
    "grid.json was parsed into columns; two integer fields are unlabelled in the source (always equal, "
    "8/16/64; probably a batch or node count, unconfirmed). No parameter count is stored.",
    columns={
        "key": "grid.json key: d=<width>_l=<layers>_h=<heads>-<f>-<lr>-<wd>-<f>-<tokens>-<warmup>-<cooldown>",
        "width": "model width d_model", "layers": "number of layers", "heads": "number of attention heads",
        "field4": "unlabelled integer of the key (always equal to field7; meaning unconfirmed)",
        "lr": "peak learning rate", "wd": "weight decay",
        "field7": "unlabelled integer of the key (always equal to field4; meaning unconfirmed)",
        "tokens": "D, training tokens (count)", "warmup_steps": "warmup length (steps)",
        "cooldown_end_lr": "learning rate at the end of the cosine schedule",
        "loss": f"final loss stored in grid.json ({_NATS}; evaluation set not named in the source)",
    },
    law_columns={"D": "tokens", "L": "loss"},
)

# --------------------------------------------------------------------------------------------- Porian 2024
_PORIAN_KEYS = {
    "source_file": "summary pickle of the source repo the row was flattened from",
    "label": "the paper's experiment name (configs.CONFIG_DICT_LABEL), e.g. 'Reproducing Kaplan et al.'",
    "dataset": "training corpus: rw (RefinedWeb) or owt2 (OpenWebText2)",
    "hparams": "base (default hyperparameters) or tuned (the paper's tuned learning rate, batch size, AdamW beta2)",
    "warmup": "long or short warmup",
    "decay": "learning-rate decay: kaplan, chinchilla (cosine to the budget) or const (none)",
    "param_count": "how n counts parameters: kaplan (non-embedding), standard (with the last layer), "
                   "attention (with attention FLOPs)",
    "val": "which loss: train (smoothed training loss) or val (validation loss)",
}
_PORIAN_SPLIT = ("Rows come in configurations (the columns source_file ... val); filter to one "
                 "configuration before fitting, since param_count changes what n means.")
_PORIAN_ISOFLOPS = _PORIAN.table(
    name="porian2024", loader="load_porian2024()",
    title="1,745 isoFLOP points: loss of each model size at each FLOP budget, 15 configurations",
    files=("isoflop_points.csv",), n_rows=1745,
    description="Every (model size, FLOP budget) point of the paper's IsoFLOP analysis: 16 open_lm shapes "
    "(n 3.3e5-9.9e8) at 12 budgets C = 1e17 x 2^k, k = -3 ... 8 (1.25e16-2.56e19 FLOP), sequence length 2048, "
    "under the configurations that move the compute-optimal exponent from Kaplan's ~0.85 to Chinchilla's ~0.50 "
    "(last-layer FLOPs, warmup, cosine decay, optimizer tuning). Flattened from data/summary_df*.pickle.xz. "
    + _PORIAN_SPLIT,
    columns={**_PORIAN_KEYS, "flops": "C, FLOP budget (FLOP)",
             "n": "N, parameters under the row's param_count convention (count)",
             "t": "D, tokens = C / (6 n) (count)",
             "loss": f"loss of that model at that budget, read off its training curve ({_NATS})"},
    law_columns={"N": "n", "D": "t", "C": "flops", "L": "loss"},
)
_PORIAN_PAIRS = _PORIAN.table(
    name="porian2024-optimal-pairs", loader='load_porian2024(table="optimal_pairs")',
    title="177 compute-optimal pairs per FLOP budget with bootstrap standard deviations",
    files=("optimal_pairs.csv",), n_rows=177,
    description="For each configuration and budget, the paper's compute-optimal model size, tokens, "
    "tokens per parameter and loss (Akima interpolation of the isoFLOP curve plus a seed-noise bootstrap), "
    "with bootstrap standard deviations. Four rows have no optimum (NaN). " + _PORIAN_SPLIT,
    columns={**_PORIAN_KEYS, "flops": "C, FLOP budget (FLOP)",
             "n_star": "N*, compute-optimal parameters (count)", "t_star": "D*, compute-optimal tokens (count)",
             "multiplier_star": "D*/N*, compute-optimal tokens per parameter (dimensionless)",
             "loss_star": f"loss at the optimum ({_NATS})",
             "n_star_std": "bootstrap spread of n_star in log space, as the paper's code stores it",
             "t_star_std": "bootstrap spread of t_star in log space, as the paper's code stores it",
             "multiplier_star_std": "bootstrap spread of multiplier_star in log space, as stored",
             "loss_star_std": f"bootstrap standard deviation of loss_star ({_NATS})"},
    law_columns={"N": "n_star", "D": "t_star", "C": "flops", "L": "loss_star"},
)
_PORIAN_EXPONENTS = _PORIAN.table(
    name="porian2024-exponents", loader='load_porian2024(table="exponents")',
    title="15 fitted compute-optimal exponents (N* ~ C^a, D* ~ C^b) with 95% bootstrap intervals",
    files=("compute_optimal_exponents.csv",), n_rows=15,
    description="The paper's fits per configuration: a is the bootstrap median of weighted power-law fits of "
    "N*(C) (the value its results table prints), with the 2.5-97.5% bootstrap quantiles; b likewise for D*(C). "
    "E.g. RefinedWeb, 'Reproducing Kaplan et al.' a = 0.8353, 'Optimizer tuning (no decay)' a = 0.4969.",
    columns={**_PORIAN_KEYS,
             "a_n_exponent_bs_median_weighted": "a in N* ~ C^a: bootstrap median of the weighted fits",
             "a_CI95_low": "2.5% bootstrap quantile of a", "a_CI95_high": "97.5% bootstrap quantile of a",
             "n_boot": "number of bootstrap fits stored", "n_coef": "coefficient G of N* = G C^a",
             "n_r2": "R^2 of the N*(C) power-law fit",
             "b_t_exponent": "b in D* ~ C^b", "b_CI95_low": "2.5% bootstrap quantile of b",
             "b_CI95_high": "97.5% bootstrap quantile of b", "t_coef": "coefficient of D* = G' C^b",
             "multiplier_exponent": "exponent of D*/N* ~ C^(b - a)",
             "multiplier_coef": "coefficient of the D*/N* fit",
             "basic_n_exponent": "a from a single unweighted fit (no bootstrap)",
             "max_loss": f"max_loss as stored in the paper's summary table ({_NATS})",
             "min_loss": f"min_loss as stored in the paper's summary table ({_NATS})"},
)

# ---------------------------------------------------------------------------------------- Muennighoff 2023
_MUENNIGHOFF_COLUMNS = {
    "run_key": "original run name, e.g. 2b855b11bc4seed1 = 2.8B parameters, 55B tokens, 11B unique, C4, seed 1",
    "parsed_name": "run name after the notebook strips seed and optimizer suffixes",
    "params": "N, parameters (count)", "tokens": "D, total training tokens seen (count)",
    "unique_tokens": "U_D, unique tokens in the training data (count)",
    "epochs": "D / U_D, passes over the unique data (dimensionless)",
    "val_loss": f"final validation loss on held-out C4 ({_NATS})",
    "comment": "the notebook's inline comment for the run (mostly empty)",
}
_MUENNIGHOFF_LAW = {"N": "params", "D": "tokens", "U": "unique_tokens", "L": "val_loss"}
_MUENNIGHOFF_FIT = _MUENNIGHOFF.table(
    name="muennighoff2023", loader="load_muennighoff2023()",
    title="182 repeated-data runs used for the data-constrained law's default fit",
    files=("datablations_runs_default_fit.csv",), n_rows=182,
    description="The runs of utils/parametric_fit.ipynb's default fit (outliers removed; 'Samples: 182'), "
    "which gives R_D* = 15.387756 and R_N* = 5.309743 with the C4 base law fixed. Values extracted from the "
    "notebook's NAMES_TO_VAL_LOSSES (read from each model's validation logs). The repository ships no data "
    "file; model checkpoints are at https://huggingface.co/datablations.",
    columns=_MUENNIGHOFF_COLUMNS, law_columns=_MUENNIGHOFF_LAW,
)
_MUENNIGHOFF_ALL = _MUENNIGHOFF.table(
    name="muennighoff2023-all", loader='load_muennighoff2023(table="all")',
    title="296 repeated-data runs, 7.1M-8.7B parameters, 1-9000 epochs",
    files=("datablations_runs_all.csv",), n_rows=296,
    description="Every run of the notebook's NAMES_TO_VAL_LOSSES with a non-zero loss and not '*dedup': "
    "20 model sizes, D 1e8-9e11, U 1e8-1.78e11; 4-seed replicates (e.g. 2b855b11bc4seed1..4) show the seed "
    "noise (~0.002).",
    columns=_MUENNIGHOFF_COLUMNS, law_columns=_MUENNIGHOFF_LAW,
)

# ------------------------------------------------------------------------------------------------- RegMix
#: The 17 Pile domains whose token weights make a RegMix mixture (column train_the_pile_<domain>).
REGMIX_DOMAINS = ("arxiv", "freelaw", "nih_exporter", "pubmed_central", "wikipedia_en", "dm_mathematics", "github",
                  "philpapers", "stackexchange", "enron_emails", "gutenberg_pg_19", "pile_cc", "ubuntu_irc",
                  "europarl", "hackernews", "pubmed_abstracts", "uspto_backgrounds")
#: The 13 domains with a logged validation loss (metric/the_pile_<domain>_val_loss); the tiny domains
#: were skipped by the loader (maintainer, sail-sg/regmix issue #4).
REGMIX_LOSS_DOMAINS = ("arxiv", "freelaw", "pubmed_central", "wikipedia_en", "dm_mathematics", "github",
                       "stackexchange", "gutenberg_pg_19", "pile_cc", "ubuntu_irc", "hackernews",
                       "pubmed_abstracts", "uspto_backgrounds")
_REGMIX_FEATURES = tuple(f"train_the_pile_{d}" for d in REGMIX_DOMAINS)
_REGMIX_TARGETS = tuple(f"metric/the_pile_{d}_val_loss" for d in REGMIX_LOSS_DOMAINS)
_REGMIX_COLUMNS = {"index": "mixture id (pairs a mixture with its losses; same ids across scales)"}
_REGMIX_PATTERNS = (
    (r"train_the_pile_(.+)", "token weight of Pile domain {0} in the training mixture (fraction; rows sum to ~1)"),
    (r"metric/the_pile_(.+)_val_loss", f"validation loss on Pile domain {{0}} ({_NATS})"),
)
_REGMIX_SCALES = {
    ("1m", "train"): ("train_mixture_1m.csv", "train_pile_loss_1m.csv", 512,
                      "512 training mixtures, 1M-parameter proxy models trained on 1B tokens"),
    ("1m", "test"): ("test_mixture_1m.csv", "test_pile_loss_1m.csv", 256,
                     "256 held-out mixtures, 1M-parameter models trained on 1B tokens"),
    ("60m", "test"): ("test_mixture_60m.csv", "test_pile_loss_60m.csv", 256,
                      "the same 256 held-out mixtures, 60M-parameter models"),
    ("1b", "test"): ("test_mixture_1B.csv", "test_pile_loss_1B.csv", 64,
                     "64 random mixtures, 1B-parameter models trained on 25B tokens"),
}
_REGMIX_NOTE = (" Mixture weights over 17 Pile domains (features) joined on index with the validation "
                "losses of 13 domains (targets). The paper fits a LightGBM regressor per domain on the 1M "
                "training mixtures and ranks the 1M test mixtures with Spearman rho 98.92 (x100) on pile_cc; "
                "1M/60M losses come from W&B logs, 1B losses from a later offline evaluation.")
_REGMIX_TABLES = [
    _REGMIX.table(name=f"regmix-{scale}-{split}", loader=f'load_regmix(scale="{scale}", split="{split}")',
                  title=title, files=(mix, loss), key="index", n_rows=n, description=title + "." + _REGMIX_NOTE,
                  columns=_REGMIX_COLUMNS, column_patterns=_REGMIX_PATTERNS, feature_names=_REGMIX_FEATURES,
                  target_names=_REGMIX_TARGETS)
    for (scale, split), (mix, loss, n, title) in _REGMIX_SCALES.items()
]
_REGMIX_CONFIGS = _REGMIX.table(
    name="regmix-1b-configs", loader="load_regmix_configs()",
    title="the four named 1B training mixtures: human (the Pile's), DoReMi, pile_cc only, RegMix's optimum",
    files=("mixture_configs_1b.csv",), n_rows=4,
    description="Train weights of mixture_config/config_1b/*.yaml, one row per file, domains a file omits "
    "written as 0.0. Weights are as written, not normalised (human sums to 0.7868 and doremi to 0.8148 over "
    "these 17 domains). 'regmix' is the paper's optimum: the average of the top-128 predicted of 100,000 "
    "Dirichlet samples (pile_cc 0.8701, ubuntu_irc 0.0642, pubmed_abstracts 0.0242 ...). All four were "
    "validated on the_pile_pile_cc with TinyLlama-1.1B.",
    columns={"name": "mixture: human, doremi, pile_cc_only or regmix"},
    column_patterns=((r"train_the_pile_(.+)", "weight of Pile domain {0} as written in the YAML (not normalised)"),),
    feature_names=_REGMIX_FEATURES,
)

# ------------------------------------------------------------------------------- Chinchilla (Hoffmann 2022)
_TABLE3 = _NANOGPT.table(
    name="chinchilla-table3", loader="load_chinchilla_table3()",
    title="Hoffmann et al. 2022 Table 3: compute-optimal tokens for 400M ... 10T parameters",
    files=("chinchilla_table3_compute_optimal.csv",), n_rows=9,
    description="The paper's projected compute-optimal training tokens for 9 model sizes under its approach 1 "
    "(training curves) and approach 2 (isoFLOP profiles), transcribed in nanoGPT's scaling_laws.ipynb. "
    "The paper's FLOPs column is about 6 N D of the approach-1 tokens.",
    columns={"params": "N, parameters (count)",
             "tokens_approach1": "compute-optimal tokens by approach 1 (count)",
             "tokens_approach2": "compute-optimal tokens by approach 2 (count)"},
)
_TABLE_A9 = _NANOGPT.table(
    name="chinchilla-table-a9", loader="load_chinchilla_table_a9()",
    title="Hoffmann et al. 2022 Table A9: the 50 Chinchilla model shapes, 44M-16.2B parameters",
    files=("chinchilla_table_a9_models.csv",), n_rows=50,
    description="Shapes of the models trained for the Chinchilla analysis, transcribed in nanoGPT's "
    "scaling_laws.ipynb. DeepMind's models use a relative-position projection per layer, a tied 32k "
    "embedding and RMSNorm; params_reported is the paper's rounded total.",
    columns={"params_reported": "N as printed in the paper (count, rounded)", "d_model": "model width",
             "ffw_size": "feed-forward hidden width", "kv_size": "width of one attention head (d_head)",
             "n_heads": "number of attention heads", "n_layers": "number of layers"},
)
_PACKAGE_EXAMPLE = _TAKANO.table(
    name="chinchilla-package-example", loader="load_chinchilla_package_example()",
    title="234 digitised Chinchilla runs (C > 1e18, N < D), the example table of the `chinchilla` package",
    files=("df.csv",), n_rows=234,
    description="A subset of Epoch AI's digitisation of Hoffmann et al. 2022 Figure 4 (every loss matches an "
    "Epoch row): N rounded to an integer and D = C / (6 N). The package's notebook fits it with an asymmetric "
    "MAE (over-predictions weighted x10) and prints E = 1.7002, A = 184.69, B = 1633.48, alpha = 0.2890, "
    "beta = 0.3558. Epoch's full 245-point set has no stated licence and does not ship.",
    columns={"C": "training compute (FLOP)", "N": "parameters (count)", "D": "tokens, C / (6 N) (count)",
             "loss": "final training loss on MassiveText, read from the figure's colour scale"},
    law_columns={"N": "N", "D": "D", "C": "C", "L": "loss"}, n_convention="total",
)

#: Every shipped table, by registry name, in the order ``scalelab datasets`` lists them.
REGISTRY: dict[str, DatasetInfo] = {t.name: t for t in (
    _GADRE_RUNS, _GADRE_GRID, _PORIAN_ISOFLOPS, _PORIAN_PAIRS, _PORIAN_EXPONENTS, _MUENNIGHOFF_FIT,
    _MUENNIGHOFF_ALL, *_REGMIX_TABLES, _REGMIX_CONFIGS, _TABLE3, _TABLE_A9, _PACKAGE_EXAMPLE)}
