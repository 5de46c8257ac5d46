"""Settings, directories and logging (core/config.py)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import stat

import pytest

from civitgrab_desktop.core import atomic_write, config
from civitgrab_desktop.core.atomic_write import atomic_write_text
from civitgrab_desktop.core.config import SETTINGS, AppPaths, Settings, resolve_api_base


def test_every_setting_has_a_valid_default():
    for setting in SETTINGS:
        assert setting.coerce(setting.default) == setting.default, setting.name
        assert setting.help


def test_settings_round_trip_and_bad_values_fall_back(tmp_path):
    path = tmp_path / "settings.json"
    s = Settings.load(path)
    assert s.get("concurrency") == 5
    s.set("concurrency", "12")
    s.set("theme", "dark")
    s.set_raw("window_geometry", "abc")
    s.save()
    again = Settings.load(path)
    assert again.get("concurrency") == 12 and again.get("theme") == "dark" and again.raw("window_geometry") == "abc"
    with pytest.raises(ValueError):
        again.set("concurrency", 99)
    with pytest.raises(ValueError):
        again.set("theme", "purple")
    path.write_text(json.dumps({"concurrency": "lots", "theme": 5}))
    broken = Settings.load(path)
    assert broken.get("concurrency") == 5 and broken.get("theme") == "system"
    path.write_text("{not json")
    assert Settings.load(path).get("nsfw") == "x"


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVITGRAB_DATA_DIR", str(tmp_path / "env"))
    assert AppPaths.resolve(tmp_path / "flag").data_dir == (tmp_path / "flag").resolve()
    assert AppPaths.resolve().data_dir == (tmp_path / "env").resolve()
    monkeypatch.delenv("CIVITGRAB_DATA_DIR")
    assert AppPaths.resolve().data_dir == config.default_data_dir().resolve()
    paths = AppPaths.resolve(tmp_path / "d").ensure()
    assert paths.library.name == "library.sqlite3" and paths.logs.is_dir() and paths.thumbnails.is_dir()


def test_api_base_precedence(tmp_path, monkeypatch):
    s = Settings(tmp_path / "s.json")
    assert resolve_api_base(None, s) == "https://civitai.com"
    s.set("api_base", "https://civitai.red/")
    assert resolve_api_base(None, s) == "https://civitai.red"
    monkeypatch.setenv("CIVITGRAB_API_BASE", "http://127.0.0.1:1")
    assert resolve_api_base(None, s) == "http://127.0.0.1:1"
    assert resolve_api_base("http://127.0.0.1:2", s) == "http://127.0.0.1:2"


def test_atomic_write_keeps_normal_permissions(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~atomic_write._UMASK
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_log_file_rotates_and_masks_the_api_key(tmp_path):
    paths = AppPaths(tmp_path / "data").ensure()
    log_file = config.setup_logging(paths)
    config.register_secret("my-secret-key-123")
    try:
        logging.getLogger("civitgrab.test").warning("sending my-secret-key-123 to %s", "somewhere")
        handler = next(h for h in logging.getLogger().handlers if getattr(h, "_civitgrab", False))
        assert isinstance(handler, logging.handlers.RotatingFileHandler)
        handler.flush()
        text = log_file.read_text()
        assert "sending *** to somewhere" in text and "my-secret-key-123" not in text
    finally:
        config._SecretFilter.secrets.discard("my-secret-key-123")
        for h in list(logging.getLogger().handlers):
            if getattr(h, "_civitgrab", False):
                logging.getLogger().removeHandler(h)
                h.close()
