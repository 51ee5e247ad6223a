"""A duplication check: is this registrant already enrolled elsewhere, per the IBR?

Lifecycle: ``ready`` → ``queued`` (the officer asked) → ``checking`` (its ids
committed in an outbox message, the search on its way or sent) →
``completed`` or ``failed``. Every search goes through the send job
(:mod:`.ibr_transaction`): no officer request ever waits on an IBR.

Protocol work (signing, answers, interpretation) is the core's; this model
stores, correlates and keeps the audit trail on the check itself: who asked
and when (``create_uid``, ``create_date``), when it was sent and answered,
under which ids, what the IBR answered (``raw_response``) and the result.
No chatter row is written per check: at registry scale that would double
the cost of every answer.
"""

import json
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.fields import Domain

from ..dci import messages
from ..dci.errors import DCIError, EnvelopeError, PeerRejected, ServiceUnavailable
from ..dci.interpret import NO_MATCH, Interpretation, interpret_item
from ..dci.schemas import SearchResponse, SearchResponseItem

_logger = logging.getLogger(__name__)

PII_GROUP = "spp_dci_client_ibr.group_ibr_pii"
RESULTS = [
    ("no_match", "No Match"),
    ("possible_match", "Possible Match"),
    ("confirmed_match", "Confirmed Match"),
]
STATES = [
    ("ready", "Ready"),
    ("queued", "Queued"),
    ("checking", "Checking"),
    ("completed", "Completed"),
    ("failed", "Failed"),
]
# What a new attempt starts from: nothing of the previous one survives.
_CLEARED = {
    "result": False,
    "matched_programs": False,
    "raw_response": False,
    "error_message": False,
    "transaction_id": False,
    "reference_id": False,
    "ibr_transaction_id": False,
    "completed_at": False,
    "sent_at": False,
    "pages_received": 0,
    "record_count": 0,
}
# Checks are created by the thousand: no creation note, no follower row each.
_QUIET_CREATE = {"mail_create_nolog": True, "mail_create_nosubscribe": True}


def _pages_by_number(items):
    """The ``succ`` answer items by page number: a page delivered twice counts once."""
    return {
        (item.get("pagination") or {}).get("page_number", 1): item
        for item in items
        if item.get("status") == "succ"
    }


