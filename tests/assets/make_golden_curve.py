"""Regenerate the wind tunnel's golden tiny-run loss curve (tests/assets/golden_tiny_curve.json).

Run from the repository root, only when the training loop changes on purpose:

    .venv/bin/python tests/assets/make_golden_curve.py

It writes ``golden_corpus.txt`` (a small synthetic corpus, generated here from a seeded grammar so the
test does not depend on which Python's standard library is installed) and trains the tiny run defined in
:func:`golden_config` on CPU with one thread. ``tests/tunnel/test_train.py`` retrains the same config and
compares the curves within a tolerance.
"""

from __future__ import annotations

import json
import platform
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "golden_corpus.txt"
CURVE = HERE / "golden_tiny_curve.json"

_SUBJECTS = ["the parser", "a worker", "the cache", "each thread", "the scheduler", "a client", "the store",
             "every node", "the router", "a tokenizer"]
_VERBS = ["reads", "writes", "locks", "flushes", "splits", "merges", "counts", "sends", "drops", "checks"]
_OBJECTS = ["the buffer", "a batch", "the index", "each record", "the queue", "a token", "the file",
            "every page", "the header", "a checksum"]
_TAILS = ["before it returns", "after the step", "when it wakes", "in order", "twice", "at once", "again",
          "under the lock", "on every call", "without a copy"]


def make_corpus(n_lines: int = 2400, seed: int = 1234) -> str:
    """Deterministic sentences from a tiny grammar, with numbered lines so digits follow a pattern."""
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        s = f"{i % 97}: {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        if rng.random() < 0.5:
            s += " " + rng.choice(_TAILS)
        lines.append(s + ".")
    return "\n".join(lines) + "\n"


def golden_config(corpus: str | Path = CORPUS):
    """The tiny run: 2 layers, d_model 32, byte vocabulary, 40 steps of 4 x 32 tokens, cosine schedule."""
    from scalelab.arch import ModelSpec
    from scalelab.tunnel.train import RunConfig

    model = ModelSpec(name="golden-tiny", n_layers=2, d_model=32, n_heads=2, d_ff=64, vocab_size=256, seq_len=32)
    return RunConfig(model=model, corpus=str(corpus), seq_len=32, batch_size=4, n_tokens=40 * 4 * 32, lr=1e-2,
                     warmup_tokens=4 * 4 * 32, eval_every_steps=10, eval_tokens=2048, seed=0, device="cpu",
                     dtype="fp32")


def main() -> None:
    import torch

    from scalelab.tunnel.train import train

    CORPUS.write_text(make_corpus())
    result = train(golden_config(), num_threads=1)
    payload = {
        "about": "Loss curve of tests/assets/make_golden_curve.py::golden_config on CPU, 1 thread, fp32.",
        "generated_with": {"torch": torch.__version__, "python": sys.version.split()[0],
                           "machine": platform.machine()},
        "config": golden_config("golden_corpus.txt").to_dict(),
        "status": result.status,
        "curve": result.curve,
    }
    CURVE.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {CURVE} ({len(result.curve)} points, final val {result.final_val_loss:.4f})")


if __name__ == "__main__":
    main()
