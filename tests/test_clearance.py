"""Clearance: each state, the decisions that change it, the list filters,
and the cost for ten thousand registrants."""

from datetime import timedelta

from lxml import etree

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user, tagged

from .common import IbrFixtures


class ClearanceCase(IbrFixtures, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, login="ibr_manager", groups="spp_dci_client_ibr.group_ibr_manager"
        )
        cls.partners = cls.env["res.partner"].create(
            [{"name": f"Registrant {n}"} for n in range(3, 8)]
        )

    def completed(self, partner, result, days_ago=0, connection=None):
        """A completed check of ``partner`` with ``result``, answered ``days_ago``."""
        when = fields.Datetime.now() - timedelta(days=days_ago, seconds=-self._tick())
        check = self.make_check(partner, data_source_id=(connection or self.connection).id)
        check.write({"state": "completed", "result": result, "completed_at": when})
        return check

    _ticks = 0

    def _tick(self):
        # later checks complete later, even within one second
        type(self)._ticks += 1
        return self._ticks

    def clearance(self, partner, **kw):
        return partner._get_ibr_clearance(**kw)[partner.id]

    def decide(self, check, kind, user=None, reason="compared photos and birth dates"):
        decisions = self.env["spp.dci.clearance.decision"].with_user(user or self.officer)
        return decisions._decide(check.with_user(user or self.officer), kind, reason)


