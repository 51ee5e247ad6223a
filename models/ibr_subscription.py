"""Subscriptions to an IBR's enrolment events, one per registrant and IBR.

An officer's click only records what to send (``pending_action``) and wakes
the send job: nobody waits on the IBR. The job gives each subscription its
reference id and commits it *before* the request leaves, so the
``on-subscribe`` answer finds it however fast it comes; the answer makes it
``active`` (with the IBR's subscription code) or ``rejected``. Unsubscribing
sends the code; ``on-unsubscribe`` ends it. An ``on-subscribe`` item that
matches no subscription of ours is still recorded (without a registrant), as
before.

A send that fails transiently is sent again like a search (the outbox's
rules: back-off with jitter, the connection's retry budget), as the same
batch under the same transaction and reference ids.
"""

import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..dci import messages
from ..dci.errors import DCIError
from ..dci.schemas import SearchResponseItem
from .db_retry import retry_on_conflict
from .groups import OFFICER_GROUP, PII_GROUP

_logger = logging.getLogger(__name__)

STATES = [
    ("requested", "Requested"),
    ("active", "Active"),
    ("rejected", "Rejected"),
    ("ended", "Ended"),
]
# a pending action asked anew starts its sends from scratch
_FRESH_SEND = {
    "error_message": False,
    "send_attempts": 0,
    "send_started_at": False,
    "next_attempt_at": False,
}


