"""Benchmark: registrants cleared per second by ``res.partner._get_ibr_clearance``.

Inside Odoo 19 (the module installed): 100,000 registrants, each with one
completed check (a third no match, a third possible, a third confirmed;
one in ten of the possible ones reviewed), written in plain SQL. It times
one call for all of them, the "Blocked" list filter, and, as the baseline,
the same method called registrant by registrant (on 1,000 of them), then
prints the figures and the ratio. Everything is rolled back.

    odoo-bin shell -c <odoo.conf> -d <db with spp_dci_client_ibr> \\
        < benchmarks/odoo_clearance.py
"""

import time

N = 100_000
ONE_BY_ONE = 1_000


def fill(env, n):
    company = env.company
    connection = env["spp.dci.ibr.connection"].create(
        {"name": "Bench", "base_url": "http://127.0.0.1:9", "our_sender_id": "spmis.bench"}
    )
    env.flush_all()
    env.cr.execute(
        """INSERT INTO res_partner (name, active, type, company_id, create_date, write_date)
           SELECT 'Bench ' || g, TRUE, 'contact', %s, now(), now()
             FROM generate_series(1, %s) g RETURNING id""",
        (company.id, n),
    )
    ids = [row[0] for row in env.cr.fetchall()]
    env.cr.execute(
        """INSERT INTO spp_dci_duplication_check
               (partner_id, company_id, data_source_id, identifier_type, identifier_value,
                state, result, completed_at, check_date, is_latest, attempt)
           SELECT p, %s, %s, 'NID', p::text, 'completed',
                  (ARRAY['no_match', 'possible_match', 'confirmed_match'])[p %% 3 + 1],
                  now() at time zone 'UTC', now() at time zone 'UTC', TRUE, 1
             FROM unnest(%s) AS p RETURNING id, partner_id, result""",
        (company.id, connection.id, ids),
    )
    reviewed = [row for row in env.cr.fetchall() if row[2] == "possible_match"][::10]
    env.cr.execute(
        """INSERT INTO spp_dci_clearance_decision
               (check_id, partner_id, connection_id, company_id, result, check_completed_at,
                kind, reason, user_id, decided_at)
           SELECT c, p, %s, %s, 'possible_match', now() at time zone 'UTC',
                  'review_not_same', 'bench', %s, now() at time zone 'UTC'
             FROM unnest(%s, %s) AS t(c, p)""",
        (
            connection.id,
            company.id,
            env.uid,
            [row[0] for row in reviewed],
            [row[1] for row in reviewed],
        ),
    )
    env.cr.execute("ANALYZE spp_dci_duplication_check")
    env.cr.execute("ANALYZE spp_dci_clearance_decision")
    env.invalidate_all()
    return env["res.partner"].browse(ids)


def timed(work):
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def run(env):
    partners = fill(env, N)
    queries = env.cr.sql_log_count
    whole, clearance = timed(partners._get_ibr_clearance)
    queries = env.cr.sql_log_count - queries
    states = {}
    for mine in clearance.values():
        states[mine["state"]] = states.get(mine["state"], 0) + 1
    sample = partners[:ONE_BY_ONE]
    single, _ = timed(lambda: [p._get_ibr_clearance() for p in sample])
    search, blocked = timed(
        lambda: env["res.partner"].search_count([("dci_clearance", "=", "blocked")])
    )
    rate = N / whole
    single_rate = ONE_BY_ONE / single
    print(f"registrants: {N:,}; states: {states}")
    print(
        f"_get_ibr_clearance, one call:   {whole:.2f} s, {rate:,.0f} registrants/s, "
        f"{queries} queries"
    )
    print(f"one registrant per call:       {single_rate:,.0f} registrants/s (on {ONE_BY_ONE:,})")
    print(f"ratio set-based / one by one:  {rate / single_rate:.0f}x")
    print(f"'Blocked' filter (search_count): {search:.2f} s, {blocked:,} registrants")


run(env)  # noqa: F821 - odoo-bin shell provides env
env.cr.rollback()  # noqa: F821
