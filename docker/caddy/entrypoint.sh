#!/bin/sh
# Serve the live release's front end (STATE_DIR/frontend/current, written by rollout: its Mini App
# and its Caddyfile) when there is one; before the first rollout (a plain `docker compose up`), the
# Mini App and Caddyfile baked into this image.
set -eu
if [ -f /srv/frontend/current/Caddyfile ] && [ -d /srv/frontend/current/site ]; then
	export MINIAPP_ROOT=/srv/frontend/current/site
	exec caddy run --config /srv/frontend/current/Caddyfile --adapter caddyfile
fi
export MINIAPP_ROOT=/srv/miniapp
exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