class DuplicationCheck(models.Model):
    _name = "spp.dci.duplication.check"
    _description = "IBR Duplication Check"
    _inherit = ["mail.thread"]
    _order = "check_date desc, id desc"

    partner_id = fields.Many2one(
        "res.partner", string="Registrant", required=True, ondelete="cascade", index=True
    )
    identifier_type = fields.Char(required=True, help="e.g. NID, UIN, BRN")
    identifier_value = fields.Char(required=True, groups=PII_GROUP)
    check_date = fields.Datetime(default=fields.Datetime.now, readonly=True)
    result = fields.Selection(RESULTS, readonly=True, copy=False)
    matched_programs = fields.Text(readonly=True, groups=PII_GROUP, copy=False)
    raw_response = fields.Text(readonly=True, groups=PII_GROUP, copy=False)
    state = fields.Selection(
        STATES, default="ready", required=True, readonly=True, index=True, copy=False
    )
    data_source_id = fields.Many2one(
        "spp.dci.ibr.connection",
        string="IBR Connection",
        ondelete="restrict",
        default=lambda self: self.env["spp.dci.ibr.connection"].search([], limit=1),
    )
    error_message = fields.Text(readonly=True, copy=False)
    notes = fields.Text()
    ibr_transaction_id = fields.Many2one(
        "spp.dci.ibr.transaction",
        string="Outbox Message",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
    )
    request_id = fields.Many2one(
        "spp.dci.check.request",
        string="Check Request",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
    )
    transaction_id = fields.Char(string="Transaction ID", readonly=True, index=True, copy=False)
    reference_id = fields.Char(string="Reference ID", readonly=True, copy=False)
    correlation_id = fields.Char(
        string="Correlation ID", related="ibr_transaction_id.correlation_id"
    )
    completed_at = fields.Datetime(readonly=True, copy=False)
    sent_at = fields.Datetime(readonly=True, copy=False)
    pages_received = fields.Integer(readonly=True, copy=False)
    record_count = fields.Integer(string="Records Found", readonly=True, copy=False)

    _reference_id_unique = models.UniqueIndex("(reference_id) WHERE reference_id IS NOT NULL")
    _queue_index = models.Index("(id) WHERE state = 'queued'")

    @api.depends("partner_id", "identifier_type", "state")
    def _compute_display_name(self):
        states = dict(STATES)
        for check in self:
            check.display_name = self.env._(
                "%(partner)s · %(type)s (%(state)s)",
                partner=check.partner_id.display_name or "?",
                type=check.identifier_type or "?",
                state=states.get(check.state, ""),
            )

    @api.constrains("identifier_type", "identifier_value")
    def _check_identifier(self):
        for check in self.sudo():
            if (
                not (check.identifier_type or "").strip()
                or not (check.identifier_value or "").strip()
            ):
                raise ValidationError(self.env._("A check needs an identifier type and value."))

    @api.model_create_multi
    def create(self, vals_list):
        return super(DuplicationCheck, self.with_context(**_QUIET_CREATE)).create(vals_list)

    # -- officer actions ---------------------------------------------------

    def action_run_check(self):
        """Queue ``ready`` checks; the send job sends them at once, in batches."""
        already = self.filtered(lambda c: c.state != "ready")
        if already:
            raise UserError(
                self.env._(
                    "%(count)s check(s) were already run (%(names)s). Use Retry to run them again.",
                    count=len(already),
                    names=", ".join(already.mapped("display_name")[:5]),
                )
            )
        self._enqueue()
        return True

    def action_retry(self):
        """Run finished checks again, as a new attempt with new ids."""
        if self.filtered(lambda c: c.state not in ("failed", "completed")):
            raise UserError(self.env._("Only completed or failed checks can be retried."))
        self.write(dict(_CLEARED, state="ready"))
        self._enqueue()
        return True

    def action_reset_to_draft(self):
        """Back to ``ready``; a late answer to the old attempt will no longer apply."""
        self.write(dict(_CLEARED, state="ready"))
        return True

    def action_queue(self):
        """Queue ``ready`` checks for the send job (kept for callers of the old name)."""
        self.filtered(lambda c: c.state == "ready")._enqueue()
        return True

    def _enqueue(self):
        """Check the connections can send, queue these checks, wake the send job."""
        if not self:
            return
        for connection, checks in self.grouped("data_source_id").items():
            checks._ensure_runnable(connection)
        self.write({"state": "queued"})
        self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").sudo()._trigger()

    # -- sending (called by the outbox, see ibr_transaction.py) --------------

    def _ensure_runnable(self, connection):
        if not connection:
            connection = self.env["spp.dci.ibr.connection"].get_default()
            self.write({"data_source_id": connection.id})
        if not connection.active:
            raise UserError(
                self.env._("IBR connection %(name)s is archived.", name=connection.name)
            )
        if not connection.ibr_sender_id:  # async or sync: every answer must be verified
            raise UserError(
                self.env._(
                    "IBR connection %(name)s has no trusted IBR sender, so none of its "
                    "answers could be verified. Ask an administrator to set one on the "
                    "connection (Settings > Technical > DCI > IBR Connections).",
                    name=connection.name,
                )
            )
        connection._signing_key()  # raises a UserError when there is none
        return connection

    def _assign_to(self, txn):
        """Give these checks their ids in outbox message ``txn``: from now on an
        answer can find them."""
        now = fields.Datetime.now()
        common = dict(
            _CLEARED,
            state="checking",
            transaction_id=txn.transaction_id,
            ibr_transaction_id=txn.id,
            data_source_id=txn.connection_id.id,
            sent_at=now,
            check_date=now,
        )
        self.write(common)  # one UPDATE for what the batch shares
        for check in self:
            check.reference_id = messages.new_id()

    def _search_queries(self):
        return [
            messages.SearchQuery(c.reference_id, c.identifier_type, c.identifier_value)
            for c in self.sudo()
        ]

    def _enrolled_precheck(self, client):
        """Complete as No Match the checks the IBR says are not enrolled; return the rest."""
        remaining = self.browse()
        for check in self.sudo():
            try:
                answer = client.enrolled(check.identifier_type, check.identifier_value)
                items = answer.message.enrolled_response
            except DCIError:
                items = []  # the full search decides
            if items and all(i.status == "succ" and i.enrolled_status == "no" for i in items):
                check.write(
                    {
                        "state": "completed",
                        "result": NO_MATCH,
                        "completed_at": fields.Datetime.now(),
                        "raw_response": json.dumps([answer.raw.get("message")], ensure_ascii=False),
                    }
                )
            else:
                remaining |= check
        return remaining.with_env(self.env)

    def _mark_failed(self, message):
        if not self:
            return
        self._lock_rows()
        self.write({"state": "failed", "error_message": message})

    def _lock_rows(self):
        """Lock these rows before writing answers into them.

        The lock statement carries ids only and is not logged if it fails: a
        conflict with a concurrent delivery surfaces here, as a serialization
        failure the caller retries, and never in a later UPDATE whose failed
        query (with personal data in it) Odoo would log at ERROR.
        """
        if self.ids:
            self.env.cr.execute(
                "SELECT id FROM spp_dci_duplication_check WHERE id = ANY(%s) "
                "ORDER BY id FOR NO KEY UPDATE",
                (sorted(self.ids),),
                log_exceptions=False,
            )

    def _officer_message(self, exc):
        """Say what went wrong in words an officer can act on (no PII)."""
        if isinstance(exc, ServiceUnavailable):
            return self.env._(
                "The IBR could not be reached or did not answer in time (%(reason)s). Retry later.",
                reason=exc.message,
            )
        if exc.code in ("err.request.unauthorized", "err.request.forbidden") or (
            isinstance(exc, PeerRejected) and exc.http_status in (401, 403)
        ):
            return self.env._(
                "The IBR did not accept our credentials (%(code)s): %(reason)s. Check the "
                "connection's authentication and signing key.",
                code=exc.code,
                reason=exc.message,
            )
        if isinstance(exc, PeerRejected):
            return self.env._(
                "The IBR refused the search (%(code)s): %(reason)s",
                code=exc.code,
                reason=exc.message,
            )
        if isinstance(exc, EnvelopeError):
            return self.env._(
                "The IBR answered something we cannot read: %(reason)s", reason=exc.message
            )
        return self.env._(
            "The search failed (%(code)s): %(reason)s", code=exc.code, reason=exc.message
        )

    # -- answers -----------------------------------------------------------

    @api.model
    def _match_items(self, items, transaction_id=None, correlation_id=None):
        """The check each answer item is for, as a list aligned with ``items``.

        By our ``reference_id`` (one indexed lookup for all items), else by our
        ``transaction_id`` or the IBR's ``correlation_id`` when that names
        exactly one check. Never by free text.
        """
        references = [item.reference_id for item in items if item.reference_id]
        by_reference = {}
        if references:
            found = self.search([("reference_id", "in", references)])
            by_reference = {check.reference_id: check for check in found}
        fallback = None
        if any(item.reference_id not in by_reference for item in items):
            fallback = self._single_check_of(transaction_id, correlation_id)
        return [by_reference.get(item.reference_id) or fallback or self.browse() for item in items]

    @api.model
    def _single_check_of(self, transaction_id, correlation_id):
        for domain in (
            transaction_id and Domain("transaction_id", "=", transaction_id),
            correlation_id and Domain("ibr_transaction_id.correlation_id", "=", correlation_id),
        ):
            if domain:
                checks = self.search(domain, limit=2)
                if len(checks) == 1:
                    return checks
        return None

    @api.model
    def _apply_search_response(self, response, sender):
        """Apply every item of a core ``SearchResponse`` as one set; return the
        orphan items as ``(item, reason)`` pairs for the caller to log."""
        items = response.search_response
        matched = self._match_items(items, response.transaction_id, response.correlation_id)
        self.browse().union(*matched)._lock_rows()
        orphans = []
        for item, check in zip(items, matched, strict=True):
            if not check:
                orphans.append((item, "no check has this reference, transaction or correlation id"))
            elif sender and check.data_source_id.ibr_sender_id != sender:
                orphans.append((item, f"sender {sender.sender_id} does not answer for this check"))
            elif check.state != "checking":
                orphans.append((item, f"the check is {check.state}, not waiting for an answer"))
            else:
                check._process_ibr_search_result(item)
        return orphans

    @api.model
    def _apply_answer(self, response, sender):
        """Apply an answer, keeping what matched no waiting check as orphans
        (with the answer's ids, for a later reconcile); return those items."""
        unmatched = self._apply_search_response(response, sender)
        if unmatched:
            self.env["spp.dci.callback.orphan"]._log_items(
                unmatched, sender.sender_id, response.transaction_id, response.correlation_id
            )
        return unmatched

    def _interpret_search_item(self, item):
        """Hook: read one answer item for this check (core interpretation)."""
        self.ensure_one()
        return interpret_item(item, self.identifier_type, self.identifier_value)

    def _process_ibr_search_result(self, item):
        """Hook: apply one ``search_response`` item (a core ``SearchResponseItem``).

        ``succ`` pages are kept; once every page arrived (in any order: the replay
        guard keeps duplicates out) the check completes with their merged result.
        ``rjct`` fails it with the IBR's reason; ``pdng``/``rcvd`` leave it waiting.
        An item we cannot read fails its check with the reason, and only that check.
        """
        self.ensure_one()
        try:
            outcome = self._interpret_search_item(item)
        except DCIError as exc:
            self.write(
                {
                    "state": "failed",
                    "result": False,
                    "matched_programs": False,
                    "error_message": self.env._(
                        "The IBR's answer for this check cannot be read: %(reason)s",
                        reason=exc.message,
                    ),
                }
            )
            return
        pages = json.loads(self.raw_response) if self.raw_response else []
        pages.append(item.dump())
        vals = {"raw_response": json.dumps(pages, ensure_ascii=False)}
        if outcome.status == "succ":
            answered = _pages_by_number(pages)
            vals["pages_received"] = len(answered)
            if len(answered) >= outcome.total_pages:  # pages may come in any order
                merged = (
                    outcome.interpretation
                    if len(answered) == 1
                    else self._merge_pages(answered[n] for n in sorted(answered))
                )
                vals.update(
                    state="completed",
                    result=merged.result,
                    record_count=merged.record_count,
                    matched_programs="\n".join(merged.programmes) or False,
                    completed_at=fields.Datetime.now(),
                    error_message=False,
                )
        elif outcome.status == "rjct":
            vals.update(
                state="failed",
                result=False,
                matched_programs=False,
                error_message=self.env._(
                    "The IBR rejected the search (%(code)s): %(reason)s",
                    code=outcome.reason_code or "rjct",
                    reason=outcome.reason_message or self.env._("no reason given"),
                ),
            )
        self.write(vals)

    def _merge_pages(self, pages):
        """The result of a whole answer: its ``succ`` pages read and merged.
        A check shows no result before its answer is complete."""
        merged = Interpretation(NO_MATCH)
        for page in pages:
            outcome = self._interpret_search_item(SearchResponseItem.model_validate(page))
            merged = merged.merge(outcome.interpretation)
        return merged

    # -- scheduled jobs ----------------------------------------------------

    @api.model
    def _cron_send_queued(self):
        """The send job: claim a batch (committed), send it, record the answer;
        repeat while the cron run's time budget lasts, reporting what is left
        so Odoo runs the job again at once until the queue is empty."""
        outbox = self.env["spp.dci.ibr.transaction"]
        requests = self.env["spp.dci.check.request"]
        cron = self.env["ir.cron"]
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        while True:
            txn = outbox._claim()
            if txn:
                txn._send()
                processed = len(txn.check_ids)
            else:  # all queued checks are out: queue more of a large request
                processed = outbox._retry_on_conflict(requests._expand_next)
                if not processed:
                    if in_cron:
                        cron._commit_progress(remaining=0)
                    return
            if in_cron:
                remaining = self._queue_size()
                if cron._commit_progress(processed, remaining=remaining) <= 0:
                    if remaining:
                        # Odoo reschedules a partly done job without waking the
                        # cron workers (they sleep up to a minute): wake them
                        self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks")._trigger()
                    return

    @api.model
    def _queue_size(self):
        """What the send job has left: queued checks, messages to resend,
        registrants of large requests not yet queued."""
        return (
            self.search_count([("state", "=", "queued")])
            + self.env["spp.dci.ibr.transaction"].search_count([("state", "=", "sending")])
            + self.env["spp.dci.check.request"]._pending_registrants()
        )

    @api.model
    def _cron_fail_stale(self):
        """Fail checks that waited past their connection's limit, so none waits forever.
        When the connection asks for it, poll the IBR's transaction status first."""
        # a conflict with a delivery applying the same checks is retried, not logged
        self.env["spp.dci.ibr.transaction"]._retry_on_conflict(
            self.env["spp.dci.callback.orphan"]._reconcile
        )
        now = fields.Datetime.now()
        for connection in (
            self.env["spp.dci.ibr.connection"]
            .with_context(active_test=False)
            .search([("stale_after_minutes", ">", 0)])
        ):
            limit = fields.Datetime.subtract(now, minutes=connection.stale_after_minutes)
            stale = self.search(
                [
                    ("state", "=", "checking"),
                    ("data_source_id", "=", connection.id),
                    ("sent_at", "<", limit),
                ]
            )
            if not stale:
                continue
            if (
                connection.poll_status_before_failing
                and connection.active
                and connection.ibr_sender_id  # an unverifiable status is no answer
            ):
                if connection.txn_status_async:
                    stale = stale._request_status(connection, limit)
                else:
                    stale._poll_status(connection)
                stale = stale.filtered(lambda c: c.state == "checking")
            stale._mark_failed(
                self.env._(
                    "No answer from the IBR within %(minutes)s minutes. Retry the check.",
                    minutes=connection.stale_after_minutes,
                )
            )

    def _request_status(self, connection, limit):
        """Ask the IBR (``/registry/txn/status``, answered by ``txn/on-status``)
        about the messages of these stale checks that were not asked about yet;
        return the checks to fail now: those whose message was asked about
        before ``limit`` and is still unanswered, or could not be asked."""
        client = connection._get_client()
        txns = self.ibr_transaction_id
        asked = txns.filtered(lambda t: t.status_requested_at)
        spared = asked.filtered(lambda t: t.status_requested_at >= limit)
        for txn in txns - asked:
            try:
                client.request_txn_status(
                    txn.transaction_id,
                    sender_uri=connection.get_callback_url("txn/on-status"),
                    correlation_id=txn.correlation_id or None,
                )
            except DCIError as exc:
                _logger.info("IBR status request failed: %s", exc.code)
                continue
            spared |= txn
        (spared - asked).write({"status_requested_at": fields.Datetime.now()})
        return self.filtered(lambda c: c.ibr_transaction_id not in spared)

    def _poll_status(self, connection):
        client = connection._get_client()
        for transaction_id in set(self.mapped("transaction_id")):
            try:
                answer = client.txn_status(transaction_id)
            except DCIError as exc:
                _logger.info("IBR status poll failed: %s", exc.code)
                continue
            status = answer.message.txnstatus_response.txn_status
            try:
                response = SearchResponse.model_validate(status)
            except ValueError:
                continue  # not a search answer: nothing to apply
            self._apply_answer(response, connection.ibr_sender_id)
