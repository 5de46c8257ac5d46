"""The classic download command: flags, interactive and mixed modes, validation, the run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from civitgrab_desktop.cli.args import UsageError
from civitgrab_desktop.core.model import DownloadMode
from civitgrab_desktop.jobs import identifiers as identifier_rules
from civitgrab_desktop.jobs.download import DownloadParams
from civitgrab_desktop.jobs.identifiers import split_identifiers

MODE_FLAGS = {
    DownloadMode.USERNAME: "username",
    DownloadMode.MODEL: "model_id",
    DownloadMode.TAG: "tags",
    DownloadMode.MODEL_VERSION: "model_version_id",
    DownloadMode.POST: "post_id",
    DownloadMode.IMAGE: "image_id",
}
MODE_PROMPTS = {
    DownloadMode.USERNAME: "Enter username(s) (, separated): ",
    DownloadMode.MODEL: "Enter model ID(s) (numeric, , separated): ",
    DownloadMode.TAG: "Enter tags (, separated): ",
    DownloadMode.MODEL_VERSION: "Enter model version ID(s) (numeric, , separated): ",
    DownloadMode.POST: "Enter post ID(s) or links (, separated): ",
    DownloadMode.IMAGE: "Enter image ID(s) or links (, separated): ",
}
MODE_NAMES = {
    DownloadMode.USERNAME: "username",
    DownloadMode.MODEL: "model ID",
    DownloadMode.TAG: "tag search",
    DownloadMode.MODEL_VERSION: "model version ID",
    DownloadMode.POST: "post ID",
    DownloadMode.IMAGE: "image ID",
}
# Flags that only make sense in some modes (the classic tool warned about the others).
MODE_ONLY_FLAGS = {
    "disable_prompt_check": {DownloadMode.TAG},
    "max_per_model": {DownloadMode.TAG},
    "filter_tags": {DownloadMode.USERNAME, DownloadMode.MODEL_VERSION},
    "deep_scan": {DownloadMode.USERNAME},
}


def normalize_identifiers(mode: DownloadMode, values: list[str]) -> list[str]:
    """Validate identifiers for a mode; pasted CivitAI URLs are understood."""
    try:
        result = identifier_rules.normalize_identifiers(mode, values)
    except identifier_rules.IdentifierError as exc:
        hint = f" (use --mode {exc.link_mode} --{MODE_FLAGS[exc.link_mode]})" if exc.link_mode in MODE_FLAGS else ""
        raise UsageError(f"{exc}{hint}") from None
    if not result:
        raise UsageError(f"no {MODE_NAMES[mode]} given")
    return result


def _ask(prompt: str, read: Callable[[str], str], parse: Callable[[str], object], default=None):
    """Ask until the answer parses; an empty answer takes the default when there is one."""
    while True:
        try:
            answer = read(prompt).strip()
        except EOFError:
            raise UsageError("input ended before all questions were answered") from None
        if not answer and default is not None:
            return default
        try:
            return parse(answer)
        except (UsageError, ValueError) as exc:
            print(f"  {exc}", file=sys.stderr)


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.lstrip("-").isdigit():
            raise ValueError(f"please enter a number from {lo} to {hi}")
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(f"please enter a number from {lo} to {hi}")
        return value

    return parse


def complete_interactively(args: argparse.Namespace, *, full: bool, read: Callable[[str], str] = input) -> None:
    """Interactive mode (no arguments) asks everything; mixed mode only what is missing."""
    if full:
        args.timeout = _ask("Enter timeout value (seconds) [default: 60]: ", read, _int_in(1, 3600), 60)
        args.quality = _ask("Choose image quality (1=SD resized JPEG, 2=HD original) [default: 2]: ", read, _int_in(1, 2), 2)
        args.redownload = _ask("Allow re-downloading tracked items? (1=Yes, 2=No) [default: 2]: ", read, _int_in(1, 2), 2)
    if args.mode is None:
        args.mode = DownloadMode(_ask(
            "Choose mode (1=user, 2=model ID, 3=tag search, 4=model version ID, 5=post ID, 6=image ID): ",
            read, _int_in(min(DownloadMode), max(DownloadMode)),
        ))
    if full:
        args.semaphore_limit = _ask("Enter max concurrent downloads [default: 5]: ", read, _int_in(1, 20), 5)
    flag = MODE_FLAGS[args.mode]
    if not split_identifiers(getattr(args, flag)):
        mode = args.mode
        values = _ask(MODE_PROMPTS[mode], read, lambda t: normalize_identifiers(mode, split_identifiers(t)))
        setattr(args, flag, ",".join(values))
    if args.mode == DownloadMode.TAG and args.disable_prompt_check is None:
        args.disable_prompt_check = _ask(
            "Disable prompt check? (y/n) [default: n]: ", read,
            lambda t: t.lower() if t.lower() in ("y", "n") else (_ for _ in ()).throw(ValueError("please answer y or n")),
            "n",
        )


def mismatch_warnings(args: argparse.Namespace) -> list[str]:
    warnings = []
    mode = args.mode
    for m, flag in MODE_FLAGS.items():
        if m != mode and getattr(args, flag):
            warnings.append(f"Warning: --{flag} is not used in {MODE_NAMES[mode]} mode. This argument will be ignored.")
    for flag, modes in MODE_ONLY_FLAGS.items():
        value = getattr(args, flag, None)
        if value not in (None, False, "", "n") and mode not in modes:
            warnings.append(f"Warning: --{flag} is not used in {MODE_NAMES[mode]} mode. This argument will be ignored.")
    if args.no_videos and args.videos_only:
        raise UsageError("--no_videos and --videos_only exclude each other")
    return warnings


def check_output_dir(folder: str) -> None:
    """Fail before any network traffic when the output folder cannot be written."""
    import tempfile
    from pathlib import Path

    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".civitgrab-write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to the output folder {path}: {exc.strerror or exc}") from None


def params_from_args(args: argparse.Namespace, settings) -> DownloadParams:
    mode = args.mode
    identifiers = normalize_identifiers(mode, split_identifiers(getattr(args, MODE_FLAGS[mode])))
    quality = args.quality if args.quality is not None else settings.get("quality")
    params = DownloadParams(
        mode=mode,
        identifiers=identifiers,
        output_dir=args.output_dir or settings.get("output_dir") or "image_downloads",
        original=quality == 2,
        nsfw=args.nsfw or settings.get("nsfw"),
        layout=args.layout,
        sort=not args.no_sort,
        max_path=args.max_path,
        redownload=args.redownload == 1,
        max_images=args.max_images,
        max_per_model=args.max_per_model if mode == DownloadMode.TAG else None,
        no_videos=args.no_videos,
        videos_only=args.videos_only,
        filter_tags=split_identifiers(args.filter_tags) if mode in (DownloadMode.USERNAME, DownloadMode.MODEL_VERSION) else [],
        prompt_check=(args.disable_prompt_check or "n") == "n",
        deep_scan=bool(args.deep_scan) and mode == DownloadMode.USERNAME,
        pg13_is_nsfw=settings.get("pg13_is_nsfw"),
    )
    if args.deep_scan_threshold:
        params.cap_threshold = args.deep_scan_threshold
    return params
