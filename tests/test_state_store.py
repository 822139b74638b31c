"""A state partition's RocksDB store on its own: values, the changelog position, and the order a state is read in."""

from __future__ import annotations

import random
from pathlib import Path

from streams.state.store import PartitionStore
from tables.engagement import PostEngagement, top_first


def test_a_store_keeps_its_values_and_position_and_forgets_deleted_keys(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0")
    assert store.position() == -1 and list(store.items()) == []
    store.write({"a": b"1", "b": b"2"}, position=7)
    store.write({"a": None, "c": b"3"}, position=9)
    assert dict(store.items()) == {"b": b"2", "c": b"3"} and store.position() == 9
    store.close()
    reopened = PartitionStore(tmp_path / "p0")
    assert dict(reopened.items()) == {"b": b"2", "c": b"3"} and reopened.position() == 9
    reopened.wipe()
    assert list(reopened.items()) == [] and reopened.position() == -1


def test_the_top_posts_index_follows_every_change_in_rate_views_then_post_id_order(tmp_path: Path) -> None:
    rng = random.Random(4)
    store = PartitionStore(tmp_path / "p0", top_first)
    records: dict[str, PostEngagement] = {}
    for position in range(40):
        changed = {}
        for _ in range(25):
            post_id = f"post{rng.randrange(60)}"
            views = rng.randrange(0, 30)
            record = PostEngagement(author_id="ann", views=views, likes=rng.randrange(0, views + 2), offset=position)
            records[post_id] = changed[post_id] = record
        store.write({key: record.dumps() for key, record in changed.items()}, position)
    expected = sorted(records, key=lambda key: (records[key].engagement_rate, records[key].views, key), reverse=True)
    assert [key for key, _ in store.ranked()] == expected
    assert [PostEngagement.loads(raw) for _, raw in store.ranked()] == [records[key] for key in expected]
