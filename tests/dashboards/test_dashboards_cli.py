"""``ripple dashboards generate|check`` through the real command line."""

from __future__ import annotations

import pytest

from dashboards import checks, generate
from deploy.cli import build_parser, main


def test_dashboards_commands_are_registered() -> None:
    help_text = build_parser().format_help()
    assert "dashboards" in help_text


def test_generate_writes_then_reports_up_to_date(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generate, "REPO_ROOT", tmp_path)
    assert main(["dashboards", "generate"]) == 0
    assert (tmp_path / "dashboards/out/grafana/smm.json").exists()
    assert "wrote" in capsys.readouterr().out
    assert main(["dashboards", "generate"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_passes_on_the_committed_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "check"]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_reports_a_stale_file(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generate, "REPO_ROOT", tmp_path)
    # promtool's unit tests take a while and pass on the committed tree (test above).
    monkeypatch.setattr(checks, "promtool_test_rules", lambda files=None: [])
    generate.write()
    (tmp_path / "dashboards/out/grafana/smo.json").write_text("{}\n")
    assert main(["dashboards", "check"]) == 1
    assert "smo.json differs" in capsys.readouterr().err
