"""What a failure of a message we sent to an IBR means, in words.

The core classifies every error once (``kind``, ``transient``: see
``dci/errors.py``); this is the one table that turns a kind into the
officer's text (on the check or subscription) and the administrator's hint
(the connection test, the connection's health). Every sender of messages
(outbox, subscriptions, status requests, the service API) reads it here.
"""

from dataclasses import dataclass

from ..dci.errors import FAILURE_KINDS, DCIError


@dataclass(frozen=True)
class SendFailure:
    """A failed send, classified: ``officer`` and ``admin`` are ready to show."""

    kind: str
    transient: bool
    officer: str
    admin: str
    retry_after: float | None = None


def _texts(env):
    """kind -> (officer's text, administrator's hint); both take the same named values."""
    return {
        "unreachable": (
            # the reason says it: "the IBR cannot be reached (connection refused)",
            # "the IBR did not answer in time"
            env._("%(Reason)s."),
            env._(
                "%(Reason)s: check the IBR Base URL %(url)s and that this server may connect "
                "to it (network, firewall, DNS)."
            ),
        ),
        "ibr_error": (
            env._(
                "The IBR failed to handle the request: %(reason)s, an error on its side. If "
                "it persists, tell the IBR's operator."
            ),
            env._(
                "%(reason)s: the IBR is failing on its side; try again later or tell its operators."
            ),
        ),
        "throttled": (
            env._("The IBR asked us to slow down (%(reason)s)."),
            env._("%(reason)s: the IBR is overloaded or limits us; try again in a few minutes."),
        ),
        "unreadable": (
            env._("The IBR answered something we cannot read: %(reason)s"),
            env._(
                "The IBR's answer is not a DCI acknowledgement or answer (%(reason)s): check "
                "the IBR Base URL %(url)s (the API root, under which /registry/... is served)."
            ),
        ),
        "credentials": (
            env._(
                "The IBR did not accept our credentials (%(code)s): %(reason)s. Ask an "
                "administrator to check the connection's authentication and signing key."
            ),
            env._(
                "The IBR did not accept our credentials (%(reason)s): check the connection's "
                "Authentication tab."
            ),
        ),
        "not_trusted": (
            env._(
                "The IBR does not trust our signature or sender ID (%(code)s): %(reason)s. "
                "Ask an administrator to check the connection's signing key."
            ),
            env._(
                "The IBR refused our signature or sender ID (%(reason)s): give it our JWKS URL "
                "%(jwks)s and our sender ID %(sender)s, and have it fetch our current key %(kid)s."
            ),
        ),
        "misaddressed": (
            env._(
                "The IBR refused the request as not addressed to it (%(code)s): %(reason)s. "
                "Ask an administrator to check the connection."
            ),
            env._(
                "The IBR refused the address of the request or of its answer (%(reason)s): "
                "check the IBR Base URL %(url)s, the IBR Receiver ID and the Callback URL "
                "%(callback)s (the IBR may have to allow it)."
            ),
        ),
        "refused": (
            env._("The IBR refused the request (%(code)s): %(reason)s"),
            env._("The IBR refused the request (%(code)s): %(reason)s"),
        ),
        "answer_refused": (
            env._(
                "The IBR's answer was refused: %(reason)s (%(code)s). Ask an administrator to "
                "check the connection's trusted IBR sender and its keys."
            ),
            env._(
                "The IBR's answer could not be verified (%(reason)s): check the trusted IBR "
                "sender %(ibr_sender)s and fetch its keys again."
            ),
        ),
        "configuration": ("%(reason)s", "%(reason)s"),  # our own UserError text, already said
    }


def send_failure(env, exc, connection=None):
    """Classify ``exc`` (a ``DCIError``, or a ``UserError`` about our own
    configuration) met sending through ``connection``."""
    if not isinstance(exc, DCIError):
        reason = str(exc.args[0] if exc.args else exc)
        return SendFailure("configuration", False, reason, reason)
    kind = exc.kind if exc.kind in FAILURE_KINDS else "refused"
    officer, admin = _texts(env)[kind]
    values = {"reason": exc.message, "Reason": exc.message[:1].upper() + exc.message[1:]}
    values["code"] = exc.code
    if connection:
        values.update(
            url=connection.base_url,
            jwks=connection._our_jwks_url(),
            sender=connection.our_sender_id,
            kid=connection.signing_kid or "-",
            callback=connection.get_callback_url(),
            ibr_sender=connection.ibr_sender_id.name or "-",
        )
    else:
        values.update(url="-", jwks="-", sender="-", kid="-", callback="-", ibr_sender="-")
    return SendFailure(
        kind, exc.transient, officer % values, admin % values, getattr(exc, "retry_after", None)
    )


def covered_kinds(env):
    """The kinds the table has words for (a test compares them with the core's)."""
    return set(_texts(env))
