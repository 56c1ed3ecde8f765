#!/bin/sh
# cloud.sh: a test cloud, nginx with TLS on loopback (docs/manifest.md).
#
#   cloud.sh start DIR PORT [RATE]
#                             start (or keep) nginx serving DIR/www/cloud/
#                             at https://127.0.0.1:PORT/cloud/; with RATE
#                             (nginx limit_rate: bytes/s, suffix k or m)
#                             every answer under /cloud/ is sent at most
#                             that fast, a slow WAN for cut-through tests
#   cloud.sh stop DIR         stop the nginx started for DIR
#   cloud.sh bytes DIR SUFFIX total body bytes served for GETs of URIs
#                             ending in SUFFIX
#
# start makes, once per DIR: a CA (DIR/ca.pem, what a gateway's ca_file
# names), a server certificate for IP:127.0.0.1 and DNS:localhost signed by
# it, the web root DIR/www/cloud/ and DIR/nginx.conf with every path (pid,
# logs, temp files) under DIR.  PUT (WebDAV) is allowed under
# /cloud/reports/ only, where gateways upload their report batches.  The
# same files are also served at /cloud-norange/ with byte ranges disabled,
# so a client's handling of a 200 answer to a Range request can be tested.
# The access log, DIR/access.log, has one line per request:
#   METHOD URI STATUS BODY_BYTES_SENT RANGE
# start prints nothing on success and exits 1 with a message on failure;
# it is quick and idempotent, and so is stop.  Only loopback is used, and
# stop kills only the nginx master whose pid DIR/nginx.pid holds.
set -eu

prog=cloud.sh

die()
{
	echo "$prog: $*" >&2
	exit 1
}

usage()
{
	echo "usage: $prog start DIR PORT [RATE] | stop DIR | bytes DIR SUFFIX" >&2
	exit 2
}

# True if process $1 exists and is not a zombie (an exited daemon whose
# parent, init, has not reaped it yet).
alive()
{
	kill -0 "$1" 2>/dev/null || return 1
	[ -r "/proc/$1/stat" ] || return 0
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ "$st" != "Z" ]
}

# The pid in DIR/nginx.pid if that process is alive and is an nginx
# master started with DIR's config; else nothing.
running_pid()
{
	[ -s "$dir/nginx.pid" ] || return 0
	pid=$(cat "$dir/nginx.pid" 2>/dev/null || true)
	case "$pid" in
	''|*[!0-9]*) return 0 ;;
	esac
	alive "$pid" || return 0
	if [ -r "/proc/$pid/cmdline" ]; then
		cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
		case "$cmd" in
		*nginx*"$dir/nginx.conf"*) ;;
		*) return 0 ;;
		esac
	fi
	echo "$pid"
}

make_certs()
{
	[ -s "$dir/ca.pem" ] && [ -s "$dir/server.pem" ] &&
	    [ -s "$dir/server.key" ] && return 0
	command -v openssl >/dev/null 2>&1 ||
	    die "openssl not found (scripts/setup installs it)"
	(
		cd "$dir"
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		    -nodes -keyout ca.key -out ca.pem -days 3650 \
		    -subj "/CN=upbridge test CA" \
		    -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		    -nodes -keyout server.key -out server.csr \
		    -subj "/CN=127.0.0.1"
		printf '%s\n' \
		    "basicConstraints=critical,CA:FALSE" \
		    "keyUsage=critical,digitalSignature" \
		    "extendedKeyUsage=serverAuth" \
		    "subjectAltName=IP:127.0.0.1,DNS:localhost" > server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
		    -CAcreateserial -out server.pem -days 3650 \
		    -extfile server.ext
		rm -f server.csr server.ext ca.srl
		chmod 644 ca.pem server.pem
	) > "$dir/openssl.log" 2>&1 ||
	    die "making certificates failed: see $dir/openssl.log"
}

