"""[kafka] security settings: their checks, the secret's path, and the client options built
for each library (the broker-side proof is tests/deploy/test_kafka_security.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from ingest.config import ConfigError, load_config
from ingest.kafka_client import client_options, kafka_access, new_topic

SECRET = "s3cr3t-pa55"


def _config(tmp_path: Path, kafka: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "r.toml"
    path.write_text(f"[kafka]\n{kafka}\n")
    return load_config(path, env=env or {})


def test_sasl_ssl_options_for_every_library(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")  # only checked to exist here; the real CA is in the broker test
    cfg = _config(
        tmp_path,
        f'bootstrap = "h1:9093,h2:9093"\nsecurity_protocol = "SASL_SSL"\n'
        f'sasl_username = "ripple"\nssl_cafile = "{ca}"\nssl_check_hostname = false\n'
        "replication_factor = 3\nmin_insync_replicas = 2",
        env={"RIPPLE_KAFKA_SASL_PASSWORD_FILE": str(_secret_file(tmp_path))},
    )
    # The password file is read where it is used, never stored in the settings.
    assert SECRET not in repr(cfg) and SECRET not in repr(cfg.kafka)
    with pytest.MonkeyPatch.context() as mp:
        # An empty CA file cannot be loaded: stand in for the context (its content is the
        # broker test's business).
        mp.setattr(
            "ingest.kafka_client.KafkaAccess.ssl_context", lambda self: ssl.create_default_context()
        )
        access = kafka_access(
            cfg.kafka, env={"RIPPLE_KAFKA_SASL_PASSWORD_FILE": str(_secret_file(tmp_path))}
        )
        assert SECRET not in repr(access) and str(access) == "h1:9093,h2:9093"
        aio = client_options(access, "aiokafka")
        assert aio["bootstrap_servers"] == ["h1:9093", "h2:9093"]
        assert (aio["security_protocol"], aio["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
        assert (aio["sasl_plain_username"], aio["sasl_plain_password"]) == ("ripple", SECRET)
        assert isinstance(aio["ssl_context"], ssl.SSLContext)
        kp = client_options(access, "kafka-python")
        assert kp["ssl_check_hostname"] is False and kp["sasl_plain_password"] == SECRET
        fa = client_options(access, "faust")
        assert fa["broker"] == ["kafka://h1:9093", "kafka://h2:9093"]
        assert fa["topic_replication_factor"] == 3
        creds = fa["broker_credentials"]
        assert isinstance(creds, faust.SASLCredentials) and creds.password == SECRET
        assert creds.protocol.value == "SASL_SSL" and creds.mechanism.value == "SCRAM-SHA-512"
    topic = new_topic(access, "ns.events", 6, {"retention.ms": "-1"})
    assert topic.replication_factor == 3
    assert dict(topic.topic_configs) == {"retention.ms": "-1", "min.insync.replicas": "2"}


def _secret_file(tmp_path: Path) -> Path:
    f = tmp_path / "kafka.pw"
    f.write_text(SECRET + "\n")
    return f


def test_plain_address_means_plaintext() -> None:
    assert client_options("127.0.0.1:9092", "kafka-python") == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }
    assert "broker_credentials" not in client_options("127.0.0.1:9092", "faust")
    assert new_topic("127.0.0.1:9092", "t", 1).replication_factor == 1


@pytest.mark.parametrize(
    ("kafka", "env", "message"),
    [
        ('security_protocol = "TLS"', {}, "kafka.security_protocol: 'TLS' is not one of"),
        ('security_protocol = "SASL_SSL"', {}, "kafka.sasl_username is required with SASL_SSL"),
        (
            'security_protocol = "SASL_PLAINTEXT"\nsasl_username = "u"\nsasl_mechanism = "GSSAPI"',
            {},
            "kafka.sasl_mechanism: 'GSSAPI' is not one of",
        ),
        (
            'sasl_username = "u"',
            {},
            "kafka.sasl_username is set but kafka.security_protocol is PLAINTEXT",
        ),
        ('ssl_cafile = "/etc/hostname"', {}, "kafka.ssl_cafile is set but kafka.security_protocol"),
        (
            'security_protocol = "SSL"\nssl_cafile = "/nonexistent.pem"',
            {},
            "kafka.ssl_cafile: no such file",
        ),
        ('security_protocol = "SSL"\nssl_certfile = "/etc/hostname"', {}, "go together"),
        ("replication_factor = 0", {}, "kafka.replication_factor must be at least 1"),
        (
            "replication_factor = 3\nmin_insync_replicas = 4",
            {},
            "kafka.min_insync_replicas must be",
        ),
        ('sasl_password = "x"', {}, "kafka.sasl_password must not be in the file"),
        (
            "",
            {"RIPPLE_KAFKA_MIN_INSYNC_REPLICAS": "two"},
            "kafka.min_insync_replicas: 'two' is not a int",
        ),
    ],
)
def test_invalid_combinations_name_the_setting(
    tmp_path: Path, kafka: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _config(tmp_path, kafka, env)


def test_password_only_from_the_environment(tmp_path: Path) -> None:
    sasl = 'security_protocol = "SASL_PLAINTEXT"\nsasl_username = "u"'
    # The password variable is not a setting: load_config ignores it (no unknown-key error).
    env = {"RIPPLE_KAFKA_SASL_PASSWORD": SECRET, "RIPPLE_KAFKA_MIN_INSYNC_REPLICAS": "1"}
    cfg = _config(tmp_path, sasl, env)
    assert cfg.kafka.min_insync_replicas == 1
    assert kafka_access(cfg.kafka, env=env).sasl_password == SECRET
    with pytest.raises(ConfigError, match="kafka.sasl_password: .* set RIPPLE_KAFKA_SASL_PASSWORD"):
        kafka_access(cfg.kafka, env={})
    with pytest.raises(ConfigError, match="kafka.sasl_password: cannot read"):
        kafka_access(cfg.kafka, env={"RIPPLE_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "none")})
