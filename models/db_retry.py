"""Committing work that may meet a concurrent callback or job.

The send job, the subscription job and the answer watch commit as they go (an
outbox message is committed before its request leaves). Two of them touching
the same rows meet a serialization conflict now and then: the work is rolled
back and run again, never reported as a failure.
"""

import random
import time

from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

CONFLICT_TRIES = 5


def commit(env):
    """Make the work so far durable. The Odoo suite's TransactionCase tests
    replace this (``tests/common.py``): their cursor cannot commit."""
    env.cr.commit()  # pylint: disable=invalid-commit


def retry_on_conflict(env, work):
    """Run ``work()``, flush and commit; on a serialization conflict, roll back
    and run it again (at most ``CONFLICT_TRIES`` times). Returns its result.

    The statements that can conflict (row locks, lookups) carry ids only and
    are not logged when they fail: no personal data reaches the log.
    """
    for attempt in range(1, CONFLICT_TRIES + 1):
        try:
            result = work()
            env.flush_all()
            commit(env)
            return result
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            if attempt == CONFLICT_TRIES:
                raise
            env.cr.rollback()
            env.invalidate_all()
            time.sleep(random.uniform(0, 0.05 * attempt))
    return None  # pragma: no cover - the loop returns or raises
