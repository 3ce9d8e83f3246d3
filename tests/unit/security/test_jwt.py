"""JWT trust: issuer and audience are required, roles come only from Holdfast's own claim or the
group mapping, the algorithm is pinned per key, and unknown ``kid`` values cannot make the
gateway fetch the JWKS once per request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from gateway.security.auth import JwtVerifier
from gateway.settings import JwtSettings
from services.errors import AuthenticationError, ConfigError

pytestmark = pytest.mark.unit

ISSUER, AUDIENCE = "https://idp.internal/realms/corp", "holdfast"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwk(private: Any, kid: str, alg: str | None) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else None
    public = private.public_key()
    raw = (algorithm or jwt.algorithms.ECAlgorithm).to_jwk(public, as_dict=True)
    return {**raw, "kid": kid, "use": "sig", **({"alg": alg} if alg else {})}


def _token(private: Any = RSA_KEY, alg: str = "RS256", kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 300}
    return jwt.encode({**body, **claims}, private, algorithm=alg, headers={"kid": kid})


def _settings(jwks: Path | str, **extra: Any) -> JwtSettings:
    source = {"jwks_url": jwks} if isinstance(jwks, str) else {"jwks_file": jwks}
    return JwtSettings(enabled=True, issuer=ISSUER, audience=AUDIENCE, **source, **extra)


def _jwks_file(tmp_path: Path, *keys: dict[str, Any]) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": list(keys)}))
    return path


# -- issuer and audience ----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["issuer", "audience"])
def test_enabled_without_issuer_or_audience_refuses_to_start(tmp_path: Path, missing: str) -> None:
    fields: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, missing: None}
    with pytest.raises(ValidationError, match="needs both issuer and audience"):
        JwtSettings(enabled=True, jwks_file=tmp_path / "jwks.json", **fields)


def test_the_verifier_itself_refuses_settings_without_an_audience(tmp_path: Path) -> None:
    incomplete = JwtSettings.model_construct(
        enabled=True, jwks_file=tmp_path / "j.json", issuer=ISSUER, audience=None
    )
    with pytest.raises(ConfigError, match="issuer and audience"):
        JwtVerifier(incomplete)


def test_none_is_never_a_configurable_algorithm() -> None:
    with pytest.raises(ValidationError, match="none"):
        JwtSettings(algorithms=["RS256", "none"])


# -- roles --------------------------------------------------------------------------------------


@pytest.fixture
def verifier(tmp_path: Path) -> JwtVerifier:
    return JwtVerifier(_settings(_jwks_file(tmp_path, _jwk(RSA_KEY, "k1", "RS256"))))


def test_a_generic_roles_claim_grants_no_holdfast_role(verifier: JwtVerifier) -> None:
    principal = verifier.verify(_token(roles=["admin", "ingest"], groups=["eng"]))
    assert principal.roles == frozenset({"query"})  # the default, nothing from `roles`
    assert principal.groups == ("eng",)


def test_roles_come_from_the_holdfast_claim(verifier: JwtVerifier) -> None:
    principal = verifier.verify(_token(holdfast_roles=["ingest", "superuser"]))
    assert principal.roles == frozenset({"ingest"})


def test_idp_groups_map_to_holdfast_roles(tmp_path: Path) -> None:
    jwks = _jwks_file(tmp_path, _jwk(RSA_KEY, "k1", "RS256"))
    verifier = JwtVerifier(_settings(jwks, role_mapping={"idp-admins": ["admin"]}))
    principal = verifier.verify(_token(groups=["idp-admins", "eng"]))
    assert principal.roles == frozenset({"admin"})


def test_a_mapping_to_an_unknown_role_refuses_to_start(tmp_path: Path) -> None:
    jwks = _jwks_file(tmp_path, _jwk(RSA_KEY, "k1", "RS256"))
    with pytest.raises(ConfigError, match="unknown roles"):
        JwtVerifier(_settings(jwks, role_mapping={"idp-admins": ["root"]}))


def test_a_token_for_another_audience_is_refused(verifier: JwtVerifier) -> None:
    with pytest.raises(AuthenticationError):
        verifier.verify(_token(aud="wiki"))


# -- algorithm pinning --------------------------------------------------------------------------


def test_a_header_alg_other_than_the_keys_own_is_refused(tmp_path: Path) -> None:
    jwks = _jwks_file(tmp_path, _jwk(RSA_KEY, "k1", "RS256"))
    verifier = JwtVerifier(_settings(jwks, algorithms=["RS256", "PS256"]))
    assert verifier.verify(_token(alg="RS256")).name == "u1"
    with pytest.raises(AuthenticationError):
        verifier.verify(_token(alg="PS256"))  # same private key, but not the key's alg


def test_a_key_without_alg_takes_the_configured_ones_its_type_can_verify(tmp_path: Path) -> None:
    jwks = _jwks_file(tmp_path, _jwk(RSA_KEY, "r", None), _jwk(EC_KEY, "e", None))
    verifier = JwtVerifier(_settings(jwks, algorithms=["PS256", "ES256"]))
    assert verifier.verify(_token(alg="PS256", kid="r")).name == "u1"
    assert verifier.verify(_token(EC_KEY, alg="ES256", kid="e")).name == "u1"
    with pytest.raises(AuthenticationError):
        verifier.verify(_token(alg="RS256", kid="r"))  # not configured
    with pytest.raises(AuthenticationError):
        verifier.verify(_token(EC_KEY, alg="ES256", kid="r"))  # an EC alg on the RSA key


def test_hs256_signed_with_the_public_key_and_alg_none_are_refused(tmp_path: Path) -> None:
    public = _jwk(RSA_KEY, "k1", None)
    verifier = JwtVerifier(_settings(_jwks_file(tmp_path, public), algorithms=["RS256", "HS256"]))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60}
    forged = jwt.encode(claims, public["n"].encode(), "HS256", headers={"kid": "k1"})
    unsigned = jwt.encode(claims, None, "none", headers={"kid": "k1"})
    for token in (forged, unsigned):
        with pytest.raises(AuthenticationError):
            verifier.verify(token)


# -- JWKS refetch -------------------------------------------------------------------------------


class _Idp:
    """A JWKS endpoint on loopback that counts its fetches."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.fetches = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.fetches += 1
                body = json.dumps({"keys": idp.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def idp() -> Iterator[_Idp]:
    server = _Idp([_jwk(RSA_KEY, "k1", "RS256")])
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_unknown_kids_trigger_at_most_one_jwks_fetch_per_interval(idp: _Idp) -> None:
    verifier = JwtVerifier(_settings(idp.url, jwks_refetch_interval_s=60))
    assert verifier.verify(_token()).name == "u1"
    assert idp.fetches == 1
    for i in range(20):
        with pytest.raises(AuthenticationError):
            verifier.verify(_token(kid=f"made-up-{i}"))
    assert idp.fetches <= 2  # the first unknown kid may refetch; the other 19 may not
    assert verifier.verify(_token()).name == "u1"  # the known key still works


def test_a_rotated_key_is_found_by_one_refetch(idp: _Idp) -> None:
    verifier = JwtVerifier(_settings(idp.url, jwks_refetch_interval_s=0))
    assert verifier.verify(_token()).name == "u1"
    idp.keys = [_jwk(EC_KEY, "k2", "ES256")]  # the provider rotated its signing key
    assert verifier.verify(_token(EC_KEY, alg="ES256", kid="k2")).name == "u1"
    assert idp.fetches == 2
