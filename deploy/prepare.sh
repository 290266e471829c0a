#!/bin/sh
# Write the secrets compose.yaml expects, once per installation (all ignored by git, mode 0600):
#   deploy/broker/{passwd,acl,data/}, deploy/broker/credentials/*.env   broker accounts (hallgrid broker-config)
#   deploy/postgres.env, deploy/hub-db.env                              the database password
# Usage: deploy/prepare.sh [SITE_FILE]   (default: the demo site compose.yaml mounts; HALLGRID=path/to/hallgrid)
set -eu
cd "$(dirname "$0")"
HALLGRID=${HALLGRID:-hallgrid}
SITE=${1:-../calibration/examples/demo-hall.yaml}
umask 077
"$HALLGRID" broker-config --site "$SITE" --out broker --listen 0.0.0.0:1883
mkdir -p broker/data
if [ ! -f postgres.env ]; then
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  printf 'POSTGRES_PASSWORD=%s\n' "$password" > postgres.env
  printf 'HALLGRID_DB=postgresql+psycopg://hallgrid:%s@postgres:5432/hallgrid\n' "$password" > hub-db.env
fi
echo "ready: docker compose up --build   (run it as uid $(id -u); compose.yaml's HALLGRID_UID defaults to 1000)"
