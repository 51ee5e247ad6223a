"""Trusted IBR senders: whose signed callbacks we accept, with which keys."""

import json
import logging
import math
import re
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..dci import jwe
from ..dci.auth import bearer_matches
from ..dci.errors import DCIError, KeyFormatError, PrivateAddress
from ..dci.keys import KeyId, KeySet, public_key_from_jwk, public_key_from_pem, sender_keys
from ..dci.netguard import FetchPolicy, fetch_json
from ..dci.signatures import verify_signature
from ..dci.trust import RefreshLimiter
from .notify import notification

_logger = logging.getLogger(__name__)

_REFRESH_LIMITER = RefreshLimiter()
SENDER_ID_FORMAT = re.compile(r"^[A-Za-z0-9._-]+$")
PARAM_ALLOW_PRIVATE = "spp_dci_client_ibr.allow_private_jwks_urls"
PARAM_REFRESH_INTERVAL = "spp_dci_client_ibr.key_refresh_min_interval"
REFRESH_CRON = "spp_dci_client_ibr.ir_cron_refresh_sender_keys"
SENDER_MENU = "IBR Checks > Configuration > IBR Senders"
# What verifying a callback may change on a sender (the callback user refreshes
# keys); every other field is the administrators'.
KEY_REFRESH_FIELDS = frozenset(
    {
        "public_key",
        "algorithm",
        "last_key_fetch",
        "keys_fetched_at",
        "last_fetch_error",
        "key_refresh_due",
        "encryption_jwk",
    }
)
# The members each supported JWK type must carry (RFC 7517/8037).
_JWK_MEMBERS = {"OKP": ("crv", "x"), "RSA": ("n", "e")}


class _FetchedKeys(list):
    """The signing keys read from a JWKS, and its encryption key (JWK JSON text, or "")."""

    encryption_jwk = ""


def _encryption_jwk(document):
    """The first ``use: enc`` key of a JWKS as JSON text ("" when it has none usable)."""
    try:
        recipient = jwe.recipient_from_jwks(document)
    except DCIError:
        return ""
    jwk = recipient.key.as_dict(private=False)
    jwk.update(kid=recipient.kid, alg=recipient.alg, use="enc")
    return json.dumps(jwk)


class SenderVerifier(KeySet):
    """A sender's trusted keys (a core :class:`KeySet`: ``get(kid)`` for the
    inbound path) with the upstream verifier contract on top:
    ``verify(signature, header, message) -> bool``."""

    def __init__(self, keys=(), default=None, policy=None):
        super().__init__(keys, default=default)
        self.policy = policy

    def verify(self, signature, header, message):
        """True when ``signature`` is a valid, current signature of ``header``
        and ``message`` exactly as given, by one of these keys."""
        try:
            verify_signature(signature, header, message, self.get, self.policy)
        except DCIError:
            return False
        return True


