"""The callback route table: every receiver is made from it."""

import re
from pathlib import Path

import pytest

from dci.listener import ALL_ROUTES
from dci.routes import CALLBACK_ROUTES, route_for
from dci.schemas import SearchResponse, TxnStatusResponse

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", ["txn/on-status", "/txn/on-status", "/txn/on-status/"])
def test_a_route_is_found_by_its_path_with_or_without_slashes(path):
    route = route_for(path)
    assert (route.action, route.schema) == ("txn-on-status", TxnStatusResponse)


def test_an_unknown_path_has_no_route():
    assert route_for("on-everything") is None


def test_the_listener_serves_every_route_of_the_table():
    assert ALL_ROUTES == {
        f"/{path}": (r.action, r.schema) for r in CALLBACK_ROUTES for path in r.paths
    }
    assert ALL_ROUTES["/on-search"] == ("on-search", SearchResponse)


def test_only_search_answers_note_the_checks_they_claim():
    assert [r.path for r in CALLBACK_ROUTES if r.answers_checks] == ["on-search"]


def test_the_odoo_service_applies_every_route_of_the_table():
    service = (ROOT / "models" / "callback_service.py").read_text(encoding="utf-8")
    applied = set(re.findall(r"^    def _apply_(\w+)\(self, accepted, sender\):", service, re.M))
    assert {r.handler for r in CALLBACK_ROUTES} <= applied


@pytest.mark.parametrize(
    "path, action",
    [
        ("on-search/on-search", "on-search"),  # given the full URL, the peer appended
        ("on-subscribe/on-subscribe", "on-subscribe"),
        ("txn/on-status/on-txn-status", "txn-on-status"),
        ("on-txn-status", "txn-on-status"),  # given our base, the peer appended
    ],
)
def test_a_peer_that_appends_on_action_reaches_the_route(path, action):
    assert route_for(path).action == action


def test_aliases_never_hide_another_route():
    paths = [path for r in CALLBACK_ROUTES for path in r.paths]
    assert len(paths) == len(set(paths))
    assert route_for("notify/on-notify") is None
