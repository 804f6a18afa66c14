"""The error boundary's mapping and the JSON rendering of record bytes."""

from __future__ import annotations

import typer

from eventyard.cli.output import (
    InputError,
    describe_failure,
    plural,
    render_bytes,
    render_value,
)
from eventyard.errors import (
    CorruptRecordError,
    DataDirLockedError,
    DiskFullError,
    InvalidConfigError,
    LogCorruptionError,
    NonEmptyGroupError,
    TopicExistsError,
    UnknownTopicError,
)


def test_user_mistakes_exit_2_with_the_message() -> None:
    for exc in (
        UnknownTopicError("unknown topic 'x'"),
        TopicExistsError("topic 'x' already exists"),
        InvalidConfigError("retention.ms must be an integer, got 'soon'"),
        DataDirLockedError("data directory d is locked by pid 1 on host h"),
        NonEmptyGroupError("group 'g' is Stable; stop it first"),
        InputError("stdin line 3: invalid JSON"),
    ):
        failure = describe_failure(exc)
        assert (failure.message, failure.exit_code) == (str(exc), 2)


def test_runtime_failures_exit_1() -> None:
    for exc in (
        LogCorruptionError("damage at offsets 10-20"),
        DiskFullError("no space"),
        CorruptRecordError("bad crc"),
    ):
        assert describe_failure(exc).exit_code == 1


def test_an_unexpected_exception_is_one_line_naming_its_type() -> None:
    failure = describe_failure(ValueError("first\nsecond   third"))
    assert failure.message == "internal error: ValueError: first second third"
    assert failure.exit_code == 1


def test_usage_errors_keep_their_exit_code() -> None:
    failure = describe_failure(typer.BadParameter("must be positive"))
    assert failure.exit_code == 2
    assert "must be positive" in failure.message
    assert "\n" not in failure.message


def test_an_os_error_is_a_runtime_failure_without_the_internal_label() -> None:
    failure = describe_failure(PermissionError(13, "Permission denied", "/data"))
    assert failure.message == "[Errno 13] Permission denied: '/data'"
    assert failure.exit_code == 1


def test_ctrl_c_is_130() -> None:
    assert describe_failure(KeyboardInterrupt()).exit_code == 130


def test_render_value_prefers_json_then_text_then_base64() -> None:
    assert render_value(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert render_value(b"42") == 42
    assert render_value(b"plain words") == "plain words"
    assert render_value(b"\xff\x00\x01") == {"$base64": "/wAB"}
    assert render_value(None) is None


def test_render_bytes_is_text_or_base64() -> None:
    assert render_bytes(b"L-1") == "L-1"
    assert render_bytes(b"42") == "42"
    assert render_bytes(b"\xc3\x28") == {"$base64": "wyg="}
    assert render_bytes(None) is None


def test_plural_counts_with_thousands_separators() -> None:
    assert plural(1, "event") == "1 event"
    assert plural(0, "event") == "0 events"
    assert plural(10_000, "member") == "10,000 members"
