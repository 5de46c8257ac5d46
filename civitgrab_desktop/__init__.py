"""civitgrab: download, tag, convert and browse CivitAI media."""

__version__ = "0.1.0"
APP_NAME = "civitgrab"
