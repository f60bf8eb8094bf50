/*
 * podgen: the jobs and the library of the fleet in Redis (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "pg_job.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_job_redis.h"


#define NGX_HTTP_PODGEN_JOBS_POLL      250      /* ms: the stream, when idle */
#define NGX_HTTP_PODGEN_JOBS_RECLAIM   "10000"  /* ms idle: the owner is dead */


/*
 * The one way a record is written: compare and set.  A record carries a
 * version, +1 on every write of its runner; the script writes ours only
 * over an older one, never over a final one (completed, failed) unless
 * ours is final too, never over a deleted job's tombstone "-", and only
 * while {prefix}epoch is the one the node knows (an empty epoch: not
 * known yet).  A podcast enters {prefix}podcasts, a completed one
 * {prefix}episodes, with the write.
 *
 *   KEYS  record, podcasts, episodes, epoch
 *   ARGV  json, id, version, final, podcast, completed, epoch
 *
 * The reply is NGX_HTTP_PODGEN_JOB_PUT_*: 0 written, 1 a newer one is
 * there, {2, record} a final one is there, -1 deleted, -2 another epoch.  The
 * status and version are the first fields the record writer puts out
 * after the id and kind, which no text of the client can precede.
 */
#define NGX_HTTP_PODGEN_JOBS_PUT_LUA                                         \
    "if ARGV[7] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[7] then "       \
    "return -2 end "                                                         \
    "local cur = redis.call('GET', KEYS[1]) "                                \
    "if cur == '-' then return -1 end "                                      \
    "if cur then "                                                           \
    "local st, v = string.match(cur, '\"status\":\"(%a+)\",\"version\":(%d+)') " \
    "local fin = (st == 'completed' or st == 'failed') "                     \
    "if fin and ARGV[4] ~= '1' then return {2, cur} end "                    \
    "if (tonumber(v) or 0) >= tonumber(ARGV[3]) then "                       \
    "if fin then return {2, cur} end return 1 end end "                      \
    "redis.call('SET', KEYS[1], ARGV[1]) "                                   \
    "if ARGV[5] == '1' then redis.call('ZADD', KEYS[2], 0, ARGV[2]) end "    \
    "if ARGV[6] == '1' then redis.call('ZADD', KEYS[3], 0, ARGV[2]) end "    \
    "return 0"

/*
 * A deleted job leaves a tombstone for a week: a copy of the record on
 * some node's disk, not yet known to the fleet, cannot bring it back.
 * 1 when there was a record (only then a tombstone: ids nobody made
 * leave nothing).
 */
#define NGX_HTTP_PODGEN_JOBS_DELETE_LUA                                      \
    "local cur = redis.call('GET', KEYS[1]) "                                \
    "redis.call('DEL', KEYS[2]) "                                            \
    "redis.call('ZREM', KEYS[3], ARGV[1]) "                                  \
    "redis.call('ZREM', KEYS[4], ARGV[1]) "                                  \
    "if cur and cur ~= '-' then "                                            \
    "redis.call('SET', KEYS[1], '-', 'EX', 604800) return 1 end return 0"

/*
 * The fleet's epoch: made by the first node that finds none.  A Redis
 * that restarted empty has none, or another one: each node then shares
 * every record of its store again.
 */
#define NGX_HTTP_PODGEN_JOBS_EPOCH_LUA                                       \
    "local e = redis.call('GET', KEYS[1]) "                                  \
    "if e then return e end "                                                \
    "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"

/* the records of the newest ids below ARGV[1]; ids without one leave */
#define NGX_HTTP_PODGEN_JOBS_LIST_LUA                                        \
    "local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', "       \
    "'LIMIT', 0, tonumber(ARGV[2])) "                                        \
    "local out = {} "                                                        \
    "for _, id in ipairs(ids) do "                                           \
    "local v = redis.call('GET', ARGV[3] .. id) "                            \
    "if v and v ~= '-' then out[#out + 1] = v "                              \
    "else redis.call('ZREM', KEYS[1], id) end "                              \
    "end return out"

/*
 * Records written before the library had its index (an upgrade) are added
 * to it once per Redis: worker 0 of a node walks {prefix}job:pod_* a SCAN
 * page per turn until {prefix}podcasts:indexed says it is done.
 */
