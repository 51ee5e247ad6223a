"""What callbacks brought that could not be applied.

Nothing an IBR sends is dropped silently: an answer item that matches no
waiting check is kept here (an orphan) with the reason, and can be applied
later once its check exists (a callback can overtake our own commit).

Only the callback service makes them, from messages whose signature it
verified, and it keeps the sender that verified them: an orphan is applied
again only as that sender's answer. People read them; nobody writes them.
"""

import json

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.fields import Domain

from ..dci.schemas import SearchResponse, SearchResponseItem
from .groups import MANAGER_GROUP, PII_GROUP


class DciCallbackOrphan(models.Model):
    _name = "spp.dci.callback.orphan"
    _description = "Unmatched IBR Answer"
    _order = "id desc"

    sender_id = fields.Char(string="IBR Sender ID", readonly=True)
    verified_sender_id = fields.Many2one(
        "spp.dci.ibr.sender",
        string="Verified By",
        readonly=True,
        ondelete="set null",
        help="The trusted sender whose signature this answer carried: it is applied "
        "again only as that sender's answer.",
    )
    company_id = fields.Many2one(
        "res.company",
        readonly=True,
        index=True,
        help="The company of the message it answers, when we sent one under its transaction id.",
    )
    reference_id = fields.Char(string="Reference ID", readonly=True, index=True)
    transaction_id = fields.Char(string="Transaction ID", readonly=True, index=True)
    correlation_id = fields.Char(string="Correlation ID", readonly=True)
    reason = fields.Char(readonly=True)
    item_json = fields.Text(string="Answer Item", readonly=True, groups=PII_GROUP)
    state = fields.Selection(
        [("open", "Open"), ("applied", "Applied"), ("dismissed", "Dismissed")],
        default="open",
        required=True,
        readonly=True,
    )

    @api.depends("sender_id", "reference_id", "transaction_id")
    def _compute_display_name(self):
        for orphan in self:
            orphan.display_name = self.env._(
                "Unmatched answer from %(sender)s (%(id)s)",
                sender=orphan.sender_id or self.env._("an unknown sender"),
                id=orphan.reference_id or orphan.transaction_id or orphan.id,
            )

    @api.model
    def _company_of(self, transaction_id):
        """The company of our outbox message ``transaction_id`` (False: none)."""
        if not transaction_id:
            return False
        txn = (
            self.env["spp.dci.ibr.transaction"]
            .sudo()
            .search([("transaction_id", "=", transaction_id)], limit=1)
        )
        return txn.connection_id.company_id.id

    @api.model
    def _log_items(self, orphans, sender, transaction_id=None, correlation_id=None):
        """Keep ``(item, reason)`` pairs of a message ``sender`` verified, for
        later; log their ids, not their content."""
        company_id = self._company_of(transaction_id)
        return self.sudo().create(
            [
                {
                    "sender_id": sender.sender_id,
                    "verified_sender_id": sender.id,
                    "company_id": company_id,
                    # an id no check can have: kept short enough for its index
                    "reference_id": (item.reference_id or "")[:255] or False,
                    "transaction_id": transaction_id,
                    "correlation_id": correlation_id,
                    "reason": reason[:250],
                    "item_json": json.dumps(item.dump(), ensure_ascii=False),
                }
                for item, reason in orphans
            ]
        )

    def _check_manager(self):
        if not (self.env.su or self.env.user.has_group(MANAGER_GROUP)):
            raise AccessError(self.env._("Only IBR managers can dismiss or re-apply answers."))

    def action_dismiss(self):
        self._check_manager()
        self.sudo().write({"state": "dismissed"})

    def action_reapply(self):
        """Apply open orphans whose check now waits for them, one set per
        answer, as answers of the sender that verified them; an orphan no
        trusted sender verified is never applied."""
        self._check_manager()
        self = self.sudo()
        checks = self.env["spp.dci.duplication.check"]
        answers = self.filtered(lambda o: o.state == "open" and o.verified_sender_id).grouped(
            lambda o: (o.verified_sender_id, o.transaction_id, o.correlation_id)
        )
        for (sender, transaction_id, correlation_id), orphans in answers.items():
            if not sender.active:
                continue  # no longer trusted: its answers wait
            items = [SearchResponseItem.model_validate(json.loads(o.item_json)) for o in orphans]
            response = SearchResponse(
                transaction_id=transaction_id or "-",
                correlation_id=correlation_id or "",
                search_response=items,
            )
            unapplied = {
                id(item) for item, _reason in checks._apply_search_response(response, sender)
            }
            applied = [
                o.id for o, item in zip(orphans, items, strict=True) if id(item) not in unapplied
            ]
            self.browse(applied).write({"state": "applied"})
        return True

    @api.model
    def _schedule_reconcile(self):
        """Run the job that re-applies orphans at its next wake-up (within a minute).

        The usual orphan is an answer that overtook our own commit of the
        search it answers: its check exists a moment later. Looking again
        soon, instead of at the job's next regular run, completes it quickly.
        """
        cron = self.env.ref(
            "spp_dci_client_ibr.ir_cron_fail_stale_checks", raise_if_not_found=False
        )
        if cron:
            cron.sudo()._trigger()  # the callback runner may not schedule jobs itself

    @api.model
    def _reconcile(self):
        """Re-apply the open orphans a waiting check may be for.

        Only their ids are read to pick them (one indexed search of waiting
        checks): orphans that will never match, such as answers to a batch
        that was never committed, cost no parsing on each run.
        """
        orphans = self.sudo().search([("state", "=", "open"), ("verified_sender_id", "!=", False)])
        ids = {
            field: set(orphans.mapped(field)) - {False}
            for field in ("reference_id", "transaction_id", "correlation_id")
        }
        domain = Domain.OR(
            [Domain(field, "in", list(values)) for field, values in ids.items() if values]
        )
        if domain.is_false():
            return
        waiting = self.env["spp.dci.duplication.check"].search(
            Domain("state", "=", "checking") & domain
        )
        seen = {field: set(waiting.mapped(field)) for field in ids}
        orphans.filtered(
            lambda o: any(o[field] and o[field] in seen[field] for field in ids)
        ).action_reapply()
