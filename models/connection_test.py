"""Test Connection: each link an IBR exchange needs, checked in turn for an
administrator, with the broken one named and how to mend it.

(a) our signing key signs and our published key verifies it; (b) the trusted
IBR sender has a key for the IBR's answers; (c) the IBR acknowledges a signed
asynchronous status request, and its signed callback arrives (the form shows
when: ``_note_test_callback``).
"""

from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..dci import messages
from ..dci.client import retrying_session
from ..dci.errors import DCIError
from ..dci.keys import KeySet, public_key_from_pem
from ..dci.signatures import SignaturePolicy, sign_envelope, verify_signature
from . import db_retry
from .ibr_connection import sentence
from .notify import notification

TEST_TIMEOUT = 10  # seconds at most: an administrator waits for the answer


class IbrConnection(models.Model):
    _inherit = "spp.dci.ibr.connection"

    def action_test_connection(self):
        """Button (administrators): check each link an IBR exchange needs, say
        which one breaks and how to mend it, and keep the outcome on the form."""
        self.ensure_one()
        self._check_admin(self.env._("Only administrators can test an IBR connection."))
        self.write(
            {
                "last_test_at": fields.Datetime.now(),
                "last_test_transaction_id": False,
                "last_test_callback_at": False,
            }
        )
        steps, key_ok = self._test_locally()
        transaction_id = False
        if key_ok:
            sent, text, transaction_id = self._test_request()
            steps.append((sent, text))
        else:
            steps.append(
                (False, self.env._("No request sent to the IBR: fix our signing key first."))
            )
        passed = all(ok for ok, _text in steps)
        result = "\n".join(("✓ " if ok else "✗ ") + sentence(text) for ok, text in steps)
        self.write(
            {
                "last_test_ok": passed,
                "last_test_result": result,
                "last_test_transaction_id": transaction_id,
            }
        )
        if passed:
            return notification(self.env._("Connection test passed"), result, "success")
        return notification(self.env._("Connection test failed"), result, "danger")

    def _test_locally(self):
        """Steps (a) our key and (b) the IBR's, as ``(ok, text)`` pairs; and
        whether our key can sign the request of step (c)."""
        steps = []
        try:
            kid = self._check_own_signature().kid
            steps.append(
                (
                    True,
                    self.env._(
                        "Our signing key %(kid)s signs, and our published public key "
                        "verifies its signature.",
                        kid=kid,
                    ),
                )
            )
        except (DCIError, UserError) as exc:
            steps.append((False, _reason(exc)))
        key_ok = steps[0][0]
        problems = self._sender_problems()
        steps += [(False, line) for line in self._problem_lines(problems)] or [
            (
                True,
                self.env._(
                    "The trusted IBR sender %(name)s has a key to verify the IBR's answers.",
                    name=self.ibr_sender_id.name,
                ),
            )
        ]
        return steps, key_ok

    def _test_request(self):
        """Step (c): a signed asynchronous status request about a transaction
        nobody sent, which the IBR must acknowledge and answer with a signed
        callback. Returns ``(ok, text, transaction id the callback will carry)``."""
        wait = min(TEST_TIMEOUT, self.timeout)
        sender_uri = self.get_callback_url("txn/on-status")
        request_id = messages.new_id()
        try:
            client = self._get_client(
                timeout=(wait, wait), session=retrying_session(retries=0), auth=self._auth(wait)
            )
        except (DCIError, UserError) as exc:
            return False, self._failure_of(exc).admin, False
        # The IBR may call back before this button returns: the test it answers
        # must already be on record, committed, for the callback to find it.
        self.last_test_transaction_id = request_id
        db_retry.commit(self.env)
        try:
            submission = client.request_txn_status(
                messages.new_id(), sender_uri=sender_uri, request_id=request_id
            )
        except DCIError as exc:
            return False, self._failure_of(exc).admin, False
        text = self.env._(
            "The IBR acknowledged our signed status request (correlation id %(corr)s). Its "
            "signed callback should now come to %(url)s; this form says when it arrives.",
            corr=submission.correlation_id or "-",
            url=sender_uri,
        )
        return True, text, request_id

    def _check_own_signature(self):
        """Our key signs, and the public key we publish verifies it; returns the key."""
        for problem in self._problem_lines(self._signing_problems()):
            raise UserError(problem)
        key = self._signing_key()
        header = messages.request_header("txn-status", self.our_sender_id, total_count=1)
        envelope = sign_envelope(header, {"transaction_id": messages.new_id()}, key)
        published = public_key_from_pem(self.signing_public_key, kid=self.signing_kid)
        try:
            verify_signature(
                envelope["signature"],
                envelope["header"],
                envelope["message"],
                KeySet([published]).get,
                SignaturePolicy(),
            )
        except DCIError as exc:
            raise UserError(
                self.env._(
                    "Our published public key does not verify our own signature (%(reason)s): "
                    "rotate the signing key with Rotate Signing Key",
                    reason=exc.message,
                )
            ) from None
        return key

    @api.model
    def _note_test_callback(self, transaction_id, sender):
        """Record that the IBR's signed callback to a connection test arrived.

        Called by the callback service with a verified txn-on-status callback's
        transaction id (``None`` for a bare rejection, which names none: the
        latest test of that sender still waiting within its stale delay then
        takes it). True when it answered a test: nothing else is to be done with it.
        """
        tests = self.sudo().with_context(active_test=False)
        domain = [("ibr_sender_id", "=", sender.id)]
        if transaction_id:
            test = tests.search(domain + [("last_test_transaction_id", "=", transaction_id)])
        else:
            waiting = tests.search(
                domain
                + [
                    ("last_test_transaction_id", "!=", False),
                    ("last_test_callback_at", "=", False),
                ],
                order="last_test_at desc",
            )
            now = fields.Datetime.now()
            test = waiting.filtered(
                lambda c: c.last_test_at >= now - timedelta(minutes=c.stale_after_minutes)
            )[:1]
        if not test:
            return False
        first = test.filtered(lambda c: not c.last_test_callback_at)  # a repeat changes nothing
        first.write({"last_test_callback_at": fields.Datetime.now()})
        return True


def _reason(exc):
    """The text of a UserError or core error."""
    return exc.message if isinstance(exc, DCIError) else str(exc.args[0] if exc.args else exc)
