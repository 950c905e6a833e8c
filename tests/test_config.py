"""Settings: precedence, validation, and every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from crimelens.config import SETTINGS, get_setting
from crimelens.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    for s in SETTINGS.values():
        assert f"| `{s.name}` | `{s.env_var}` | `{s.default}` |" in text, s.name


def test_precedence_cli_env_file_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # independent of where pytest runs: an empty working directory and no CRIMELENS_* variables
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRIMELENS_CONFIG", raising=False)
    monkeypatch.delenv("CRIMELENS_TOP_K", raising=False)
    assert get_setting("top_k", environ={}) == 10  # the default
    assert get_setting("top_k") == 10  # the same through os.environ
    (tmp_path / "crimelens.toml").write_text("top_k = 8\n")
    assert get_setting("top_k", environ={}) == 8  # crimelens.toml in the working directory
    cfg = tmp_path / "c.toml"
    cfg.write_text("top_k = 7\n")
    env = {"CRIMELENS_CONFIG": str(cfg)}
    assert get_setting("top_k", environ=env) == 7  # CRIMELENS_CONFIG names the file, over crimelens.toml
    assert get_setting("top_k", environ={**env, "CRIMELENS_TOP_K": "3"}) == 3
    assert get_setting("top_k", 5, environ={**env, "CRIMELENS_TOP_K": "3"}) == 5
    monkeypatch.setenv("CRIMELENS_TOP_K", "4")
    assert get_setting("top_k") == 4  # os.environ is read when no mapping is given


def test_bad_values_name_their_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable CRIMELENS_TOP_K: expected int, got 'ten'"):
        get_setting("top_k", environ={"CRIMELENS_TOP_K": "ten"})
    cfg = tmp_path / "c.toml"
    cfg.write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        get_setting("top_k", environ={"CRIMELENS_CONFIG": str(cfg)})
    with pytest.raises(ConfigError, match="not found"):
        get_setting("top_k", environ={"CRIMELENS_CONFIG": str(tmp_path / "none.toml")})
