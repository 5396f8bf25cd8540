"""Settings: defaults, overrides, and clear errors that name the bad variable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import StarPack, load_settings, read_dotenv
from bot.errors import ConfigError
from bot.logging_setup import SecretMaskingFilter

REQUIRED = {"TELEGRAM_BOT_TOKEN": "123:abc", "DASHSCOPE_API_KEY": "sk-x"}


def test_defaults_apply_when_only_secrets_are_set() -> None:
    settings = load_settings(REQUIRED, dotenv=None)
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.telegram_base_url == "https://api.telegram.org/bot"
    assert settings.telegram_base_file_url == "https://api.telegram.org/file/bot"
    assert settings.dashscope_api_root == "https://dashscope.aliyuncs.com/api/v1"
    assert settings.monthly_quota == 30
    assert settings.dashscope_max_tasks == 2
    assert settings.dashscope_qps == 10
    assert settings.dashscope_poll_interval == 2.0
    assert settings.quota_timezone == "Asia/Shanghai"
    assert settings.admin_user_ids == frozenset()


def test_overrides_are_parsed() -> None:
    env = REQUIRED | {
        "ADMIN_USER_IDS": " 1, 22 ,333 ",
        "DASHSCOPE_BASE_URL": "http://127.0.0.1:8089/",
        "DASHSCOPE_POLL_INTERVAL": "0.25",
        "LOG_LEVEL": "debug",
    }
    settings = load_settings(env, dotenv=None)
    assert settings.admin_user_ids == frozenset({1, 22, 333})
    assert settings.dashscope_api_root == "http://127.0.0.1:8089/api/v1"
    assert settings.dashscope_poll_interval == 0.25
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", ""),
        ("DASHSCOPE_API_KEY", " "),
        ("MONTHLY_QUOTA", "-1"),
        ("MONTHLY_QUOTA", "many"),
        ("DASHSCOPE_MAX_TASKS", "0"),
        ("DASHSCOPE_QPS", "nan"),
        ("DASHSCOPE_POLL_INTERVAL", "0"),
        ("QUOTA_TIMEZONE", "Mars/Olympus"),
        ("ADMIN_USER_IDS", "1,two"),
        ("TELEGRAM_API_URL", "ftp://x"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(REQUIRED | {variable: value}, dotenv=None)
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_star_packs_are_parsed_in_order_and_off_by_default() -> None:
    assert load_settings(REQUIRED, dotenv=None).star_packs == ()
    settings = load_settings(REQUIRED | {"STAR_PACKS": " 10:50, 50 : 200 ,"}, dotenv=None)
    assert settings.star_packs == (StarPack(10, 50), StarPack(50, 200))


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("10", "'10' is not images:stars"),
        ("10:50:1", "'10:50:1' is not images:stars"),
        ("ten:50", "'ten:50' is not images:stars"),
        ("１0:50", "'１0:50' is not images:stars"),  # full-width digit
        ("-10:50", "'-10:50' is not images:stars"),
        ("0:50", "images must be 1 to"),
        ("10:0", "Stars must be 1 to 10000"),
        ("10:10001", "Stars must be 1 to 10000"),
        ("10:50,10:50", "'10:50' is given twice"),
        (",".join(f"{n}:{n}" for n in range(1, 12)), "at most 10 packs"),
    ],
)
def test_bad_star_packs_name_the_value(value: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(REQUIRED | {"STAR_PACKS": value}, dotenv=None)
    assert caught.value.variable == "STAR_PACKS"
    assert named in str(caught.value)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nexport TELEGRAM_BOT_TOKEN='9:file'\nDASHSCOPE_API_KEY=\"sk-file\"\n"
        "MONTHLY_QUOTA=7\n",
        encoding="utf-8",
    )
    assert read_dotenv(dotenv)["TELEGRAM_BOT_TOKEN"] == "9:file"
    settings = load_settings({"MONTHLY_QUOTA": "9"}, dotenv=dotenv)
    assert settings.telegram_bot_token == "9:file"
    assert settings.dashscope_api_key == "sk-file"
    assert settings.monthly_quota == 9


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('TELEGRAM_BOT_TOKEN="9:abc" # prod', "9:abc"),
        ("TELEGRAM_BOT_TOKEN='9:abc'   # prod, with 'quotes'", "9:abc"),
        ("TELEGRAM_BOT_TOKEN=9:abc # prod", "9:abc"),
        ("TELEGRAM_BOT_TOKEN=9:abc\t# prod", "9:abc"),
        ('TELEGRAM_BOT_TOKEN="9:abc # not a comment"', "9:abc # not a comment"),
        ("TELEGRAM_BOT_TOKEN=9:abc#not-a-comment", "9:abc#not-a-comment"),
        ("export TELEGRAM_BOT_TOKEN=9:abc", "9:abc"),
        ('export   TELEGRAM_BOT_TOKEN = "9:abc"  # prod', "9:abc"),
        ("TELEGRAM_BOT_TOKEN=${HOME}9:abc", "${HOME}9:abc"),  # no expansion
        ('TELEGRAM_BOT_TOKEN="9:a\\"bc"', '9:a"bc'),
    ],
)
def test_dotenv_quotes_comments_and_export(tmp_path: Path, line: str, value: str) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"# the bot\n\n{line}\nDASHSCOPE_API_KEY=sk-file\n", encoding="utf-8")
    assert read_dotenv(dotenv)["TELEGRAM_BOT_TOKEN"] == value
    assert load_settings({}, dotenv=dotenv).telegram_bot_token == value


def test_environment_overrides_every_value_of_the_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        'export TELEGRAM_BOT_TOKEN="9:file" # prod\nDASHSCOPE_API_KEY=sk-file\n'
        "LOG_LEVEL=debug # loud\n",
        encoding="utf-8",
    )
    settings = load_settings({"TELEGRAM_BOT_TOKEN": "9:env", "LOG_LEVEL": "error"}, dotenv=dotenv)
    assert settings.telegram_bot_token == "9:env"
    assert settings.dashscope_api_key == "sk-file"
    assert settings.log_level == "ERROR"


def test_dotenv_with_a_byte_order_mark_keeps_its_first_key(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes("TELEGRAM_BOT_TOKEN=9:abc\n".encode("utf-8-sig"))
    assert read_dotenv(dotenv) == {"TELEGRAM_BOT_TOKEN": "9:abc"}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("A=1\nTELEGRAM_BOT_TOKEN\n", 2),
        ('A=1\n\n# note\nB="never closed\nC=3\n', 4),
        ("A=1\n\n\n'\n", 4),
    ],
)
def test_unreadable_dotenv_line_is_an_error_naming_it(
    tmp_path: Path, text: str, line: int
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_dotenv(dotenv)
    assert caught.value.variable == f"{dotenv}:{line}"


def test_repr_hides_secrets() -> None:
    settings = load_settings(REQUIRED, dotenv=None)
    assert "123:abc" not in repr(settings)
    assert "sk-x" not in repr(settings)


def test_masking_filter_hides_secrets_in_message_args_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.mask")
    caplog.handler.addFilter(SecretMaskingFilter(["123:abc", "sk-x"]))
    try:
        raise RuntimeError("GET https://api.telegram.org/bot123:abc/getMe failed")
    except RuntimeError:
        logger.exception("calling %s with key %s", "https://x/bot123:abc/getMe", "sk-x")
    text = caplog.text
    assert "123:abc" not in text
    assert "sk-x" not in text
    assert "***" in text
    assert "getMe" in text


def test_the_mini_app_server_is_off_without_a_public_url() -> None:
    settings = load_settings(REQUIRED, dotenv=None)
    assert settings.public_url is None
    assert (settings.web_host, settings.web_port) == ("0.0.0.0", 8080)
    settings = load_settings(REQUIRED | {
        "PUBLIC_URL": "https://bot.example.com/draw/", "WEB_HOST": "127.0.0.1",
        "WEB_PORT": "9000",
    }, dotenv=None)
    assert settings.public_url == "https://bot.example.com/draw"
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 9000)
    # Plain http is accepted (local runs, tests); a warning is logged at start.
    local = load_settings(REQUIRED | {"PUBLIC_URL": "http://127.0.0.1:8080"}, dotenv=None)
    assert local.public_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PUBLIC_URL", "bot.example.com"),
        ("PUBLIC_URL", "ftp://bot.example.com"),
        ("PUBLIC_URL", "https://"),
        ("PUBLIC_URL", "https://bot.example.com/?x=1"),
        ("PUBLIC_URL", "https://bot.example.com/#top"),
        ("WEB_PORT", "0"),
        ("WEB_PORT", "65536"),
        ("WEB_PORT", "http"),
    ],
)
def test_bad_web_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(REQUIRED | {variable: value}, dotenv=None)
    assert caught.value.variable == variable
    assert value in str(caught.value)
