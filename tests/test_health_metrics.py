"""/healthz, /readyz and /metrics on the bot's web server, with the real Application."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import load_settings
from bot.metrics import Metrics
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.browser import free_port
from tests.harness import Harness, bot_settings, make_image, replied_to, running


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels (parsing it checks the format)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.slow
async def test_health_readiness_and_metrics_move_after_a_job(
    telegram: FakeTelegram, emulator: DashScopeEmulator, tmp_path: Path
) -> None:
    port = free_port()
    settings = bot_settings(telegram, emulator, tmp_path / "bot.sqlite3", WEB_SERVER="on",
                            WEB_HOST="127.0.0.1", WEB_PORT=str(port), MONTHLY_QUOTA="1",
                            STAR_PACKS="10:50")
    base = f"http://127.0.0.1:{port}"
    async with running(settings) as application, aiohttp.ClientSession() as http:
        harness = Harness(telegram, emulator, settings, application)
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{base}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["checks"] == {"store": "ok", "dashscope": "ok"}
        async with http.get(f"{base}/mask") as response:
            assert response.status == 404  # WEB_SERVER=on without PUBLIC_URL: no mask page
        async with http.get(f"{base}/metrics") as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            before = samples(await response.text())
        assert before[("bot_queue_depth", ())] == 0
        assert before[("bot_jobs", (("state", "delivered"),))] == 0
        assert before[("bot_quota_refusals_total", ())] == 0
        assert before[("bot_stars_revenue_month", ())] == 0

        alice = harness.user(1)
        chat = telegram.private_chat(alice)
        first = telegram.send_photo(alice, chat, make_image(), "/upscale 2")
        await harness.reply_to(first, "sendPhoto", timeout=30)
        await harness.settled()
        second = telegram.send_photo(alice, chat, make_image(), "/upscale 2")
        await telegram.wait_for_call("sendMessage",
                                     lambda c: replied_to(c) == second["message_id"])
        async with http.get(f"{base}/metrics") as response:
            after = samples(await response.text())
        assert after[("bot_jobs", (("state", "delivered"),))] == 1
        assert after[("bot_delivery_seconds_count", ())] == 1
        assert after[("bot_quota_refusals_total", ())] == 1
        submitted = after[("bot_dashscope_requests_total", (("endpoint", "submit"),))]
        assert submitted == 1
        assert after[("bot_dashscope_detection_lag_seconds_count", ())] == 1
        assert after[("bot_dashscope_tasks_in_progress", ())] == 0

        await emulator.close()  # DashScope unreachable: not ready, still alive
        async with http.get(f"{base}/readyz") as response:
            assert response.status == 503
            checks = (await response.json())["checks"]
            assert checks["store"] == "ok" and checks["dashscope"] != "ok"
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200


def test_dashscope_errors_are_counted_by_code_and_registries_are_separate() -> None:
    one, other = Metrics(), Metrics()
    one.dashscope_error("Throttling.RateQuota")
    one.dashscope_error("Throttling.RateQuota")
    one.dashscope_error("")
    values = samples(one.registry_text())
    assert values[("bot_dashscope_errors_total", (("code", "Throttling.RateQuota"),))] == 2
    assert values[("bot_dashscope_errors_total", (("code", "unknown"),))] == 1
    assert ("bot_dashscope_errors_total", (("code", "unknown"),)) not in samples(
        other.registry_text()
    )


def test_web_server_setting_and_what_starts_the_server() -> None:
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "DASHSCOPE_API_KEY": "k"}
    assert not load_settings(env, dotenv=None).serves_web
    assert load_settings(env | {"WEB_SERVER": "on"}, dotenv=None).serves_web
    assert load_settings(env | {"PUBLIC_URL": "https://b.example.com"}, dotenv=None).serves_web
