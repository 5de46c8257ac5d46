"""Incremental update of saved queries ("Check for new" in the app, `civitgrab-cli update`).

Each saved query becomes a download job with its remembered options that lists newest first and
stops a listing after `stop_after` items in a row that the library already has. The CLI and the
GUI run the same jobs built here; afterwards the query remembers when it ran and what it found.
"""

from __future__ import annotations

from typing import Any

from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.jobs.download import DownloadJob, DownloadParams
from civitgrab_desktop.jobs.download_items import MODE_WORDS

# Options a saved query never keeps: they are the query itself, or one-off choices.
NOT_SAVED = ("mode", "identifiers", "redownload")


def query_options(params: DownloadParams) -> dict[str, Any]:
    """What a download saves as its query's options."""
    return {k: v for k, v in params.to_dict().items() if k not in NOT_SAVED}


async def save_queries(library, params: DownloadParams) -> set[str]:
    """Save (or refresh the options of) one query per identifier, before the download runs (so
    an interrupted download keeps its queries). Returns the identifiers that were new."""
    known = {(q["mode"], q["identifier"]) for q in await library.list_queries()}
    options = query_options(params)
    for identifier in params.identifiers:
        await library.save_query(params.mode, identifier, options)
    return {i for i in params.identifiers if (params.mode, i) not in known}


async def forget_not_found(library, params: DownloadParams, summary: dict[str, Any], created: set[str]) -> list[str]:
    """A query saved by this download whose identifier the service does not know (a typo, an
    unknown tag) is not worth checking later: remove it. Queries saved earlier stay."""
    gone = []
    missing = {t["identifier"] for t in summary.get("targets") or [] if t.get("status") == "not found"}
    for q in await library.list_queries():
        if q["mode"] == params.mode and q["identifier"] in missing & created:
            await library.delete_query(q["id"])
            gone.append(q["identifier"])
    return gone


def update_params(query, stop_after: int) -> DownloadParams:
    """The download a saved query runs for an update: its options, newest first, early stop."""
    options = {k: v for k, v in dict(query["options"]).items() if k not in NOT_SAVED}
    params = DownloadParams.from_dict({**options, "mode": query["mode"], "identifiers": [query["identifier"]]})
    params.stop_after_known = max(1, int(stop_after))
    params.deep_scan = False
    return params


async def create_update_job(library, client, query, stop_after: int, *, listener=None) -> DownloadJob:
    params = update_params(query, stop_after)
    job_id = await library.create_job("update", {**params.to_dict(), "query_id": query["id"]}, owner=new_owner())
    return DownloadJob(library, client, params, job_id=job_id, listener=listener)


def update_result(summary: dict[str, Any]) -> dict[str, Any]:
    return {"new": summary.get("done", 0), "failed": summary.get("failed", 0), "state": summary.get("state")}


async def record_update(library, query_id: int, summary: dict[str, Any]) -> None:
    await library.mark_query_run(query_id, update_result(summary))


def query_label(query) -> str:
    mode = MODE_WORDS.get(query["mode"], "?")
    return f"{mode} {query['identifier']}"
