"""The queue: the jobs table itself, driven through one manager."""

from omtx_hub.queue.manager import BatchSubmission, JobSubmission, QueueManager, Submitted
from omtx_hub.queue.retry import RetryDecision, RetryPolicy

__all__ = ["BatchSubmission", "JobSubmission", "QueueManager", "RetryDecision", "RetryPolicy", "Submitted"]
