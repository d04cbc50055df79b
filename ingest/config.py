"""Configuration: one TOML file, overridable by environment variables.

The file holds the tracking rules of METRICS.md (``[[brands]]``, ``[[campaigns]]``,
``[[sites]]``) and the pipeline's settings (``[kafka]``, ``[stack]``, ``[processing]``,
``[collector]``, ``[sources.<name>]``, ``[networks]``). Every setting has a default, so an
empty file (or none) runs the local stack. Secrets never live here: sources name the
environment variables or secret files that hold them.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class Brand(msgspec.Struct):
    name: str
    terms: list[str] = []
    hashtags: list[str] = []
    domains: list[str] = []
    competitor: bool = False
    accounts: dict[str, list[str]] = {}


class Campaign(msgspec.Struct):
    name: str
    brand: str
    hashtags: list[str] = []
    terms: list[str] = []
    utm_campaign: list[str] = []
    start: str | None = None  # RFC 3339 (or a date); drawn as annotations on the dashboards
    end: str | None = None


class Site(msgspec.Struct):
    name: str
    domains: list[str] = []


class KafkaSettings(msgspec.Struct, forbid_unknown_fields=True):
    bootstrap: str = "127.0.0.1:19092"
    namespace: str = "ripple"
    partitions: int = 6
    max_event_bytes: int = 65536
    # Security (checked in _check_kafka; clients built by ingest/kafka_client.py). The SASL
    # password is no field: it comes from RIPPLE_KAFKA_SASL_PASSWORD(_FILE) only.
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str = "SCRAM-SHA-512"  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str = ""
    ssl_cafile: str = ""  # PEM; empty: the system's trust store
    ssl_certfile: str = ""  # PEM client certificate (mutual TLS), with ssl_keyfile
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    # Every topic Ripple creates (faust's changelogs included) gets these.
    replication_factor: int = 1
    min_insync_replicas: int | None = None  # None: the broker's default


class StackSettings(msgspec.Struct, forbid_unknown_fields=True):
    state_dir: str = ".ripple"
    kafka_version: str = "3.9.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    prometheus_port: int = 19090
    alertmanager_port: int = 19093 + 1
    # The local webhook receiver Alertmanager's default route posts to (notifications.log).
    webhook_port: int = 19095
    collector_port: int = 18080
    worker_web_port: int = 16066
    workers: int = 1
    # Local Kafka nodes (broker + controller each); node i listens on kafka_port + 100 * i.
    brokers: int = 1


class ProcessingSettings(msgspec.Struct, forbid_unknown_fields=True):
    allowed_lateness_seconds: int = 600
    dedupe_seconds: int = 86400
    target_retention_seconds: int = 7 * 86400
    session_attribution_seconds: int = 1800
    rocksdb_block_cache_mb: int = 64
    gate_batch_records: int = 5000  # events per gate batch (larger: faster, coarser)
    # The gate in a process of its own beside the agents (a second core); false: one process.
    gate_process: bool = True
    # EVENTS.md "Bounds": ts may be at most this far after ingested_at (future_ts).
    max_future_seconds: int = 300


class CollectorSettings(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 18080
    max_body_bytes: int = 16384
    max_batch: int = 50
    rate_per_second: float = 50.0
    rate_burst: int = 200
    spool_path: str = ""
    spool_max_seconds: int = 3600
    spool_max_bytes: int = 256 * 1024 * 1024
    # Delivered bytes at the head of the spool file past which it is compacted.
    spool_compact_bytes: int = 16 * 1024 * 1024
    # /metrics on its own port (bound to ``host``), so the public port shows no traffic
    # figures; 0 serves it on the public port as before.
    metrics_port: int = 0


class NetworkSettings(msgspec.Struct, forbid_unknown_fields=True):
    # Extra referrer domains per network, e.g. {"mastodon": ["mastodon.social"]}.
    extra_domains: dict[str, list[str]] = {}


class SentimentSettings(msgspec.Struct, forbid_unknown_fields=True):
    # METRICS.md r2: the scorer that labels brand-mentioning posts ("vader" by default);
    # a replay with another scorer recomputes history.
    scorer: str = "vader"


class FilterSettings(msgspec.Struct, forbid_unknown_fields=True):
    # METRICS.md r2 "Excluded authors": platform -> author ids whose events count for nothing.
    exclude_authors: dict[str, list[str]] = {}


class AlertRule(msgspec.Struct, forbid_unknown_fields=True):
    """METRICS.md r2 "Spikes and drops": one alert's factor, floor and resolve factor.
    Unset fields take the alert's default from ``ALERT_DEFAULTS``."""

    factor: float | None = None
    floor: float | None = None
    resolve: float | None = None