#define NGX_HTTP_PODGEN_JOBS_INDEX_LUA                                       \
    "if redis.call('EXISTS', KEYS[3]) == 1 then return '0' end "             \
    "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], "               \
    "'COUNT', 500) "                                                         \
    "for _, k in ipairs(r[2]) do "                                           \
    "local v = redis.pcall('GET', k) "                                       \
    "if type(v) == 'string' then "                                           \
    "local ok, rec = pcall(cjson.decode, v) "                                \
    "if ok and type(rec) == 'table' and rec.kind == 'podcast' then "         \
    "local id = string.sub(k, #ARGV[3] + 1) "                                \
    "redis.call('ZADD', KEYS[1], 0, id) "                                    \
    "if rec.status == 'completed' then "                                     \
    "redis.call('ZADD', KEYS[2], 0, id) end end end end "                    \
    "if r[1] == '0' then redis.call('SET', KEYS[3], '1') end "               \
    "return r[1]"


typedef struct {
    ngx_http_podgen_job_redis_done_pt   done;
    void                               *data;
    char                                id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_queue_t;


/* a record write in flight */
typedef struct {
    ngx_http_podgen_job_put_pt          done;
    void                               *data;
    uint64_t                            version;
    char                                id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_put_t;


/* a delivered stream entry, while its record is read */
typedef struct {
    ngx_http_podgen_job_redis_take_pt   take;
    char                                entry[48];
    char                                id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_delivery_t;


/* a record, an episode or a delete in flight: found NULL is canceled */
typedef struct {
    ngx_http_podgen_job_redis_found_pt  found;
    void                               *data;
    ngx_uint_t                          episode;
    char                                id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_fetch_t;


static ngx_uint_t                    ngx_http_podgen_job_redis_indexed;
static ngx_http_podgen_redis_op_t   *ngx_http_podgen_job_redis_index_op;
static char                          ngx_http_podgen_job_redis_index_at[32];
static ngx_uint_t                    ngx_http_podgen_job_redis_group_made;
static char                          ngx_http_podgen_job_redis_consumer[128];
static ngx_http_podgen_job_redis_take_pt  ngx_http_podgen_job_redis_taker;
static void                        (*ngx_http_podgen_job_redis_turned)(
                                         ngx_msec_t next);
static char                          ngx_http_podgen_job_redis_epoch_now[32];
static ngx_uint_t                    ngx_http_podgen_job_redis_asking;
static ngx_uint_t                    ngx_http_podgen_job_redis_length_now;
static ngx_uint_t                    ngx_http_podgen_job_redis_measuring;
static ngx_uint_t                    ngx_http_podgen_job_redis_epoch_confirmed;
static ngx_http_podgen_job_redis_epoch_pt
                                     ngx_http_podgen_job_redis_epoch_handler;


void
ngx_http_podgen_job_redis_init(ngx_cycle_t *cycle)
{
    ngx_snprintf((u_char *) ngx_http_podgen_job_redis_consumer,
                 sizeof(ngx_http_podgen_job_redis_consumer) - 1, "%V:%P:%M%Z",
                 &cycle->hostname, ngx_pid, ngx_current_msec);

    ngx_http_podgen_job_redis_indexed = 0;
    ngx_http_podgen_job_redis_index_op = NULL;
    ngx_http_podgen_job_redis_group_made = 0;
    ngx_memcpy(ngx_http_podgen_job_redis_index_at, "0", 2);
    ngx_http_podgen_job_redis_epoch_now[0] = '\0';
    ngx_http_podgen_job_redis_asking = 0;
    ngx_http_podgen_job_redis_length_now = 0;
    ngx_http_podgen_job_redis_measuring = 0;
    ngx_http_podgen_job_redis_epoch_confirmed = 0;
    ngx_http_podgen_job_redis_epoch_handler = NULL;
}


/* ---- records ------------------------------------------------------------ */


static void
ngx_http_podgen_job_redis_queued(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_queue_t  *q = data;

    if (rc == NGX_OK && reply->type != NGX_HTTP_PODGEN_REDIS_STRING) {
        rc = NGX_ERROR;
    }

    if (rc == NGX_OK) {
        /* in the stream: a worker of some node takes it from there */
        ngx_http_podgen_job_redis_length_now++;
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "podgen: job \"%s\" queued as %V", q->id, &reply->str);
    }

    q->done(q->data, rc);
    ngx_free(q);
}


/* ---- the length of the stream: unfinished jobs of the fleet ----------- */


static void
ngx_http_podgen_job_redis_measured(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_redis_measuring = 0;

    if (rc == NGX_OK && reply->type == NGX_HTTP_PODGEN_REDIS_INTEGER
        && reply->integer >= 0)
    {
        ngx_http_podgen_job_redis_length_now = (ngx_uint_t) reply->integer;
    }
}


void
ngx_http_podgen_job_redis_measure(void)
{
    if (ngx_http_podgen_job_redis_measuring) {
        return;
    }

    if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_measured,
                                      NULL, 0, 2, "XLEN", "%Pjobq")
        != NULL)
    {
        ngx_http_podgen_job_redis_measuring = 1;
    }
}


ngx_uint_t
ngx_http_podgen_job_redis_length(void)
{
    return ngx_http_podgen_job_redis_length_now;
}


/* ---- the epoch ----------------------------------------------------------- */


static void
ngx_http_podgen_job_redis_epoch_got(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_uint_t  lost;

    ngx_http_podgen_job_redis_asking = 0;

    if (rc != NGX_OK || reply->type != NGX_HTTP_PODGEN_REDIS_STRING
        || reply->str.len == 0
        || reply->str.len >= sizeof(ngx_http_podgen_job_redis_epoch_now))
    {
        return;
    }

    lost = ngx_http_podgen_job_redis_epoch_now[0] != '\0'
           && (ngx_strlen(ngx_http_podgen_job_redis_epoch_now)
               != reply->str.len
               || ngx_strncmp(ngx_http_podgen_job_redis_epoch_now,
                              reply->str.data, reply->str.len)
                  != 0);

    ngx_memcpy(ngx_http_podgen_job_redis_epoch_now, reply->str.data,
               reply->str.len);
    ngx_http_podgen_job_redis_epoch_now[reply->str.len] = '\0';
    ngx_http_podgen_job_redis_epoch_confirmed = 1;

    if (ngx_http_podgen_job_redis_epoch_handler) {
        ngx_http_podgen_job_redis_epoch_handler(
                                           ngx_http_podgen_job_redis_epoch_now,
                                           lost);
    }
}


void
ngx_http_podgen_job_redis_epoch(void)
{
    char  mine[32];

    if (ngx_http_podgen_job_redis_asking) {
        return;
    }

    /* a candidate, if Redis has none: this process and the time */

    ngx_sprintf((u_char *) mine, "%P.%M.%ui%Z", ngx_pid, ngx_current_msec,
                (ngx_uint_t) ngx_random() & 0xffff);

    if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_epoch_got,
                                      NULL, 0, 5, "EVAL",
                                      NGX_HTTP_PODGEN_JOBS_EPOCH_LUA, "1",
                                      "%Pepoch", mine)
        != NULL)
    {
        ngx_http_podgen_job_redis_asking = 1;
    }
}


