-- min_server_version: 20.1
-- Retention by TTL, on servers that have it (18.16 lacks table TTL). The
-- migration stays pending on older servers and applies after an upgrade.
ALTER TABLE rejected MODIFY TTL received_at + INTERVAL 30 DAY;
