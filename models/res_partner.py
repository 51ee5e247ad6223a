"""Registrant side: the checks of a partner, its latest result, and actions."""

import json
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..dci.errors import DCIError
from ..dci.interpret import RESULT_RANK
from .duplication_check import RESULTS
from .groups import PII_GROUP, VIEWER_GROUP
from .notify import notification

_logger = logging.getLogger(__name__)

# more registrants than this reach the wizard as a list of ids, not as tags
LARGE = 100


def identifiers_from_reg_ids(reg_ids):
    """``(type, value)`` pairs of spp_registry ID records, in order, once each.

    The type is the ID type's vocabulary ``code`` (``spp.vocabulary.code``
    has no ``name``; its ``display`` is a label, not an identifier type);
    IDs whose ``status`` is ``invalid`` (removed through a change request)
    and IDs without a type code or a value are skipped.
    """
    pairs = []
    for reg_id in reg_ids:
        if getattr(reg_id, "status", False) == "invalid":
            continue
        id_type = getattr(reg_id, "id_type_id", None)
        code = (getattr(id_type, "code", None) or "") if id_type else ""
        value = getattr(reg_id, "value", None) or ""
        pair = (str(code).strip(), str(value).strip())
        if all(pair) and pair not in pairs:
            pairs.append(pair)
    return pairs


