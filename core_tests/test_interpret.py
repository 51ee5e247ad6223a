"""What an IBR answer means: no / possible / confirmed match, and programmes."""

import pytest

from dci.interpret import (
    CONFIRMED_MATCH,
    NO_MATCH,
    POSSIBLE_MATCH,
    Interpretation,
    classify,
    interpret_item,
    match_lines,
    merge_pages,
    person_identifier,
    person_name,
    record_enrolments,
)
from dci.schemas import SearchResponseItem
from dci.simulator.dataset import beneficiary


def test_no_records_is_no_match():
    assert classify([], "NID", "1") == Interpretation(NO_MATCH)


@pytest.mark.parametrize(
    "records,expected,programmes",
    [
        ([beneficiary("NID", "1", "Cash")], CONFIRMED_MATCH, ("Cash",)),
        ([beneficiary("nid", "1", "Cash")], CONFIRMED_MATCH, ("Cash",)),  # type case
        ([beneficiary("NID", "1", "Cash", status="Exited")], POSSIBLE_MATCH, ("Cash",)),
        ([beneficiary("NID", "1", "Cash", status="inactive")], POSSIBLE_MATCH, ("Cash",)),
        ([beneficiary("NID", "2", "Cash")], POSSIBLE_MATCH, ("Cash",)),  # other identifier
        ([beneficiary("UIN", "1", "Cash")], POSSIBLE_MATCH, ("Cash",)),  # other type
        (
            [beneficiary("NID", "1", "A", status="Exited"), beneficiary("NID", "1", "B")],
            CONFIRMED_MATCH,
            ("A", "B"),
        ),
        ([beneficiary("NID", "1", "A"), beneficiary("NID", "1", "A")], CONFIRMED_MATCH, ("A",)),
        ([{"unexpected": "shape"}], POSSIBLE_MATCH, ()),
    ],
)
def test_spec_records(records, expected, programmes):
    interpretation = classify(records, "NID", "1")
    assert (interpretation.result, interpretation.programmes) == (expected, programmes)
    assert interpretation.record_count == len(records)


@pytest.mark.parametrize(
    "record,programmes,active",
    [
        ({"programs": ["Cash", "Food"]}, ["Cash", "Food"], [True, True]),
        (
            {"programs": [{"name": "A"}, {"program_name": "B"}, {"id": "C"}, {"code": "D"}]},
            ["A", "B", "C", "D"],
            [True] * 4,
        ),
        (
            {
                "enrollments": [
                    {"program_name": "A", "status": "active"},
                    {"program_id": "P9", "status": "ended"},
                ]
            },
            ["A", "P9"],
            [True, False],
        ),
        ({"programs": [{}, "", None]}, [], []),
    ],
)
def test_other_record_shapes(record, programmes, active):
    enrolments = record_enrolments(record)
    assert [e.programme for e in enrolments] == programmes
    assert [e.active for e in enrolments] == active


def test_plain_shapes_confirm_with_identifier():
    record = {"identifiers": [{"type": "NID", "value": "1"}], "programs": ["Cash"]}
    assert classify([record], "NID", "1").result == CONFIRMED_MATCH
    assert classify([record], "NID", "2").result == POSSIBLE_MATCH


def test_merge_keeps_the_strongest_result():
    first = Interpretation(POSSIBLE_MATCH, ("A",), 1)
    second = Interpretation(CONFIRMED_MATCH, ("B", "A"), 2)
    merged = first.merge(second)
    assert merged == Interpretation(CONFIRMED_MATCH, ("A", "B"), 3)
    assert Interpretation(NO_MATCH).merge(first).result == POSSIBLE_MATCH


def _item(**fields):
    return SearchResponseItem.model_validate(
        {"reference_id": "r", "timestamp": "2027-01-01T00:00:00Z", "status": "succ", **fields}
    )


def test_interpret_item_pages_and_rejections():
    page1 = _item(
        data={"reg_records": [beneficiary("NID", "1", "A")]},
        pagination={"page_size": 1, "page_number": 1, "total_count": 2},
    )
    outcome = interpret_item(page1, "NID", "1")
    assert outcome.more_pages and outcome.interpretation.result == CONFIRMED_MATCH
    assert outcome.total_pages == 2
    page2 = _item(
        data={"reg_records": [beneficiary("NID", "1", "B")]},
        pagination={"page_size": 1, "page_number": 2, "total_count": 2},
    )
    assert not interpret_item(page2, "NID", "1").more_pages
    rejected = _item(
        status="rjct",
        status_reason_code="rjct.search_criteria.invalid",
        status_reason_message="bad query",
    )
    outcome = interpret_item(rejected, "NID", "1")
    assert (outcome.status, outcome.reason_code, outcome.interpretation) == (
        "rjct",
        "rjct.search_criteria.invalid",
        None,
    )
    assert interpret_item(_item(status="pdng"), "NID", "1").status == "pdng"
    no_records = _item(data={"reg_records": []})
    assert interpret_item(no_records, "NID", "1").interpretation.result == NO_MATCH


