"""One partition of one state on local disk: a RocksDB database of its values and the changelog offset they include.

The store only ever holds what a committed transaction put in the changelog: the engine writes it
after the commit, in one write batch with the changelog position. A state that is read in an order
(the top posts) keeps an index beside its values, in the same write batches: one key per value,
made by the state's ``rank``, whose byte order is the order readers want. So on start a store is at or
behind its changelog, never ahead, unless the changelog itself was deleted and made again, which
``restore`` detects.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import cast

from rocksdict import Options, Rdict, WriteBatch

#: Values live under VALUE, their index under INDEX, the changelog position under POSITION, which sorts first.
VALUE = b"v/"
INDEX = b"i/"
POSITION = b"\x00position"

#: A value's place in its state's order, from its key and its stored bytes; lower bytes come first.
Rank = Callable[[str, bytes], bytes]


class PartitionStore:
    """A state partition's RocksDB database: values by key, and the offset of the last changelog record they include."""

    def __init__(self, path: Path, rank: Rank | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rank = rank
        self.db = Rdict(str(path), Options(raw_mode=True))

    def get(self, key: str) -> bytes | None:
        return cast(bytes | None, self.db.get(VALUE + key.encode()))

    def items(self) -> Iterator[tuple[str, bytes]]:
        for key, value in cast(Iterator[tuple[bytes, bytes]], self.db.items(from_key=VALUE)):
            if not key.startswith(VALUE):
                return
            yield key[len(VALUE):].decode(), value

    def ranked(self) -> Iterator[tuple[str, bytes]]:
        """Keys and values in the order of the state's ``rank``, best first."""
        for index, key in cast(Iterator[tuple[bytes, bytes]], self.db.items(from_key=INDEX)):
            if not index.startswith(INDEX):
                return
            value = cast(bytes | None, self.db.get(VALUE + key))
            if value is not None:
                yield key.decode(), value

    def estimated_keys(self) -> int:
        """RocksDB's estimate of the keys held, the position among them: cheap, for metrics."""
        return max(0, cast(int, self.db.property_int_value("rocksdb.estimate-num-keys")) - 1)

    def position(self) -> int:
        """The offset of the last changelog record the values include; -1 for none."""
        stored = cast(bytes | None, self.db.get(POSITION))
        return -1 if stored is None else int(stored)

    def write(self, values: Mapping[str, bytes | None], position: int) -> None:
        """Put (None: delete) ``values`` and move the position to ``position``, atomically."""
        batch = WriteBatch(raw_mode=True)
        for key, value in values.items():
            stored_key = key.encode()
            if self.rank is not None:
                old = cast(bytes | None, self.db.get(VALUE + stored_key))
                if old is not None:
                    batch.delete(INDEX + self.rank(key, old))
                if value is not None:
                    batch.put(INDEX + self.rank(key, value), stored_key)
            if value is None:
                batch.delete(VALUE + stored_key)
            else:
                batch.put(VALUE + stored_key, value)
        batch.put(POSITION, str(position).encode())
        self.db.write(batch)

    def close(self) -> None:
        self.db.close()

    def wipe(self) -> None:
        """Close the database and delete its files: the changelog is read into an empty store instead."""
        self.db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        self.db = Rdict(str(self.path), Options(raw_mode=True))