class SlackChannel(msgspec.Struct, forbid_unknown_fields=True):
    # The incoming-webhook URL is a secret: Alertmanager reads it from webhook_url_file (a
    # secret file it can read); webhook_url_env names the variable `ripple dashboards
    # generate` copies into that file. Never written into alertmanager.yml.
    channel: str = ""
    webhook_url_env: str = ""
    webhook_url_file: str = ""


class EmailChannel(msgspec.Struct, forbid_unknown_fields=True):
    smarthost: str  # host:port of the mail relay
    to: list[str]
    sender: str = msgspec.field(default="ripple@localhost", name="from")
    username: str = ""
    password_env: str = ""  # like slack: the password reaches Alertmanager as a file
    password_file: str = ""
    require_tls: bool = True


class WebhookChannel(msgspec.Struct, forbid_unknown_fields=True):
    url: str


class NotificationSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Where live alerts go (``deploy/alertmanager.yml``, by ``ripple dashboards generate``).
    None configured: the local webhook of the stack only."""

    slack: SlackChannel | None = None
    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None
    # Links in notifications point at this Grafana (dashboards with their variables set).
    grafana_url: str = "http://127.0.0.1:3000"
    # Where generated secret files go (relative to the stack's state dir when relative).
    secrets_dir: str = "secrets"


# The rule table's defaults (factor, floor, resolve); the catalogue of alerts reads these.
ALERT_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "EngagementDrop": (0.5, 20.0, 0.8),
    "MentionSpike": (3.0, 30.0, 1.5),
    "NegativeSentimentSpike": (3.0, 10.0, 1.5),
    "SocialReferralDrop": (0.5, 20.0, 0.8),
}


class Config(msgspec.Struct):
    brands: list[Brand] = []
    campaigns: list[Campaign] = []
    sites: list[Site] = []
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    stack: StackSettings = msgspec.field(default_factory=StackSettings)
    processing: ProcessingSettings = msgspec.field(default_factory=ProcessingSettings)
    collector: CollectorSettings = msgspec.field(default_factory=CollectorSettings)
    networks: NetworkSettings = msgspec.field(default_factory=NetworkSettings)
    sentiment: SentimentSettings = msgspec.field(default_factory=SentimentSettings)
    filters: FilterSettings = msgspec.field(default_factory=FilterSettings)
    alerts: dict[str, AlertRule] = {}
    notifications: NotificationSettings = msgspec.field(default_factory=NotificationSettings)
    # Per-source settings stay loosely typed here; each source validates its own table.
    sources: dict[str, dict[str, Any]] = {}
    path: str | None = None

    def brand(self, name: str) -> Brand | None:
        return next((b for b in self.brands if b.name == name), None)

    def alert_rule(self, name: str) -> tuple[float, float, float]:
        """(factor, floor, resolve) of one alert: ``[alerts.<name>]`` over the defaults."""
        factor, floor, resolve = ALERT_DEFAULTS[name]
        rule = self.alerts.get(name)
        if rule is not None:
            factor = factor if rule.factor is None else rule.factor
            floor = floor if rule.floor is None else rule.floor
            resolve = resolve if rule.resolve is None else rule.resolve
        return factor, floor, resolve


# Environment overrides: RIPPLE_<SECTION>_<KEY>, e.g. RIPPLE_KAFKA_BOOTSTRAP.
_ENV_SECTIONS = ("kafka", "stack", "processing", "collector")


# Secrets read by read_secret where they are used, never settings (not in the TOML, repr).
SASL_PASSWORD_ENV = "RIPPLE_KAFKA_SASL_PASSWORD"
_SECRET_ENV = (SASL_PASSWORD_ENV, f"{SASL_PASSWORD_ENV}_FILE")


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> None:
    for section in _ENV_SECTIONS:
        prefix = f"RIPPLE_{section.upper()}_"
        for key, value in env.items():
            if key.startswith(prefix) and key not in _SECRET_ENV:
                raw.setdefault(section, {})[key[len(prefix) :].lower()] = value


def _coerce(raw: dict[str, Any]) -> dict[str, Any]:
    """Environment values are strings; coerce them to the declared field types."""
    for section, struct in (
        ("kafka", KafkaSettings),
        ("stack", StackSettings),
        ("processing", ProcessingSettings),
        ("collector", CollectorSettings),
    ):
        table = raw.get(section)
        if not isinstance(table, dict):
            continue
        for field in msgspec.structs.fields(struct):
            value = table.get(field.name)
            if field.type == int | None and isinstance(value, str):
                field_type: Any = int  # e.g. RIPPLE_KAFKA_MIN_INSYNC_REPLICAS=2
            else:
                field_type = field.type
            if isinstance(value, str) and field_type in (int, float, bool):
                if field_type is bool:
                    table[field.name] = value.lower() in ("1", "true", "yes", "on")
                else:
                    try:
                        table[field.name] = field_type(value)
                    except ValueError:
                        raise ConfigError(
                            f"{section}.{field.name}: {value!r} is not a {field_type.__name__}"
                        ) from None
    return raw


def load_config(
    path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Config:
    """Load the TOML file (``$RIPPLE_CONFIG`` when no path is given), then the environment."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("RIPPLE_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    if isinstance(raw.get("kafka"), dict) and "sasl_password" in raw["kafka"]:
        raise ConfigError(
            f"{path}: kafka.sasl_password must not be in the file: set {SASL_PASSWORD_ENV} "
            f"or {SASL_PASSWORD_ENV}_FILE (a file holding it)"
        )
    _apply_env(raw, env)
    _warn_unknown(raw, str(path or "configuration"))
    try:
        cfg = msgspec.convert(_coerce(raw), Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path or 'configuration'}: {exc}") from None
    _check(cfg)
    if path:
        cfg.path = str(Path(path).resolve())
    return cfg


