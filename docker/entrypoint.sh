#!/bin/sh
# podgen image entrypoint: writes the parts of the nginx configuration that
# come from the environment, then runs the command (nginx by default).
#
# Environment (all optional):
#   PODGEN_WORKERS        worker_processes                  (auto)
#   PODGEN_THREADS        synthesis threads per worker      (the CPUs)
#   PODGEN_THREAD_QUEUE   thread pool queue; beyond it 503  (4096)
#   PODGEN_CACHE_SIZE     L1 shared-memory cache of the node (256m)
#   PODGEN_CACHE_TTL      L1 entry lifetime                 (1h)
#   PODGEN_REDIS          host:port or unix:path: the L2 cache and the
#                         shared job queue (several nodes); unset: one node
#   PODGEN_REDIS_OPTIONS  e.g. "prefix=podgen: ttl=1d timeout=200ms"
#   PODGEN_LLM_URL        OpenAI-compatible base URL (ends before
#                         /chat/completions); unset: built-in script engine
#   PODGEN_LLM_MODEL      (gpt-4o-mini)
#   PODGEN_LLM_API_KEY    the LLM's key; passed to the workers by
#                         "env PODGEN_LLM_API_KEY;", never written to a file
#   PODGEN_LLM_OPTIONS    e.g. "timeout=60s max_concurrency=64 retries=2"
#   PODGEN_API_KEY        clients must send "Authorization: Bearer <key>"
#   PODGEN_ACCESS_LOG     access_log: a path, or off        (/dev/stdout)
#
#   PODGEN_PREFIX         nginx prefix (/srv/podgen; for trying it outside
#                         the image)
set -eu

prefix=${PODGEN_PREFIX:-/srv/podgen}
gen=$prefix/var/conf.d

# values become nginx directives: no way to end one or open a block
check() {
    case "$2" in
        *[\;\{\}\"\'\\\$\#]*)
            echo "podgen: $1 must not hold ; { } quotes \\ \$ or #: '$2'" >&2
            exit 64 ;;
    esac
}
for v in PODGEN_WORKERS PODGEN_THREADS PODGEN_THREAD_QUEUE PODGEN_CACHE_SIZE \
         PODGEN_CACHE_TTL PODGEN_REDIS PODGEN_REDIS_OPTIONS PODGEN_LLM_URL \
         PODGEN_LLM_MODEL PODGEN_LLM_OPTIONS PODGEN_ACCESS_LOG; do
    val=
    eval "val=\${$v:-}"
    check "$v" "$val"
done

cpus=$(nproc 2>/dev/null || echo 2)

mkdir -p "$gen" "$prefix/var/run" "$prefix/var/tmp" "$prefix/var/store"

{
    echo "# written by docker/entrypoint.sh at start: edits are lost"
    echo "worker_processes ${PODGEN_WORKERS:-auto};"
    echo "thread_pool default threads=${PODGEN_THREADS:-$cpus}" \
         "max_queue=${PODGEN_THREAD_QUEUE:-4096};"
    if [ -n "${PODGEN_LLM_API_KEY:-}" ]; then
        echo "env PODGEN_LLM_API_KEY;"
    fi
} > "$gen/main.conf.new"

{
    echo "# written by docker/entrypoint.sh at start: edits are lost"
    echo "access_log ${PODGEN_ACCESS_LOG:-/dev/stdout};"
    echo "podgen_cache_zone podgen_cache:${PODGEN_CACHE_SIZE:-256m}" \
         "ttl=${PODGEN_CACHE_TTL:-1h} max_entry=8m;"
    if [ -n "${PODGEN_REDIS:-}" ]; then
        echo "podgen_redis $PODGEN_REDIS ${PODGEN_REDIS_OPTIONS:-};"
    fi
    if [ -n "${PODGEN_LLM_URL:-}" ]; then
        key=
        [ -n "${PODGEN_LLM_API_KEY:-}" ] && key=api_key_env=PODGEN_LLM_API_KEY
        echo "podgen_llm $PODGEN_LLM_URL model=${PODGEN_LLM_MODEL:-gpt-4o-mini}" \
             "$key ${PODGEN_LLM_OPTIONS:-};"
        echo "podgen_llm_fallback on;"
    fi
    if [ -n "${PODGEN_API_KEY:-}" ]; then
        # read by the master at start, from its own environment
        echo "podgen_api_key env:PODGEN_API_KEY;"
    fi
} > "$gen/http.conf.new"

mv -f "$gen/main.conf.new" "$gen/main.conf"
mv -f "$gen/http.conf.new" "$gen/http.conf"

if [ $# -eq 0 ]; then
    set -- nginx -p "$prefix/" -c conf/podgen-docker.conf -g 'daemon off;'
fi
exec "$@"