class ResPartner(models.Model):
    _inherit = "res.partner"

    dci_check_ids = fields.One2many(
        "spp.dci.duplication.check",
        "partner_id",
        string="IBR Duplication Checks",
        groups=VIEWER_GROUP,
    )
    dci_identifier_ids = fields.One2many(
        "spp.dci.registrant.identifier",
        "partner_id",
        string="Identifiers (IBR)",
        groups=VIEWER_GROUP,
    )
    dci_check_count = fields.Integer(compute="_compute_dci_latest", groups=VIEWER_GROUP)
    dci_last_result = fields.Selection(
        RESULTS,
        string="IBR Result",
        compute="_compute_dci_latest",
        groups=VIEWER_GROUP,
        help="The worst of the latest results of each IBR.",
    )
    dci_latest_state = fields.Selection(
        [("checking", "Check in Progress"), ("failed", "Latest Check Failed")],
        string="IBR Check Status",
        compute="_compute_dci_latest",
        groups=VIEWER_GROUP,
        help="A latest attempt that failed or is not answered yet: the result shown is older.",
    )
    dci_matched_programs = fields.Text(
        string="Matched Programmes",
        compute="_compute_dci_latest",
        groups=PII_GROUP,
        help="The programmes of the latest results, once each.",
    )
    dci_latest_check_ids = fields.Many2many(
        "spp.dci.duplication.check",
        string="Latest IBR Results",
        compute="_compute_dci_latest",
        groups=VIEWER_GROUP,
        help="The latest completed check of each IBR.",
    )

    dci_subscription_ids = fields.One2many(
        "spp.dci.ibr.subscription",
        "partner_id",
        string="IBR Subscriptions",
        groups=PII_GROUP,  # subscriptions are personal data (their identifier values)
    )

    @api.depends("dci_check_ids.state", "dci_check_ids.result", "dci_check_ids.is_latest")
    def _compute_dci_latest(self):
        checks = self.env["spp.dci.duplication.check"]
        counts = dict(
            checks._read_group([("partner_id", "in", self.ids)], ["partner_id"], ["__count"])
        )
        # the state of each latest attempt: failed or waiting says the result is older
        attempts = {}
        for partner, state, _count in checks._read_group(
            [("partner_id", "in", self.ids), ("is_latest", "=", True)],
            ["partner_id", "state"],
            ["__count"],
        ):
            attempts.setdefault(partner.id, set()).add(state)
        latest = {}  # partner id -> {connection id: its latest completed check}
        for check in checks.search(
            [("partner_id", "in", self.ids), ("state", "=", "completed")],
            order="completed_at desc, id desc",
        ):
            latest.setdefault(check.partner_id.id, {}).setdefault(check.data_source_id.id, check)
        pii = self.env.user.has_group(PII_GROUP)
        for partner in self:
            mine = checks.union(*latest.get(partner.id, {}).values())
            states = attempts.get(partner.id, set())
            partner.dci_check_count = counts.get(partner, 0)
            partner.dci_latest_check_ids = mine
            partner.dci_last_result = max(mine.mapped("result"), key=RESULT_RANK.get, default=False)
            partner.dci_latest_state = (
                "failed" if "failed" in states else "checking" if states - {"completed"} else False
            )
            if pii:
                programmes = "\n".join(filter(None, mine.mapped("matched_programs"))).splitlines()
                partner.dci_matched_programs = "\n".join(dict.fromkeys(programmes)) or False

    @api.model
    def _ibr_readable(self, ids):
        """The registrants of ``ids`` (chosen by a caller, never trusted as
        they are) that this environment's user may read, archived ones too, in
        the order given: one search, whatever the number."""
        allowed = set(self.with_context(active_test=False).search([("id", "in", list(ids))]).ids)
        return self.browse([i for i in ids if i in allowed])

    def _get_ibr_identifiers(self):
        """Hook: the ``(type, value)`` identifiers of this registrant that can be
        searched in an IBR: OpenSPP's ``reg_ids`` (spp_registry's
        ``spp.registry.id``) when that field exists, else the registrant's own
        valid identifier lines. Override it for other registries."""
        self.ensure_one()
        if "reg_ids" in self._fields:
            return identifiers_from_reg_ids(self.reg_ids)
        return [
            (line.id_type, line.value)
            for line in self.sudo().dci_identifier_ids
            if line.status == "valid"
        ]

    def _ibr_identifier_for(self, identifier_type):
        """``(value, None)`` of this registrant's first identifier of that type,
        else ``(None, reason)``: why there is nothing to send, for the officer."""
        self.ensure_one()
        identifiers = self._get_ibr_identifiers()
        for id_type, value in identifiers:
            if id_type == identifier_type:
                return value, None
        if not identifier_type:
            return None, self.env._("no identifier type chosen")
        others = sorted({id_type for id_type, _value in identifiers})
        if others:
            return None, self.env._(
                "no identifier of type %(type)s (has: %(others)s)",
                type=identifier_type,
                others=", ".join(others),
            )
        return None, self.env._("no identifier of type %(type)s", type=identifier_type)

    def action_view_dci_checks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_dci_duplication_check"
        )
        action["domain"] = [("partner_id", "=", self.id)]
        action["context"] = {"default_partner_id": self.id}
        return action

    def action_ibr_subscribe(self):
        """Subscribe these registrants to the default IBR's enrolment events
        (sent by a job; the answer shows on their subscription)."""
        subs = self.env["spp.dci.ibr.subscription"]._subscribe_partners(self)
        if not subs:
            return notification(
                self.env._("IBR subscriptions"),
                self.env._(
                    "Nothing to send: these registrants are already subscribed, or have no "
                    "identifier the IBR can follow."
                ),
                "warning",
            )
        return notification(
            self.env._("IBR subscriptions"),
            self.env._("1 subscription request queued for the IBR.")
            if len(subs) == 1
            else self.env._("%(n)s subscription requests queued for the IBR.", n=len(subs)),
        )

    def action_ibr_unsubscribe(self):
        """End these registrants' IBR subscriptions (sent by a job)."""
        subs = self.env["spp.dci.ibr.subscription"].search(
            [("partner_id", "in", self.ids), ("state", "in", ("requested", "active"))]
        )
        if not subs:
            raise UserError(
                self.env._("There is nothing to end: these registrants have no IBR subscription.")
            )
        subs.action_unsubscribe()
        return notification(
            self.env._("IBR subscriptions"),
            self.env._("1 subscription will be ended.")
            if len(subs) == 1
            else self.env._("%(n)s subscriptions will be ended.", n=len(subs)),
        )

    # -- enrolment updates (/registry/sync/enrollment/updates) ---------------

    def _get_ibr_enrolments(self):
        """Hook: the enrolments of these registrants to report to the IBR, as
        spec ``Beneficiary`` records (``dci.simulator.dataset.beneficiary``
        shows the shape). None here: a programme module overrides it."""
        return []

    def _send_ibr_enrolment_updates(self, connection=None):
        """Report what :meth:`_get_ibr_enrolments` returns to the IBR and record
        its answer (``spp.dci.ibr.enrolment.update``; nothing when there is
        nothing to report). A synchronous call: run it from a job or a
        programme's own process, not from an officer's click."""
        beneficiaries = self._get_ibr_enrolments()
        if not beneficiaries:
            return self.env["spp.dci.ibr.enrolment.update"]
        connection = connection or self.env["spp.dci.ibr.connection"].get_default()
        self.env["spp.dci.duplication.check"]._ensure_runnable(connection)
        vals = {
            "connection_id": connection.id,
            "partner_ids": [fields.Command.set(self.ids)],
            "beneficiary_count": len(beneficiaries),
        }
        try:
            answer = connection._get_client().enrollment_updates(beneficiaries)
        except DCIError as exc:
            _logger.info("IBR enrolment report failed: %s", exc.code)
            vals.update(
                state="failed",
                error_message=connection._failure_of(exc).officer,
            )
        else:
            items = answer.message.enrolled_response
            vals.update(
                state="sent",
                transaction_id=answer.transaction_id,
                correlation_id=answer.message.correlation_id,
                accepted_count=sum(1 for i in items if i.status == "succ"),
                answer_json=json.dumps(answer.raw.get("message"), ensure_ascii=False),
            )
        return self.env["spp.dci.ibr.enrolment.update"].sudo().create(vals)

    def action_open_ibr_check_wizard(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_ibr_check_wizard"
        )
        if len(self) > LARGE:
            action["context"] = {"default_selection_ids_json": json.dumps(self.ids)}
        else:
            action["context"] = {"default_partner_ids": self.ids}
        return action