def _warn_unknown(raw: dict[str, Any], where: str) -> None:
    """Unknown keys in the tracking tables are reported, not fatal: a rules file written for
    a newer Ripple (or with a note-to-self key) still replays. Settings stay strict."""
    tables: dict[str, type[msgspec.Struct]] = {
        "brands": Brand,
        "campaigns": Campaign,
        "sites": Site,
    }
    known_top = {f.name for f in msgspec.structs.fields(Config)}
    for key in raw:
        if key not in known_top:
            log.warning("%s: ignoring unknown top-level key %r", where, key)
    for key, struct in tables.items():
        known = {f.name for f in msgspec.structs.fields(struct)}
        for i, item in enumerate(raw.get(key) or []):
            if isinstance(item, dict):
                for k in item:
                    if k not in known:
                        log.warning("%s: ignoring unknown key %r in %s[%d]", where, k, key, i)


def _check(cfg: Config) -> None:
    names = [b.name for b in cfg.brands]
    if len(names) != len(set(names)):
        raise ConfigError("brands: duplicate brand names")
    for c in cfg.campaigns:
        if cfg.brand(c.brand) is None:
            raise ConfigError(f"campaigns.{c.name}: unknown brand {c.brand!r}")
    for name in cfg.alerts:
        if name not in ALERT_DEFAULTS:
            known = ", ".join(sorted(ALERT_DEFAULTS))
            raise ConfigError(f"alerts.{name}: unknown alert (known: {known})")
    if cfg.kafka.partitions < 1:
        raise ConfigError("kafka.partitions must be at least 1")
    _check_kafka(cfg.kafka)
    if cfg.stack.brokers < 1:
        raise ConfigError("stack.brokers must be at least 1")


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _check_kafka(k: KafkaSettings) -> None:
    """Combinations that cannot work fail here, naming the setting, not at the first connect."""
    if k.security_protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(
            f"kafka.security_protocol: {k.security_protocol!r} is not one of "
            + ", ".join(SECURITY_PROTOCOLS)
        )
    sasl = k.security_protocol.startswith("SASL_")
    tls = k.security_protocol.endswith("SSL")
    if sasl and k.sasl_mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            f"kafka.sasl_mechanism: {k.sasl_mechanism!r} is not one of "
            + ", ".join(SASL_MECHANISMS)
        )
    if sasl and not k.sasl_username:
        raise ConfigError(f"kafka.sasl_username is required with {k.security_protocol}")
    if not sasl and k.sasl_username:
        raise ConfigError(
            f"kafka.sasl_username is set but kafka.security_protocol is {k.security_protocol} "
            "(use SASL_SSL or SASL_PLAINTEXT)"
        )
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(k, name)
        if value and not tls:
            raise ConfigError(
                f"kafka.{name} is set but kafka.security_protocol is {k.security_protocol} "
                "(use SSL or SASL_SSL)"
            )
        if value and not Path(value).is_file():
            raise ConfigError(f"kafka.{name}: no such file: {value}")
    if bool(k.ssl_certfile) != bool(k.ssl_keyfile):
        raise ConfigError("kafka.ssl_certfile and kafka.ssl_keyfile go together (mutual TLS)")
    if k.replication_factor < 1:
        raise ConfigError("kafka.replication_factor must be at least 1")
    if k.min_insync_replicas is not None and not 1 <= k.min_insync_replicas <= k.replication_factor:
        raise ConfigError(
            f"kafka.min_insync_replicas must be between 1 and kafka.replication_factor "
            f"({k.replication_factor}), not {k.min_insync_replicas}"
        )


def read_secret(env_name: str, env: dict[str, str] | None = None) -> str | None:
    """A secret from ``$NAME`` or from the file named by ``$NAME_FILE``; never logged."""
    env = dict(os.environ) if env is None else env
    if env.get(env_name):
        return env[env_name]
    file = env.get(f"{env_name}_FILE")
    if file:
        return Path(file).read_text(encoding="utf-8").strip()
    return None
