"""How every Kafka client of Ripple connects: one place turns ``[kafka]`` into client options.

Three client libraries meet Kafka here, each with its own option names: aiokafka
(producers, the gate, gap fills), kafka-python (admin, replay and archive readers) and
faust (the workers' app: ``broker`` URLs and ``broker_credentials``). ``client_options``
builds the options of each from one ``KafkaAccess``; nothing else in the code base names a
security option.

A ``KafkaAccess`` is the bootstrap list plus the security settings plus the SASL password,
which is read from ``$RIPPLE_KAFKA_SASL_PASSWORD`` or the file named by
``$RIPPLE_KAFKA_SASL_PASSWORD_FILE`` and never shown: not in its repr, not in logs. Library
functions accept a plain bootstrap string too (``Brokers``): that means an unsecured
PLAINTEXT cluster, which is what tests and the local stack use.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.config import SASL_PASSWORD_ENV, ConfigError, KafkaSettings, read_secret

Flavour = Literal["aiokafka", "kafka-python", "faust"]


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    # How every topic Ripple creates is replicated (faust's changelogs and internals too).
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    sasl_password: str | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        # What log lines and error messages show: where, never how.
        return self.bootstrap

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        ctx = create_ssl_context(
            cafile=self.ssl_cafile or None,
            certfile=self.ssl_certfile or None,
            keyfile=self.ssl_keyfile or None,
        )
        ctx.check_hostname = self.ssl_check_hostname
        return ctx


Brokers = str | KafkaAccess


def kafka_access(
    settings: KafkaSettings, bootstrap: str | None = None, env: dict[str, str] | None = None
) -> KafkaAccess:
    """The settings (checked by load_config) with the password from the environment.

    ``bootstrap`` overrides ``settings.bootstrap`` (``--bootstrap`` of the commands)."""
    password = None
    if settings.security_protocol.startswith("SASL_"):
        try:
            password = read_secret(SASL_PASSWORD_ENV, env)
        except OSError as exc:
            raise ConfigError(
                f"kafka.sasl_password: cannot read {SASL_PASSWORD_ENV}_FILE: {exc.strerror}"
            ) from None
        if not password:
            raise ConfigError(
                f"kafka.sasl_password: kafka.security_protocol is {settings.security_protocol} "
                f"but no password is set: set {SASL_PASSWORD_ENV} or {SASL_PASSWORD_ENV}_FILE"
            )
    return KafkaAccess(
        bootstrap=bootstrap or settings.bootstrap,
        security_protocol=settings.security_protocol,
        sasl_mechanism=settings.sasl_mechanism,
        sasl_username=settings.sasl_username,
        ssl_cafile=settings.ssl_cafile,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
        ssl_check_hostname=settings.ssl_check_hostname,
        replication_factor=settings.replication_factor,
        min_insync_replicas=settings.min_insync_replicas,
        sasl_password=password,
    )


def as_access(brokers: Brokers) -> KafkaAccess:
    return brokers if isinstance(brokers, KafkaAccess) else KafkaAccess(bootstrap=brokers)


def client_options(brokers: Brokers, flavour: Flavour) -> dict[str, Any]:
    """Keyword arguments that connect a client of ``flavour`` to ``brokers``:
    ``AIOKafkaProducer(**client_options(b, "aiokafka"), acks="all")``,
    ``KafkaAdminClient(**client_options(b, "kafka-python"))``,
    ``faust.App(id, **client_options(b, "faust"), ...)``."""
    a = as_access(brokers)
    servers = _servers(a)
    if flavour == "faust":
        import faust

        opts: dict[str, Any] = {
            "broker": [f"kafka://{s}" for s in servers],
            # faust creates its own internal topics (and any changelog not made up front).
            "topic_replication_factor": a.replication_factor,
        }
        if a.sasl:
            opts["broker_credentials"] = faust.SASLCredentials(
                username=a.sasl_username,
                password=a.sasl_password,
                ssl_context=a.ssl_context(),
                mechanism=a.sasl_mechanism,
            )
        elif a.tls:
            opts["broker_credentials"] = faust.SSLCredentials(a.ssl_context())
        return opts
    opts = {"bootstrap_servers": servers, "security_protocol": a.security_protocol}
    if a.sasl:
        opts.update(
            sasl_mechanism=a.sasl_mechanism,
            sasl_plain_username=a.sasl_username,
            sasl_plain_password=a.sasl_password,
        )
    if a.tls:
        # Both libraries take a ready SSLContext; one builder keeps their checks identical.
        opts["ssl_context"] = a.ssl_context()
        if flavour == "kafka-python":
            opts["ssl_check_hostname"] = a.ssl_check_hostname
    return opts


def new_topic(
    brokers: Brokers, name: str, partitions: int, configs: dict[str, str] | None = None
) -> Any:
    """A kafka-python ``NewTopic`` replicated as ``brokers`` says: every topic Ripple creates
    is made here, so ``kafka.replication_factor`` and ``kafka.min_insync_replicas`` reach all."""
    from kafka.admin import NewTopic

    a = as_access(brokers)
    out = dict(configs or {})
    if a.min_insync_replicas is not None:
        out.setdefault("min.insync.replicas", str(a.min_insync_replicas))
    return NewTopic(name, partitions, a.replication_factor, topic_configs=out)


def verify_access(brokers: Brokers, timeout: float = 15.0) -> None:
    """Fail fast, naming the setting, when a broker refuses our credentials or certificate.

    The client libraries turn a refused login into a generic "unable to bootstrap" (after
    retrying for a while) with the cause in a log line; this connects once to each address
    and raises ConfigError for a SASL refusal or a TLS verification failure. A broker that
    cannot be reached is no error here: callers keep their own wait-and-retry for that."""
    a = as_access(brokers)
    if a.security_protocol == "PLAINTEXT":
        return
    import asyncio

    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        AuthenticationFailedError,
        KafkaConnectionError,
        SaslAuthenticationFailed,
    )

    opts = client_options(a, "aiokafka")
    opts.pop("bootstrap_servers")

    async def probe(address: str) -> None:
        host, _, port = address.rpartition(":")
        conn = await create_conn(host, int(port), request_timeout_ms=int(timeout * 1000), **opts)
        conn.close()

    for address in _servers(a):
        try:
            asyncio.run(asyncio.wait_for(probe(address), timeout))
        except (SaslAuthenticationFailed, AuthenticationFailedError):
            raise ConfigError(
                f"kafka.sasl_password: the broker at {address} refused user "
                f"{a.sasl_username!r} ({a.sasl_mechanism}); check {SASL_PASSWORD_ENV} (or "
                f"{SASL_PASSWORD_ENV}_FILE) and kafka.sasl_username"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError(
                f"kafka.ssl_cafile: the certificate of the broker at {address} is not trusted "
                f"({exc.verify_message}); set kafka.ssl_cafile to the CA that signed it"
            ) from None
        except (KafkaConnectionError, OSError, TimeoutError):
            continue  # unreachable (or this address is down): not a settings problem
        return


def _servers(a: KafkaAccess) -> list[str]:
    return [s.strip() for s in a.bootstrap.split(",") if s.strip()]