class IbrSender(models.Model):
    _name = "spp.dci.ibr.sender"
    _description = "Trusted IBR Sender"
    _order = "name"

    name = fields.Char(required=True)
    sender_id = fields.Char(
        string="Sender ID",
        required=True,
        index=True,
        help="The sender_id the IBR puts in its message headers and key ids.",
    )
    jwks_url = fields.Char(string="JWKS URL", help="Where the IBR publishes its public keys.")
    public_key = fields.Text(
        help="PEM public key in use. Filled from the JWKS, or pasted by hand when the "
        "IBR publishes no JWKS.",
    )
    algorithm = fields.Selection(
        [("ed25519", "Ed25519"), ("rs256", "RSA-256")],
        help="Signature algorithm of the key in use. Taken from the key itself when keys are "
        "fetched or a PEM is pasted; only needed to double-check a pasted key.",
    )
    encryption_jwk = fields.Text(
        string="Encryption Key",
        readonly=True,
        copy=False,
        help="The IBR's public encryption key (the first key with use enc in its JWKS), as a "
        "JWK: what our messages are encrypted to when a connection encrypts.",
    )
    # every fetch, failed ones too: the refresh limiter counts from it
    last_key_fetch = fields.Datetime(string="Last Fetch Attempt", readonly=True)
    keys_fetched_at = fields.Datetime(
        string="Last Key Fetch", readonly=True, help="When keys were last fetched and stored."
    )
    last_fetch_error = fields.Text(readonly=True)
    key_refresh_due = fields.Datetime(
        readonly=True,
        copy=False,
        help="A callback named a key we do not know while refreshes were still paused: "
        "the key refresh job fetches this sender's keys again at this time.",
    )
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Empty: trusted by every company's connections (one national IBR). Set: only "
        "that company's connections may use it.",
    )
    notes = fields.Text()
    key_ids = fields.One2many("spp.dci.ibr.sender.key", "sender_id", string="Keys")
    published_key_count = fields.Integer(compute="_compute_published_key_count")
    delivery_log_ids = fields.One2many(
        "spp.dci.delivery.log", "sender_id", string="Refused Deliveries", readonly=True
    )
    callback_token = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Optional: when set, this IBR's callbacks must also carry "
        "'Authorization: Bearer <token>'.",
    )

    _sender_id_unique = models.Constraint(
        "UNIQUE(sender_id)", "Another IBR sender already uses this sender ID."
    )

    @api.depends("key_ids.state")
    def _compute_published_key_count(self):
        for sender in self:
            sender.published_key_count = len(
                sender.key_ids.filtered(lambda k: k.state == "published")
            )

    @api.constrains("sender_id")
    def _check_sender_id(self):
        for sender in self:
            if not SENDER_ID_FORMAT.match(sender.sender_id or ""):
                raise ValidationError(
                    self.env._(
                        "Sender ID %(id)r may only contain letters, digits, '.', '-' and '_'.",
                        id=sender.sender_id,
                    )
                )

    @api.constrains("jwks_url")
    def _check_jwks_url(self):
        for sender in self.filtered("jwks_url"):
            if not re.match(r"^https?://[^\s/]+", sender.jwks_url):
                raise ValidationError(self.env._("The JWKS URL must be an http(s) URL."))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._derive_algorithm(vals)
        return super().create(vals_list)

    def write(self, vals):
        if not (self.env.su or self.env.user.has_group("base.group_system")):
            denied = set(vals) - KEY_REFRESH_FIELDS
            if denied:
                raise AccessError(
                    self.env._(
                        "Only administrators configure trusted IBR senders (refused: %(fields)s).",
                        fields=", ".join(sorted(denied)),
                    )
                )
        if vals.get("public_key") and "algorithm" not in vals:
            vals = self._derive_algorithm(dict(vals))
        return super().write(vals)

    @api.model
    def _derive_algorithm(self, vals):
        """A pasted PEM without an algorithm: take the key's own (the
        constraint below reports a key that cannot be read)."""
        if vals.get("public_key") and not vals.get("algorithm"):
            try:
                vals["algorithm"] = public_key_from_pem(vals["public_key"]).algorithm
            except DCIError as exc:
                _logger.debug("pasted key not readable, the constraint says why: %s", exc.code)
        return vals

    @api.constrains("public_key", "algorithm")
    def _check_public_key(self):
        for sender in self.filtered("public_key"):
            try:
                public_key_from_pem(sender.public_key, algorithm=sender.algorithm or "")
            except DCIError as exc:
                raise ValidationError(
                    self.env._("The public key is not usable: %(reason)s", reason=exc.message)
                ) from None

    # -- lookups used by the callback API ------------------------------------

    def _accepts_token(self, authorization):
        """Whether a request with this ``Authorization`` header may speak for
        this sender: always when it has no callback token, else only with it.
        (The token is a secret: compared here, never shown.)"""
        self.ensure_one()
        token = self.sudo().callback_token
        return not token or bearer_matches(authorization or "", token)

    def _check_admin(self):
        if not (self.env.su or self.env.user.has_group("base.group_system")):
            raise AccessError(self.env._("Only administrators can fetch an IBR sender's keys."))

    @api.model
    def get_by_sender_id(self, sender_id):
        """The active sender with this id (empty recordset if none)."""
        return self.search([("sender_id", "=", sender_id), ("active", "=", True)], limit=1)

    def get_verifier(self):
        """The verifier of this sender's signatures (upstream's contract).

        A :class:`SenderVerifier`: ``verify(signature, header, message)``
        answers True or False under the configured time policy, and it is the
        core :class:`KeySet` the callback path uses. Raises a ``UserError``
        naming the sender when it has no key (or a pasted key and no
        algorithm) to verify with.
        """
        self.ensure_one()
        verifier = self._get_key_set()
        if not len(verifier) and verifier.default is None:
            if self.public_key and not self.algorithm:
                raise UserError(
                    self.env._(
                        "Algorithm not set for IBR sender %(sender)s.", sender=self.sender_id
                    )
                )
            # the first sentence is the upstream one (translated); the second says where
            raise UserError(
                self.env._(
                    "No public key available for IBR sender %(sender)s: fetch its keys or "
                    "paste its PEM public key first.",
                    sender=self.sender_id,
                )
                + " "
                + self.env._(
                    "On the sender (%(menu)s): set the JWKS URL the IBR publishes its keys at "
                    "and click Fetch Public Key, or paste the PEM public key the IBR gives you.",
                    menu=SENDER_MENU,
                )
            )
        return verifier

    def _get_key_set(self):
        """This sender's keys as a :class:`SenderVerifier`, possibly empty
        (the inbound path then refreshes the JWKS once, or refuses).

        Published JWKS keys are chosen by kid; a hand-pasted PEM (no JWKS key
        lines) answers for any kid of this sender.
        """
        self.ensure_one()
        keys = [line._to_public_key() for line in self.key_ids if line.state == "published"]
        default = None
        if not keys and self.public_key and self.algorithm:
            default = public_key_from_pem(
                self.public_key,
                kid=f"{self.sender_id}|manual|{self.algorithm}",
                algorithm=self.algorithm,
            )
        policy = self.env["spp.dci.callback.service"]._policy()
        return SenderVerifier(keys, default=default, policy=policy)

    # -- fetching keys -------------------------------------------------------

    def _fetch_policy(self):
        allow = self.env["ir.config_parameter"].sudo().get_param(PARAM_ALLOW_PRIVATE)
        return FetchPolicy(allow_private=str(allow).lower() in ("1", "true", "yes"))

    def _jwk_to_pem(self, jwk):
        """Hook: the PEM public key of one JWK (OKP/Ed25519 or RSA here).

        Override to accept more key formats. Raises a ``UserError`` (as
        upstream does) saying "unsupported" for another key type and
        "missing" for an absent member; other unusable keys raise too.
        """
        kty = jwk.get("kty") if isinstance(jwk, dict) else None
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if kty not in _JWK_MEMBERS or (kty == "OKP" and jwk.get("crv") not in (None, "Ed25519")):
            raise UserError(
                self.env._(
                    "JWK %(kid)s: unsupported key type %(kty)s (curve %(crv)s); only "
                    "OKP/Ed25519 and RSA keys are supported.",
                    kid=kid,
                    kty=kty,
                    crv=jwk.get("crv") if isinstance(jwk, dict) else None,
                )
            )
        absent = [member for member in _JWK_MEMBERS[kty] if not jwk.get(member)]
        if absent:
            raise UserError(
                self.env._(
                    "JWK %(kid)s is missing the member(s) %(members)s.",
                    kid=kid,
                    members=", ".join(absent),
                )
            )
        try:
            return public_key_from_jwk(jwk).pem
        except DCIError as exc:
            raise UserError(
                self.env._("JWK %(kid)s is not usable: %(reason)s", kid=kid, reason=exc.message)
            ) from None

    def _jwk_to_public_key(self, jwk):
        """The verification key of one JWK: its own type, its ``alg`` and the
        algorithm its kid names (a ``sender|key|alg`` kid; a thumbprint names
        none) must all agree."""
        kid = jwk.get("kid", "")
        key = public_key_from_pem(self._jwk_to_pem(jwk), kid=kid, algorithm=jwk.get("alg") or "")
        if "|" not in kid:  # sender_keys took it as its own JWK thumbprint
            return key
        named = KeyId.parse(kid).algorithm
        if named != key.algorithm:
            raise KeyFormatError(f"key {kid!r} is {key.algorithm} but its kid says {named}")
        return key

    def _fetch_keys(self):
        """Fetch and validate this sender's JWKS; return its keys. Raises DCIError."""
        self.ensure_one()
        if not self.jwks_url:
            raise KeyFormatError("no JWKS URL is configured")
        document = fetch_json(self.jwks_url, self._fetch_policy())
        if not isinstance(document, dict):
            raise KeyFormatError("the JWKS is not a JSON object")

        def read(jwk):
            try:
                return self._jwk_to_public_key(jwk)
            except UserError as exc:  # the _jwk_to_pem hook says why in the user's words
                raise KeyFormatError(str(exc.args[0])) from None

        try:
            keys = _FetchedKeys(sender_keys(document, self.sender_id, read))
        except KeyFormatError as exc:
            raise KeyFormatError(
                f"no usable key for this sender in the JWKS at {self.jwks_url}: {exc.message}"
            ) from None
        keys.encryption_jwk = _encryption_jwk(document)
        return keys

    def fetch_public_key(self):
        """Fetch the JWKS and store its keys (no UI). Raises UserError on failure,
        leaving the stored keys untouched."""
        self._check_admin()
        for sender in self:
            try:
                keys = sender._fetch_keys()
            except DCIError as exc:
                raise UserError(sender._fetch_failure(exc)) from None
            sender._store_keys(keys)
        return True

    def _fetch_reason(self, exc):
        """Why a fetch failed (a core error), with what to do where a setting or
        the administrator can mend it, in the user's language."""
        self.ensure_one()
        if not self.jwks_url:
            return self.env._(
                "No JWKS URL is configured: ask the IBR where it publishes its public "
                "keys (a JWKS URL), or paste its PEM public key instead."
            )
        if isinstance(exc, PrivateAddress):  # the one refusal a setting lifts: name it
            return self.env._(
                "%(reason)s; set the system parameter %(param)s to True to allow private addresses",
                reason=exc.message,
                param=PARAM_ALLOW_PRIVATE,
            )
        return exc.message

    def _fetch_failure(self, exc):
        self.ensure_one()
        return self.env._(
            "Could not fetch the keys of %(name)s: %(reason)s",
            name=self.name,
            reason=self._fetch_reason(exc),
        )

    def _store_keys(self, keys):
        """Upsert key lines; keys no longer published become retired."""
        self.ensure_one()
        now = fields.Datetime.now()
        by_kid = {line.kid: line for line in self.key_ids}
        seen = set()
        for key in keys:
            vals = {
                "algorithm": key.algorithm,
                "public_key": key.pem,
                "fingerprint": key.fingerprint,
                "fetched_at": now,
                "state": "published",
            }
            line = by_kid.get(key.kid)
            if line:
                line.write(vals)
            else:
                self.env["spp.dci.ibr.sender.key"].create(
                    {**vals, "sender_id": self.id, "kid": key.kid}
                )
            seen.add(key.kid)
        self.key_ids.filtered(lambda k: k.kid not in seen and k.state == "published").write(
            {"state": "retired"}
        )
        current = keys[0]
        vals = {
            "public_key": current.pem,
            "algorithm": current.algorithm,
            "last_key_fetch": now,
            "keys_fetched_at": now,
            "last_fetch_error": False,
            "key_refresh_due": False,
        }
        if isinstance(keys, _FetchedKeys):  # a fetched JWKS also says the encryption key
            vals["encryption_jwk"] = keys.encryption_jwk or False
        self.write(vals)

    def action_fetch_public_key(self):
        """Button: fetch keys and say how it went. A failure is recorded on the
        sender (kept, unlike a raised error: the form and the "Key Fetch Failed"
        filter show it) and told in a notification that stays."""
        self._check_admin()
        failures = []
        for sender in self:
            try:
                sender._store_keys(sender._fetch_keys())
            except DCIError as exc:
                sender.write(
                    {
                        "last_key_fetch": fields.Datetime.now(),
                        "last_fetch_error": sender._fetch_reason(exc),
                    }
                )
                failures.append(sender._fetch_failure(exc))
        if failures:
            return notification(self.env._("Key fetch failed"), "\n".join(failures), "danger")
        count = sum(s.published_key_count for s in self)
        return notification(
            self.env._("Keys fetched"),
            self.env._("1 published key stored.")
            if count == 1
            else self.env._("%(count)s published keys stored.", count=count),
            "success",
        )

    def _refresh_keys_if_allowed(self):
        """Refresh once on an unknown kid, at most once per configured interval.

        Returns the new KeySet or None. Failures are recorded, never raised:
        the caller then refuses the unknown kid.
        """
        self.ensure_one()
        if not self.jwks_url:
            return None
        if self._refresh_wait():
            return None
        # last_key_fetch is rolled back with a refused callback: the process-wide
        # limiter keeps counting, so a flood of unknown kids cannot flood the IBR.
        if not _REFRESH_LIMITER.allow(self._limiter_key()):
            return None
        try:
            keys = self._fetch_keys()
        except DCIError as exc:
            self.write(
                {
                    "last_key_fetch": fields.Datetime.now(),
                    "last_fetch_error": self._fetch_reason(exc),
                }
            )
            return None
        self._store_keys(keys)
        return self._get_key_set()

    def _limiter_key(self):
        return (self.env.cr.dbname, self.id, self.jwks_url)

    def _refresh_wait(self):
        """Seconds before the refresh interval lets this sender's keys be fetched
        again (0: now), by the database's record and by this process's limiter."""
        self.ensure_one()
        param = self.env["ir.config_parameter"].sudo().get_param(PARAM_REFRESH_INTERVAL, 300)
        interval = int(param)
        _REFRESH_LIMITER.min_interval = interval
        wait = _REFRESH_LIMITER.wait(self._limiter_key())
        if self.last_key_fetch:
            elapsed = (fields.Datetime.now() - self.last_key_fetch).total_seconds()
            wait = max(wait, interval - elapsed)
        return max(0, wait)

    def _schedule_key_refresh(self):
        """Have the key refresh job fetch these senders' keys once the refresh
        interval allows it: a callback refused for an unknown kid inside the
        interval (the IBR rotated its key) is then accepted on its retry.

        Call it outside the refused callback's savepoint, or it is rolled back
        with it. One pending refresh per sender: a flood of unknown kids adds no
        more jobs. Returns the time of the refresh per sender id.
        """
        now = fields.Datetime.now()
        cron = self.env.ref(REFRESH_CRON).sudo()
        due = {}
        for sender in self.filtered("jwks_url"):
            if sender.key_refresh_due and sender.key_refresh_due >= now:
                due[sender.id] = sender.key_refresh_due  # already planned
                continue
            # whole seconds: the job must not run a moment before the interval ends
            at = now + timedelta(seconds=math.ceil(sender._refresh_wait()))
            sender.sudo().key_refresh_due = at
            cron._trigger(at=at)
            due[sender.id] = at
        return due

    @api.model
    def _cron_refresh_keys(self):
        """Daily: refresh every active sender with a JWKS URL; one failure never
        stops the others and stays visible on that sender. A run triggered
        before the daily time by :meth:`_schedule_key_refresh` refreshes only
        the senders that asked for it."""
        domain = [("jwks_url", "!=", False)]
        now = fields.Datetime.now()
        cron = self.env.ref(REFRESH_CRON, raise_if_not_found=False)
        due = self.search(domain + [("key_refresh_due", "<=", now)])
        if due and cron and cron.sudo().nextcall > now:
            senders = due
        else:
            senders = self.search(domain)
        for sender in senders:
            try:
                with self.env.cr.savepoint():
                    sender._store_keys(sender._fetch_keys())
            except DCIError as exc:
                sender.write(
                    {"last_fetch_error": sender._fetch_reason(exc), "key_refresh_due": False}
                )
                _logger.warning(
                    "IBR sender %s: key refresh failed: %s", sender.sender_id, exc.message
                )
            except Exception:  # one broken sender must not stop the others
                _logger.exception("IBR sender %s: key refresh crashed", sender.sender_id)
                sender.write(
                    {
                        "last_fetch_error": self.env._("Unexpected error, see the server log."),
                        "key_refresh_due": False,
                    }
                )
