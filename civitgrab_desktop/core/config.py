"""Settings (declared once, with defaults) and the per-user directories.

Everything the app stores lives under one data dir (library, logs, thumbnails, settings), taken from
platformdirs unless `--data-dir` / `CIVITGRAB_DATA_DIR` points elsewhere. Nothing is written next to
the executable, so read-only installs work.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from civitgrab_desktop import APP_NAME
from civitgrab_desktop.core.atomic_write import atomic_write_text
from civitgrab_desktop.core.civitai.hosts import DEFAULT_SITE, site_names

DEFAULT_API_BASE = DEFAULT_SITE
ENV_DATA_DIR = "CIVITGRAB_DATA_DIR"
ENV_API_BASE = "CIVITGRAB_API_BASE"
ENV_API_KEY = "CIVITAI_API_KEY"

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any) -> Any:
        """Return `value` as this setting's type, or raise ValueError."""
        kind = type(self.default)
        if kind is bool:
            if isinstance(value, str):
                value = value.strip().lower() in {"1", "true", "yes", "on", "y"}
            value = bool(value)
        elif kind is int:
            value = int(value)
        elif kind is float:
            value = float(value)
        elif kind is str:
            value = "" if value is None else str(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{self.name}: {value} is below {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{self.name}: {value} is above {self.maximum}")
        return value


# The one declaration of every setting. The GUI's settings dialog and the CLI defaults read this.
SETTINGS: tuple[Setting, ...] = (
    Setting("api_base", DEFAULT_API_BASE, f"CivitAI site/API base URL ({site_names(', ')} or a custom base)"),
    Setting("output_dir", "", "Default download folder (empty: ./image_downloads for the CLI, ~/Pictures/civitgrab for the app)"),
    Setting("nsfw", "x", "NSFW levels to include", choices=("none", "soft", "mature", "x")),
    Setting("quality", 2, "1 = CDN-resized JPEG, 2 = original bytes", choices=(1, 2)),
    Setting("concurrency", 5, "Concurrent transfers", minimum=1, maximum=20),
    Setting("timeout", 60, "Network timeout in seconds", minimum=1, maximum=3600),
    Setting("retries", 5, "Retries for a file (listing pages get at least 10)", minimum=0, maximum=50),
    Setting("politeness_interval", 0.0, "Minimum seconds between requests to one host", minimum=0.0, maximum=60.0),
    Setting("tag_method", "auto", "How to fetch community tags", choices=("auto", "api", "browser")),
    Setting("tag_workers", 8, "Parallel tag fetches", minimum=1, maximum=32),
    Setting("browser_path", "", "Browser for the browser tag method: an executable, or chrome / msedge / firefox "
            "for an installed one (empty: find one)"),
    Setting("convert_quality", 90, "WebP quality", minimum=1, maximum=100),
    Setting("convert_lossless", False, "Lossless WebP"),
    Setting("convert_workers", 0, "Converter processes (0: number of cores)", minimum=0, maximum=64),
    Setting("convert_batch_size", 100, "Images claimed per converter batch", minimum=1, maximum=10000),
    Setting("phash_threshold", 4, "Largest perceptual-hash distance accepted by the converter", minimum=0, maximum=64),
    Setting("pg13_is_nsfw", False, "Count PG-13 images as NSFW in the organized layout"),
    Setting("theme", "system", "Window theme", choices=("system", "light", "dark")),
    Setting("update_stop_after", 50, "Incremental update stops after this many known items in a row", minimum=1, maximum=100000),
    Setting("update_every_hours", 0, "Check saved queries every N hours while the app runs (0: never)", minimum=0, maximum=720),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=True))


@dataclass
class AppPaths:
    data_dir: Path
    library: Path = field(init=False)
    logs: Path = field(init=False)
    thumbnails: Path = field(init=False)
    settings: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.library = self.data_dir / "library.sqlite3"
        self.logs = self.data_dir / "logs"
        self.thumbnails = self.data_dir / "thumbnails"
        self.settings = self.data_dir / "settings.json"

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike | None = None) -> AppPaths:
        """`--data-dir` beats `CIVITGRAB_DATA_DIR` beats the platform default."""
        chosen = data_dir or os.environ.get(ENV_DATA_DIR) or default_data_dir()
        return cls(Path(chosen))

    def ensure(self) -> AppPaths:
        for d in (self.data_dir, self.logs, self.thumbnails):
            d.mkdir(parents=True, exist_ok=True)
        return self


