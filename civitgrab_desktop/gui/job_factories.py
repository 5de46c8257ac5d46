"""Build the tags and convert jobs from the options the GUI pages collect.

The pages collect the same options as `civitgrab-cli tags` / `civitgrab-cli convert`; this module
is the one place that knows how those jobs are constructed, so the pages stay unchanged when a
job's constructor does.
"""

from __future__ import annotations

from typing import Any

from civitgrab_desktop.core.config import Settings
from civitgrab_desktop.jobs.job import Job


def build_tags_job(library, client, options: dict[str, Any], *, job_id: str, settings: Settings) -> Job:
    from civitgrab_desktop.jobs import tags as tags_mod

    params_cls = getattr(tags_mod, "TagsParams", None)
    job_cls = tags_mod.TagsJob
    if params_cls is not None:
        known = set(getattr(params_cls, "__dataclass_fields__", {}))
        params = params_cls(**{k: v for k, v in options.items() if k in known})
        return job_cls(library, client, params, job_id=job_id)
    return job_cls(library, client, job_id=job_id, **options)


def build_convert_job(library, options: dict[str, Any], *, job_id: str, settings: Settings) -> Job:
    from civitgrab_desktop.jobs import convert as convert_mod

    params_cls = getattr(convert_mod, "ConvertParams", None)
    job_cls = convert_mod.ConvertJob
    if params_cls is not None:
        known = set(getattr(params_cls, "__dataclass_fields__", {}))
        params = params_cls(**{k: v for k, v in options.items() if k in known})
        return job_cls(library, params, job_id=job_id)
    return job_cls(library, job_id=job_id, **options)
