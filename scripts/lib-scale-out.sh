# Sourced by scripts/scale-out.sh and scripts/bench-server.sh: a throwaway PostgreSQL
# cluster, N `cloudbase-auth serve --database …` instances sharing one data dir (the
# signing key), and Debian's nginx round-robin in front. Every wait is bounded; the
# caller's EXIT trap calls so_cleanup, which stops everything started here.
#
# Needs: /usr/lib/postgresql/*/bin (Debian's postgresql) and nginx (scripts/setup.sh).

SO_PIDS=()
SO_PG_DIR=""
SO_NGINX_DIR=""
SO_PG_BIN=""
SO_AS_PG=()

so_say() { printf 'scale-out: %s\n' "$*" >&2; }
so_die() { printf 'scale-out: ERROR: %s\n' "$*" >&2; exit 1; }

# A free TCP port on loopback.
so_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# so_pg_start FSYNC: initdb + pg_ctl start on a free loopback port (socket in its dir),
# as the postgres user when run as root. Sets SO_PG_PORT and SO_PG_URL_BASE.
so_pg_start() {
  local fsync=${1:-on}
  SO_PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
  [ -x "$SO_PG_BIN/initdb" ] || so_die "PostgreSQL is not installed (run scripts/setup.sh)"
  SO_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cloudbase-auth-pg-XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$SO_PG_DIR"
    SO_AS_PG=(runuser -u postgres --)
  fi
  SO_PG_PORT=$(so_free_port)
  "${SO_AS_PG[@]}" "$SO_PG_BIN/initdb" -D "$SO_PG_DIR/data" -U postgres --auth=trust -E UTF8 \
    --no-sync >"$SO_PG_DIR/initdb.log" 2>&1 || so_die "initdb failed: $(cat "$SO_PG_DIR/initdb.log")"
  "${SO_AS_PG[@]}" "$SO_PG_BIN/pg_ctl" -D "$SO_PG_DIR/data" -l "$SO_PG_DIR/server.log" -w -t 60 \
    -o "-p $SO_PG_PORT -k $SO_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=200" \
    start >/dev/null || so_die "PostgreSQL did not start: $(tail -20 "$SO_PG_DIR/server.log")"
  SO_PG_URL_BASE="postgres://postgres@127.0.0.1:$SO_PG_PORT"
  so_say "PostgreSQL on 127.0.0.1:$SO_PG_PORT (fsync=$fsync)"
}

# so_pg_createdb NAME: prints the database's URL.
so_pg_createdb() {
  "$SO_PG_BIN/psql" -X -q -h 127.0.0.1 -p "$SO_PG_PORT" -U postgres -d postgres \
    -c "CREATE DATABASE $1" >/dev/null || so_die "CREATE DATABASE $1 failed"
  echo "$SO_PG_URL_BASE/$1"
}

# so_instances N BIN DATABASE_URL DATA_DIR LOG_PREFIX [SERVE_ARGS...]: starts N instances
# on 127.0.0.1:0, one after another (the first creates the shared signing key);
# fills SO_ADDRS and SO_INSTANCE_PIDS.
SO_ADDRS=()
SO_INSTANCE_PIDS=()
so_instances() {
  local n=$1 bin=$2 url=$3 data=$4 logs=$5 i addr pid
  shift 5
  for i in $(seq 1 "$n"); do
    # Created here: the background process opens them only once it runs.
    : >"$logs-$i.out"
    : >"$logs-$i.err"
    setsid "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" --database "$url" "$@" \
      >"$logs-$i.out" 2>"$logs-$i.err" &
    pid=$!
    SO_PIDS+=("$pid")
    SO_INSTANCE_PIDS+=("$pid")
    addr=""
    for _ in $(seq 1 300); do
      addr=$(awk 'sub(/^cloudbase-auth listening on http:\/\//, "") { print; exit }' "$logs-$i.out")
      [ -n "$addr" ] && break
      kill -0 "$pid" 2>/dev/null || so_die "instance $i exited: $(cat "$logs-$i.err")"
      sleep 0.1
    done
    [ -n "$addr" ] || so_die "instance $i printed no address within 30 s"
    SO_ADDRS+=("$addr")
  done
  so_say "$n instances: ${SO_ADDRS[*]}"
}

# so_nginx ADDR...: nginx round-robin over the addresses on a free loopback port (config,
# pid, logs and temp files in a temp dir, daemon off). Sets SO_NGINX_PORT.
so_nginx() {
  local nginx servers="" a user=""
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$nginx" ] || so_die "nginx is not installed (run scripts/setup.sh)"
  SO_NGINX_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cloudbase-auth-nginx-XXXXXX")
  SO_NGINX_PORT=$(so_free_port)
  for a in "$@"; do servers+="    server $a max_fails=0;"$'\n'; done
  # As root, the workers would switch to `nobody`, who cannot use the temp dir.
  [ "$(id -u)" = 0 ] && user="user root;"
  cat >"$SO_NGINX_DIR/nginx.conf" <<EOF
$user
daemon off;
worker_processes 2;
pid $SO_NGINX_DIR/nginx.pid;
error_log $SO_NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $SO_NGINX_DIR/body;
  proxy_temp_path $SO_NGINX_DIR/proxy;
  fastcgi_temp_path $SO_NGINX_DIR/fastcgi;
  uwsgi_temp_path $SO_NGINX_DIR/uwsgi;
  scgi_temp_path $SO_NGINX_DIR/scgi;
  upstream auth {
$servers    keepalive 64;
  }
  server {
    listen 127.0.0.1:$SO_NGINX_PORT;
    location / {
      proxy_pass http://auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
    }
  }
}
EOF
  setsid "$nginx" -p "$SO_NGINX_DIR" -c "$SO_NGINX_DIR/nginx.conf" 2>"$SO_NGINX_DIR/stderr.log" &
  SO_PIDS+=("$!")
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$SO_NGINX_PORT/healthz" && break
    sleep 0.1
  done
  curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$SO_NGINX_PORT/healthz" ||
    so_die "nginx did not answer: $(cat "$SO_NGINX_DIR/stderr.log" "$SO_NGINX_DIR/error.log" 2>/dev/null)"
  so_say "nginx on 127.0.0.1:$SO_NGINX_PORT"
}

# Stops every process started here (process groups: setsid), then PostgreSQL, and
# removes the temp dirs.
so_cleanup() {
  local pid
  for pid in "${SO_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${SO_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${SO_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  SO_PIDS=()
  if [ -n "$SO_PG_DIR" ] && [ -d "$SO_PG_DIR/data" ]; then
    "${SO_AS_PG[@]}" "$SO_PG_BIN/pg_ctl" -D "$SO_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -z "$SO_PG_DIR" ] || rm -rf "$SO_PG_DIR"
  [ -z "$SO_NGINX_DIR" ] || rm -rf "$SO_NGINX_DIR"
  SO_PG_DIR=""
  SO_NGINX_DIR=""
}
