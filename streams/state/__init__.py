"""Stream state: per-partition folds into RocksDB, changelogged and committed with their source offsets in one
Kafka transaction (``streams.state.engine``)."""
