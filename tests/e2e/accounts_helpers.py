"""Shared by the account tests: people signing up, signing in and following mailed links over HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlmodel import select

from store.db import session_scope
from store.models import User
from tests.harness import RunningStack

PASSWORD = "correct horse battery staple"
_addresses = iter(f"203.0.113.{n}" for n in range(1, 255))


def own_address() -> str:
    """Each test signs in from its own client address (X-Forwarded-For, trusted from 127.0.0.1)."""
    return next(_addresses)


def browser_like(stack: RunningStack, address: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=stack.api_url, headers={"X-Forwarded-For": address or own_address()}, timeout=30
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match[1]


def new_email(what: str = "person") -> str:
    return f"{what}-{uuid.uuid4().hex[:8]}@test.workproof.dev"


def link_in(text: str, path: str) -> str:
    match = re.search(r"https?://[^\s<>\"']*" + re.escape(path) + r"[^\s<>\"']+", text)
    assert match, f"no {path} link in {text!r}"
    return match[0]


def local(link: str) -> str:
    """The path of a mailed link (the client has the base URL)."""
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def sign_up(
    stack: RunningStack, email: str, password: str = PASSWORD, name: str = "Ana Client"
) -> httpx.Response:
    with browser_like(stack) as http:
        form = http.get("/signup")
        return http.post(
            "/signup", data={"email": email, "name": name, "password": password, "csrf": csrf_of(form.text)}
        )


def confirmed_client(stack: RunningStack, email: str | None = None, password: str = PASSWORD) -> str:
    """A client who signed up and followed the confirmation link; their email."""
    email = email or new_email("client")
    assert sign_up(stack, email, password).status_code == 200
    link = link_in(stack.wait_mail(email, "Confirm").text, "/verify/")
    with browser_like(stack) as http:
        assert http.get(local(link)).status_code == 200
    return email


@contextmanager
def signed_in(stack: RunningStack, email: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """An HTTP client with a web session from a password sign-in."""
    http = signed_in_client(stack, email, password)
    try:
        yield http
    finally:
        http.close()


def signed_in_client(stack: RunningStack, email: str, password: str = PASSWORD) -> httpx.Client:
    """A client with a web session from a password sign-in (the caller closes it)."""
    http = browser_like(stack)
    form = http.get("/login")
    answer = http.post("/login", data={"email": email, "password": password, "csrf": csrf_of(form.text)})
    assert answer.status_code == 303, answer.text
    return http


def user_id_of(stack: RunningStack, email: str) -> str:
    with session_scope(stack.database_url) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        return str(user.id)
