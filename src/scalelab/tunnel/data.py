"""Corpora, tokenizers and token caches for the wind tunnel.

A corpus is named by one string (``RunConfig.corpus``):

* ``"stdlib"`` (default): the Python standard library's own source, found through
  ``sysconfig.get_paths()["stdlib"]``: present wherever Python is, no download. Files are taken in a
  fixed pseudo-random order (by a hash of their relative path) until :data:`STDLIB_MAX_BYTES` (8 MB),
  so the first tokenization takes seconds and the mix covers the whole library. Three disjoint named
  domains, for mixture experiments: ``code`` (library modules with comments and triple-quoted strings
  cut out), ``docs`` (those comments and docstrings), ``tests`` (test modules, whole). The split into
  code and docs is a regular-expression heuristic, not a parser: good enough for mixtures.
* a text file, a directory (every text file under it), or a glob (``"books/**/*.txt"``);
* a JSON-lines file (``.jsonl``/``.json``; one object per line, text in field ``text``, or name the
  field with ``"file.jsonl#content"``), a Parquet file (``.parquet``, same ``#field`` rule, needs
  pyarrow), or a dataset directory saved with Hugging Face ``datasets.save_to_disk`` (needs datasets);
  records with a ``domain`` field are grouped into that domain, other sources form domain ``text``;
* several named domains joined with ``;``: ``"code=src/**/*.py;prose=docs/*.md"``.

Tokenizers: ``"byte"`` (UTF-8 bytes, vocabulary 256; documents are separated by byte 0, which never
occurs in text) or ``"bpe"`` (a byte-level BPE trained locally on the corpus with Hugging Face
``tokenizers``, trained on a spread sample of about 2 MB of the corpus and applied to all of it; id 0
is ``<|endoftext|>``).

Tokens are cached once per (corpus, tokenizer) under ``$SCALELAB_HOME/cache/tokens/<key>/`` (default
``~/.scalelab``) as flat ``uint16``/``uint32`` files read through ``numpy.memmap``; a file lock makes
concurrent workers tokenize once. The train/validation split is deterministic: each domain's token
stream is cut into about 40+ equal chunks and every 20th chunk (5%) is held out, so even a single-file
corpus gets a validation set.

Example
-------
>>> data = load_corpus("stdlib")                          # doctest: +SKIP
>>> x, y = data.train_batch(batch_size=8, seq_len=128, seed=0, step=0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._spec import stable_hash
from ..errors import ConfigError, CorpusError, MissingDependencyError, explain

__all__ = [
    "STDLIB_MAX_BYTES",
    "Document",
    "TokenData",
    "cache_root",
    "iter_documents",
    "load_corpus",
    "scalelab_home",
]

log = logging.getLogger(__name__)

#: Bytes of Python source the default corpus reads (about 8M byte tokens; ~1/4 of CPython 3.11's stdlib).
STDLIB_MAX_BYTES = 8_000_000
#: Characters of text (a spread sample of documents) the BPE tokenizer is trained on; all text is encoded.
BPE_TRAIN_MAX_BYTES = 2_000_000
#: Bump when the cached token layout or the document rules change: old caches are then ignored.
CACHE_FORMAT = 2
#: One chunk in this many goes to validation (5%).
VAL_EVERY = 20
_TEXT_SUFFIX_SKIP = {".pyc", ".so", ".o", ".a", ".png", ".jpg", ".jpeg", ".gif", ".zip", ".gz", ".bin", ".pdf"}


def scalelab_home() -> Path:
    """``$SCALELAB_HOME``, default ``~/.scalelab``."""
    return Path(os.environ.get("SCALELAB_HOME") or Path.home() / ".scalelab").expanduser()


def cache_root() -> Path:
    """Where token caches live: ``$SCALELAB_HOME/cache/tokens``."""
    return scalelab_home() / "cache" / "tokens"


@dataclass(frozen=True)
class Document:
    """One unit of text with the domain it belongs to."""

    domain: str
    name: str
    text: str


# ---- reading sources ------------------------------------------------------------------------------
def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _is_test_path(rel: Path) -> bool:
    return any(part in ("test", "tests", "idle_test") for part in rel.parts[:-1]) or rel.name.startswith("test_")


_DOC_RE = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)
_COMMENT_RE = re.compile(r"^[ \t]*#.*\n?", re.MULTILINE)


def _split_code_docs(src: str) -> tuple[str, str]:
    """Cut triple-quoted strings and whole-line comments out of Python source (heuristic, fast)."""
    docs: list[str] = []

    def take(m: re.Match) -> str:
        docs.append(m.group(0))
        return ""

    code = _DOC_RE.sub(lambda m: take(m) or '""', src)
    code = _COMMENT_RE.sub(take, code)
    return code, "\n".join(docs)


def _stdlib_files(max_bytes: int) -> list[tuple[Path, Path]]:
    root = _stdlib_root()
    if not root.is_dir():
        raise CorpusError(
            explain("the Python standard library source was not found", value=str(root),
                    fix="pass corpus='<your text files>' instead of 'stdlib' (this Python ships no .py sources)")
        )
    files = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root)
        if rel.parts and rel.parts[0] in ("site-packages", "dist-packages"):
            continue
        files.append((rel, p))
    # A fixed pseudo-random order spreads the capped sample over the whole library.
    files.sort(key=lambda rp: hashlib.sha1(rp[0].as_posix().encode()).hexdigest())
    picked: list[tuple[Path, Path]] = []
    total = 0
    for rel, p in files:
        size = p.stat().st_size
        if total + size > max_bytes and picked:
            continue
        picked.append((rel, p))
        total += size
        if total >= max_bytes:
            break
    return picked


def _iter_stdlib(max_bytes: int) -> Iterator[Document]:
    for rel, p in _stdlib_files(max_bytes):
        try:
            src = p.read_text(encoding="utf-8", errors="replace")
        except OSError as e:  # unreadable file in an odd install: skip it, the rest is plenty
            log.warning("skipping unreadable stdlib file %s: %s", p, e)
            continue
        name = rel.as_posix()
        if _is_test_path(rel):
            yield Document("tests", name, src)
        else:
            code, docs = _split_code_docs(src)
            yield Document("code", name, code)
            if docs.strip():
                yield Document("docs", name, docs)


def _split_field(spec: str) -> tuple[str, str]:
    if "#" in spec:
        path, fld = spec.rsplit("#", 1)
        return path, fld or "text"
    return spec, "text"


def _expand(pattern: str) -> list[Path]:
    if any(c in pattern for c in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(os.path.expanduser(pattern), recursive=True))]
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise CorpusError(explain("the corpus glob matches no files", value=pattern,
                                      fix="check the pattern (use ** with a recursive glob), "
                                          "or pass a file or directory"))
        return paths
    p = Path(os.path.expanduser(pattern))
    if not p.exists():
        raise CorpusError(explain("the corpus path does not exist", value=str(p),
                                  allowed="'stdlib', a file, a directory, a glob, JSONL, Parquet or a saved HF dataset",
                                  fix="check the path, or use corpus='stdlib' for the built-in corpus"))
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists():
            return [p]
        return sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() not in _TEXT_SUFFIX_SKIP)
    return [p]


def _record_domain(rec: dict, default: str) -> str:
    d = rec.get("domain")
    return str(d) if d not in (None, "") else default


def _iter_jsonl(path: Path, fld: str, domain: str) -> Iterator[Document]:
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(explain(f"line {i + 1} of {path} is not valid JSON", value=line[:60],
                                          fix="write one JSON object per line (JSON lines)")) from e
            if not isinstance(rec, dict) or fld not in rec:
                raise CorpusError(explain(f"line {i + 1} of {path} has no text field {fld!r}",
                                          value=list(rec)[:8] if isinstance(rec, dict) else type(rec).__name__,
                                          fix=f"name the field with '{path}#<field>'"))
            yield Document(_record_domain(rec, domain), f"{path.name}:{i}", str(rec[fld]))


def _iter_table(rows: Iterable[dict], fld: str, domain: str, where: str) -> Iterator[Document]:
    for i, rec in enumerate(rows):
        if fld not in rec:
            raise CorpusError(explain(f"{where} has no text column {fld!r}", value=list(rec)[:8],
                                      fix=f"name the column with '{where}#<column>'"))
        yield Document(_record_domain(rec, domain), f"{where}:{i}", str(rec[fld]))


def _iter_parquet(path: Path, fld: str, domain: str) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is installed with the data extra
        raise MissingDependencyError("pyarrow", "data") from None
    table = pq.read_table(path)
    yield from _iter_table(table.to_pylist(), fld, domain, str(path))


def _iter_hf(path: Path, fld: str, domain: str) -> Iterator[Document]:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("datasets", "data") from None
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    yield from _iter_table(iter(ds), fld, domain, str(path))


def _iter_source(spec: str, domain: str) -> Iterator[Document]:
    pattern, fld = _split_field(spec)
    for p in _expand(pattern):
        suffix = p.suffix.lower()
        try:
            if p.is_dir():
                yield from _iter_hf(p, fld, domain)
            elif suffix in (".jsonl", ".json", ".ndjson"):
                yield from _iter_jsonl(p, fld, domain)
            elif suffix == ".parquet":
                yield from _iter_parquet(p, fld, domain)
            else:
                raw = p.read_bytes()
                if b"\x00" in raw[:4096]:
                    log.info("skipping binary file %s", p)
                    continue
                yield Document(domain, str(p), _utf8(raw, p))
        except (OSError, UnicodeDecodeError) as e:
            raise CorpusError(explain("cannot read a corpus file", value=f"{p}: {e}",
                                      fix="check its permissions and encoding (UTF-8 text expected)")) from e


def _utf8(raw: bytes, path: Path) -> str:
    """The file's text; a file that is not UTF-8 (Latin-1, UTF-16...) is an error rather than text full of
    replacement characters that the model would silently be trained on."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(explain(
            f"corpus file {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
            allowed="UTF-8 text files",
            fix=f"convert it first, e.g. `iconv -f latin1 -t utf-8 {path} > "
                f"{path.with_suffix('.utf8' + path.suffix)}`")) from None


