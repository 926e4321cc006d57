"""The foundation: error messages, suggestions, units and spec hashing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from scalelab import errors, units
from scalelab.arch import ModelSpec, MoESpec


def test_explain_names_value_allowed_and_fix():
    msg = errors.explain("tp must divide n_heads", value=3, allowed="a divisor of 32", fix="use --tp 4")
    assert "(got 3)" in msg and "a divisor of 32" in msg and "Fix: use --tp 4" in msg


def test_unknown_name_suggests_close_names():
    err = errors.UnknownNameError("model", "lama-3.1-8b", ["llama-3.1-8b", "llama-3.1-70b", "gpt-3-175b"])
    assert err.suggestions[0] == "llama-3.1-8b"
    assert "did you mean" in str(err) and "lama-3.1-8b" in str(err)
    assert isinstance(err, KeyError)  # callers that catch KeyError still work


def test_dtype_bytes_and_unknown_dtype():
    assert units.dtype_bytes("BF16") == 2.0 and units.dtype_bytes("nf4") == 0.5
    with pytest.raises(errors.ConfigError, match=r"unknown dtype.*fp7"):
        units.dtype_bytes("fp7")


@pytest.mark.parametrize(
    "x, binary, expected",
    [(80e9, False, "80 GB"), (80e9, True, "74.51 GiB"), (2**30, True, "1 GiB"), (512, False, "512 B")],
)
def test_format_bytes_states_decimal_or_binary(x, binary, expected):
    assert units.format_bytes(x, binary=binary) == expected


def test_format_count_uses_decimal_prefixes():
    assert units.format_count(8.03e9) == "8.03B"
    assert units.format_count(1.5e12) == "1.5T"


def test_format_days_keeps_huge_values_short():
    # --tokens 1e300 (a typo for 1e30-something) printed a 290-digit number of days in plan's report
    assert units.format_days(393.25) == "393.2" and units.format_days(1.54e290) == "1.54e+290"


def test_spec_is_frozen_strict_and_hash_is_stable():
    a = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    b = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    c = ModelSpec(n_layers=3, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    assert a.content_hash() == b.content_hash() != c.content_hash()
    with pytest.raises(ValidationError):
        a.n_layers = 5  # frozen
    with pytest.raises(ValidationError, match="extra"):
        ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256, n_layer=3)


def test_bad_shapes_name_the_value():
    with pytest.raises(ValidationError, match="n_heads=5 does not divide d_model=64"):
        ModelSpec(n_layers=2, d_model=64, n_heads=5, d_ff=256, vocab_size=256)
    with pytest.raises(ValidationError, match="n_kv_heads=3 does not divide n_heads=4"):
        ModelSpec(n_layers=2, d_model=64, n_heads=4, n_kv_heads=3, d_ff=256, vocab_size=256)
    with pytest.raises(ValidationError, match="greater than 0"):
        ModelSpec(n_layers=0, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    with pytest.raises(ValidationError, match="top_k=9 exceeds"):
        MoESpec(n_experts=8, top_k=9, d_expert=64)


def test_llama_31_8b_count_matches_published():
    # Meta's model card: 8.03B parameters; exact count from the released checkpoint: 8,030,261,248.
    m = ModelSpec(n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=128256)
    c = m.n_params()
    assert c.total == 8_030_261_248
    assert c.non_embedding == c.total - 2 * 128256 * 4096


def test_import_scalelab_does_not_import_torch():
    code = "import sys, scalelab; scalelab.ModelSpec; import scalelab.cli.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_law_fit_and_forecast_do_not_load_the_planner():
    # C = 6ND lives in scalelab.units; a fit used to import scalelab.planner.flops for it, which loads the
    # whole planner package (search, comm, the model catalog): a quarter of `scalelab fit`'s start-up
    code = ("import sys, numpy as np, scalelab.cli.app, scalelab.laws as L\n"
            "N = np.repeat([1e7, 3e7, 1e8, 3e8], 3); D = np.tile([2e8, 1e9, 5e9], 4)\n"
            "law = L.ChinchillaLaw(init='coarse').fit(N, D, 1.7 + 400 / N**0.34 + 410 / D**0.28)\n"
            "law.predict(1e9, 2e10); law.predict_interval(1e9, 2e10, kind='new')\n"
            "print(sorted(m for m in sys.modules if m.startswith('scalelab.planner')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_flops_is_the_planner_and_the_laws_convention():
    from scalelab.laws import chinchilla, data
    from scalelab.planner import flops
    from scalelab.units import FLOPS_PER_PARAM_TOKEN, training_flops

    assert flops.training_flops is training_flops and training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)
    assert chinchilla.FLOPS_PER_PARAM_TOKEN == data.FLOPS_PER_PARAM_TOKEN == FLOPS_PER_PARAM_TOKEN == 6.0
