"""What an IBR answer means for a duplicate check.

IBR records come in the spec's ``Beneficiary`` shape (``member`` with
``demographic_info.person`` and ``programme_identifier``) or in simpler
shapes real IBRs use (``programs[]``, ``enrollments[]``). This module reads
all of them and classifies an answer as no / possible / confirmed match.

Records come from a trusted IBR but may be sloppy: a member of an unexpected
type is read as absent, never a crash. An item that cannot be read (a
``succ`` without ``data.reg_records``, impossible pagination) raises an
:class:`~dci.errors.EnvelopeError` for that item alone: it must fail with a
reason, never read as No Match.
"""

from dataclasses import dataclass, field

from .errors import EnvelopeError

__all__ = [
    "CONFIRMED_MATCH",
    "NO_MATCH",
    "POSSIBLE_MATCH",
    "Enrolment",
    "Interpretation",
    "ItemOutcome",
    "classify",
    "interpret_item",
    "record_enrolments",
    "record_identifiers",
]

NO_MATCH = "no_match"
POSSIBLE_MATCH = "possible_match"
CONFIRMED_MATCH = "confirmed_match"
_RANK = {NO_MATCH: 0, POSSIBLE_MATCH: 1, CONFIRMED_MATCH: 2}
ACTIVE_STATUSES = frozenset({"active", "enrolled", "enroled", "ongoing", "current"})


@dataclass(frozen=True)
class Enrolment:
    programme: str
    active: bool


@dataclass(frozen=True)
class Interpretation:
    result: str
    programmes: tuple = ()
    record_count: int = 0

    def merge(self, other):
        """Combine pages of one answer: strongest result, programmes in order seen."""
        result = max(self.result, other.result, key=_RANK.__getitem__)
        programmes = tuple(dict.fromkeys(self.programmes + other.programmes))
        return Interpretation(result, programmes, self.record_count + other.record_count)


@dataclass(frozen=True)
class ItemOutcome:
    """One ``search_response`` item, read."""

    reference_id: str
    status: str  # succ, rjct, pdng or rcvd
    interpretation: Interpretation | None = None
    reason_code: str | None = None
    reason_message: str | None = None
    more_pages: bool = False
    total_pages: int = 1  # pages the whole answer has (pages may arrive in any order)
    extra: dict = field(default_factory=dict)


def _text(value):
    """A scalar as stripped text; anything else (objects, lists, booleans) as ``""``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return str(value).strip()


def _object(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def record_identifiers(record):
    """``{(type, value)}`` of a record, types upper-cased for comparison."""
    record = _object(record)
    member = _object(record.get("member"))
    person = _object(_object(member.get("demographic_info")).get("person"))
    found = set()
    for holder in (person, member, record):
        if _text(holder.get("identifier_value")):
            found.add(
                (_text(holder.get("identifier_type")).upper(), _text(holder["identifier_value"]))
            )
    for ident in _list(record.get("identifiers")) or _list(person.get("identifiers")):
        ident = _object(ident)
        if _text(ident.get("value")):
            found.add(
                (
                    _text(ident.get("type") or ident.get("identifier_type")).upper(),
                    _text(ident["value"]),
                )
            )
    return found


def _programme_name(value):
    if isinstance(value, dict):
        programme = _object(value.get("programme")) or value
        for key in (
            "programme_name",
            "program_name",
            "name",
            "programme_identifier",
            "program_id",
            "id",
            "code",
        ):
            if _text(programme.get(key)):
                return _text(programme[key])
        return ""
    return _text(value)


def _is_active(entry):
    if not isinstance(entry, dict):
        return True  # a bare programme name lists a current enrolment
    status = _text(
        entry.get("enrolment_status") or entry.get("enrollment_status") or entry.get("status")
    ).lower()
    return not status or status in ACTIVE_STATUSES


def record_enrolments(record):
    """Every programme enrolment a record mentions, in order."""
    record = _object(record)
    member = _object(record.get("member"))
    entries = []
    for source in (
        member.get("programme_identifier"),
        record.get("programme_identifier"),
        record.get("programs"),
        record.get("programmes"),
        record.get("enrollments"),
        record.get("enrolments"),
    ):
        if isinstance(source, dict):
            entries.append(source)
        elif isinstance(source, list):
            entries.extend(source)
    enrolments = []
    for entry in entries:
        name = _programme_name(entry)
        if name:
            enrolments.append(Enrolment(name, _is_active(entry)))
    return enrolments


def classify(records, identifier_type, identifier_value):
    """No records: no match. Same identifier and an active enrolment:
    confirmed. Any other record: possible match."""
    records = list(records) if isinstance(records, (list, tuple)) else []
    if not records:
        return Interpretation(NO_MATCH)
    wanted = (_text(identifier_type).upper(), _text(identifier_value))
    result = POSSIBLE_MATCH
    programmes = []
    for record in records:
        enrolments = record_enrolments(record)
        programmes.extend(e.programme for e in enrolments)
        if wanted in record_identifiers(record) and any(e.active for e in enrolments):
            result = CONFIRMED_MATCH
    return Interpretation(result, tuple(dict.fromkeys(programmes)), len(records))


def _pages(page):
    """``(more_pages, total_pages)`` of an item's pagination, refused when impossible."""
    if page is None:
        return False, 1
    if page.page_size < 1 or page.page_number < 1 or page.total_count < 0:
        raise EnvelopeError("the item's pagination is impossible")
    total_pages = max(1, -(-page.total_count // page.page_size))
    if page.page_number > total_pages:
        raise EnvelopeError(f"the item is page {page.page_number} of {total_pages}")
    return page.page_number < total_pages, total_pages


def interpret_item(item, identifier_type, identifier_value):
    """Read one :class:`~dci.schemas.SearchResponseItem` for a check's identifier.

    Returns an :class:`ItemOutcome`, or raises :class:`~dci.errors.EnvelopeError`
    saying why this item cannot be read (fail its check with that reason).
    """
    if item.status != "succ":
        return ItemOutcome(
            item.reference_id,
            item.status,
            reason_code=item.status_reason_code,
            reason_message=item.status_reason_message,
        )
    records = item.data.reg_records if item.data else None
    if not isinstance(records, list):  # "no records" must be said, not implied
        raise EnvelopeError("a succ item without data.reg_records cannot say no match")
    more, total_pages = _pages(item.pagination)
    return ItemOutcome(
        item.reference_id,
        "succ",
        classify(records, identifier_type, identifier_value),
        more_pages=more,
        total_pages=total_pages,
    )
