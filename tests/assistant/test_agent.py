"""The assistant against the fake OpenAI server (real HTTP, deterministic tool calls): requests become stored
changes, the conversation is remembered (bounded, valid for the API), tool rounds are bounded, and provider
failures become AssistantUnavailable without undoing what the tools did."""

from __future__ import annotations

import socket
from typing import Any

import openai
import pytest

from fakes import FakeOpenAI, run_fake
from quart_app.assistant.agent import UNCONFIGURED, Assistant
from quart_app.assistant.errors import APOLOGY, AssistantError, AssistantUnavailable
from quart_app.assistant.todos import TodoService
from quart_app.db import assistant_memory
from quart_app.db.todos import Todo
from quart_app.db.users import User

from .conftest import Connected


def _chat_requests(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests_to("/v1/chat/completions") if isinstance(r.json, dict)]


async def test_add_buy_milk_is_stored_and_reported(
    assistant: Assistant, service: TodoService, user: User, openai_fake: FakeOpenAI
) -> None:
    reply = await assistant.respond(user.id, "add buy milk")
    assert reply.todos_changed is True
    assert [t.title for t in reply.todos] == ["buy milk"]
    assert [t.title for t in await service.list(user.id)] == ["buy milk"]
    assert reply.text == "Added buy milk to your list."

    sent = _chat_requests(openai_fake)
    assert len(sent) == 2  # tool call, then the answer after its result
    assert sent[0]["model"] == "gpt-4o-mini" and sent[0]["messages"][0]["role"] == "system"
    assert {t["function"]["name"] for t in sent[0]["tools"]} >= {"add_todo", "list_todos"}
    assert sent[1]["messages"][-1]["role"] == "tool"


async def test_whats_on_my_list_reads_the_users_list_without_changing_it(
    assistant: Assistant, service: TodoService, user: User, other_user: User
) -> None:
    await service.add(user.id, "buy milk")
    await service.add(user.id, "call mom", due_date="friday")
    await service.add(other_user.id, "bob's secret")
    reply = await assistant.respond(user.id, "what's on my list?")
    assert reply.todos_changed is False
    assert reply.text == "You have 2 items: buy milk, call mom."
    assert [t.title for t in reply.todos] == ["buy milk", "call mom"]


async def test_a_conversation_of_several_requests(assistant: Assistant, service: TodoService, user: User) -> None:
    await assistant.respond(user.id, "add buy milk and then remind me to call mom tomorrow, high priority")
    todos = {t.title: t for t in await service.list(user.id)}
    assert set(todos) == {"buy milk", "call mom"}
    assert todos["call mom"].due_date == "tomorrow" and todos["call mom"].priority == "high"

    reply = await assistant.respond(user.id, "mark milk done")
    # "milk" is not a title: the tool says so and the assistant relays it; nothing changes.
    assert reply.todos_changed is False and "couldn't" in reply.text
    reply = await assistant.respond(user.id, "mark buy milk done")
    assert reply.todos_changed is True and reply.text == "Marked buy milk as done."
    assert [t.done for t in reply.todos if t.title == "buy milk"] == [True]
    reply = await assistant.respond(user.id, "delete call mom")
    assert [t.title for t in reply.todos] == ["buy milk"]


async def test_memory_is_persisted_replayed_after_a_restart_and_bounded(
    service: TodoService, source: Connected, client: openai.AsyncOpenAI, user: User, openai_fake: FakeOpenAI
) -> None:
    first = Assistant(service, source, client, "gpt-4o-mini", memory_messages=8)
    await first.respond(user.id, "add buy milk")
    await first.respond(user.id, "hello there")

    # A new process (a reconnect, a phone call) continues the same conversation.
    second = Assistant(service, source, client, "gpt-4o-mini", memory_messages=8)
    openai_fake.reset()
    await second.respond(user.id, "what's on my list")
    replayed = _chat_requests(openai_fake)[0]["messages"]
    assert [m["role"] for m in replayed] == [
        "system",
        "user",  # add buy milk
        "assistant",  # its tool call...
        "tool",  # ...and result
        "assistant",
        "user",  # hello there
        "assistant",
        "user",  # what's on my list
    ]
    assert replayed[2]["tool_calls"][0]["function"]["name"] == "add_todo"
    assert replayed[3]["tool_call_id"] == replayed[2]["tool_calls"][0]["id"]

    # Bounded: never more than 8 stored, always starting at a user message (the fake refuses orphaned tools).
    for request in ["add bread", "hello again", "what's on my list", "add eggs"]:
        await second.respond(user.id, request)
        stored = await assistant_memory.recent_messages(source.get(), user.id, 100)
        assert len(stored) <= 8 and stored[0].role == "user"
    assert await assistant_memory.count_messages(source.get(), user.id) <= 8
    history = await second.history(user.id)
    assert history[-1] == {"role": "assistant", "content": "Added eggs to your list."}


