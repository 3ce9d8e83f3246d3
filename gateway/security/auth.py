"""Who is calling: an API key from the key store, or a JWT from the customer's identity provider.

API keys start with ``hf_``; anything shaped like a JWT is verified against the configured JWKS
(a local file, or an on-prem URL fetched with a timeout; see ``jwks``), with issuer and audience
both required. Roles come only from Holdfast's own claim and the configured group mapping: a
generic ``roles`` claim another application of the same identity provider reads grants nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from gateway.security.jwks import JwksKeys, file_source, url_source
from gateway.security.keys import KEY_PREFIX, ROLES, ApiKeys, Principal
from gateway.security.principal_cache import PrincipalCache
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
    """Verifies a token's signature with its pinned key, then ``iss``, ``aud``, ``exp``; the
    roles come from Holdfast's own claim and the configured mapping of IdP groups."""

    def __init__(self, settings: JwtSettings, keys: JwksKeys | None = None) -> None:
        if not settings.issuer or not settings.audience:
            raise ConfigError("auth.jwt.enabled needs both issuer and audience")
        unknown = {r for roles in settings.role_mapping.values() for r in roles} - ROLES
        if unknown:
            raise ConfigError(f"auth.jwt.role_mapping names unknown roles: {sorted(unknown)}")
        self._settings = settings
        self._keys = keys or _keys_of(settings)

    def verify(self, token: str) -> Principal:
        s = self._settings
        try:
            key = self._keys.key_for(jwt.get_unverified_header(token))
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                issuer=s.issuer,
                audience=s.audience,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid token: {type(exc).__name__}") from exc
        name = str(_claim(claims, s.name_claim) or claims.get("sub") or "")
        idp_groups = _as_list(_claim(claims, s.groups_claim))
        roles = set(_as_list(_claim(claims, s.roles_claim)))
        for group in idp_groups:
            roles.update(s.role_mapping.get(group, ()))
        roles &= ROLES
        return Principal(
            name=name,
            groups=tuple(sorted(set(idp_groups))),
            roles=frozenset(roles or set(s.default_roles)),
            key_id=f"jwt:{claims.get('sub', name)}",
        )


def _keys_of(settings: JwtSettings) -> JwksKeys:
    if settings.jwks_file is not None:
        load = file_source(settings.jwks_file)
    elif settings.jwks_url:
        load = url_source(settings.jwks_url, settings.fetch_timeout_s)
    else:
        raise ConfigError("auth.jwt.enabled needs jwks_file or jwks_url")
    return JwksKeys(load, settings.algorithms, refetch_interval_s=settings.jwks_refetch_interval_s)


class Authenticator:
    def __init__(
        self,
        keys: ApiKeys,
        jwt_verifier: JwtVerifier | None,
        cache: PrincipalCache | None = None,
    ) -> None:
        self._keys = keys
        self._jwt = jwt_verifier
        self._cache = cache
        self._lookup = cache.authenticate if cache is not None else keys.authenticate

    def remembered(self, token: str) -> Principal | None:
        """The principal of a recently verified API key, without I/O; None otherwise."""
        if self._cache is None or not token.startswith(KEY_PREFIX):
            return None
        return self._cache.peek(token)

    def authenticate(self, token: str) -> Principal:
        if token.startswith(KEY_PREFIX):
            principal = self._lookup(token)
            if principal is None:
                raise AuthenticationError("the API key is unknown or revoked")
            return principal
        if self._jwt is not None and token.count(".") == 2:
            return self._jwt.verify(token)
        raise AuthenticationError("the bearer token is neither an API key nor an accepted JWT")
