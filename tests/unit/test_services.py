"""services.py: the one factory for HTTP clients, and the API key check the settings dialog uses."""

from __future__ import annotations

from civitgrab_desktop.services import Services
from tests.fake_civitai import FaultRule


def _services(data_dir, base: str) -> Services:
    services = Services.create(data_dir=str(data_dir), api_base=base, api_key="key-of-this-run")
    services.settings.set("concurrency", 3)
    services.settings.set("retries", 2)
    return services


async def test_every_client_gets_the_settings_and_the_backoff_limit(data_dir, monkeypatch):
    monkeypatch.setenv("CIVITGRAB_BACKOFF_MAX", "0.25")
    services = _services(data_dir, "http://127.0.0.1:9")
    try:
        own = services.client()  # the CLI's: owns its session
        shared = services.client(session=services.shared_session, concurrency=1)  # the GUI's jobs
        for client in (own, shared):
            assert client.options.backoff_max == 0.25 and client.options.retries == 2
            assert client.api_base == "http://127.0.0.1:9"
        assert own.options.concurrency == 3 and shared.options.concurrency == 1
        assert shared.session is services.shared_session
        await shared.close()  # a job's cleanup: the app's session stays open
        assert not services.shared_session.closed
        session = services.shared_session
    finally:
        await services.close()
    assert session.closed and own._session is None


async def test_key_check_accepted_and_unreachable(data_dir, fake_civitai):
    services = _services(data_dir, fake_civitai.base_url)
    try:
        check = await services.check_api_key("typed-key-123")
        assert check.ok and "accepted" in check.verdict
        asked = fake_civitai.requests("/api/v1/models")
        assert asked, "the key check did not reach the API base"
        headers = {k.lower(): v for k, v in asked[-1].headers.items()}
        assert headers.get("authorization") == "Bearer typed-key-123"  # the typed key, not the stored one
        fake_civitai.add_fault(FaultRule("429", where="api", count=1))
        limited = await services.check_api_key("typed-key-123")  # no retries: one answer, as it is
        assert not limited.ok and "rate limiting" in limited.verdict
        down = await services.check_api_key("typed-key-123", "http://127.0.0.1:9")
        assert not down.ok and down.verdict.startswith("✗ Could not check the key with http://127.0.0.1:9")
    finally:
        await services.close()
