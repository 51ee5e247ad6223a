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
import dataclasses
import re
from dataclasses import dataclass

from .canonical import digest, matching_digest
from .errors import KeyFormatError, SignatureInvalid
from .keys import normalise_algorithm

__all__ = ["SignatureParams", "build_signing_string", "sign", "verify"]

SIGNED_HEADERS = ("(created)", "(expires)", "digest")
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([0-9]+))')
_ONE_PARAM = r'\s*[A-Za-z][A-Za-z0-9_-]*\s*=\s*(?:"[^"]*"|[0-9]+)\s*'
_PARAM_LIST = re.compile(rf"{_ONE_PARAM}(?:,{_ONE_PARAM})*")
_PREFIX = re.compile(r"^\s*signature\s*:\s*", re.IGNORECASE)
# ASCII digits only (str.isdigit() also takes "²"), and no more than a Unix
# time needs: thousands of digits would only cost int() and the clock checks.
_UNIX_TIME = re.compile(r"[0-9]{1,12}")
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
        """Read a parameter list: any order, optional ``Signature:`` prefix, bare numbers."""
        if not isinstance(value, str):
            raise SignatureInvalid("signature must be a string")
        text = _PREFIX.sub("", value.strip(), count=1)
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
        created, expires = params["created"], params["expires"]
        if not (_UNIX_TIME.fullmatch(created) and _UNIX_TIME.fullmatch(expires)):
            raise SignatureInvalid("signature created/expires are not Unix times")
        headers = tuple(params["headers"].split())
        if sorted(headers) != sorted(SIGNED_HEADERS):
            raise SignatureInvalid(
                f"signature must cover exactly {' '.join(SIGNED_HEADERS)}, "
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


def _named_algorithms(algorithm, kid):
    """The algorithm the parameter names and the one a ``sender|key|alg`` kid
    names (``None`` for other kids)."""
    try:
        declared = normalise_algorithm(algorithm)
    except KeyFormatError as exc:
        raise SignatureInvalid(exc.message) from None
    parts = kid.split("|")
    if len(parts) != 3:
        return declared, None
    try:
        return declared, normalise_algorithm(parts[2])
    except KeyFormatError:
        return declared, None


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
    return dataclasses.replace(unsigned, signature=base64.b64encode(raw).decode()).format()


def verify(value, header, message, key_lookup, policy):
    """Verify a parameter-list signature; return ``(key, digest)``.

    The key is chosen by ``kidId``; its own algorithm decides how to verify,
    and a differing ``algorithm`` parameter or kid suffix is refused.
    """
    params = SignatureParams.parse(value)
    key = key_lookup(params.kid)
    declared, kid_suffix = _named_algorithms(params.algorithm, params.kid)
    if declared != key.algorithm or kid_suffix not in (None, key.algorithm):
        raise SignatureInvalid(
            f"signature says {params.algorithm!r} but key {params.kid!r} is {key.algorithm}"
        )
    policy.check_window(int(params.created), int(params.expires))  # cheap: before any hashing
    raw = params.signature_bytes()
    content_digest = matching_digest(
        header, message, lambda candidate: key.signs(raw, build_signing_string(params, candidate))
    )
    if content_digest is None:
        raise SignatureInvalid("signature does not match the message")
    return key, content_digest