class Settings:
    """User settings stored as JSON in the data dir; unknown keys are kept, bad values fall back."""

    def __init__(self, path: Path, values: dict[str, Any] | None = None):
        self.path = Path(path)
        self._values: dict[str, Any] = dict(values or {})

    @classmethod
    def load(cls, path: Path) -> Settings:
        values: dict[str, Any] = {}
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(values, dict):
                raise ValueError("settings file is not a JSON object")
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            LOG.warning("Ignoring unreadable settings file %s: %s", path, exc)
            values = {}
        return cls(path, values)

    def get(self, name: str) -> Any:
        setting = SETTINGS_BY_NAME[name]
        if name in self._values:
            try:
                return setting.coerce(self._values[name])
            except (TypeError, ValueError):
                LOG.warning("Setting %s has a bad stored value; using the default", name)
        return setting.default

    def set(self, name: str, value: Any) -> None:
        self._values[name] = SETTINGS_BY_NAME[name].coerce(value)

    def reset(self, name: str) -> None:
        self._values.pop(name, None)

    def raw(self, key: str, default: Any = None) -> Any:
        """Free-form state that is not a user setting (window geometry, splitter states...)."""
        return self._values.get(key, default)

    def set_raw(self, key: str, value: Any) -> None:
        self._values[key] = value

    def as_dict(self) -> dict[str, Any]:
        return {s.name: self.get(s.name) for s in SETTINGS}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self._values, indent=2, sort_keys=True))


def resolve_api_base(cli_value: str | None = None, settings: Settings | None = None) -> str:
    """`--api-base` beats `CIVITGRAB_API_BASE` beats the saved setting beats DEFAULT_SITE."""
    value = cli_value or os.environ.get(ENV_API_BASE) or (settings.get("api_base") if settings else None)
    return (value or DEFAULT_API_BASE).rstrip("/")


class _SecretFilter(logging.Filter):
    """Masks registered secrets (the API key) in every log record, whatever logs them: the
    message, and the traceback and stack text a handler would print after it (an exception's
    message or a local URL can hold the key)."""

    secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            masked = mask_secrets(msg)
            if masked != msg:
                record.msg, record.args = masked, ()
            if record.exc_info and not record.exc_text:
                # Formatted here, once: handlers use exc_text when it is set.
                record.exc_text = _PLAIN_FORMATTER.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = mask_secrets(record.exc_text)
            if record.stack_info:
                record.stack_info = mask_secrets(record.stack_info)
        return True


_PLAIN_FORMATTER = logging.Formatter()


def mask_secrets(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    for secret in _SecretFilter.secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


SECRET_FILTER = _SecretFilter()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        _SecretFilter.secrets.add(value)


def setup_logging(paths: AppPaths, debug: bool = False, console_level: int | None = None) -> Path:
    """Rotating log file in the data dir; optional console handler. Returns the log file path."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_file = paths.logs / "civitgrab.log"
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_civitgrab", False):
            root.removeHandler(handler)
            handler.close()
    fmt = logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    file_handler.setFormatter(fmt)
    file_handler.addFilter(SECRET_FILTER)
    file_handler._civitgrab = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)
    if console_level is not None:
        console = logging.StreamHandler()
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        console.addFilter(SECRET_FILTER)
        console._civitgrab = True  # type: ignore[attr-defined]
        root.addHandler(console)
    for noisy in ("aiohttp.access", "asyncio", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file
