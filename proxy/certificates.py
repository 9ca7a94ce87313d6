"""The admin's certificate authority, and server certificates minted with it for the
destinations a forward-proxy listener intercepts.

Interception works only for clients that trust the admin's CA: the product (or its host)
must have the CA certificate in its trust store. Clients that pin the vendor's certificate
cannot be intercepted; such destinations must be tunnelled or use the reverse-proxy mode.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections import OrderedDict
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MINTED_VALIDITY = datetime.timedelta(days=90)
"""How long a minted certificate is valid (capped by the CA's own expiry)."""

CLOCK_SKEW = datetime.timedelta(hours=1)
"""Minted certificates start this long in the past, for clients with a slow clock."""

DEFAULT_CACHE_SIZE = 1024


class CertificateError(ValueError):
    """The CA certificate or key cannot be used; the message says why (never key material)."""


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """The admin's CA: a certificate that may sign others, and its private key."""

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes

    @property
    def fingerprint(self) -> bytes:
        return self.certificate.fingerprint(hashes.SHA256())

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def load_certificate_authority(cert_file: str, key_file: str) -> CertificateAuthority:
    """Read and check a CA certificate and its key (PEM); raises :class:`CertificateError`."""
    certificate = _read_certificate(cert_file)
    private_key = _read_private_key(key_file)
    constraints = _extension(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(f"{cert_file} is not a CA certificate (basicConstraints CA:TRUE)")
    usage = _extension(certificate, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateError(f"{cert_file} may not sign certificates (keyUsage keyCertSign)")
    if _now() >= certificate.not_valid_after_utc:
        raise CertificateError(f"{cert_file} expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
    if private_key.public_key() != certificate.public_key():
        raise CertificateError(f"{key_file} is not the private key of {cert_file}")
    return CertificateAuthority(certificate, private_key)


def _read_certificate(path: str) -> x509.Certificate:
    try:
        with open(path, "rb") as file:
            return x509.load_pem_x509_certificate(file.read())
    except OSError as error:
        raise CertificateError(f"cannot read {path} ({error.strerror})") from None
    except ValueError:
        raise CertificateError(f"{path} is not a PEM certificate") from None


def _read_private_key(path: str) -> CertificateIssuerPrivateKeyTypes:
    try:
        with open(path, "rb") as file:
            key = serialization.load_pem_private_key(file.read(), password=None)
    except OSError as error:
        raise CertificateError(f"cannot read {path} ({error.strerror})") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertificateError(
            f"{path} is not an unencrypted PEM private key of a supported type"
        ) from None
    if not isinstance(key, CertificateIssuerPrivateKeyTypes):
        raise CertificateError(f"{path} holds a key type that cannot sign certificates")
    return key


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def issue_certificate(
    authority: CertificateAuthority, host: str, public_key: ec.EllipticCurvePublicKey
) -> x509.Certificate:
    """A TLS server certificate for ``host`` (a DNS name or an IP address), signed by the CA."""
    now = _now()
    not_after = min(now + MINTED_VALIDITY, authority.certificate.not_valid_after_utc)
    issuer_key = authority.certificate.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_general_name(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key),  # type: ignore[arg-type]
            critical=False,
        )
    )
    # Ed25519/Ed448 keys sign without a separate digest.
    digest = (
        None
        if isinstance(authority.private_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )
    return builder.sign(authority.private_key, digest)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


@dataclass(slots=True)
class _Minted:
    context: ssl.SSLContext
    renew_at: datetime.datetime


class ServerContexts:
    """TLS server contexts for intercepted hosts: a certificate is minted on a host's first
    use and cached, least recently used first out, at most ``capacity`` hosts. A cached
    certificate is minted again once half of its validity has passed.

    All minted certificates share one P-256 key generated here (never written anywhere
    but a private temporary file while loading), so minting is one signature."""

    def __init__(self, authority: CertificateAuthority, capacity: int = DEFAULT_CACHE_SIZE) -> None:
        self.authority = authority
        self._capacity = capacity
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cache: OrderedDict[str, _Minted] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def context_for(self, host: str) -> ssl.SSLContext:
        """The server context presenting a certificate for ``host`` (lowercase)."""
        minted = self._cache.get(host)
        if minted is not None and _now() < minted.renew_at:
            self._cache.move_to_end(host)
            return minted.context
        minted = self._mint(host)
        self._cache[host] = minted
        self._cache.move_to_end(host)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return minted.context

    def _mint(self, host: str) -> _Minted:
        certificate = issue_certificate(self.authority, host, self._key.public_key())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # The decrypted side is served by an HTTP/1.1 server; HTTP/2 clients fall back.
        context.set_alpn_protocols(["http/1.1"])
        _load_chain(context, self._key, certificate, self.authority)
        lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        return _Minted(context, certificate.not_valid_before_utc + lifetime / 2)


def _load_chain(
    context: ssl.SSLContext,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    authority: CertificateAuthority,
) -> None:
    """Load key and chain into ``context``. The ssl module reads them only from a file, so
    they go through a temporary file readable by this user alone, removed at once."""
    pem = (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + certificate.public_bytes(serialization.Encoding.PEM)
        + authority.certificate_pem
    )
    descriptor, path = tempfile.mkstemp(prefix="scrubgate-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
