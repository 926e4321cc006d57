"""Corpora and token caches: the stdlib default, user files/JSONL/Parquet, BPE, deterministic splits and
batches, domain mixtures, and clear errors for unusable corpora (issue 4, acceptance 7)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalelab.errors import ConfigError, CorpusError, MissingDependencyError
from scalelab.tunnel import data as tdata
from scalelab.tunnel.data import load_corpus


@pytest.fixture
def two_domain_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 5000)
    (tmp_path / "b.txt").write_text("y" * 5000)
    return f"ax={tmp_path / 'a.txt'};by={tmp_path / 'b.txt'}"


def test_stdlib_corpus_has_named_domains_and_is_cached(monkeypatch):
    d = load_corpus("stdlib")
    assert d.domains == ["code", "docs", "tests"]
    assert d.vocab_size == 256
    # the cap counts source bytes; placeholders for cut docstrings and separators add well under 1%
    assert 1_000_000 < d.n_train_tokens + d.n_val_tokens <= tdata.STDLIB_MAX_BYTES * 1.01
    assert 0.03 < d.n_val_tokens / (d.n_train_tokens + d.n_val_tokens) < 0.07  # about 1 chunk in 20
    # The second load reads the cache: building again would be a bug.
    monkeypatch.setattr(tdata, "_build", lambda *a, **k: pytest.fail("cache was not reused"))
    tdata._OPEN.clear()
    assert load_corpus("stdlib").n_train_tokens == d.n_train_tokens


def test_stdlib_docs_domain_holds_comments_and_docstrings():
    d = load_corpus("stdlib")
    docs = bytes(np.asarray(d.train["docs"][:200_000], dtype=np.uint8)).decode("utf-8", "replace")
    code = bytes(np.asarray(d.train["code"][:200_000], dtype=np.uint8)).decode("utf-8", "replace")
    assert docs.count("#") + docs.count('"""') > 100
    assert code.count("def ") > docs.count("def ")


def test_split_is_deterministic_and_disjoint(tmp_path, assets):
    corpus = str(assets / "golden_corpus.txt")
    a = load_corpus(corpus, cache_dir=tmp_path / "c1")
    b = load_corpus(corpus, cache_dir=tmp_path / "c2")
    np.testing.assert_array_equal(a.train["text"], b.train["text"])
    np.testing.assert_array_equal(a.val["text"], b.val["text"])
    total = len(assets.joinpath("golden_corpus.txt").read_bytes()) + 1  # + end-of-document token
    assert len(a.train["text"]) + len(a.val["text"]) == total
    assert len(a.val["text"]) > 0


def test_batches_depend_only_on_seed_and_step(assets):
    d = load_corpus(str(assets / "golden_corpus.txt"))
    x1, y1 = d.train_batch(4, 16, seed=0, step=3)
    x2, y2 = d.train_batch(4, 16, seed=0, step=3)
    x3, _ = d.train_batch(4, 16, seed=0, step=4)
    assert x1.shape == (4, 16) and x1.dtype.is_floating_point is False
    assert (x1 == x2).all() and (y1 == y2).all() and not (x1 == x3).all()
    assert (x1[:, 1:] == y1[:, :-1]).all()  # targets are inputs shifted by one
    v1, v2 = d.val_windows(16, 640), d.val_windows(16, 640)
    assert v1.shape == (40, 17) and (v1 == v2).all()


def test_domain_weights_select_domains(two_domain_corpus):
    d = load_corpus(two_domain_corpus)
    assert d.domains == ["ax", "by"]
    x, _ = d.train_batch(8, 32, seed=0, step=0, domain_weights={"ax": 1.0, "by": 0.0})
    assert set(x.unique().tolist()) <= {ord("x"), tdata.EOT_ID}
    x, _ = d.train_batch(64, 32, seed=0, step=0)  # by size: both domains appear
    assert {ord("x"), ord("y")} <= set(x.unique().tolist())
    with pytest.raises(ConfigError, match="unknown domains"):
        d.train_batch(8, 32, seed=0, step=0, domain_weights={"prose": 1.0})
    with pytest.raises(ConfigError, match="non-negative"):
        d.train_batch(8, 32, seed=0, step=0, domain_weights={"ax": -1.0, "by": 2.0})


def test_jsonl_with_field_and_domains(tmp_path):
    p = tmp_path / "d.jsonl"
    rows = [{"content": "alpha " * 200, "domain": "web"}, {"content": "beta " * 200, "domain": "code"},
            {"content": "gamma " * 200}]
    p.write_text("\n".join(json.dumps(r) for r in rows))
    d = load_corpus(f"{p}#content")
    assert d.domains == ["code", "text", "web"]
    with pytest.raises(CorpusError, match="no text field 'text'"):
        load_corpus(str(p))


def test_parquet_corpus(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["hello parquet " * 50, "more rows " * 50]}), p)
    d = load_corpus(str(p))
    n_bytes = len(("hello parquet " * 50).encode()) + len(("more rows " * 50).encode())
    assert d.n_train_tokens + d.n_val_tokens == n_bytes + 2


def test_saved_hf_dataset_is_read(tmp_path):
    datasets = pytest.importorskip("datasets")  # installed with the `data` extra (and in CI)
    ds = datasets.Dataset.from_dict({"text": ["saved dataset text " * 40] * 3})
    ds.save_to_disk(str(tmp_path / "saved"))
    d = load_corpus(str(tmp_path / "saved"))
    assert d.domains == ["text"]
    assert d.n_train_tokens + d.n_val_tokens == 3 * (len(("saved dataset text " * 40).encode()) + 1)


def test_saved_hf_dataset_without_datasets_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    ds_dir = tmp_path / "saved"
    ds_dir.mkdir()
    (ds_dir / "dataset_info.json").write_text("{}")
    with pytest.raises(MissingDependencyError, match="scalelab\\[data\\]"):
        load_corpus(str(ds_dir))


def test_bpe_tokenizer_trains_locally_and_round_trips(assets):
    d = load_corpus(str(assets / "golden_corpus.txt"), tokenizer="bpe", bpe_vocab_size=400)
    assert 256 < d.vocab_size <= 400
    text_tokens = len(assets.joinpath("golden_corpus.txt").read_bytes())
    assert d.n_train_tokens + d.n_val_tokens < text_tokens / 2  # merges compress the repetitive grammar
    x, _ = d.train_batch(1, 64, seed=0, step=0)
    assert "the" in d.decode(x[0])


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(CorpusError, match="does not exist") as e:
        load_corpus(str(missing))
    assert str(missing) in str(e.value) and "Fix:" in str(e.value)


def test_empty_corpus_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("   \n")
    with pytest.raises(CorpusError, match="holds no text"):
        load_corpus(str(tmp_path / "empty.txt"))


def test_glob_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="matches no files"):
        load_corpus(str(tmp_path / "*.md"))


def test_malformed_jsonl_is_an_error(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(CorpusError, match="line 2"):
        load_corpus(str(p))


def test_corpus_too_short_for_a_sequence(tmp_path):
    (tmp_path / "short.txt").write_text("tiny text")
    d = load_corpus(str(tmp_path / "short.txt"))
    with pytest.raises(CorpusError, match="too short"):
        d.train_batch(2, 64, seed=0, step=0)


def test_unknown_tokenizer():
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        load_corpus("stdlib", tokenizer="words")
