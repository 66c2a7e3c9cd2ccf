"""Who is calling: bearer JWTs (HS256, key from settings) carrying a user and roles.

Roles: ``intake`` (submits documents), ``approver`` (service done, approval, refusal,
interruption), ``accountant`` (payments), ``auditor`` (reads the audit log), ``admin``
(reference data, and every role). The user's name becomes the ``actor`` of the events it causes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Callable

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import Settings

ROLES = ("intake", "approver", "accountant", "auditor", "admin")
ALGORITHM = "HS256"


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


def issue_token(settings: Settings, user: str, roles: list[str], now: datetime,
                lifetime: timedelta = timedelta(hours=8)) -> str:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    claims = {"sub": user, "roles": sorted(set(roles)), "iss": settings.jwt_issuer,
              "aud": settings.jwt_audience, "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def bearer_header(settings: Settings, user: str, roles: list[str]) -> dict[str, str]:
    """The Authorization header of a client acting as ``user``. Tokens live in real time (the
    services check their expiry against it), whatever business clock a deployment runs on."""
    return {"authorization": f"Bearer {issue_token(settings, user, roles, datetime.now(UTC))}"}


def decode_token(settings: Settings, token: str) -> User:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM],
                            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                            options={"require": ["sub", "exp", "roles"]})
    except jwt.ExpiredSignatureError:
        raise HTTPException(401, "the token has expired; ask for a new one",
                            headers={"WWW-Authenticate": "Bearer"}) from None
    except jwt.InvalidTokenError as exc:
        raise HTTPException(401, f"the token is not valid: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise HTTPException(401, "the token's roles claim must be a list of role names")
    return User(name=str(claims["sub"]), roles=frozenset(roles))


_bearer = HTTPBearer(auto_error=False)


def current_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> User:
    if credentials is None:
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer <JWT>)",
                            headers={"WWW-Authenticate": "Bearer"})
    return decode_token(request.app.state.runtime.settings, credentials.credentials)


def require(*roles: str) -> Callable[..., User]:
    """A FastAPI dependency admitting users holding one of ``roles`` (admin holds them all)."""

    def check(user: User = Depends(current_user)) -> User:
        if not any(user.has(role) for role in roles):
            raise HTTPException(403, f"{user.name} lacks the role {' or '.join(roles)} for this action")
        return user

    return check