class DciIbrSubscription(models.Model):
    _name = "spp.dci.ibr.subscription"
    _description = "IBR Subscription"
    _order = "id desc"

    partner_id = fields.Many2one(
        "res.partner",
        string="Registrant",
        readonly=True,
        index="btree_not_null",
        ondelete="cascade",
    )
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection", string="IBR Connection", readonly=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    identifier_type = fields.Char(readonly=True)
    identifier_value = fields.Char(readonly=True, groups=PII_GROUP)
    state = fields.Selection(STATES, default="requested", required=True, readonly=True)
    pending_action = fields.Selection(
        [("subscribe", "Subscribe"), ("unsubscribe", "Unsubscribe")],
        readonly=True,
        help="What the send job will send for this subscription.",
    )
    error_message = fields.Text(readonly=True)
    send_attempts = fields.Integer(readonly=True, help="Sends of the pending action so far.")
    send_started_at = fields.Datetime(readonly=True, help="The first send of the pending action.")
    next_attempt_at = fields.Datetime(
        readonly=True, help="When the pending action is sent again after a transient failure."
    )
    # what the IBR said (on-subscribe), as recorded since the first version
    sender_id = fields.Char(string="IBR Sender ID", readonly=True, index=True)
    transaction_id = fields.Char(string="Transaction ID", readonly=True, index=True)
    correlation_id = fields.Char(string="Correlation ID", readonly=True)
    reference_id = fields.Char(string="Reference ID", readonly=True, index="btree_not_null")
    unsubscribe_transaction_id = fields.Char(
        string="Unsubscribe Transaction ID", readonly=True, index="btree_not_null"
    )
    code = fields.Char(string="Subscription Code", readonly=True, index=True)
    status = fields.Char(readonly=True, help="rcvd, pdng, succ or rjct")
    status_label = fields.Selection(
        [("rcvd", "Received"), ("pdng", "Pending"), ("succ", "Accepted"), ("rjct", "Rejected")],
        string="IBR Status",
        compute="_compute_status_label",
        help="What the IBR last said of this request.",
    )
    subscription_status = fields.Char(readonly=True, help="subscribe or unsubscribe")
    status_reason = fields.Char(readonly=True)
    timestamp = fields.Char(readonly=True)
    last_event_at = fields.Datetime(string="Last Notification", readonly=True)

    _registrant_ibr_unique = models.UniqueIndex(
        "(partner_id, connection_id) WHERE partner_id IS NOT NULL AND connection_id IS NOT NULL"
    )
    _pending_index = models.Index("(id) WHERE pending_action IS NOT NULL")

    @api.depends("status")
    def _compute_status_label(self):
        known = dict(self._fields["status_label"].selection)
        for sub in self:
            sub.status_label = sub.status if sub.status in known else False

    @api.depends("partner_id", "connection_id", "state")
    def _compute_display_name(self):
        states = dict(STATES)
        for sub in self:
            sub.display_name = self.env._(
                "%(partner)s · %(ibr)s (%(state)s)",
                partner=sub.partner_id.display_name or sub.code or "-",
                ibr=sub.connection_id.display_name or sub.sender_id or "-",
                state=states.get(sub.state, sub.state),
            )

    # -- what officers do (nothing here waits on the IBR) --------------------

    @api.model
    def _subscribe_partners(self, partners, connection=None):
        """Request a subscription for each of ``partners`` (their first IBR
        identifier) on ``connection`` (default: the default connection); the
        send job sends them. Returns the subscriptions to be sent.

        Subscriptions are written only here and by the IBR's verified answers
        (superuser mode, after these checks): nobody edits one over RPC."""
        self._check_officer()
        connection = connection or self.env["spp.dci.ibr.connection"].get_default()
        self.env["spp.dci.duplication.check"]._ensure_runnable(connection)
        # the caller chose the ids: keep those the caller may read
        partners = partners._ibr_readable(partners.ids)
        self = self.sudo()
        existing = {
            sub.partner_id: sub
            for sub in self.search(
                [("partner_id", "in", partners.ids), ("connection_id", "=", connection.id)]
            )
        }
        to_create, to_renew = [], self.browse()
        without_identifier = partners.browse()
        for partner in partners:
            identifiers = partner._get_ibr_identifiers()
            if not identifiers:
                without_identifier |= partner
                continue
            id_type, value = identifiers[0]
            sub = existing.get(partner)
            if sub and sub.state in ("requested", "active") and sub.pending_action != "unsubscribe":
                continue
            vals = {
                "identifier_type": id_type,
                "identifier_value": value,
                "state": "requested",
                "pending_action": "subscribe",
                **_FRESH_SEND,
                "code": False,
                "status": False,
                "status_reason": False,
            }
            if sub:
                sub.write(vals)
                to_renew |= sub
            else:
                to_create.append(dict(vals, partner_id=partner.id, connection_id=connection.id))
        if partners and without_identifier == partners:
            raise UserError(
                self.env._("None of these registrants has an identifier the IBR can search.")
            )
        subs = to_renew | self.create(to_create)
        if subs:
            self._wake_send_job()
        return subs.with_env(partners.env)

    def _check_officer(self):
        if not (self.env.su or self.env.user.has_group(OFFICER_GROUP)):
            raise AccessError(self.env._("Only IBR officers can subscribe or unsubscribe."))

    def action_unsubscribe(self):
        """End these subscriptions: the send job tells the IBR; one not yet
        sent ends at once."""
        self._check_officer()
        self = self.sudo()
        never_sent = self.filtered(lambda s: s.state == "requested" and not s.transaction_id)
        never_sent.write({"state": "ended", "pending_action": False})
        to_send = (self - never_sent).filtered(lambda s: s.state == "active" and s.code)
        waiting = (self - never_sent).filtered(lambda s: s.state == "requested")
        if waiting and not to_send and not never_sent:
            raise UserError(
                self.env._(
                    "The IBR has not confirmed this subscription yet: end it once it is active."
                )
            )
        if to_send:
            to_send.write(dict(_FRESH_SEND, pending_action="unsubscribe"))
            self._wake_send_job()
        return True

    def action_resubscribe(self):
        self._check_officer()
        for connection, subs in self.grouped("connection_id").items():
            self._subscribe_partners(subs.partner_id, connection)
        return True

    def _wake_send_job(self):
        self.env.ref("spp_dci_client_ibr.ir_cron_send_subscriptions").sudo()._trigger()

    # -- the send job --------------------------------------------------------

    @api.model
    def _cron_send_pending(self):
        """Send what officers asked for: one signed message per connection and
        action (up to the connection's batch size), until nothing is pending."""
        while True:
            due = [
                ("pending_action", "!=", False),
                "|",
                ("next_attempt_at", "=", False),
                ("next_attempt_at", "<=", fields.Datetime.now()),
            ]
            pending = self.search(due, limit=1, order="id")
            if not pending:
                return
            connection, action = pending.connection_id, pending.pending_action
            ids_field = "transaction_id" if action == "subscribe" else "unsubscribe_transaction_id"
            if pending.send_attempts:  # a resend: the same batch, under the same ids
                batch = self.search(
                    due
                    + [
                        ("pending_action", "=", action),
                        (ids_field, "=", pending[ids_field]),
                        ("send_attempts", ">", 0),
                    ]
                )
            else:
                batch = self.search(
                    due
                    + [
                        ("pending_action", "=", action),
                        ("connection_id", "=", connection.id),
                        ("send_attempts", "=", 0),
                    ],
                    limit=connection.batch_size or 50,
                    order="id",
                )
            if action == "subscribe":
                batch._send_subscribe(connection)
            else:
                batch._send_unsubscribe(connection)

    def _send_subscribe(self, connection):
        resend = self[:1].send_attempts > 0
        transaction_id = self[:1].transaction_id if resend else messages.new_id()

        def assign():
            self.write(
                {
                    "transaction_id": transaction_id,
                    "sender_id": connection.ibr_sender_id.sender_id,
                    "correlation_id": False,
                    "send_started_at": fields.Datetime.now(),
                }
            )
            for sub in self:
                sub.reference_id = messages.new_id()

        if not resend:
            retry_on_conflict(self.env, assign)  # committed: the answer can find them
        try:
            self.env["spp.dci.duplication.check"]._ensure_runnable(connection)
            queries = [
                messages.SearchQuery(s.reference_id, s.identifier_type, s.identifier_value)
                for s in self.sudo()
            ]
            submission = connection._get_client().subscribe(
                queries,
                sender_uri=connection.get_callback_url("on-subscribe"),
                transaction_id=transaction_id,
            )
        except (DCIError, UserError) as exc:
            self._send_failed(connection, exc, {"state": "rejected"})
            return
        retry_on_conflict(
            self.env,
            lambda: self.write(
                dict(_FRESH_SEND, pending_action=False, correlation_id=submission.correlation_id)
            ),
        )
        retry_on_conflict(self.env, connection._note_success)

    def _send_unsubscribe(self, connection):
        if not self[:1].send_attempts:  # a resend keeps its transaction id
            transaction_id = messages.new_id()
            retry_on_conflict(
                self.env,
                lambda: self.write(
                    {
                        "unsubscribe_transaction_id": transaction_id,
                        "send_started_at": fields.Datetime.now(),
                    }
                ),
            )
        transaction_id = self[:1].unsubscribe_transaction_id
        try:
            self.env["spp.dci.duplication.check"]._ensure_runnable(connection)
            connection._get_client().unsubscribe(
                self.mapped("code"),
                sender_uri=connection.get_callback_url("on-unsubscribe"),
                transaction_id=transaction_id,
            )
        except (DCIError, UserError) as exc:
            self._send_failed(connection, exc, {})
            return
        retry_on_conflict(self.env, lambda: self.write(dict(_FRESH_SEND, pending_action=False)))
        retry_on_conflict(self.env, connection._note_success)

    def _send_failed(self, connection, exc, final_vals):
        """A send of this batch failed: send it again later when transient and
        the retry budget allows, else give up with ``final_vals`` and the reason."""
        failure = connection._failure_of(exc)
        attempts = self[:1].send_attempts + 1
        when = connection._next_attempt_at(self[:1].send_started_at, attempts, failure)
        _logger.info(
            "IBR subscription message failed (%s, attempt %s)%s",
            failure.kind,
            attempts,
            f", again at {when}" if when else "",
        )
        if when:
            vals = {
                "send_attempts": attempts,
                "next_attempt_at": when,
                "error_message": self.env._(
                    "Retrying: %(reason)s (attempt %(attempt)s of %(total)s)",
                    reason=failure.officer,
                    attempt=attempts,
                    total=connection.retry_max_attempts,
                ),
            }
            self.env.ref("spp_dci_client_ibr.ir_cron_send_subscriptions").sudo()._trigger(when)
        else:
            vals = {
                **final_vals,
                **_FRESH_SEND,
                "pending_action": False,
                "error_message": failure.officer,
            }
        retry_on_conflict(self.env, lambda: self.write(vals))
        if failure.kind != "configuration":
            retry_on_conflict(self.env, lambda: connection._note_failure(failure))

    # -- what the IBR answers (called by spp.dci.callback.service) --------------

    def _apply_event(self, item, transaction_id):
        """Hook: apply one verified ``notify`` event to this subscription.

        The IBR's record is read like a search answer into a new completed
        check of the registrant (its latest result), the check notes the
        event, and the registrant's chatter tells the officer. Returns the check.
        """
        self.ensure_one()
        records = item.data.reg_records
        records = records if isinstance(records, list) else [records]
        event = item.data.reg_event_type or "event"
        checks = self.env["spp.dci.duplication.check"].sudo()
        check = checks.create(
            {
                "partner_id": self.partner_id.id,
                "identifier_type": self.sudo().identifier_type,
                "identifier_value": self.sudo().identifier_value,
                "data_source_id": self.connection_id.id,
                "state": "checking",
                "result_source": "notification",
                "reference_id": messages.new_id(),
                "transaction_id": transaction_id,
                "notes": self.env._(
                    "From an IBR notification (%(event)s) of subscription %(code)s.",
                    event=event,
                    code=self.code,
                ),
            }
        )
        answer = SearchResponseItem.model_validate(
            {
                "reference_id": check.reference_id,
                "timestamp": item.timestamp,
                "status": "succ",
                "data": {
                    "reg_type": item.data.reg_type,
                    "reg_record_type": item.data.reg_record_type,
                    "reg_records": records,
                },
            }
        )
        try:
            check._process_ibr_search_result(answer)
        except DCIError:  # pragma: no cover - the hook fails the check itself
            check.write({"state": "failed"})
        self.write({"last_event_at": fields.Datetime.now()})
        # every employee who reads the registrant reads its chatter: the note
        # says where to look, the result stays behind the IBR groups
        self.partner_id.sudo().message_post(
            body=self.env._(
                "The IBR notified an enrolment event: the registrant's IBR checks have a "
                "new result."
            ),
            subtype_xmlid="mail.mt_note",
            author_id=self.env.ref("base.partner_root").id,  # the system, whoever received it
        )
        return check.with_env(self.env)

    @api.model
    def _apply_on_subscribe(self, response, sender):
        """Apply a verified ``SubscribeResponse`` of ``sender``: ours become
        active or rejected; items for no subscription of ours are recorded."""
        items = response.subscribe_response
        ours = {
            sub.reference_id: sub
            for sub in self.search(
                [
                    ("reference_id", "in", [i.reference_id for i in items]),
                    ("connection_id.ibr_sender_id", "=", sender.id),
                ]
            )
        }
        unmatched = []
        for item in items:
            reason = " ".join(filter(None, (item.status_reason_code, item.status_reason_message)))[
                :250
            ]
            infos = item.subscriptions or [{}]
            common = {
                "sender_id": sender.sender_id,
                "transaction_id": response.transaction_id,
                "correlation_id": response.correlation_id,
                "reference_id": item.reference_id,
                "status": item.status,
                "status_reason": reason or False,
                "timestamp": item.timestamp,
            }
            sub = ours.get(item.reference_id)
            if sub is None:
                unmatched += [
                    dict(
                        common,
                        state=_state_of(item.status),
                        code=info.get("code"),
                        subscription_status=info.get("status"),
                        timestamp=info.get("timestamp") or item.timestamp,
                    )
                    for info in infos
                ]
                continue
            vals = dict(
                common, code=infos[0].get("code"), subscription_status=infos[0].get("status")
            )
            vals["state"] = _state_of(item.status)
            if vals["state"] == "rejected":
                vals["error_message"] = self.env._(
                    "The IBR refused the subscription: %(reason)s",
                    reason=reason or self.env._("no reason given"),
                )
            sub.write(vals)
        if unmatched:
            self.create(unmatched)

    @api.model
    def _apply_on_unsubscribe(self, response, sender):
        """Apply a verified ``UnSubscribeResponse``: the codes it confirms end;
        a refusal is shown on the subscriptions it answers. Returns the codes
        that match no subscription of this sender."""
        mine = [("connection_id.ibr_sender_id", "=", sender.id)]
        confirmed = [s.code for s in response.subscription_status if s.status == "unsubscribe"]
        ended = self.search(mine + [("code", "in", confirmed)]) if confirmed else self.browse()
        ended.write(
            {"state": "ended", "pending_action": False, "subscription_status": "unsubscribe"}
        )
        if response.status == "rjct":
            reason = " ".join(
                filter(None, (response.status_reason_code, response.status_reason_message))
            )
            self.search(
                mine
                + [
                    ("unsubscribe_transaction_id", "=", response.transaction_id),
                    ("state", "=", "active"),
                ]
            ).write(
                {
                    "error_message": self.env._(
                        "The IBR refused to end the subscription: %(reason)s",
                        reason=reason or self.env._("no reason given"),
                    )
                }
            )
        return sorted(set(confirmed) - set(ended.mapped("code")))


def _state_of(status):
    return {"succ": "active", "rjct": "rejected"}.get(status, "requested")
