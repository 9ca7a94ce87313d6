"""proxy/certificates.py: the admin's CA is checked when loaded, and the certificates
minted with it pass a real TLS handshake with a client that trusts only that CA."""

import datetime
import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.certificates import (
    CertificateError,
    ServerContexts,
    issue_certificate,
    load_certificate_authority,
)


@pytest.fixture
def ca_files(tmp_path):
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.private_key_pem.write_to_path(str(tmp_path / "ca.key"))
    return ca, str(tmp_path / "ca.pem"), str(tmp_path / "ca.key")


def _handshake(server: ssl.SSLContext, ca: trustme.CA, host: str) -> ssl.SSLObject:
    """A TLS handshake over memory buffers; returns the client side once it succeeded."""
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server, server_hostname=host)
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(10):
        done = 0
        for side in (client, server_side):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        if done == 2:
            return client
    raise AssertionError("handshake did not finish")


def test_a_ca_and_its_key_load(ca_files):
    ca, cert_file, key_file = ca_files
    authority = load_certificate_authority(cert_file, key_file)
    assert authority.certificate_pem == ca.cert_pem.bytes()
    assert len(authority.fingerprint) == 32


def test_a_leaf_certificate_is_not_a_ca(tmp_path):
    leaf = trustme.CA().issue_cert("vendor.test")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "leaf.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "leaf.key"))
    with pytest.raises(CertificateError, match="is not a CA certificate"):
        load_certificate_authority(str(tmp_path / "leaf.pem"), str(tmp_path / "leaf.key"))


def test_the_key_must_belong_to_the_ca(tmp_path, ca_files):
    _, cert_file, _ = ca_files
    trustme.CA().private_key_pem.write_to_path(str(tmp_path / "other.key"))
    with pytest.raises(CertificateError, match="is not the private key of"):
        load_certificate_authority(cert_file, str(tmp_path / "other.key"))


def test_unreadable_and_malformed_files_are_named(tmp_path, ca_files):
    _, cert_file, key_file = ca_files
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(CertificateError, match=r"cannot read .*missing\.pem"):
        load_certificate_authority(str(tmp_path / "missing.pem"), key_file)
    with pytest.raises(CertificateError, match=r"junk\.pem is not a PEM certificate"):
        load_certificate_authority(str(tmp_path / "junk.pem"), key_file)
    with pytest.raises(CertificateError, match=r"junk\.pem is not an unencrypted PEM private key"):
        load_certificate_authority(cert_file, str(tmp_path / "junk.pem"))


def test_minted_certificate_names_the_host_and_cannot_sign(ca_files):
    _, cert_file, key_file = ca_files
    authority = load_certificate_authority(cert_file, key_file)
    certificate = issue_certificate(
        authority, "vendor.test", ec.generate_private_key(ec.SECP256R1()).public_key()
    )
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["vendor.test"]
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.issuer == authority.certificate.subject
    assert certificate.not_valid_after_utc <= authority.certificate.not_valid_after_utc
    assert certificate.not_valid_before_utc < datetime.datetime.now(datetime.UTC)


@pytest.mark.parametrize("host", ["vendor.test", "a.b.vendor.test", "127.0.0.1", "::1"])
def test_minted_context_passes_a_handshake_with_a_client_trusting_the_ca(ca_files, host):
    ca, cert_file, key_file = ca_files
    contexts = ServerContexts(load_certificate_authority(cert_file, key_file))
    client = _handshake(contexts.context_for(host), ca, host)
    assert client.selected_alpn_protocol() == "http/1.1"


def test_a_client_trusting_another_ca_fails_the_handshake(ca_files):
    _, cert_file, key_file = ca_files
    contexts = ServerContexts(load_certificate_authority(cert_file, key_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(contexts.context_for("vendor.test"), trustme.CA(), "vendor.test")


def test_minted_contexts_are_cached_per_host_and_bounded(ca_files):
    _, cert_file, key_file = ca_files
    contexts = ServerContexts(load_certificate_authority(cert_file, key_file), capacity=2)
    first = contexts.context_for("a.test")
    assert contexts.context_for("a.test") is first
    second = contexts.context_for("b.test")
    contexts.context_for("a.test")  # a.test is now the most recently used
    contexts.context_for("c.test")  # evicts b.test
    assert len(contexts) == 2
    assert contexts.context_for("a.test") is first
    assert contexts.context_for("b.test") is not second
