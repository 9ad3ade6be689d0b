#!/usr/bin/env bash
# Partner-endpoint benchmark (not CI): serves the same signed document from
# Spalding's partner-info server and from nginx, both over TLS on loopback
# with the same certificate, loads each with wrk and prints requests/s and
# the ratio. Needs nginx and wrk (apt-get install -y nginx wrk).
#
#   benches/partner-endpoint.sh [seconds] [connections] [threads]
set -euo pipefail

DURATION="${1:-10}"
CONNECTIONS="${2:-64}"
THREADS="${3:-2}"
SPALDING_PORT=18443
NGINX_PORT=18444
VC=bench

command -v nginx >/dev/null || { echo "nginx not installed (apt-get install -y nginx)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install -y wrk)" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
SPALDING_PID=""
cleanup() {
    [ -n "$SPALDING_PID" ] && kill "$SPALDING_PID" 2>/dev/null || true
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p spalding-bin --manifest-path "$ROOT/Cargo.toml"
"$ROOT/target/release/spalding" serve-document --listen "127.0.0.1:$SPALDING_PORT" \
    --virtual-cloud "$VC" --write-dir "$WORK" &
SPALDING_PID=$!
for _ in $(seq 50); do [ -f "$WORK/document.json" ] && break; sleep 0.1; done
sleep 0.5

mkdir -p "$WORK/html/v1/virtual-clouds"
# nginx workers run unprivileged: let them read the served tree (the key is read by the master).
chmod 755 "$WORK"
cp "$WORK/document.json" "$WORK/html/v1/virtual-clouds/$VC"
chmod -R a+rX "$WORK/html"
cat > "$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl http2;  # nginx 1.22 (Debian 12) syntax
        ssl_certificate $WORK/tls.crt;
        ssl_certificate_key $WORK/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $WORK/html;
        location /v1/virtual-clouds/ { default_type application/json; }
    }
}
CONF
mkdir -p "$WORK/tmp"
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.5

# Both must serve the same bytes.
curl -sk "https://127.0.0.1:$SPALDING_PORT/v1/virtual-clouds/$VC" > "$WORK/a.json"
curl -sk "https://127.0.0.1:$NGINX_PORT/v1/virtual-clouds/$VC" > "$WORK/b.json"
cmp -s "$WORK/a.json" "$WORK/b.json" || { echo "the two servers serve different documents" >&2; head -c 300 "$WORK/b.json" >&2; exit 1; }

rps() {
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
SPALDING_RPS=$(rps "https://127.0.0.1:$SPALDING_PORT/v1/virtual-clouds/$VC")
NGINX_RPS=$(rps "https://127.0.0.1:$NGINX_PORT/v1/virtual-clouds/$VC")
echo "document: $(wc -c < "$WORK/a.json") bytes; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s (HTTP/1.1 keep-alive over TLS)"
echo "spalding: $SPALDING_RPS requests/s"
echo "nginx:    $NGINX_RPS requests/s"
awk -v s="$SPALDING_RPS" -v n="$NGINX_RPS" 'BEGIN { printf "ratio spalding/nginx: %.2f\n", s / n }'
