"""A year of checks: the screens' queries read indexes, the batch figures
are kept as answers arrive (never counted from the checks per view)."""

from odoo.tests import tagged
from odoo.tests.common import new_test_user
from odoo.tools import SQL

from .common import IbrCase

REGISTRANTS = 10_000
ATTEMPTS = 10  # a monthly sweep for most of a year: 100,000 checks


@tagged("post_install", "-at_install")
class TestScreensReadIndexes(IbrCase):
    """EXPLAIN of the SQL the screens emit, on a table of realistic shape:
    no sequential scan of the checks or the match lines."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = new_test_user(
            cls.env,
            login="ibr_pii_officer",
            groups="spp_dci_client_ibr.group_ibr_officer,spp_dci_client_ibr.group_ibr_pii",
        )
        cls.env.flush_all()
        cr = cls.env.cr
        cr.execute(
            "INSERT INTO res_partner (name, active, company_id) "
            "SELECT 'R' || n, TRUE, %s FROM generate_series(1, %s) n RETURNING id",
            (cls.env.company.id, REGISTRANTS),
        )
        partners = [row[0] for row in cr.fetchall()]
        # every registrant checked once a month; one in ten answered by a match,
        # one in fifty failed (a few of those "answer refused")
        cr.execute(
            """INSERT INTO spp_dci_duplication_check
                      (partner_id, company_id, data_source_id, identifier_type, identifier_value,
                       state, result, failure_kind, check_date, attempt, is_latest,
                       create_uid, create_date)
               SELECT p.id, %(company)s, %(connection)s, 'NID', lpad(p.id::text, 10, '0'),
                      CASE WHEN (p.id + a) %% 50 = 0 THEN 'failed' ELSE 'completed' END,
                      CASE WHEN (p.id + a) %% 50 = 0 THEN NULL
                           WHEN (p.id + a) %% 10 = 0 THEN 'confirmed_match'
                           ELSE 'no_match' END,
                      CASE WHEN (p.id + a) %% 250 = 0 THEN 'answer_refused'
                           WHEN (p.id + a) %% 50 = 0 THEN 'no_answer' END,
                      now() - make_interval(days => 30 * (%(attempts)s - a)),
                      a, a = %(attempts)s, 1, now()
                 FROM unnest(%(partners)s) AS p(id), generate_series(1, %(attempts)s) a""",
            {
                "company": cls.env.company.id,
                "connection": cls.connection.id,
                "attempts": ATTEMPTS,
                "partners": partners,
            },
        )
        cr.execute(
            """INSERT INTO spp_dci_duplication_match
                      (check_id, partner_id, company_id, connection_id, check_date,
                       programme_name, person_name)
               SELECT id, partner_id, company_id, data_source_id, check_date, 'Grant', 'X'
                 FROM spp_dci_duplication_check WHERE result = 'confirmed_match'"""
        )
        cr.execute("ANALYZE spp_dci_duplication_check")
        cr.execute("ANALYZE spp_dci_duplication_match")
        cls.value = f"{partners[-1]:010d}"

    def plan(self, model, domain, **kwargs):
        records = self.env[model].with_user(self.user)
        query = records._search(domain, order=records._order, limit=80, **kwargs)
        self.env.cr.execute(SQL("EXPLAIN %s", query.select()))
        return "\n".join(row[0] for row in self.env.cr.fetchall())

    def assertNoSeqScan(self, plan, table):
        self.assertNotIn(f"Seq Scan on {table}", plan, plan)

    def test_the_checks_list_and_its_filters(self):
        table = "spp_dci_duplication_check"
        latest = [("is_latest", "=", True)]  # the action's default filter
        for name, domain, index in (
            ("default list", latest, "check_date_index"),
            ("all attempts", [], "check_date_index"),
            ("Answer Refused", [*latest, ("failure_kind", "=", "answer_refused")], None),
            ("exact identifier", [("identifier_value", "=", self.value)], None),
            ("registrant's latest", [*latest, ("partner_id", "=", 1)], None),
        ):
            with self.subTest(name):
                plan = self.plan("spp.dci.duplication.check", domain)
                self.assertNoSeqScan(plan, table)
                if index:
                    self.assertIn(index, plan)

    def test_identifier_contains_uses_the_trigram_index_when_there_is_one(self):
        plan = self.plan("spp.dci.duplication.check", [("identifier_value", "ilike", self.value)])
        if self.env.registry.has_trigram:
            self.assertIn("identifier_value_index", plan)  # the field's GIN index
            self.assertNoSeqScan(plan, "spp_dci_duplication_check")
        else:
            self.assertIn("Seq Scan", plan)

    def test_the_match_lines_newest_first_from_their_own_date(self):
        plan = self.plan("spp.dci.duplication.match", [])
        self.assertNoSeqScan(plan, "spp_dci_duplication_match")
        self.assertIn("date_index", plan)
        lines = self.env["spp.dci.duplication.match"].search([], limit=2)
        self.assertGreaterEqual(lines[0].check_date, lines[1].check_date)


@tagged("post_install", "-at_install")
class TestBatchFigures(IbrCase):
    def test_figures_follow_the_answers_without_counting_the_checks(self):
        partners = self.partner | self.partner2
        for partner, value in zip(partners, ("1000000001", "1000000002"), strict=True):
            self.env["spp.dci.registrant.identifier"].create(
                {"partner_id": partner.id, "id_type": "NID", "value": value}
            )
        checks = self.check_in_ibr(partners)
        request = checks.request_id
        figures = ["open_count", "completed_count", "failed_count", "match_count"]
        self.assertEqual(
            request.read(figures)[0],
            {"id": request.id, **dict.fromkeys(figures, 0), "open_count": 2},
        )
        hit, miss = checks.sorted("id")
        hit.sudo().write({"state": "completed", "result": "confirmed_match"})
        miss.sudo().write({"state": "failed", "failure_kind": "no_answer"})
        request.invalidate_recordset()
        self.assertEqual([request[name] for name in figures], [0, 1, 1, 1])
        # a retry adds an attempt in progress; the failed one stays counted
        miss.action_retry()
        request.invalidate_recordset()
        self.assertEqual([request[name] for name in figures], [1, 1, 1, 1])
        # the figures are not counted from the checks: deleting one changes nothing
        hit.sudo().unlink()
        request.invalidate_recordset()
        self.assertEqual([request[name] for name in figures], [1, 1, 1, 1])
        # folded into one row per batch, the same figures
        tally = self.env["spp.dci.check.request.tally"]
        self.assertGreater(tally.search_count([("request_id", "=", request.id)]), 1)
        tally._fold()
        self.assertEqual(tally.search_count([("request_id", "=", request.id)]), 1)
        request.invalidate_recordset()
        self.assertEqual([request[name] for name in figures], [1, 1, 1, 1])
        # and rebuilt from the checks (the migration), what they are now
        tally._rebuild()
        request.invalidate_recordset()
        self.assertEqual([request[name] for name in figures], [1, 0, 1, 0])