@tagged("post_install", "-at_install")
class TestClearanceStates(ClearanceCase):
    def test_each_state(self):
        cleared, review, blocked, pending, unknown = self.partners
        no_match = self.completed(cleared, "no_match")
        self.completed(review, "possible_match")
        confirmed = self.completed(blocked, "confirmed_match")
        self.make_check(pending).action_run_check()
        states = self.partners._get_ibr_clearance()
        self.assertEqual(
            [states[p.id]["state"] for p in self.partners],
            ["cleared", "review", "blocked", "pending", "unknown"],
        )
        self.assertEqual(states[cleared.id]["check_ids"], no_match.ids)
        self.assertEqual(states[blocked.id]["check_ids"], confirmed.ids)
        self.assertEqual(states[unknown.id]["check_ids"], [])
        # the badge reads the same
        self.assertEqual(blocked.dci_clearance, "blocked")

    def test_latest_check_per_connection_counts(self):
        partner = self.partners[0]
        self.completed(partner, "confirmed_match", days_ago=3)
        self.completed(partner, "no_match", days_ago=1)
        self.assertEqual(self.clearance(partner)["state"], "cleared")
        self.completed(partner, "possible_match")
        self.assertEqual(self.clearance(partner)["state"], "review")

    def test_worst_connection_wins_and_filter_by_connection(self):
        other = self.connection.copy({"name": "Second IBR"})
        partner = self.partners[0]
        self.completed(partner, "no_match")
        self.completed(partner, "confirmed_match", connection=other)
        self.assertEqual(self.clearance(partner)["state"], "blocked")
        self.assertEqual(self.clearance(partner, connection=self.connection)["state"], "cleared")
        other.active = False  # an archived connection no longer decides
        self.assertEqual(self.clearance(partner)["state"], "cleared")

    def test_old_no_match_is_unknown_but_old_match_still_blocks(self):
        stale, matched = self.partners[:2]
        self.connection.clearance_max_age_days = 30
        self.completed(stale, "no_match", days_ago=31)
        self.completed(matched, "confirmed_match", days_ago=400)
        self.assertEqual(self.clearance(stale)["state"], "unknown")
        self.assertEqual(self.clearance(stale, max_age_days=60)["state"], "cleared")
        self.assertEqual(self.clearance(stale, max_age_days=0)["state"], "cleared")
        self.assertEqual(self.clearance(matched)["state"], "blocked")

    def test_waiting_check_does_not_hide_a_match(self):
        partner = self.partners[0]
        self.completed(partner, "confirmed_match")
        self.make_check(partner).action_run_check()
        self.assertEqual(self.clearance(partner)["state"], "blocked")

    def test_other_company_checks_are_not_read(self):
        partner = self.partners[0]
        self.completed(partner, "confirmed_match")
        other = self.env["res.company"].create({"name": "Other Org"})
        self.assertEqual(
            partner.with_company(other)._get_ibr_clearance()[partner.id]["state"], "unknown"
        )

    def test_the_badge_sits_under_the_registrants_name(self):
        arch = self.env["res.partner"].with_user(self.officer).get_views([(False, "form")])
        form = etree.fromstring(arch["views"]["form"]["arch"])
        [badge] = form.xpath("//field[@name='dci_clearance']")
        self.assertFalse(badge.xpath("ancestor::notebook"), "not inside a tab")
        self.assertEqual(badge.getparent().getprevious().tag, "h1")

    def test_list_filters(self):
        cleared, review, blocked, pending, unknown = self.partners
        self.completed(cleared, "no_match")
        self.completed(review, "possible_match")
        self.completed(blocked, "confirmed_match")
        self.make_check(pending).action_run_check()
        partners = self.env["res.partner"].with_user(self.viewer)
        mine = [("id", "in", self.partners.ids)]
        for state, expected in (
            ("blocked", blocked),
            ("review", review),
            ("cleared", cleared),
            ("pending", pending),
            ("unknown", unknown),
        ):
            found = partners.search(mine + [("dci_clearance", "=", state)])
            self.assertEqual(found.ids, expected.ids, state)
        self.assertEqual(
            partners.search(mine + [("dci_clearance", "!=", "unknown")]).ids,
            (self.partners - unknown).ids,
        )
        self.assertEqual(partners.search(mine + [("dci_clearance", "=", False)]).ids, unknown.ids)

    def test_ten_thousand_registrants_in_one_query(self):
        partners = self.env["res.partner"].create([{"name": f"Bulk {n}"} for n in range(10000)])
        self.env.flush_all()
        # completed checks straight in SQL: the ORM would take minutes here
        self.env.cr.execute(
            """INSERT INTO spp_dci_duplication_check
                   (partner_id, company_id, data_source_id, identifier_type, identifier_value,
                    state, result, completed_at, check_date, is_latest, attempt)
               SELECT p, %s, %s, 'NID', p::text, 'completed',
                      (ARRAY['no_match', 'possible_match', 'confirmed_match'])[p %% 3 + 1],
                      now() at time zone 'UTC', now() at time zone 'UTC', TRUE, 1
                 FROM unnest(%s) AS p""",
            (self.connection.company_id.id, self.connection.id, partners.ids),
        )
        self.env.invalidate_all()
        # the user's companies, then the one statement
        with self.assertQueryCount(2):
            clearance = partners._get_ibr_clearance()
        self.assertEqual(len(clearance), 10000)
        expected = {0: "cleared", 1: "review", 2: "blocked"}
        self.assertTrue(all(clearance[p]["state"] == expected[p % 3] for p in partners.ids))


