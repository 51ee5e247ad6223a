"""The outgoing side: how we reach one IBR, as which sender, signed with which key."""

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..dci.auth import BearerToken, ClientCredentials
from ..dci.client import IbrClient
from ..dci.errors import DCIError
from ..dci.keys import KeyId, SigningKey
from .dci_replay_entry import OdooReplayGuard

CALLBACK_PATH = "/dci_api/ibr/on-search"
CALLBACK_ROUTES = ("on-search", "on-subscribe", "on-unsubscribe", "notify", "txn/on-status")


class IbrConnection(models.Model):
    _name = "spp.dci.ibr.connection"
    _description = "IBR Connection"
    _order = "sequence, name"

    name = fields.Char(required=True)
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
        help="Only callbacks signed by this sender may answer checks sent through this connection.",
    )
    mode = fields.Selection(
        [("async", "Asynchronous (callbacks)"), ("sync", "Synchronous search")],
        default="async",
        required=True,
    )
    callback_url = fields.Char(
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
        help="Checks still waiting for a callback after this long are failed.",
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
    bearer_token = fields.Char(groups="base.group_system")
    oauth_token_url = fields.Char(string="OAuth2 Token URL")
    oauth_client_id = fields.Char(string="OAuth2 Client ID")
    oauth_client_secret = fields.Char(string="OAuth2 Client Secret", groups="base.group_system")
    # our signing key: the private part only system administrators can read
    signing_algorithm = fields.Selection(
        [("ed25519", "Ed25519"), ("rs256", "RSA-256")], default="ed25519", required=True
    )
    signing_kid = fields.Char(string="Signing Key ID", readonly=True, copy=False)
    signing_public_key = fields.Text(readonly=True, copy=False)
    signing_private_key = fields.Text(groups="base.group_system", copy=False)
    has_signing_key = fields.Boolean(compute="_compute_has_signing_key")

    _positive_numbers = models.Constraint(
        "CHECK(timeout > 0 AND page_size > 0 AND batch_size > 0 AND stale_after_minutes > 0)",
        "Timeout, page size, batch size and stale delay must be positive.",
    )

    @api.depends("signing_kid", "signing_public_key")
    def _compute_has_signing_key(self):
        for conn in self:
            conn.has_signing_key = bool(conn.signing_kid and conn.signing_public_key)

    @api.constrains("base_url", "callback_url", "oauth_token_url")
    def _check_urls(self):
        for conn in self:
            for url in (conn.base_url, conn.callback_url, conn.oauth_token_url):
                if url and not url.startswith(("http://", "https://")):
                    raise ValidationError(self.env._("%(url)r is not an http(s) URL.", url=url))

    @api.model
    def get_default(self):
        """The first active connection, or a UserError that says what to configure."""
        conn = self.search([], limit=1)
        if not conn:
            raise UserError(
                self.env._(
                    "No active IBR connection. Configure one in Settings > Technical > DCI > "
                    "Configuration > IBR Connections."
                )
            )
        return conn

    def _lease_end(self):
        """Until when a job sending through this connection may still be at it:
        the request's own timeouts and retries, plus a margin."""
        self.ensure_one()
        return fields.Datetime.add(fields.Datetime.now(), seconds=3 * self.timeout + 60)

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
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return base.rstrip("/") + CALLBACK_PATH[: -len("on-search")] + route

    # -- keys ---------------------------------------------------------------

    def action_generate_signing_key(self):
        """Create a new signing key pair; the old one stops signing at once."""
        for conn in self:
            key = SigningKey.generate(conn.our_sender_id, conn.signing_algorithm)
            conn.sudo().write(
                {
                    "signing_kid": key.kid,
                    "signing_public_key": key.public.pem,
                    "signing_private_key": key.private_pem(),
                }
            )
        return True

    def _signing_key(self):
        self.ensure_one()
        private_pem = self.sudo().signing_private_key
        if not (private_pem and self.signing_kid):
            raise UserError(
                self.env._(
                    "IBR connection %(name)s has no signing key: generate one on the connection.",
                    name=self.name,
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
        from ..dci.keys import public_key_from_pem

        keys = []
        for conn in self.search([("signing_kid", "!=", False)]):
            try:
                KeyId.parse(conn.signing_kid)
                keys.append(public_key_from_pem(conn.signing_public_key, kid=conn.signing_kid))
            except DCIError:
                continue  # a broken key is not published; the form shows it
        return {"keys": [k.to_jwk() for k in keys]}

    # -- the client ---------------------------------------------------------

    def _auth(self):
        conn = self.sudo()
        if conn.auth_type == "bearer":
            return BearerToken(conn.bearer_token)
        if conn.auth_type == "oauth2":
            return ClientCredentials(
                conn.oauth_token_url,
                conn.oauth_client_id,
                conn.oauth_client_secret,
                timeout=conn.timeout,
            )
        return None

    def _get_client(self):
        """A core :class:`IbrClient` configured from this connection."""
        self.ensure_one()
        ibr_keys = self.ibr_sender_id._get_key_set() if self.ibr_sender_id else None
        return IbrClient(
            self.base_url,
            self._signing_key(),
            self.our_sender_id,
            receiver_id=self.receiver_id or None,
            auth=self._auth(),
            timeout=(min(10, self.timeout), self.timeout),
            ibr_keys=ibr_keys,
            # a signed synchronous answer is accepted once, across calls and workers
            replay_guard=OdooReplayGuard(self.env),
        )
