"""Local CA and server certificate for the dev console's HTTPS listener.

qpylib always builds ``https://`` URLs and verifies TLS against ``REQUESTS_CA_BUNDLE``; inside QRadar
that bundle holds the console's CA. Here we create a private CA once per data directory
(``DIR/ca.pem`` + ``DIR/ca-key.pem``) and a server certificate for 127.0.0.1 and localhost signed by it
(``DIR/server.pem`` + ``DIR/server-key.pem``). Clients point ``REQUESTS_CA_BUNDLE`` at ``DIR/ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertPaths:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dev Console Local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_server(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_certs(data_dir: str | os.PathLike) -> CertPaths:
    """Create the CA and server certificate in ``data_dir`` unless they already exist; return their paths."""
    base = Path(data_dir)
    base.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(base / "ca.pem", base / "server.pem", base / "server-key.pem")
    ca_key_path = base / "ca-key.pem"
    now = dt.datetime.now(dt.UTC)
    new_ca = False
    if paths.ca_cert.exists() and ca_key_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    else:
        ca_key, ca_cert = _new_ca(now)
        _write_private(ca_key_path, _key_pem(ca_key))
        _write_private(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
        new_ca = True
    # A server certificate signed by an earlier CA would fail every TLS check: re-issue it with a new CA.
    if new_ca or not (paths.server_cert.exists() and paths.server_key.exists()):
        key, cert = _new_server(ca_key, ca_cert, now)  # type: ignore[arg-type]
        _write_private(paths.server_key, _key_pem(key))
        _write_private(paths.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return paths
