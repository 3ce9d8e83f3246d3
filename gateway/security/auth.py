"""Who is calling: an API key from the key store, or a JWT from the customer's identity provider.

API keys start with ``hf_``; anything shaped like a JWT is verified against the configured JWKS
(a local file, or an on-prem URL fetched with a timeout), with issuer and audience checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jwt

from gateway.security.keys import KEY_PREFIX, ROLES, KeyStore, Principal
from gateway.settings import JwtSettings
from services.errors import AuthenticationError, ConfigError


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return []


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path, e.g. ``realm_access.roles`` (Keycloak's shape)."""
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        if not settings.jwks_file and not settings.jwks_url:
            raise ConfigError("auth.jwt.enabled needs jwks_file or jwks_url")
        self._settings = settings
        self._jwks: jwt.PyJWKSet | None = None
        self._client: jwt.PyJWKClient | None = None

    def _signing_key(self, token: str) -> Any:
        s = self._settings
        if s.jwks_file is not None:
            if self._jwks is None:
                self._jwks = jwt.PyJWKSet.from_dict(json.loads(s.jwks_file.read_text()))
            kid = jwt.get_unverified_header(token).get("kid")
            for key in self._jwks.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise AuthenticationError("the token's signing key is not in the JWKS")
        if self._client is None:
            assert s.jwks_url is not None
            self._client = jwt.PyJWKClient(s.jwks_url, timeout=int(max(1, s.fetch_timeout_s)))
        return self._client.get_signing_key_from_jwt(token).key

    def verify(self, token: str) -> Principal:
        s = self._settings
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=s.algorithms,
                issuer=s.issuer,
                audience=s.audience,
                options={"require": ["exp", "iat"], "verify_aud": s.audience is not None},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthenticationError("the identity provider's keys could not be fetched") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid token: {type(exc).__name__}") from exc
        name = str(_claim(claims, s.name_claim) or claims.get("sub") or "")
        roles = {r for r in _as_list(_claim(claims, s.roles_claim)) if r in ROLES}
        return Principal(
            name=name,
            groups=tuple(sorted(set(_as_list(_claim(claims, s.groups_claim))))),
            roles=frozenset(roles or set(s.default_roles)),
            key_id=f"jwt:{claims.get('sub', name)}",
        )


class Authenticator:
    def __init__(self, keys: KeyStore, jwt_verifier: JwtVerifier | None) -> None:
        self._keys = keys
        self._jwt = jwt_verifier

    def authenticate(self, token: str) -> Principal:
        if token.startswith(KEY_PREFIX):
            principal = self._keys.authenticate(token)
            if principal is None:
                raise AuthenticationError("the API key is unknown or revoked")
            return principal
        if self._jwt is not None and token.count(".") == 2:
            return self._jwt.verify(token)
        raise AuthenticationError("the bearer token is neither an API key nor an accepted JWT")
