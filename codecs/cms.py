"""CMS EnvelopedData (RFC 5652) for RSA recipient certificates (one or several): bytes in, bytes out.

What PS3.15 E.1.1 asks of the Encrypted Content of an Encrypted Attributes Sequence item:
EnvelopedData, RSA key transport (here PKCS#1 v1.5, the only one cryptography writes) and AES
content encryption (here AES-256-CBC). cryptography's ``PKCS7EnvelopeBuilder`` writes it; the
``Binary`` option is essential, without it the content is canonicalised as text (LF -> CRLF).
``openssl cms -decrypt -binary -inform DER -recip CERT -inkey KEY`` reads what this writes.

CBC is not authenticated: callers that must detect tampering authenticate the DER envelope
themselves (the header carrier does, with a MAC in the protection block).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from stegonode.errors import KeyFileError, PayloadIntegrityError, WrongRecipientKeyError

RSA_BITS = 3072
VALIDITY = datetime.timedelta(days=3650)


def certificate_id(certificate: x509.Certificate) -> str:
    """A short, non-secret identifier of a certificate: 8 hex digits of its SHA-256 fingerprint."""
    return certificate.fingerprint(hashes.SHA256()).hex()[:8]


def envelope(content: bytes, certificate: x509.Certificate | Iterable[x509.Certificate]) -> bytes:
    """DER EnvelopedData of ``content`` for each certificate's RSA key (one RecipientInfo each),
    AES-256-CBC."""
    certificates = [certificate] if isinstance(certificate, x509.Certificate) else list(certificate)
    if not certificates:
        raise ValueError("an envelope needs at least one recipient certificate")
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(content)
    for each in certificates:
        builder = builder.add_recipient(each)
    return (
        builder.set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def open_envelope(der: bytes, certificate: x509.Certificate, private_key: rsa.RSAPrivateKey) -> bytes:
    """The content of an EnvelopedData made for ``certificate``; a typed error otherwise."""
    try:
        return pkcs7.pkcs7_decrypt_der(der, certificate, private_key, [])
    except ValueError as exc:
        if "recipient" in str(exc).lower():
            raise WrongRecipientKeyError(
                f"encrypted attributes are not for certificate {certificate_id(certificate)}"
            ) from None
        raise PayloadIntegrityError("encrypted attributes do not decrypt: they were altered") from None


def new_recipient(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA key and a self-signed certificate for it (key transport only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def private_key_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def read_certificate(data: bytes, source: str) -> x509.Certificate:
    """A PEM or DER certificate whose key is RSA (what CMS key transport needs)."""
    try:
        certificate = (
            x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise KeyFileError(f"{source} is not an X.509 certificate (PEM or DER)") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise KeyFileError(
            f"{source}: the certificate's key is not RSA; the Encrypted Attributes Sequence "
            "needs RSA key transport (PS3.15 E.1.1)"
        )
    return certificate


def read_private_key(data: bytes, source: str, certificate: x509.Certificate) -> rsa.RSAPrivateKey:
    """A PEM or DER (PKCS#8 or PKCS#1) RSA private key, unencrypted, matching ``certificate``."""
    try:
        loader = (
            serialization.load_pem_private_key if data.lstrip().startswith(b"-----")
            else serialization.load_der_private_key
        )
        key = loader(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{source} is not an unencrypted private key (PEM or DER)") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != certificate.public_key():
        raise KeyFileError(f"{source} is not the private key of certificate {certificate_id(certificate)}")
    return key
