"""A migrated database on both backends behind the TodoService, and the fake OpenAI server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from databases import Database

from fakes import FakeOpenAI, run_fake
from quart_app.assistant.agent import Assistant
from quart_app.assistant.todos import TodoService
from quart_app.db import users
from quart_app.db.users import User


class Connected:
    """What the services take (`.get() -> Database`), for a database the test already connected."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self) -> Database:
        return self.db


@pytest.fixture
def source(db: Database) -> Connected:
    return Connected(db)


@pytest.fixture
def service(source: Connected) -> TodoService:
    return TodoService(source)


@pytest.fixture
async def user(db: Database) -> User:
    return await users.create_user(db, email=None, name="Alice")


@pytest.fixture
async def other_user(db: Database) -> User:
    return await users.create_user(db, email=None, name="Bob")


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with run_fake(FakeOpenAI(speech_engine="tone")) as fake:
        yield fake


@pytest.fixture
async def client(openai_fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key=openai_fake.api_key, base_url=openai_fake.base_url + "/v1", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def assistant(service: TodoService, source: Connected, client: openai.AsyncOpenAI) -> Assistant:
    return Assistant(service, source, client, "gpt-4o-mini", max_tool_rounds=3, memory_messages=12)
