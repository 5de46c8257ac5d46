"""The download job's progress counts: what is finished never exceeds the total, and they meet at
the end, even when targets list the same image twice and some items are filtered out."""

from __future__ import annotations

from civitgrab_desktop.core.civitai.client import CivitaiClient, ClientOptions
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.jobs.download import DownloadJob, DownloadParams
from civitgrab_desktop.jobs.job import ProgressEvent


async def test_progress_total_covers_repeats_and_filtered_items(workspace, fake_civitai):
    # "anime" and "illustration" both carry model 1001 (the same images twice); "video" lists
    # the clips of model 1006, which --no_videos filters out
    params = DownloadParams(
        mode=3, identifiers=["anime", "illustration", "video"], output_dir=str(workspace.root / "out"),
        prompt_check=False, no_videos=True,
    )
    events: list = []
    library = await Library.open(workspace.data_dir / "library.sqlite3")
    client = CivitaiClient(fake_civitai.base_url, options=ClientOptions(concurrency=4))
    try:
        job_id = await library.create_job("download", params.to_dict())
        job = DownloadJob(library, client, params, job_id=job_id, listener=events.append)
        summary = await job.run()
    finally:
        await client.close()
        await library.close()

    assert summary["state"] == "done" and summary["failed"] == 0, summary
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    finished = [e.done + e.failed + e.skipped for e in progress]
    assert all(f <= (e.total or 0) for f, e in zip(finished, progress, strict=True)), [
        (f, e.total) for f, e in zip(finished, progress, strict=True) if f > (e.total or 0)
    ]
    last = progress[-1]
    assert finished[-1] == last.total
    reasons = summary["skip_reasons"]
    assert reasons.get("video (--no_videos)", 0) > 0, reasons
    assert reasons.get("already downloaded", 0) > 0, reasons  # the repeats, linked not refetched
    assert last.total > last.done
