"""OpenSPP2's service interface, kept for the modules that import it.

``IBRService(data_source, env)`` with ``check_duplication(partner)``,
``search_beneficiary(type, value)`` and ``get_enrollment_status(type, value)``,
and the ``DuplicationResult`` / ``BeneficiaryInfo`` value objects, as other
OpenSPP2 modules (a CEL symbol provider, scripts) call them. It is thin: the
connection model signs and sends (one batched, signed synchronous search),
the core verifies and interprets the answer; nothing is stored. Unlike
upstream, a failure is never turned into "no duplicate": an IBR that cannot
be reached, refuses or leaves an identifier unanswered raises a ``UserError``.

``data_source`` is an ``spp.dci.ibr.connection``. Upstream's consumers
(spp_cel_dci_bridge, spp_dci_indicators) pass an ``spp.dci.data.source`` (a
model of spp_dci): it stands for the active connection of the same base URL.
"""

import logging
from dataclasses import dataclass, field

from odoo.exceptions import UserError

from ..dci import messages
from ..dci.errors import DCIError
from ..dci.interpret import (
    NO_MATCH,
    Interpretation,
    interpret_item,
    person_name,
    record_enrolments,
)
from ..dci.interpret import record_identifiers as _record_identifiers

_logger = logging.getLogger(__name__)

__all__ = ["BeneficiaryInfo", "DuplicationResult", "IBRService"]

CONNECTION_MODEL = "spp.dci.ibr.connection"
UPSTREAM_DATA_SOURCE = "spp.dci.data.source"


@dataclass
class DuplicationResult:
    """The outcome of a duplication check: ``is_duplicate``, the programmes
    matched and the IBR's raw answers; ``result`` adds no / possible /
    confirmed match (not in upstream's dict)."""

    is_duplicate: bool = False
    matched_programs: list = None
    raw_response: object = None
    result: str = NO_MATCH

    def __post_init__(self):
        self.matched_programs = list(self.matched_programs or [])
        if self.raw_response is None:
            self.raw_response = {}

    def to_dict(self):
        """The dictionary upstream's ``check_duplication`` returns."""
        return {
            "is_duplicate": self.is_duplicate,
            "matched_programs": self.matched_programs,
            "raw_response": self.raw_response,
        }


@dataclass
class BeneficiaryInfo:
    """What an IBR knows of one beneficiary."""

    identifier_type: str
    identifier_value: str
    name: str | None = None
    programs: list = field(default=None)
    metadata: dict = field(default=None)

    def __post_init__(self):
        self.programs = list(self.programs or [])
        self.metadata = dict(self.metadata or {})

    def to_dict(self):
        return {
            "identifier_type": self.identifier_type,
            "identifier_value": self.identifier_value,
            "name": self.name,
            "programs": self.programs,
            "metadata": self.metadata,
        }


def beneficiary_match(record, reference_id=None):
    """One matched record in upstream's dictionary shape."""
    return {
        "reference_id": reference_id,
        "name": person_name(record) or None,
        "identifiers": [
            {"type": id_type, "value": value}
            for id_type, value in sorted(_record_identifiers(record))
        ],
        "programs": list(dict.fromkeys(e.programme for e in record_enrolments(record))),
        "raw_data": record,
    }


def _connection_for(data_source, env):
    """Our active connection to the IBR that upstream's ``data_source`` names (its base URL)."""
    url = (data_source.base_url or "").rstrip("/")
    connections = env[CONNECTION_MODEL].search([("base_url", "in", [url, url + "/"])])
    if not url or not connections:
        raise UserError(
            env._(
                "No active IBR connection has the base URL of data source %(name)s (%(url)s): "
                "create one in %(menu)s.",
                name=data_source.name,
                url=url or "-",
                menu="Settings > Technical > DCI > Configuration > IBR Connections",
            )
        )
    return connections[:1]


