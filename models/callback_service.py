"""Receiving IBR callbacks: verify with the core, apply with the models.

One method per route, each returning ``(http_status, body)``. Verification
and applying run inside one savepoint: a refused or failed callback leaves
nothing behind (not even its replay-guard row), so the IBR's retry is
treated as new. Concurrency errors are re-raised for Odoo to retry the
whole request, which then sees the other delivery's committed result.
"""

import logging

from odoo import api, models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..dci import messages
from ..dci.errors import (
    DCIError,
    ReplayDetected,
    SenderInvalid,
    ServiceUnavailable,
    Unauthorized,
    UnknownKey,
)
from ..dci.inbound import JSON_ONLY, accept, claimed_ids
from ..dci.routes import route_for
from ..dci.signatures import SignaturePolicy
from ..dci.trust import TrustStore
from .dci_replay_entry import OdooReplayGuard

_logger = logging.getLogger(__name__)

PARAM_ALLOW_UNSIGNED = "spp_dci_client_ibr.allow_unsigned_callbacks"
PARAM_ALLOW_UNSIGNED_UPSTREAM = "dci.allow_unsigned_requests"  # OpenSPP2's switch
PARAM_SKEW = "spp_dci_client_ibr.signature_clock_skew"
PARAM_MAX_LIFETIME = "spp_dci_client_ibr.signature_max_lifetime"
PARAM_MAX_BODY = "spp_dci_client_ibr.callback_max_bytes"


class OdooTrustStore(TrustStore):
    """Trusted senders are the active ``spp.dci.ibr.sender`` records."""

    def __init__(self, env, authorization=None):
        self.env = env
        self.authorization = authorization or ""
        self.senders = {}

    def sender(self, sender_id):
        if sender_id not in self.senders:
            # every company's trusted senders: the request's user belongs to none
            record = self.env["spp.dci.ibr.sender"].sudo().get_by_sender_id(sender_id)
            if not record:
                raise SenderInvalid(f"sender {sender_id!r} is not a trusted IBR")
            self.senders[sender_id] = record
        return self.senders[sender_id]

    def keys_for(self, sender_id):
        record = self.sender(sender_id)
        if not record._accepts_token(self.authorization):
            raise Unauthorized("this IBR's callbacks need its bearer token")
        return record._get_key_set()  # may be empty: an unknown kid refreshes once

    def refresh(self, sender_id):
        return self.sender(sender_id)._refresh_keys_if_allowed()


