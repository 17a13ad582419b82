#!/usr/bin/env bash
# Make sure a ClickHouse server answers HTTP on 127.0.0.1:8123, as the hot
# store's ClickHouse suite expects. Does nothing when something already
# answers there. Otherwise it starts Debian's clickhouse-server (18.16;
# installing it from Debian's packages first if missing, which needs root or
# sudo) in the background with a config of its own: listening on 127.0.0.1
# only (HTTP 8123, native protocol 9010, so it leaves 9000 free), its data
# and logs under COFFER_TOOLS_DIR (default ~/.cache/coffer-tools)/clickhouse.
set -euo pipefail

PORT=8123
TOOLS=${COFFER_TOOLS_DIR:-${HOME:-/root}/.cache/coffer-tools}
DIR=$TOOLS/clickhouse
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ready; then
    exit 0
fi

if [ ! -x /usr/sbin/clickhouse-server ]; then
    echo "clickhouse.sh: installing clickhouse-server from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq clickhouse-server >/dev/null
fi
mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas"
cat >"$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/server.log</log>
        <errorlog>$DIR/server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <http_port>$PORT</http_port>
    <tcp_port>9010</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
</yandex>
XML
nohup /usr/sbin/clickhouse-server --config-file="$DIR/config.xml" >>"$DIR/stdout.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "clickhouse.sh: ClickHouse did not come up on 127.0.0.1:$PORT (see $DIR/server.err.log)" >&2
exit 1
