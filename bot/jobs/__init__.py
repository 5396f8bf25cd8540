"""The job pipeline, by stage: from an accepted request to delivered images, durable across
restarts.

Life of a job (``storage.models.JobState``):

1. ``accept``: ban check, validation, the input image fetched and prepared once (so a bad image
   is refused before anything is reserved), the quota reserved and the job persisted in one
   transaction, and one status message answers the request.
2. ``run``: workers take queued jobs in fair order (round robin across users) from ``queue``,
   submit them and wait for the result.
3. ``deliver``: results are downloaded, sent as a reply, and the quota is settled for the images
   actually delivered in the same transaction that marks the job delivered.
4. ``notify``: status lines along the way; any failure refunds the reservation and tells the
   user in plain words; account errors alert the admins.

``inputs`` prepares images for every stage; ``requests`` holds the records they share. Handlers
use :class:`JobService` only. On restart ``JobService.start`` continues every unfinished job
from the state it was left in.
"""

from bot.jobs.accept import new_seed
from bot.jobs.presses import Press, PressKind
from bot.jobs.requests import (
    Accepted,
    AcceptResult,
    AlbumImage,
    JobSpec,
    Refused,
    Requester,
)
from bot.jobs.service import CancelOutcome, JobService

__all__ = [
    "AcceptResult",
    "Accepted",
    "AlbumImage",
    "CancelOutcome",
    "JobService",
    "JobSpec",
    "Press",
    "PressKind",
    "Refused",
    "Requester",
    "new_seed",
]
