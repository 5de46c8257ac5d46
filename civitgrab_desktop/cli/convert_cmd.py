"""`civitgrab-cli convert`: options to ConvertParams, the run, the summary, resuming.

Where the WebP files go when neither --in-place nor --dest is given: `<download folder>/CivitAI_Browse`
(the `output_dir` setting, else ./image_downloads, as for downloads). That default never deletes
anything; removing originals takes an explicit --in-place.
"""

from __future__ import annotations

import sys

from civitgrab_desktop.cli.args import UsageError
from civitgrab_desktop.cli.progress import TerminalProgress, human_bytes, print_summary
from civitgrab_desktop.cli.running import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, run_async, run_job
from civitgrab_desktop.jobs.convert import ConvertJob, ConvertParams


def params_from_args(args, settings) -> ConvertParams:
    in_place = bool(args.in_place)
    dest = None
    if not in_place:
        dest = args.dest or settings.get("output_dir") or "image_downloads"
    videos = getattr(args, "videos", None) or "copy"
    params = ConvertParams(
        quality=args.quality if args.quality is not None else settings.get("convert_quality"),
        lossless=bool(args.lossless or settings.get("convert_lossless")),
        workers=args.workers or settings.get("convert_workers") or None,
        batch_size=args.batch_size or settings.get("convert_batch_size"),
        only_tagged=bool(args.only_tagged),
        in_place=in_place,
        dest=dest,
        videos=None if in_place or videos == "none" else videos,
        phash_threshold=args.phash_threshold if args.phash_threshold is not None else settings.get("phash_threshold"),
        pg13_is_nsfw=bool(args.pg13_is_nsfw or settings.get("pg13_is_nsfw")),
        username=args.username,
        model_version=args.model_version,
        source=args.source,
        nsfw_class=args.nsfw_class,
        limit=args.limit,
    )
    try:
        params.check()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return params


def run_convert(args, services) -> int:
    if getattr(args, "refresh_metadata", False):
        return run_refresh(args, services)
    params = params_from_args(args, services.settings)
    if params.dest:
        from civitgrab_desktop.cli.download_cmd import check_output_dir

        check_output_dir(params.dest)

    async def go() -> int:
        library = await services.open_library()
        try:
            job_id = await library.create_job("convert", params.to_dict())
            return await _run(library, params, job_id)
        finally:
            await services.close()

    return run_async(go())


async def resume_convert(library, job) -> int:
    params = ConvertParams.from_dict(job["params"])
    progress = job.get("progress") or {}
    if params.limit is not None:
        finished = sum(int(progress.get(k) or 0) for k in ("done", "failed", "skipped"))
        params.limit = max(1, params.limit - finished)
    return await _run(library, params, job["id"])


async def _run(library, params: ConvertParams, job_id: str) -> int:
    job = ConvertJob(library, params, job_id=job_id, listener=TerminalProgress())
    summary = await run_job(job)
    print_summary(summary)
    print_details(summary)
    if job.state.value == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK if job.all_converted else EXIT_FAILED


def _saved(n: int) -> str:
    return f"{human_bytes(n)} saved" if n >= 0 else f"{human_bytes(-n)} larger than the originals"


def print_details(summary: dict, out=None) -> None:
    out = out or sys.stdout
    src, webp = summary.get("src_bytes") or 0, summary.get("webp_bytes") or 0
    if src:
        out.write(f"Images: {human_bytes(src)} of originals became {human_bytes(webp)} of WebP "
                  f"({100 * webp / src:.0f}%)\n")
    if summary.get("exif_only"):
        out.write(f"WebP originals given EXIF without re-encoding: {summary['exif_only']}\n")
    if summary.get("videos"):
        out.write(f"Videos placed in the organized folder: {summary['videos']}\n")
    if summary.get("exif_overflow"):
        out.write(f"Metadata cut to fit the EXIF (whole in the XMP and the JSON sidecar): {summary['exif_overflow']}\n")
    if summary.get("earlier_done"):
        out.write(f"The whole job: {summary['job_done']} converted ({summary['earlier_done']} in earlier runs), "
                  f"{summary.get('job_skipped', 0)} skipped, {_saved(summary.get('job_bytes_saved') or 0)}\n")
    out.write(f"Output: {summary.get('dest') or 'in place'}\n")
    out.flush()


# -- --refresh-metadata ----------------------------------------------------------------------------

# Options that choose how or where to convert: they mean nothing to a metadata refresh.
_NOT_FOR_REFRESH = {"in_place": "--in-place", "dest": "--dest", "quality": "--quality", "lossless": "--lossless",
                    "only_tagged": "--only-tagged", "source": "--source", "model_version": "--model-version",
                    "nsfw_class": "--nsfw-class", "videos": "--move-videos/--copy-videos/--no-videos"}


def run_refresh(args, services) -> int:
    from civitgrab_desktop.jobs.refresh_metadata import KIND, RefreshParams

    given = [flag for name, flag in _NOT_FOR_REFRESH.items() if getattr(args, name, None)]
    if given:
        raise UsageError(f"--refresh-metadata rewrites files converted earlier; it does not take {', '.join(given)}")
    params = RefreshParams(username=args.username, limit=args.limit)

    async def go() -> int:
        library = await services.open_library()
        try:
            return await _run_refresh(library, params, await library.create_job(KIND, params.to_dict()))
        finally:
            await services.close()

    return run_async(go())


async def resume_refresh(library, job) -> int:
    """A refresh starts over (files already rewritten are found up to date and left as they are)."""
    from civitgrab_desktop.jobs.refresh_metadata import RefreshParams

    return await _run_refresh(library, RefreshParams.from_dict(job["params"]), job["id"])


async def _run_refresh(library, params, job_id: str) -> int:
    from civitgrab_desktop.jobs.refresh_metadata import RefreshMetadataJob

    job = RefreshMetadataJob(library, params, job_id=job_id, listener=TerminalProgress())
    summary = await run_job(job)
    print_summary(summary)
    sys.stdout.write(f"Files rewritten: {summary.get('rewritten', 0)}, already up to date: "
                     f"{summary.get('unchanged', 0)}\n")
    if summary.get("exif_cut"):
        sys.stdout.write(f"Fields cut in the EXIF to fit (whole in the XMP): {summary['exif_cut']} file(s)\n")
    if job.state.value == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK if job.state.value == "done" and not job.tally.failed else EXIT_FAILED
