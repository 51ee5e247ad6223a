"""The outgoing side: how we reach one IBR, as which sender, signed with which key,
how failed sends are retried, and how healthy the IBR has been lately."""

import logging
import random

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..dci.auth import BearerToken, ClientCredentials
from ..dci.client import IbrClient, retrying_session
from ..dci.errors import DCIError
from ..dci.keys import KeyId, SigningKey, public_key_from_pem
from ..dci.routes import CALLBACK_ROUTES as ROUTE_TABLE
from .dci_replay_entry import OdooReplayGuard
from .ibr_sender import SENDER_MENU
from .notify import notification
from .send_failure import send_failure

_logger = logging.getLogger(__name__)

API_ROOT = "/dci_api"  # root_path of the fastapi endpoint (data/fastapi_endpoint.xml)
CALLBACK_PATH = API_ROOT + "/ibr/on-search"
# the README's address; routers/callback.py also serves /.well-known/jwks.json
JWKS_PATH = API_ROOT + "/ibr/jwks.json"
CALLBACK_ROUTES = tuple(route.path for route in ROUTE_TABLE)
CONNECTION_MENU = "IBR Checks > Configuration > IBR Connections"
# A failure to connect is retried at once, inside one send (nothing reached the
# IBR); everything else is resent by the outbox, later, under the same ids.
CONNECT_RETRIES = 1
LEASE_MARGIN_SECONDS = 30  # the database work of a send (sign, commit); waits are computed
MAX_BACKOFF_SECONDS = 3600
HEALTH = [
    ("unknown", "Not used yet"),
    ("ok", "Working"),
    ("failing", "Failing"),
    ("down", "Down"),
]


