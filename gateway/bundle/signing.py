"""Detached OpenPGP signatures over the bundle, made with GnuPG and checked with ``gpgv``.

``SHA256SUMS`` inside an archive detects corruption, not tampering: whoever can change a file can
rewrite the sums too. So the build signs two things with the vendor's key: ``SHA256SUMS`` (as
``SHA256SUMS.sig``, which covers an unpacked folder, manifest included) and the archive itself
(``<archive>.sig`` beside it, checked before a single member is read or unpacked).

Why GnuPG: ``gpgv`` is on every Debian and Ubuntu host already (apt itself verifies with it), so
the Ansible role checks the signature on the target without carrying a tool in; ``gpgv`` trusts
exactly the keyring it is given, with no trust database. Verification keyrings are binary
(``gpg --export``); an ASCII-armored export is accepted here and de-armored first.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SIG_SUFFIX = ".sig"
SUMS_SIG_NAME = "SHA256SUMS.sig"
# Environment names the CLI reads when no option is given.
SIGN_KEY_ENV = "HOLDFAST_BUNDLE_SIGN_KEY"
SIGN_PASSPHRASE_ENV = "HOLDFAST_BUNDLE_SIGN_PASSPHRASE_FILE"
PUBLIC_KEY_ENV = "HOLDFAST_BUNDLE_PUBLIC_KEY"
_ARMOR_BEGIN = "-----BEGIN PGP "
_TIMEOUT = 120


class SigningError(Exception):
    """The bundle could not be signed (no key, GnuPG failed); the message is one line."""


class SignatureError(Exception):
    """A signature is missing, does not match, or was made by a key not in the keyring."""


def signature_path(signed: Path) -> Path:
    """Where the detached signature of ``signed`` lives: beside it, with ``.sig`` appended."""
    return signed.with_name(signed.name + SIG_SUFFIX)


def dearmor(data: bytes) -> bytes:
    """OpenPGP ASCII armor (RFC 4880 section 6.2) to binary; binary input comes back unchanged.

    ``gpgv`` reads binary keyrings only; operators often hand over ``gpg --armor --export``."""
    text = data.decode("ascii", errors="replace")
    if _ARMOR_BEGIN not in text:
        return data
    lines = text[text.index(_ARMOR_BEGIN) :].splitlines()
    body: list[str] = []
    in_headers = True
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("-----END PGP "):
            break
        if in_headers:
            if not stripped:
                in_headers = False
            elif ":" not in stripped:  # armor without headers: no blank separator line
                in_headers = False
                body.append(stripped)
            continue
        if not stripped.startswith("="):  # "=XXXX" is the CRC-24 line after the body
            body.append(stripped)
    else:
        raise SignatureError("the armored key has no END line")
    try:
        return base64.b64decode("".join(body), validate=True)
    except ValueError as exc:
        raise SignatureError(f"the armored key is not valid base64: {exc}") from exc


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line]
    return lines[-1].removeprefix("gpg: ").removeprefix("gpgv: ") if lines else "(no output)"


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs with one secret key read from a file (``gpg --armor --export-secret-keys``).

    The key is imported into a throw-away GnuPG home, so the builder's own keyrings are never
    read or changed, and the agent started for it is stopped afterwards."""

    key_file: Path
    passphrase_file: Path | None = None
    gpg: str = "gpg"

    def sign(self, files: Sequence[Path]) -> list[Path]:
        """Write ``<file>.sig`` beside each file; return the signature paths."""
        if not self.key_file.is_file():
            raise SigningError(f"signing key {self.key_file} not found")
        if self.passphrase_file is not None and not self.passphrase_file.is_file():
            raise SigningError(f"passphrase file {self.passphrase_file} not found")
        with tempfile.TemporaryDirectory(prefix="hf-gpg-") as home:
            env = {**os.environ, "GNUPGHOME": home}
            try:
                self._gpg(env, "import the signing key", "--import", str(self.key_file))
                secret = self._gpg(
                    env, "list the signing key", "--with-colons", "--list-secret-keys"
                )
                fingerprint = _first_fingerprint(secret)
                if fingerprint is None:
                    raise SigningError(f"{self.key_file} holds no secret key")
                passphrase = (
                    ["--passphrase-file", str(self.passphrase_file)]
                    if self.passphrase_file
                    else ["--passphrase", ""]
                )
                signatures = []
                for path in files:
                    sig = signature_path(path)
                    sig.unlink(missing_ok=True)
                    self._gpg(
                        env,
                        f"sign {path.name}",
                        "--pinentry-mode",
                        "loopback",
                        *passphrase,
                        "--local-user",
                        fingerprint,
                        "--detach-sign",
                        "--output",
                        str(sig),
                        str(path),
                    )
                    signatures.append(sig)
                return signatures
            finally:
                subprocess.run(
                    ["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False
                )

    def _gpg(self, env: dict[str, str], what: str, *args: str) -> str:
        argv = [self.gpg, "--batch", "--no-tty", "--quiet", *args]
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False
            )
        except FileNotFoundError as exc:
            raise SigningError(f"{self.gpg} not found (install gnupg)") from exc
        if done.returncode != 0:
            raise SigningError(f"cannot {what}: {_last_line(done)}")
        return done.stdout


def _first_fingerprint(colons: str) -> str | None:
    """The fingerprint of the first secret key in ``gpg --with-colons`` output."""
    seen_sec = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            seen_sec = True
        elif fields[0] == "fpr" and seen_sec and len(fields) > 9:
            return fields[9]
    return None


def verify_signature(signed: Path, public_key: Path, gpgv: str = "gpgv") -> str:
    """Check ``<signed>.sig`` against ``signed`` with only ``public_key`` trusted.

    Returns gpgv's "Good signature from ..." line; raises :class:`SignatureError` otherwise."""
    sig = signature_path(signed)
    if not sig.is_file():
        raise SignatureError(f"{sig.name} is missing: the bundle is not signed")
    if not public_key.is_file():
        raise SignatureError(f"public key {public_key} not found")
    with tempfile.TemporaryDirectory(prefix="hf-gpgv-") as home:
        keyring = Path(home) / "trusted.gpg"
        keyring.write_bytes(dearmor(public_key.read_bytes()))
        argv = [gpgv, "--homedir", home, "--keyring", str(keyring), str(sig), str(signed)]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False
            )
        except FileNotFoundError as exc:
            raise SignatureError(f"{gpgv} not found (install gpgv)") from exc
    if done.returncode != 0:
        return_reason = _last_line(done)
        raise SignatureError(f"bad signature on {signed.name}: {return_reason}")
    good = [line for line in done.stderr.splitlines() if "Good signature" in line]
    return good[0].removeprefix("gpgv: ") if good else "Good signature"
