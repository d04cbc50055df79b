"""Grafana provisioning files (``deploy/grafana/provisioning``) for the generated dashboards.

A Grafana started with ``paths.provisioning`` pointing there, and ``RIPPLE_HOME`` set to the
repository, shows the Prometheus data source and every dashboard without any clicking.
"""

from __future__ import annotations

from dashboards.config import CONFIG, Config
from ingest.config import StackSettings


def prometheus_url(cfg: Config = CONFIG) -> str:
    return cfg.grafana.prometheus_url or f"http://127.0.0.1:{StackSettings().prometheus_port}"


def datasources(cfg: Config = CONFIG) -> dict[str, object]:
    g = cfg.grafana
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": g.datasource_name,
                "uid": g.datasource_uid,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url(cfg),
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": g.scrape_interval, "httpMethod": "POST"},
            }
        ],
    }


def dashboard_providers(cfg: Config = CONFIG) -> dict[str, object]:
    g = cfg.grafana
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "ripple",
                "orgId": 1,
                "folder": g.folder,
                "folderUid": g.folder_uid,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,  # generated: change dashboards/ and regenerate
                "updateIntervalSeconds": 30,
                # Grafana expands environment variables in provisioning files.
                "options": {"path": "${RIPPLE_HOME}/dashboards/out/grafana"},
            }
        ],
    }
