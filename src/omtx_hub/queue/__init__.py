"""The queue: the jobs table itself, driven through one façade (:class:`QueueManager`)."""

from omtx_hub.queue.manager import QueueManager
from omtx_hub.queue.retry import RetryDecision, RetryPolicy
from omtx_hub.queue.types import BatchSubmission, Finished, JobSubmission, Submitted

__all__ = [
    "BatchSubmission",
    "Finished",
    "JobSubmission",
    "QueueManager",
    "RetryDecision",
    "RetryPolicy",
    "Submitted",
]