ngx_uint_t
ngx_http_podgen_job_redis_epoch_known(void)
{
    return ngx_http_podgen_job_redis_epoch_confirmed;
}


void
ngx_http_podgen_job_redis_on_epoch(ngx_http_podgen_job_redis_epoch_pt handler,
    const char *known)
{
    ngx_http_podgen_job_redis_epoch_handler = handler;

    if (known && ngx_strlen(known) < sizeof(ngx_http_podgen_job_redis_epoch_now))
    {
        (void) ngx_cpystrn((u_char *) ngx_http_podgen_job_redis_epoch_now,
                           (u_char *) known,
                           sizeof(ngx_http_podgen_job_redis_epoch_now));
    }
}


/* ---- records ------------------------------------------------------------ */


static void
ngx_http_podgen_job_redis_put_done(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_put_t  *put = data;

    ngx_int_t                       result;
    ngx_str_t                       winner;
    ngx_http_podgen_redis_value_t  *code, *rec;

    result = NGX_HTTP_PODGEN_JOB_PUT_FAILED;
    ngx_str_null(&winner);

    if (rc == NGX_OK && reply->type == NGX_HTTP_PODGEN_REDIS_INTEGER
        && reply->integer >= -2 && reply->integer <= 1)
    {
        result = (ngx_int_t) reply->integer;

    } else if (rc == NGX_OK && reply->type == NGX_HTTP_PODGEN_REDIS_ARRAY) {
        /* {2, the fleet's final record} */
        code = ngx_http_podgen_redis_elt(reply, 0);
        rec = ngx_http_podgen_redis_elt(reply, 1);

        if (code->type == NGX_HTTP_PODGEN_REDIS_INTEGER
            && code->integer == NGX_HTTP_PODGEN_JOB_PUT_FINAL
            && rec->type == NGX_HTTP_PODGEN_REDIS_STRING)
        {
            result = NGX_HTTP_PODGEN_JOB_PUT_FINAL;
            winner = rec->str;
        }
    }

    if (result == NGX_HTTP_PODGEN_JOB_PUT_EPOCH) {
        /* Redis restarted empty (or was flushed): which epoch now? */
        ngx_http_podgen_job_redis_epoch();
    }

    if (put->done) {
        put->done(put->data, put->id, put->version, result, &winner);
    }

    ngx_free(put);
}