def _parse_corpus(corpus: str) -> list[tuple[str, str]]:
    """``"a=glob1;b=glob2"`` -> [("a", "glob1"), ("b", "glob2")]; a bare source is domain ``text``."""
    parts = [s.strip() for s in corpus.split(";") if s.strip()]
    if not parts:
        raise CorpusError(explain("the corpus is empty", value=corpus, fix="use 'stdlib' or a path"))
    out = []
    for s in parts:
        m = re.match(r"^([A-Za-z_][\w.-]*)=(.+)$", s)
        out.append((m.group(1), m.group(2)) if m else ("text", s))
    return out


def iter_documents(corpus: str) -> Iterator[Document]:
    """Every document of ``corpus`` in a deterministic order (see the module docstring for the syntax)."""
    if corpus == "stdlib":
        yield from _iter_stdlib(STDLIB_MAX_BYTES)
        return
    for domain, spec in _parse_corpus(corpus):
        yield from _iter_source(spec, domain)


def _corpus_signature(corpus: str) -> dict:
    """What the cache key depends on: the source files' identity (path, size, mtime) or the stdlib."""
    if corpus == "stdlib":
        return {"stdlib": str(_stdlib_root()), "python": sys.version.split()[0], "max_bytes": STDLIB_MAX_BYTES}
    files = []
    for domain, spec in _parse_corpus(corpus):
        pattern, fld = _split_field(spec)
        for p in _expand(pattern):
            try:
                st = p.stat()
            except OSError as e:
                raise CorpusError(explain("cannot read a corpus file", value=f"{p}: {e}",
                                          fix="check its permissions")) from e
            files.append([domain, fld, str(p.resolve()), st.st_size, st.st_mtime_ns])
    return {"files": files}


