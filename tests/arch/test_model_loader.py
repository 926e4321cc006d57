"""get_model / list_models: names, aliases, files, overrides and the errors a user can cause."""

from __future__ import annotations

import pytest

import scalelab
from scalelab.arch import ModelSpec, get_model, list_models
from scalelab.errors import ConfigError, UnknownNameError


def test_names_are_case_insensitive_and_hub_ids_are_aliases():
    a = get_model("llama-3.1-8b")
    assert get_model("LLaMA-3.1-8B") == a
    assert get_model("meta-llama/Llama-3.1-8B") == a
    assert scalelab.get_model("  llama-3.1-8b ") == a


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownNameError) as e:
        get_model("lama-3.1-8b")
    assert "llama-3.1-8b" in e.value.suggestions
    assert "scalelab models" in str(e.value)


def test_unknown_name_by_size_suffix_finds_the_family_member():
    with pytest.raises(UnknownNameError) as e:
        get_model("405b")
    assert "llama-3.1-405b" in e.value.suggestions


def test_list_models_by_family():
    assert [m.name for m in list_models("qwen3_moe")] == ["qwen3-30b-a3b", "qwen3-235b-a22b"]
    assert all(isinstance(m, ModelSpec) for m in list_models())


def test_overrides_are_validated_and_rederive_widths():
    m = get_model("llama-3.1-8b", n_layers=2)
    assert m.n_layers == 2 and m.d_head == 128
    wide = get_model("llama-3.1-8b", d_model=2048, n_heads=16, n_kv_heads=4)
    assert wide.d_head == 128  # re-derived from 2048 / 16, not kept from the preset
    # Qwen3-30B-A3B sets head_dim=128 while 2048 / 32 = 64: an explicit width is kept.
    assert get_model("qwen3-30b-a3b", d_model=4096).d_head == 128
    with pytest.raises(ConfigError, match="n_layers"):
        get_model("llama-3.1-8b", n_layers=0)


def test_modelspec_toml_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\nn_layers = 2\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n'
                 '[moe]\nn_experts = 4\ntop_k = 1\nd_expert = 64\n')
    m = get_model(p)
    assert m.name == "mine" and m.moe.n_experts == 4
    assert get_model(str(p)) == m


def test_modelspec_json_file_under_model_table(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text('{"model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 256, "vocab_size": 256}}')
    assert get_model(p).n_layers == 2


def test_file_can_start_from_a_preset(tmp_path):
    p = tmp_path / "half.toml"
    p.write_text('base = "llama-3.1-8b"\nname = "llama-half"\nn_layers = 16\n')
    m = get_model(p)
    base = get_model("llama-3.1-8b")
    assert m.name == "llama-half" and m.n_layers == 16 and m.d_model == base.d_model
    assert m.n_params().attention == base.n_params().attention // 2


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('n_layers = 2\nd_model = -64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n', "d_model"),
        ('n_layers = 0\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n', "n_layers"),
        ('n_layers = 2\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\nlayers = 3\n',
         "unknown field 'layers'"),
        ('n_layers = 2\nd_model = 64\nn_heads = 4\nvocab_size = 256\n', "missing required field 'd_ff'"),
        ('n_layers = 2\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\nffn_kind = "relu"\n', "ffn_kind"),
        ('n_layers = 2\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n'
         '[moe]\nn_experts = 2\ntop_k = 4\nd_expert = 8\n', "top_k"),
        ('n_layers = 2\nd_model = [64\n', "not valid TOML"),
        ('base = "llama-9"\nn_layers = 2\n', "unknown model 'llama-9'"),
    ],
    ids=["negative-width", "zero-layers", "unknown-field", "missing-field", "bad-enum", "top-k", "syntax", "bad-base"],
)
def test_malformed_model_files_name_the_problem(tmp_path, body, fragment):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises((ConfigError, UnknownNameError)) as e:
        get_model(p)
    assert fragment in str(e.value)


def test_a_hugging_face_config_without_model_type_says_so(tmp_path):
    # it was read as ModelSpec fields: "missing required field 'n_layers' ... unknown field 'hidden_size'"
    p = tmp_path / "config.json"
    p.write_text('{"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32, "vocab_size": 32000}')
    with pytest.raises(ConfigError, match=r"looks like a Hugging Face config.json without 'model_type'.*llama"):
        get_model(p)


def test_bad_value_is_quoted_in_the_message(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('n_layers = 2\nd_model = -64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n')
    with pytest.raises(ConfigError) as e:
        get_model(p)
    assert "-64" in str(e.value) and "Fix:" in str(e.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        get_model(tmp_path / "nope.toml")


def test_a_dumped_spec_loads_back_unchanged(tmp_path):
    import json

    for name in ("deepseek-v3", "qwen3-30b-a3b", "gpt3-175b"):
        spec = get_model(name)
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(spec.to_dict()))
        assert get_model(p) == spec


def test_unknown_family_is_an_error_with_suggestions():
    with pytest.raises(UnknownNameError) as e:
        list_models("qwen")
    assert "qwen2" in e.value.suggestions or "qwen3" in e.value.suggestions


def test_parallel_block_in_toml_and_dict_and_its_checks(tmp_path):
    p = tmp_path / "par.toml"
    p.write_text('name = "par"\nn_layers = 2\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n'
                 'parallel_block = true\nparallel_block_norms = 1\n')
    m = get_model(p)
    assert (m.parallel_block, m.parallel_block_norms) == (True, 1)
    assert ModelSpec(**m.to_dict()) == m and m.to_dict()["parallel_block"] is True
    seq = get_model(m, parallel_block=False, parallel_block_norms=2)
    # one norm per block fewer (RMSNorm: d_model weights), same matrices
    assert seq.n_params().total - m.n_params().total == 2 * 64
    assert seq.n_params().attention == m.n_params().attention
    with pytest.raises(ConfigError, match="parallel_block_norms=1 needs parallel_block=True"):
        get_model(m, parallel_block=False)


def test_a_sequential_spec_serializes_without_the_parallel_block_fields():
    """Content hashes key the wind tunnel's stores: a sequential spec (and a RunConfig holding one) must dump
    as it did before the parallel-block fields existed, and load back equal."""
    seq = get_model("tiny-dense")
    d = seq.to_dict()
    assert "parallel_block" not in d and "parallel_block_norms" not in d
    assert ModelSpec(**d) == seq
    par = get_model(seq, parallel_block=True)
    assert par.content_hash() != seq.content_hash() and ModelSpec(**par.to_dict()) == par
