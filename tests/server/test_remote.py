"""Remote use: per-user tokens (`inlayer token add|revoke|list`) that a running server takes at
once, and the rule that a server listening beyond loopback speaks TLS or says --insecure."""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inlayer.core.client.http_client import HttpClient
from inlayer.core.client.protocol import AuthenticationFailed, InvalidRequest
from inlayer.core.client.remote_server import (
    RemoteServer,
    load_remote_server,
    save_remote_server,
)
from inlayer.server.user_tokens import TokenError, UserTokens, add_token, revoke_token
from tests.fixtures.server import REPO_ROOT, ServerProcess, running_server
from tests.server.helpers import exchange


def inlayer(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `inlayer` command with this config folder."""
    return subprocess.run(
        [sys.executable, "-m", "inlayer.core.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "INLAYER_CONFIG_DIR": str(config_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def models_with(server: ServerProcess, token: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", "/v1/models", headers={"Authorization": f"Bearer {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_user_tokens_added_and_revoked_take_effect_without_a_restart(
    inlayer_server: ServerProcess,
) -> None:
    config = inlayer_server.config_dir
    added = inlayer(config, "token", "add", "alice")
    assert added.returncode == 0, added.stderr
    alice = added.stdout.strip()
    assert models_with(inlayer_server, alice) == 200
    bob = inlayer(config, "token", "add", "bob").stdout.strip()
    assert models_with(inlayer_server, bob) == 200
    # A1111 clients send a user's token as the Basic auth password.
    basic = base64.b64encode(f"alice:{alice}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    answer = exchange(inlayer_server, "GET", "/sdapi/v1/sd-models", None, headers, auth=None)
    assert answer.status == 200
    listed = inlayer(config, "token", "list")
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["alice", "bob"]
    assert alice not in listed.stdout and bob not in listed.stdout

    revoked = inlayer(config, "token", "revoke", "alice")
    assert revoked.returncode == 0, revoked.stderr
    assert models_with(inlayer_server, alice) == 401
    assert models_with(inlayer_server, bob) == 200  # the others keep theirs
    assert models_with(inlayer_server, inlayer_server.token) == 200  # and the server's own
    inlayer(config, "token", "revoke", "bob")
    assert models_with(inlayer_server, bob) == 401


def test_the_token_file_keeps_hashes_only_and_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = add_token("carol", path)
    text = path.read_text(encoding="utf-8")
    assert token not in text
    assert set(json.loads(text)["carol"]) == {"sha256", "created"}
    assert path.stat().st_mode & 0o077 == 0
    assert UserTokens(path).owner(token) == "carol"
    assert UserTokens(path).owner(token + "x") is None


def test_token_commands_refuse_bad_and_unknown_names_clearly(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    with pytest.raises(TokenError, match="NAME 'two words' is not a token name"):
        add_token("two words", path)
    add_token("dave", path)
    with pytest.raises(TokenError, match="'dave' has a token already; `inlayer token revoke"):
        add_token("dave", path)
    with pytest.raises(
        TokenError, match=r"'erin' has no token; the names that have one: \['dave'\]"
    ):
        revoke_token("erin", path)
    failed = inlayer(tmp_path, "token", "revoke", "erin")
    assert failed.returncode == 2 and "'erin' has no token" in failed.stderr


def test_an_unreadable_token_file_lets_no_user_token_in(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = add_token("frank", path)
    path.write_text("{not json", encoding="utf-8")
    assert UserTokens(path).owner(token) is None


def serve_refused(config: Path, models: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inlayer.server", "--port", "0", "--models-dir", str(models), *args],
        cwd=REPO_ROOT,
        env={**os.environ, "INLAYER_CONFIG_DIR": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_listening_beyond_loopback_needs_tls_or_insecure(
    tmp_path: Path, tiny_models_dir: Path
) -> None:
    refused = serve_refused(tmp_path, tiny_models_dir, "--host", "0.0.0.0")
    assert refused.returncode != 0
    assert "--tls-cert FILE --tls-key FILE" in refused.stderr
    assert "--insecure" in refused.stderr
    assert not (tmp_path / "server.json").exists()
    half = serve_refused(tmp_path, tiny_models_dir, "--tls-cert", str(tmp_path / "cert.pem"))
    assert "--tls-cert and --tls-key go together" in half.stderr


def test_insecure_listens_beyond_loopback_with_a_warning(
    tmp_path: Path, tiny_models_dir: Path
) -> None:
    with running_server(tmp_path, tiny_models_dir, "--host", "0.0.0.0", "--insecure") as server:
        assert models_with(server, server.token) == 200
        assert "plain HTTP (--insecure)" in server.log()
        assert "WARNING: Inlayer listens on 0.0.0.0" in server.log()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_listens_beyond_loopback_and_speaks_https(
    tmp_path: Path, tiny_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    # The client trusts a studio's own certificate through the standard SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    args = ("--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key))
    with running_server(tmp_path / "config", tiny_models_dir, *args) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert "tiny-sd15" in [model.name for model in server.client().models()]
        plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/v1/health")
            plain.getresponse()
        assert "plain HTTP" not in server.log()


def test_the_plug_ins_server_settings_reach_a_remote_server_with_a_user_token(
    inlayer_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client the plug-ins carry, with the URL and token of their settings (remote.json in
    this artist's own config folder), not the server's config folder."""
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("INLAYER_SERVER", raising=False)
    monkeypatch.delenv("INLAYER_TOKEN", raising=False)
    token = add_token("grace", inlayer_server.config_dir / "tokens.json")
    try:
        save_remote_server(f"  {inlayer_server.url}/ ", token)
        assert (tmp_path / "remote.json").stat().st_mode & 0o077 == 0
        client = HttpClient()
        assert client.url == inlayer_server.url
        assert "tiny-sd15" in [model.name for model in client.models()]
        # The environment still wins over the settings.
        monkeypatch.setenv("INLAYER_SERVER", "http://127.0.0.1:9")
        assert HttpClient().url == "http://127.0.0.1:9"
        monkeypatch.delenv("INLAYER_SERVER")
        # An empty URL goes back to the local server.
        assert save_remote_server("", "") is None
        assert load_remote_server() is None
    finally:
        revoke_token("grace", inlayer_server.config_dir / "tokens.json")
    with pytest.raises(AuthenticationFailed, match="plug-in's server settings"):
        save_remote_server(inlayer_server.url, token)
        HttpClient().models()


def test_wrong_server_settings_name_the_field_and_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INLAYER_CONFIG_DIR", str(tmp_path))
    save_remote_server("https://inlayer.example.com", "kept")
    with pytest.raises(InvalidRequest) as raised:
        save_remote_server("inlayer.example.com", "token")
    assert raised.value.field == "server URL"
    assert "https://inlayer.example.com or" in raised.value.message
    with pytest.raises(InvalidRequest, match="port that is not a number"):
        save_remote_server("http://host:port", "token")
    with pytest.raises(InvalidRequest) as raised:
        save_remote_server("https://other.example.com", "  ")
    assert raised.value.field == "token"
    assert load_remote_server() == RemoteServer("https://inlayer.example.com", "kept")