write_conf()
{
	user=""
	# Workers of a root master switch to "nobody" by default, which
	# could not read a private temp dir nor write the reports.
	[ "$(id -u)" -eq 0 ] && user="user root;"
	limit=""
	[ -n "$rate" ] && limit="limit_rate $rate;"
	cat > "$dir/nginx.conf.new" <<EOF
# Written by tests/e2e/cloud.sh; every path is under $dir.
$user
worker_processes 1;
daemon on;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
	worker_connections 256;
}
http {
	default_type application/octet-stream;
	types {
		application/json json;
	}
	log_format cloud '\$request_method \$uri \$status \$body_bytes_sent '
	    '\$http_range';
	access_log $dir/access.log cloud;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	sendfile on;
	keepalive_timeout 65;
	server {
		listen 127.0.0.1:$port ssl;
		server_name localhost 127.0.0.1;
		ssl_certificate $dir/server.pem;
		ssl_certificate_key $dir/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $dir/www;
		location /cloud/ {
			autoindex off;
			$limit
		}
		location /cloud/reports/ {
			dav_methods PUT;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
			client_max_body_size 16m;
		}
		location /cloud-norange/ {
			alias $dir/www/cloud/;
			max_ranges 0;
		}
		location / {
			return 404;
		}
	}
}
EOF
	mv "$dir/nginx.conf.new" "$dir/nginx.conf"
}

wait_port()
{
	i=0
	while [ $i -lt 100 ]; do
		if curl -s -o /dev/null --max-time 2 --cacert "$dir/ca.pem" \
		    "https://127.0.0.1:$port/cloud/"; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

cmd_start()
{
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ||
	    die "nginx not found: scripts/setup installs nginx-light"
	nginx=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
	case "$port" in
	''|*[!0-9]*) die "bad port '$port'" ;;
	esac
	case "$rate" in
	'') ;;
	*[!0-9kKmM]*|[!0-9]*|*[kKmM]?*) die "bad rate '$rate'" ;;
	esac
	mkdir -p "$dir/www/cloud/reports" "$dir/tmp"
	make_certs
	pid=$(running_pid)
	if [ -n "$pid" ]; then
		if [ "$(cat "$dir/port" 2>/dev/null || true)" = "$port $rate" ]; then
			wait_port || die "nginx (pid $pid) does not answer"
			return 0
		fi
		cmd_stop
	fi
	write_conf
	echo "$port $rate" > "$dir/port"
	"$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
	    > "$dir/nginx.out" 2>&1 ||
	    die "nginx failed to start: $(tail -n 3 "$dir/error.log" \
	    "$dir/nginx.out" 2>/dev/null | tr '\n' ' ')"
	if ! wait_port; then
		msg=$(tail -n 3 "$dir/error.log" 2>/dev/null | tr '\n' ' ')
		cmd_stop
		die "nginx does not answer on 127.0.0.1:$port: $msg"
	fi
}

cmd_stop()
{
	pid=$(running_pid)
	[ -n "$pid" ] || { rm -f "$dir/nginx.pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while alive "$pid"; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
		[ $i -gt 150 ] && die "nginx (pid $pid) does not exit"
		sleep 0.05
	done
	rm -f "$dir/nginx.pid"
}

cmd_bytes()
{
	[ -f "$dir/access.log" ] || { echo 0; return 0; }
	awk -v s="$suffix" '
		$1 == "GET" && length($2) >= length(s) &&
		    substr($2, length($2) - length(s) + 1) == s &&
		    $4 ~ /^[0-9]+$/ { n += $4 }
		END { printf "%d\n", n }' "$dir/access.log"
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
case "$dir" in
/*) ;;
*) dir="$(pwd)/$dir" ;;
esac
case "$cmd" in
start)
	[ $# -eq 3 ] || [ $# -eq 4 ] || usage
	port=$3
	rate=${4:-}
	mkdir -p "$dir" || die "cannot create $dir"
	dir=$(cd "$dir" && pwd -P)
	cmd_start
	;;
stop)
	[ $# -eq 2 ] || usage
	[ -d "$dir" ] || exit 0
	dir=$(cd "$dir" && pwd -P)
	cmd_stop
	;;
bytes)
	[ $# -eq 3 ] || usage
	suffix=$3
	cmd_bytes
	;;
*)
	usage
	;;
esac
exit 0
