"""The pipeline's one face to the handlers: accept, check, start, stop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from bot.bailian import BailianClient
from bot.commands import ParsedCommand
from bot.jobs.accept import Acceptor
from bot.jobs.deliver import RESULT_PATIENCE, Deliverer
from bot.jobs.inputs import Inputs, check_options
from bot.jobs.notify import Failures, StatusLines
from bot.jobs.queue import WorkQueue
from bot.jobs.requests import AcceptResult, Requester
from bot.jobs.run import OUTAGE_WAIT, SWEEP_INTERVAL, Workers
from bot.ports import Messenger
from storage.models import Store


class JobService:
    """Wires the stages together; handlers use only the methods below."""

    def __init__(
        self,
        *,
        store: Store,
        client: BailianClient,
        messenger: Messenger,
        admin_ids: Iterable[int] = (),
        wanx_workers: int = 3,
        qwen_workers: int = 2,
        outage_wait: float = OUTAGE_WAIT,
        sweep_interval: float = SWEEP_INTERVAL,
        task_patience: float = RESULT_PATIENCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        admins = frozenset(admin_ids)
        self.queue = WorkQueue(store)
        self.inputs = Inputs(messenger)
        self.status = StatusLines(messenger, self.queue, store, clock=clock)
        self.failures = Failures(store, messenger, self.status, admins)
        self.deliverer = Deliverer(store=store, client=client, messenger=messenger,
                                   status=self.status, failures=self.failures, admin_ids=admins,
                                   patience=task_patience)
        self.acceptor = Acceptor(store=store, messenger=messenger, inputs=self.inputs,
                                 queue=self.queue, status=self.status)
        self.workers = Workers(store=store, client=client, queue=self.queue, inputs=self.inputs,
                               status=self.status, failures=self.failures,
                               deliverer=self.deliverer, wanx_workers=wanx_workers,
                               qwen_workers=qwen_workers, outage_wait=outage_wait,
                               sweep_interval=sweep_interval)

    async def start(self) -> None:
        """Resume unfinished jobs and start the workers."""
        await self.workers.start()

    async def stop(self) -> None:
        """Stop taking work; let deliveries under way finish; leave the rest resumable."""
        await self.workers.stop()
        await self.status.stop()
        await self.deliverer.drain()

    def wake(self) -> None:
        self.queue.wake()

    async def accept(
        self, who: Requester, parsed: ParsedCommand, input_file_id: str, *,
        mask_file_id: str | None = None,
    ) -> AcceptResult:
        """Check, reserve, persist and answer; see :mod:`bot.jobs.accept`."""
        return await self.acceptor.accept(who, parsed, input_file_id, mask_file_id)

    async def check_before_mask(self, parsed: ParsedCommand, input_file_id: str) -> None:
        """Options and base image of a masked request, checked before asking for the mask.

        Raises RequestValidationError or ImageError.
        """
        check_options(parsed, with_mask=True)
        await self.inputs.image(input_file_id, parsed.spec.model)

    async def check_mask(
        self, parsed: ParsedCommand, input_file_id: str, mask_file_id: str
    ) -> None:
        """Whether a mask fits its base image. Raises ImageError."""
        base = await self.inputs.image(input_file_id, parsed.spec.model)
        await self.inputs.mask(mask_file_id, (base.width, base.height))
