"""Leadership lost (or a stop) while jobs run: nothing DashScope made is left behind, and this
instance stops talking to DashScope; the next leader (here: the same process, elected again)
follows the tasks by their ids."""

from __future__ import annotations

import asyncio

from storage import JobState
from tests.harness import Harness, make_image, wait_until


async def test_a_stop_during_a_sent_submit_records_its_task_for_the_next_leader(
    harness: Harness,
) -> None:
    tg, emulator, services = harness.telegram, harness.emulator, harness.services
    assert services.leadership is not None and services.leadership.is_leader
    emulator.slow_next("submit", 1.0)  # the task exists at once; its id comes back in 1 s
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    await wait_until(lambda: len(emulator.tasks) == 1, timeout=10)
    [task_id] = emulator.tasks

    await services.leadership.stop()  # what a lost lock does: _follow stops the pipeline

    [job] = await services.store.resumable_jobs()
    assert (job.state, job.task_id) == (JobState.SUBMITTED, task_id)  # waited for, recorded
    assert await services.store.claim_job(job.id, "another instance", services.jobs.queue.lease)
    await services.store.release_claims()  # (claimable at once: this one let go of it)
    # Stood down: no more polls of the task from here, though it has not ended yet.
    polls = len(emulator.requests_to("query"))
    await asyncio.sleep(0.5)
    assert len(emulator.requests_to("query")) == polls
    assert services.client.slots.in_use == 0

    await services.leadership.start()  # elected again: follows the recorded task
    result = await harness.reply_to(request, "sendPhoto")
    assert "Colorize" in result.params["caption"]
    await harness.settled()
    assert len(emulator.tasks) == 1  # never submitted twice
    status = await services.store.quota_status(1)
    assert (status.used, status.reserved) == (1, 0)
    assert len([c for c in tg.calls_to("sendPhoto") if c.params["chat_id"] == 1]) == 1


async def test_a_stop_before_any_submit_leaves_the_job_queued_for_the_next_leader(
    harness: Harness,
) -> None:
    tg, emulator, services = harness.telegram, harness.emulator, harness.services
    assert services.leadership is not None
    await services.leadership.stop()
    alice = harness.user(1)
    request = tg.send_photo(alice, tg.private_chat(alice), make_image(), "/colorize")
    queued = await harness.reply_to(request)  # a follower still answers and queues
    assert "queue" in queued.params["text"].lower()
    await asyncio.sleep(0.5)
    assert not emulator.requests_to("submit")  # a follower never calls DashScope
    [job] = await services.store.resumable_jobs()
    assert job.state is JobState.QUEUED
    await services.leadership.start()
    await harness.reply_to(request, "sendPhoto")
    assert len(emulator.tasks) == 1