static ngx_int_t
ngx_http_podgen_job_redis_cas(pg_job_t *rec, pg_buf_t *json,
    ngx_http_podgen_redis_reply_pt handler, void *data)
{
    int          i;
    char         key[sizeof("%Pjob:") + PG_JOB_ID_LEN];
    char         version[NGX_INT64_LEN + 1];
    const char  *argv[14];
    size_t       argvlen[14];
    ngx_uint_t   podcast, final;

    ngx_sprintf((u_char *) key, "%%Pjob:%s%Z", rec->id);
    ngx_sprintf((u_char *) version, "%uL%Z", (uint64_t) rec->version);

    podcast = (rec->kind == PG_JOB_PODCAST);
    final = (rec->status == PG_JOB_COMPLETED || rec->status == PG_JOB_FAILED);

    argv[0] = "EVAL";
    argv[1] = NGX_HTTP_PODGEN_JOBS_PUT_LUA;
    argv[2] = "4";
    argv[3] = key;
    argv[4] = "%Ppodcasts";
    argv[5] = "%Pepisodes";
    argv[6] = "%Pepoch";
    argv[7] = (char *) json->data;
    argv[8] = rec->id;
    argv[9] = version;
    argv[10] = final ? "1" : "0";
    argv[11] = podcast ? "1" : "0";
    argv[12] = (podcast && rec->status == PG_JOB_COMPLETED) ? "1" : "0";
    argv[13] = ngx_http_podgen_job_redis_epoch_now;

    for (i = 0; i < 14; i++) {
        /* the record is not a C string */
        argvlen[i] = (i == 7) ? json->len : ngx_strlen(argv[i]);
    }

    if (ngx_http_podgen_redis_command(handler, data, 14, argv, argvlen, 0)
        == NULL)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* The new record is there: now its stream entry. */

static void
ngx_http_podgen_job_redis_stored(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_queue_t  *q = data;

    if (rc == NGX_OK
        && reply->type == NGX_HTTP_PODGEN_REDIS_INTEGER
        && reply->integer == NGX_HTTP_PODGEN_JOB_PUT_WRITTEN
        && ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_queued, q,
                                         0, 5, "XADD", "%Pjobq", "*", "id",
                                         q->id)
           != NULL)
    {
        return;
    }

    if (rc == NGX_OK && reply->type == NGX_HTTP_PODGEN_REDIS_INTEGER
        && reply->integer == NGX_HTTP_PODGEN_JOB_PUT_EPOCH)
    {
        ngx_http_podgen_job_redis_epoch();
    }

    q->done(q->data, NGX_ERROR);
    ngx_free(q);
}


