"""Where a callback and a send-job batch spend their time, in the server process.

Run inside Odoo 19 with the module installed; everything is rolled back::

    odoo-bin shell -d <db with spp_dci_client_ibr> --db_host ... \\
        < benchmarks/odoo_apply_profile.py

Setup, as a sweep leaves it: ``BATCHES`` batches of 50 checks, each of its own
registrant with a distinct identifier, a batch request and its figures; the
answers mix 10 % confirmed, 5 % possible and 85 % no match (the confirmed and
possible ones carry a record, stored as match lines).

Prints, for each path, the median time and SQL queries of one unit (a
50-item signed ``on-search`` callback through ``spp.dci.callback.service``;
one send-job step: claim 50 queued checks, sign, POST to a loopback IBR that
acknowledges, record the acknowledgement), then the functions with the
largest share of that path's time (cProfile, cumulative, the addon's and the
ORM's own functions), so a change is read as a before/after of one run each.
It asserts nothing.
"""

import cProfile
import json
import pstats
import statistics
import time
from collections import Counter
from unittest.mock import patch

from odoo.addons.spp_dci_client_ibr.dci import messages
from odoo.addons.spp_dci_client_ibr.dci.keys import SigningKey
from odoo.addons.spp_dci_client_ibr.dci.simulator.dataset import beneficiary
from odoo.addons.spp_dci_client_ibr.dci.testing import LoopbackServer, answer_item, signed_callback
from odoo.addons.spp_dci_client_ibr.models import db_retry

BATCH = 50
BATCHES = 24  # 4 warm-up + 20 measured of each path
WARMUP = 4
TOP = 18
SHOWN = ("spp_dci_client_ibr", "odoo/orm/", "odoo/sql_db", "odoo/addons/mail/", "odoo/addons/bus/")


def setup(env):
    key = SigningKey.generate("ibr.profile", key_id="k1")
    sender = env["spp.dci.ibr.sender"].create({"name": "Profile IBR", "sender_id": "ibr.profile"})
    sender._store_keys([key.public])
    connection = env["spp.dci.ibr.connection"].create(
        {
            "name": "Profile",
            "base_url": "http://127.0.0.1:9",
            "our_sender_id": "spmis.profile",
            "receiver_id": "ibr.profile",
            "ibr_sender_id": sender.id,
            "callback_url": "http://127.0.0.1:9/dci_api/ibr/on-search",
            "batch_size": BATCH,
        }
    )
    connection.action_generate_signing_key()
    return key, connection


def outcome_of(k):
    """10 % confirmed, 5 % possible, 85 % no match."""
    return "confirmed" if k % 20 < 2 else "possible" if k % 20 == 2 else "none"


def queue_batches(env, connection):
    """``BATCHES`` requests of ``BATCH`` queued checks, one registrant each."""
    partners = env["res.partner"].create(
        [{"name": f"Profile registrant {k}"} for k in range(BATCH * BATCHES)]
    )
    checks = env["spp.dci.duplication.check"]
    for start in range(0, len(partners), BATCH):
        chunk = partners[start : start + BATCH]
        request = env["spp.dci.check.request"].create(
            {
                "identifier_type": "NID",
                "connection_id": connection.id,
                "partner_ids_json": json.dumps(chunk.ids),
                "partner_count": len(chunk),
                "check_count": len(chunk),
                "expanded_count": len(chunk),
                "state": "done",
            }
        )
        checks |= checks.create(
            [
                {
                    "partner_id": partner.id,
                    "identifier_type": "NID",
                    "identifier_value": str(4_000_000_000 + partner.id),
                    "data_source_id": connection.id,
                    "request_id": request.id,
                    "state": "queued",
                }
                for partner in chunk
            ]
        )
    env.flush_all()
    return checks


def answer(key, txn):
    items = []
    for check in txn.check_ids.sorted("id"):
        kind = outcome_of(check.partner_id.id)
        records = []
        if kind != "none":
            status = "Active" if kind == "confirmed" else "Exited"
            records = [beneficiary("NID", check.identifier_value, "Cash Transfer", status=status)]
        items.append(answer_item(check.reference_id, records))
    message = {
        "transaction_id": txn.transaction_id,
        "correlation_id": txn.correlation_id,
        "search_response": items,
    }
    envelope = signed_callback(key, message, sender_id="ibr.profile", receiver_id="spmis.profile")
    return json.dumps(envelope).encode()


def measured(env, profile, work):
    """Run ``work()`` under ``profile``; return (seconds, SQL queries)."""
    before = env.cr.sql_log_count
    started = time.perf_counter()
    profile.enable()
    work()
    env.flush_all()
    profile.disable()
    return time.perf_counter() - started, env.cr.sql_log_count - before


def report(title, runs, profile):
    seconds = statistics.median(r[0] for r in runs)
    queries = statistics.median(r[1] for r in runs)
    print(f"\n{title}: median {seconds * 1000:.1f} ms, {queries:.0f} SQL queries")
    stats = pstats.Stats(profile)
    total = max(timing[3] for timing in stats.stats.values())  # the outermost call
    rows = sorted(
        (
            (cumulative, f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}:{name}", calls)
            for (path, _line, name), (calls, _n, _own, cumulative, _callers) in stats.stats.items()
            if any(part in path for part in SHOWN)
        ),
        reverse=True,
    )
    print(f"  {'share':>6}  {'calls':>7}  function")
    for cumulative, where, calls in rows[:TOP]:
        print(f"  {cumulative / total:6.1%}  {calls:7d}  {where}")


def main(env):
    env = env(context=dict(env.context, tracking_disable=True))
    key, connection = setup(env)
    queue_batches(env, connection)
    transactions = env["spp.dci.ibr.transaction"]
    service = env["spp.dci.callback.service"]
    ack = messages.ack("corr-profile")
    ack_body = (200, {}, json.dumps(ack).encode())
    sends, callbacks = [], []
    send_profile, callback_profile = cProfile.Profile(), cProfile.Profile()
    # the send job commits its claim: a flush here, so that all is rolled back
    with (
        patch.object(db_retry, "commit", lambda env: env.flush_all()),
        LoopbackServer({"/registry/search": ack_body}) as ibr,
    ):
        connection.base_url = ibr.url
        for run in range(BATCHES):
            sent = []

            def send_one(sent=sent):
                txn = transactions._claim()
                txn._send()
                sent.append(txn)

            timing = measured(env, send_profile if run >= WARMUP else cProfile.Profile(), send_one)
            [txn] = sent
            body = answer(key, txn)
            timing_cb = measured(
                env,
                callback_profile if run >= WARMUP else cProfile.Profile(),
                lambda body=body: service.on_search(body),
            )
            if run >= WARMUP:
                sends.append(timing)
                callbacks.append(timing_cb)
    checks = env["spp.dci.duplication.check"].search([("data_source_id", "=", connection.id)])
    results = Counter(f"{c.state}/{c.result or '-'}" for c in checks)
    print(f"{len(checks)} checks: {dict(sorted(results.items()))}")
    report(f"on-search callback ({BATCH} items)", callbacks, callback_profile)
    report(f"send-job step ({BATCH} checks)", sends, send_profile)
    env.cr.rollback()


main(env)  # noqa: F821 - `env` is provided by `odoo-bin shell`
