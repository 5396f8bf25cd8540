"""The Dockerfile and compose.yaml, exercised without a container engine.

No image can be built here (no engine, no registry), so this runs what the image would run: the
Dockerfile's ``pip install`` in a clean virtualenv from a copy of the files it COPYs, then its
CMD from an empty folder with the environment of the Dockerfile and of compose.yaml's ``bot``
service, pointed at the fakes and at the test PostgreSQL server in place of the ``db`` service.
Not exercised: the base image, the non-root user, the volume, the HEALTHCHECK's schedule, the
network between the services, the ``postgres:15`` image itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.jobs.deliver import STOP_GRACE_SECONDS
from bot.offline.bot_api import FakeTelegram
from bot.offline.dashscope import DashScopeEmulator
from tests.browser import free_port
from tests.harness import API_KEY, REPO, replied_to, wait_until
from tests.stores import empty_database

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines if line and not line.startswith("#")
    ]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value)
    return value


def env_instructions(arguments: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(arguments))


def interpolate(value: str, variables: dict[str, str]) -> str:
    """compose's ${NAME}, ${NAME:-default} and ${NAME:?error}."""
    def one(match: re.Match[str]) -> str:
        name, operator, rest = match[1], match[2], match[3] or ""
        if variables.get(name):
            return variables[name]
        if operator == ":?":
            raise AssertionError(f"compose needs {name}: {rest}")
        return rest if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_dockerfile_and_compose_say_what_the_deploy_needs() -> None:
    steps = instructions(DOCKERFILE.read_text())
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert ("USER", "bot") in steps and kinds.index("USER") > max(
        i for i, (kind, args) in enumerate(steps) if kind == "RUN" and "pip install" in args
    )
    assert exec_form(dict(steps)["CMD"]) == ["python", "-m", "bot"]
    assert dict(steps)["STOPSIGNAL"] == "SIGTERM"
    assert "/healthz" in dict(steps)["HEALTHCHECK"]
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    assert db["image"] == "postgres:15"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert seconds(bot["stop_grace_period"]) > STOP_GRACE_SECONDS + 10
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql://")


@pytest.fixture
async def fakes() -> Any:
    async with (
        DashScopeEmulator(api_key=API_KEY, latency=(0.05, 0.1), seed=3) as emulator,
        FakeTelegram() as telegram,
    ):
        yield telegram, emulator


@pytest.mark.slow
async def test_the_images_install_and_start_commands_serve_and_stop_cleanly(
    tmp_path: Path, fakes: tuple[FakeTelegram, DashScopeEmulator], postgres_url: str
) -> None:
    telegram, emulator = fakes
    await empty_database(postgres_url)
    steps = instructions(DOCKERFILE.read_text())
    # The files the image gets, copied as COPY copies them.
    source = tmp_path / "src"
    source.mkdir()
    for kind, arguments in steps:
        if kind == "COPY":
            *names, target = arguments.split()
            for name in names:
                origin = REPO / name
                if origin.is_dir():
                    shutil.copytree(origin, source / target / name if target.endswith("/")
                                    else source / target,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(origin, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    [install] = [args for kind, args in steps if kind == "RUN" and "pip install" in args]
    command = shlex.split(install)
    assert command[0] == "pip"
    done = await asyncio.to_thread(
        subprocess.run, [str(python), "-m", *command], cwd=source, capture_output=True,
        text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    port = free_port()
    env: dict[str, str] = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for kind, arguments in steps:
        if kind == "ENV":
            env.update(env_instructions(arguments))
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    bot_service = compose["services"]["bot"]
    dot_env = {"TELEGRAM_BOT_TOKEN": telegram.token, "DASHSCOPE_API_KEY": API_KEY,
               "POSTGRES_PASSWORD": "unused"}
    env.update({name: interpolate(str(value), dot_env)
                for name, value in bot_service["environment"].items()})
    env.update({
        # What differs from the deploy: the fakes, the test PostgreSQL server, a free port.
        "TELEGRAM_API_URL": telegram.root_url, "DASHSCOPE_BASE_URL": emulator.base_url,
        "DATABASE_URL": postgres_url,
        "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port),
    })
    workdir = tmp_path / "app"  # empty, as the image's /app: the installed package runs
    workdir.mkdir()
    cmd = exec_form(dict(steps)["CMD"])
    healthcheck = exec_form(dict(steps)["HEALTHCHECK"].split("CMD", 1)[1].strip())
    log = tmp_path / "bot.log"
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            str(venv / "bin" / cmd[0]), *cmd[1:], cwd=workdir, env=env, stdout=sink,
            stderr=sink,
        )
    try:
        await wait_until(lambda: process.returncode is not None or "bot @" in log.read_text(),
                         timeout=30)
        assert process.returncode is None, log.read_text()
        probe = await asyncio.to_thread(
            subprocess.run, [str(venv / "bin" / healthcheck[0]), *healthcheck[1:]], env=env,
            capture_output=True, timeout=10,
        )
        assert probe.returncode == 0, probe.stderr
        alice = telegram.user(1, "Alice")
        start = telegram.send_text(alice, telegram.private_chat(alice), "/start")
        await telegram.wait_for_call("sendMessage",
                                     lambda c: replied_to(c) == start["message_id"])
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(),
                                      seconds(bot_service["stop_grace_period"]))
        assert code == 0, log.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = log.read_text()
    assert all(json.loads(line)["level"] for line in output.splitlines())  # LOG_FORMAT=json
    assert telegram.token not in output and API_KEY not in output
    where = subprocess.run([str(python), "-c", "import bot; print(bot.__file__)"], cwd=workdir,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv))  # the installed copy ran, not this checkout
