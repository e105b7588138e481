-- iocstream tables. This file must run unchanged on ClickHouse 18.16 and
-- 24.x+: see CONTRACT.md "ClickHouse compatibility". Statements end with a
-- semicolon at the end of a line.

-- One row per accepted event. Duplicates of an id collapse under FINAL.
-- source_latest_ms is the source's latest event time when the event was
-- counted: a restart replays the same late/drop decision from it.
CREATE TABLE IF NOT EXISTS events (
    id String,
    kind String,
    type String,
    source String,
    area String,
    time DateTime('UTC'),
    time_ms UInt16,
    received_at DateTime('UTC'),
    lat Nullable(Float64),
    lon Nullable(Float64),
    metric_names Array(String),
    metric_values Array(Float64),
    attr_keys Array(String),
    attr_values Array(String),
    source_latest_ms Int64,
    stream_seq UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (source, time, id)
SETTINGS index_granularity = 8192;

-- One row per window and key; the highest version wins under FINAL.
CREATE TABLE IF NOT EXISTS window_agg (
    window_start DateTime('UTC'),
    window_size_s UInt32,
    kind String,
    type String,
    metric String,
    area String,
    source String,
    count UInt64,
    sum Float64,
    min Float64,
    max Float64,
    first Float64,
    last Float64,
    final UInt8,
    version UInt64,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_size_s, kind, type, metric, area, source, window_start)
SETTINGS index_granularity = 8192;

-- One row per rejected message; a redelivered rejection collapses under FINAL.
CREATE TABLE IF NOT EXISTS rejected (
    received_at DateTime('UTC'),
    subject String,
    stream_seq UInt64,
    reason String,
    detail String,
    payload String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (stream_seq, subject)
SETTINGS index_granularity = 8192;

-- One row per alert transition (written by the alert engine).
CREATE TABLE IF NOT EXISTS alerts (
    id String,
    fingerprint String,
    rule String,
    status String,
    severity String,
    kind String,
    type String,
    metric String,
    area String,
    source String,
    value Float64,
    threshold Float64,
    starts_at DateTime('UTC'),
    ends_at Nullable(DateTime('UTC')),
    updated_at DateTime('UTC'),
    summary String,
    seq UInt32
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(updated_at)
ORDER BY (fingerprint, id, seq)
SETTINGS index_granularity = 8192;
