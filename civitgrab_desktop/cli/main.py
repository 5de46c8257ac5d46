"""civitgrab-cli: the headless front end. Parses the arguments, runs a download (the classic flags,
prompting for what is missing in a terminal) or dispatches a subcommand to `commands.py`, and turns
errors into one line and an exit code (the codes and the job runner live in `running.py`).
"""

from __future__ import annotations

import logging
import sys

from civitgrab_desktop.cli import download_cmd
from civitgrab_desktop.cli.args import SUBCOMMANDS, UsageError, build_parser
from civitgrab_desktop.cli.progress import TerminalProgress, print_summary
from civitgrab_desktop.cli.running import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    run_async,
    run_job,
)
from civitgrab_desktop.core.config import mask_secrets
from civitgrab_desktop.core.library.db import LibraryError
from civitgrab_desktop.core.model import DownloadMode
from civitgrab_desktop.services import Services

LOG = logging.getLogger(__name__)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the reason
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_USAGE
    try:
        return _dispatch(args, argv, parser)
    except UsageError as exc:
        print(f"civitgrab-cli: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, LibraryError) as exc:
        # A folder or file that cannot be used (data dir, library, export target, full disk):
        # one clear line, not a traceback. The traceback goes to the log file when there is one.
        if logging.getLogger().handlers:
            LOG.error("stopped: %s", exc, exc_info=True)
        print(f"civitgrab-cli: error: {mask_secrets(describe_error(exc))}", file=sys.stderr)
        return EXIT_FAILED


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        if exc.filename2:
            where += f" -> {exc.filename2}"
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def _services(args) -> Services:
    return Services.create(
        data_dir=getattr(args, "data_dir", None),
        api_base=getattr(args, "api_base", None),
        api_key=getattr(args, "api_key", None),
        debug=getattr(args, "debug", False),
    )


KEY_ON_COMMAND_LINE = (
    "warning: an API key given on the command line can be read by other users (process list) and stays "
    "in your shell history; store it once with `civitgrab-cli auth set` (OS keychain) or set CIVITAI_API_KEY"
)


def _dispatch(args, argv: list[str], parser) -> int:
    if getattr(args, "api_key", None) or (args.command == "auth" and getattr(args, "key", None)):
        print(KEY_ON_COMMAND_LINE, file=sys.stderr)
    command = args.command
    if command is None:
        return _download(args, argv)
    from civitgrab_desktop.cli import commands

    handler = getattr(commands, "cmd_" + command.replace("-", "_"))
    return handler(args, _services(args))


def _download(args, argv: list[str]) -> int:
    if args.mode is not None:
        args.mode = DownloadMode(args.mode)
    interactive = _stdin_is_terminal()
    if not argv:
        if not interactive:
            raise UsageError("--mode is required when not running in a terminal (see --help)")
        download_cmd.complete_interactively(args, full=True)
    elif args.mode is None or not download_cmd.split_identifiers(getattr(args, download_cmd.MODE_FLAGS[args.mode])):
        if not interactive:
            if args.mode is None:
                raise UsageError("--mode is required when not running in a terminal (see --help)")
            flag = download_cmd.MODE_FLAGS[args.mode]
            raise UsageError(f"--{flag} is required for mode {args.mode}")
        download_cmd.complete_interactively(args, full=False)
    for warning in download_cmd.mismatch_warnings(args):
        print(warning, file=sys.stderr)
    services = _services(args)
    params = download_cmd.params_from_args(args, services.settings)
    download_cmd.check_output_dir(params.output_dir)
    return run_async(_run_download(services, params, args))


async def _run_download(services: Services, params, args) -> int:
    from civitgrab_desktop.jobs.download import DownloadJob

    library = await services.open_library()
    client = services.client(
        **{k: v for k, v in (("concurrency", args.semaphore_limit), ("timeout", args.timeout), ("retries", args.retries)) if v is not None}
    )
    try:
        from civitgrab_desktop.jobs.update import forget_not_found, save_queries

        created = set() if args.no_save else await save_queries(library, params)
        job_id = await library.create_job("download", params.to_dict())
        job = DownloadJob(library, client, params, job_id=job_id, listener=TerminalProgress())
        summary = await run_job(job)
        await forget_not_found(library, params, summary, created)
        print_summary(summary)
        if job.state.value == "stopped":
            return EXIT_INTERRUPTED
        return EXIT_OK if job.all_on_disk else EXIT_FAILED
    finally:
        await services.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "SUBCOMMANDS", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]
