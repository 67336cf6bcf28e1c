#!/bin/sh
# Run the live release's Caddyfile (STATE_DIR/frontend/current, written by rollout) when there is one;
# before the first rollout (a plain `docker compose up`), the Caddyfile baked into this image. Both
# serve the live release's Mini App when there is one, else the image's (see the Caddyfile).
set -eu
if [ -f /srv/frontend/current/Caddyfile ] && [ -d /srv/frontend/current/site ]; then
	exec caddy run --config /srv/frontend/current/Caddyfile --adapter caddyfile
fi
exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