class _CompulsiveModel(FakeOpenAI):
    """A model that asks for list_todos on every request it may call tools on."""

    def plan_tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if body.get("tool_choice") == "none":
            return []
        return [
            {
                "id": f"call_{len(self.requests)}",
                "type": "function",
                "function": {"name": "list_todos", "arguments": "{}"},
            }
        ]


async def test_tool_rounds_per_turn_are_bounded(service: TodoService, source: Connected, user: User) -> None:
    async with run_fake(_CompulsiveModel()) as fake:
        client = openai.AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url + "/v1", max_retries=0)
        try:
            assistant = Assistant(service, source, client, "gpt-4o-mini", max_tool_rounds=3)
            reply = await assistant.respond(user.id, "what's on my list")
            sent = _chat_requests(fake)
            assert len(sent) == 4  # three rounds of tools, then one answer that may not call any
            assert [r.get("tool_choice") for r in sent] == ["auto", "auto", "auto", "none"]
            assert [m["role"] for m in sent[-1]["messages"]].count("tool") == 3
            assert reply.text == "Your list is empty."
            # What was remembered is a valid conversation: the next turn is accepted by the API's checks.
            await assistant.respond(user.id, "hello")
            assert fake.requests_to("/v1/chat/completions")[-1].status == 200
        finally:
            await client.close()


async def test_a_provider_failure_mid_turn_keeps_the_applied_change(
    assistant: Assistant, service: TodoService, source: Connected, user: User, openai_fake: FakeOpenAI
) -> None:
    async def break_the_model(user_id: str, todos: list[Todo]) -> None:
        openai_fake.fail_next(500, path="/v1/chat/completions")  # the request after the tool result fails

    service.subscribe(break_the_model)
    with pytest.raises(AssistantUnavailable) as info:
        await assistant.respond(user.id, "add buy milk")
    service.unsubscribe(break_the_model)
    assert info.value.code == "assistant_unavailable" and info.value.message == APOLOGY
    assert "500" in info.value.reason
    assert [t.title for t in await service.list(user.id)] == ["buy milk"]  # the change stays
    # ...and so does the part of the turn that made it, so the conversation goes on validly.
    roles = [m.role for m in await assistant_memory.recent_messages(source.get(), user.id, 50)]
    assert roles == ["user", "assistant", "tool"]
    reply = await assistant.respond(user.id, "what's on my list")
    assert reply.text == "You have 1 item: buy milk."


async def test_a_failure_before_any_tool_stores_nothing(
    assistant: Assistant, source: Connected, user: User, openai_fake: FakeOpenAI
) -> None:
    openai_fake.fail_next(429, path="/v1/chat/completions")
    with pytest.raises(AssistantUnavailable):
        await assistant.respond(user.id, "add buy milk")
    assert await assistant_memory.count_messages(source.get(), user.id) == 0


async def test_an_unreachable_model_is_unavailable(service: TodoService, source: Connected, user: User) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    try:
        with pytest.raises(AssistantUnavailable) as info:
            await Assistant(service, source, client, "gpt-4o-mini").respond(user.id, "add buy milk")
        assert info.value.reason == "could not connect"
    finally:
        await client.close()
    assert await service.list(user.id) == []


async def test_unconfigured_and_unusable_requests(service: TodoService, source: Connected, user: User) -> None:
    unconfigured = Assistant(service, source, None, "gpt-4o-mini")
    with pytest.raises(AssistantUnavailable) as info:
        await unconfigured.respond(user.id, "add buy milk")
    assert info.value.message == UNCONFIGURED and not unconfigured.configured
    with pytest.raises(AssistantError) as empty:
        await unconfigured.respond(user.id, "   ")
    assert empty.value.code == "empty_request"
    with pytest.raises(AssistantError) as long:
        await unconfigured.respond(user.id, "x" * 2001)
    assert long.value.code == "request_too_long"
