"""``scalelab demo --mixtures``: choose a data mixture from tiny proxies, RegMix-style, and check it larger.

1. **Domains**: the embedded corpus (the Python standard library's source) in its three named domains:
   ``code`` (library modules, comments and docstrings cut out), ``docs`` (those comments and
   docstrings) and ``tests`` (test modules) (:mod:`scalelab.tunnel.data`).
2. **Proxies**: train tiny GPTs on random Dirichlet mixtures of the domains. The target is the
   *balanced* loss, the mean of the three domains' held-out losses, so that no single domain wins it.
3. **Fit and choose**: regress the target on the weights (:class:`scalelab.mixtures.MixtureRegressor`,
   the Data Mixing Laws form by default) and search for the best mixture
   (:func:`scalelab.mixtures.optimize_mixture`: Dirichlet samples around the uniform prior, top-k
   averaged, as RegMix does).
4. **Check, larger**: train a larger proxy (more layers, wider, more steps) on the chosen mixture and on
   fresh random mixtures, and report where the chosen one lands among them.

Runs are trained in this process, one after another (no run store: the per-domain losses are what the
demo needs); the full version takes about five minutes on 2 CPU cores (docs/mixtures.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MixtureDemoResult", "MixtureDemoSettings", "run_mixture_demo"]


@dataclass(frozen=True)
class MixtureDemoSettings:
    """Sizes of the mixture demo (``quick``: a smoke test; ``full``: the documented figures)."""

    n_proxies: int
    proxy_steps: int
    n_checks: int
    check_steps: int
    proxy_model: dict[str, int] = field(default_factory=lambda: {"n_layers": 1, "d_model": 32, "n_heads": 2,
                                                                  "d_ff": 96})
    check_model: dict[str, int] = field(default_factory=lambda: {"n_layers": 2, "d_model": 64, "n_heads": 4,
                                                                  "d_ff": 192})
    seq_len: int = 64
    batch_size: int = 8
    lr: float = 3e-3
    eval_tokens: int = 8192
    model: str = "law"

    @classmethod
    def named(cls, quick: bool) -> MixtureDemoSettings:
        if quick:
            return cls(n_proxies=8, proxy_steps=40, n_checks=3, check_steps=60)
        return cls(n_proxies=32, proxy_steps=200, n_checks=8, check_steps=500)


@dataclass
class MixtureDemoResult:
    """What the mixture demo measured: proxies, the fit, the chosen mixture and its check at a larger size."""

    domains: list[str]
    proxy_weights: np.ndarray
    proxy_losses: np.ndarray
    fit_spearman_loo: float
    chosen: dict[str, float]
    chosen_predicted: tuple[float, float, float]
    check_weights: np.ndarray
    check_losses: np.ndarray
    chosen_loss: float
    wall_s: float
    settings: MixtureDemoSettings

    @property
    def chosen_rank(self) -> int:
        """1 + how many of the random mixtures beat the chosen one at the larger size."""
        return 1 + int(np.sum(self.check_losses < self.chosen_loss))

    def to_dict(self) -> dict[str, Any]:
        lo, mid, hi = self.chosen_predicted
        return {"domains": self.domains, "n_proxies": len(self.proxy_losses),
                "proxy_spearman_loo": self.fit_spearman_loo, "chosen_weights": self.chosen,
                "chosen_predicted_proxy_loss": {"loss": mid, "loss_lo": lo, "loss_hi": hi},
                "larger_proxy": {"chosen_loss": self.chosen_loss, "random_losses": self.check_losses.tolist(),
                                 "random_weights": self.check_weights.tolist(), "chosen_rank": self.chosen_rank,
                                 "of": len(self.check_losses) + 1},
                "wall_s": self.wall_s}

    def report(self) -> str:
        w = ", ".join(f"{d} {self.chosen[d]:.2f}" for d in self.domains)
        lo, mid, hi = self.chosen_predicted
        rand = ", ".join(f"{x:.4f}" for x in np.sort(self.check_losses))
        return "\n".join([
            f"Mixture demo on {', '.join(self.domains)} ({self.wall_s:.0f} s)",
            f"  proxies        {len(self.proxy_losses)} random mixtures, balanced loss "
            f"{self.proxy_losses.min():.4f}-{self.proxy_losses.max():.4f}; leave-one-out Spearman "
            f"{self.fit_spearman_loo:.2f}",
            f"  chosen         {w}  (predicted {mid:.4f}, band [{lo:.4f}, {hi:.4f}] at proxy scale)",
            f"  larger proxy   chosen {self.chosen_loss:.4f}; random mixtures {rand}",
            f"  chosen lands   #{self.chosen_rank} of {len(self.check_losses) + 1}",
        ])


def _train_balanced(settings: MixtureDemoSettings, model: dict[str, int], steps: int, weights: dict[str, float],
                    seed: int) -> float:
    """Train one run on ``weights``; its balanced loss (mean held-out loss over the domains)."""
    from .arch import ModelSpec
    from .errors import ScalelabError, explain
    from .tunnel.train import RunConfig, train

    s = settings
    spec = ModelSpec(**model, vocab_size=256, seq_len=s.seq_len)
    cfg = RunConfig(model=spec, seq_len=s.seq_len, batch_size=s.batch_size, n_tokens=steps * s.batch_size * s.seq_len,
                    lr=s.lr, warmup_tokens=max(1, steps // 10) * s.batch_size * s.seq_len, eval_tokens=s.eval_tokens,
                    seed=seed, domain_weights=weights)
    res = train(cfg)
    if res.status != "completed" or not res.final_val_loss_by_domain:
        raise ScalelabError(explain("a mixture demo run did not complete", value=res.status,
                                    fix="lower lr in MixtureDemoSettings"))
    return float(np.mean(list(res.final_val_loss_by_domain.values())))


def _loo_spearman(model: str, W: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out Spearman rho of the regressor on the proxies (an honest in-sample check)."""
    from .mixtures import MixtureRegressor
    from .mixtures.regressor import spearman

    pred = [MixtureRegressor(model=model, uncertainty="none").fit(np.delete(W, i, 0), np.delete(y, i))
            .predict(W[i:i + 1])[0] for i in range(len(y))]
    return spearman(pred, y)


