"""Pure domain rules: sanitization, the schema patterns, due dates, fault directives,
the queue message and the clock. No AWS here."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from cdk import contract
from handlers.domain import constants
from handlers.domain.clock import MonotonicUtcClock
from handlers.domain.faults import (
    FaultDirective,
    FaultKind,
    InvalidFaultDirectiveError,
    fault_injection_enabled,
    parse_fault_directive,
)
from handlers.domain.messages import (
    PoisonMessageError,
    PoisonReason,
    parse_task_message,
    task_message_body,
)
from handlers.domain.sanitize import clean_text, finish_text
from handlers.domain.tasks import (
    DESCRIPTION_PATTERN,
    PRIORITY_PATTERN,
    TITLE_PATTERN,
    Description,
    Priority,
    PriorityInput,
    Title,
    is_task_id,
    parse_due_date,
    utc_timestamp,
)

# --- shared contract ----------------------------------------------------------------------


def test_constants_mirror_the_cdk_contract() -> None:
    assert constants.FAULT_INJECTION_ENV == contract.FAULT_INJECTION_ENV
    assert constants.FAULT_INJECTION_HEADER == contract.FAULT_INJECTION_HEADER
    assert constants.MESSAGE_GROUP_ID == contract.MESSAGE_GROUP_ID


def test_body_limit_is_16_kib() -> None:
    assert constants.MAX_BODY_BYTES == 16 * 1024


# --- sanitization -------------------------------------------------------------------------


def test_title_cleaning_removes_every_control_character_and_trims() -> None:
    raw = "\u00a0 \t Weekly\x07 re\x00port\n\u3000\ufeff"
    assert clean_text(raw, keep_tab_newline=False) == "Weekly report"


def test_description_cleaning_keeps_tab_and_newline_inside() -> None:
    raw = "\n\tStep one\tthen\r\nstep two\x07 done\x1b[0m\t\n"
    assert clean_text(raw, keep_tab_newline=True) == "Step one\tthen\nstep two done[0m"


def test_lone_surrogates_are_removed() -> None:
    assert clean_text("ok\ud800 fine", keep_tab_newline=False) == "ok fine"


def test_finishing_normalizes_to_nfc_then_escapes_html() -> None:
    decomposed = unicodedata.normalize("NFD", "<b>Crème brûlée</b> & 'x' \"y\"")
    finished = finish_text(decomposed)
    assert finished == "&lt;b&gt;Crème brûlée&lt;/b&gt; &amp; &#x27;x&#x27; &quot;y&quot;"
    assert unicodedata.is_normalized("NFC", finished)


def test_nfc_composes_before_escaping() -> None:
    # "<" + COMBINING LONG SOLIDUS OVERLAY composes to U+226E; escaping first would break it.
    assert finish_text("a <\u0338 b") == "a \u226e b"


def test_trim_set_is_exactly_whitespace_plus_bom_and_controls() -> None:
    from handlers.domain.sanitize import _TRIM_CHARS

    expected = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    expected |= {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"}
    expected.add("\ufeff")
    assert set(_TRIM_CHARS) == expected


# --- the schema patterns describe the rules exactly --------------------------------------

_SPECIALS = [
    " ", "\t", "\n", "\r", "\x00", "\x07", "\x1f", "\x7f", "\x85", "\x9f", "\u00a0",
    "\u1680", "\u2000", "\u200a", "\u200b", "\u2028", "\u202f", "\u3000", "\ufeff",
    "\u0301", "é", "<", "&", "\U0001f600", "x",
]  # fmt: skip


@st.composite
def _texts_near(draw: st.DrawFn, limit: int) -> str:
    """Strings whose cleaned length is near 0 or ``limit``, with special characters
    around and inside."""
    left = draw(st.lists(st.sampled_from(_SPECIALS), max_size=4))
    length = draw(st.sampled_from([0, 1, 2, limit - 1, limit, limit + 1, limit + 2]))
    body = ["y"] * length
    for position, char in draw(
        st.lists(st.tuples(st.integers(0, length), st.sampled_from(_SPECIALS)), max_size=5)
    ):
        body.insert(position, char)
    right = draw(st.lists(st.sampled_from(_SPECIALS), max_size=4))
    return "".join(left + body + right)


def _accepts(adapter: TypeAdapter[Any], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


_TITLE = TypeAdapter(Title)
_DESCRIPTION = TypeAdapter(Description)
_PRIORITY = TypeAdapter(PriorityInput)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_texts_near(200), st.text(max_size=30)))
def test_title_pattern_matches_exactly_the_accepted_titles(value: str) -> None:
    assert (re.search(TITLE_PATTERN, value) is not None) == _accepts(_TITLE, value), repr(value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_texts_near(2000), st.text(max_size=30)))
def test_description_pattern_matches_exactly_the_accepted_descriptions(value: str) -> None:
    assert (re.search(DESCRIPTION_PATTERN, value) is not None) == _accepts(_DESCRIPTION, value), (
        repr(value[:80])
    )


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.builds(
            "".join,
            st.lists(
                st.one_of(
                    st.sampled_from(["low", "Medium", "HIGH", "hIgH", "mediu", "lowx"]),
                    st.sampled_from(_SPECIALS),
                ),
                max_size=4,
            ),
        ),
        st.text(max_size=8),
    )
)
def test_priority_pattern_matches_exactly_the_accepted_priorities(value: str) -> None:
    assert (re.search(PRIORITY_PATTERN, value) is not None) == _accepts(_PRIORITY, value)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("x" * 200, True),
        ("  " + "x" * 200 + "\t ", True),
        ("x" * 201, False),
        ("  " + "x" * 201, False),
        ("x", True),
        ("   ", False),
        ("\x07\x00", False),
        ("x" * 199 + "\x07\x07y", True),
    ],
)
def test_title_boundaries(value: str, accepted: bool) -> None:
    assert _accepts(_TITLE, value) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("d" * 2000, True), ("\n" + "d" * 2000 + "\n", True), ("d" * 2001, False)],
)
def test_description_boundaries(value: str, accepted: bool) -> None:
    assert _accepts(_DESCRIPTION, value) is accepted


@pytest.mark.parametrize(
    ("value", "expected"),
    [("low", Priority.LOW), ("Medium", Priority.MEDIUM), ("HIGH", Priority.HIGH),
     (" hIgH\n", Priority.HIGH)],
)  # fmt: skip
def test_priority_any_case(value: str, expected: Priority) -> None:
    assert _PRIORITY.validate_python(value) is expected


@pytest.mark.parametrize("value", ["urgent", "", "lo w", "\u212aow", 1, None])
def test_priority_rejects_everything_else(value: object) -> None:
    with pytest.raises(ValidationError):
        _PRIORITY.validate_python(value)


# --- due dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("2026-12-31", "2026-12-31"),
        ("2028-02-29", "2028-02-29"),
        ("2026-12-31T17:30:00Z", "2026-12-31T17:30:00Z"),
        ("2026-12-31t17:30:00z", "2026-12-31T17:30:00Z"),
        ("2026-12-31T17:30:00+02:00", "2026-12-31T17:30:00+02:00"),
        ("2026-12-31T17:30:00-00:00", "2026-12-31T17:30:00Z"),
        ("2026-12-31T17:30:00.5+05:30", "2026-12-31T17:30:00.500000+05:30"),
        ("2026-12-31T17:30:00.123456789Z", "2026-12-31T17:30:00.123456Z"),
        ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59-23:59"),
        ("0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00+01:00"),
    ],
)
def test_due_date_accepts_dates_and_zoned_date_times(raw: str, canonical: str) -> None:
    assert parse_due_date(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ("2026-02-30", "valid calendar date"),
        ("2027-02-29", "valid calendar date"),
        ("2026-12-31T17:30:00", "time zone"),
        ("2026-12-31T25:00:00Z", "valid date-time"),
        ("2026-12-31T17:30:00+24:00", "valid date-time"),
        ("next tuesday", "ISO 8601"),
        ("2026-12-31 17:30:00Z", "ISO 8601"),
        ("20261231", "ISO 8601"),
        ("2026-W53-1", "ISO 8601"),
        ("\u0662\u0660\u0662\u0666-01-01", "ISO 8601"),
        ("", "ISO 8601"),
    ],
)
def test_due_date_rejects_with_a_useful_hint(raw: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_due_date(raw)


# --- fault directives ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "directive"),
    [
        ("fail-attempts=2", FaultDirective(FaultKind.FAIL, 2)),
        (" fail-attempts=1 ", FaultDirective(FaultKind.FAIL, 1)),
        ("always-fail", FaultDirective(FaultKind.FAIL, None)),
        ("timeout", FaultDirective(FaultKind.TIMEOUT, 1)),
        ("timeout-attempts=3", FaultDirective(FaultKind.TIMEOUT, 3)),
        ("crash", FaultDirective(FaultKind.CRASH, 1)),
        ("crash-attempts=2", FaultDirective(FaultKind.CRASH, 2)),
    ],
)
def test_fault_directives_parse(text: str, directive: FaultDirective) -> None:
    assert parse_fault_directive(text) == directive
    assert parse_fault_directive(str(directive)) == directive


@pytest.mark.parametrize(
    "text",
    ["", "explode", "fail-attempts", "fail-attempts=0", "fail-attempts=-1", "fail-attempts=x",
     "fail-attempts=1001", "FAIL-ATTEMPTS=1", "timeout-attempts=", "crash=1"],
)  # fmt: skip
def test_unknown_fault_directives_are_rejected(text: str) -> None:
    with pytest.raises(InvalidFaultDirectiveError):
        parse_fault_directive(text)


def test_fault_directive_applies_to_the_first_n_attempts_only() -> None:
    directive = FaultDirective(FaultKind.FAIL, 2)
    assert [directive.applies_to(n) for n in (1, 2, 3)] == [True, True, False]
    assert all(FaultDirective(FaultKind.FAIL, None).applies_to(n) for n in (1, 3, 100))


@pytest.mark.parametrize(
    ("flag", "enabled"), [("true", True), (None, False), ("false", False), ("TRUE", False),
                          ("1", False), ("", False)]
)  # fmt: skip
def test_only_the_exact_string_true_enables_fault_injection(
    flag: str | None, enabled: bool
) -> None:
    assert fault_injection_enabled(flag) is enabled


# --- the queue message ----------------------------------------------------------------------

_ITEM = {
    "task_id": "0b5e3a4e-6f1d-4a53-9d55-6c1a8e6f2a10",
    "title": "T&amp;itle ✓",
    "description": "Line one\nline two",
    "priority": "high",
    "due_date": "2026-12-31",
    "created_at": "2026-01-01T00:00:00.000001Z",
    "status": "QUEUED",
    "attempts": 0,
}


def test_message_body_is_deterministic_ascii_and_round_trips() -> None:
    body = task_message_body(_ITEM)
    assert body == task_message_body(dict(reversed(list(_ITEM.items()))))
    assert body.isascii()
    message = parse_task_message(body)
    assert message.task_id == _ITEM["task_id"]
    assert message.task.title == _ITEM["title"]
    assert message.task.priority is Priority.HIGH
    assert message.fault is None
    assert json.loads(body)["schema_version"] == constants.SCHEMA_VERSION


def test_message_carries_the_fault_only_when_the_item_has_one() -> None:
    assert "fault" not in json.loads(task_message_body(_ITEM))
    with_fault = task_message_body({**_ITEM, "fault": "fail-attempts=2"})
    assert parse_task_message(with_fault).fault == "fail-attempts=2"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{this is not json", PoisonReason.MALFORMED_JSON),
        ("[" * 100_000, PoisonReason.MALFORMED_JSON),
        ("[1, 2]", PoisonReason.SCHEMA_VIOLATION),
        ('"just a string"', PoisonReason.SCHEMA_VIOLATION),
        ('{"task_id": "x"}', PoisonReason.SCHEMA_VIOLATION),
        ('{"schema_version": 2, "task_id": "x"}', PoisonReason.UNKNOWN_SCHEMA_VERSION),
        ('{"schema_version": "1"}', PoisonReason.UNKNOWN_SCHEMA_VERSION),
        ('{"schema_version": true}', PoisonReason.UNKNOWN_SCHEMA_VERSION),
        ('{"schema_version": 1, "task_id": "not-a-uuid"}', PoisonReason.SCHEMA_VIOLATION),
    ],
)
def test_unreadable_messages_are_poison_with_a_reason(body: str, reason: PoisonReason) -> None:
    with pytest.raises(PoisonMessageError) as caught:
        parse_task_message(body)
    assert caught.value.reason is reason
    assert caught.value.detail


@pytest.mark.parametrize(
    "change",
    [
        {"priority": "urgent"},
        {"title": ""},
        {"title": 5},
        {"extra": "field"},
    ],
)
def test_schema_violations_inside_the_task_are_poison(change: dict[str, Any]) -> None:
    body = json.loads(task_message_body(_ITEM))
    body["task"].update(change)
    with pytest.raises(PoisonMessageError) as caught:
        parse_task_message(json.dumps(body))
    assert caught.value.reason is PoisonReason.SCHEMA_VIOLATION


def test_an_unknown_fault_in_a_message_is_a_schema_violation() -> None:
    body = json.loads(task_message_body(_ITEM)) | {"fault": "explode"}
    with pytest.raises(PoisonMessageError) as caught:
        parse_task_message(json.dumps(body))
    assert caught.value.reason is PoisonReason.SCHEMA_VIOLATION


# --- ids, timestamps, clock -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0b5e3a4e-6f1d-4a53-9d55-6c1a8e6f2a10", True),
        ("0B5E3A4E-6F1D-4A53-9D55-6C1A8E6F2A10", True),
        ("0b5e3a4e6f1d4a539d556c1a8e6f2a10", False),
        ("{0b5e3a4e-6f1d-4a53-9d55-6c1a8e6f2a10}", False),
        ("0b5e3a4e-6f1d-4a53-9d55-6c1a8e6f2a10\n", False),
        ("not-a-task-id", False),
    ],
)
def test_task_ids_must_be_canonical_uuids(value: str, valid: bool) -> None:
    assert is_task_id(value) is valid


def test_timestamps_are_fixed_width_utc_with_microseconds() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-03-01T12:00:00.000000Z"
    later = moment + timedelta(microseconds=1)
    assert utc_timestamp(later) > utc_timestamp(moment)


def test_clock_never_repeats_or_goes_back() -> None:
    base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    readings = iter([base, base, base - timedelta(seconds=5), base + timedelta(seconds=1)])
    clock = MonotonicUtcClock(lambda: next(readings))
    stamps = [clock.now() for _ in range(4)]
    assert stamps[:3] == [base, base + timedelta(microseconds=1), base + timedelta(microseconds=2)]
    assert stamps[3] == base + timedelta(seconds=1)


def test_the_confirm_margin_mirrors_the_cdk_config() -> None:
    from cdk import config
    from handlers.domain import submission

    assert submission.CONFIRM_MARGIN_S == config.CONFIRM_MARGIN_S