class IbrConnection(models.Model):
    _name = "spp.dci.ibr.connection"
    _description = "IBR Connection"
    _inherit = ["mail.thread"]  # the administrators' "IBR down" and "recovered" lines
    _order = "sequence, name"
    _check_company_auto = True

    name = fields.Char(required=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
        help="Whose registry asks through this connection: its checks, batches and "
        "subscriptions belong to this company, and only its users see them.",
    )
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    base_url = fields.Char(
        string="IBR Base URL", required=True, help="e.g. https://ibr.example.org/api/v1"
    )
    our_sender_id = fields.Char(
        string="Our Sender ID", required=True, help="The sender_id the IBR knows us by."
    )
    receiver_id = fields.Char(string="IBR Receiver ID", help="The IBR's id, put in our headers.")
    ibr_sender_id = fields.Many2one(
        "spp.dci.ibr.sender",
        string="Trusted IBR Sender",
        check_company=True,
        help="Only callbacks signed by this sender may answer checks sent through this connection.",
    )
    mode = fields.Selection(
        [("async", "Asynchronous (callbacks)"), ("sync", "Synchronous search")],
        default="async",
        required=True,
    )
    callback_url = fields.Char(
        string="Callback URL",
        help="Where the IBR sends on-search callbacks. Empty: this database's "
        "web.base.url + " + CALLBACK_PATH,
    )
    timeout = fields.Integer(string="Timeout (s)", default=30, required=True)
    page_size = fields.Integer(default=100, required=True)
    batch_size = fields.Integer(
        default=50, required=True, help="Identifiers per signed search message."
    )
    use_enrolled_precheck = fields.Boolean(
        string="Quick enrolment pre-check",
        help="Ask /registry/sync/enrolled first; a 'no' completes the check as No Match "
        "without a full search.",
    )
    stale_after_minutes = fields.Integer(
        default=60,
        required=True,
        help="Checks still waiting for a callback this long after the IBR acknowledged "
        "their message are failed (a message waiting to be sent again is never stale: "
        "its retries decide).",
    )
    # resending after a transient failure (network, HTTP 5xx or 429, unreadable answer)
    retry_max_attempts = fields.Integer(
        string="Send Attempts",
        default=8,
        required=True,
        help="How many times a message is sent before its checks fail, when the IBR cannot "
        "be reached, answers HTTP 5xx or 429, or answers something unreadable. A coded "
        "refusal (ERR, HTTP 4xx) fails at once.",
    )
    retry_first_delay = fields.Integer(
        string="First Resend After (s)",
        default=30,
        required=True,
        help="Seconds before the first resend; each next one waits twice as long (at most an "
        "hour), with random jitter, or as long as the IBR's Retry-After asks.",
    )
    retry_window_minutes = fields.Integer(
        string="Give Up After (min)",
        default=240,
        required=True,
        help="No resend is scheduled later than this after the first send (0: no limit, "
        "only the number of attempts).",
    )
    alert_after_minutes = fields.Integer(
        string="Alert After (min)",
        default=30,
        required=True,
        help="When every send to this IBR has failed for this long, the administrators get "
        "one notification (and one more when it works again).",
    )
    # health: written by every send (searches, subscriptions, status requests)
    consecutive_failures = fields.Integer(readonly=True, copy=False, default=0)
    last_success_at = fields.Datetime(string="Last Successful Send", readonly=True, copy=False)
    last_failure_at = fields.Datetime(string="Last Failed Send", readonly=True, copy=False)
    last_failure_reason = fields.Text(readonly=True, copy=False)
    failing_since = fields.Datetime(
        readonly=True, copy=False, help="The first failure of the current run of failures."
    )
    down_alert_at = fields.Datetime(
        string="Down Alert Sent",
        readonly=True,
        copy=False,
        help="When the administrators were told the IBR is down (empty: not down).",
    )
    health = fields.Selection(
        HEALTH,
        compute="_compute_health",
        help="Working: the last send succeeded. Failing: the last sends failed. Down: every "
        "send has failed for longer than Alert After.",
    )
    poll_status_before_failing = fields.Boolean(
        help="Before failing a stale check, ask /registry/sync/txn/status once."
    )
    txn_status_async = fields.Boolean(
        string="Asynchronous status requests",
        help="The IBR answers /registry/txn/status with a txn/on-status callback: stale "
        "checks are asked about that way, and failed only if still unanswered one stale "
        "delay later.",
    )
    # authentication towards the IBR
    auth_type = fields.Selection(
        [("none", "None"), ("bearer", "Bearer token"), ("oauth2", "OAuth2 client credentials")],
        default="none",
        required=True,
    )
    bearer_token = fields.Char(groups="base.group_system", copy=False)
    oauth_token_url = fields.Char(string="OAuth2 Token URL")
    oauth_client_id = fields.Char(string="OAuth2 Client ID")
    oauth_client_secret = fields.Char(
        string="OAuth2 Client Secret", groups="base.group_system", copy=False
    )
    # our signing key: the private part only system administrators can read
    signing_algorithm = fields.Selection(
        [("ed25519", "Ed25519"), ("rs256", "RSA-256")], default="ed25519", required=True
    )
    signing_kid = fields.Char(string="Signing Key ID", readonly=True, copy=False)
    signing_public_key = fields.Text(readonly=True, copy=False)
    signing_private_key = fields.Text(groups="base.group_system", copy=False)
    has_signing_key = fields.Boolean(compute="_compute_has_signing_key")
    signing_key_mismatch = fields.Boolean(
        compute="_compute_signing_key_mismatch",
        help="Our signing key was made for another sender ID or algorithm than the "
        "connection's: rotate it.",
    )
    # what the IBR needs from us
    our_jwks_url = fields.Char(
        string="Our JWKS URL",
        compute="_compute_our_urls",
        help="Give it to the IBR: where it fetches our public keys to verify our requests.",
    )
    our_callback_url = fields.Char(
        string="Our Callback URL",
        compute="_compute_our_urls",
        help="Where the IBR sends its search answers (on-search); the other callbacks go "
        "beside it. Sent in every request, but an IBR may have to allow it first.",
    )
    our_callback_urls = fields.Text(
        string="All Our Callback URLs",
        compute="_compute_our_urls",
        help="Every callback address of this connection, one per line.",
    )
    # may it be used: officers are offered only ready connections
    is_ready = fields.Boolean(
        string="Ready",
        compute="_compute_readiness",
        search="_search_is_ready",
        help="Active, with a trusted IBR sender that has a key, and our own matching signing key.",
    )
    readiness = fields.Selection(
        [("ready", "Ready"), ("not_ready", "Not ready")], compute="_compute_readiness"
    )
    config_problem = fields.Text(
        string="Configuration Problem",
        compute="_compute_readiness",
        help="What is missing before this connection can be used (empty: ready).",
    )
    # the last "Test connection"
    last_test_at = fields.Datetime(string="Last Test", readonly=True, copy=False)
    last_test_ok = fields.Boolean(string="Last Test Passed", readonly=True, copy=False)
    last_test_result = fields.Text(readonly=True, copy=False)
    last_test_transaction_id = fields.Char(
        string="Last Test Transaction ID", readonly=True, copy=False, index="btree_not_null"
    )
    last_test_callback_at = fields.Datetime(
        string="Test Callback Received", readonly=True, copy=False
    )

    _positive_numbers = models.Constraint(
        "CHECK(timeout > 0 AND page_size > 0 AND batch_size > 0 AND stale_after_minutes > 0)",
        "Timeout, page size, batch size and stale delay must be positive.",
    )
    _retry_numbers = models.Constraint(
        "CHECK(retry_max_attempts > 0 AND retry_first_delay > 0 AND retry_window_minutes >= 0 "
        "AND alert_after_minutes > 0)",
        "Send attempts, first resend delay and alert delay must be positive; the give-up "
        "time zero or more.",
    )

    @api.constrains("retry_max_attempts", "retry_first_delay", "retry_window_minutes")
    def _check_retry_schedule(self):
        for conn in self:
            window = conn.retry_window_minutes * 60
            if conn.retry_max_attempts > 1 and window and window < conn.retry_first_delay:
                raise ValidationError(
                    self.env._(
                        "%(name)s would give up (after %(window)s s) before its first resend "
                        "(after %(delay)s s): make Give Up After longer, First Resend After "
                        "shorter, or Send Attempts 1.",
                        name=conn.name,
                        window=window,
                        delay=conn.retry_first_delay,
                    )
                )

    @api.depends("consecutive_failures", "failing_since", "last_success_at", "down_alert_at")
    def _compute_health(self):
        for conn in self:
            if conn.down_alert_at:
                conn.health = "down"
            elif conn.consecutive_failures:
                conn.health = "failing"
            else:
                conn.health = "ok" if conn.last_success_at else "unknown"

    @api.depends("signing_kid", "signing_public_key")
    def _compute_has_signing_key(self):
        for conn in self:
            conn.has_signing_key = bool(conn.signing_kid and conn.signing_public_key)

    @api.depends("signing_kid", "our_sender_id", "signing_algorithm")
    def _compute_signing_key_mismatch(self):
        for conn in self:
            conn.signing_key_mismatch = conn._signing_kid_mismatch()

    def _signing_kid_mismatch(self):
        """True when our key's id no longer names this sender ID and algorithm."""
        self.ensure_one()
        if not self.signing_kid:
            return False
        try:
            kid = KeyId.parse(self.signing_kid)
        except DCIError:
            return True
        return (kid.sender_id, kid.algorithm) != (self.our_sender_id, self.signing_algorithm)

    @api.depends("callback_url")
    def _compute_our_urls(self):
        for conn in self:
            conn.our_jwks_url = conn._our_jwks_url()
            conn.our_callback_url = conn.get_callback_url()
            conn.our_callback_urls = "\n".join(conn.get_callback_url(r) for r in CALLBACK_ROUTES)

    def _our_base_url(self):
        return self.env["ir.config_parameter"].sudo().get_param("web.base.url", "").rstrip("/")

    def _our_jwks_url(self):
        """Where the IBR fetches our keys: beside a configured on-search URL of
        ours, else under web.base.url (``/dci_api/ibr/jwks.json`` both ways)."""
        self.ensure_one()
        suffix = CALLBACK_PATH[len(API_ROOT) :]  # /ibr/on-search
        if self.callback_url and self.callback_url.endswith(suffix):
            return self.callback_url[: -len("on-search")] + "jwks.json"
        return self._our_base_url() + JWKS_PATH

    # -- readiness ------------------------------------------------------------

    @api.depends(
        "active",
        "our_sender_id",
        "signing_algorithm",
        "signing_kid",
        "signing_public_key",
        "signing_private_key",
        "ibr_sender_id.active",
        "ibr_sender_id.public_key",
        "ibr_sender_id.algorithm",
        "ibr_sender_id.key_ids.state",
        "is_msg_encrypted",
        "encryption_kid",
        "encryption_private_key",
        "ibr_sender_id.encryption_jwk",
        "peer_dialect",
    )
    def _compute_readiness(self):
        for conn in self:
            problems = conn._config_problems()
            conn.is_ready = not problems
            conn.readiness = "not_ready" if problems else "ready"
            conn.config_problem = "\n".join(map(sentence, conn._problem_lines(problems)))

    def _search_is_ready(self, operator, value):
        if operator not in ("in", "not in"):
            return NotImplemented
        wanted = {bool(v) for v in value}
        if operator == "not in":
            wanted = {True, False} - wanted
        if len(wanted) != 1:
            return [("id", "!=", False)] if wanted else [("id", "=", False)]
        # what every ready connection has; the rest is judged record by record
        candidates = self.search([("ibr_sender_id", "!=", False), ("signing_kid", "!=", False)])
        ready = candidates.filtered("is_ready")
        return [("id", "in" if True in wanted else "not in", ready.ids)]

    def _config_problems(self):
        """What keeps this connection from being used, as ``(what, fix)`` pairs
        in an administrator's words; empty when it is ready."""
        self.ensure_one()
        problems = []
        if not self.active:
            problems.append((self.env._("it is archived"), self.env._("unarchive it")))
        return (
            problems
            + self._signing_problems()
            + self._sender_problems()
            + self._encryption_problems()  # models/connection_encryption.py
            + self._dialect_problems()  # models/connection_dialect.py
        )

    def _problem_lines(self, problems):
        return [self.env._("%(what)s: %(fix)s.", what=what, fix=fix) for what, fix in problems]

    def _signing_problems(self):
        self.ensure_one()
        if not (self.signing_kid and self.signing_public_key and self.sudo().signing_private_key):
            return [
                (
                    self.env._("we have no signing key"),
                    self.env._("generate one with Generate Signing Key on the connection"),
                )
            ]
        if self._signing_kid_mismatch():
            return [
                (
                    self.env._(
                        "our signing key %(kid)s was made for another sender ID or algorithm "
                        "than %(sender)s / %(alg)s",
                        kid=self.signing_kid,
                        sender=self.our_sender_id,
                        alg=self.signing_algorithm,
                    ),
                    self.env._(
                        "rotate it with Rotate Signing Key, then have the IBR fetch our JWKS "
                        "at %(url)s",
                        url=self._our_jwks_url(),
                    ),
                )
            ]
        return []

    def _sender_problems(self):
        self.ensure_one()
        sender = self.ibr_sender_id
        if not sender:
            return [
                (
                    self.env._("no trusted IBR sender, so none of its answers could be verified"),
                    self.env._("set a trusted IBR sender in the field Trusted IBR Sender"),
                )
            ]
        if not sender.active:
            return [
                (
                    self.env._("the trusted IBR sender %(name)s is archived", name=sender.name),
                    self.env._("unarchive it or set another trusted IBR sender"),
                )
            ]
        has_key = any(line.state == "published" for line in sender.key_ids) or (
            sender.public_key and sender.algorithm
        )
        if not has_key:
            return [
                (
                    self.env._(
                        "the trusted IBR sender %(name)s has no public key to verify its answers",
                        name=sender.name,
                    ),
                    self.env._(
                        "set the JWKS URL the IBR publishes its keys at and click Fetch Public "
                        "Key, or paste the IBR's PEM public key, on the sender (%(menu)s)",
                        menu=SENDER_MENU,
                    ),
                )
            ]
        return []

    def _ensure_ready(self):
        """Raise a UserError unless this connection can be used now: in an
        officer's words (ask an administrator) or an administrator's (what to
        fix, and where). Returns the connection."""
        self.ensure_one()
        problems = self._config_problems()
        if problems and not self.env.user.has_group("base.group_system"):
            raise UserError(
                self.env._(
                    "The IBR connection %(name)s is not ready to use (%(what)s). Ask an "
                    "administrator to fix it.",
                    name=self.name,
                    what="; ".join(what for what, _fix in problems),
                )
            )
        if problems:
            raise UserError(
                self.env._(
                    "The IBR connection %(name)s is not ready to use: %(problems)s Fix it in "
                    "%(menu)s.",
                    name=self.name,
                    problems=" ".join(self._problem_lines(problems)),
                    menu=CONNECTION_MENU,
                )
            )
        self._signing_key()  # a stored key that cannot be read says so
        return self

    @api.onchange("our_sender_id", "signing_algorithm")
    def _onchange_signing_identity(self):
        """Changing who we are under an existing key: say the key must follow."""
        if self._signing_kid_mismatch():
            return {
                "warning": {
                    "title": self.env._("Rotate the signing key after saving"),
                    "message": self.env._(
                        "Our signing key %(kid)s was made for another sender ID or algorithm. "
                        "After saving, click Rotate Signing Key and have the IBR fetch our "
                        "JWKS at %(url)s: until then this connection cannot be used.",
                        kid=self.signing_kid,
                        url=self._our_jwks_url(),
                    ),
                }
            }
        return None

    @api.constrains("base_url", "callback_url", "oauth_token_url")
    def _check_urls(self):
        for conn in self:
            for url in (conn.base_url, conn.callback_url, conn.oauth_token_url):
                if url and not url.startswith(("http://", "https://")):
                    raise ValidationError(self.env._("%(url)r is not an http(s) URL.", url=url))

    @api.model
    def get_default(self):
        """The first ready connection (else the first active one, which then says
        what it lacks), or a UserError that says what to configure."""
        conn = self.search([("is_ready", "=", True)], limit=1) or self.search([], limit=1)
        if not conn and not self.env.user.has_group("base.group_system"):
            raise UserError(
                self.env._(
                    "No IBR connection is ready to use. Ask an administrator to configure one."
                )
            )
        if not conn:
            raise UserError(
                self.env._(
                    "No active IBR connection. Configure one in %(menu)s.", menu=CONNECTION_MENU
                )
            )
        return conn

    # -- timing: the lease of a send, the resend schedule --------------------------

    def _timeouts(self):
        return (min(10, self.timeout), self.timeout)

    @staticmethod
    def _session():
        return retrying_session(retries=CONNECT_RETRIES, status_retries=0)

    def _lease_seconds(self):
        """How long one send through this connection may take at most: its
        requests (the search, and one pre-check per check when enabled), each
        with every try the client makes, the OAuth2 token fetch, and the
        database work. Derived from the same timeouts the client uses, so no
        setting can make a lease end while its job still waits for the IBR."""
        self.ensure_one()
        requests = 1 + (self.batch_size if self.use_enrolled_precheck else 0)
        post = IbrClient.post_seconds(self._timeouts(), self._session(), self.base_url)
        token = self.timeout if self.auth_type == "oauth2" else 0
        return requests * post + token + LEASE_MARGIN_SECONDS

    def _lease_end(self):
        """Until when a job sending through this connection may still be at it."""
        return fields.Datetime.add(fields.Datetime.now(), seconds=self._lease_seconds())

    def _next_attempt_at(self, started, attempts, failure):
        """When to send again after ``attempts`` sends (the last failed with
        ``failure``, a :class:`SendFailure`), the first at ``started``; None
        when the failure is permanent or the retry budget is spent.

        Exponential back-off from ``retry_first_delay``, with jitter (between
        half and the whole delay: many messages failed by one outage do not
        come back at the same second), never sooner than the IBR's Retry-After.
        """
        self.ensure_one()
        if not failure.transient or attempts >= self.retry_max_attempts:
            return None
        delay = min(MAX_BACKOFF_SECONDS, self.retry_first_delay * 2 ** (attempts - 1))
        delay = max(random.uniform(delay / 2, delay), failure.retry_after or 0)
        when = fields.Datetime.add(fields.Datetime.now(), seconds=delay)
        if self.retry_window_minutes and when > fields.Datetime.add(
            started or fields.Datetime.now(), minutes=self.retry_window_minutes
        ):
            return None
        return when

    def _failure_of(self, exc):
        """The :class:`SendFailure` of ``exc`` met sending through this connection."""
        return send_failure(self.env, exc, self[:1])

    # -- health: consecutive failures, one alert when down, one line when back ---

    def _note_success(self):
        """A send through this connection worked."""
        self.ensure_one()
        now = fields.Datetime.now()
        if (
            not self.consecutive_failures
            and not self.down_alert_at
            and self.last_success_at
            and self.last_success_at > fields.Datetime.subtract(now, seconds=60)
        ):
            return  # nothing new to say: no write, no lock on this row per send
        was_down = self._set_health(
            "consecutive_failures = 0, failing_since = NULL, down_alert_at = NULL, "
            "last_success_at = %(now)s",
            {"now": now},
        )
        if was_down and was_down[0]:
            self._post_health(
                self.env._(
                    "The IBR %(name)s works again: a send succeeded at %(at)s, after failures "
                    "since %(since)s (down since %(down)s).",
                    name=self.name,
                    at=now,
                    since=was_down[1] or "-",
                    down=was_down[0],
                )
            )

    def _note_failure(self, failure):
        """A send through this connection failed with ``failure`` (a :class:`SendFailure`)."""
        self.ensure_one()
        now = fields.Datetime.now()
        self._set_health(
            "consecutive_failures = COALESCE(consecutive_failures, 0) + 1, "
            "last_failure_at = %(now)s, "
            "last_failure_reason = %(reason)s, failing_since = COALESCE(failing_since, %(now)s)",
            {"now": now, "reason": failure.admin},
        )
        threshold = fields.Datetime.subtract(now, minutes=self.alert_after_minutes)
        # one alert per outage, whichever job or server sees it first
        self.env.cr.execute(
            "UPDATE spp_dci_ibr_connection SET down_alert_at = %s WHERE id = %s "
            "AND down_alert_at IS NULL AND failing_since <= %s RETURNING failing_since",
            (now, self.id, threshold),
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        self.invalidate_recordset(["down_alert_at", "health"])
        if row:
            self._post_health(
                self.env._(
                    "The IBR %(name)s is down: every send has failed since %(since)s "
                    "(%(count)s in a row). Last reason: %(reason)s",
                    name=self.name,
                    since=row[0],
                    count=self.consecutive_failures,
                    reason=failure.admin,
                )
            )

    def _set_health(self, assignments, values):
        """One UPDATE of this row's health (an increment must not be lost to a
        concurrent send); returns the ``(down_alert_at, failing_since)`` it had.
        A concurrent send's update surfaces here as a serialization failure,
        which the outbox retries; the statements carry no personal data."""
        cr = self.env.cr
        cr.execute(
            "SELECT down_alert_at, failing_since FROM spp_dci_ibr_connection "
            "WHERE id = %s FOR NO KEY UPDATE",
            (self.id,),
            log_exceptions=False,
        )
        before = cr.fetchone()
        cr.execute(
            f"UPDATE spp_dci_ibr_connection SET {assignments} WHERE id = %(id)s",  # noqa: S608
            dict(values, id=self.id),
            log_exceptions=False,
        )
        self.invalidate_recordset(
            [
                "consecutive_failures",
                "failing_since",
                "down_alert_at",
                "last_success_at",
                "last_failure_at",
                "last_failure_reason",
                "health",
            ]
        )
        return before

    def _post_health(self, text):
        """One message on the connection, notified to the system administrators."""
        admins = (
            self.env.ref("base.group_system")
            .sudo()
            .all_user_ids.filtered(lambda u: u.active and not u.share)
        )
        _logger.warning("IBR connection %s: %s", self.id, text)
        self.sudo().message_post(
            body=text,
            partner_ids=admins.partner_id.ids,
            message_type="notification",
            subtype_xmlid="mail.mt_note",
        )

    def get_callback_url(self, route="on-search"):
        """Where the IBR sends ``route`` callbacks (``CALLBACK_ROUTES``): beside
        the configured on-search URL, or under this database's web.base.url."""
        self.ensure_one()
        if route not in CALLBACK_ROUTES:
            raise ValueError(f"no callback route {route!r}")
        if self.callback_url:
            url = self.callback_url
            if route == "on-search":
                return url
            if url.endswith("/on-search"):
                return url[: -len("on-search")] + route
            return url.rstrip("/") + "/" + route
        return self._our_base_url() + CALLBACK_PATH[: -len("on-search")] + route

    # -- keys ---------------------------------------------------------------

    def _check_admin(self, refusal):
        if not (self.env.su or self.env.user.has_group("base.group_system")):
            raise AccessError(refusal)

    def write(self, vals):
        if "company_id" in vals and self.env["spp.dci.duplication.check"].sudo().search_count(
            [("data_source_id", "in", self.ids), ("company_id", "!=", vals["company_id"])],
            limit=1,
        ):
            raise UserError(
                self.env._(
                    "This connection has checks of its company: they stay that company's. "
                    "Create a new connection for the other company instead."
                )
            )
        return super().write(vals)

    def action_generate_signing_key(self):
        """Create a new signing key pair; the old one stops signing at once.
        Says which key it is and where the IBR must fetch it. (Administrators
        only: every IBR refuses our requests until it fetched the new key.)"""
        self._check_admin(self.env._("Only administrators can rotate our signing key."))
        for conn in self:
            key = SigningKey.generate(conn.our_sender_id, conn.signing_algorithm)
            conn.sudo().write(
                {
                    "signing_kid": key.kid,
                    "signing_public_key": key.public.pem,
                    "signing_private_key": key.private_pem(),
                }
            )
        return notification(
            self.env._("Signing key generated"),
            "\n".join(
                self.env._(
                    "%(name)s now signs with key %(kid)s. The IBR must fetch our JWKS at "
                    "%(url)s before it accepts requests signed with it.",
                    name=conn.name,
                    kid=conn.signing_kid,
                    url=conn._our_jwks_url(),
                )
                for conn in self
            ),
            "success",
        )

    def _signing_key(self):
        self.ensure_one()
        private_pem = self.sudo().signing_private_key
        if not (private_pem and self.signing_kid):
            raise UserError(
                self.env._(
                    "IBR connection %(name)s has no signing key (the private key our requests "
                    "are signed with): generate one with Generate Signing Key on the "
                    "connection (%(menu)s).",
                    name=self.name,
                    menu=CONNECTION_MENU,
                )
            )
        try:
            return SigningKey.from_pem(private_pem, self.signing_kid)
        except DCIError as exc:
            raise UserError(
                self.env._(
                    "The signing key of %(name)s is unusable: %(reason)s",
                    name=self.name,
                    reason=exc.message,
                )
            ) from None

    @api.model
    def _public_jwks(self):
        """Our public keys (every active connection's), as the JWKS we publish."""
        keys = []
        # every company's keys: the one JWKS of this database
        for conn in self.sudo().search([("signing_kid", "!=", False)]):
            try:
                KeyId.parse(conn.signing_kid)
                keys.append(public_key_from_pem(conn.signing_public_key, kid=conn.signing_kid))
            except DCIError:
                continue  # a broken key is not published; the form shows it
        return {
            "keys": [k.to_jwk() for k in keys] + self._thumbprint_jwks() + self._encryption_jwks()
        }

    # -- the client ---------------------------------------------------------

    def _auth(self, timeout=None):
        conn = self.sudo()
        if conn.auth_type == "bearer":
            return BearerToken(conn.bearer_token)
        if conn.auth_type == "oauth2":
            return ClientCredentials(
                conn.oauth_token_url,
                conn.oauth_client_id,
                conn.oauth_client_secret,
                timeout=timeout or conn.timeout,
            )
        return None

    def _get_client(self, **options):
        """A core :class:`IbrClient` configured from this connection; ``options``
        override its keyword arguments (``timeout``, ``session``...)."""
        self.ensure_one()
        ibr_keys = self.ibr_sender_id._get_key_set() if self.ibr_sender_id else None
        kwargs = {
            "receiver_id": self.receiver_id or None,
            "auth": self._auth(),
            "timeout": self._timeouts(),
            "session": self._session(),
            "ibr_keys": ibr_keys,
            # a signed synchronous answer is accepted once, across calls and workers
            "replay_guard": OdooReplayGuard(self.env),
            **self._encryption_options(),
            "dialect": self._dialect(),  # models/connection_dialect.py
            **options,
        }
        return IbrClient(self.base_url, self._signing_key(), self.our_sender_id, **kwargs)


def sentence(text):
    """``text`` with a capital first letter (lines joined into a message)."""
    return text[:1].upper() + text[1:]
