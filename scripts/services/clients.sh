#!/usr/bin/env bash
# The third-party S3 clients the cross-check tests (and the benchmark) run
# against what coffer writes: the AWS CLI, from PyPI into a virtual
# environment under COFFER_TOOLS_DIR (default ~/.cache/coffer-tools), and
# rclone, from Debian's packages (needs root or sudo); and age, the peer the
# encryption benchmark measures coffer's sealing against, from Debian's
# packages too; and unzip, which checks the zip objects of bundles (Debian's
# packages), and warcio, which checks the WARC files bundles export (PyPI,
# into the same virtual environment), and boto3, which drives the S3
# endpoint of `coffer serve` (PyPI, the same virtual environment), and schemathesis, which checks
# `coffer serve` against its OpenAPI document (PyPI, into a virtual
# environment of its own: its pins differ from the AWS CLI's); and Debian's
# chromium with playwright-core (npm, under COFFER_TOOLS_DIR/playwright),
# which drive the web pages of `coffer serve` headless; and wrk (Debian),
# the load tool of the benchmark's server group. Does nothing
# for a client that is installed already.
set -euo pipefail

TOOLS=${COFFER_TOOLS_DIR:-${HOME:-/root}/.cache/coffer-tools}
VENV=$TOOLS/clients-venv
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
debian_install() {
    echo "clients.sh: installing $1 from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq "$1" >/dev/null
}

if [ ! -x "$VENV/bin/aws" ]; then
    echo "clients.sh: installing the AWS CLI into $VENV" >&2
    mkdir -p "$TOOLS"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        debian_install python3-venv
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check awscli
fi
# Debian's packages, each named as its command.
for package in rclone age unzip chromium wrk; do
    command -v "$package" >/dev/null || debian_install "$package"
done
if [ ! -x "$VENV/bin/warcio" ]; then
    echo "clients.sh: installing warcio into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check warcio
fi
if ! "$VENV/bin/python" -c 'import boto3' 2>/dev/null; then
    echo "clients.sh: installing boto3 into $VENV" >&2
    # The boto3 that goes with the AWS CLI's botocore, which stays as it is.
    botocore=$("$VENV/bin/aws" --version 2>&1 | sed -n 's|.*botocore/\([0-9.]*\).*|\1|p')
    "$VENV/bin/pip" install --quiet --disable-pip-version-check boto3 "botocore==$botocore"
fi
if [ ! -x "$TOOLS/schemathesis-venv/bin/schemathesis" ]; then
    echo "clients.sh: installing schemathesis into $TOOLS/schemathesis-venv" >&2
    python3 -m venv "$TOOLS/schemathesis-venv"
    "$TOOLS/schemathesis-venv/bin/pip" install --quiet --disable-pip-version-check schemathesis
fi
if [ ! -f "$TOOLS/playwright/node_modules/playwright-core/package.json" ]; then
    echo "clients.sh: installing playwright-core from npm into $TOOLS/playwright" >&2
    mkdir -p "$TOOLS/playwright"
    (cd "$TOOLS/playwright" && npm install --silent --no-audit --no-fund playwright-core@1 >/dev/null)
fi