ngx_int_t
ngx_http_podgen_job_redis_queue(pg_job_t *rec, pg_buf_t *json,
    ngx_http_podgen_job_redis_done_pt done, void *data)
{
    ngx_http_podgen_job_queue_t  *q;

    if (!ngx_http_podgen_redis_up()) {
        return NGX_DECLINED;
    }

    q = ngx_calloc(sizeof(ngx_http_podgen_job_queue_t), ngx_cycle->log);
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->done = done;
    q->data = data;
    ngx_memcpy(q->id, rec->id, sizeof(q->id));

    /* the record, then the stream entry */

    if (ngx_http_podgen_job_redis_cas(rec, json,
                                      ngx_http_podgen_job_redis_stored, q)
        != NGX_OK)
    {
        ngx_free(q);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_job_redis_put(pg_job_t *rec, pg_buf_t *json,
    ngx_http_podgen_job_put_pt done, void *data)
{
    ngx_http_podgen_job_put_t  *put;

    if (!ngx_http_podgen_redis_up()) {
        return NGX_DECLINED;
    }

    put = ngx_calloc(sizeof(ngx_http_podgen_job_put_t), ngx_cycle->log);
    if (put == NULL) {
        return NGX_ERROR;
    }

    put->done = done;
    put->data = data;
    put->version = rec->version;
    ngx_memcpy(put->id, rec->id, sizeof(put->id));

    if (ngx_http_podgen_job_redis_cas(rec, json,
                                      ngx_http_podgen_job_redis_put_done, put)
        != NGX_OK)
    {
        ngx_free(put);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


void
ngx_http_podgen_job_redis_requeue(const char *id)
{
    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 5, "XADD", "%Pjobq",
                                         "*", "id", id);
}


void
ngx_http_podgen_job_redis_episode(const char *id, u_char *audio, size_t len)
{
    char         key[sizeof("%Pepisode:") + PG_JOB_ID_LEN];
    const char  *argv[3];
    size_t       argvlen[3];

    ngx_sprintf((u_char *) key, "%%Pepisode:%s%Z", id);

    argv[0] = "SET";
    argv[1] = key;
    argv[2] = (char *) audio;
    argvlen[0] = 3;
    argvlen[1] = ngx_strlen(key);
    argvlen[2] = len;

    (void) ngx_http_podgen_redis_command(NULL, NULL, 3, argv, argvlen, 0);
}


/* ---- the stream ---------------------------------------------------------- */


/*
 * Jobs are entries of the stream {prefix}jobq, read by the consumer group
 * "podgen": each worker is a consumer (host:pid:start).  A worker that
 * runs a job claims its entry again every few seconds; entries idle for
 * longer than NGX_HTTP_PODGEN_JOBS_RECLAIM belong to a dead worker and are
 * taken over (XAUTOCLAIM).  A finished job's entry is acknowledged and
 * deleted.
 */

void
ngx_http_podgen_job_redis_ack(const char *entry)
{
    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 4, "XACK", "%Pjobq",
                                         "podgen", entry);
    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 3, "XDEL", "%Pjobq",
                                         entry);
}


/* The record of a delivered entry is here: run it, unless it is done. */

static void
ngx_http_podgen_job_redis_delivered(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_delivery_t  *d = data;

    pg_job_t    rec;
    pg_error_t  err;

    if (rc != NGX_OK) {
        /* not now: the entry stays pending and comes back later */
        ngx_free(d);
        return;
    }

    if (reply->type != NGX_HTTP_PODGEN_REDIS_STRING
        || pg_job_from_json((char *) reply->str.data, reply->str.len, &rec,
                            &err)
           != 0)
    {
        /* deleted (or unreadable): nothing to do */
        ngx_http_podgen_job_redis_ack(d->entry);
        ngx_free(d);
        return;
    }

    if (rec.status == PG_JOB_COMPLETED || rec.status == PG_JOB_FAILED) {
        ngx_http_podgen_job_redis_ack(d->entry);
        pg_job_free(&rec);
        ngx_free(d);
        return;
    }

    /* take() takes the record over, or frees it */
    d->take(d->entry, &rec);
    ngx_free(d);
}


/* [[entry-id, [field, value, ...]], ...] */

static void
ngx_http_podgen_job_redis_entries(ngx_http_podgen_redis_value_t *entries)
{
    size_t                           i, f;
    ngx_http_podgen_redis_value_t   *e, *id, *fields, *name, *value;
    char                             key[sizeof("%Pjob:") + PG_JOB_ID_LEN];
    ngx_http_podgen_job_delivery_t  *d;

    for (i = 0; i < entries->n; i++) {
        e = ngx_http_podgen_redis_elt(entries, i);
        id = ngx_http_podgen_redis_elt(e, 0);
        fields = ngx_http_podgen_redis_elt(e, 1);

        if (id->type != NGX_HTTP_PODGEN_REDIS_STRING || id->str.len >= 48) {
            continue;
        }

        d = ngx_calloc(sizeof(ngx_http_podgen_job_delivery_t),
                       ngx_cycle->log);
        if (d == NULL) {
            return;
        }

        d->take = ngx_http_podgen_job_redis_taker;
        ngx_memcpy(d->entry, id->str.data, id->str.len);

        for (f = 0; f + 1 < fields->n; f += 2) {
            name = ngx_http_podgen_redis_elt(fields, f);
            value = ngx_http_podgen_redis_elt(fields, f + 1);

            if (ngx_http_podgen_redis_is(name, "id")
                && value->type == NGX_HTTP_PODGEN_REDIS_STRING
                && pg_job_id_valid((char *) value->str.data, value->str.len))
            {
                ngx_memcpy(d->id, value->str.data, PG_JOB_ID_LEN);
            }
        }

        if (d->id[0] == '\0') {
            /* an entry without a job: drop it */
            ngx_http_podgen_job_redis_ack(d->entry);
            ngx_free(d);
            continue;
        }

        ngx_sprintf((u_char *) key, "%%Pjob:%s%Z", d->id);

        if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_delivered,
                                          d, 0, 2, "GET", key)
            == NULL)
        {
            ngx_free(d);
        }
    }
}


