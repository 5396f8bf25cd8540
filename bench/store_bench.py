"""Reservations per second on a file database: ``python -m bench.store_bench``.

Each reservation is one ``create_job`` (n=1): a BEGIN IMMEDIATE transaction that checks the
quota, reserves and inserts the job. Measured sequentially and with many concurrent coroutines
sharing the store's one connection (they queue on its lock, so this shows the lock's overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from storage import NewJob, SqliteStore


def _job(user_id: int) -> NewJob:
    return NewJob(user_id=user_id, chat_id=user_id, request_message_id=1, command="edit",
                  model="qwen-image-edit", function=None, spec_json="{}", input_file_id="f",
                  images_requested=1)


async def _sequential(store: SqliteStore, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        await store.create_job(_job(1 + i % 10))
    return count / (time.perf_counter() - started)


async def _concurrent(store: SqliteStore, count: int, workers: int) -> float:
    async def worker(user_id: int, jobs: int) -> None:
        for _ in range(jobs):
            await store.create_job(_job(user_id))

    per_worker = count // workers
    started = time.perf_counter()
    await asyncio.gather(*(worker(1 + w % 10, per_worker) for w in range(workers)))
    return per_worker * workers / (time.perf_counter() - started)


async def run(folder: Path, count: int, workers: int) -> None:
    path = folder / "bench.sqlite3"
    async with await SqliteStore.open(path, default_limit=10**9,
                                      tz=ZoneInfo("Asia/Shanghai")) as store:
        for user_id in range(1, 11):
            await store.touch_user(user_id, None, f"user {user_id}", None)
        await _sequential(store, 100)  # warm up
        sequential = await _sequential(store, count)
        concurrent = await _concurrent(store, count, workers)
    print(f"file database: {path}")
    print(f"sequential:                {sequential:8.0f} reservations/s ({count} jobs)")
    print(f"{workers} concurrent coroutines: {concurrent:8.0f} reservations/s ({count} jobs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="reservations per run")
    parser.add_argument("--workers", type=int, default=50, help="concurrent coroutines")
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the database file (default: a temporary folder)")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args.dir, args.count, args.workers))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(Path(folder), args.count, args.workers))


if __name__ == "__main__":
    main()
