#!/bin/bash
# tollgate-healthcheck [PORT] - the container's HEALTHCHECK: exits 0 when
# GET /healthz on 127.0.0.1:PORT (default 8000) answers 200, else 1. A
# draining gateway answers 503, so it reads as unhealthy. Plain bash
# (/dev/tcp), so the image needs no curl.
port=${1:-8000}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 || exit 1
IFS= read -r -t 5 status <&3 || exit 1
case $status in
"HTTP/1."?" 200 "*) exit 0 ;;
*) echo "tollgate-healthcheck: $status" >&2; exit 1 ;;
esac