static void
ngx_http_podgen_job_redis_read_done(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    size_t                          i;
    ngx_msec_t                      next;
    ngx_http_podgen_redis_value_t  *stream;

    next = NGX_HTTP_PODGEN_JOBS_POLL;

    if (rc != NGX_OK) {
        /* NOGROUP after Redis lost its data, or any failure: make sure
         * the group is there on the next look (BUSYGROUP is harmless) */
        ngx_http_podgen_job_redis_group_made = 0;

    } else {
        /* [[stream, entries]] */

        for (i = 0; i < reply->n; i++) {
            stream = ngx_http_podgen_redis_elt(reply, i);

            if (stream->n == 2) {
                ngx_http_podgen_job_redis_entries(
                                       ngx_http_podgen_redis_elt(stream, 1));
                next = 10;
            }
        }
    }

    ngx_http_podgen_job_redis_turned(next);
}


static void
ngx_http_podgen_job_redis_reclaimed(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    /* [next-cursor, entries, deleted-ids] */

    if (rc == NGX_OK) {
        ngx_http_podgen_job_redis_entries(ngx_http_podgen_redis_elt(reply,
                                                                    1));
    }
}


static void
ngx_http_podgen_job_redis_group_done(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    /* made now, or there already (BUSYGROUP): either way it is there */
    ngx_http_podgen_job_redis_group_made = 1;
}


/* A page of the index walk is done: the next one on the next turn. */

static void
ngx_http_podgen_job_redis_index_done(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_redis_index_op = NULL;

    if (rc != NGX_OK || reply->type != NGX_HTTP_PODGEN_REDIS_STRING
        || reply->str.len == 0
        || reply->str.len >= sizeof(ngx_http_podgen_job_redis_index_at))
    {
        /* again from where it was, later */
        return;
    }

    if (ngx_http_podgen_redis_is(reply, "0")) {
        ngx_http_podgen_job_redis_indexed = 1;
        return;
    }

    ngx_memcpy(ngx_http_podgen_job_redis_index_at, reply->str.data,
               reply->str.len);
    ngx_http_podgen_job_redis_index_at[reply->str.len] = '\0';
}


