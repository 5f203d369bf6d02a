"""The tools the agent may call, and how their results are worded for the model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from ..db import knowledge
from ..db.handle import DatabaseHandle
from ..db.knowledge import Passage
from .speech import ToolSpec

SEARCH_KNOWLEDGE = ToolSpec(
    name="search_knowledge",
    description=(
        "Search this business's knowledge base (opening hours, prices, policies, products, ...). Use it before "
        "answering any question about the business; answer only from what it returns."
    ),
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look up, in a few keywords."}},
        "required": ["query"],
        "additionalProperties": False,
    },
)

END_CALL = ToolSpec(
    name="end_call",
    description=(
        "Hang up. Call it when the conversation is over, after you have said goodbye to the caller; the call "
        "ends once your goodbye has played."
    ),
    parameters={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why the call ends, in a few words."}},
        "required": [],
        "additionalProperties": False,
    },
)

MAX_RESULT_CHARS = 4000


def tools_for(knowledge_enabled: bool) -> tuple[ToolSpec, ...]:
    return (SEARCH_KNOWLEDGE, END_CALL) if knowledge_enabled else (END_CALL,)


def arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def search_result(query: str, passages: Sequence[Passage]) -> str:
    """The `function_call_output` of search_knowledge: JSON the model reads."""
    if not passages:
        return json.dumps({"query": query, "results": [], "note": "Nothing in the knowledge base matches."})
    results, used = [], 0
    for passage in passages:
        text = passage.text[: max(0, MAX_RESULT_CHARS - used)]
        if not text:
            break
        used += len(text)
        results.append({"title": passage.title, "text": text})
    return json.dumps({"query": query, "results": results}, ensure_ascii=False)


class KnowledgeBase(Protocol):
    async def search(self, tenant_id: str, query: str, limit: int) -> list[Passage]: ...


class DatabaseKnowledge:
    """Tenants' documents in the database (full-text search with ranking)."""

    def __init__(self, database: DatabaseHandle) -> None:
        self.database = database

    async def search(self, tenant_id: str, query: str, limit: int) -> list[Passage]:
        return await knowledge.search(self.database.get(), tenant_id, query, limit=limit)
