"""civitgrab-cli subcommands other than the classic download."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

from civitgrab_desktop.cli.args import UsageError
from civitgrab_desktop.cli.progress import TerminalProgress, print_summary
from civitgrab_desktop.cli.running import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, run_async, run_job
from civitgrab_desktop.core import secrets
from civitgrab_desktop.core.civitai.client import CivitaiError
from civitgrab_desktop.services import Services

# -- tags ----------------------------------------------------------------------------------------


def cmd_tags(args, services: Services) -> int:
    from civitgrab_desktop.jobs.tags import TagsParams

    settings = services.settings
    params = TagsParams(
        method=args.method or settings.get("tag_method"),
        workers=args.workers or settings.get("tag_workers"),
        limit=args.limit,
        retag=args.retag,
        max_age_days=args.max_age_days,
        browser_path=args.browser_path or settings.get("browser_path") or None,
    )

    async def go() -> int:
        library = await services.open_library()
        try:
            job_id = await library.create_job("tags", params.to_dict())
            return await _run_tags(services, library, params, job_id)
        finally:
            await services.close()

    return run_async(go())


async def _run_tags(services: Services, library, params, job_id: str) -> int:
    from civitgrab_desktop.jobs.tags import TagsJob

    client = services.client(concurrency=params.workers)
    job = TagsJob(library, client, params, job_id=job_id, listener=TerminalProgress())
    summary = await run_job(job)
    print_summary(summary)
    _print_tags_details(summary)
    if job.state.value == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK if job.all_tagged else EXIT_FAILED


def _print_tags_details(summary: dict) -> None:
    methods = summary.get("methods") or {}
    used = ", ".join(f"{name} {count}" for name, count in sorted(methods.items())) or "none"
    print(f"Method: {summary.get('method')} (images per method: {used})")
    if summary.get("browser"):
        print(f"Browser: {summary['browser']}")
    if summary.get("fallback_reason"):
        print(f"Fell back to the browser: {summary['fallback_reason']}")
    if summary.get("stopped_early"):
        print(f"Stopped early: {summary['stopped_early']}")


async def _resume_tags(services: Services, library, job) -> int:
    from civitgrab_desktop.jobs.tags import TagsParams

    params = TagsParams.from_dict(job["params"])
    progress = job.get("progress") or {}
    if params.retag and params.refetch_before is None:
        params.refetch_before = progress.get("refetch_before")  # continue the re-tag, do not restart it
    if params.limit is not None:
        finished = sum(int(progress.get(k) or 0) for k in ("done", "failed", "skipped"))
        params.limit = max(0, params.limit - finished)
    return await _run_tags(services, library, params, job["id"])


# -- convert -------------------------------------------------------------------------------------


def cmd_convert(args, services: Services) -> int:
    from civitgrab_desktop.cli.convert_cmd import run_convert

    return run_convert(args, services)


async def _resume_convert(services: Services, library, job) -> int:
    from civitgrab_desktop.cli.convert_cmd import resume_convert

    return await resume_convert(library, job)


# -- export-csv ----------------------------------------------------------------------------------


def cmd_export_csv(args, services: Services) -> int:
    from civitgrab_desktop.core.library.csv_export import export_csv

    async def go() -> int:
        library = await services.open_library()
        try:
            rows = await library.call(export_csv, Path(args.file))
        finally:
            await services.close()
        print(f"Wrote {rows} rows to {args.file}")
        return EXIT_OK

    return run_async(go())


# -- migrate -------------------------------------------------------------------------------------


def cmd_migrate(args, services: Services) -> int:
    from civitgrab_desktop.core.roots import UnusableRootError, usable_root
    from civitgrab_desktop.jobs.migrate import import_classic

    json_path = Path(args.json_path) if args.json_path else None
    sqlite_path = Path(args.sqlite_path) if args.sqlite_path else None
    if args.folder:
        folder = Path(args.folder)
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder")
        json_path = json_path or (folder / "downloaded_images.json")
        sqlite_path = sqlite_path or (folder / "tracking_database.sqlite")
    if json_path is None and sqlite_path is None:
        cwd = Path.cwd()
        json_path, sqlite_path = cwd / "downloaded_images.json", cwd / "tracking_database.sqlite"
    found = [p for p in (json_path, sqlite_path) if p is not None and p.exists()]
    if not found:
        raise UsageError("no classic downloaded_images.json or tracking_database.sqlite found")
    trusted = []
    for text in args.trust_root or []:
        try:
            trusted.append(usable_root(text))
        except UnusableRootError as exc:
            raise UsageError(f"--trust-root {text}: {exc}") from None

    async def go() -> int:
        library = await services.open_library()
        try:
            report = await library.call(
                import_classic,
                json_path=json_path if json_path and json_path.exists() else None,
                sqlite_path=sqlite_path if sqlite_path and sqlite_path.exists() else None,
            )
            for folder in trusted:
                await library.add_root(folder, "classic")
            roots = await library.roots()
        finally:
            await services.close()
        print(
            f"Imported {report.entries} classic entries: {report.images_new} new images, "
            f"{report.images_updated} updated, {report.sources_new} new sources, {report.skipped} already known, "
            f"{report.missing_files} files missing on disk, {report.errors} problems"
        )
        _print_import_folders(report.folders, roots, trusted)
        for message in report.messages[:20]:
            print(f"  {message}", file=sys.stderr)
        return EXIT_OK if not report.errors else EXIT_FAILED

    return run_async(go())


def _print_import_folders(folders: dict[str, int], roots, trusted: list[Path]) -> None:
    """Where the imported files live, and which of those folders civitgrab may change."""
    if not folders:
        return
    print("The imported files live in these folders:")
    read_only = 0
    for folder, count in sorted(folders.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FOLDERS_SHOWN]:
        changeable = roots.covers(folder)
        read_only += 0 if changeable else count
        mark = "may be changed" if changeable else "read-only"
        print(f"  {folder}  ({count} file{'s' if count != 1 else ''}, {mark})")
    if len(folders) > MAX_FOLDERS_SHOWN:
        rest = sorted(folders.items(), key=lambda kv: (-kv[1], kv[0]))[MAX_FOLDERS_SHOWN:]
        read_only += sum(c for f, c in rest if not roots.covers(f))
        print(f"  … and {len(rest)} more folders")
    for folder in trusted:
        print(f"Trusted: {folder} (convert in place, tags and deleting may change files under it)")
    if read_only:
        print(
            f"{read_only} imported file(s) are read-only: civitgrab shows and exports them but never changes, "
            "moves or deletes them. To allow that, run migrate again with --trust-root FOLDER "
            "for each folder you trust."
        )


MAX_FOLDERS_SHOWN = 20


# -- roots ---------------------------------------------------------------------------------------


def cmd_roots(args, services: Services) -> int:
    from civitgrab_desktop.core.roots import UnusableRootError

    async def go() -> int:
        library = await services.open_library()
        try:
            if args.action == "add":
                if not args.folder:
                    raise UsageError("`roots add` needs a folder")
                try:
                    path = await library.add_root(args.folder, "user", must_exist=True)
                except UnusableRootError as exc:
                    raise UsageError(str(exc)) from None
                print(f"Added {path}")
            elif args.action == "remove":
                if not args.folder:
                    raise UsageError("`roots remove` needs a folder")
                removed = await library.remove_root(args.folder)
                print(f"Removed {args.folder}" if removed else f"{args.folder} was not a root")
            else:
                rows = await library.list_roots()
                if not rows:
                    print("No folders yet: downloads and conversions add theirs; migrate --trust-root adds classic ones.")
                for path, kind in rows:
                    print(f"{kind:<9} {path}")
            return EXIT_OK
        finally:
            await services.close()

    return run_async(go())


# -- tagnames ------------------------------------------------------------------------------------


def cmd_tagnames(args, services: Services) -> int:
    from civitgrab_desktop.core.civitai.rest import iter_tag_names

    out = Path(args.out)
    known: set[str] = set()
    if out.exists():
        known = {line.strip() for line in out.read_text(encoding="utf-8").splitlines() if line.strip()}

    async def go() -> int:
        client = services.client()
        added = total = 0
        try:
            with out.open("a", encoding="utf-8") as fh:
                async for names in iter_tag_names(client):
                    for name in names:
                        total += 1
                        if name not in known:
                            known.add(name)
                            fh.write(name + "\n")
                            added += 1
                    fh.flush()
        except CivitaiError as exc:
            print(f"Error: {exc.reason}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            await services.close()
        print(f"{total} tags listed, {added} new written to {out}")
        return EXIT_OK

    return run_async(go())


# -- auth ----------------------------------------------------------------------------------------


def cmd_auth(args, services: Services) -> int:
    if args.action == "status":
        key = services.api_key
        print(f"API key: {'set (' + secrets.mask(key) + ')' if key else 'not set'}")
        print(f"Keychain: {secrets.keychain_name()}")
        return EXIT_OK
    if args.action == "clear":
        removed = secrets.clear_api_key()
        print("API key removed from the keychain." if removed else "No API key was stored in the keychain.")
        return EXIT_OK
    key = args.key
    if not key:
        key = getpass.getpass("CivitAI API key: ") if sys.stdin.isatty() else sys.stdin.readline()
    key = (key or "").strip()
    if not key:
        raise UsageError("no API key given")
    try:
        secrets.store_api_key(key)
    except secrets.KeychainUnavailable as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"API key stored in the keychain ({secrets.mask(key)}).")
    return EXIT_OK


# -- jobs / resume -------------------------------------------------------------------------------


def cmd_jobs(args, services: Services) -> int:
    async def go() -> int:
        library = await services.open_library()
        try:
            await library.mark_interrupted_jobs()
            jobs = await library.list_jobs()
        finally:
            await services.close()
        if not args.all:
            jobs = jobs[:20]
        for job in jobs:
            progress = job.get("progress") or {}
            print(
                f"{job['id']}  {job['kind']:<8} {job['state']:<11} {job['updated_at']}  "
                f"done {progress.get('done', 0)} failed {progress.get('failed', 0)}"
            )
        if not jobs:
            print("No jobs yet.")
        return EXIT_OK

    return run_async(go())


def cmd_resume(args, services: Services) -> int:
    async def go() -> int:
        library = await services.open_library()
        try:
            await library.mark_interrupted_jobs()
            if args.job_id:
                job = await library.get_job(args.job_id)
                if job is None:
                    raise UsageError(f"no job {args.job_id}")
            else:
                candidates = [j for j in await library.list_jobs() if j["state"] in ("stopped", "interrupted", "paused", "failed")]
                if not candidates:
                    print("Nothing to resume.")
                    return EXIT_OK
                job = candidates[0]
            if job["state"] in ("done",):
                print(f"Job {job['id']} is already done.")
                return EXIT_OK
            runner = RESUMERS.get(job["kind"])
            if runner is None:
                raise UsageError(f"jobs of kind {job['kind']} cannot be resumed")
            print(f"Resuming {job['kind']} job {job['id']}…")
            return await runner(services, library, job)
        finally:
            await services.close()

    return run_async(go())


async def _resume_download(services: Services, library, job: dict) -> int:
    from civitgrab_desktop.jobs.download import DownloadJob, DownloadParams

    params = DownloadParams.from_dict(job["params"])
    client = services.client()
    dl = DownloadJob(library, client, params, job_id=job["id"], listener=TerminalProgress())
    summary = await run_job(dl)
    print_summary(summary)
    if dl.state.value == "stopped":
        return EXIT_INTERRUPTED
    return EXIT_OK if dl.all_on_disk else EXIT_FAILED


async def _resume_refresh(services: Services, library, job) -> int:
    from civitgrab_desktop.cli.convert_cmd import resume_refresh

    return await resume_refresh(library, job)


RESUMERS = {
    "download": _resume_download,
    "update": _resume_download,
    "tags": _resume_tags,
    "convert": _resume_convert,
    "refresh_metadata": _resume_refresh,
}


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- saved queries and incremental update ---------------------------------------------------------


def cmd_queries(args, services: Services) -> int:
    from civitgrab_desktop.jobs.update import query_label

    async def go() -> int:
        library = await services.open_library()
        try:
            if args.action == "list":
                queries = await library.list_queries()
                if not queries:
                    print("No saved queries yet: every download saves its query unless --no-save is given.")
                for q in queries:
                    state = "paused" if q["paused"] else "active"
                    last = q.get("last_run_at") or "never"
                    print(f"{q['id']:>4}  {query_label(q):<40} {state:<7} last run {last}")
                    if args.ids:
                        _print_json(q["options"])
                return EXIT_OK
            if not args.ids:
                raise UsageError(f"`queries {args.action}` needs one or more query ids")
            for query_id in args.ids:
                if await library.get_query(query_id) is None:
                    raise UsageError(f"no saved query {query_id}")
                if args.action == "pause":
                    await library.update_query(query_id, paused=True)
                elif args.action == "resume":
                    await library.update_query(query_id, paused=False)
                elif args.action == "remove":
                    await library.delete_query(query_id)
                elif args.action == "set":
                    options = dict((await library.get_query(query_id))["options"])
                    options.update(_parse_options(args.option))
                    await library.update_query(query_id, options=options)
                print(f"query {query_id}: {args.action} done")
            return EXIT_OK
        finally:
            await services.close()

    return run_async(go())


def _parse_options(pairs: list[str]) -> dict:
    from civitgrab_desktop.jobs.download import DownloadParams

    fields = DownloadParams.__dataclass_fields__
    result = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in fields or key in ("mode", "identifiers"):
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE with KEY one of the download options")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        result[key] = value
    return result


def cmd_update(args, services: Services) -> int:
    from civitgrab_desktop.jobs.update import create_update_job, query_label, record_update

    stop_after = args.stop_after or services.settings.get("update_stop_after")

    async def go() -> int:
        library = await services.open_library()
        client = services.client()
        worst = EXIT_OK
        try:
            queries = await library.list_queries()
            if args.ids:
                missing = set(args.ids) - {q["id"] for q in queries}
                if missing:
                    raise UsageError(f"no saved query {', '.join(map(str, sorted(missing)))}")
                queries = [q for q in queries if q["id"] in args.ids]
            else:
                queries = [q for q in queries if not q["paused"]]
            if not queries:
                print("No saved queries to update.")
                return EXIT_OK
            for q in queries:
                print(f"Checking {query_label(q)} for new items…")
                job = await create_update_job(library, client, q, stop_after, listener=TerminalProgress(quiet=True))
                summary = await run_job(job)
                print(f"  {query_label(q)}: {summary['done']} new, {summary['failed']} failed")
                await record_update(library, q["id"], summary)
                if job.state.value == "stopped":
                    return EXIT_INTERRUPTED
                if not job.all_on_disk:
                    worst = EXIT_FAILED
            return worst
        finally:
            await services.close()

    return run_async(go())
