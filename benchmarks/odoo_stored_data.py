"""A year of stored checks: do the screens stay fast, and what does a check weigh?

Two databases made from one install of the addon: a small one (``--small``
registrants) and a large one (``--registrants``), each loaded with SQL in the
shapes a monthly sweep leaves: ``--attempts`` checks per registrant chained
as attempts (one latest), results 10 % confirmed / 5 % possible / 85 % none
with 2 % failed, raw answers and match lines as the ORM writes them, one
batch per month with its registrant list, one outbox message per 50 checks,
replay entries, unmatched answers and notification events. Every stored
column of a check is filled. Then VACUUM ANALYZE, one threaded Odoo server
for both, and as an officer and a manager over JSON-RPC: every list, filter,
group-by, pivot, graph, form and search the module adds, the scheduled jobs
and one signed 50-item callback. Prints each median in ms and its ratio
large/small, then bytes per check per table before and after the retention
job (run by Odoo's cron thread, in its chunks), after VACUUM FULL.

It measures and prints; it asserts nothing. Usage (paths are your Odoo's)::

    python benchmarks/odoo_stored_data.py --python /path/venv/bin/python \\
        --odoo-bin /path/odoo-bin --addons-path A,B,C --db-args "--db_host 127.0.0.1 \\
        --db_user root" --pg "host=127.0.0.1 user=root" --registrants 200000
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from odoo_sweep import Rpc, launch  # noqa: E402 - benchmarks/ is the script's directory

from dci import messages  # noqa: E402
from dci.keys import SigningKey  # noqa: E402
from dci.signatures import sign_envelope  # noqa: E402
from dci.simulator.dataset import beneficiary  # noqa: E402

SENDER = "ibr.stored"
OURS = "spmis.stored"
SAMPLES = 5
TABLES = [
    "spp_dci_duplication_check",
    "spp_dci_duplication_match",
    "spp_dci_check_request",
    "spp_dci_check_request_tally",
    "spp_dci_ibr_transaction",
    "spp_dci_replay_entry",
    "spp_dci_callback_orphan",
    "spp_dci_ibr_notification",
]
RAW_NONE = '[{"reference_id": "%s", "timestamp": "2026-01-01T00:00:00Z", "status": "succ",'
RAW_NONE += ' "data": {"reg_type": "ibr:Beneficiary", "reg_records": []}}]'

# -- the data, by SQL -----------------------------------------------------------

LOAD_PARTNERS = """
INSERT INTO res_partner (name, complete_name, active, type, company_id, create_uid, create_date,
                         write_uid, write_date, lang)
SELECT 'Registrant ' || n, 'Registrant ' || n, TRUE, 'contact', %(company)s, 2, now(), 2, now(),
       'en_US'
  FROM generate_series(1, %(n)s) n RETURNING id
"""
LOAD_REQUESTS = """
INSERT INTO spp_dci_check_request (identifier_type, connection_id, company_id, partner_ids_json,
       partner_count, expanded_count, check_count, skipped_count, values_json, skipped_json,
       state, notified_at, create_uid, create_date, write_uid, write_date)
SELECT 'NID', %(connection)s, %(company)s, %(ids_json)s, %(n)s, %(n)s, %(n)s, 0, '{}', '[]',
       'done', now() - make_interval(days => 30 * (%(attempts)s - a)), %(officer)s,
       now() - make_interval(days => 30 * (%(attempts)s - a)), %(officer)s, now()
  FROM generate_series(1, %(attempts)s) a ORDER BY a RETURNING id
"""
LOAD_OUTBOX = """
INSERT INTO spp_dci_ibr_transaction (transaction_id, connection_id, company_id, state, message_id,
       correlation_id, attempts, sent_at, acknowledged_at, create_uid, create_date, write_uid,
       write_date)
SELECT md5('txn' || g), %(connection)s, %(company)s, 'sent', md5('msg' || g), md5('corr' || g),
       1, now(), now(), 1,
       now() - make_interval(days => 30 * (%(attempts)s - 1 - (g - 1) / %(per)s)), 1, now()
  FROM generate_series(1, %(count)s) g RETURNING id
"""
# one attempt (month ``a``) of every registrant; ids are explicit so that an
# attempt's previous one is ``id - registrants``
LOAD_CHECKS = """
INSERT INTO spp_dci_duplication_check (id, partner_id, company_id, identifier_type,
       identifier_value, check_date, result, matched_programs, raw_response, state,
       data_source_id, error_message, ibr_transaction_id, request_id, transaction_id,
       reference_id, completed_at, sent_at, pages_received, pages_total, record_count,
       result_source, failure_kind, previous_check_id, attempt, is_latest,
       create_uid, create_date, write_uid, write_date)
