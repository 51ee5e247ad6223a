"""A duplication check: is this registrant already enrolled elsewhere, per the IBR?

Lifecycle: ``ready`` → ``queued`` (the officer asked) → ``checking`` (its ids
committed in an outbox message, the search on its way or sent) →
``completed`` or ``failed``. Every search goes through the send job
(:mod:`.ibr_transaction`): no officer request ever waits on an IBR.

A check is one attempt and is never erased: running it again makes a new
check (``previous_check_id`` links the attempts, ``is_latest`` marks the
newest), so every result an officer saw stays on record.

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
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.fields import Domain

from ..dci import messages, paging
from ..dci.errors import DCIError
from ..dci.interpret import (
    CONFIRMED_MATCH,
    interpret_item,
    match_lines,
    merge_pages,
)
from .groups import PII_GROUP
from .notify import tell_views

_logger = logging.getLogger(__name__)

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
SOURCES = [
    ("search", "IBR search"),
    ("precheck", "Enrolment pre-check"),
    ("notification", "IBR notification"),
]
# the core's failure kinds (dci/errors.py FAILURE_KINDS), and the check's own
FAILURES = [
    ("configuration", "Configuration"),
    ("unreachable", "IBR unreachable"),
    ("ibr_error", "IBR server error"),
    ("throttled", "IBR overloaded (too many requests)"),
    ("credentials", "Our credentials refused"),
    ("not_trusted", "Our signature or sender ID refused"),
    ("misaddressed", "Wrong address or receiver"),
    ("refused", "Search refused by the IBR"),
    ("rejected", "Rejected by the IBR"),
    ("unreadable", "Unreadable answer"),
    ("answer_refused", "Answer refused (not verified)"),
    ("no_answer", "No answer in time"),
    ("replaced", "Replaced by a new attempt"),
]
OPEN_STATES = ("ready", "queued", "checking")
NONE = (0, 0, 0, 0)  # a batch's share of checks that are not in it
MATCH_RESULTS = ("possible_match", "confirmed_match")
# the views a check's new state shows in
CHECK_VIEWS = ("spp.dci.duplication.check", "spp.dci.check.request", "res.partner")
# Written only by the product's own paths (the send job, verified answers,
# officer actions), always in superuser mode: no caller sets them over RPC.
RESULT_FIELDS = frozenset(
    {
        "state",
        "result",
        "matched_programs",
        "raw_response",
        "match_ids",
        "record_count",
        "pages_received",
        "pages_total",
        "result_source",
        "completed_at",
        "failure_kind",
        "error_message",
        "refusal_note",
        "transaction_id",
        "reference_id",
        "ibr_transaction_id",
        "sent_at",
        "check_date",
        "request_id",
        "previous_check_id",
        "attempt",
        "is_latest",
    }
)
# What a check asks: settable by an officer while the check is still ``ready``.
QUESTION_FIELDS = frozenset(
    {"partner_id", "identifier_type", "identifier_value", "data_source_id", "company_id"}
)
# What a check claimed by the send job starts from (it may have been sent before
# by a job that died: its new ids make that send's answers unmatched).
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
    "pages_total": 0,
    "record_count": 0,
    "failure_kind": False,
    "result_source": False,
}
# Checks are created by the thousand: no creation note, no follower row each.
_QUIET_CREATE = {"mail_create_nolog": True, "mail_create_nosubscribe": True}


class DuplicationCheck(models.Model):
    _name = "spp.dci.duplication.check"
    _description = "IBR Duplication Check"
    _inherit = ["mail.thread"]
    _order = "check_date desc, id desc"
    _check_company_auto = True

    partner_id = fields.Many2one(
        "res.partner",
        string="Registrant",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        compute="_compute_company_id",
        store=True,
        readonly=False,
        precompute=True,
        help="The connection's company: only its users see the check.",
    )
    identifier_type = fields.Char(required=True, help="e.g. NID, UIN, BRN")
    identifier_value = fields.Char(required=True, groups=PII_GROUP, index="trigram")
    check_date = fields.Datetime(default=fields.Datetime.now, readonly=True, copy=False)
    result = fields.Selection(RESULTS, readonly=True, copy=False)
    matched_programs = fields.Text(readonly=True, groups=PII_GROUP, copy=False)
    # kilobytes per check, read by its form only: not loaded with every list page
    raw_response = fields.Text(readonly=True, groups=PII_GROUP, copy=False, prefetch=False)
    state = fields.Selection(
        STATES, default="ready", required=True, readonly=True, index=True, copy=False
    )
    data_source_id = fields.Many2one(
        "spp.dci.ibr.connection",
        string="IBR Connection",
        ondelete="restrict",
        check_company=True,
        default=lambda self: self.env["spp.dci.ibr.connection"].search(
            [("is_ready", "=", True), ("company_id", "in", self.env.companies.ids)], limit=1
        ),
    )
    error_message = fields.Text(readonly=True, copy=False)
    refusal_note = fields.Char(
        string="Refused Delivery",
        readonly=True,
        copy=False,
        help="A message claiming to answer this check was refused (it could not be "
        "verified). It changed nothing: the check still waits for a verified answer.",
    )
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
    pages_total = fields.Integer(
        string="Pages Expected", readonly=True, copy=False, help="As the IBR's pagination says."
    )
    record_count = fields.Integer(string="Records Found", readonly=True, copy=False)
    result_source = fields.Selection(
        SOURCES, string="Result From", readonly=True, copy=False, help="What gave this result."
    )
    failure_kind = fields.Selection(FAILURES, string="Failure", readonly=True, copy=False)
    waiting_reason = fields.Char(
        compute="_compute_waiting_reason",
        help="Why a waiting check still waits: its message is to be sent again, and when.",
    )
    match_ids = fields.One2many(
        "spp.dci.duplication.match", "check_id", string="Matches", readonly=True, groups=PII_GROUP
    )
    raw_response_pretty = fields.Text(
        string="Raw Response (formatted)",
        compute="_compute_raw_response_pretty",
        groups=PII_GROUP,
    )
    # attempts: a check is never run twice, a new check repeats it
    previous_check_id = fields.Many2one(
        "spp.dci.duplication.check",
        string="Previous Attempt",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
    )
    attempt = fields.Integer(default=1, readonly=True, copy=False)
    is_latest = fields.Boolean(string="Latest Attempt", default=True, readonly=True, copy=False)

    _reference_id_unique = models.UniqueIndex("(reference_id) WHERE reference_id IS NOT NULL")
    _queue_index = models.Index("(id) WHERE state = 'queued'")
    # ``_order``: every list reads checks in this index's order; the default filter
    # ("Latest Attempts") too (the newest checks are mostly latest), and the
    # retention job finds old superseded attempts from its other end
    _date_index = models.Index("(check_date DESC, id DESC)")
    # "group by result" of the latest attempts, counted from the index alone
    _latest_result_index = models.Index("(result, company_id) WHERE is_latest IS TRUE")
    # the latest attempt of a registrant at a connection (a new check supersedes it)
    _latest_pair_index = models.Index("(partner_id, data_source_id) WHERE is_latest IS TRUE")
    # the retention job's work: answers not minimised yet
    _unminimised_index = models.Index("(check_date) WHERE raw_response IS NOT NULL")
    _failure_index = models.Index(
        "(failure_kind, check_date DESC, id DESC) WHERE failure_kind IS NOT NULL"
    )
    # an identifier searched exactly: the field's trigram index serves "=" and
    # "contains" when pg_trgm is there; a btree serves "=" when it is not
    _identifier_index = models.Index(
        lambda registry: "" if registry.has_trigram else "(identifier_value)"
    )
    # is a batch finished? (checked as its answers arrive): open checks by batch
    _open_by_request_index = models.Index(
        "(request_id) WHERE state IN ('ready', 'queued', 'checking')"
    )

    @api.depends("partner_id", "identifier_type", "state")
    def _compute_display_name(self):
        states = dict(self._fields["state"]._description_selection(self.env))
        for check in self:
            if not check.partner_id:
                check.display_name = self.env._("New Check")
                continue
            check.display_name = self.env._(
                "%(partner)s · %(type)s (%(state)s)",
                partner=check.partner_id.display_name,
                type=check.identifier_type or self.env._("no identifier type"),
                state=states.get(check.state, ""),
            )

    @api.depends("data_source_id")
    def _compute_company_id(self):
        for check in self:
            check.company_id = (
                check.data_source_id.company_id or check.company_id or self.env.company
            )

    @api.depends("state", "ibr_transaction_id.state", "ibr_transaction_id.next_attempt_at")
    def _compute_waiting_reason(self):
        for check in self:
            txn = check.ibr_transaction_id
            check.waiting_reason = check.state == "checking" and txn and txn._retry_text()

    @api.depends("raw_response")
    def _compute_raw_response_pretty(self):
        for check in self:
            try:
                pretty = json.dumps(json.loads(check.raw_response), indent=2, ensure_ascii=False)
            except (TypeError, ValueError):
                pretty = check.raw_response or False
            check.raw_response_pretty = pretty

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
        if not self.env.su:
            # an officer asks a question; only the product writes answers (and a
            # ``default_*`` context key is a value too)
            for vals in vals_list:
                self._refuse_result_fields(vals)
            context = {
                key: value
                for key, value in self.env.context.items()
                if not (key.startswith("default_") and key[8:] in RESULT_FIELDS)
            }
            self = self.with_env(self.env(context=context))
        vals_list = [dict(vals) for vals in vals_list]  # the caller's dicts stay as they were
        superseded, repeats = self._chain_attempts(vals_list)
        checks = super(DuplicationCheck, self.with_context(**_QUIET_CREATE)).create(vals_list)
        for index, previous in repeats:  # one pair twice in one batch (rare)
            checks[index].sudo().previous_check_id = checks[previous]
            superseded.append(checks[previous].id)
        if superseded:
            self.browse(superseded).sudo().write({"is_latest": False})
        self.env["spp.dci.check.request.tally"]._add(checks._batch_shares())
        return checks

    def write(self, vals):
        if not self.env.su:
            self._refuse_result_fields(vals)
            if QUESTION_FIELDS.intersection(vals) and self.filtered(lambda c: c.state != "ready"):
                raise AccessError(
                    self.env._(
                        "A check that was sent keeps the registrant, identifier and connection "
                        "it was sent with: use Retry or Run Again to ask again."
                    )
                )
        counted = self.filtered("request_id") if {"state", "result"} & vals.keys() else None
        before = counted._batch_shares() if counted else {}
        result = super().write(vals)
        if counted:
            counted._add_to_tally(before)
        return result

    def _add_to_tally(self, before):
        """Add to the batch figures what changed in these checks since their
        shares were ``before`` (``_batch_shares()`` taken then)."""
        after = self._batch_shares()
        deltas = {}
        for rid in after.keys() | before.keys():
            now, then = after.get(rid, NONE), before.get(rid, NONE)
            deltas[rid] = tuple(a - b for a, b in zip(now, then, strict=True))
        self.env["spp.dci.check.request.tally"]._add(deltas)

    def _batch_shares(self):
        """``{batch id: (open, completed, failed, match)}``: what these checks
        add to their batches' figures, as they are now."""
        self.flush_recordset(["request_id", "state", "result"])
        return self.env["spp.dci.check.request.tally"]._shares(self.ids)

    def _refuse_result_fields(self, vals):
        written = RESULT_FIELDS.intersection(vals)
        if written:
            raise AccessError(
                self.env._(
                    "Only the IBR's verified answers and the product's own actions set a "
                    "check's state and result (refused: %(fields)s).",
                    fields=", ".join(sorted(written)),
                )
            )

    # -- officer actions ---------------------------------------------------

    def action_run_check(self):
        """Queue ``ready`` checks; the send job sends them at once, in batches."""
        already = self.filtered(lambda c: c.state != "ready")
        if already:
            names = ", ".join(already.mapped("display_name")[:5])
            raise UserError(
                self.env._(
                    "This check was already run (%(names)s). Use Retry to run it again.",
                    names=names,
                )
                if len(already) == 1
                else self.env._(
                    "%(count)s checks were already run (%(names)s). Use Retry to run them again.",
                    count=len(already),
                    names=names,
                )
            )
        self._enqueue()
        return True

    def action_retry(self):
        """Run finished checks again: each gets a new attempt, queued; these
        stay as they are, in the history. Opens the new attempts."""
        if self.filtered(lambda c: c.state not in ("failed", "completed")):
            raise UserError(self.env._("Only completed or failed checks can be retried."))
        attempts = self._new_attempts()
        attempts._enqueue()
        return attempts._open()

    def action_reset_to_draft(self):
        """Start over from ``ready``: a queued check goes back (nothing was
        sent); any other gets a new ``ready`` attempt, and one still waiting
        is closed as replaced, so a late answer to it is kept as unmatched."""
        self.filtered(lambda c: c.state == "queued").sudo().write({"state": "ready"})
        done = self.filtered(lambda c: c.state in ("checking", "completed", "failed"))
        done.filtered(lambda c: c.state == "checking")._mark_failed(
            self.env._("Replaced by a new attempt before the IBR answered."), "replaced"
        )
        if not done:
            return True
        return done._new_attempts()._open()

    def _new_attempts(self):
        """A new ``ready`` check repeating each of these (same registrant,
        identifier and connection); creating it supersedes the latest attempt."""
        # superuser: the chain fields are the product's, and the identifier value
        # may be hidden from the caller
        source = self.sudo()
        attempts = source.create(
            [
                {
                    "partner_id": check.partner_id.id,
                    "identifier_type": check.identifier_type,
                    "identifier_value": check.identifier_value,
                    "data_source_id": check.data_source_id.id,
                    "request_id": check.request_id.id,
                }
                for check in source
            ]
        )
        return attempts.with_env(self.env)

    def _open(self):
        """The window action showing these checks (a form for one)."""
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_dci_duplication_check"
        )
        if len(self) == 1:
            action.update(res_id=self.id, view_mode="form", views=[(False, "form")])
        else:
            action["domain"] = [("id", "in", self.ids)]
        return action

    def _enqueue(self):
        """Check the connections can send, queue these checks, wake the send job."""
        if not self:
            return
        for connection, checks in self.grouped("data_source_id").items():
            checks._ensure_runnable(connection)
        self.sudo().write({"state": "queued"})
        self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").sudo()._trigger()

    # -- sending (called by the outbox, see ibr_transaction.py) --------------

    def _ensure_runnable(self, connection):
        if not connection:
            connection = self.env["spp.dci.ibr.connection"].get_default()
            self.sudo().write({"data_source_id": connection.id})
        return connection._ensure_ready()  # a UserError says what is missing, to whom

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
        # one UPDATE: what the batch shares and each check's own reference
        self._write_per_check(
            {check: dict(common, reference_id=messages.new_id()) for check in self}
        )
        self._tell_askers()

    def _search_queries(self):
        return [
            messages.SearchQuery(c.reference_id, c.identifier_type, c.identifier_value)
            for c in self.sudo()
        ]

    def _enrolled_precheck(self, client):
        """Ask ``/registry/sync/enrolled`` first; return the checks still to search.

        Only a "yes" completes a check: the spec's ``enrolled_status`` says
        whether the person is registered as a beneficiary, which is what the
        full search calls a Confirmed Match (same identifier, active
        enrolment). A "no" decides nothing: a person not enrolled now may
        still have records, such as an ended enrolment (a Possible Match), so
        the full search runs. The pre-check names no programme.
        """
        remaining = self.browse()
        for check in self.sudo():
            try:
                answer = client.enrolled(check.identifier_type, check.identifier_value)
                items = answer.message.enrolled_response
            except DCIError:
                items = []  # the full search decides
            if items and any(i.status == "succ" and i.enrolled_status == "yes" for i in items):
                check.write(
                    {
                        "state": "completed",
                        "result": CONFIRMED_MATCH,
                        "result_source": "precheck",
                        "completed_at": fields.Datetime.now(),
                        "raw_response": json.dumps([answer.raw.get("message")], ensure_ascii=False),
                    }
                )
            else:
                remaining |= check
        (self - remaining)._notify_finished_requests()
        return remaining.with_env(self.env)

    def _mark_failed(self, message, kind=False):
        """Fail these checks with ``message`` (``kind`` one of ``FAILURES``)."""
        if not self:
            return
        self._lock_rows()
        self.sudo().write({"state": "failed", "error_message": message, "failure_kind": kind})
        self._notify_finished_requests()

    def _notify_finished_requests(self):
        """Tell the officers whose requests these checks finished, and reload
        their screens. (sudo: the callback runner and the send job may not read
        the officers' requests)"""
        self.sudo().request_id._notify_if_finished()
        self._tell_askers()

    def _tell_askers(self):
        """Reload the screens of the officers who asked for these checks."""
        checks = self.sudo()
        checks.fetch(["create_uid"])  # the askers only, not every column of the checks
        tell_views(checks.create_uid, CHECK_VIEWS)

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
        # superuser: ``sender`` verified the answer; it applies to the checks of the
        # connections that trust it, whichever company they belong to
        self = self.sudo()
        items = response.search_response
        matched = self._match_items(items, response.transaction_id, response.correlation_id)
        touched = self.browse().union(*matched)
        touched._lock_rows()
        orphans = []
        matches = []  # the match lines of the checks completed here, created at once
        answered = {}  # check -> its new values, written at once
        one_by_one = self._applies_items_one_by_one()
        for item, check in zip(items, matched, strict=True):
            if not check:
                orphans.append((item, "no check has this reference, transaction or correlation id"))
            elif not sender or check.data_source_id.ibr_sender_id != sender:
                who = sender.sender_id if sender else "an unverified sender"
                orphans.append((item, f"{who} does not answer for this check"))
            elif not check._awaits_answer(answered.get(check)):
                orphans.append((item, f"the check is {check.state}, not waiting for an answer"))
            elif one_by_one:
                check.with_context(dci_pending_matches=matches)._process_ibr_search_result(item)
            else:
                if check in answered:  # two pages of one check in one message (rare)
                    self._write_per_check(answered)
                    answered = {}
                vals = check.with_context(dci_pending_matches=matches)._search_result_vals(item)
                answered[check] = vals
        self._write_per_check(answered)
        self.env["spp.dci.duplication.match"].sudo().create(matches)
        touched.filtered(lambda c: c.state in ("completed", "failed"))._notify_finished_requests()
        return orphans

    def _applies_items_one_by_one(self):
        """Whether a module overrides ``_process_ibr_search_result``: its
        override then applies each item, as before answers were written as a
        set (slower, but whatever it does per check still happens)."""
        return (
            type(self)._process_ibr_search_result is not DuplicationCheck._process_ibr_search_result
        )

    @api.model
    def _write_per_check(self, values):
        """Write ``{check: its values}`` (an answer, new ids) in one UPDATE.

        ``write()`` takes one set of values for all its records: a thousand
        checks with a thousand answers would be a thousand calls. Here every
        row sets the same columns (a column a check's values leave out keeps
        its current value), so Odoo's ``_write_multi`` makes one ``UPDATE ...
        FROM (VALUES ...)`` of them. What ``write()`` does around its UPDATE
        is done for the whole set: the batch figures, the cache (invalidated),
        the fields computed from these (``modified``) and the constraints on
        them. Only the product's own paths call it (superuser mode): no access
        check, no result-field guard.
        """
        if not values:
            return
        checks = self.browse([check.id for check in values]).sudo()
        names = sorted(set().union(*values.values()))
        checks.flush_recordset(names)
        before = checks._batch_shares()
        links = [name for name in names if self._fields[name].relational]
        checks.modified(links, before=True)  # what hangs on the links they leave
        rows = []
        for check, vals in zip(checks, values.values(), strict=True):
            row = {}
            for name in names:
                field = self._fields[name]
                value = vals[name] if name in vals else field.convert_to_write(check[name], check)
                row[name] = field.convert_to_column_insert(value, check)
            rows.append(row)
        checks._write_multi(rows)
        checks.invalidate_recordset(names, flush=False)
        checks.modified(names)
        checks._validate_fields(names)
        checks._add_to_tally(before)

    def _awaits_answer(self, pending=None):
        """Waiting, or failed only because a delivery of its answer was
        refused (the IBR may send it again once we can verify it).
        ``pending``: values given to it by this answer, not written yet."""
        self.ensure_one()
        state = (pending or {}).get("state", self.state)
        kind = (pending or {}).get("failure_kind", self.failure_kind)
        return state == "checking" or (state == "failed" and kind == "answer_refused")

    @api.model
    def _apply_answer(self, response, sender):
        """Apply an answer, keeping what matched no waiting check as orphans
        (with the answer's ids, for a later reconcile); return those items."""
        unmatched = self._apply_search_response(response, sender)
        if unmatched:
            self.env["spp.dci.callback.orphan"]._log_items(
                unmatched, sender, response.transaction_id, response.correlation_id
            )
        return unmatched

    def _interpret_search_item(self, item):
        """Hook: read one answer item for this check (core interpretation)."""
        self.ensure_one()
        return interpret_item(item, self.identifier_type, self.identifier_value)

    def _process_ibr_search_result(self, item):
        """Hook: apply one ``search_response`` item (a core ``SearchResponseItem``)
        to this check. Callbacks apply a whole answer as a set through
        ``_search_result_vals`` instead, unless a module overrides this method
        (see ``_applies_items_one_by_one``)."""
        self.ensure_one()
        self.write(self._search_result_vals(item))

    def _search_result_vals(self, item):
        """Hook: the values one ``search_response`` item gives this check.

        ``succ`` pages are kept; once every page arrived (in any order: the replay
        guard keeps duplicates out) the check completes with their merged result.
        ``rjct`` fails it with the IBR's reason; ``pdng``/``rcvd`` leave it waiting.
        An item we cannot read fails its check with the reason, and only that check.
        The match lines of a completed check are made by ``_store_matches``.
        """
        self.ensure_one()
        try:
            outcome = self._interpret_search_item(item)
        except DCIError as exc:
            return {
                "state": "failed",
                "failure_kind": "unreadable",
                "result": False,
                "matched_programs": False,
                "error_message": self.env._(
                    "The IBR's answer for this check cannot be read: %(reason)s",
                    reason=exc.message,
                ),
            }
        # a page stored again replaces itself; one beyond the announced count
        # refuses the whole message (the caller's savepoint undoes the rest)
        pages = paging.add_item(
            json.loads(self.raw_response) if self.raw_response else [],
            item.dump(),
            outcome.total_pages,
            self.pages_total,
        )
        vals = {"raw_response": json.dumps(pages, ensure_ascii=False)}
        if outcome.status == "succ":
            received, ordered = paging.progress(pages, outcome.total_pages)
            vals.update(pages_received=received, pages_total=outcome.total_pages)
            if ordered:
                merged = (
                    outcome.interpretation
                    if received == 1
                    else merge_pages(ordered, self._interpret_search_item)
                )
                vals.update(
                    state="completed",
                    result=merged.result,
                    result_source=self.result_source or "search",
                    record_count=merged.record_count,
                    matched_programs="\n".join(merged.programmes) or False,
                    completed_at=fields.Datetime.now(),
                    error_message=False,
                    failure_kind=False,
                )
                self._store_matches(ordered)
        elif outcome.status == "rjct":
            vals.update(
                state="failed",
                failure_kind="rejected",
                result=False,
                matched_programs=False,
                error_message=self.env._(
                    "The IBR rejected the search (%(code)s): %(reason)s",
                    code=outcome.reason_code or "rjct",
                    reason=outcome.reason_message or self.env._("no reason given"),
                ),
            )
        return vals

    def _store_matches(self, pages):
        """One match line per enrolment of every record of these answer pages."""
        records = [
            record
            for page in pages
            for record in ((page.get("data") or {}).get("reg_records") or [])
        ]
        lines = match_lines(records, self.identifier_type, self.identifier_value)
        matches = self.env["spp.dci.duplication.match"].sudo()
        vals = [matches._vals(self, line) for line in lines]
        pending = self.env.context.get("dci_pending_matches")
        if pending is None:
            matches.create(vals)
        else:  # applying a whole answer: one INSERT for all its checks' lines
            pending.extend(vals)
