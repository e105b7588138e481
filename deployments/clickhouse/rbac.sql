-- Least privilege for iocd on servers with SQL access control (ClickHouse
-- 20.5+, e.g. production 24.x). Run once as an administrator, with the
-- password given by your secret store, not written here:
--   clickhouse-client --param_pw="$IOC_CLICKHOUSE_PASSWORD" --queries-file rbac.sql
-- (or replace the password placeholder). 18.16 has no SQL access control:
-- use iocd-user.sh there. Not exercised by the CI server (18.16).
CREATE DATABASE IF NOT EXISTS ioc;
CREATE USER IF NOT EXISTS iocd IDENTIFIED WITH sha256_password BY 'CHANGE_ME';
-- Reads and writes of its tables, and the DDL of its own migrations.
GRANT SELECT, INSERT, CREATE TABLE, ALTER TABLE, OPTIMIZE ON ioc.* TO iocd;
-- Dashboards: read-only.
CREATE USER IF NOT EXISTS ioc_reader IDENTIFIED WITH sha256_password BY 'CHANGE_ME_TOO';
GRANT SELECT ON ioc.* TO ioc_reader;
