"""A duplication check: is this registrant already enrolled elsewhere, per the IBR?

Lifecycle: ``ready`` → (signed search sent) → ``checking`` → ``completed`` or
``failed``. Protocol work (signing, answers, interpretation) is the core's;
this model stores, correlates and keeps the audit trail.
"""

import json
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import split_every

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
    "correlation_id": False,
    "completed_at": False,
    "sent_at": False,
    "queued": False,
    "pages_received": 0,
    "record_count": 0,
}


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
    result = fields.Selection(RESULTS, readonly=True, tracking=True, copy=False)
    matched_programs = fields.Text(readonly=True, groups=PII_GROUP, copy=False)
    raw_response = fields.Text(readonly=True, groups=PII_GROUP, copy=False)
    state = fields.Selection(
        STATES,
        default="ready",
        required=True,
        readonly=True,
        tracking=True,
        index=True,
        copy=False,
    )
    data_source_id = fields.Many2one(
        "spp.dci.ibr.connection",
        string="IBR Connection",
        ondelete="restrict",
        default=lambda self: self.env["spp.dci.ibr.connection"].search([], limit=1),
    )
    error_message = fields.Text(readonly=True, copy=False)
    notes = fields.Text()
    transaction_id = fields.Char(readonly=True, index=True, copy=False)
    reference_id = fields.Char(readonly=True, copy=False)
    correlation_id = fields.Char(readonly=True, index=True, copy=False)
    completed_at = fields.Datetime(readonly=True, copy=False)
    sent_at = fields.Datetime(readonly=True, copy=False)
    queued = fields.Boolean(readonly=True, copy=False, help="Waiting to be sent by the batch job.")
    pages_received = fields.Integer(readonly=True, copy=False)
    record_count = fields.Integer(string="Records Found", readonly=True, copy=False)

    _reference_id_unique = models.UniqueIndex("(reference_id) WHERE reference_id IS NOT NULL")
    _queue_index = models.Index("(id) WHERE queued")

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

    # -- officer actions ---------------------------------------------------

    def action_run_check(self):
        """Send the search for ``ready`` checks (one signed message per batch)."""
        already = self.filtered(lambda c: c.state != "ready")
        if already:
            raise UserError(
                self.env._(
                    "%(count)s check(s) were already run (%(names)s). Use Retry to run them again.",
                    count=len(already),
                    names=", ".join(already.mapped("display_name")[:5]),
                )
            )
        for connection, checks in self.grouped("data_source_id").items():
            connection = checks._ensure_runnable(connection)
            for chunk in split_every(connection.batch_size, checks.ids, self.browse):
                chunk._send_batch(connection)
        return True

    def action_retry(self):
        """Run finished checks again, as a new attempt with new ids."""
        if self.filtered(lambda c: c.state not in ("failed", "completed")):
            raise UserError(self.env._("Only completed or failed checks can be retried."))
        self.write(dict(_CLEARED, state="ready"))
        return self.action_run_check()

    def action_reset_to_draft(self):
        """Back to ``ready``; a late answer to the old attempt will no longer apply."""
        self.write(dict(_CLEARED, state="ready"))
        return True

    def action_queue(self):
        """Queue ``ready`` checks for the batch job (large selections)."""
        ready = self.filtered(lambda c: c.state == "ready")
        for connection, checks in ready.grouped("data_source_id").items():
            checks._ensure_runnable(connection)
        ready.write({"queued": True})
        self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks")._trigger()
        return True

    # -- sending -----------------------------------------------------------

    def _ensure_runnable(self, connection):
        if not connection:
            connection = self.env["spp.dci.ibr.connection"].get_default()
            self.write({"data_source_id": connection.id})
        if not connection.active:
            raise UserError(
                self.env._("IBR connection %(name)s is archived.", name=connection.name)
            )
        if connection.mode == "async" and not connection.ibr_sender_id:
            raise UserError(
                self.env._(
                    "IBR connection %(name)s has no trusted IBR sender, so no callback "
                    "could ever answer its checks. Set one on the connection.",
                    name=connection.name,
                )
            )
        connection._signing_key()  # raises a UserError when there is none
        return connection

    def _send_batch(self, connection):
        """One signed search for these checks; every failure ends in ``failed``."""
        connection = connection or self.data_source_id
        client = connection._get_client()
        now = fields.Datetime.now()
        transaction_id = messages.new_id()
        queries = []
        for check in self:
            reference_id = messages.new_id()
            check.write(
                dict(
                    _CLEARED,
                    reference_id=reference_id,
                    transaction_id=transaction_id,
                    sent_at=now,
                    check_date=now,
                    data_source_id=connection.id,
                )
            )
            queries.append(
                messages.SearchQuery(reference_id, check.identifier_type, check.identifier_value)
            )
        pending = self
        if connection.use_enrolled_precheck:
            pending = self._enrolled_precheck(client, queries)
            queries = [q for q in queries if q.reference_id in set(pending.mapped("reference_id"))]
        if not pending:
            return
        try:
            if connection.mode == "sync":
                answer = client.sync_search(
                    queries, transaction_id=transaction_id, page_size=connection.page_size
                )
                pending.write({"state": "checking"})
                orphans = self._apply_search_response(answer.message, connection.ibr_sender_id)
                self.env["spp.dci.callback.orphan"]._log_items(
                    orphans,
                    connection.ibr_sender_id.sender_id or connection.base_url,
                    transaction_id,
                    answer.message.correlation_id,
                )
                unanswered = pending.filtered(lambda c: c.state == "checking")
                unanswered._mark_failed(self.env._("The IBR's answer did not cover this check."))
            else:
                submission = client.search(
                    queries,
                    sender_uri=connection.get_callback_url(),
                    transaction_id=transaction_id,
                    page_size=connection.page_size,
                )
                pending.write({"state": "checking", "correlation_id": submission.correlation_id})
        except DCIError as exc:
            _logger.info("IBR search for %s check(s) failed: %s", len(pending), exc.code)
            pending._mark_failed(self._officer_message(exc))

    def _enrolled_precheck(self, client, queries):
        """Complete as No Match the checks the IBR says are not enrolled; return the rest."""
        by_reference = {c.reference_id: c for c in self}
        remaining = self.browse()
        for query in queries:
            check = by_reference[query.reference_id]
            try:
                answer = client.enrolled(query.identifier_type, query.identifier_value)
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
        return remaining

    def _mark_failed(self, message):
        self.write({"state": "failed", "error_message": message, "queued": False})

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
    def _find_for_search_item(self, item, transaction_id=None, correlation_id=None):
        """The check an answer item is for: by our reference_id, then our
        transaction_id, then the IBR's correlation_id (each an indexed lookup;
        a transaction or correlation id must point at exactly one check)."""
        if item.reference_id:
            check = self.search([("reference_id", "=", item.reference_id)], limit=1)
            if check:
                return check
        for field, value in (
            ("transaction_id", transaction_id),
            ("correlation_id", correlation_id),
        ):
            if value:
                checks = self.search([(field, "=", value)], limit=2)
                if len(checks) == 1:
                    return checks
        return self.browse()

    @api.model
    def _apply_search_response(self, response, sender):
        """Apply every item of a core ``SearchResponse``; return the orphan items
        as ``(item, reason)`` pairs for the caller to log."""
        orphans = []
        for item in response.search_response:
            check = self._find_for_search_item(
                item, response.transaction_id, response.correlation_id
            )
            if not check:
                orphans.append((item, "no check has this reference, transaction or correlation id"))
            elif sender and check.data_source_id.ibr_sender_id != sender:
                orphans.append((item, f"sender {sender.sender_id} does not answer for this check"))
            elif check.state != "checking":
                orphans.append((item, f"the check is {check.state}, not waiting for an answer"))
            else:
                check._process_ibr_search_result(item)
        return orphans

    def _interpret_search_item(self, item):
        """Hook: read one answer item for this check (core interpretation)."""
        self.ensure_one()
        return interpret_item(item, self.identifier_type, self.identifier_value)

    def _process_ibr_search_result(self, item):
        """Hook: apply one ``search_response`` item (a core ``SearchResponseItem``).

        ``succ`` pages are kept; once every page arrived (in any order: the replay
        guard keeps duplicates out) the check completes with their merged result.
        ``rjct`` fails it with the IBR's reason; ``pdng``/``rcvd`` leave it waiting.
        """
        self.ensure_one()
        outcome = self._interpret_search_item(item)
        pages = json.loads(self.raw_response or "[]")
        pages.append(item.dump())
        vals = {"raw_response": json.dumps(pages, ensure_ascii=False)}
        if outcome.status == "succ":
            answered = _pages_by_number(pages)
            vals["pages_received"] = len(answered)
            if len(answered) >= outcome.total_pages:  # pages may come in any order
                merged = self._merge_pages(answered[n] for n in sorted(answered))
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
    def _cron_send_queued(self, limit=None):
        """Send queued checks batch by batch, committing after each batch so a
        restart loses nothing; re-triggers itself while work remains."""
        cron = self.env["ir.cron"]
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        connections = self.env["spp.dci.ibr.connection"].search([("active", "=", True)])
        for connection in connections:
            while True:
                # the SELECT reads SQL: write what the previous batch changed first
                self.flush_model(["queued", "state", "data_source_id"])
                self.env.cr.execute(
                    """SELECT id FROM spp_dci_duplication_check
                        WHERE queued AND state = 'ready' AND data_source_id = %s
                        ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
                    (connection.id, connection.batch_size),
                )
                batch = self.browse([row[0] for row in self.env.cr.fetchall()])
                if not batch:
                    break
                try:
                    batch._send_batch(batch._ensure_runnable(connection))
                except UserError as exc:  # configuration problem: fail, don't spin
                    batch._mark_failed(str(exc))
                if in_cron and cron._commit_progress(len(batch)) <= 0:
                    cron._trigger()  # out of time: continue in a fresh run
                    return
                if limit is not None:
                    limit -= len(batch)
                    if limit <= 0:
                        return

    @api.model
    def _cron_fail_stale(self):
        """Fail checks that waited past their connection's limit, so none waits forever.
        When the connection asks for it, poll the IBR's transaction status first."""
        self.env["spp.dci.callback.orphan"]._reconcile()
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
            if connection.poll_status_before_failing and connection.active:
                stale._poll_status(connection)
                stale = stale.filtered(lambda c: c.state == "checking")
            stale._mark_failed(
                self.env._(
                    "No answer from the IBR within %(minutes)s minutes. Retry the check.",
                    minutes=connection.stale_after_minutes,
                )
            )

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
            orphans = self._apply_search_response(response, connection.ibr_sender_id)
            self.env["spp.dci.callback.orphan"]._log_items(
                orphans, connection.ibr_sender_id.sender_id
            )
