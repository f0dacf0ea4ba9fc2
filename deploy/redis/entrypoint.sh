#!/bin/sh
# Entrypoint of the "redis" service (docker-compose.yml), run by the official
# redis:7-alpine image's /bin/sh (busybox ash); POSIX sh only.
#
# 1. Renders the ACL file from users.acl.template: strips comments, joins
#    continued lines, and replaces each {{NAME}} with "#<sha256 of $NAME>",
#    the hashed-password form Redis accepts, so no clear-text password ever
#    reaches a file. A missing, empty, short or example ("change-me...")
#    password stops the container with a message naming the variable.
# 2. Makes the healthcheck's password (random per start unless
#    REDIS_HEALTH_PASSWORD is set) and stores it for the healthcheck.
# 3. Hands over to the image's own docker-entrypoint.sh (which drops to the
#    "redis" user) with the container's command, e.g.
#    "redis-server /usr/local/etc/redis/redis.conf".
#
# Environment (paths default to the container's layout):
#   KC_ACL_TEMPLATE  template    (/usr/local/etc/redis/users.acl.template)
#   KC_ACL_DIR       output dir  (/run/kc-redis): users.acl, health.pass
#   KC_MIN_PASSWORD_LENGTH       (16)
# "entrypoint.sh --render-only" renders and exits (the tests use it).
set -eu

KC_ACL_TEMPLATE=${KC_ACL_TEMPLATE:-/usr/local/etc/redis/users.acl.template}
KC_ACL_DIR=${KC_ACL_DIR:-/run/kc-redis}
KC_MIN_PASSWORD_LENGTH=${KC_MIN_PASSWORD_LENGTH:-16}

die() {
    echo "kc-redis-entrypoint: $*" >&2
    exit 1
}

sha256_hex() {
    printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

render_acl() {
    template=$1
    out=$2
    [ -r "$template" ] || die "ACL template $template is missing or unreadable"
    work="$out.tmp.$$"
    # Drop comments and blank lines, join lines ending in a backslash.
    awk '
        /^[ \t]*#/ { next }
        {
            line = $0
            sub(/[ \t\r]+$/, "", line)
            if (line ~ /\\$/) { sub(/\\$/, "", line); buf = buf line " "; next }
            buf = buf line
            gsub(/[ \t]+/, " ", buf); sub(/^ /, "", buf); sub(/ $/, "", buf)
            if (buf != "") print buf
            buf = ""
        }
        END {
            gsub(/[ \t]+/, " ", buf); sub(/^ /, "", buf); sub(/ $/, "", buf)
            if (buf != "") print buf
        }
    ' "$template" > "$work"

    names=$(grep -o '{{[A-Za-z_][A-Za-z0-9_]*}}' "$work" | sed 's/[{}]//g' | sort -u)
    for name in $names; do
        eval "value=\${$name:-}"
        if [ -z "$value" ]; then
            rm -f "$work"
            die "$name is not set (put it in .env; see .env.example)"
        fi
        if [ "${#value}" -lt "$KC_MIN_PASSWORD_LENGTH" ]; then
            rm -f "$work"
            die "$name is shorter than $KC_MIN_PASSWORD_LENGTH characters"
        fi
        case $value in
            change-me*|changeme*)
                rm -f "$work"
                die "$name still has the example value from .env.example" ;;
        esac
        hash=$(sha256_hex "$value")
        sed "s/{{$name}}/#$hash/g" "$work" > "$work.next"
        mv "$work.next" "$work"
    done
    if grep -q '{{' "$work"; then
        rm -f "$work"
        die "unreplaced placeholder in $template"
    fi
    if grep -q ' >' "$work"; then
        rm -f "$work"
        die "clear-text password ('>...') in $template; use a {{VARIABLE}} placeholder"
    fi
    chmod 0640 "$work"
    mv "$work" "$out"
}

umask 077
mkdir -p "$KC_ACL_DIR"

if [ -z "${REDIS_HEALTH_PASSWORD:-}" ]; then
    REDIS_HEALTH_PASSWORD=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
fi
export REDIS_HEALTH_PASSWORD
printf '%s\n' "$REDIS_HEALTH_PASSWORD" > "$KC_ACL_DIR/health.pass"
chmod 0600 "$KC_ACL_DIR/health.pass"

render_acl "$KC_ACL_TEMPLATE" "$KC_ACL_DIR/users.acl"

# The server runs as "redis" (docker-entrypoint.sh drops root): let it read
# the ACL file, and nothing else here.
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
    chgrp redis "$KC_ACL_DIR" "$KC_ACL_DIR/users.acl"
    chmod 0750 "$KC_ACL_DIR"
fi

echo "kc-redis-entrypoint: rendered $KC_ACL_DIR/users.acl ($(wc -l < "$KC_ACL_DIR/users.acl") users)" >&2

if [ "${1:-}" = "--render-only" ]; then
    exit 0
fi
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
    exec docker-entrypoint.sh "$@"
fi
exec "$@"
