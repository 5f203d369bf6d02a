"""A tenant's knowledge base: documents, cut into passages that are searched with ranking.

Full-text search is FTS5 (bm25) on SQLite and a generated `tsvector` with a GIN index (`ts_rank`) on
PostgreSQL, as for transcripts, with English stemming on both (FTS5 `porter`, Postgres `english`: "opening"
finds "open") and each passage's document title weighted above its text. A query matches passages holding *any*
of its words, best first, so a natural question ("what are your opening hours on sunday") still finds the
passage about opening hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import dialect, new_id, now, write_transaction
from .tables import knowledge_documents, knowledge_passages

PASSAGE_CHARS = 800  # a passage is cut near this length, at a paragraph or sentence end when there is one
MAX_PASSAGE_CHARS = 1200
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"\w+", re.UNICODE)
# English stop words (PostgreSQL's `english` configuration drops these; they are dropped here for FTS5 too, so
# both rank on the words that matter: "what are your opening hours" is searched as "opening hours").
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves tell know please""".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Document:
    id: str
    tenant_id: str
    title: str
    filename: str | None
    content_type: str
    size_chars: int
    passages: int
    created_at: float

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Passage:
    document_id: str
    title: str
    position: int
    text: str
    score: float


def split_passages(text: str) -> list[str]:
    """Cut text into passages of about PASSAGE_CHARS: whole paragraphs, else whole sentences, else hard cuts."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= MAX_PASSAGE_CHARS:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            while len(sentence) > MAX_PASSAGE_CHARS:
                cut = sentence.rfind(" ", 0, MAX_PASSAGE_CHARS)
                cut = cut if cut > PASSAGE_CHARS // 2 else MAX_PASSAGE_CHARS
                pieces.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                pieces.append(sentence)
    passages: list[str] = []
    for piece in pieces:
        if passages and len(passages[-1]) + 1 + len(piece) <= PASSAGE_CHARS:
            passages[-1] = passages[-1] + " " + piece
        else:
            passages.append(piece)
    return passages


def _document(row: Any) -> Document:
    data = dict(row._mapping)
    data.pop("content", None)
    return Document(**data)


async def add_document(
    db: Database, *, tenant_id: str, title: str, content: str, content_type: str, filename: str | None = None
) -> Document:
    passages = split_passages(content)
    document = Document(
        id=new_id("doc"),
        tenant_id=tenant_id,
        title=title,
        filename=filename,
        content_type=content_type,
        size_chars=len(content),
        passages=len(passages),
        created_at=now(),
    )
    async with write_transaction(db):
        await db.execute(knowledge_documents.insert().values(content=content, **document.__dict__))
        for position, text in enumerate(passages):
            await db.execute(
                knowledge_passages.insert().values(
                    id=new_id("psg"),
                    document_id=document.id,
                    tenant_id=tenant_id,
                    position=position,
                    title=title,
                    text=text,
                )
            )
    return document


async def list_documents(db: Database, tenant_id: str, *, limit: int, offset: int) -> tuple[list[Document], int]:
    columns = [c for c in knowledge_documents.c if c.name != "content"]
    where = knowledge_documents.c.tenant_id == tenant_id
    total = await db.fetch_val(sa.select(sa.func.count()).select_from(knowledge_documents).where(where))
    rows = await db.fetch_all(
        sa.select(*columns)
        .where(where)
        .order_by(knowledge_documents.c.created_at.desc(), knowledge_documents.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_document(r) for r in rows], int(total or 0)


async def get_document(db: Database, tenant_id: str, document_id: str) -> tuple[Document, str] | None:
    """The document and its full text."""
    row = await db.fetch_one(
        sa.select(knowledge_documents).where(
            knowledge_documents.c.id == document_id, knowledge_documents.c.tenant_id == tenant_id
        )
    )
    return None if row is None else (_document(row), str(row._mapping["content"]))


async def delete_document(db: Database, tenant_id: str, document_id: str) -> bool:
    async with write_transaction(db):
        gone = await db.fetch_one(
            knowledge_documents.delete()
            .where(knowledge_documents.c.id == document_id, knowledge_documents.c.tenant_id == tenant_id)
            .returning(knowledge_documents.c.id)
        )
        if gone is None:
            return False
        await db.execute(knowledge_passages.delete().where(knowledge_passages.c.document_id == document_id))
    return True


async def delete_all_of_tenant(db: Database, tenant_id: str) -> None:
    """Inside the caller's transaction: every document and passage of the tenant."""
    await db.execute(knowledge_passages.delete().where(knowledge_passages.c.tenant_id == tenant_id))
    await db.execute(knowledge_documents.delete().where(knowledge_documents.c.tenant_id == tenant_id))


def query_words(query: str) -> list[str]:
    """The distinct words of a query that are not stop words, lower-cased, in order (at most MAX_QUERY_WORDS)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_WORDS]


async def search(db: Database, tenant_id: str, query: str, *, limit: int = 3) -> list[Passage]:
    """The tenant's passages matching any word of `query`, best first (score: higher is better)."""
    words = query_words(query)
    if not words:
        return []
    if dialect(db) == "postgresql":
        # Each word is \w+ only, so it is a plain lexeme in to_tsquery: no operator can be smuggled in.
        sql = sa.text(
            "SELECT p.document_id, p.title, p.position, p.text, ts_rank(p.search, q) AS score "
            "FROM knowledge_passages p, to_tsquery('english', :q) q "
            "WHERE p.tenant_id = :tenant AND p.search @@ q "
            "ORDER BY score DESC, p.document_id, p.position LIMIT :limit"
        ).bindparams(q=" | ".join(words), tenant=tenant_id, limit=limit)
    else:
        # FTS5 syntax is easy to break: every word is quoted, so user text is always literal.
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        sql = sa.text(
            "SELECT p.document_id, p.title, p.position, p.text, -bm25(knowledge_passages_fts, 2.0, 1.0) AS score "
            "FROM knowledge_passages_fts "
            "JOIN knowledge_passages p ON p.rowid = knowledge_passages_fts.rowid "
            "WHERE knowledge_passages_fts MATCH :q AND p.tenant_id = :tenant "
            "ORDER BY score DESC, p.document_id, p.position LIMIT :limit"
        ).bindparams(q=match, tenant=tenant_id, limit=limit)
    rows = await db.fetch_all(sql)
    return [
        Passage(
            document_id=r._mapping["document_id"],
            title=r._mapping["title"],
            position=int(r._mapping["position"]),
            text=r._mapping["text"],
            score=round(float(r._mapping["score"]), 6),
        )
        for r in rows
    ]
