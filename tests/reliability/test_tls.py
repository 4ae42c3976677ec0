"""TLS: the workbench served over HTTPS by Streamlit itself (server.sslCertFile /
server.sslKeyFile) with a self-signed certificate made here with `cryptography`; the page
and /_stcore/health are fetched over HTTPS, verifying the certificate."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.conftest import _free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_app_serves_over_https_with_a_verified_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    shutil.copytree(ROOT / "data" / "demo", tmp_path / "demo")
    (tmp_path / "home").mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("LATTICE_COOKIE_KEY", "LATTICE_CREDENTIALS")}
    env.update(LATTICE_DEMO="1", LATTICE_DEMO_DIR=str(tmp_path / "demo"), HOME=str(tmp_path / "home"),
               LATTICE_DATABASE_URL=f"sqlite:///{tmp_path / 'lattice.db'}", PYTHONUNBUFFERED="1")
    log = tmp_path / "streamlit.log"
    cmd = [str(Path(sys.executable).with_name("streamlit")), "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.sslCertFile", str(cert), "--server.sslKeyFile", str(key)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    ctx = ssl.create_default_context(cafile=str(cert))  # verify against our own certificate
    base = f"https://127.0.0.1:{port}"
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and health is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(base + "/_stcore/health", context=ctx, timeout=3) as r:
                    health = (r.status, r.read().decode())
            except OSError:
                time.sleep(0.3)
        assert health == (200, "ok"), log.read_text()[-3000:]
        with urllib.request.urlopen(base + "/", context=ctx, timeout=10) as r:
            page = r.read().decode()
            assert r.status == 200 and "streamlit" in page.lower()
        # the TLS session really used the certificate, and plain HTTP gets no page
        with ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", port)),
                             server_hostname="127.0.0.1") as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3")
            print(f"\nTLS: {s.version()} {s.cipher()[0]}; /_stcore/health -> {health}")
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=3).read()
        # an unverified client is refused (the certificate is not in the system trust store)
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(base + "/_stcore/health", timeout=3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
