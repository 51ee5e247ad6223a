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

from dataclasses import dataclass

from .errors import EnvelopeError
from .schemas import SearchResponseItem

__all__ = [
    "CONFIRMED_MATCH",
    "NO_MATCH",
    "POSSIBLE_MATCH",
    "RESULT_RANK",
    "Enrolment",
    "Interpretation",
    "ItemOutcome",
    "MatchLine",
    "classify",
    "interpret_item",
    "match_lines",
    "merge_pages",
    "person_identifier",
    "person_name",
    "record_enrolments",
    "record_identifiers",
]

NO_MATCH = "no_match"
POSSIBLE_MATCH = "possible_match"
CONFIRMED_MATCH = "confirmed_match"
RESULT_RANK = {NO_MATCH: 0, POSSIBLE_MATCH: 1, CONFIRMED_MATCH: 2}  # worse is higher
ACTIVE_STATUSES = frozenset({"active", "enrolled", "enroled", "ongoing", "current"})


@dataclass(frozen=True)
class Enrolment:
    programme: str
    active: bool
    programme_id: str = ""
    status: str = ""
    start_date: str = ""
    end_date: str = ""


@dataclass(frozen=True)
class Interpretation:
    result: str
    programmes: tuple = ()
    record_count: int = 0

    def merge(self, other):
        """Combine pages of one answer: strongest result, programmes in order seen."""
        result = max(self.result, other.result, key=RESULT_RANK.__getitem__)
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


def _text(value):
    """A scalar as stripped text; anything else (objects, lists, booleans) as ``""``.
    NUL characters (valid JSON, but no database stores them) are dropped."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return str(value).replace("\x00", "").strip()


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


def _first(holder, *keys):
    """The first of ``keys`` holding a scalar in ``holder``, as text."""
    for key in keys:
        if _text(holder.get(key)):
            return _text(holder[key])
    return ""


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


def _status(entry):
    return _first(_object(entry), "enrolment_status", "enrollment_status", "status")


def _is_active(entry):
    if not isinstance(entry, dict):
        return True  # a bare programme name lists a current enrolment
    status = _status(entry).lower()
    return not status or status in ACTIVE_STATUSES


def _enrolment(entry):
    """One enrolment entry read, or None when it names no programme."""
    name = _programme_name(entry)
    if not name:
        return None
    entry_object = _object(entry)
    programme = _object(entry_object.get("programme")) or entry_object
    return Enrolment(
        name,
        _is_active(entry),
        programme_id=_first(programme, "programme_identifier", "program_id", "id", "code"),
        status=_status(entry),
        start_date=_first(entry_object, "enrolment_date", "enrollment_date", "start_date"),
        end_date=_first(
            entry_object, "exit_date", "end_date", "enrolment_end_date", "enrollment_end_date"
        ),
    )


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
    return [e for e in map(_enrolment, entries) if e]


@dataclass(frozen=True)
class MatchLine:
    """One enrolment of one IBR record, as an officer reads it: the programme,
    the enrolment and the person, as the IBR gave them (all text)."""

    programme_id: str = ""
    programme_name: str = ""
    enrolment_status: str = ""
    enrolment_date: str = ""
    end_date: str = ""
    active: bool = False
    member_identifier: str = ""
    person_name: str = ""
    sex: str = ""
    birth_date: str = ""
    identifiers: str = ""  # "TYPE value" pairs, comma separated
    same_identifier: bool = False  # the record carries the searched identifier


def _member_and_person(record):
    """The ``member`` and ``demographic_info.person`` objects of a spec
    ``Beneficiary`` (a bare ``Member`` is read as its own member)."""
    record = _object(record)
    member = _object(record.get("member")) or record
    info = _object(member.get("demographic_info"))
    return member, _object(info.get("person")) or info


def _name_of(holder):
    name = holder.get("name")
    if isinstance(name, dict):
        parts = (
            _first(name, "given_name", "first_name"),
            _first(name, "second_name", "middle_name"),
            _first(name, "surname", "last_name", "family_name"),
        )
        return " ".join(p for p in parts if p) or _first(name, "full_name", "name")
    parts = (_first(holder, "given_name", "first_name"), _first(holder, "family_name", "surname"))
    return _text(name) or _first(holder, "full_name") or " ".join(p for p in parts if p)


def person_name(record):
    """The name of the person of an IBR record (spec ``Beneficiary`` or a flat
    record), or ``""``: the one reading every screen and API shows."""
    _member, person = _member_and_person(record)
    return _name_of(person) or _name_of(_object(record))


def person_identifier(record):
    """``(TYPE, value)`` the record names its person by (the person's own
    identifier, else the member's, else the record's), or ``None``."""
    member, person = _member_and_person(record)
    for holder in (person, member, _object(record)):
        value = _text(holder.get("identifier_value"))
        if value and _text(holder.get("identifier_type")):
            return _text(holder["identifier_type"]).upper(), value
    return None


def match_lines(records, identifier_type="", identifier_value=""):
    """The :class:`MatchLine` of every enrolment of ``records`` (one line for
    a record naming no programme), in the order the IBR gave them."""
    wanted = (_text(identifier_type).upper(), _text(identifier_value))
    lines = []
    for record in records if isinstance(records, (list, tuple)) else []:
        record = _object(record)
        member = _object(record.get("member"))
        person = _object(_object(member.get("demographic_info")).get("person")) or record
        identifiers = sorted(record_identifiers(record))
        who = dict(
            member_identifier=_first(member, "member_identifier") or _first(record, "id"),
            person_name=person_name(record),
            sex=_first(person, "sex", "gender"),
            birth_date=_first(person, "birth_date", "date_of_birth"),
            identifiers=", ".join(f"{t} {v}".strip() for t, v in identifiers),
            same_identifier=wanted in identifiers,
        )
        for enrolment in record_enrolments(record) or [None]:
            what = {}
            if enrolment:
                what = dict(
                    programme_id=enrolment.programme_id,
                    programme_name=enrolment.programme,
                    enrolment_status=enrolment.status,
                    enrolment_date=enrolment.start_date,
                    end_date=enrolment.end_date,
                    active=enrolment.active,
                )
            lines.append(MatchLine(**who, **what))
    return lines


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


def merge_pages(pages, read):
    """The result of a whole paged answer: every page (a dumped ``succ``
    item, in page order) read by ``read(item) -> ItemOutcome`` and merged."""
    merged = Interpretation(NO_MATCH)
    for page in pages:
        merged = merged.merge(read(SearchResponseItem.model_validate(page)).interpretation)
    return merged