ngx_int_t
ngx_http_podgen_job_redis_turn(ngx_uint_t room, ngx_uint_t reclaim,
    ngx_http_podgen_job_redis_take_pt take, void (*done)(ngx_msec_t next))
{
    char  count[NGX_INT_T_LEN + 1];

    if (!ngx_http_podgen_redis_up()) {
        return NGX_DECLINED;
    }

    ngx_http_podgen_job_redis_taker = take;
    ngx_http_podgen_job_redis_turned = done;

    if (!ngx_http_podgen_job_redis_group_made) {
        (void) ngx_http_podgen_redis_strings(
                                         ngx_http_podgen_job_redis_group_done,
                                         NULL, 0, 6, "XGROUP", "CREATE",
                                         "%Pjobq", "podgen", "0",
                                         "MKSTREAM");
    }

    if (!ngx_http_podgen_job_redis_indexed && ngx_worker == 0
        && ngx_http_podgen_job_redis_index_op == NULL)
    {
        ngx_http_podgen_job_redis_index_op = ngx_http_podgen_redis_strings(
                             ngx_http_podgen_job_redis_index_done, NULL, 0, 9,
                             "EVAL", NGX_HTTP_PODGEN_JOBS_INDEX_LUA, "3",
                             "%Ppodcasts", "%Pepisodes", "%Ppodcasts:indexed",
                             ngx_http_podgen_job_redis_index_at,
                             "%Pjob:pod_*", "%Pjob:");
    }

    if (room == 0) {
        done(NGX_HTTP_PODGEN_JOBS_POLL);
        return NGX_OK;
    }

    ngx_sprintf((u_char *) count, "%ui%Z", room);

    if (reclaim) {
        /* entries of workers that stopped beating */

        (void) ngx_http_podgen_redis_strings(
                                      ngx_http_podgen_job_redis_reclaimed,
                                      NULL, 0, 8, "XAUTOCLAIM", "%Pjobq",
                                      "podgen",
                                      ngx_http_podgen_job_redis_consumer,
                                      NGX_HTTP_PODGEN_JOBS_RECLAIM, "0-0",
                                      "COUNT", count);
    }

    if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_read_done,
                                      NULL, 0, 9, "XREADGROUP", "GROUP",
                                      "podgen",
                                      ngx_http_podgen_job_redis_consumer,
                                      "COUNT", count, "STREAMS", "%Pjobq",
                                      ">")
        == NULL)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


void
ngx_http_podgen_job_redis_beat(char **entries, ngx_uint_t n)
{
    int          argc;
    char         key[16];
    ngx_uint_t   i;
    const char  *argv[16];
    size_t       argvlen[16];

    if (n == 0) {
        return;
    }

    ngx_sprintf((u_char *) key, "%%Pjobq%Z");

    /* XCLAIM jobq podgen me 0 id... JUSTID: "still mine", idle 0 */

    argv[0] = "XCLAIM";
    argv[1] = key;
    argv[2] = "podgen";
    argv[3] = ngx_http_podgen_job_redis_consumer;
    argv[4] = "0";
    argc = 5;

    for (i = 0; i < n && argc < 15; i++) {
        argv[argc++] = entries[i];
    }

    argv[argc++] = "JUSTID";

    for (i = 0; i < (ngx_uint_t) argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    (void) ngx_http_podgen_redis_command(NULL, NULL, argc, argv, argvlen, 0);
}


/* ---- reading and deleting ---------------------------------------------- */


static void
ngx_http_podgen_job_redis_fetched(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_fetch_t  *f = data;

    pg_job_t    rec;
    pg_error_t  err;

    ngx_memzero(&rec, sizeof(pg_job_t));

    if (f->found == NULL) {
        /* canceled */

    } else if (rc != NGX_OK) {
        /* Redis failed or is too slow: whether there is one is unknown */
        f->found(f->data, NGX_BUSY, NULL, NULL, 0);

    } else if (reply->type != NGX_HTTP_PODGEN_REDIS_STRING) {
        f->found(f->data, NGX_DECLINED, NULL, NULL, 0);

    } else if (!f->episode && reply->str.len == 1
               && reply->str.data[0] == '-')
    {
        /* a deleted job's tombstone */
        f->found(f->data, NGX_DONE, NULL, NULL, 0);

    } else if (f->episode) {
        f->found(f->data, NGX_OK, NULL, reply->str.data, reply->str.len);

    } else if (pg_job_from_json((char *) reply->str.data, reply->str.len,
                                &rec, &err)
               != 0
               || ngx_strcmp(rec.id, f->id) != 0)
    {
        pg_job_free(&rec);
        f->found(f->data, NGX_ERROR, NULL, NULL, 0);

    } else {
        f->found(f->data, NGX_OK, &rec, NULL, 0);
        pg_job_free(&rec);
    }

    ngx_free(f);
}


ngx_int_t
ngx_http_podgen_job_redis_get(const char *id, ngx_uint_t episode,
    ngx_msec_t timeout, ngx_http_podgen_job_redis_found_pt found, void *data,
    void **handle)
{
    ngx_http_podgen_job_fetch_t  *f;
    char                          key[sizeof("%Pepisode:") + PG_JOB_ID_LEN];

    *handle = NULL;

    f = ngx_calloc(sizeof(ngx_http_podgen_job_fetch_t), ngx_cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->found = found;
    f->data = data;
    f->episode = episode;
    ngx_memcpy(f->id, id, PG_JOB_ID_LEN);

    ngx_sprintf((u_char *) key, "%%P%s:%s%Z", episode ? "episode" : "job",
                id);

    if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_fetched, f,
                                      timeout, 2, "GET", key)
        == NULL)
    {
        ngx_free(f);
        return NGX_DECLINED;
    }

    *handle = f;

    return NGX_AGAIN;
}


