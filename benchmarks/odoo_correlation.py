"""Benchmark 2: applying an on-search callback with 100 vs 100,000 stored checks,
and one 50-item callback (a whole batch's answer): time and SQL queries.

Run inside Odoo 19 (the module installed), it measures the full callback
path (``spp.dci.callback.service.on_search``: parse, verify, correlate by
indexed id, apply) and, for comparison, a free-text ``ilike`` lookup on the
``notes`` field (what the upstream client did). Everything is rolled back.

    odoo-bin shell -c <odoo.conf> -d <db with spp_dci_client_ibr> \\
        < benchmarks/odoo_correlation.py
"""

import json
import statistics
import time

from odoo.addons.spp_dci_client_ibr.dci import messages
from odoo.addons.spp_dci_client_ibr.dci.keys import SigningKey
from odoo.addons.spp_dci_client_ibr.dci.signatures import sign_envelope
from odoo.addons.spp_dci_client_ibr.dci.simulator.dataset import beneficiary

SAMPLES = 40
WARMUP = 5


def setup(env):
    key = SigningKey.generate("ibr.bench", key_id="k1")
    sender = env["spp.dci.ibr.sender"].create({"name": "Bench IBR", "sender_id": "ibr.bench"})
    sender._store_keys([key.public])
    connection = env["spp.dci.ibr.connection"].create(
        {
            "name": "Bench",
            "base_url": "http://127.0.0.1:9",
            "our_sender_id": "spmis.bench",
            "ibr_sender_id": sender.id,
        }
    )
    partner = env["res.partner"].create({"name": "Bench registrant"})
    return key, connection, partner


def fill(env, connection, partner, total):
    """Bring the number of waiting checks to ``total`` with one INSERT."""
    env.flush_all()
    env.cr.execute("SELECT count(*) FROM spp_dci_duplication_check")
    missing = total - env.cr.fetchone()[0]
    if missing > 0:
        env.cr.execute(
            """INSERT INTO spp_dci_duplication_check
                 (partner_id, identifier_type, identifier_value, state, data_source_id,
                  reference_id, transaction_id, notes, check_date, sent_at)
               SELECT %s, 'NID', lpad(g::text, 10, '0'), 'checking', %s,
                      'ref-' || g, 'txn-' || g, 'correlation corr-' || g,
                      now() at time zone 'UTC', now() at time zone 'UTC'
                 FROM generate_series(%s, %s) g""",
            (partner.id, connection.id, total - missing + 1, total),
        )
    env.cr.execute("ANALYZE spp_dci_duplication_check")
    env.invalidate_all()


def callback(key, n, references=None):
    items = [
        {
            "reference_id": reference,
            "timestamp": messages.now_iso(),
            "status": "succ",
            "data": {"reg_records": [beneficiary("NID", "0000000001", "Cash Transfer")]},
        }
        for reference in references or [f"ref-{n}"]
    ]
    header = messages.callback_header("on-search", "ibr.bench", status="succ")
    message = {
        "transaction_id": f"txn-{n}",
        "correlation_id": f"corr-{n}",
        "search_response": items,
    }
    return json.dumps(sign_envelope(header, message, key)).encode()


def measure_batch(env, key, size=50):
    """One callback answering ``size`` waiting checks: median time and SQL queries."""
    service = env["spp.dci.callback.service"]
    references = [f"ref-{n}" for n in range(1, size + 1)]
    times, queries = [], []
    for run in range(WARMUP + 10):
        env.cr.execute(
            """UPDATE spp_dci_duplication_check SET state = 'checking', raw_response = NULL,
                      result = NULL, pages_received = 0 WHERE reference_id = ANY(%s)""",
            (references,),
        )
        env.invalidate_all()
        body = callback(key, f"batch-{run}", references)
        before = env.cr.sql_log_count
        start = time.perf_counter()
        status, _ = service.on_search(body)
        env.flush_all()
        elapsed = time.perf_counter() - start
        assert status == 200, status
        if run >= WARMUP:
            times.append(elapsed)
            queries.append(env.cr.sql_log_count - before)
    return statistics.median(times), statistics.median(queries)


def _median_ms(operation, arguments):
    """Median time of ``operation`` over ``arguments``, after a few untimed runs."""
    for argument in arguments[:WARMUP]:
        operation(argument)
    times = []
    for argument in arguments[WARMUP:]:
        start = time.perf_counter()
        operation(argument)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(env, key, total):
    """Each operation in its own loop: a 100,000-row ilike scan between two
    callbacks would evict the caches the callback path runs from."""
    service = env["spp.dci.callback.service"]
    checks = env["spp.dci.duplication.check"]
    numbers = [total - i for i in range(WARMUP + SAMPLES)]  # a different waiting check each
    bodies = {n: callback(key, n) for n in numbers}

    def apply(n):
        status, _ = service.on_search(bodies[n])
        env.flush_all()
        assert status == 200, status

    def ilike(n):
        assert checks.search([("notes", "ilike", f"corr-{n}")], limit=1), "ilike must find it"

    return _median_ms(apply, numbers), _median_ms(ilike, numbers)


def vacuum(env):
    """Earlier runs roll back their 100,000 rows, leaving dead tuples that a
    sequential scan still reads: clear them so the small case is really small."""
    with env.registry.cursor() as cr:
        cr._cnx.autocommit = True  # VACUUM cannot run inside a transaction
        cr.execute("VACUUM spp_dci_duplication_check")
        cr._cnx.autocommit = False


def main(env):
    vacuum(env)
    env = env(context=dict(env.context, tracking_disable=True))
    key, connection, partner = setup(env)
    results = {}
    for total in (100, 100_000):
        fill(env, connection, partner, total)
        results[total] = measure(env, key, total)
    batch_time, batch_queries = measure_batch(env, key)
    small, large = results[100], results[100_000]
    print(f"callback apply, 100 checks:     {small[0] * 1e3:8.2f} ms")
    print(f"callback apply, 100,000 checks: {large[0] * 1e3:8.2f} ms")
    print(f"ratio (target <= 1.3):          {large[0] / small[0]:8.2f}x")
    print(f"notes ilike, 100 checks:        {small[1] * 1e3:8.2f} ms")
    print(f"notes ilike, 100,000 checks:    {large[1] * 1e3:8.2f} ms")
    print(f"ilike ratio (for comparison):   {large[1] / small[1]:8.2f}x")
    print(f"one 50-item callback:           {batch_time * 1e3:8.2f} ms")
    print(f"... its SQL queries:            {batch_queries:8.0f}")
    env.cr.rollback()


main(env)  # noqa: F821 - `env` is provided by `odoo-bin shell`
