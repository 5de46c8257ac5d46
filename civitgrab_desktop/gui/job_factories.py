"""Build the tags and convert jobs from the options the GUI pages collect.

The pages collect the same options as `civitgrab-cli tags` / `civitgrab-cli convert`; this module
is the one place that turns them into the jobs' parameter objects.
"""

from __future__ import annotations

from typing import Any

from civitgrab_desktop.jobs.job import Job


def tags_params(options: dict[str, Any]):
    from civitgrab_desktop.jobs.tags import TagsParams

    return TagsParams.from_dict(options)


def build_tags_job(library, client, options: dict[str, Any], *, job_id: str) -> Job:
    from civitgrab_desktop.jobs.tags import TagsJob

    return TagsJob(library, client, tags_params(options), job_id=job_id)


def convert_params(options: dict[str, Any]):
    """ConvertParams from the page's options; raises ValueError for options that cannot work."""
    from civitgrab_desktop.jobs.convert import ConvertParams

    params = ConvertParams.from_dict(options)
    params.check()
    return params


def build_refresh_job(library, options: dict[str, Any], *, job_id: str) -> Job:
    """The metadata refresh of converted WebP files (`convert --refresh-metadata`)."""
    from civitgrab_desktop.jobs.refresh_metadata import RefreshMetadataJob, RefreshParams

    return RefreshMetadataJob(library, RefreshParams.from_dict(options), job_id=job_id)


def build_convert_job(library, options: dict[str, Any], *, job_id: str) -> Job:
    from civitgrab_desktop.jobs.convert import ConvertJob

    return ConvertJob(library, convert_params(options), job_id=job_id)
