"""Each fake served on a free loopback port for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes import FakeAuth0, FakeDeepgram, FakeDeepSeek, FakeOpenAI, FakeTwilio, run_fake, sine_wav


@pytest.fixture(scope="session")
def wav() -> bytes:
    """Half a second of 16 kHz mono tone."""
    return sine_wav(0.5)


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with run_fake(FakeOpenAI()) as fake:
        yield fake


@pytest.fixture
async def deepseek_fake() -> AsyncIterator[FakeDeepSeek]:
    async with run_fake(FakeDeepSeek()) as fake:
        yield fake


@pytest.fixture
async def deepgram_fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as fake:
        yield fake


@pytest.fixture(scope="session")
def auth0_state() -> FakeAuth0:
    """RSA key generation is the slow part, so one tenant is shared; tests must not rotate it."""
    return FakeAuth0(domain="tenant.example.auth0.com", audience="https://api.voice.test")


@pytest.fixture
async def auth0_fake(auth0_state: FakeAuth0) -> AsyncIterator[FakeAuth0]:
    auth0_state.reset()
    async with run_fake(auth0_state) as fake:
        yield fake


@pytest.fixture
async def twilio_fake() -> AsyncIterator[FakeTwilio]:
    async with run_fake(FakeTwilio()) as fake:
        yield fake
