"""Signed C2PA Content Credentials for the images Inlayer writes, on request.

A C2PA manifest, signed and embedded in the file, says which tool made the image and how
(`c2pa.created`, and for inpaint, img2img and fill also `c2pa.edited`, each with the mode's IPTC
digital source type).
Anyone can check it with a C2PA reader (contentcredentials.org/verify, `c2patool`).

The signature is Inlayer's own, made on this computer on first use: a local root certificate
and a signing certificate issued by it, kept in Inlayer's settings folder
(`content-credentials/`, the private keys readable by the owner only). Nobody else vouches for
that root, so readers show the credentials as signed by an unknown (self-signed) issuer: they
prove that the file is unchanged since Inlayer signed it and what Inlayer said about it, not who
ran Inlayer. Needs the optional `c2pa-python` package (`pip install inlayer[credentials]`).
"""

from __future__ import annotations

import datetime
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import __version__, paths
from .client.protocol import InlayerError, Mode
from .provenance import digital_source_type

FOLDER_NAME = "content-credentials"
CHAIN_FILE = "signer-chain.pem"  # the signing certificate, then the local root
KEY_FILE = "signer-key.pem"
MIME_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
INSTALL_HINT = "install it with `pip install inlayer[credentials]` in Inlayer's environment"


class CredentialsUnavailable(InlayerError):
    code = "credentials_unavailable"


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes
    key_pem: bytes


def _c2pa():
    try:
        import c2pa
    except ImportError:
        raise CredentialsUnavailable(
            f"Content Credentials need the c2pa-python package: {INSTALL_HINT}."
        ) from None
    return c2pa


def signing_identity(folder: Path | None = None) -> SigningIdentity:
    """Inlayer's signing certificate chain and key, made on first use."""
    folder = folder or paths.config_dir() / FOLDER_NAME
    chain_path, key_path = folder / CHAIN_FILE, folder / KEY_FILE
    if chain_path.is_file() and key_path.is_file():
        return SigningIdentity(chain_path.read_bytes(), key_path.read_bytes())
    identity = _new_identity()
    folder.mkdir(parents=True, exist_ok=True)
    chain_path.write_bytes(identity.chain_pem)
    # The key file is created owner-only before anything is written into it.
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(identity.key_pem)
    return identity


def _new_identity() -> SigningIdentity:
    """A local root (kept only as a certificate: its key is dropped once it has signed) and an
    ES256 signing certificate it issues; C2PA refuses a self-signed signing certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(
                    NameOID.ORGANIZATION_NAME, "Inlayer (self-signed, this computer)"
                ),
            ]
        )

    def usage(*, sign_certificates: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not sign_certificates,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign_certificates,
            crl_sign=sign_certificates,
            encipher_only=False,
            decipher_only=False,
        )

    now = datetime.datetime.now(datetime.timezone.utc)
    valid_from, valid_to = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)
    root_key, signer_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    root_name = name("Inlayer local root")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    signer = (
        x509.CertificateBuilder()
        .subject_name(name("Inlayer content credentials"))
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return SigningIdentity(
        chain_pem=signer.public_bytes(pem) + root.public_bytes(pem),
        key_pem=signer_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def manifest(parameters: dict[str, Any], title: str) -> dict[str, Any]:
    mode = Mode(parameters.get("mode", Mode.TXT2IMG.value))
    # C2PA wants the file's first action to be its creation; an edit of the input follows it.
    kinds = ["c2pa.created"] if mode == Mode.TXT2IMG else ["c2pa.created", "c2pa.edited"]
    actions = [
        {
            "action": kind,
            "digitalSourceType": digital_source_type(mode),
            "softwareAgent": {"name": "Inlayer", "version": __version__},
            "parameters": {"description": json.dumps(parameters)},
        }
        for kind in kinds
    ]
    return {
        "claim_generator_info": [{"name": "Inlayer", "version": __version__}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": actions},
            }
        ],
    }


def sign_bytes(data: bytes, mime_type: str, parameters: dict[str, Any], title: str) -> bytes:
    """`data` (an image file's bytes) with a signed manifest embedded."""
    if mime_type not in MIME_TYPES.values():
        raise CredentialsUnavailable(
            f"Content Credentials: Inlayer signs PNG, JPEG and WebP files, not "
            f"{mime_type or 'this format'}; save as one of those"
        )
    c2pa = _c2pa()
    identity = signing_identity()
    info = c2pa.C2paSignerInfo(
        alg=b"es256", sign_cert=identity.chain_pem, private_key=identity.key_pem, ta_url=None
    )
    signer = c2pa.Signer.from_info(info)
    signed = io.BytesIO()
    with c2pa.Builder(manifest(parameters, title)) as builder:
        builder.sign(signer, mime_type, io.BytesIO(data), signed)
    return signed.getvalue()


@dataclass(frozen=True)
class Credentials:
    """What an image's C2PA manifest says (`read_credentials`)."""

    claim_generator: str
    actions: tuple[str, ...]
    digital_source_types: tuple[str, ...]
    validation: str  # "valid", or the reader's first validation failure codes


def read_credentials(path: Path) -> Credentials | None:
    """The active manifest of the image at `path`; None when it has none."""
    c2pa = _c2pa()
    mime_type = MIME_TYPES.get(path.suffix.lower())
    if mime_type is None:
        return None
    try:
        with c2pa.Reader(mime_type, io.BytesIO(path.read_bytes())) as reader:
            report = json.loads(reader.json())
    except c2pa.C2paError:
        return None
    active = report.get("manifests", {}).get(report.get("active_manifest", ""), {})
    generators = [
        f"{g.get('name', '')} {g.get('version', '')}".strip()
        for g in active.get("claim_generator_info", [])
    ]
    actions = [
        action
        for assertion in active.get("assertions", [])
        if assertion.get("label", "").startswith("c2pa.actions")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    # Inlayer's root is known to nobody: an untrusted signing credential is expected; an altered
    # file shows as a failed hash or signature instead.
    failures = [
        status.get("code", "")
        for status in report.get("validation_status", [])
        if status.get("code") != "signingCredential.untrusted"
    ]
    return Credentials(
        claim_generator=", ".join(generators),
        actions=tuple(str(a.get("action", "")) for a in actions),
        digital_source_types=tuple(str(a.get("digitalSourceType", "")) for a in actions),
        validation="valid" if not failures else ", ".join(failures),
    )
