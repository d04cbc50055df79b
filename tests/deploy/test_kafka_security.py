"""Ripple on a secured Kafka: a broker (started here from the stack's code) with a SASL_SSL
listener (SCRAM-SHA-512, a CA and broker certificate made by openssl) besides PLAINTEXT.
A replay through the SASL_SSL listener equals the oracle; a wrong password fails in one
line that names the setting, and no output ever holds the password."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.stack.kafka import Kafka, KafkaError, KafkaSpec, Node
from deploy.stack.paths import StatePaths
from deploy.stack.ports import free_port
from ingest.config import load_config
from tests.processors.job.test_replay import assert_same_rows, rows
from tests.reference.dataset import generate
from tests.reference.oracle import compute_results

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test's CA"),
]
ROOT = Path(__file__).resolve().parents[2]
USER = "ripple-test"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # unique: any occurrence in output is a leak


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(d: Path) -> tuple[Path, Path]:
    """(CA certificate, broker keystore: PKCS#8 key + certificate chain), both PEM."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=Ripple test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
             "-out", "broker.csr", "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "broker.pem", "-days", "2", "-extfile", "san.ext", cwd=d)  # fmt: skip
    keystore = d / "broker-keystore.pem"
    keystore.write_text(
        (d / "broker.key").read_text() + (d / "broker.pem").read_text() + (d / "ca.pem").read_text()
    )
    return d / "ca.pem", keystore


@dataclass
class SecuredKafka:
    kafka: Kafka
    plaintext: str  # for the test's own admin work (creating the SCRAM user)
    sasl_ssl: str
    ca: Path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    d = tmp_path_factory.mktemp("secured-kafka")
    ca, keystore = make_certificates(d)
    for attempt in range(3):  # a free port can be taken before the broker binds it
        port, cport, sport = free_port(), free_port(), free_port()
        extra = {
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport},"
            f"SASL_SSL://127.0.0.1:{sport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sport}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(ca),
        }
        spec = KafkaSpec(partitions=3, node_list=(Node(1, "kafka", port, cport),), extra=extra)
        kafka = Kafka(spec, StatePaths.at(d / f"state-{attempt}"))
        try:
            kafka.start(120)
            break
        except KafkaError:
            kafka.stop()
            if attempt == 2:
                raise
    try:
        plaintext = f"127.0.0.1:{port}"
        create_scram_user(plaintext, USER, PASSWORD)
        yield SecuredKafka(kafka, plaintext, f"127.0.0.1:{sport}", ca)
    finally:
        kafka.stop()


def create_scram_user(bootstrap: str, user: str, password: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        upsert = UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)
        assert admin.alter_user_scram_credentials([upsert]) == {user: None}
        # The credential is in the metadata log; wait until the broker has applied it.
        deadline = time.monotonic() + 30
        while not admin.describe_user_scram_credentials([user])[user]["credential_infos"]:
            assert time.monotonic() < deadline, "SCRAM credential not visible"
            time.sleep(0.2)
    finally:
        admin.close()


def secured_config(where: Path, secured: SecuredKafka, tracking: str) -> Path:
    cfg = where / "ripple.toml"
    cfg.write_text(f"""\
[kafka]
bootstrap = "{secured.sasl_ssl}"
partitions = 3
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "{USER}"
ssl_cafile = "{secured.ca}"

[stack]
state_dir = "{where / "state"}"

[processing]
gate_batch_records = 250

{tracking}
""")
    return cfg


def replay(
    cfg: Path, events: Path, out: Path, password_file: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPPLE_")}
    env["RIPPLE_KAFKA_SASL_PASSWORD_FILE"] = str(password_file)
    cmd = [sys.executable, "-m", "deploy.cli", "replay", "--config", str(cfg), "--input",
           str(events), "--namespace", f"sec{uuid.uuid4().hex[:8]}", "--out", str(out),
           "--timeout", "300"]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def all_output(proc: subprocess.CompletedProcess[str], state: Path) -> str:
    """The command's stdout and stderr and every log its workers wrote."""
    logs = [p.read_text(errors="replace") for p in state.rglob("*.log")] if state.exists() else []
    return proc.stdout + proc.stderr + "".join(logs)


def test_replay_through_sasl_ssl_equals_the_oracle(secured: SecuredKafka, tmp_path: Path) -> None:
    tracking, lines = generate(seed=10)
    cfg = secured_config(tmp_path, secured, tracking)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    pw = tmp_path / "kafka.pw"
    pw.write_text(PASSWORD + "\n")
    out = tmp_path / "out.jsonl"
    proc = replay(cfg, events, out, pw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_rows(rows(out), compute_results(lines, load_config(cfg)))
    assert PASSWORD not in all_output(proc, tmp_path / "state")


def test_wrong_password_fails_in_one_line_naming_the_setting(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    tracking, lines = generate(seed=10)
    cfg = secured_config(tmp_path, secured, tracking)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines[:100]) + b"\n")
    wrong = f"wrong-{uuid.uuid4().hex}"
    pw = tmp_path / "kafka.pw"
    pw.write_text(wrong + "\n")
    started = time.monotonic()
    proc = replay(cfg, events, tmp_path / "out.jsonl", pw)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ripple replay:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "kafka.sasl_password" in errors[0] and USER in errors[0], errors[0]
    assert "Traceback" not in proc.stderr
    output = all_output(proc, tmp_path / "state")
    assert wrong not in output and PASSWORD not in output
    assert time.monotonic() - started < 60  # fails fast, no retry loop against a refusal
