"""The DCI HTTP-signature scheme (draft-cavage style parameter list).

The ``signature`` member of an envelope reads::

    namespace="dci", kidId="{sender}|{key}|{alg}", algorithm="ed25519",
    created="1606970629", expires="1607030629",
    headers="(created) (expires) digest", signature="<base64>"

and signs ``(created): ...\\n(expires): ...\\ndigest: ...`` where digest is
the canonical digest of header and message (see :mod:`.canonical`).
"""

import base64
import binascii
import re
from dataclasses import dataclass

from .canonical import digest, digest_candidates
from .errors import KeyFormatError, SignatureInvalid, SignatureMissing
from .keys import normalise_algorithm

__all__ = ["SignatureParams", "build_signing_string", "sign", "verify"]

SIGNED_HEADERS = ("(created)", "(expires)", "digest")
_SIGNED_HEADERS_TEXT = " ".join(SIGNED_HEADERS)
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([0-9]+))')
_ONE_PARAM = r'\s*[A-Za-z][A-Za-z0-9_-]*\s*=\s*(?:"[^"]*"|[0-9]+)\s*'
_PARAM_LIST = re.compile(rf"{_ONE_PARAM}(?:,{_ONE_PARAM})*")
_PREFIX = re.compile(r"^\s*signature\s*:\s*", re.IGNORECASE)
_UNSIGNED = {"", "unsigned-stub"}
_REQUIRED = ("algorithm", "created", "expires", "headers", "signature")


@dataclass(frozen=True)
class SignatureParams:
    """The parsed parameter list; numeric fields keep their received text."""

    kid: str
    algorithm: str
    created: str
    expires: str
    headers: tuple
    signature: str
    namespace: str = "dci"

    @classmethod
    def parse(cls, value):
        if not isinstance(value, str):
            if value is None:
                raise SignatureMissing()
            raise SignatureInvalid("signature must be a string")
        text = value.strip()
        if text in _UNSIGNED:
            raise SignatureMissing()
        if text[:9].lower() == "signature":
            text = _PREFIX.sub("", text, count=1)
        if not _PARAM_LIST.fullmatch(text):
            raise SignatureInvalid("malformed signature parameters")
        found = _PARAM.findall(text)
        params = {name: quoted or bare for name, quoted, bare in found}
        if len(params) != len(found):
            raise SignatureInvalid("a signature parameter appears twice")
        kid = params.get("kidId") or params.get("keyId")
        missing = [name for name in _REQUIRED if not params.get(name)]
        if missing or not kid:
            raise SignatureInvalid(f"signature lacks {', '.join(missing or ['kidId'])}")
        created, expires, headers = params["created"], params["expires"], params["headers"]
        if not (created.isdigit() and expires.isdigit()):
            raise SignatureInvalid("signature created/expires are not Unix times")
        if headers == _SIGNED_HEADERS_TEXT:  # the usual order: no sorting needed
            headers = SIGNED_HEADERS
        else:
            headers = tuple(headers.split())
            if sorted(headers) != sorted(SIGNED_HEADERS):
                raise SignatureInvalid(
                    f"signature must cover exactly {_SIGNED_HEADERS_TEXT}, "
                    f"not {params['headers']!r}"
                )
        return cls(
            kid,
            params["algorithm"],
            created,
            expires,
            headers,
            params["signature"],
            params.get("namespace", ""),
        )

    def format(self):
        return (
            f'namespace="{self.namespace}", kidId="{self.kid}", algorithm="{self.algorithm}", '
            f'created="{self.created}", expires="{self.expires}", '
            f'headers="{" ".join(self.headers)}", signature="{self.signature}"'
        )

    def signature_bytes(self):
        try:
            return base64.b64decode(self.signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("signature value is not valid base64") from None


def _kid_algorithm(kid):
    """The algorithm a ``sender|key|alg`` kid names (``None`` for other kids)."""
    parts = kid.split("|")
    if len(parts) != 3:
        return None
    try:
        return normalise_algorithm(parts[2])
    except KeyFormatError:
        return None


def build_signing_string(params, digest_value):
    values = {"(created)": params.created, "(expires)": params.expires, "digest": digest_value}
    return "\n".join(f"{name}: {values[name]}" for name in params.headers).encode()


def sign(header, message, signing_key, *, created, lifetime, namespace="dci"):
    """Return the ``signature`` member for this header and message."""
    unsigned = SignatureParams(
        kid=signing_key.kid,
        algorithm=signing_key.algorithm,
        created=str(int(created)),
        expires=str(int(created) + int(lifetime)),
        headers=SIGNED_HEADERS,
        signature="",
        namespace=namespace,
    )
    raw = signing_key.sign(build_signing_string(unsigned, digest(header, message)))
    return SignatureParams(
        **{**unsigned.__dict__, "signature": base64.b64encode(raw).decode()}
    ).format()


def verify(value, header, message, key_lookup, policy):
    """Verify a parameter-list signature; return ``(params, key, digest)``.

    The key is chosen by ``kidId``; its own algorithm decides how to verify,
    and a differing ``algorithm`` parameter or kid suffix is refused.
    """
    params = SignatureParams.parse(value)
    key = key_lookup(params.kid)
    try:
        declared = normalise_algorithm(params.algorithm)
    except KeyFormatError as exc:
        raise SignatureInvalid(exc.message) from None
    if declared != key.algorithm or _kid_algorithm(params.kid) not in (None, key.algorithm):
        raise SignatureInvalid(
            f"signature says {params.algorithm!r} but key {params.kid!r} is {key.algorithm}"
        )
    policy.check_window(int(params.created), int(params.expires))
    raw = params.signature_bytes()
    last_error = None
    for candidate in digest_candidates(header, message):
        try:
            key.verify(raw, build_signing_string(params, candidate))
            return params, key, candidate
        except SignatureInvalid as exc:
            last_error = exc
    raise last_error
