# SPDX-License-Identifier: AGPL-3.0-only
"""``policies/common/common_test.rego`` and the Rego semantics the port relies on."""

from __future__ import annotations

import pytest

from mas_twisted.policy._rego import UNDEFINED, as_set, compare, glob_match, merge_data, regex_match
from mas_twisted.policy.common import (
    format_requester,
    ip_in_list,
    matches_string_constraints,
    requester_banned,
    session_limits_apply,
    violation_set,
)


def test_match_literals() -> None:
    assert matches_string_constraints("literal", {"literals": ["literal"]})
    assert not matches_string_constraints("literal", {"literals": ["lit"]})


def test_match_substring() -> None:
    assert matches_string_constraints("some string", {"substrings": ["str"]})
    assert not matches_string_constraints("some string", {"substrings": ["something"]})


def test_match_regex() -> None:
    assert matches_string_constraints("some string", {"regexes": ["^some"]})
    assert not matches_string_constraints("some string", {"regexes": ["^string"]})


def test_match_prefix() -> None:
    assert matches_string_constraints("some string", {"prefixes": ["some"]})
    assert not matches_string_constraints("some string", {"prefixes": ["string"]})


def test_match_suffix() -> None:
    assert matches_string_constraints("some string", {"suffixes": ["string"]})
    assert not matches_string_constraints("some string", {"suffixes": ["some"]})


def test_no_constraints_match_nothing() -> None:
    assert not matches_string_constraints("x", UNDEFINED)
    assert not matches_string_constraints(UNDEFINED, {"literals": ["x"]})
    assert not matches_string_constraints(None, {"regexes": [".*"], "substrings": [""]})


def test_ip_in_list() -> None:
    assert ip_in_list("192.168.1.1", ["192.168.1.1"])
    assert ip_in_list("192.168.1.1", ["192.168.1.0/24"])
    assert ip_in_list("::1", ["::1"])
    assert ip_in_list("::1", ["::/64"])
    assert not ip_in_list("192.168.1.1", ["192.168.1.2/32"])
    assert not ip_in_list("192.168.1.1", ["::/0"])
    assert not ip_in_list(None, ["0.0.0.0/0"])
    assert not ip_in_list("not an ip", ["0.0.0.0/0"])


def test_requester_banned() -> None:
    assert requester_banned(
        {"ip_address": "192.168.1.1", "user_agent": "Mozilla/5.0"}, {"banned_ips": ["192.168.1.1"]}
    )
    assert requester_banned(
        {"ip_address": None, "user_agent": "Evil Client"}, {"banned_user_agents": {"substrings": ["Evil"]}}
    )
    assert not requester_banned(
        {"ip_address": "10.0.0.1", "user_agent": None}, {"banned_ips": ["192.168.1.1"]}
    )
    assert not requester_banned({"ip_address": "192.168.1.1"}, UNDEFINED)


def test_format_requester() -> None:
    assert format_requester({}) == "unknown"
    assert format_requester({"ip_address": "1.1.1.1", "user_agent": "UA"}) == "1.1.1.1 / UA"
    assert format_requester({"ip_address": "1.1.1.1"}) == "1.1.1.1"
    assert format_requester({"user_agent": "UA"}) == "UA"
    # Rego: a null field is still a value, so MAS's always-present keys print "null".
    assert format_requester({"ip_address": "1.1.1.1", "user_agent": None}) == "1.1.1.1 / null"


def test_regex_match_is_re2_like() -> None:
    assert regex_match("^[a-z]+$", "hello")
    assert not regex_match("^[a-z]+$", "hello\n")  # RE2's $ is the end of the text
    assert regex_match("ell", "hello")  # unanchored
    assert regex_match("^[$]x$", "$x")
    assert regex_match("x", 1) is None
    assert regex_match("(", "x") is None


@pytest.mark.parametrize(
    "pattern,value,expected",
    [
        ("*.element.io", "staging.element.io", True),
        ("*.element.io", "element.io", False),
        ("*.element.io", "a.b.element.io", False),
        ("**.element.io", "a.b.element.io", True),
        ("element.io", "element.io", True),
        ("elem?nt.io", "element.io", True),
        ("{a,b}.example.com", "b.example.com", True),
        ("[a-c].example.com", "d.example.com", False),
        ("[!a-c].example.com", "d.example.com", True),
    ],
)
def test_glob_match(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, ["."], value) is expected


def test_set_order_and_dedup() -> None:
    items = [{"msg": "b"}, {"msg": "a"}, {"msg": "b"}, {"code": "x", "msg": "z"}]
    assert as_set(items) == [{"code": "x", "msg": "z"}, {"msg": "a"}, {"msg": "b"}]
    assert compare(None, False) < 0 and compare(1, "1") < 0 and compare([1], {"a": 1}) < 0


def test_session_limits_apply() -> None:
    limit = {"soft_limit": 2, "hard_limit": 3}
    counts = {"session_counts": {"total": 10}}
    assert session_limits_apply(counts, {"session_limit": limit})
    assert not session_limits_apply(counts, {})
    assert not session_limits_apply(counts, {"session_limit": None})
    assert session_limits_apply(counts, {"session_limit": {**limit, "max_session_threshold": 10}})
    assert not session_limits_apply(counts, {"session_limit": {**limit, "max_session_threshold": 9}})
    assert not session_limits_apply({}, {"session_limit": {**limit, "max_session_threshold": 9}})


def test_violation_set() -> None:
    violations = violation_set([{"msg": "b"}, {"msg": "a", "code": "c"}, {"msg": "b"}])
    assert [v.to_json() for v in violations] == [{"msg": "a", "code": "c"}, {"msg": "b"}]


def test_merge_data() -> None:
    base = {"server_name": "example.com", "session_limit": None, "list": [1]}
    merged = merge_data(
        base, {"session_limit": {"soft_limit": 1}, "list": [2], "server_name": "other", "new": True}
    )
    assert merged == {"server_name": "other", "session_limit": {"soft_limit": 1}, "list": [1, 2], "new": True}
    assert merge_data({"a": 1}, {"a": None}) == {"a": None}
    with pytest.raises(ValueError, match="Cannot merge a string into a number"):
        merge_data({"a": 1}, {"a": "x"})
    with pytest.raises(ValueError, match="Cannot merge a array into a object"):
        merge_data({"a": {}}, {"a": []})
