"""One latest check per registrant and connection, whatever created it; the
migration rebuilds the chains of existing checks, a range at a time."""

from unittest.mock import patch

from odoo.tests import tagged

from ..dci import messages
from ..dci.schemas import NotifyEventItem
from ..models import attempt_chain
from .common import IbrCase, beneficiary


@tagged("post_install", "-at_install")
class TestAttempts(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.checks = cls.env["spp.dci.duplication.check"]
        cls.other = cls.env["spp.dci.ibr.connection"].create(
            {
                "name": "Other IBR",
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": "spmis.other",
                "ibr_sender_id": cls.sender.id,
            }
        )
        for partner, value in ((cls.partner, "1000000001"), (cls.partner2, "1000000002")):
            cls.env["spp.dci.registrant.identifier"].create(
                {"partner_id": partner.id, "id_type": "NID", "value": value}
            )

    def chain(self, partner, connection=None):
        """The checks of ``partner`` at the connection, oldest first, as
        ``(attempt, previous attempt's index or None, is_latest)``."""
        checks = self.checks.search(
            [
                ("partner_id", "=", partner.id),
                ("data_source_id", "=", (connection or self.connection).id),
            ],
            order="id",
        )
        index = {check.id: n for n, check in enumerate(checks)}
        return [(c.attempt, index.get(c.previous_check_id.id), c.is_latest) for c in checks]

    def assertSuperseded(self, partner, n, connection=None):
        expected = [(i + 1, i - 1 if i else None, i == n - 1) for i in range(n)]
        self.assertEqual(self.chain(partner, connection), expected)

    def test_monthly_batches_supersede_each_other(self):
        for _month in range(3):
            self.check_in_ibr(self.partner | self.partner2)
        self.assertSuperseded(self.partner, 3)
        self.assertSuperseded(self.partner2, 3)

    def test_every_creation_path_supersedes_the_latest(self):
        first = self.make_check()  # created directly (an officer's form)
        self.assertSuperseded(self.partner, 1)
        self.check_in_ibr(self.partner)  # the wizard, through a batch
        self.assertSuperseded(self.partner, 2)
        # a large batch, expanded by the send job
        request = (
            self.env["spp.dci.check.request"]
            .with_user(self.officer)
            ._queue(self.partner | self.partner2, "NID", self.connection)
        )
        self.assertEqual(request.check_count, 2)
        self.assertSuperseded(self.partner, 3)
        # Retry of an older attempt: the new one follows the latest, not the retried one
        first.sudo().write({"state": "failed", "failure_kind": "no_answer"})
        retried = self.checks.browse(first.with_user(self.officer).action_retry()["res_id"])
        self.assertSuperseded(self.partner, 4)
        self.assertEqual(retried.attempt, 4)
        # Reset to Ready of the latest
        retried.sudo().write({"state": "completed", "result": "no_match"})
        self.checks.browse(retried.action_reset_to_draft()["res_id"])
        self.assertSuperseded(self.partner, 5)
        # an IBR notification's check
        self.notify(self.partner, "1000000001")
        self.assertSuperseded(self.partner, 6)
        # the other registrant's chain and the other connection are their own
        self.assertSuperseded(self.partner2, 1)
        self.make_check(data_source_id=self.other.id)
        self.assertSuperseded(self.partner, 1, self.other)
        self.assertSuperseded(self.partner, 6)

    def test_one_batch_with_a_registrant_twice_chains_in_order(self):
        made = self.checks.create(
            [
                {
                    "partner_id": partner.id,
                    "identifier_type": "NID",
                    "identifier_value": "1000000001",
                    "data_source_id": self.connection.id,
                }
                for partner in (self.partner, self.partner2, self.partner)
            ]
        )
        self.assertSuperseded(self.partner, 2)
        self.assertEqual(made[2].previous_check_id, made[0])

    def test_the_latest_is_found_in_one_query_for_a_batch(self):
        self.make_check()
        vals = [
            {
                "partner_id": self.env["res.partner"].create({"name": f"R{n}"}).id,
                "identifier_type": "NID",
                "identifier_value": f"20000000{n:02d}",
                "data_source_id": self.connection.id,
            }
            for n in range(30)
        ]
        vals.append({**vals[0], "partner_id": self.partner.id})
        self.env.flush_all()
        with self.assertQueryCount(__system__=1):  # one look-up for the whole batch
            superseded, _repeats = self.checks._chain_attempts([dict(v) for v in vals])
        self.assertEqual(len(superseded), 1)

    def notify(self, partner, value):
        subscription = (
            self.env["spp.dci.ibr.subscription"]
            .sudo()
            .create(
                {
                    "partner_id": partner.id,
                    "connection_id": self.connection.id,
                    "identifier_type": "NID",
                    "identifier_value": value,
                }
            )
        )
        item = NotifyEventItem.model_validate(
            {
                "reference_id": messages.new_id(),
                "timestamp": messages.now_iso(),
                "data": {
                    "reg_event_type": messages.ENROLMENT_EVENT,
                    "reg_record_type": "Beneficiary",
                    "reg_records": beneficiary("NID", value, "Elsewhere Grant"),
                },
            }
        )
        return subscription._apply_event(item, "txn-notify")


@tagged("post_install", "-at_install")
class TestAttemptChainMigration(IbrCase):
    """Checks made before 19.0.2.6.0: every one "latest", attempt 1."""

    def setUp(self):
        super().setUp()
        self.checks = self.env["spp.dci.duplication.check"]
        self.made = self.checks
        for partner in (self.partner, self.partner2):
            for _n in range(3):
                self.made |= self.make_check(partner)
        retried = self.made[1]
        self.env.flush_all()
        # as the old code left them: unchained, except one Retry of the second check
        self.env.cr.execute(
            "UPDATE spp_dci_duplication_check SET is_latest = TRUE, attempt = 1, "
            "previous_check_id = NULL WHERE id = ANY(%s)",
            (self.made.ids,),
        )
        self.env.cr.execute(
            "UPDATE spp_dci_duplication_check SET previous_check_id = %s, attempt = 2 "
            "WHERE id = %s",
            (self.made[0].id, retried.id),
        )
        self.env.invalidate_all()

    def test_chains_are_rebuilt_in_chunks_and_once(self):
        chunks = []
        with patch.object(attempt_chain, "CHAIN_CHUNK", 1):
            changed = self.checks._fix_attempt_chains(after_chunk=lambda: chunks.append(1))
        self.assertEqual(changed, 6)
        self.assertGreaterEqual(len(chunks), 2)
        for partner in (self.partner, self.partner2):
            mine = self.made.filtered(lambda c, p=partner: c.partner_id == p)
            self.assertEqual(mine.mapped("attempt"), [1, 2, 3])
            self.assertEqual(mine.mapped("is_latest"), [False, False, True])
            self.assertEqual(mine.previous_check_id, mine[:2])
        # again: nothing left to change (a stopped migration can be re-run)
        self.assertEqual(self.checks._fix_attempt_chains(), 0)