/* found() is not called then; Redis's answer frees what is left */

void
ngx_http_podgen_job_redis_cancel(void *handle)
{
    ngx_http_podgen_job_fetch_t  *f = handle;

    f->found = NULL;
}


static void
ngx_http_podgen_job_redis_deleted(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_fetch_t  *f = data;

    if (f->found == NULL) {
        /* canceled */

    } else if (rc != NGX_OK) {
        f->found(f->data, NGX_ERROR, NULL, NULL, 0);

    } else {
        f->found(f->data, (reply->type == NGX_HTTP_PODGEN_REDIS_INTEGER
                           && reply->integer > 0) ? NGX_OK : NGX_DECLINED,
                 NULL, NULL, 0);
    }

    ngx_free(f);
}


ngx_int_t
ngx_http_podgen_job_redis_delete(const char *id,
    ngx_http_podgen_job_redis_found_pt found, void *data, void **handle)
{
    ngx_http_podgen_job_fetch_t  *f;
    char                          k1[sizeof("%Pjob:") + PG_JOB_ID_LEN];
    char                          k2[sizeof("%Pepisode:") + PG_JOB_ID_LEN];

    *handle = NULL;

    f = ngx_calloc(sizeof(ngx_http_podgen_job_fetch_t), ngx_cycle->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->found = found;
    f->data = data;

    ngx_sprintf((u_char *) k1, "%%Pjob:%s%Z", id);
    ngx_sprintf((u_char *) k2, "%%Pepisode:%s%Z", id);

    if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_redis_deleted, f, 0,
                                      8, "EVAL",
                                      NGX_HTTP_PODGEN_JOBS_DELETE_LUA, "4",
                                      k1, k2, "%Ppodcasts", "%Pepisodes", id)
        == NULL)
    {
        ngx_free(f);
        return NGX_DECLINED;
    }

    *handle = f;

    return NGX_AGAIN;
}


ngx_http_podgen_redis_op_t *
ngx_http_podgen_job_redis_list(const char *cursor, ngx_uint_t n,
    ngx_uint_t feed, ngx_http_podgen_redis_reply_pt handler, void *data)
{
    char   max[PG_JOB_ID_LEN + 2], count[NGX_INT_T_LEN + 1];

    if (cursor[0]) {
        ngx_sprintf((u_char *) max, "(%s%Z", cursor);

    } else {
        ngx_sprintf((u_char *) max, "+%Z");
    }

    ngx_sprintf((u_char *) count, "%ui%Z", n);

    return ngx_http_podgen_redis_strings(handler, data, 0, 7, "EVAL",
                                         NGX_HTTP_PODGEN_JOBS_LIST_LUA, "1",
                                         feed ? "%Pepisodes" : "%Ppodcasts",
                                         max, count, "%Pjob:");
}