# ---- tokenizers -----------------------------------------------------------------------------------
EOT_ID = 0  # byte 0 for the byte tokenizer, "<|endoftext|>" for BPE


def _byte_encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _bpe_sample(docs: list[Document], max_bytes: int) -> list[str]:
    """Every k-th document, k chosen so the sample is about ``max_bytes``: BPE merges learnt on a spread
    sample are nearly those of the whole corpus, and training cost grows with the text it reads."""
    total = sum(len(d.text) for d in docs)
    stride = max(1, round(total / max_bytes))
    return [d.text for d in docs[::stride]]


def _train_bpe(docs: list[Document], vocab_size: int):
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise MissingDependencyError("tokenizers", "tunnel") from None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample = _bpe_sample(docs, BPE_TRAIN_MAX_BYTES)
    tok.train_from_iterator(sample, trainer=trainer, length=len(sample))
    return tok


# ---- the cached, memory-mapped token data -------------------------------------------------------
@dataclass
class TokenData:
    """Tokenized corpus, split into train/validation streams per domain (memory-mapped arrays)."""

    key: str
    tokenizer: str
    vocab_size: int
    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    @property
    def domains(self) -> list[str]:
        """Domain names, sorted."""
        return sorted(self.train)

    @property
    def n_train_tokens(self) -> int:
        return int(sum(len(a) for a in self.train.values()))

    @property
    def n_val_tokens(self) -> int:
        return int(sum(len(a) for a in self.val.values()))

    def _check_len(self, seq_len: int, split: str, streams: dict[str, np.ndarray]) -> None:
        longest = max((len(a) for a in streams.values()), default=0)
        if longest < seq_len + 1:
            raise CorpusError(explain(
                f"the corpus' {split} split is too short for one sequence", value=f"{longest} tokens",
                allowed=f"at least seq_len + 1 = {seq_len + 1} tokens in one domain",
                fix="use a larger corpus or a shorter seq_len"))

    def check(self, seq_len: int, domain_weights: dict[str, float] | None = None) -> None:
        """Raise :class:`CorpusError`/:class:`ConfigError` now if training or evaluating with these
        settings would fail later (a split shorter than one sequence, unknown or all-zero weights)."""
        self._check_len(seq_len, "train", self.train)
        self._check_len(seq_len, "validation", self.val)
        self.domain_probs(domain_weights, seq_len)

    def domain_probs(self, domain_weights: dict[str, float] | None, seq_len: int) -> tuple[list[str], np.ndarray]:
        """Sampling probability of each domain: ``domain_weights`` normalised, else proportional to size."""
        names = [d for d in self.domains if len(self.train[d]) > seq_len]
        if domain_weights is None:
            w = np.array([len(self.train[d]) for d in names], dtype=np.float64)
        else:
            unknown = sorted(set(domain_weights) - set(self.domains))
            if unknown:
                raise ConfigError(explain("domain_weights names unknown domains", value=unknown,
                                          allowed=", ".join(self.domains), fix="use the corpus' domain names"))
            bad = {k: v for k, v in domain_weights.items() if not (v >= 0 and np.isfinite(v))}
            if bad or sum(domain_weights.values()) <= 0:
                raise ConfigError(explain("domain_weights must be finite, non-negative and not all zero",
                                          value=domain_weights, fix="give each domain a weight >= 0"))
            w = np.array([float(domain_weights.get(d, 0.0)) for d in names], dtype=np.float64)
            if w.sum() <= 0:
                raise ConfigError(explain("every weighted domain is shorter than one sequence",
                                          value=domain_weights, fix="weight a larger domain"))
        return names, w / w.sum()

    def train_batch(self, batch_size: int, seq_len: int, seed: int, step: int,
                    domain_weights: dict[str, float] | None = None):
        """The (inputs, targets) batch of ``step``: random windows drawn with a generator seeded by
        ``(seed, step)`` only, so a resumed run sees exactly the data an uninterrupted run would.

        Returns two ``torch.int64`` tensors of shape ``(batch_size, seq_len)``.
        """
        import torch

        self._check_len(seq_len, "train", self.train)
        names, p = self.domain_probs(domain_weights, seq_len)
        rng = np.random.default_rng([seed, step, 0x5CA1E])
        dom = rng.choice(len(names), size=batch_size, p=p)
        rows = np.empty((batch_size, seq_len + 1), dtype=np.int64)
        for i, d in enumerate(dom):
            arr = self.train[names[d]]
            o = int(rng.integers(0, len(arr) - seq_len))
            rows[i] = arr[o : o + seq_len + 1]
        t = torch.from_numpy(rows)
        return t[:, :-1], t[:, 1:]

    def val_windows(self, seq_len: int, eval_tokens: int, domain: str | None = None) -> np.ndarray:
        """Fixed validation windows ``(n, seq_len + 1)``: evenly spaced over the concatenated val
        streams (domains in sorted order, or only ``domain``), ``n = max(1, eval_tokens // seq_len)``."""
        pool = self.val if domain is None else {domain: self.val[domain]}
        self._check_len(seq_len, "validation", pool)
        streams = [pool[d] for d in sorted(pool) if len(pool[d]) > seq_len]
        lens = np.array([len(a) - seq_len for a in streams])
        total = int(lens.sum())
        n = max(1, eval_tokens // seq_len)
        pos = np.linspace(0, total - 1, n).astype(np.int64)
        bounds = np.cumsum(lens) - lens
        rows = np.empty((n, seq_len + 1), dtype=np.int64)
        for i, g in enumerate(pos):
            s = int(np.searchsorted(bounds, g, side="right") - 1)
            o = int(g - bounds[s])
            rows[i] = streams[s][o : o + seq_len + 1]
        return rows

    def decode(self, ids) -> str:
        """Token ids back to text (for samples and debugging)."""
        ids = [int(i) for i in ids]
        if self.tokenizer == "byte":
            return bytes(i for i in ids if i != EOT_ID).decode("utf-8", errors="replace")
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(self.meta["dir"]) / "tokenizer.json"))
        return tok.decode(ids)


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still protects readers
            pass
        yield


