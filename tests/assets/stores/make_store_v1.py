"""Write ``store_v1.sqlite``: a run store as scalelab wrote it before ``PRAGMA user_version`` (schema 1).

Run with the code of that time on the path (main at 19c585a, the last commit with the single-module store):

    git worktree add /tmp/old 19c585a && PYTHONPATH=/tmp/old/src python tests/assets/stores/make_store_v1.py

The file holds one completed run with a 10-point curve and a decay branch, one pending run and one failed
run; tests/tunnel/test_migrations.py opens it with the current code and checks nothing is lost.
"""

from __future__ import annotations

from pathlib import Path

from scalelab.tunnel.store import RunStore

OUT = Path(__file__).with_name("store_v1.sqlite")
MODEL = {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 176, "vocab_size": 256, "seq_len": 32}


def _cfg(i: int) -> dict:
    return {"model": MODEL, "n_tokens": 1280 * (i + 1), "lr": 1e-3, "seed": i, "seq_len": 32, "batch_size": 4}


def main() -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{OUT}{suffix}").unlink(missing_ok=True)
    with RunStore(OUT) as s:
        done, pending, failed = (s.add(_cfg(i)) for i in range(3))
        c = s.claim([done.hash])
        curve = [{"step": k, "tokens": k * 128, "train_loss": 5.0 - k / 10, "val_loss": None, "lr": 1e-3}
                 for k in range(1, 11)]
        branch = {"at_tokens": 640, "decay_tokens": 640, "final_val_loss": 2.4, "tokens_seen": 1280, "steps": 10,
                  "curve": curve[5:]}
        s.finish(c.hash, {"status": "completed", "final_train_loss": 2.6, "final_val_loss": 2.5,
                          "tokens_seen": 1280, "steps": 10, "wall_s": 1.5, "tokens_per_s": 853.3,
                          "n_params": 100_000, "flops_per_token": 6.2e5, "curve": curve, "branches": [branch]},
                 claim_id=c.claim_id)
        f = s.claim([failed.hash])
        s.fail(f.hash, "RuntimeError: boom", claim_id=f.claim_id)
        assert pending.hash in s
    # fold the -wal file into the database so the asset is one self-contained file
    import sqlite3

    con = sqlite3.connect(OUT)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()


if __name__ == "__main__":
    main()