@tagged("post_install", "-at_install")
class TestClearanceDecisions(ClearanceCase):
    def test_review_not_same_clears_review_same_blocks(self):
        not_same, same = self.partners[:2]
        self.decide(self.completed(not_same, "possible_match"), "review_not_same")
        self.decide(self.completed(same, "possible_match"), "review_same")
        self.assertEqual(self.clearance(not_same)["state"], "cleared")
        self.assertEqual(self.clearance(same)["state"], "blocked")

    def test_a_check_without_its_answer_date_is_decided(self):
        check = self.completed(self.partners[2], "possible_match")
        check.completed_at = False  # as code other than this module's may leave it
        decision = self.decide(check, "review_not_same")
        self.assertEqual(decision.check_completed_at, check.write_date)

    def test_manager_overrides_a_block_with_a_reason(self):
        partner = self.partners[0]
        check = self.completed(partner, "confirmed_match")
        with self.assertRaises(AccessError):
            self.decide(check, "override")  # an officer may not
        with self.assertRaises(UserError):
            self.decide(check, "override", user=self.manager, reason="  ")
        decision = self.decide(check, "override", user=self.manager)
        state = self.clearance(partner)
        self.assertEqual((state["state"], state["overridden"]), ("cleared", True))
        self.assertEqual(state["decision_ids"], decision.ids)
        self.assertRecordValues(
            decision.sudo(),
            [
                {
                    "kind": "override",
                    "user_id": self.manager.id,
                    "check_id": check.id,
                    "result": "confirmed_match",
                    "reason": "compared photos and birth dates",
                }
            ],
        )

    def test_only_what_applies_is_decided(self):
        partner = self.partners[0]
        with self.assertRaises(UserError):  # nothing to review on a no match
            self.decide(self.completed(partner, "no_match"), "review_not_same")
        with self.assertRaises(UserError):  # nothing blocked: nothing to override
            self.decide(self.completed(partner, "possible_match"), "override", user=self.manager)
        old = self.completed(partner, "possible_match")
        self.completed(partner, "possible_match")
        with self.assertRaises(UserError):  # not the latest check
            self.decide(old, "review_not_same")
        with self.assertRaises(AccessError):  # a viewer reviews nothing
            self.decide(old, "review_not_same", user=self.viewer)

    def test_newer_different_result_supersedes_the_decision(self):
        partner = self.partners[0]
        decision = self.decide(self.completed(partner, "possible_match"), "review_not_same")
        self.completed(partner, "possible_match")  # same result again: still decided
        self.assertEqual(self.clearance(partner)["state"], "cleared")
        self.assertFalse(decision.superseded)
        self.completed(partner, "no_match")
        self.completed(partner, "possible_match")  # another result came between
        self.assertEqual(self.clearance(partner)["state"], "review")
        decision.invalidate_recordset()
        self.assertTrue(decision.superseded)
        self.assertTrue(decision.exists(), "the decision stays in the history")

    def test_decisions_are_immutable_over_rpc(self):
        decision = self.decide(self.completed(self.partners[0], "possible_match"), "review_same")
        for user in (self.officer, self.manager):
            mine = decision.with_user(user)
            with self.assertRaises(AccessError):
                mine.write({"kind": "review_not_same"})
            with self.assertRaises(AccessError):
                mine.unlink()
            with self.assertRaises(AccessError):
                mine.create(
                    {
                        "check_id": decision.check_id.id,
                        "partner_id": decision.partner_id.id,
                        "connection_id": self.connection.id,
                        "company_id": decision.company_id.id,
                        "result": "possible_match",
                        "check_completed_at": fields.Datetime.now(),
                        "kind": "override",
                        "reason": "forged",
                        "user_id": user.id,
                        "decided_at": fields.Datetime.now(),
                    }
                )
        # even the superuser does not rewrite history
        with self.assertRaises(AccessError):
            decision.sudo().write({"reason": "rewritten"})

    def test_wizard_records_the_decision(self):
        check = self.completed(self.partners[0], "possible_match")
        wizard = (
            self.env["spp.dci.clearance.decision.wizard"]
            .with_user(self.officer)
            .create({"check_id": check.id, "kind": "review_not_same", "reason": "other village"})
        )
        wizard.action_confirm()
        decision = self.env["spp.dci.clearance.decision"].search([("check_id", "=", check.id)])
        self.assertEqual(decision.kind, "review_not_same")
        self.assertEqual(decision.user_id, self.officer)

    def test_decisions_of_another_company_are_hidden(self):
        decision = self.decide(self.completed(self.partners[0], "possible_match"), "review_same")
        other = self.env["res.company"].create({"name": "Other Org"})
        outsider = new_test_user(
            self.env,
            login="ibr_outsider",
            groups="spp_dci_client_ibr.group_ibr_officer",
            company_id=other.id,
            company_ids=[(6, 0, other.ids)],
        )
        self.assertFalse(
            self.env["spp.dci.clearance.decision"]
            .with_user(outsider)
            .search([("id", "=", decision.id)])
        )