class IBRService:
    """Duplication checks and beneficiary look-ups against one IBR connection."""

    def __init__(self, data_source, env):
        if not data_source:
            raise ValueError("data_source is required")
        if getattr(data_source, "_name", None) == UPSTREAM_DATA_SOURCE:
            data_source = _connection_for(data_source, env)
        if getattr(data_source, "_name", None) != CONNECTION_MODEL:
            raise ValueError(f"data_source must be an {CONNECTION_MODEL} record")
        data_source.ensure_one()
        self.data_source = data_source
        self.env = env
        self._client = None

    @property
    def client(self):
        """The core client of the connection (signing key, auth, IBR keys)."""
        if self._client is None:
            self._client = self.data_source.with_env(self.env)._get_client()
        return self._client

    # -- upstream's public methods ------------------------------------------

    def check_duplication(self, partner):
        """Search the IBR for every identifier of ``partner`` in one signed
        message; return upstream's dict (``is_duplicate``, ``matched_programs``,
        ``raw_response``). Raises ``UserError`` when the partner has no
        identifier or any identifier could not be answered."""
        return self.check_duplication_result(partner).to_dict()

    def check_duplication_result(self, partner):
        """:meth:`check_duplication` as a :class:`DuplicationResult`."""
        if not partner:
            raise ValueError("partner is required")
        partner.ensure_one()
        identifiers = self._get_partner_identifiers(partner)
        if not identifiers:
            raise UserError(
                self.env._(
                    "Partner %(name)s has no identifiers configured. Add at least one "
                    "identifier before checking for duplicates.",
                    name=partner.display_name,
                )
            )
        answer, items = self._search(identifiers)
        merged = Interpretation(NO_MATCH)
        for (id_type, value), item in items:
            merged = merged.merge(interpret_item(item, id_type, value).interpretation)
        return DuplicationResult(
            is_duplicate=merged.result != NO_MATCH,
            matched_programs=sorted(merged.programmes),
            raw_response=[answer.raw],
            result=merged.result,
        )

    def search_beneficiary(self, identifier_type, identifier_value):
        """The records the IBR holds for one identifier, as upstream's dicts
        (``reference_id``, ``name``, ``identifiers``, ``programs``, ``raw_data``)."""
        _answer, items = self._search([(identifier_type, identifier_value)])
        matches = []
        for _pair, item in items:
            for record in item.data.reg_records if item.data else []:
                matches.append(beneficiary_match(record, item.reference_id))
        return matches

    def get_enrollment_status(self, identifier_type, identifier_value):
        """``enrolled`` (a matched record lists an active enrolment, or none
        that ended), every ``programs`` listed, and ``beneficiary_info`` of the
        first match (None without a match)."""
        matches = self.search_beneficiary(identifier_type, identifier_value)
        enrolled = False
        for match in matches:
            enrolments = record_enrolments(match["raw_data"])
            if not enrolments or any(e.active for e in enrolments):
                enrolled = True
        info = None
        if matches:
            first = matches[0]
            info = BeneficiaryInfo(
                identifier_type,
                identifier_value,
                name=first["name"],
                programs=first["programs"],
                metadata=first,
            ).to_dict()
        programs = sorted({p for match in matches for p in match["programs"]})
        return {"enrolled": enrolled, "programs": programs, "beneficiary_info": info}

    # -- helpers ------------------------------------------------------------

    def _get_partner_identifiers(self, partner):
        """The registrant's ``(type, value)`` pairs (``res.partner`` hook)."""
        return partner._get_ibr_identifiers()

    def _search(self, identifiers):
        """One signed synchronous search; ``(answer, [((type, value), item)])``
        with a ``succ`` item for every identifier, or a ``UserError``."""
        queries = [messages.SearchQuery(messages.new_id(), t, v) for t, v in identifiers]
        try:
            answer = self.client.sync_search(queries, page_size=self.data_source.page_size)
        except DCIError as exc:
            _logger.info("IBR service search failed: %s", exc.code)
            raise UserError(
                self.env._(
                    "Failed to search the IBR: %(reason)s",
                    reason=self.data_source.with_env(self.env)._failure_of(exc).officer,
                )
            ) from None
        by_reference = {item.reference_id: item for item in answer.message.search_response}
        items = []
        for query in queries:
            item = by_reference.get(query.reference_id)
            if item is None or item.status != "succ":
                reason = (
                    (item.status_reason_message or item.status_reason_code or item.status)
                    if item
                    else self.env._("no answer")
                )
                raise UserError(
                    self.env._(
                        "Failed to search the IBR for the %(type)s identifier: %(reason)s",
                        type=query.identifier_type,
                        reason=reason,
                    )
                )
            items.append(((query.identifier_type, query.identifier_value), item))
        return answer, items
