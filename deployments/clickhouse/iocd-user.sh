#!/usr/bin/env bash
# Prints the users.d file of a least-privilege ClickHouse user for iocd:
# its own password (stored as SHA-256, never in clear), and access to the
# iocd database only. Works on 18.16 (users.xml profiles) and on 24.x.
#
#   IOC_CLICKHOUSE_PASSWORD=... deployments/clickhouse/iocd-user.sh \
#     > /etc/clickhouse-server/users.d/iocd.xml
#   clickhouse-client -q 'CREATE DATABASE IF NOT EXISTS ioc'   # as an admin, once
#
# then run iocd with IOC_CLICKHOUSE_USER=iocd and the same password. On
# 18.16 a user limited to one database may still run DDL inside it (iocd's
# migrations need CREATE TABLE and ALTER); servers with SQL access control
# (20.5+) can go further with rbac.sql.
set -euo pipefail
user=${IOC_CLICKHOUSE_USER:-iocd}
db=${IOC_CLICKHOUSE_DATABASE:-ioc}
if [ -z "${IOC_CLICKHOUSE_PASSWORD:-}" ]; then
  echo "iocd-user.sh: set IOC_CLICKHOUSE_PASSWORD" >&2
  exit 2
fi
case "$user$db" in *[!A-Za-z0-9_]*) echo "iocd-user.sh: user and database must be [A-Za-z0-9_]" >&2; exit 2 ;; esac
hash=$(printf '%s' "$IOC_CLICKHOUSE_PASSWORD" | sha256sum | cut -d' ' -f1)
cat <<XML
<yandex>
  <users>
    <$user>
      <password_sha256_hex>$hash</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <allow_databases><database>$db</database></allow_databases>
    </$user>
  </users>
</yandex>
XML
