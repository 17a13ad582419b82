#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with trust auth for the
# `postgres` user, as the test suites expect. Does nothing when a server
# already answers. Otherwise it starts the installed cluster, or installs
# PostgreSQL 15 from Debian's packages, creates a cluster listening on
# 127.0.0.1 only, and starts it. Installing needs root (or sudo).
set -euo pipefail

PORT=5432
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
ready() { pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; }

if command -v pg_isready >/dev/null && ready; then
    exit 0
fi

configure=no
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres.sh: installing PostgreSQL 15 from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq postgresql-15 >/dev/null
    configure=yes
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters --no-header 2>/dev/null | grep -q "^$version \+main "; then
    as_root pg_createcluster "$version" main >/dev/null
    configure=yes
fi
if [ "$configure" = yes ]; then
    conf=/etc/postgresql/$version/main
    # Loopback only; trust there, as on the development machines.
    echo "listen_addresses = '127.0.0.1'" | as_root tee "$conf/conf.d/coffer-tests.conf" >/dev/null
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
fi
as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 60); do
    if ready; then
        exit 0
    fi
    sleep 0.5
done
echo "postgres.sh: PostgreSQL did not come up on 127.0.0.1:$PORT" >&2
exit 1
