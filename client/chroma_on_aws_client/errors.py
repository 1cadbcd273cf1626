"""What a failed call raises: which request (its id is in the gateway's access log), how often it was tried."""

from __future__ import annotations


class RequestFailed(Exception):
    """A request that failed for good: not retryable, or out of retry budget. `request_id` is the X-Request-Id the
    gateway logged; `status` the last HTTP status (None: no answer)."""

    def __init__(self, message: str, request_id: str, attempts: int, status: int | None) -> None:
        super().__init__(f"{message} (request id {request_id}, {attempts} attempt{'s' if attempts > 1 else ''})")
        self.request_id, self.attempts, self.status = request_id, attempts, status


class BatchFailed(Exception):
    """A large add/upsert/update/delete split into batches failed part-way: `landed` are the (start, end) record
    ranges that were written, `failed` the range that was not; later ranges were not attempted."""

    def __init__(self, operation: str, landed: list[tuple[int, int]], failed: tuple[int, int], total: int,
                 cause: BaseException) -> None:
        done = sum(end - start for start, end in landed)
        super().__init__(f"{operation}: {done} of {total} records landed (batches {landed}); records "
                         f"{failed[0]}-{failed[1] - 1} failed: {cause}")
        self.operation, self.landed, self.failed, self.total, self.cause = operation, landed, failed, total, cause
