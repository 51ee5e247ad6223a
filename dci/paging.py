"""One check's paged answer, assembled as its items arrive.

An IBR may split the records of one search over several ``search_response``
items (pages), send them in any order, and send one again (a retry under a
new message id). What is kept per check is bounded: one item per page
number, plus the latest item that is not a page (``pdng``, ``rcvd``,
``rjct``). An answer that claims more pages than it first announced is
refused: without that bound a peer could grow one check's stored answer
for ever.
"""

from .errors import EnvelopeError

__all__ = ["add_item", "pages_by_number", "progress"]


def _page_number(item):
    return (item.get("pagination") or {}).get("page_number", 1)


def pages_by_number(items):
    """The ``succ`` items of ``items`` (dumped answer items) by page number."""
    return {_page_number(item): item for item in items if item.get("status") == "succ"}


def add_item(items, item, total_pages=1, announced=0):
    """``items`` (the dumped items stored for a check) with ``item`` added.

    A ``succ`` page replaces a stored page of the same number; any other item
    replaces the stored non-page item. ``total_pages`` is what this item's
    pagination says; ``announced`` what the check's earlier pages said (0:
    none yet). Raises :class:`EnvelopeError` when they disagree.
    """
    if item.get("status") != "succ":
        return [kept for kept in items if kept.get("status") == "succ"] + [item]
    if announced and total_pages != announced:
        raise EnvelopeError(
            f"the answer now claims {total_pages} page(s) where it announced {announced}"
        )
    number = _page_number(item)
    if number > total_pages:
        raise EnvelopeError(f"the item is page {number} of {total_pages}")
    kept = [old for old in items if old.get("status") != "succ" or _page_number(old) != number]
    return [*kept, item]


def progress(items, total_pages):
    """``(pages received, the pages in page order once all total_pages are
    in, else None)`` of a check's stored items (pages come in any order)."""
    pages = pages_by_number(items)
    if len(pages) < total_pages:
        return len(pages), None
    return len(pages), [pages[n] for n in sorted(pages)]
