# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Signing the manifest: the ``.cert`` member (docs/formats.md, OVA).

``SHA256(<name>.mf)= <hex RSA signature over the .mf>`` followed by the
signer's PEM certificate. Uses the ``cryptography`` package when the host has
it, else the ``openssl`` command; the engine itself stays standard library.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from typing import Optional

from ..errors import OvatoolError
from .manifest import ALGORITHMS


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(1024 * 1024)
    except OSError as exc:
        raise OvatoolError(f"cannot read the {what}: {exc.strerror}", path) from None


def _signature(data: bytes, key_pem: bytes, passphrase: Optional[str], algorithm: str, key_path: str) -> bytes:
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        return _openssl_signature(data, key_path, passphrase, algorithm)
    try:
        key = serialization.load_pem_private_key(key_pem, password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        raise OvatoolError(f"cannot load the private key (wrong passphrase or not PEM?): {exc}", key_path) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise OvatoolError("OVF signatures need an RSA private key", key_path)
    return key.sign(data, padding.PKCS1v15(), getattr(hashes, algorithm.upper())())


def _openssl_signature(data: bytes, key_path: str, passphrase: Optional[str], algorithm: str) -> bytes:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OvatoolError("signing needs the cryptography Python package or the openssl command on this host")
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "manifest")
        with open(source, "wb") as handle:
            handle.write(data)
        argv = [openssl, "dgst", f"-{algorithm}", "-sign", key_path]
        env = dict(os.environ)
        if passphrase:
            env["OVATOOL_KEY_PASSPHRASE"] = passphrase
            argv += ["-passin", "env:OVATOOL_KEY_PASSPHRASE"]
        done = subprocess.run(argv + [source], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, check=False)
    if done.returncode != 0:
        raise OvatoolError(f"openssl could not sign: {done.stderr.decode(errors='replace').strip()[:200]}", key_path)
    return done.stdout


class Signer:
    """Loads the key and certificate once; ``cert_bytes`` has a size known before the manifest."""

    def __init__(self, private_key: str, certificate: str, passphrase: Optional[str], algorithm: str) -> None:
        self.key_path = private_key
        self.key_pem = _read(private_key, "private key")
        cert = _read(certificate, "certificate")
        match = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", cert, re.S)
        if not match:
            raise OvatoolError("no PEM certificate in the file", certificate)
        self.certificate = match.group(0) + b"\n"
        self.passphrase = passphrase
        self.algorithm = algorithm

    def cert_bytes(self, mf_name: str, manifest: bytes) -> bytes:
        signature = _signature(manifest, self.key_pem, self.passphrase, self.algorithm, self.key_path)
        line = f"{ALGORITHMS[self.algorithm]}({mf_name})= {signature.hex()}\n".encode()
        return line + self.certificate
