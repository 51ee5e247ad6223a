"""An officer's "Check in IBR" on many registrants, turned into checks by the send job.

Creating tens of thousands of checks takes longer than a web request may
last, so a large selection is kept here as a list of registrant ids and
expanded chunk by chunk by the send job, which sends each chunk's checks
before it expands the next. The officer's click only stores this record.
A small selection is expanded at once, by the same code.

When the last of its checks is answered (or failed), the officer who asked
gets a notification with the figures. Two callbacks finishing the last two
checks at once may each still see the other's as open: the stale-check job
notifies such requests on its next run.
"""

import json

from odoo import api, fields, models
from odoo.fields import Domain
from odoo.tools import format_datetime

from .check_request_tally import COUNTERS
from .duplication_check import OPEN_STATES, RESULTS
from .groups import PII_GROUP
from .notify import notification

EXPAND_NOW = 500  # registrants expanded within the officer's request
EXPAND_CHUNK = 2000  # registrants expanded per step of the send job


def _progress(all_created, created, open_count, unsent):
    """The officer's view of a batch: ``queued`` until one of its checks is
    sent, ``sending`` until every registrant is checked and answered (or
    failed), then ``done``."""
    if all_created and not open_count:
        return "done"
    return "sending" if created - unsent > 0 else "queued"


def _checks_queued(env, n):
    return env._("1 check queued") if n == 1 else env._("%(n)s checks queued", n=n)


def _registrants_skipped(env, n):
    if n == 1:
        return env._("1 registrant skipped")
    return env._("%(n)s registrants skipped", n=n)


def _results(env, counts):
    """A finished batch's figures in words (one message per plural form)."""
    n = counts["confirmed_match"]
    confirmed = env._("1 confirmed match") if n == 1 else env._("%(n)s confirmed matches", n=n)
    n = counts["possible_match"]
    possible = env._("1 possible match") if n == 1 else env._("%(n)s possible matches", n=n)
    n = counts["no_match"]
    none = env._("1 without match") if n == 1 else env._("%(n)s without match", n=n)
    n = counts["failed"]
    failed = env._("1 failed") if n == 1 else env._("%(n)s failed", n=n)
    return ", ".join([confirmed, possible, none, failed])


