"""The to-do assistant: one user's request in, the assistant's answer out, through an OpenAI-compatible chat
model with function calling (OpenAI, SambaNova, any host speaking `/chat/completions` with `tools`).

    assistant = Assistant(todos, database, client, model, max_tool_rounds=5, memory_messages=40)
    reply = await assistant.respond(user_id, "add buy milk")   # Reply(text, todos_changed, todos)

A turn: the user's last messages (the memory, replayed as real chat messages with the assistant's tool calls
and their results) + the request → the model; while it asks for tools (at most `max_tool_rounds` rounds) they
run for this user and their results go back; then its words are the answer. The turn is stored in the memory,
which keeps the latest `memory_messages` and always starts at a user message, so a reconnect (or a phone call)
continues the same conversation. One turn per user at a time (per process).

A provider failure raises AssistantUnavailable (its message is an apology to show or say); tool changes made
before it stay, and so does the part of the turn that made them, so the model knows next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import openai

from ..db import assistant_memory
from ..db.todos import Todo
from ..errors import APIError
from .errors import APOLOGY, AssistantError, AssistantUnavailable
from .todos import DatabaseSource, TodoService
from .tools import TOOLS, TodoTools

log = logging.getLogger(__name__)

MAX_REQUEST_CHARS = 2000
UNCONFIGURED = "Sorry, the assistant is not set up on this server yet."
STORAGE_APOLOGY = "Sorry, I can't reach your list right now. Please try again in a moment."
ROUNDS_EXHAUSTED = "I've done what I could with that request for now."

INSTRUCTIONS = (
    "You are a friendly voice assistant that manages the user's to-do list. Use the tools to add, list, "
    "complete, delete and update to-dos; never claim a change you did not make with a tool. Refer to items by "
    "their titles. Keep due dates in the user's own words (for example 'tomorrow'). Your answers are spoken "
    "aloud: keep them short and conversational, with no lists, markdown or emoji. If a tool reports an error, "
    "tell the user plainly."
)


@dataclass(frozen=True)
class Reply:
    text: str
    todos_changed: bool
    todos: list[Todo]


class Assistant:
    def __init__(
        self,
        todos: TodoService,
        database: DatabaseSource,
        client: openai.AsyncOpenAI | None,
        model: str,
        *,
        max_tool_rounds: int = 5,
        memory_messages: int = 40,
        unconfigured: str = UNCONFIGURED,
    ) -> None:
        self.todos = todos
        self.tools = TodoTools(todos)
        self.database = database
        self.client = client
        self.model = model
        self.max_tool_rounds = max_tool_rounds
        self.memory_messages = memory_messages
        self.unconfigured = unconfigured
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    @property
    def configured(self) -> bool:
        return self.client is not None

    async def respond(self, user_id: str, text: str) -> Reply:
        """The assistant's answer to `text` from `user_id`.

        Raises AssistantUnavailable (no model configured, the model failed, storage unreachable) and
        AssistantError `empty_request` / `request_too_long` for a request that cannot be sent.
        """
        request = " ".join((text or "").split())
        if not request:
            raise AssistantError("empty_request", "Say or type what you would like me to do.", 400)
        if len(request) > MAX_REQUEST_CHARS:
            raise AssistantError("request_too_long", f"A request may be at most {MAX_REQUEST_CHARS} characters.", 413)
        if self.client is None:
            raise AssistantUnavailable(self.unconfigured, reason="no chat model configured")
        async with self._turn(user_id):
            try:
                return await self._respond(self.client, user_id, request)
            except AssistantError:
                raise
            except APIError as exc:  # the database (503 database_unavailable) and the like
                log.warning("assistant turn for %s failed: %s", user_id, exc.code)
                raise AssistantUnavailable(STORAGE_APOLOGY, reason=exc.code) from None

    async def history(self, user_id: str) -> list[dict[str, Any]]:
        """The remembered conversation, as chat messages, oldest first."""
        stored = await assistant_memory.recent_messages(self.database.get(), user_id, self.memory_messages)
        return [m.message for m in stored]

    async def forget(self, user_id: str) -> None:
        await assistant_memory.forget(self.database.get(), user_id)

    async def _respond(self, client: openai.AsyncOpenAI, user_id: str, request: str) -> Reply:
        turn: list[dict[str, Any]] = [{"role": "user", "content": request}]
        messages = [{"role": "system", "content": INSTRUCTIONS}, *await self.history(user_id), *turn]
        changed = False
        answer = ""
        try:
            for round_number in range(self.max_tool_rounds + 1):
                last = round_number == self.max_tool_rounds  # no more tools: the model must answer in words
                message = await self._complete(client, messages, last)
                calls = _tool_calls(message) if not last else []
                if not calls:
                    answer = (getattr(message, "content", None) or "").strip() or (
                        ROUNDS_EXHAUSTED if last else "Done."
                    )
                    break
                asked = {"role": "assistant", "content": getattr(message, "content", None), "tool_calls": calls}
                results = []
                for call in calls:
                    outcome = await self.tools.run(user_id, call["function"]["name"], call["function"]["arguments"])
                    changed = changed or outcome.changed
                    results.append({"role": "tool", "tool_call_id": call["id"], "content": outcome.content})
                # The call and all its results are added together: memory never holds one without the other.
                turn += [asked, *results]
                messages += [asked, *results]
        except AssistantUnavailable:
            if len(turn) > 1:  # tools already ran: remember that they did
                await self._remember(user_id, turn)
            raise
        turn.append({"role": "assistant", "content": answer})
        await self._remember(user_id, turn)
        return Reply(answer, changed, await self.todos.list(user_id))

    async def _complete(self, client: openai.AsyncOpenAI, messages: list[dict[str, Any]], last: bool) -> Any:
        try:
            completion = await client.chat.completions.create(
                model=self.model,
                messages=cast(Any, messages),  # plain dicts, as replayed from the memory
                tools=cast(Any, TOOLS),
                tool_choice="none" if last else "auto",
            )
        except openai.OpenAIError as exc:
            reason = _describe(exc)
            log.warning("assistant model %s failed: %s", self.model, reason)
            raise AssistantUnavailable(APOLOGY, reason=reason) from None
        if not completion.choices:
            raise AssistantUnavailable(APOLOGY, reason="the model returned no choices")
        return completion.choices[0].message

    async def _remember(self, user_id: str, turn: list[dict[str, Any]]) -> None:
        await assistant_memory.append_messages(self.database.get(), user_id, turn, self.memory_messages)

    @contextlib.asynccontextmanager
    async def _turn(self, user_id: str) -> AsyncIterator[None]:
        """One turn per user at a time; the lock is forgotten once nobody holds or waits for it."""
        lock, users = self._turns.get(user_id, (asyncio.Lock(), 0))
        self._turns[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[user_id]
            if users <= 1:
                del self._turns[user_id]
            else:
                self._turns[user_id] = (lock, users - 1)


def _tool_calls(message: Any) -> list[dict[str, Any]]:
    """The message's function calls as plain chat-message dicts (other kinds of tool call are ignored)."""
    calls = []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        if function is None or not getattr(call, "id", None):
            continue
        arguments = function.arguments if isinstance(function.arguments, str) else json.dumps(function.arguments)
        calls.append({"id": call.id, "type": "function", "function": {"name": function.name, "arguments": arguments}})
    return calls


def _describe(exc: openai.OpenAIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "could not connect"
    return type(exc).__name__
