"""Auth0 identities and local accounts: an e-mail claim counts only when Auth0 says it is verified.

An unverified `email` claim is anyone's to write (a sign-up form, a social connection that does not
check), so it must neither reach an existing account nor be stored, where it would squat the address for
PIN sign-in and for `init_db.py create-admin --promote`. In-process app with the fake Auth0 tenant, on
both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fakes import FakeAuth0
from fakes.server import FakeServerThread
from quart_app.db import users
from tests.support.users import make_user, unique_email


@pytest.fixture(scope="module")
def auth0() -> Iterator[FakeAuth0]:
    fake = FakeAuth0(domain="tenant.linking.local", audience="https://api.linking.local")
    with FakeServerThread(fake):
        yield fake


def auth0_env(auth0: FakeAuth0) -> dict[str, str]:
    return {"AUTH0_DOMAIN": auth0.domain, "AUTH0_AUDIENCE": auth0.audience, "AUTH0_BASE_URL": auth0.base_url}


async def me(client: Any, token: str) -> dict[str, Any]:
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, await response.get_json()
    return dict((await response.get_json())["user"])


async def test_unverified_email_neither_links_nor_is_stored(make_app, backend_env, auth0: FakeAuth0) -> None:
    async with make_app(**backend_env, **auth0_env(auth0)) as (app, client):
        victim, _ = await make_user(app, role="admin", email=unique_email("victim"))
        for verified in (False, None, "true"):  # absent, false, or not the JSON boolean true
            claims = {"email": victim.email.upper(), "email_verified": verified}
            attacker = await me(client, auth0.mint(sub=f"auth0|squatter-{verified}", claims=claims))
            assert attacker["id"] != victim.id and attacker["role"] == "user"
            assert attacker["email"] is None

        # Nor is an unverified address stored for a new user: it would squat it for the real owner.
        claimed = unique_email("unclaimed")
        newcomer = await me(client, auth0.mint(sub="auth0|newcomer", claims={"email": claimed}))
        assert newcomer["email"] is None
        assert await users.get_user_by_email(app.extensions["resources"].db(), claimed) is None


async def test_verified_email_links_to_the_account_once(make_app, backend_env, auth0: FakeAuth0) -> None:
    async with make_app(**backend_env, **auth0_env(auth0)) as (app, client):
        owner, key = await make_user(app, email=unique_email("owner"))
        claims = {"email": owner.email, "email_verified": True}
        linked = await me(client, auth0.mint(sub="auth0|owner", claims=claims))
        assert linked["id"] == owner.id
        stored = await users.get_user(app.extensions["resources"].db(), owner.id)
        assert stored is not None and stored.auth0_sub == "auth0|owner"
        assert (await me(client, auth0.mint(sub="auth0|owner")))["id"] == owner.id  # found by sub from now on

        # A second identity with the same verified address does not take the account over.
        other = await me(client, auth0.mint(sub="auth0|other", claims=claims))
        assert other["id"] != owner.id and other["email"] is None
        # A brand-new verified address is stored.
        fresh = unique_email("fresh")
        created = await me(client, auth0.mint(sub="auth0|fresh", claims={"email": fresh, "email_verified": True}))
        assert created["email"] == fresh