class CheckRequest(models.Model):
    _name = "spp.dci.check.request"
    _description = "IBR Check Request (many registrants)"
    _order = "id desc"

    identifier_type = fields.Char(required=True, readonly=True)
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection", string="IBR Connection", required=True, readonly=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    # the id lists are megabytes for a large batch: read only by the job (prefetch=False)
    partner_ids_json = fields.Text(
        required=True, readonly=True, prefetch=False, help="Registrant ids, in order."
    )
    partner_count = fields.Integer(string="Registrants", readonly=True)
    expanded_count = fields.Integer(string="Registrants Done", readonly=True)
    check_count = fields.Integer(string="Checks Created", readonly=True)
    skipped_count = fields.Integer(
        string="Skipped", readonly=True, help="Registrants without an identifier of this type."
    )
    values_json = fields.Text(
        prefetch=False,
        readonly=True,
        groups=PII_GROUP,
        help="Identifier values the officer typed, by registrant id.",
    )
    skipped_json = fields.Text(
        readonly=True, prefetch=False, help="[registrant id, reason] of each skipped."
    )
    skipped_partner_ids = fields.Many2many(
        "res.partner", string="Skipped Registrants", compute="_compute_skipped"
    )
    skip_summary = fields.Text(string="Why Skipped", compute="_compute_skipped")
    open_count = fields.Integer(string="In Progress", compute="_compute_progress")
    completed_count = fields.Integer(string="Completed", compute="_compute_progress")
    failed_count = fields.Integer(string="Failed", compute="_compute_progress")
    match_count = fields.Integer(string="Matches", compute="_compute_progress")
    notified_at = fields.Datetime(readonly=True, help="When the officer was told it finished.")
    # the send job's bookkeeping: have all registrants been turned into checks?
    state = fields.Selection(
        [("pending", "Creating Checks"), ("done", "Checks Created")],
        string="Check Creation",
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    # what the officer reads, from the counters
    progress = fields.Selection(
        [("queued", "Queued"), ("sending", "Sending"), ("done", "Done")],
        string="Status",
        compute="_compute_progress",
        search="_search_progress",
    )
    check_ids = fields.One2many("spp.dci.duplication.check", "request_id", readonly=True)

    @api.depends("partner_count", "identifier_type")
    def _compute_display_name(self):
        for request in self:
            values = {
                "n": request.partner_count,
                "type": request.identifier_type,
                # in the reader's language and time zone
                "date": format_datetime(
                    self.env, request.create_date or fields.Datetime.now(), dt_format="short"
                ),
            }
            request.display_name = (
                self.env._("1 registrant by %(type)s, %(date)s", **values)
                if request.partner_count == 1
                else self.env._("%(n)s registrants by %(type)s, %(date)s", **values)
            )

    @api.depends("skipped_json")
    def _compute_skipped(self):
        for request in self:
            skipped = json.loads(request.skipped_json or "[]")
            request.skipped_partner_ids = [pair[0] for pair in skipped[:1000]]
            reasons = {}
            for _partner_id, reason in skipped:
                reasons[reason] = reasons.get(reason, 0) + 1
            request.skip_summary = "\n".join(
                f"{count} × {reason}" for reason, count in sorted(reasons.items())
            )

    def _compute_progress(self):
        # the figures kept as the checks change (check_request_tally.py)
        figures = self.env["spp.dci.check.request.tally"]._figures(self.ids)
        busy = [r.id for r in self if figures.get(r.id, {}).get("open_count")]
        unsent = {}
        if busy:  # only batches still in progress are asked which checks are not sent yet
            groups = (
                self.env["spp.dci.duplication.check"]
                .sudo()
                ._read_group(
                    [("request_id", "in", busy), ("state", "in", ("ready", "queued"))],
                    ["request_id"],
                    ["__count"],
                )
            )
            unsent = {request.id: count for request, count in groups}
        for request in self:
            mine = figures.get(request.id, dict.fromkeys(COUNTERS, 0))
            request.update(mine)
            request.progress = _progress(
                request.state == "done",
                request.check_count,
                mine["open_count"],
                unsent.get(request.id, 0),
            )

    def _search_progress(self, operator, value):
        if operator not in ("in", "not in"):
            return NotImplemented
        open_checks = Domain("check_ids", "any", [("state", "in", OPEN_STATES)])
        sent_checks = Domain("check_ids", "any", [("state", "not in", ("ready", "queued"))])
        by_state = {
            "done": Domain("state", "=", "done") & ~open_checks,
            "sending": (Domain("state", "=", "pending") | open_checks) & sent_checks,
            "queued": (Domain("state", "=", "pending") | open_checks) & ~sent_checks,
        }
        domain = Domain.OR(by_state[v] for v in value if v in by_state)
        return domain if operator == "in" else ~domain

    @api.model
    def _queue(self, partners, identifier_type, connection, values=None):
        """Record the officer's request; expand it now when it is small.
        ``values``: identifier values the officer typed, by registrant id.
        (sudo: the officer creates it; its own counters are the job's to keep)"""
        request = self.sudo().create(
            {
                "identifier_type": identifier_type,
                "connection_id": connection.id,
                "partner_ids_json": json.dumps(partners.ids),
                "partner_count": len(partners),
                "values_json": json.dumps({str(k): v for k, v in (values or {}).items()}),
            }
        )
        if len(partners) <= EXPAND_NOW:
            request._expand()
        self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").sudo()._trigger()
        return request

    def _expand(self, limit=None):
        """Create the queued checks of the next ``limit`` registrants (all by default)."""
        self.ensure_one()
        ids = json.loads(self.partner_ids_json)
        start = self.expanded_count
        chunk = ids[start : start + limit] if limit else ids[start:]
        partners = self._readable_by_asker(chunk)
        typed = json.loads(self.sudo().values_json or "{}")
        pairs, skipped = [], json.loads(self.skipped_json or "[]")
        company = self.connection_id.company_id
        for partner in partners:
            value, reason = typed.get(str(partner.id)), None
            if partner.company_id and partner.company_id != company:
                value, reason = None, self.env._("belongs to another company than the connection")
            elif not value:
                value, reason = partner._ibr_identifier_for(self.identifier_type)
            if value:
                pairs.append((partner.id, value))
            else:
                skipped.append((partner.id, reason))
        gone = set(chunk) - set(partners.ids)
        skipped += [
            (partner_id, self.env._("deleted meanwhile, or not yours to read"))
            for partner_id in gone
        ]
        checks = (
            self.env["spp.dci.duplication.check"]
            .with_user(self.create_uid)  # the officer asked: the checks are theirs
            .sudo()  # ...and the job may read identifiers the officer may not see
            .create(
                [
                    {
                        "partner_id": partner_id,
                        "identifier_type": self.identifier_type,
                        "identifier_value": value,
                        "data_source_id": self.connection_id.id,
                        "request_id": self.id,
                        "state": "queued",
                    }
                    for partner_id, value in pairs
                ]
            )
        )
        done = start + len(chunk)
        self.write(
            {
                "expanded_count": done,
                "check_count": self.check_count + len(checks),
                "skipped_count": self.skipped_count + len(chunk) - len(pairs),
                "skipped_json": json.dumps(skipped),
                "state": "done" if done >= len(ids) else "pending",
            }
        )
        return checks

    def _readable_by_asker(self, ids):
        """The registrants of ``ids`` that the officer who asked may read, in
        the connection's company, in the order asked (one search: the ids come
        from the officer's request and are never trusted as they are)."""
        if self.company_id not in self.create_uid.company_ids:
            return self.env["res.partner"]  # the officer has left the company meanwhile
        asker = (
            self.env["res.partner"]
            .with_user(self.create_uid)
            .with_context(allowed_company_ids=self.company_id.ids)
        )
        return asker._ibr_readable(ids).with_env(self.env)

    @api.model
    def _expand_next(self):
        """One step of the send job: expand a chunk of the oldest pending request
        no other job is expanding. Returns how many registrants it went through."""
        self.flush_model()
        # NO KEY UPDATE: the answers being applied meanwhile hold KEY SHARE locks on
        # this row (their batch-figure rows refer to it); a plain FOR UPDATE would skip
        # it and end the send job with registrants still to queue
        self.env.cr.execute(
            """SELECT id FROM spp_dci_check_request WHERE state = 'pending'
                ORDER BY id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED""",
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        if not row:
            return 0
        request = self.browse(row[0])
        before = request.expanded_count
        request._expand(EXPAND_CHUNK)
        return request.expanded_count - before

    def action_view_checks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_dci_duplication_check"
        )
        action.update(domain=[("request_id", "=", self.id)], context={})
        return action

    # -- telling the officer -------------------------------------------------

    def _summary_notification(self):
        """What the officer sees after asking: how many were queued and skipped
        (or that a large selection is being queued), then the checks."""
        self.ensure_one()
        if self.state == "pending":
            message = self.env._(
                "The checks of %(n)s registrants are being queued by the send job; you will be "
                "notified when they are all answered.",
                n=self.partner_count,
            )
        else:
            message = self.env._(
                "%(queued)s, %(skipped)s.",
                queued=_checks_queued(self.env, self.check_count),
                skipped=_registrants_skipped(self.env, self.skipped_count),
            )
            if self.skip_summary:
                message += "\n" + self.skip_summary
        action = notification(
            self.env._("Check in IBR"), message, "warning" if self.skipped_count else "success"
        )
        # stays while there are skipped registrants to read; then the batch's checks
        action["params"].update(sticky=bool(self.skipped_count), next=self.action_view_checks())
        return action

    def _notify_if_finished(self):
        """Notify the officers of these requests that have no open check left."""
        waiting = self.filtered(lambda r: r.state == "done" and not r.notified_at)
        if not waiting:
            return
        checks = self.env["spp.dci.duplication.check"]
        checks.flush_model(["request_id", "state"])
        # one statement; each NOT EXISTS stops at the first open check (partial index)
        self.env.cr.execute(
            """SELECT r.id FROM unnest(%s) AS r(id) WHERE NOT EXISTS (
                   SELECT 1 FROM spp_dci_duplication_check c
                    WHERE c.request_id = r.id AND c.state IN %s)""",
            (waiting.ids, OPEN_STATES),
        )
        finished = self.browse([row[0] for row in self.env.cr.fetchall()])
        for request in finished:
            request._notify_finished()

    def _notify_finished(self):
        self.ensure_one()
        self.sudo().notified_at = fields.Datetime.now()
        # one count by state and result: failed checks have no result
        counts = dict.fromkeys([*dict(RESULTS), "failed"], 0)
        for state, result, count in (
            self.env["spp.dci.duplication.check"]
            .sudo()
            ._read_group(
                [("request_id", "=", self.id), ("state", "in", ("completed", "failed"))],
                ["state", "result"],
                ["__count"],
            )
        ):
            counts["failed" if state == "failed" else result] += count
        # in the officer's language and time zone, whoever finished the batch
        officer = self.create_uid
        request = self.with_user(officer).with_context(lang=officer.lang, tz=officer.tz)
        env = request.env
        message = env._(
            "%(results)s; %(skipped)s.",
            results=_results(env, counts),
            skipped=_registrants_skipped(env, self.skipped_count),
        )
        officer._bus_send(
            "simple_notification",
            {
                "type": "warning" if counts["failed"] else "success",
                "title": env._("IBR checks finished: %(name)s", name=request.sudo().display_name),
                "message": message,
                "sticky": True,
            },
        )

    @api.model
    def _cron_notify_finished(self):
        """Backstop: notify finished requests a concurrent finish left unnotified."""
        self.search([("state", "=", "done"), ("notified_at", "=", False)])._notify_if_finished()

    @api.model
    def _pending_registrants(self):
        pending = self.search_read([("state", "=", "pending")], ["partner_count", "expanded_count"])
        return sum(r["partner_count"] - r["expanded_count"] for r in pending)
