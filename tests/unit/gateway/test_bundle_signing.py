"""Pure parts of bundle signing: de-armoring a public key, picking the signing key's
fingerprint from gpg's colon listing, and verify leaving the signature file out of "unexpected"."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.bundle.signing import (
    SUMS_SIG_NAME,
    SignatureError,
    _first_fingerprint,
    dearmor,
    signature_path,
)
from gateway.bundle.verify import verify
from tests.unit.gateway.test_bundle_verify import make_bundle, pack

pytestmark = pytest.mark.unit

KEY = bytes(range(200))


def armor(data: bytes, headers: str = "Comment: test key\n") -> bytes:
    body = base64.b64encode(data).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    text = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
        f"{headers}\n{lines}\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    return text.encode()


@pytest.mark.parametrize("headers", ["Comment: test key\nVersion: 1\n", ""])
def test_an_armored_key_becomes_the_binary_keyring_gpgv_reads(headers: str) -> None:
    assert dearmor(armor(KEY, headers)) == KEY


def test_a_binary_key_passes_through_unchanged() -> None:
    assert dearmor(KEY) == KEY


def test_a_truncated_armored_key_is_refused() -> None:
    cut = armor(KEY).split(b"-----END")[0]
    with pytest.raises(SignatureError, match="no END line"):
        dearmor(cut)


def test_the_signing_fingerprint_is_the_secret_keys_own_not_a_subkeys() -> None:
    listing = (
        "sec:u:255:22:81EBFA65C8BE9C4F:1:::u:::scESC:::+:::ed25519:::0:\n"
        "fpr:::::::::36E40298E8E83332E2B39CEF81EBFA65C8BE9C4F:\n"
        "grp:::::::::ABC:\n"
        "ssb:u:255:18:1111:1::::::e:::+:::cv25519::\n"
        "fpr:::::::::2222222222222222222222222222222222222222:\n"
    )
    assert _first_fingerprint(listing) == "36E40298E8E83332E2B39CEF81EBFA65C8BE9C4F"
    assert _first_fingerprint("pub:u:255:22:X:1:::\nfpr:::::::::AAAA:\n") is None


def test_the_signature_sits_beside_what_it_signs() -> None:
    assert signature_path(Path("/b/holdfast-bundle-1.tar")) == Path("/b/holdfast-bundle-1.tar.sig")


def test_the_sums_signature_is_not_reported_as_an_unexpected_file(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path)
    (folder / SUMS_SIG_NAME).write_bytes(b"signature bytes")
    for target in (folder, pack(folder)):
        assert verify(target).ok
    (folder / "SHA256SUMS.asc").write_bytes(b"another file")
    assert [p.path for p in verify(folder).problems] == ["SHA256SUMS.asc"]