SELECT %(base)s + k, p.id, %(company)s, 'NID', lpad(p.id::text, 10, '0'), d.at,
       CASE WHEN f THEN NULL WHEN m < 10 THEN 'confirmed_match' WHEN m < 15 THEN 'possible_match'
            ELSE 'no_match' END,
       CASE WHEN NOT f AND m < 15 THEN 'Grant ' || (m %% 3) END,
       CASE WHEN f THEN NULL WHEN m < 15 THEN %(raw_match)s ELSE format(%(raw_none)s, md5(k::text))
       END,
       CASE WHEN f THEN 'failed' ELSE 'completed' END,
       %(connection)s,
       CASE WHEN f THEN 'No answer from the IBR within 30 minutes. Retry the check.' END,
       %(txn_base)s + i / 50, %(request)s, md5('txn' || (%(txn_no)s + i / 50)), md5(k::text),
       d.at, d.at, CASE WHEN f THEN 0 ELSE 1 END, CASE WHEN f THEN 0 ELSE 1 END,
       CASE WHEN NOT f AND m < 15 THEN 1 ELSE 0 END,
       CASE WHEN NOT f THEN 'search' END, CASE WHEN f THEN 'no_answer' END,
       CASE WHEN %(a)s > 1 THEN %(base)s + k - %(n)s END, %(a)s, %(a)s = %(attempts)s,
       %(officer)s, d.at, 1, d.at
  FROM (SELECT id, i, i + %(offset)s AS k, (id * 7 + %(a)s * 13) %% 100 AS m,
               (id * 11 + %(a)s) %% 50 = 0 AS f
          FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i
                  FROM res_partner WHERE id = ANY(%(partners)s)) q) p,
       LATERAL (SELECT now() at time zone 'UTC' - make_interval(
                    days => 30 * (%(attempts)s - %(a)s), secs => p.i %% 86400) AS at) d
"""
LOAD_MATCHES = """
INSERT INTO spp_dci_duplication_match (check_id, partner_id, company_id, connection_id, check_date,
       programme_id, programme_name, enrolment_status, enrolment_date, end_date,
       enrolment_active, same_identifier, member_identifier, person_name, sex, birth_date,
       identifiers, create_uid, create_date, write_uid, write_date)
SELECT c.id, c.partner_id, c.company_id, c.data_source_id, c.check_date,
       'PRG-' || s, 'Grant ' || s, CASE WHEN c.result = 'confirmed_match' THEN 'active'
       ELSE 'exited' END, '2024-03-01', CASE WHEN c.result = 'possible_match' THEN '2025-01-31' END,
       c.result = 'confirmed_match', TRUE, 'M-' || c.id, 'Person ' || c.partner_id,
       CASE WHEN c.id %% 2 = 0 THEN 'female' ELSE 'male' END, '1990-01-01',
       'NID:' || c.identifier_value, 1, c.check_date, 1, c.check_date
  FROM spp_dci_duplication_check c,
       generate_series(1, CASE WHEN c.result = 'confirmed_match' THEN 2 ELSE 1 END) s
 WHERE c.result IN ('confirmed_match', 'possible_match')
"""
LOAD_SIDE = """
INSERT INTO spp_dci_replay_entry (sender_id, message_id, digest, keep_until)
SELECT %(sender)s, md5('replay' || g), md5('d' || g), now() + interval '1 day'
  FROM generate_series(1, %(replay)s) g;
INSERT INTO spp_dci_callback_orphan (sender_id, reference_id, transaction_id, reason, item_json,
       state, company_id, create_uid, create_date, write_uid, write_date)
SELECT %(sender)s, md5('o' || g), md5('ot' || g), 'no check has this reference', %(raw_match)s,
       'open', %(company)s, 1, now() - make_interval(days => g %% 300), 1, now()
  FROM generate_series(1, %(orphans)s) g;
INSERT INTO spp_dci_ibr_notification (sender_id, transaction_id, reference_id, event_type, state,
       item_json, company_id, create_uid, create_date, write_uid, write_date)
SELECT %(sender)s, md5('nt' || g), md5('n' || g), 'enrolment', 'unmatched', %(raw_match)s,
       %(company)s, 1, now() - make_interval(days => g %% 300), 1, now()
  FROM generate_series(1, %(orphans)s) g;
