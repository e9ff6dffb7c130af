"""Stage 1: timestamps and event ids, including the per-millisecond cache of id prefixes."""

from __future__ import annotations

import itertools
import os
import re
import uuid

from llm_audit_log.context import format_timestamp, new_event_id, stamp


def _random_part(event_id: str) -> str:
    """The per-process random fields of an id (between the time and the counter)."""
    return event_id[15:28]


class TestStamp:
    def test_ids_in_one_millisecond_are_unique_and_ordered(self):
        """Many records in the same millisecond share the id prefix; the counter orders them."""
        created = 1_790_000_000.123456
        ids = [stamp(created)[1] for _ in range(1_000)]
        assert len(set(ids)) == 1_000
        assert all(uuid.UUID(i).version == 7 for i in ids)
        counters = [int(i[-8:], 16) for i in ids]
        assert all((b - a) % 2**32 == 1 for a, b in itertools.pairwise(counters))

    def test_next_millisecond_changes_the_time_field(self):
        first = stamp(1_790_000_000.123456)[1]
        second = stamp(1_790_000_000.124456)[1]
        assert (uuid.UUID(second).int >> 80) - (uuid.UUID(first).int >> 80) == 1

    def test_timestamp_is_utc_iso_8601_with_microseconds(self):
        assert "2026-09-21T18:13:20.123456Z" == stamp(1_790_014_400.123456)[0][:27]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp(0.5)[0])

    def test_timestamp_agrees_with_format_timestamp_across_seconds(self):
        for created in (1_790_000_000.999999, 1_790_000_001.0, 1_790_000_001.000001,
                        1_700_000_000.5):
            assert format_timestamp(created) == stamp(created)[0]

    def test_forked_child_in_the_same_millisecond_gets_its_own_random_part(self):
        """The cached prefix holds the parent's random bits: a child must not reuse it."""
        created = 1_790_000_000.123456
        parent_id = stamp(created)[1]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, stamp(created)[1].encode())
            finally:
                os._exit(0)
        os.close(write)
        child_id = os.read(read, 100).decode()
        os.close(read)
        os.waitpid(pid, 0)
        assert uuid.UUID(child_id).version == 7
        assert child_id[:14] == parent_id[:14]  # same millisecond
        assert _random_part(child_id) != _random_part(parent_id)

    def test_new_event_id_uses_the_same_layout(self):
        event_id = new_event_id(1_790_000_000.123456)
        assert uuid.UUID(event_id).int >> 80 == 1_790_000_000_123
        assert _random_part(event_id) == _random_part(stamp(1_790_000_000.2)[1])