class DciCallbackService(models.AbstractModel):
    _name = "spp.dci.callback.service"
    _description = "DCI IBR Callback Processing"

    # -- configuration -----------------------------------------------------

    def _param(self, key, default):
        return self.env["ir.config_parameter"].sudo().get_param(key, default)

    def _policy(self):
        return SignaturePolicy(
            skew=int(self._param(PARAM_SKEW, 60)),
            max_lifetime=int(self._param(PARAM_MAX_LIFETIME, 3600)),
        )

    def _allow_unsigned(self):
        return any(
            str(self._param(key, "")).lower() in ("1", "true", "yes")
            for key in (PARAM_ALLOW_UNSIGNED, PARAM_ALLOW_UNSIGNED_UPSTREAM)
        )

    def max_body_bytes(self):
        return int(self._param(PARAM_MAX_BODY, 2 * 1024 * 1024))

    @api.model
    def callback_media_types(self):
        """The content types callbacks may declare: JSON, and what the
        dialects of our connections' peers send (OpenCRVS: text/plain)."""
        connections = (
            self.env["spp.dci.ibr.connection"].sudo().search([("peer_dialect", "!=", False)])
        )
        types = set(JSON_ONLY)
        for connection in connections:
            try:
                types.update(connection._dialect().callback_media_types)
            except DCIError:
                continue  # a custom dialect set wrong: its form says so
        return tuple(sorted(types))

    def _our_ids(self):
        connections = (
            self.env["spp.dci.ibr.connection"].sudo().search([("our_sender_id", "!=", False)])
        )
        return set(connections.mapped("our_sender_id"))

    # -- the routes (dci/routes.py); the on_* names are the routers' ----------

    @api.model
    def receive(self, path, raw, authorization=None):
        """Handle a callback body posted to route ``path`` (``"on-search"``,
        ``"txn/on-status"`` ...: ``dci.routes``); return ``(status, body)``."""
        route = route_for(path)
        if route is None:
            raise ValueError(f"no callback route {path!r}")
        return self._receive(raw, authorization, route)

    @api.model
    def on_search(self, raw, authorization=None):
        return self.receive("on-search", raw, authorization)

    @api.model
    def on_subscribe(self, raw, authorization=None):
        return self.receive("on-subscribe", raw, authorization)

    @api.model
    def on_unsubscribe(self, raw, authorization=None):
        return self.receive("on-unsubscribe", raw, authorization)

    @api.model
    def notify(self, raw, authorization=None):
        return self.receive("notify", raw, authorization)

    @api.model
    def on_txn_status(self, raw, authorization=None):
        return self.receive("txn/on-status", raw, authorization)

    def _receive(self, raw, authorization, route):
        """Verify ``raw`` as a message of ``route`` (a ``dci.routes.CallbackRoute``);
        apply it with the service's ``_apply_<handler>``, in superuser mode: the answer's sender was
        verified, and what it may change is decided by the apply methods
        (its own connections' checks and subscriptions), not by the rights of
        the technical user the request runs as."""
        trust = OdooTrustStore(self.env, authorization)
        # decryption is one more step of the one inbound path, after verification
        decryption_keys, must_encrypt = self.env["spp.dci.ibr.connection"]._inbound_encryption()
        try:
            with self.env.cr.savepoint():
                accepted = accept(
                    raw,
                    action=route.action,
                    message_model=route.schema,
                    our_id=self._our_ids(),
                    trust=trust,
                    replay_guard=OdooReplayGuard(self.env),
                    policy=self._policy(),
                    allow_unsigned=self._allow_unsigned(),
                    callback="auto",
                    max_bytes=self.max_body_bytes(),
                    decryption_keys=decryption_keys,
                    require_encryption=must_encrypt,
                )
                if not accepted.is_duplicate:
                    sender = trust.sender(accepted.sender_id).sudo()
                    getattr(self.sudo(), f"_apply_{route.handler}")(accepted, sender)
        except DCIError as exc:
            _logger.info("refused %s callback: %s %s", route.action, exc.code, exc.message)
            self._record_refusal(raw, route, exc, authorization)
            return exc.http_status, messages.err_ack(exc)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise  # Odoo retries the request; the retry sees the other delivery
        except Exception:
            _logger.exception("could not apply %s callback", route.action)
            error = ServiceUnavailable("the callback could not be applied; send it again")
            self._record_refusal(raw, route, error, authorization)
            return error.http_status, messages.err_ack(error)
        if accepted.is_duplicate:
            _logger.info(
                "duplicate %s message %s acknowledged, not applied",
                route.action,
                accepted.header.message_id,
            )
        return 200, messages.ack()

    # -- refusals: visible to administrators and to the checks waiting -------

    def _record_refusal(self, raw, route, error, authorization=None):
        """Log a refused or failed delivery on its sender, and note on the
        checks it claims to answer that an answer was refused, so an officer
        sees why a check still waits.

        Nothing here is verified, so nothing here changes a check's state or
        result: the note is only a note, and a request without the bearer
        token its claimed sender requires notes nothing at all. Runs after
        the refused delivery's savepoint was rolled back; it never changes
        the answer the IBR gets.
        """
        try:
            with self.env.cr.savepoint():
                ids = claimed_ids(raw, self.max_body_bytes())
                senders = self.env["spp.dci.ibr.sender"].sudo()
                sender = senders.get_by_sender_id(ids.get("sender_id") or "")
                told = 0
                # a transient failure (throttled, could not apply) is sent again,
                # and a replay is a copy of one we have: neither refuses the answer
                refused = not (error.transient or isinstance(error, ReplayDetected))
                if (
                    route.answers_checks
                    and sender
                    and refused
                    and sender._accepts_token(authorization)
                ):
                    told = self._note_checks_refused(ids.get("transaction_id"), sender, error)
                self.env["spp.dci.delivery.log"]._record(route.action, error, ids, sender, told)
                if isinstance(error, UnknownKey) and sender:
                    sender._schedule_key_refresh()  # the IBR may have rotated its key
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            # refused at the same moment as another delivery: Odoo runs the whole
            # request again, which then counts it (nothing is lost, nothing logged)
            raise
        except Exception:  # the trace is a courtesy: the ERR answer stands regardless
            _logger.exception("could not record a refused %s delivery", route.action)

    def _note_checks_refused(self, transaction_id, sender, error):
        """Note on the waiting checks of our message ``transaction_id`` (when
        ``sender`` answers for it) that an answer claiming to be from it was
        refused; return how many. Their state and result stay as they are."""
        if not transaction_id:
            return 0
        txn = (
            self.env["spp.dci.ibr.transaction"]
            .sudo()
            .search([("transaction_id", "=", transaction_id)], limit=1)
        )
        if txn.connection_id.ibr_sender_id != sender:
            return 0
        waiting = txn.check_ids.filtered(lambda c: c.state == "checking")
        waiting.write(
            {
                "refusal_note": self.env._(
                    "an answer from %(sender)s was refused: %(code)s",
                    sender=sender.sender_id,
                    code=error.code,
                )[:250]
            }
        )
        return len(waiting)

    # -- applying ----------------------------------------------------------

    def _apply_search(self, accepted, sender):
        self._apply_search_message(accepted.header, accepted.message, sender)

    def _apply_search_message(self, header, response, sender):
        orphans = self.env["spp.dci.callback.orphan"]
        if response is None:  # a header-level rejection without a message
            orphans.create(
                {
                    "sender_id": sender.sender_id,
                    "verified_sender_id": sender.id,
                    "reason": (
                        f"message rejected: {header.status_reason_code or 'rjct'} "
                        f"{header.status_reason_message or ''}"
                    )[:250],
                }
            )
            return
        unmatched = self.env["spp.dci.duplication.check"]._apply_answer(response, sender)
        if unmatched:
            _logger.warning(
                "%s on-search item(s) from %s matched no waiting check",
                len(unmatched),
                sender.sender_id,
            )
            orphans._schedule_reconcile()

    def _apply_subscribe(self, accepted, sender):
        if accepted.message is not None:
            self.env["spp.dci.ibr.subscription"]._apply_on_subscribe(accepted.message, sender)

    def _apply_unsubscribe(self, accepted, sender):
        if accepted.message is None:
            return
        unknown = self.env["spp.dci.ibr.subscription"]._apply_on_unsubscribe(
            accepted.message, sender
        )
        if unknown:
            _logger.warning(
                "on-unsubscribe from %s confirms %s code(s) of no subscription of ours",
                sender.sender_id,
                len(unknown),
            )
            self.env["spp.dci.callback.orphan"].create(
                {
                    "sender_id": sender.sender_id,
                    "verified_sender_id": sender.id,
                    "transaction_id": accepted.message.transaction_id,
                    "correlation_id": accepted.message.correlation_id,
                    "reason": "on-unsubscribe for no subscription of ours",
                    "state": "dismissed",
                }
            )

    def _apply_notify(self, accepted, sender):
        if accepted.message is not None:
            self.env["spp.dci.ibr.notification"]._apply_notify(accepted.message, sender)

    def _apply_txn_status(self, accepted, sender):
        """A status answer is applied like a late on-search, when it carries one."""
        test_txn = getattr(accepted.message, "transaction_id", None)  # None: a bare rejection
        if self.env["spp.dci.ibr.connection"]._note_test_callback(test_txn, sender):
            return  # the answer to an administrator's connection test
        header, response = accepted.header, accepted.message
        if response is not None:
            response = response.search_answer()
            if response is None:
                _logger.info("txn-on-status from %s carries no search answer", sender.sender_id)
                return
        self._apply_search_message(header, response, sender)
