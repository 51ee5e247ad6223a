"""A check's paged answer: bounded whatever a peer sends again."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dci.errors import EnvelopeError
from dci.paging import add_item, pages_by_number, progress


def page(number, total=3, **extra):
    return {
        "reference_id": "r",
        "status": "succ",
        "pagination": {"page_size": 1, "page_number": number, "total_count": total},
        **extra,
    }


def test_a_page_sent_again_replaces_itself():
    items = add_item([], page(1, marker="first"), 3)
    items = add_item(items, page(2), 3, 3)
    items = add_item(items, page(1, marker="again"), 3, 3)
    assert len(items) == 2
    assert pages_by_number(items)[1]["marker"] == "again"


def test_a_status_item_replaces_the_previous_one_and_keeps_the_pages():
    items = add_item([], page(1), 3)
    items = add_item(items, {"reference_id": "r", "status": "pdng"})
    items = add_item(items, {"reference_id": "r", "status": "pdng"})
    assert [i["status"] for i in items] == ["succ", "pdng"]


def test_an_answer_that_grows_its_page_count_is_refused():
    items = add_item([], page(1), 3)
    with pytest.raises(EnvelopeError, match="announced 3"):
        add_item(items, page(7, total=50), 50, 3)


def test_a_page_beyond_its_own_count_is_refused():
    with pytest.raises(EnvelopeError, match="page 4 of 3"):
        add_item([], page(4), 3)


def test_a_page_without_pagination_is_page_one():
    items = add_item([], {"reference_id": "r", "status": "succ"}, 1)
    assert list(pages_by_number(items)) == [1]


@given(st.lists(st.integers(min_value=1, max_value=5), max_size=60))
def test_whatever_is_redelivered_at_most_one_item_per_page_is_kept(numbers):
    items = []
    for number in numbers:
        items = add_item(items, page(number, total=5), 5, 5 if items else 0)
    assert len(items) == len(set(numbers))
    assert sorted(pages_by_number(items)) == sorted(set(numbers))


def test_progress_counts_pages_and_orders_them_once_all_are_in():
    items = add_item(add_item([], page(3), 3), page(1), 3, 3)
    assert progress(items, 3) == (2, None)
    items = add_item(items, page(2), 3, 3)
    received, ordered = progress(items, 3)
    assert received == 3
    assert [p["pagination"]["page_number"] for p in ordered] == [1, 2, 3]


def test_progress_ignores_status_items():
    items = add_item(add_item([], page(1, total=1), 1), {"reference_id": "r", "status": "pdng"})
    assert progress(items, 1)[0] == 1
