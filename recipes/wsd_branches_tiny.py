"""One warmup-stable-decay run with three decay branches: four (N, D) points for about the cost of one
(MiniCPM, Hu et al. 2024, arXiv:2404.06395 §4). Each branch is stored as its own run linked to the parent.

    scalelab tunnel run recipes/wsd_branches_tiny.py && scalelab tunnel ls --kind branch
"""

from scalelab.tunnel.grid import make_config, model_for_params

NAME = "wsd-branches-tiny"


def grid():
    seq_len, batch_size = 64, 16
    step = seq_len * batch_size
    model = model_for_params(2e5, vocab_size=256, seq_len=seq_len, d_head=16)
    n_tokens = 400 * step
    return [make_config(model, n_tokens, {"seq_len": seq_len, "batch_size": batch_size, "lr": 3e-3,
                                         "schedule": "wsd", "decay_fraction": 0.1, "warmup_tokens": 20 * step,
                                         "decay_branches": (50 * step, 100 * step, 200 * step),
                                         "eval_tokens": 16384})]