def _split_stream(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every VAL_EVERY-th chunk (about 40+ chunks per stream) to validation, the rest to training."""
    n = len(tokens)
    chunk = max(64, min(8192, n // (2 * VAL_EVERY)))
    n_chunks = -(-n // chunk)
    is_val = np.zeros(n, dtype=bool)
    for j in range(VAL_EVERY // 2, n_chunks, VAL_EVERY):
        is_val[j * chunk : (j + 1) * chunk] = True
    if not is_val.any() and n > 1:  # tiny stream: hold out its last 5%
        is_val[n - max(1, n // VAL_EVERY):] = True
    return tokens[~is_val], tokens[is_val]


def _build(corpus: str, tokenizer: str, bpe_vocab_size: int, out: Path) -> None:
    docs = list(iter_documents(corpus))
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise CorpusError(explain("the corpus holds no text", value=corpus,
                                  fix="point it at non-empty UTF-8 text files, or use corpus='stdlib'"))
    by_domain: dict[str, list[np.ndarray]] = {}
    dtype: type[np.unsignedinteger[Any]]  # of the token files: the smallest that holds every id
    if tokenizer == "byte":
        vocab, dtype = 256, np.uint16
        for d in docs:
            by_domain.setdefault(d.domain, []).extend([_byte_encode(d.text), np.array([EOT_ID], np.uint8)])
    else:
        tok = _train_bpe(docs, bpe_vocab_size)
        tok.save(str(out / "tokenizer.json"))
        vocab = tok.get_vocab_size()
        dtype = np.uint16 if vocab <= 65536 else np.uint32
        encs = tok.encode_batch([d.text for d in docs])
        for d, e in zip(docs, encs, strict=True):
            by_domain.setdefault(d.domain, []).extend([np.asarray(e.ids, dtype=np.uint32),
                                                       np.array([EOT_ID], np.uint32)])
    sizes = {}
    for dom, parts in sorted(by_domain.items()):
        stream = np.concatenate(parts).astype(dtype)
        tr, va = _split_stream(stream)
        safe = re.sub(r"[^\w.-]", "_", dom)
        tr.tofile(out / f"{safe}.train.bin")
        va.tofile(out / f"{safe}.val.bin")
        sizes[dom] = {"file": safe, "train": len(tr), "val": len(va)}
    meta = {"corpus": corpus, "tokenizer": tokenizer, "vocab_size": int(vocab), "dtype": np.dtype(dtype).name,
            "domains": sizes, "n_documents": len(docs), "format": CACHE_FORMAT}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def _open(key: str, d: Path) -> TokenData:
    meta = json.loads((d / "meta.json").read_text())
    dtype = np.dtype(meta["dtype"])
    train: dict[str, np.ndarray] = {}
    val: dict[str, np.ndarray] = {}
    for dom, info in meta["domains"].items():
        for split, target in (("train", train), ("val", val)):
            n = info[split]
            path = d / f"{info['file']}.{split}.bin"
            target[dom] = np.memmap(path, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype)
    meta["dir"] = str(d)
    return TokenData(key=key, tokenizer=meta["tokenizer"], vocab_size=meta["vocab_size"], train=train,
                     val=val, meta=meta)


_OPEN: dict[str, TokenData] = {}


def load_corpus(corpus: str = "stdlib", tokenizer: str = "byte", bpe_vocab_size: int = 4096,
                *, cache_dir: str | Path | None = None) -> TokenData:
    """Tokenize ``corpus`` once (cached, memory-mapped) and return its train/validation streams.

    Parameters
    ----------
    corpus : str
        ``"stdlib"``, a path, glob, JSONL/Parquet file or saved HF dataset, or ``"name=src;..."``.
    tokenizer : {"byte", "bpe"}
        UTF-8 bytes (vocabulary 256) or a byte-level BPE trained on this corpus.
    bpe_vocab_size : int
        Vocabulary of the BPE tokenizer (ignored for bytes).
    cache_dir : path, optional
        Defaults to ``$SCALELAB_HOME/cache/tokens``.

    Raises
    ------
    CorpusError
        The corpus is missing, unreadable, empty or too small.
    """
    if tokenizer not in ("byte", "bpe"):
        raise ConfigError(explain("unknown tokenizer", value=tokenizer, allowed="'byte' or 'bpe'"))
    if tokenizer == "bpe" and not 257 <= bpe_vocab_size <= 2**32 - 1:
        raise ConfigError(explain("bpe_vocab_size out of range", value=bpe_vocab_size, allowed="257 .. 2**32-1"))
    sig = {"corpus": _corpus_signature(corpus), "tokenizer": tokenizer, "format": CACHE_FORMAT}
    if tokenizer == "bpe":
        sig["bpe_vocab_size"] = bpe_vocab_size
    key = stable_hash(sig)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    final = root / key
    memo = f"{final}"
    if memo in _OPEN and (final / "meta.json").exists():
        return _OPEN[memo]
    if not (final / "meta.json").exists():
        with _file_lock(root / f"{key}.lock"):
            if not (final / "meta.json").exists():  # another worker may have built it while we waited
                tmp = root / f"{key}.tmp{os.getpid()}"
                tmp.mkdir(parents=True, exist_ok=True)
                try:
                    _build(corpus, tokenizer, bpe_vocab_size, tmp)
                    (tmp / "signature.json").write_text(json.dumps(sig, indent=1, default=str))
                    os.replace(tmp, final)
                finally:
                    if tmp.exists():
                        import shutil

                        shutil.rmtree(tmp, ignore_errors=True)
                log.info("tokenized corpus %r with %s into %s", corpus, tokenizer, final)
    data = _open(key, final)
    _OPEN[memo] = data
    return data
