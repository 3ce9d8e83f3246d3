"""A real OpenPGP key pair for signing test bundles, made with GnuPG in a throw-away home."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    secret: Path  # armored secret key: what `holdfast bundle build --sign-key` reads
    public: Path  # binary keyring (gpg --export): what gpgv and the Ansible role trust


def make_key_pair(folder: Path, name: str = "Holdfast test signer") -> KeyPair:
    """An unprotected ed25519 signing key (generated in milliseconds)."""
    home = folder / "gnupg"
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}

    def gpg(*args: str) -> bytes:
        done = subprocess.run(["gpg", "--batch", "--quiet", *args], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    try:
        gpg("--passphrase", "", "--quick-gen-key", f"{name} <signer@example.invalid>", "ed25519")
        secret, public = folder / "signing-key.asc", folder / "signing-key.gpg"
        secret.write_bytes(gpg("--armor", "--export-secret-keys"))
        public.write_bytes(gpg("--export"))
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    return KeyPair(secret, public)