def run_mixture_demo(*, quick: bool = False, seed: int = 0,
                     settings: MixtureDemoSettings | None = None) -> MixtureDemoResult:
    """Run the mixture demo end to end (see the module docstring) and return what it measured."""
    from .mixtures import MixtureRegressor, optimize_mixture
    from .tunnel.data import load_corpus

    s = settings or MixtureDemoSettings.named(quick)
    t0 = time.perf_counter()
    domains = list(load_corpus("stdlib", "byte").domains)
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(len(domains)), s.n_proxies)
    y = np.array([_train_balanced(s, s.proxy_model, s.proxy_steps, dict(zip(domains, w, strict=True)), seed)
                  for w in W])
    reg = MixtureRegressor(model=s.model, n_bootstrap=20, random_state=seed).fit(W, y, domains=domains,
                                                                                 target="balanced_loss")
    found = optimize_mixture(reg, prior=np.full(len(domains), 1 / len(domains)), n_samples=20_000, top_k=32,
                             random_state=seed)
    chosen = dict(zip(domains, (float(x) for x in found.weights), strict=True))
    Wc = rng.dirichlet(np.ones(len(domains)), s.n_checks)
    checks = np.array([_train_balanced(s, s.check_model, s.check_steps, dict(zip(domains, w, strict=True)), seed)
                       for w in Wc])
    chosen_loss = _train_balanced(s, s.check_model, s.check_steps, chosen, seed)
    return MixtureDemoResult(domains=domains, proxy_weights=W, proxy_losses=y,
                             fit_spearman_loo=_loo_spearman(s.model, W, y), chosen=chosen,
                             chosen_predicted=(found.loss_lo, found.loss, found.loss_hi), check_weights=Wc,
                             check_losses=checks, chosen_loss=chosen_loss, wall_s=time.perf_counter() - t0,
                             settings=s)
