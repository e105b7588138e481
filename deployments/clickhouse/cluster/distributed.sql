-- Distributed tables over the replicated ones, sharded by source (alerts
-- by fingerprint), so that every row of a key lives on one shard and FINAL
-- stays exact per shard. Run after iocd's migrations created the
-- replicated tables. Plain SQL that runs on 18.16 and 24.x.
-- Supported today: ONE shard with replicas (ioc-cluster.xml); iocd writes
-- to the servers in IOC_CLICKHOUSE_ADDR. Several shards would need iocd to
-- insert through these tables, which it does not do yet; dashboards can
-- already read through them.
CREATE TABLE IF NOT EXISTS ioc.events_all ON CLUSTER ioc AS ioc.events
  ENGINE = Distributed(ioc, ioc, events, cityHash64(source));
CREATE TABLE IF NOT EXISTS ioc.window_agg_all ON CLUSTER ioc AS ioc.window_agg
  ENGINE = Distributed(ioc, ioc, window_agg, cityHash64(source));
CREATE TABLE IF NOT EXISTS ioc.alerts_all ON CLUSTER ioc AS ioc.alerts
  ENGINE = Distributed(ioc, ioc, alerts, cityHash64(fingerprint));
CREATE TABLE IF NOT EXISTS ioc.rejected_all ON CLUSTER ioc AS ioc.rejected
  ENGINE = Distributed(ioc, ioc, rejected, rand());
