"""LOG_FORMAT=json: one JSON object per line, context fields of their own, secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.logging_setup import job_fields, setup_logging
from tests.harness import bot_process, make_image, replied_to, subprocess_env, wait_until

TOKEN_SECRET = "123456:TEST-fake-token"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_fields_and_mask_secrets_everywhere(
    capsys: pytest.CaptureFixture[str], restore_logging: object
) -> None:
    setup_logging("INFO", ["s3cr3t-token", "sk-key"], "json")
    log = logging.getLogger("bot.test")

    class Job:
        id, user_id, task_id = 7, 42, "task-s3cr3t-token"

    log.info("job %s used %s", 7, "s3cr3t-token", extra=job_fields(Job()))
    try:
        raise RuntimeError("bad key sk-key")
    except RuntimeError:
        log.exception("failed with \"quotes\" and 中文")
    lines = capsys.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines[-2:])
    assert first["message"] == "job 7 used ***"
    assert (first["job_id"], first["user_id"], first["task_id"]) == (7, 42, "task-***")
    assert first["level"] == "INFO" and first["logger"] == "bot.test"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "failed with \"quotes\" and 中文"
    assert "RuntimeError: bad key ***" in second["exception"]
    assert "job_id" not in second
    assert "s3cr3t" not in "\n".join(lines) and "sk-key" not in "\n".join(lines)


def test_log_format_is_text_or_json() -> None:
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "DASHSCOPE_API_KEY": "k"}
    assert load_settings(env, dotenv=None).log_format == "text"
    assert load_settings(env | {"LOG_FORMAT": "JSON"}, dotenv=None).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings(env | {"LOG_FORMAT": "xml"}, dotenv=None)


@pytest.mark.slow
async def test_a_bot_process_logs_json_with_job_and_task_ids(
    tmp_path: Path, telegram: object, emulator: object
) -> None:
    from bot.offline.bot_api import FakeTelegram
    from bot.offline.dashscope import DashScopeEmulator

    assert isinstance(telegram, FakeTelegram) and isinstance(emulator, DashScopeEmulator)
    env = subprocess_env(telegram, emulator, tmp_path / "bot.sqlite3", LOG_FORMAT="json")
    log = tmp_path / "bot.log"
    async with bot_process(env, log, graceful=True):
        await wait_until(lambda: "bot @" in log.read_text(), timeout=20)
        alice = telegram.user(1, "Alice")
        photo = telegram.send_photo(alice, telegram.private_chat(alice), make_image(),
                                    "/upscale 2")
        await telegram.wait_for_call("sendPhoto",
                                     lambda c: replied_to(c) == photo["message_id"], timeout=30)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    submitted = [r for r in records if r["message"].startswith("job ")
                 and "submitted as task" in r["message"]]
    assert submitted and submitted[0]["user_id"] == 1 and submitted[0]["task_id"]
    assert submitted[0]["job_id"] == 1
    assert TOKEN_SECRET not in log.read_text()
