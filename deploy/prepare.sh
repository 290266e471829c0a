#!/bin/sh
# Write what compose.yaml expects and git must never hold, once per installation (mode 0600):
#   deploy/site.yaml                                                 the hall (default: the sample clip, hallgrid init)
#   deploy/broker/{passwd,acl,data/}, deploy/broker/credentials/*.env   broker accounts (hallgrid broker-config)
#   deploy/postgres.env, deploy/hub-db.env                              the database password
#   deploy/hub-users.env, deploy/duty-password                          the board's duty manager and its password
# Usage: deploy/prepare.sh [SITE_FILE]   (then HALLGRID_SITE_FILE=SITE_FILE for compose; HALLGRID=path/to/hallgrid)
set -eu
cd "$(dirname "$0")"
HALLGRID=${HALLGRID:-hallgrid}
SITE=${1:-site.yaml}
umask 077
if [ "$SITE" = site.yaml ] && [ ! -f site.yaml ]; then
  "$HALLGRID" init --id demo-hall --name "Demo hall" --timezone Asia/Shanghai --camera cam1=sample://vtest.avi \
    --out site.yaml
fi
"$HALLGRID" broker-config --site "$SITE" --out broker --listen 0.0.0.0:1883
mkdir -p broker/data
if [ ! -f postgres.env ]; then
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  printf 'POSTGRES_PASSWORD=%s\n' "$password" > postgres.env
  printf 'HALLGRID_DB=postgresql+psycopg://hallgrid:%s@postgres:5432/hallgrid\n' "$password" > hub-db.env
fi
if [ ! -f hub-users.env ]; then
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
  hash=$(printf '%s\n' "$password" | "$HALLGRID" hash-password --stdin)
  # single quotes: compose takes the value as written (the hash holds '$')
  printf "HALLGRID_USERS='duty:duty_manager:%s'\n" "$hash" > hub-users.env
  printf '%s\n' "$password" > duty-password
fi
echo "ready: docker compose up --build   (board login: duty, password in deploy/duty-password;"
echo "       run compose as uid $(id -u); compose.yaml's HALLGRID_UID defaults to 1000)"