INSERT INTO spp_dci_check_request_tally (request_id, open_count, completed_count, failed_count,
       match_count)
SELECT request_id, 0, count(*) FILTER (WHERE state = 'completed'),
       count(*) FILTER (WHERE state = 'failed'),
       count(*) FILTER (WHERE result IN ('possible_match', 'confirmed_match'))
  FROM spp_dci_duplication_check WHERE request_id IS NOT NULL GROUP BY request_id;
"""


def raw_match():
    records = beneficiary("NID", "1000000001", "Grant 1")
    item = {
        "reference_id": "r",
        "timestamp": "2026-01-01T00:00:00Z",
        "status": "succ",
        "data": {"reg_type": messages.IBR_REG_TYPE, "reg_records": records},
    }
    return json.dumps([item])


def load(pg, ids, registrants, attempts):
    """Load ``registrants`` × ``attempts`` checks and what goes with them."""
    started = time.monotonic()
    cr = pg.cursor()
    common = {
        "company": ids["company"],
        "connection": ids["connection"],
        "officer": ids["officer"],
        "attempts": attempts,
    }
    cr.execute(LOAD_PARTNERS, {**common, "n": registrants})
    partners = [row[0] for row in cr.fetchall()]
    cr.execute(LOAD_REQUESTS, {**common, "n": registrants, "ids_json": json.dumps(partners)})
    requests_ = [row[0] for row in cr.fetchall()]
    per = -(-registrants // 50)
    cr.execute(LOAD_OUTBOX, {**common, "count": per * attempts, "per": per})
    txn_base = min(row[0] for row in cr.fetchall())
    cr.execute("SELECT coalesce(max(id), 0) + 1 FROM spp_dci_duplication_check")
    base = cr.fetchone()[0]
    match = raw_match()
    for a in range(1, attempts + 1):
        offset = (a - 1) * registrants
        cr.execute(
            LOAD_CHECKS,
            {
                **common,
                "a": a,
                "n": registrants,
                "base": base,
                "offset": offset,
                "partners": partners,
                "request": requests_[a - 1],
                "raw_match": match,
                "raw_none": RAW_NONE,
                "txn_base": txn_base + (a - 1) * per,
                "txn_no": 1 + (a - 1) * per,
            },
        )
    cr.execute(
        "SELECT setval('spp_dci_duplication_check_id_seq', (SELECT max(id) "
        "FROM spp_dci_duplication_check))"
    )
    cr.execute(LOAD_MATCHES, {})
    cr.execute(
        LOAD_SIDE,
        {
            **common,
            "replay": min(20_000, per * 2),
            "orphans": 500,
            "sender": SENDER,
            "raw_match": match,
        },
    )
    pg.commit()
    return time.monotonic() - started, partners


def vacuum(pg, full=False):
    pg.autocommit = True
    with pg.cursor() as cr:
        cr.execute(f"VACUUM {'FULL ' if full else ''}ANALYZE")
    pg.autocommit = False


def sizes(pg):
    with pg.cursor() as cr:
        cr.execute("SELECT count(*) FROM spp_dci_duplication_check")
        checks = cr.fetchone()[0]
        out = {}
        for table in TABLES:
            cr.execute("SELECT pg_total_relation_size(%s)", (table,))
            out[table] = cr.fetchone()[0]
    return checks, out


# -- the Odoo side --------------------------------------------------------------


def setup(admin, key):
    """Sender, connection, an officer and a manager (both with personal data)."""
    sender = admin(
        "spp.dci.ibr.sender",
        "create",
        {"name": "Stored IBR", "sender_id": SENDER, "public_key": key.public.pem},
    )
    connection = admin(
        "spp.dci.ibr.connection",
        "create",
        {
            "name": "Stored",
            "base_url": "http://127.0.0.1:9",
            "our_sender_id": OURS,
            "receiver_id": SENDER,
            "ibr_sender_id": sender,
        },
    )
    users = {}
    for role in ("officer", "manager"):
        groups = [
            admin("ir.model.data", "check_object_reference", "spp_dci_client_ibr", g)[1]
            for g in (f"group_ibr_{role}", "group_ibr_pii")
        ]
        groups.append(admin("ir.model.data", "check_object_reference", "base", "group_user")[1])
        users[role] = admin(
            "res.users",
            "create",
            {"name": role, "login": role, "password": role + "-pw", "group_ids": [(6, 0, groups)]},
        )
    company = admin("res.users", "read", [users["officer"]], ["company_id"])[0]["company_id"][0]
    return {
        "connection": connection,
        "sender": sender,
        "company": company,
        "officer": users["officer"],
        "manager": users["manager"],
    }


CHECK_LIST = {
    n: {}
    for n in (
        "check_date",
        "identifier_type",
        "identifier_value",
        "state",
        "result",
        "is_latest",
        "failure_kind",
        "attempt",
    )
}
CHECK_LIST["partner_id"] = {"fields": {"display_name": {}}}
CHECK_LIST["data_source_id"] = {"fields": {"display_name": {}}}
MATCH_LIST = {
    n: {}
    for n in (
        "check_date",
        "programme_id",
        "programme_name",
        "enrolment_status",
        "enrolment_date",
        "person_name",
        "result",
        "enrolment_active",
    )
}
MATCH_LIST["partner_id"] = {"fields": {"display_name": {}}}
REQUEST_LIST = {
    n: {}
    for n in (
        "create_date",
        "identifier_type",
        "partner_count",
        "check_count",
        "skipped_count",
        "open_count",
        "completed_count",
        "match_count",
        "failed_count",
        "state",
    )
}
LATEST = [("is_latest", "=", True)]
RECENT = [("check_date", ">=", time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * 86400)))]


def screens(rpc, sample):
    """Name → callable: what a screen of the module asks the server."""
    checks, matches = "spp.dci.duplication.check", "spp.dci.duplication.match"
    value = sample["value"]

    def listing(model, domain, spec, **kw):
        return lambda: rpc(
            model, "web_search_read", domain, spec, limit=80, count_limit=10001, **kw
        )

    def grouped(model, domain, groupby, **kw):
        return lambda: rpc(model, "web_read_group", domain, groupby, ["__count"], **kw)

    return {
        "checks list (default: latest)": listing(checks, LATEST, CHECK_LIST),
        "checks, Answer Refused": listing(
            checks, [*LATEST, ("failure_kind", "=", "answer_refused")], CHECK_LIST
        ),
        "checks, Failed": listing(checks, [*LATEST, ("state", "=", "failed")], CHECK_LIST),
        "checks, Confirmed Match": listing(
            checks, [*LATEST, ("result", "=", "confirmed_match")], CHECK_LIST
        ),
        "checks, all attempts": listing(checks, [], CHECK_LIST),
        "checks grouped by result": grouped(checks, LATEST, ["result"]),
        "checks grouped by day": grouped(checks, [*LATEST, *RECENT], ["check_date:day"]),
        "pivot, Figures (30 days)": lambda: rpc(
            checks,
            "formatted_read_grouping_sets",
            [*LATEST, *RECENT],
            [["failure_kind", "state"], ["failure_kind"], ["state"], []],
            ["__count"],
        ),
        "graph, by day and result (30 days)": lambda: rpc(
            checks,
            "formatted_read_group",
            [*LATEST, *RECENT],
            ["check_date:day", "result"],
            ["__count"],
        ),
        "identifier, exact": listing(checks, [("identifier_value", "=", value)], CHECK_LIST),
        "identifier, contains": listing(
            checks, [("identifier_value", "ilike", value[2:])], CHECK_LIST
        ),
        "registrant, by name": listing(
            checks, [("partner_id", "ilike", sample["name"])], CHECK_LIST
        ),
        "check form": lambda: rpc(
            checks,
            "web_read",
            [sample["check"]],
            {
                **CHECK_LIST,
                "raw_response_pretty": {},
                "match_ids": {"fields": MATCH_LIST},
                "previous_check_id": {"fields": {"display_name": {}}},
            },
        ),
        "registrant form (IBR parts)": lambda: rpc(
            "res.partner",
            "web_read",
            [sample["partner"]],
            {
                "dci_check_count": {},
                "dci_last_result": {},
                "dci_latest_check_ids": {"fields": CHECK_LIST},
            },
        ),
        "match lines list": listing(matches, [], MATCH_LIST),
        "match lines graph by programme (30 days)": lambda: rpc(
            matches, "formatted_read_group", RECENT, ["programme_name"], ["__count"]
        ),
        "batches list": listing("spp.dci.check.request", [], REQUEST_LIST),
        "batch form": lambda: rpc(
            "spp.dci.check.request",
            "web_read",
            [sample["request"]],
            {**REQUEST_LIST, "skip_summary": {}, "display_name": {}},
        ),
    }


def crons(admin):
    def run(xmlid):
        cron = admin("ir.model.data", "check_object_reference", "spp_dci_client_ibr", xmlid)[1]
        return lambda: admin("ir.cron", "method_direct_trigger", [cron])

    return {
        "job: send queued (nothing queued)": run("ir_cron_send_queued_checks"),
        "job: watch answers (stale checks)": run("ir_cron_fail_stale_checks"),
    }


def callback(url, db, key, pg, ids, partners):
    """One signed 50-item on-search answering 50 waiting checks (made here)."""
    with pg.cursor() as cr:
        refs = [messages.new_id() for _ in range(50)]
        cr.execute(
            """INSERT INTO spp_dci_duplication_check (partner_id, company_id, identifier_type,
                   identifier_value, state, data_source_id, reference_id, transaction_id,
                   check_date, sent_at, attempt, is_latest, create_uid, create_date, write_uid,
                   write_date)
               SELECT p, %s, 'NID', lpad(p::text, 10, '0'), 'checking', %s, r, 'txn-cb',
                      now(), now(), 99, FALSE, 1, now(), 1, now()
                 FROM unnest(%s::int[], %s::text[]) AS x(p, r)""",
            (ids["company"], ids["connection"], partners[:50], refs),
        )
    pg.commit()
    items = [
        {
            "reference_id": r,
            "timestamp": messages.now_iso(),
            "status": "succ",
            "data": {
                "reg_type": messages.IBR_REG_TYPE,
                "reg_records": beneficiary("NID", "1000000001", "Grant") if n % 10 == 0 else [],
            },
        }
        for n, r in enumerate(refs)
    ]
    head = messages.callback_header("on-search", SENDER, status="succ", receiver_id=OURS)
    body = json.dumps(
        sign_envelope(
            head, {"transaction_id": "txn-cb", "correlation_id": "c", "search_response": items}, key
        )
    )
    started = time.monotonic()
    answer = requests.post(
        f"{url}/dci_api/ibr/on-search",
        data=body,
        headers={"Content-Type": "application/json", "X-Odoo-Database": db},
        timeout=600,
    )
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text  # a benchmark of a refused answer means nothing
    return elapsed


def median_ms(operation):
    operation()  # warm the caches
    times = []
    for _ in range(SAMPLES):
        started = time.monotonic()
        operation()
        times.append(time.monotonic() - started)
    return statistics.median(times) * 1e3


def retention(pg, admin, ids):
    """Set the windows, wake the job, wait until it has nothing left to do."""
    admin(
        "spp.dci.ibr.connection",
        "write",
        [ids["connection"]],
        {"keep_answers_days": 90, "keep_attempts_days": 180, "keep_logs_days": 30},
    )
    cron = admin(
        "ir.model.data", "check_object_reference", "spp_dci_client_ibr", "ir_cron_apply_retention"
    )[1]
    started = time.monotonic()
    with pg.cursor() as cr:
        cr.execute("INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES (%s, now())", (cron,))
    pg.commit()
    while True:  # until the job's own look-ups would find nothing left
        time.sleep(3)
        with pg.cursor() as cr:
            cr.execute(RETENTION_LEFT)
            left = cr.fetchone()[0]
            cr.execute("SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", (cron,))
            triggered = cr.fetchone()[0]
        pg.rollback()
        if not left and not triggered:
            time.sleep(3)  # the run's last chunks (logs) and its fold
            return time.monotonic() - started


RETENTION_LEFT = """
SELECT (SELECT count(*) FROM spp_dci_duplication_check
         WHERE state IN ('completed', 'failed') AND (
               (raw_response IS NOT NULL AND check_date < now() - interval '90 days')
            OR (is_latest IS NOT TRUE AND check_date < now() - interval '180 days')))
     + (SELECT count(*) FROM spp_dci_callback_orphan WHERE create_date < now() - interval '30 days')
