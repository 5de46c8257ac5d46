"""civitgrab-cli's arguments: every flag of the classic CLI, plus subcommands.

Classic flags keep their underscore spelling (`--model_id`, `--semaphore_limit` …) so old scripts
and .bat files keep working. New options use the same spelling for consistency, with dashed aliases.
"""

from __future__ import annotations

import argparse

from civitgrab_desktop import __version__
from civitgrab_desktop.core.config import DEFAULT_API_BASE
from civitgrab_desktop.core.model import DownloadMode

SUBCOMMANDS = ("tags", "convert", "export-csv", "migrate", "roots", "tagnames", "auth", "update", "queries", "jobs",
               "resume")


class UsageError(Exception):
    """Bad input from the user: printed as one clear line, exit code 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def bounded_int(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not between {lo} and {hi}")
        return value

    parse.__name__ = f"int {lo}-{hi}"
    return parse


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", default=default, metavar="DIR",
                        help="library, logs and settings folder (default: per-user data dir; env CIVITGRAB_DATA_DIR)")
    parser.add_argument("--api-base", "--api_base", dest="api_base", default=default, metavar="URL",
                        help=f"CivitAI base URL (default {DEFAULT_API_BASE}; env CIVITGRAB_API_BASE)")
    parser.add_argument("--api-key", "--api_key", dest="api_key", default=default, metavar="KEY",
                        help="CivitAI API key (visible to other users in the process list and kept in shell history: "
                        "prefer `civitgrab-cli auth set` (keychain) or env CIVITAI_API_KEY)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="verbose logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civitgrab-cli",
        allow_abbrev=False,
        description="Download CivitAI images and videos at full resolution (classic CLI compatible), "
        "fetch community tags, convert to WebP, export the library.",
        epilog="Run without arguments in a terminal for interactive mode. Subcommands: " + ", ".join(SUBCOMMANDS),
    )
    parser.add_argument("--version", action="version", version=f"civitgrab {__version__}")
    _global_options(parser, suppress=False)
    dl = parser.add_argument_group("download (classic flags)")
    dl.add_argument("--mode", type=int, choices=tuple(int(mode) for mode in DownloadMode),
                    help="1 username, 2 model ID, 3 tag, 4 model version ID, 5 post ID, 6 image ID")
    dl.add_argument("--username", help="comma-separated usernames (mode 1)")
    dl.add_argument("--model_id", "--model-id", dest="model_id", help="comma-separated model IDs (mode 2)")
    dl.add_argument("--model_version_id", "--model-version-id", dest="model_version_id",
                    help="comma-separated model version IDs (mode 4)")
    dl.add_argument("--tags", help="comma-separated model tags (mode 3)")
    dl.add_argument("--post_id", "--post-id", dest="post_id", help="comma-separated post IDs or post links (mode 5)")
    dl.add_argument("--image_id", "--image-id", dest="image_id", help="comma-separated image IDs or image links (mode 6)")
    dl.add_argument("--disable_prompt_check", choices=("y", "n"), default=None,
                    help="mode 3: y = keep images whose prompt lacks the tag words (default n)")
    dl.add_argument("--quality", type=int, choices=(1, 2), default=None,
                    help="1 = the CDN's resized JPEG, 2 = original bytes (default 2, full resolution)")
    dl.add_argument("--redownload", type=int, choices=(1, 2), default=None,
                    help="1 = download the given targets again, 2 = skip what is in the library (default)")
    dl.add_argument("--timeout", type=bounded_int(1, 3600), default=None, help="network timeout in seconds (default 60)")
    dl.add_argument("--retries", type=bounded_int(0, 50), default=None, help="retries per file (default 5)")
    dl.add_argument("--semaphore_limit", "--semaphore-limit", dest="semaphore_limit", type=bounded_int(1, 20),
                    default=None, help="concurrent transfers, 1-20 (default 5)")
    dl.add_argument("--output_dir", "--output-dir", dest="output_dir", default=None,
                    help="download folder (default image_downloads)")
    dl.add_argument("--no_sort", "--no-sort", dest="no_sort", action="store_true",
                    help="no model-name subfolders")
    dl.add_argument("--max_path", "--max-path", dest="max_path", type=bounded_int(60, 4096), default=240,
                    help="longest path in characters (default 240)")
    dl.add_argument("--filter_tags", "--filter-tags", dest="filter_tags",
                    help="comma-separated words that must all be in the prompt (modes 1 and 4)")
    dl.add_argument("--max_images", "--max-images", dest="max_images", type=positive_int, help="stop after N downloads")
    dl.add_argument("--max_per_model", "--max-per-model", dest="max_per_model", type=positive_int,
                    help="mode 3: at most N downloads per model")
    dl.add_argument("--no_videos", "--no-videos", dest="no_videos", action="store_true", help="skip videos")
    dl.add_argument("--videos_only", "--videos-only", dest="videos_only", action="store_true", help="only videos")
    dl.add_argument("--deep_scan", "--deep-scan", dest="deep_scan", action="store_true",
                    help="mode 1: extra passes past the service's ~50,000-item cap")
    dl.add_argument("--deep_scan_threshold", dest="deep_scan_threshold", type=positive_int, default=None,
                    help=argparse.SUPPRESS)
    dl.add_argument("--nsfw", choices=("none", "soft", "mature", "x"), default=None,
                    help="levels to include: none=PG, soft=+PG-13, mature=+R, x=everything (default x)")
    dl.add_argument("--layout", choices=("classic", "organized"), default="classic",
                    help="classic folders, or CivitAI_Browse/{Images,Videos}/{SFW,NSFW}/<version>/<user>")
    dl.add_argument("--no-save", "--no_save", dest="no_save", action="store_true",
                    help="do not save this query for `update`")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        _global_options(p, suppress=True)
        return p

    tags = add("tags", "fetch community tags for downloaded images")
    tags.add_argument("--method", choices=("auto", "api", "browser"), default=None, help="default: auto")
    tags.add_argument("--workers", type=bounded_int(1, 32), default=None, help="parallel fetches, 1-32 (default 8)")
    tags.add_argument("--limit", type=positive_int, default=None, help="at most N images")
    tags.add_argument("--retag", action="store_true", help="fetch again even when tags are known")
    tags.add_argument("--max-age-days", "--max_age_days", dest="max_age_days", type=positive_int, default=None,
                      help="also refresh tags older than N days")
    tags.add_argument(
        "--browser", dest="browser_path", default=None,
        help="browser for --method browser: an executable path, or an installed browser's channel "
        "(chrome, msedge, firefox) when the built-in headless Chromium is challenged",
    )

    conv = add("convert", "convert downloaded JPG/PNG to WebP with metadata and tags in EXIF and XMP")
    conv.add_argument("--quality", type=bounded_int(1, 100), default=None, help="WebP quality 1-100 (default 90)")
    conv.add_argument("--lossless", action="store_true", help="lossless WebP")
    conv.add_argument("--workers", type=bounded_int(1, 64), default=None, help="processes (default: cores)")
    conv.add_argument("--batch-size", "--batch_size", dest="batch_size", type=bounded_int(1, 10000), default=None)
    conv.add_argument("--only-tagged", "--only_tagged", dest="only_tagged", action="store_true",
                      help="only images whose tags were fetched")
    where = conv.add_mutually_exclusive_group()
    where.add_argument("--in-place", "--in_place", dest="in_place", action="store_true",
                       help="write the WebP next to the original and delete the original after verification")
    where.add_argument("--dest", metavar="DIR",
                       help="folder that receives CivitAI_Browse/... (default: the download folder); "
                       "originals are kept")
    vids = conv.add_mutually_exclusive_group()
    vids.add_argument("--move-videos", "--move_videos", dest="videos", action="store_const", const="move",
                      help="move videos into the organized folder")
    vids.add_argument("--copy-videos", "--copy_videos", dest="videos", action="store_const", const="copy",
                      help="hard-link or copy videos into the organized folder (default)")
    vids.add_argument("--no-videos", "--no_videos", dest="videos", action="store_const", const="none",
                      help="leave videos where they are")
    conv.add_argument("--phash-threshold", "--phash_threshold", dest="phash_threshold", type=bounded_int(0, 64),
                      default=None, help="largest perceptual-hash distance accepted, 0-64 (default 4)")
    conv.add_argument("--pg13-nsfw", dest="pg13_is_nsfw", action="store_true", help="count PG-13 as NSFW")
    conv.add_argument("--username", help="only this user's images")
    conv.add_argument("--model-version", dest="model_version", help="only this model version name")
    conv.add_argument("--source", help="only images found by this query, e.g. username:alice")
    conv.add_argument("--nsfw-class", dest="nsfw_class", choices=("sfw", "nsfw"), help="only SFW or NSFW images")
    conv.add_argument("--limit", type=positive_int, default=None, help="at most N images")
    conv.add_argument("--refresh-metadata", "--refresh_metadata", dest="refresh_metadata", action="store_true",
                      help="rewrite the EXIF/XMP of WebP files converted earlier from the library (tags, prompt, "
                      "settings) without re-encoding them; --username and --limit narrow it")

    exp = add("export-csv", "write the library as CSV, one row per image")
    exp.add_argument("file", help="output CSV file")

    mig = add("migrate", "import the classic tool's downloaded_images.json / tracking_database.sqlite")
    mig.add_argument("--json", dest="json_path", help="classic downloaded_images.json")
    mig.add_argument("--sqlite", dest="sqlite_path", help="classic tracking_database.sqlite")
    mig.add_argument("folder", nargs="?", help="folder holding the classic files (looks for both)")
    mig.add_argument("--trust-root", "--trust_root", dest="trust_root", action="append", metavar="DIR",
                     help="let civitgrab change imported files under DIR (convert in place, tags, delete); "
                     "repeat for several folders. Files elsewhere are imported read-only")

    rts = add("roots", "list, add or remove the folders civitgrab may change files in")
    rts.add_argument("action", nargs="?", default="list", choices=("list", "add", "remove"))
    rts.add_argument("folder", nargs="?", help="for add / remove")

    tn = add("tagnames", "list the service's model tags; appends only new ones")
    tn.add_argument("--out", default="tag_names.txt", help="output file (default tag_names.txt)")

    auth = add("auth", "store or clear the API key in the OS keychain")
    auth.add_argument("action", choices=("set", "clear", "status"))
    auth.add_argument("--key", help="the key (default: prompt, or read one line from stdin)")

    upd = add("update", "re-run saved queries, newest first, stopping at known items")
    upd.add_argument("--stop-after", "--stop_after", dest="stop_after", type=positive_int, default=None,
                     help="stop a listing after N known items in a row (default 50)")
    upd.add_argument("ids", nargs="*", type=int, help="only these saved query ids")

    q = add("queries", "list, edit, pause, resume or remove saved queries")
    q.add_argument("action", nargs="?", default="list", choices=("list", "pause", "resume", "remove", "set"))
    q.add_argument("ids", nargs="*", type=int)
    q.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="for `set`")

    jobs = add("jobs", "list recent jobs")
    jobs.add_argument("--all", action="store_true")

    res = add("resume", "resume a stopped or interrupted job")
    res.add_argument("job_id", nargs="?", help="default: the most recent unfinished job")
    return parser