# -- match lines: what an officer sees of each record ------------------------------


def test_match_lines_read_the_spec_record():
    from dci.interpret import MatchLine, match_lines

    record = beneficiary(
        "NID", "1", "School Feeding", status="Exited", programme_id="P2", name="Jonas Berg"
    )
    record["member"]["programme_identifier"]["exit_date"] = "2025-01-31"
    assert match_lines([record], "nid", "1") == [
        MatchLine(
            programme_id="P2",
            programme_name="School Feeding",
            enrolment_status="Exited",
            enrolment_date="2024-02-02",
            end_date="2025-01-31",
            active=False,
            member_identifier="M-1-P2",
            person_name="Jonas Berg",
            sex="F",
            birth_date="1990-05-02",
            identifiers="NID 1",
            same_identifier=True,  # identifier types compare case-insensitively
        )
    ]


def test_match_lines_one_per_enrolment_and_one_for_a_bare_record():
    from dci.interpret import match_lines

    lines = match_lines(
        [
            {"id": "R1", "name": "Ana", "programs": [{"program_id": "P1", "name": "Cash"}, "Food"]},
            {"unexpected": "shape"},
        ],
        "NID",
        "1",
    )
    assert [(ln.member_identifier, ln.programme_id, ln.programme_name) for ln in lines] == [
        ("R1", "P1", "Cash"),
        ("R1", "", "Food"),
        ("", "", ""),
    ]
    assert [ln.active for ln in lines] == [True, True, False]
    assert lines[0].person_name == "Ana"


@pytest.mark.parametrize("records", [None, "x", [None, 3, "y"], [{"member": "no"}]])
def test_match_lines_never_crash_on_sloppy_records(records):
    from dci.interpret import match_lines

    for line in match_lines(records, "NID", "1"):
        assert not line.programme_name


def test_text_read_from_records_carries_no_nul():
    from dci.interpret import match_lines

    record = beneficiary("NID", "1", "Cash\x00 Transfer", name="Ana\x00 Li")
    [line] = match_lines([record], "NID", "1")
    assert (line.programme_name, line.person_name) == ("Cash Transfer", "Ana Li")
    assert classify([record], "NID", "1").programmes == ("Cash Transfer",)


def _person(**person):
    return {"member": {"demographic_info": {"person": person}}}


@pytest.mark.parametrize(
    "record,name",
    [
        (_person(name={"given_name": "Ana", "surname": "Lopez"}), "Ana Lopez"),
        (_person(name={"first_name": "Ana", "last_name": "Lopez"}), "Ana Lopez"),
        (_person(name={"full_name": "Ana María Lopez"}), "Ana María Lopez"),
        (_person(name="Ana Lopez"), "Ana Lopez"),
        (_person(full_name="Ana Lopez"), "Ana Lopez"),
        ({"name": "Flat Record"}, "Flat Record"),
        ({"given_name": "Ana", "family_name": "Lopez"}, "Ana Lopez"),
        ({"demographic_info": {"person": {"name": "A Member"}}}, "A Member"),  # a bare Member
        (_person(name={"given_name": ["not", "text"]}), ""),
        ("not a record", ""),
    ],
)
def test_person_name_is_read_the_same_for_every_shape(record, name):
    assert person_name(record) == name


def test_person_name_is_what_the_match_lines_show():
    record = beneficiary("NID", "1", "Cash")
    assert [line.person_name for line in match_lines([record], "NID", "1")] == [person_name(record)]


@pytest.mark.parametrize(
    "record,expected",
    [
        (_person(identifier_type="nid", identifier_value="7"), ("NID", "7")),
        (_person(identifier_type="NID", identifier_value=7), ("NID", "7")),
        ({"member": {"identifier_type": "UIN", "identifier_value": "9"}}, ("UIN", "9")),
        ({"identifier_type": "BRN", "identifier_value": "3"}, ("BRN", "3")),
        (_person(identifier_type="NID"), None),
        (_person(identifier_value="7"), None),
        ({"member": "not an object"}, None),
    ],
)
def test_person_identifier_reads_the_person_then_member_then_record(record, expected):
    assert person_identifier(record) == expected


def test_merge_pages_reads_every_page_with_the_given_reader():
    pages = [
        {
            "reference_id": "r",
            "timestamp": "2027-01-01T00:00:00Z",
            "status": "succ",
            "data": {"reg_records": [beneficiary("NID", "2", "A")]},
        },
        {
            "reference_id": "r",
            "timestamp": "2027-01-01T00:00:00Z",
            "status": "succ",
            "data": {"reg_records": [beneficiary("NID", "1", "B")]},
        },
    ]
    read = []

    def reader(item):
        read.append(item.reference_id)
        return interpret_item(item, "NID", "1")

    merged = merge_pages(pages, reader)
    assert read == ["r", "r"]
    assert (merged.result, merged.programmes, merged.record_count) == (
        CONFIRMED_MATCH,
        ("A", "B"),
        2,
    )