"""


def start_server(args, dbs, logfile):
    """One threaded server for both databases, with a cron thread (retention)."""
    command = [
        args.python,
        args.odoo_bin,
        "-d",
        ",".join(dbs),
        *shlex.split(args.db_args),
        f"--addons-path={args.addons_path}",
        f"--http-port={args.port}",
        "--http-interface=127.0.0.1",
        f"--logfile={logfile}",
        "--max-cron-threads=1",
        f"--db-filter=^({'|'.join(dbs)})$",
        "--limit-time-real=3600",
    ]
    return launch(command, f"http://127.0.0.1:{args.port}", f"/web/login?db={dbs[0]}", 120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--odoo-bin", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db-args", default="")
    parser.add_argument("--pg", default="host=127.0.0.1 user=root", help="libpq conninfo")
    parser.add_argument("--db", default="ibr_stored", help="prefix of the two databases")
    parser.add_argument("--registrants", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--attempts", type=int, default=10)
    parser.add_argument("--port", type=int, default=8271)
    parser.add_argument(
        "--keep-install",
        action="store_true",
        help="reuse the installed small database as the template",
    )
    args = parser.parse_args()
    small, large = f"{args.db}_small", f"{args.db}_large"
    conninfo = shlex.split(args.pg)
    createdb = ["createdb", *[f"--{kv.split('=')[0]}={kv.split('=')[1]}" for kv in conninfo]]
    dropdb = ["dropdb", "--if-exists", *createdb[1:]]
    template = f"{args.db}_template"
    for db in (small, large):
        subprocess.run([*dropdb, db], check=True)
    if not args.keep_install:
        subprocess.run([*dropdb, template], check=True)
        subprocess.run([*createdb, template], check=True)
        subprocess.run(
            [
                args.python,
                args.odoo_bin,
                "-d",
                template,
                *shlex.split(args.db_args),
                f"--addons-path={args.addons_path}",
                "-i",
                "spp_dci_client_ibr",
                "--stop-after-init",
                "--log-level=warn",
            ],
            check=True,
        )
    for db in (small, large):
        subprocess.run([*createdb, "-T", template, db], check=True)
    key = SigningKey.generate(SENDER, "ed25519", key_id="k1")
    server, url = start_server(args, [small, large], f"/tmp/{small}.log")
    try:
        results, worlds = {}, {}
        for db, registrants in ((small, args.small), (large, args.registrants)):
            admin = Rpc(url, db, "admin", "admin")
            ids = setup(admin, key)
            pg = psycopg2.connect(f"{args.pg} dbname={db}")
            seconds, partners = load(pg, ids, registrants, args.attempts)
            vacuum(pg)
            checks, before = sizes(pg)
            print(f"{db}: {checks:,} checks loaded in {seconds:.0f} s", flush=True)
            with pg.cursor() as cr:
                cr.execute(
                    "SELECT id, partner_id, identifier_value, request_id "
                    "FROM spp_dci_duplication_check WHERE result = 'confirmed_match' "
                    "AND is_latest ORDER BY id DESC LIMIT 1"
                )
                check, partner, value, request = cr.fetchone()
                cr.execute("SELECT name FROM res_partner WHERE id = %s", (partner,))
                name = cr.fetchone()[0]
            pg.rollback()
            sample = {
                "check": check,
                "partner": partner,
                "value": value,
                "request": request,
                "name": name,
            }
            timings = {}
            for role in ("officer", "manager"):
                rpc = Rpc(url, db, role, role + "-pw")
                for label, operation in screens(rpc, sample).items():
                    timings[f"{role}: {label}"] = median_ms(operation)
            for label, operation in crons(admin).items():
                timings[label] = median_ms(operation)
            timings["callback, 50 items"] = callback(url, db, key, pg, ids, partners) * 1e3
            job = retention(pg, admin, ids)
            vacuum(pg, full=True)
            kept, after = sizes(pg)
            results[db] = timings
            worlds[db] = (checks, before, kept, after, job)
        report(results, worlds, small, large)
    finally:
        server.terminate()
        server.wait(timeout=60)


def report(results, worlds, small, large):
    print(f"\n{'screen (median ms)':58} {'2k':>8} {'large':>9} {'ratio':>7}")
    for label, ms in results[small].items():
        big = results[large][label]
        print(f"{label:58} {ms:8.1f} {big:9.1f} {big / ms:6.1f}x")
    for db in (small, large):
        checks, before, kept, after, job = worlds[db]
        print(f"\n{db}: {checks:,} checks; retention job {job:.0f} s, {kept:,} checks kept")
        print(f"{'table':34} {'B/check before':>15} {'B/check after':>14} {'MB after':>9}")
        for table in TABLES:
            print(
                f"{table:34} {before[table] / checks:15.0f} {after[table] / checks:14.0f} "
                f"{after[table] / 2**20:9.1f}"
            )
        total_before, total_after = sum(before.values()), sum(after.values())
        print(
            f"{'all of them':34} {total_before / checks:15.0f} {total_after / checks:14.0f} "
            f"{total_after / 2**20:9.1f}  (per check kept: {total_after / max(kept, 1):.0f})"
        )


if __name__ == "__main__":
    main()
