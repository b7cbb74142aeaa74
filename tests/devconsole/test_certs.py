"""The dev console's local CA and server certificate."""

import ssl

from cryptography import x509

from devconsole.certs import ensure_certs


def _issuer_matches(ca_pem: bytes, server_pem: bytes) -> bool:
    ca = x509.load_pem_x509_certificate(ca_pem)
    server = x509.load_pem_x509_certificate(server_pem)
    try:
        server.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # InvalidSignature and friends
        return False
    return True


def test_certificates_are_created_once_and_kept(tmp_path):
    first = ensure_certs(tmp_path)
    ca_before = first.ca_cert.read_bytes()
    server_before = first.server_cert.read_bytes()
    second = ensure_certs(tmp_path)
    assert second.ca_cert.read_bytes() == ca_before
    assert second.server_cert.read_bytes() == server_before
    assert _issuer_matches(ca_before, server_before)
    # The chain loads into an SSL context the way the server uses it.
    ctx = ssl.create_default_context(cafile=str(second.ca_cert))
    ctx.load_cert_chain(str(second.server_cert), str(second.server_key))


def test_a_new_ca_reissues_the_server_certificate(tmp_path):
    paths = ensure_certs(tmp_path)
    old_server = paths.server_cert.read_bytes()
    # Someone deletes the CA (e.g. to rotate it); the old server certificate must not survive.
    paths.ca_cert.unlink()
    (tmp_path / "ca-key.pem").unlink()
    again = ensure_certs(tmp_path)
    new_ca = again.ca_cert.read_bytes()
    new_server = again.server_cert.read_bytes()
    assert new_server != old_server
    assert _issuer_matches(new_ca, new_server)
    assert not _issuer_matches(new_ca, old_server)
