/*
 * podgen: durable jobs — the store and the runner (see the header).
 *
 * A podcast job: the script (as given, or written through the script
 * maker), then every segment's audio as wav through the artifact maker
 * (each segment an artifact of its own, in L1 and L2), a few at a time,
 * then the episode rendered and written on the thread pool.  The record
 * is written after every step: queued, running, each segment done,
 * completed or failed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dirent.h>
#include <sys/file.h>

#include "pg_key.h"
#include "pg_text.h"
#include "pg_podcast.h"
#include "pg_episode.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_jobs.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_JOBS_SCAN      5000     /* ms between store scans */
#define NGX_HTTP_PODGEN_JOBS_RETRY     200      /* ms: the pool was full */
#define NGX_HTTP_PODGEN_JOBS_WINDOW    3        /* segments made at once */
#define NGX_HTTP_PODGEN_JOBS_POLL      250      /* ms: the stream, when idle */
#define NGX_HTTP_PODGEN_JOBS_BEAT      3000     /* ms: "still working on it" */
#define NGX_HTTP_PODGEN_JOBS_RECLAIM   "10000"  /* ms idle: the owner is dead */


typedef struct {
    ngx_http_podgen_job_t         *job;
    ngx_http_podgen_voice_t       *voice;
    char                          *text;        /* normalized */
    size_t                         len;
    u_char                        *wav;
    size_t                         wav_len;
    ngx_http_podgen_audio_make_t  *make;
    ngx_uint_t                     state;       /* 0 to do, 1 making, 2 done */
} ngx_http_podgen_job_seg_t;


struct ngx_http_podgen_job_s {
    ngx_queue_t                      queue;
    pg_job_t                         rec;
    int                              lock_fd;
    ngx_log_t                       *log;

    ngx_http_podgen_job_accepted_pt  accepted;
    void                            *data;

    pg_podcast_request_t             req;
    pg_script_t                      made;      /* a written script */
    pg_script_t                     *script;
    ngx_http_podgen_script_make_t   *make;
    void                            *batch;

    ngx_http_podgen_job_seg_t       *segs;
    ngx_uint_t                       nsegs;
    ngx_uint_t                       active;

    ngx_event_t                      retry;

    char                             entry[48];     /* stream entry id */
    u_char                          *episode;       /* for Redis */
    size_t                           episode_len;

    unsigned                         writing:1;
    unsigned                         dirty:1;
    unsigned                         claimed:1;     /* lock held */
    unsigned                         started:1;
    unsigned                         rendering:1;
    unsigned                         render_again:1;
    unsigned                         finished:1;    /* completed / failed */
    unsigned                         final:1;       /* last write done */
    unsigned                         deleted:1;
    unsigned                         unshared:1;    /* not in Redis yet */
};


/* a record write on the pool */
typedef struct {
    ngx_http_podgen_job_t           *job;
    pg_buf_t                         json;
    int                              lock_fd;
    int                              err;
    unsigned                         claim:1;
    unsigned                         final:1;
    unsigned                         deleted:1;
    char                             id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_write_t;


/* the episode, rendered and written on the pool */
typedef struct {
    ngx_http_podgen_job_t           *job;
    pg_episode_part_t               *parts;
    pg_episode_span_t               *spans;
    size_t                           n;
    pg_format_t                      format;
    double                           duration;
    size_t                           bytes;
    int                              rc;
    pg_buf_t                         out;       /* kept for Redis */
    unsigned                         keep:1;
    char                             error[128];
} ngx_http_podgen_job_render_t;


/* unfinished jobs found in the store */
typedef struct {
    ngx_uint_t                       room;
    ngx_uint_t                       n;
    pg_job_t                        *recs;
    int                             *fds;
} ngx_http_podgen_job_scan_t;


static void ngx_http_podgen_job_write(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_redis_put(ngx_http_podgen_job_t *job,
    pg_buf_t *json, ngx_uint_t xx);
static void ngx_http_podgen_job_start_next(void);
static void ngx_http_podgen_job_run(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_script_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err);
static void ngx_http_podgen_job_segments(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_pump(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_seg_done(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err);
static void ngx_http_podgen_job_render(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_fail(ngx_http_podgen_job_t *job,
    const char *code, const char *message);
static void ngx_http_podgen_job_stop(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_maybe_free(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_job_scan_handler(ngx_event_t *ev);
static void ngx_http_podgen_job_keep_handler(ngx_event_t *ev);
static void ngx_http_podgen_job_retry_handler(ngx_event_t *ev);


static ngx_http_podgen_main_conf_t  *ngx_http_podgen_jobs_pmcf;
static ngx_queue_t                   ngx_http_podgen_jobs_waiting;
static ngx_queue_t                   ngx_http_podgen_jobs_running;
static ngx_uint_t                    ngx_http_podgen_jobs_nrunning;
static ngx_uint_t                    ngx_http_podgen_jobs_n;     /* all */
static ngx_uint_t                    ngx_http_podgen_jobs_scanning;
static ngx_event_t                   ngx_http_podgen_jobs_scan_ev;
static ngx_event_t                   ngx_http_podgen_jobs_keep_ev;
static ngx_connection_t              ngx_http_podgen_jobs_dummy;

/* Redis mode: the job stream */
static ngx_uint_t                    ngx_http_podgen_jobs_redis;
static ngx_uint_t                    ngx_http_podgen_jobs_indexed;
static ngx_http_podgen_redis_op_t   *ngx_http_podgen_jobs_index_op;
static char                          ngx_http_podgen_jobs_index_at[32] = "0";
static ngx_event_t                   ngx_http_podgen_jobs_stream_ev;
static ngx_http_podgen_redis_op_t   *ngx_http_podgen_jobs_stream_op;
static ngx_msec_t                    ngx_http_podgen_jobs_last_beat;
static ngx_uint_t                    ngx_http_podgen_jobs_group_made;
static char                          ngx_http_podgen_jobs_consumer[128];

static void ngx_http_podgen_jobs_stream_handler(ngx_event_t *ev);
static void ngx_http_podgen_job_redis_finish(ngx_http_podgen_job_t *job);


/* ---- configuration ------------------------------------------------------ */


static ngx_int_t
ngx_http_podgen_jobs_add_path(ngx_conf_t *cf, ngx_str_t *store,
    const char *sub)
{
    ngx_path_t  *path;

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name.len = store->len + ngx_strlen(sub);
    path->name.data = ngx_pnalloc(cf->pool, path->name.len + 1);
    if (path->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(path->name.data, "%V%s%Z", store, sub);

    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    /* nginx creates it at start, owned by the workers' user */

    return ngx_add_path(cf, &path);
}


char *
ngx_http_podgen_jobs_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_jobs_conf_t *jcf)
{
    ngx_conf_init_uint_value(jcf->concurrency, 2);
    ngx_conf_init_uint_value(jcf->batch_max, 100);

    if (jcf->store.data == NULL) {
        ngx_str_set(&jcf->store, "podgen_store");
    }

    if (ngx_conf_full_name(cf->cycle, &jcf->store, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (jcf->store.len > 1 && jcf->store.data[jcf->store.len - 1] == '/') {
        jcf->store.len--;
    }

    if (jcf->store.len + sizeof("/audio/") + PG_JOB_ID_LEN + 16
        > NGX_MAX_PATH)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "podgen_store \"%V\" is too long", &jcf->store);
        return NGX_CONF_ERROR;
    }

    if (!jcf->used) {
        return NGX_CONF_OK;
    }

    if (ngx_http_podgen_jobs_add_path(cf, &jcf->store, "") != NGX_OK
        || ngx_http_podgen_jobs_add_path(cf, &jcf->store, "/jobs") != NGX_OK
        || ngx_http_podgen_jobs_add_path(cf, &jcf->store, "/audio") != NGX_OK
        || ngx_http_podgen_jobs_add_path(cf, &jcf->store, "/locks") != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_podgen_jobs_conf_t *
ngx_http_podgen_jobs_conf(void)
{
    return ngx_http_podgen_jobs_pmcf ? &ngx_http_podgen_jobs_pmcf->jobs : NULL;
}


ngx_int_t
ngx_http_podgen_jobs_init_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_podgen_module);

    if (!pmcf->jobs.used) {
        return NGX_OK;
    }

    ngx_http_podgen_jobs_pmcf = pmcf;

    ngx_queue_init(&ngx_http_podgen_jobs_waiting);
    ngx_queue_init(&ngx_http_podgen_jobs_running);

    ngx_http_podgen_jobs_dummy.fd = (ngx_socket_t) -1;

    ngx_http_podgen_jobs_scan_ev.handler = ngx_http_podgen_job_scan_handler;
    ngx_http_podgen_jobs_scan_ev.data = &ngx_http_podgen_jobs_dummy;
    ngx_http_podgen_jobs_scan_ev.log = cycle->log;
    ngx_http_podgen_jobs_scan_ev.cancelable = 1;

    /* while jobs run, a timer that is not cancelable keeps an exiting
     * worker (reload, upgrade) alive until they are finished */

    ngx_http_podgen_jobs_keep_ev.handler = ngx_http_podgen_job_keep_handler;
    ngx_http_podgen_jobs_keep_ev.data = &ngx_http_podgen_jobs_dummy;
    ngx_http_podgen_jobs_keep_ev.log = cycle->log;

    if (pmcf->redis.addr_text.len) {
        /* jobs are shared by the nodes through a stream in Redis; the
         * local store is this node's copy */

        ngx_http_podgen_jobs_redis = 1;

        ngx_snprintf((u_char *) ngx_http_podgen_jobs_consumer,
                     sizeof(ngx_http_podgen_jobs_consumer) - 1, "%V:%P:%M%Z",
                     &cycle->hostname, ngx_pid, ngx_current_msec);

        ngx_http_podgen_jobs_stream_ev.handler =
                                          ngx_http_podgen_jobs_stream_handler;
        ngx_http_podgen_jobs_stream_ev.data = &ngx_http_podgen_jobs_dummy;
        ngx_http_podgen_jobs_stream_ev.log = cycle->log;
        ngx_http_podgen_jobs_stream_ev.cancelable = 1;

        ngx_add_timer(&ngx_http_podgen_jobs_stream_ev, 50 + ngx_worker * 50);

        return NGX_OK;
    }

    /* unfinished jobs of a previous run: soon, and then now and again */

    ngx_add_timer(&ngx_http_podgen_jobs_scan_ev, 10 + ngx_worker * 100);

    return NGX_OK;
}


void
ngx_http_podgen_jobs_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t            *q;
    ngx_http_podgen_job_t  *job;

    if (ngx_http_podgen_jobs_pmcf == NULL) {
        return;
    }

    /* jobs still here (a fast shutdown) are left to the next worker:
     * their locks go with this process */

    while (!ngx_queue_empty(&ngx_http_podgen_jobs_waiting)) {
        q = ngx_queue_head(&ngx_http_podgen_jobs_waiting);
        ngx_queue_remove(q);
        job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

        if (job->lock_fd != -1) {
            (void) close(job->lock_fd);
            job->lock_fd = -1;
        }
    }

    ngx_http_podgen_jobs_pmcf = NULL;
}


void
ngx_http_podgen_job_path(char *buf, const char *dir, const char *id,
    const char *ext)
{
    ngx_http_podgen_jobs_conf_t  *jcf;

    jcf = ngx_http_podgen_jobs_conf();

    ngx_snprintf((u_char *) buf, NGX_MAX_PATH, "%V/%s/%s%s%Z", &jcf->store,
                 dir, id, ext);
}


/* ---- L1: the latest record of live jobs --------------------------------- */


static void
ngx_http_podgen_job_l1_key(const char *id, u_char *key)
{
    char  hex[PG_KEY_LEN + 1], name[sizeof("job:") + PG_JOB_ID_LEN];

    ngx_sprintf((u_char *) name, "job:%s%Z", id);
    (void) pg_key_sha256(name, ngx_strlen(name), hex);
    ngx_http_podgen_cache_key(key, hex);
}


static void
ngx_http_podgen_job_l1_put(const char *id, u_char *data, size_t len)
{
    u_char                        key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_podgen_jobs_pmcf;

    if (pmcf == NULL || pmcf->cache.shm_zone == NULL) {
        return;
    }

    ngx_http_podgen_job_l1_key(id, key);
    (void) ngx_http_podgen_cache_put(&pmcf->cache, key,
                                     PG_KIND_JOB, data, len, 0,
                                     ngx_cycle->log);
}


static ngx_uint_t
ngx_http_podgen_job_l1_deleted(const char *id)
{
    u_char                        *data, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         len;
    ngx_pool_t                    *pool;
    ngx_uint_t                     tag, deleted;
    ngx_http_podgen_main_conf_t   *pmcf;

    pmcf = ngx_http_podgen_jobs_pmcf;

    if (pmcf == NULL || pmcf->cache.shm_zone == NULL) {
        return 0;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return 0;
    }

    ngx_http_podgen_job_l1_key(id, key);

    deleted = ngx_http_podgen_cache_get(&pmcf->cache, key,
                                        PG_KIND_JOB, pool, &data,
                                        &len, &tag)
              == NGX_OK
              && len == 1 && data[0] == '-';

    ngx_destroy_pool(pool);

    return deleted;
}


void
ngx_http_podgen_job_tombstone(const char *id)
{
    ngx_http_podgen_job_l1_put(id, (u_char *) "-", 1);
}


static ngx_int_t
ngx_http_podgen_job_read_file(ngx_pool_t *pool, const char *path,
    u_char **data, size_t *len, ngx_log_t *log)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    /* a small file, read like nginx reads a static one */

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        return (ngx_errno == NGX_ENOENT) ? NGX_DECLINED : NGX_ERROR;
    }

    file.name.data = (u_char *) path;
    file.name.len = ngx_strlen(path);
    file.log = log;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 64 * 1024 * 1024)
    {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    *len = ngx_file_size(&fi);
    *data = ngx_pnalloc(pool, *len + 1);

    if (*data == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, *data, *len, 0);
    (void) ngx_close_file(file.fd);

    if (n != (ssize_t) *len) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_job_load(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_log_t *log)
{
    u_char                        *data, key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    size_t                         len;
    ngx_int_t                      rc;
    ngx_uint_t                     tag;
    pg_error_t                     err;
    ngx_http_podgen_main_conf_t   *pmcf;
    char                           path[NGX_MAX_PATH];

    pmcf = ngx_http_podgen_jobs_pmcf;
    if (pmcf == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;

    if (pmcf->cache.shm_zone) {
        ngx_http_podgen_job_l1_key(id, key);
        rc = ngx_http_podgen_cache_get(&pmcf->cache, key,
                                       PG_KIND_JOB, pool, &data,
                                       &len, &tag);

        if (rc == NGX_OK && len == 1 && data[0] == '-') {
            return NGX_DECLINED;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_podgen_job_path(path, "jobs", id, ".json");

        rc = ngx_http_podgen_job_read_file(pool, path, &data, &len, log);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (pg_job_from_json((char *) data, len, rec, &err) != 0
        || ngx_strcmp(rec->id, id) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "podgen: job \"%s\": corrupt record: %s", id,
                      err.message);
        pg_job_free(rec);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ---- Redis mode: records and episodes shared by the nodes -------------- */


/*
 * The library of the fleet, in Redis: the sorted set {prefix}podcasts holds
 * the id of every podcast record (added with the record), {prefix}episodes
 * those completed (added with the record that says so, in one script, and
 * only over a record that is there: a job deleted meanwhile stays out).
 * All scores are 0: ids sort by time, newest last, so a list is a reverse
 * lexicographic range below the cursor.
 */

#define NGX_HTTP_PODGEN_JOBS_COMPLETE_LUA                                    \
    "if redis.call('SET', KEYS[1], ARGV[1], 'XX') then "                     \
    "redis.call('ZADD', KEYS[2], 0, ARGV[2]) end return 1"

/*
 * A job accepted while Redis was down: the first write that finds Redis up
 * shares it (the record, if none is there, and its place in the library).
 */
#define NGX_HTTP_PODGEN_JOBS_SHARE_LUA                                       \
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX') then "                     \
    "if ARGV[3] == '1' then redis.call('ZADD', KEYS[2], 0, ARGV[2]) end "    \
    "if ARGV[4] == '1' then redis.call('ZADD', KEYS[3], 0, ARGV[2]) end "    \
    "end return 1"

/* the records of the newest ids below ARGV[1]; ids without one leave */
#define NGX_HTTP_PODGEN_JOBS_LIST_LUA                                        \
    "local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', "       \
    "'LIMIT', 0, tonumber(ARGV[2])) "                                        \
    "local out = {} "                                                        \
    "for _, id in ipairs(ids) do "                                           \
    "local v = redis.call('GET', ARGV[3] .. id) "                            \
    "if v then out[#out + 1] = v else redis.call('ZREM', KEYS[1], id) end "  \
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


/* SET job:{id}; xx: only over a record that is there (not a deleted one) */

static void
ngx_http_podgen_job_redis_put(ngx_http_podgen_job_t *job, pg_buf_t *json,
    ngx_uint_t xx)
{
    int         i, argc, record;
    char        key[sizeof("%Pjob:") + PG_JOB_ID_LEN];
    const char *argv[10];
    size_t      argvlen[10];
    ngx_uint_t  podcast, completed;

    if (!ngx_http_podgen_jobs_redis) {
        return;
    }

    ngx_sprintf((u_char *) key, "%%Pjob:%s%Z", job->rec.id);

    podcast = (job->rec.kind == PG_JOB_PODCAST);
    completed = podcast && job->rec.status == PG_JOB_COMPLETED;

    if (job->unshared) {
        if (!ngx_http_podgen_redis_up()) {
            return;
        }

        argv[0] = "EVAL";
        argv[1] = NGX_HTTP_PODGEN_JOBS_SHARE_LUA;
        argv[2] = "3";
        argv[3] = key;
        argv[4] = "%Ppodcasts";
        argv[5] = "%Pepisodes";
        argv[6] = (char *) json->data;
        argv[7] = job->rec.id;
        argv[8] = podcast ? "1" : "0";
        argv[9] = completed ? "1" : "0";
        argc = 10;
        record = 6;

        job->unshared = 0;

    } else if (xx && completed) {
        argv[0] = "EVAL";
        argv[1] = NGX_HTTP_PODGEN_JOBS_COMPLETE_LUA;
        argv[2] = "2";
        argv[3] = key;
        argv[4] = "%Pepisodes";
        argv[5] = (char *) json->data;
        argv[6] = job->rec.id;
        argc = 7;
        record = 5;

    } else {
        argv[0] = "SET";
        argv[1] = key;
        argv[2] = (char *) json->data;
        argv[3] = "XX";
        argc = xx ? 4 : 3;
        record = 2;
    }

    for (i = 0; i < argc; i++) {
        /* the record is not a C string */
        argvlen[i] = (i == record) ? json->len : ngx_strlen(argv[i]);
    }

    (void) ngx_http_podgen_redis_command(NULL, NULL, argc, argv, argvlen, 0);
}


static void
ngx_http_podgen_job_redis_episode(const char *id, pg_buf_t *audio)
{
    char        key[sizeof("%Pepisode:") + PG_JOB_ID_LEN];
    const char *argv[3];
    size_t      argvlen[3];

    ngx_sprintf((u_char *) key, "%%Pepisode:%s%Z", id);

    argv[0] = "SET";
    argv[1] = key;
    argv[2] = (char *) audio->data;
    argvlen[0] = 3;
    argvlen[1] = ngx_strlen(key);
    argvlen[2] = audio->len;

    (void) ngx_http_podgen_redis_command(NULL, NULL, 3, argv, argvlen, 0);
}


/* ---- record writes ------------------------------------------------------ */


static ngx_int_t
ngx_http_podgen_job_write_file(const char *path, u_char *data, size_t len)
{
    int      fd;
    ssize_t  n;
    char     tmp[NGX_MAX_PATH + 8];

    ngx_sprintf((u_char *) tmp, "%s.tmp%Z", path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return NGX_ERROR;
    }

    while (len) {
        n = write(fd, data, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            goto failed;
        }

        data += n;
        len -= n;
    }

    if (close(fd) == -1) {
        fd = -1;
        goto failed;
    }

    if (rename(tmp, path) == -1) {
        fd = -1;
        goto failed;
    }

    return NGX_OK;

failed:

    n = errno;

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink(tmp);
    errno = n;

    return NGX_ERROR;
}


static void
ngx_http_podgen_job_write_thread(void *data)
{
    ngx_http_podgen_job_write_t  *w = data;

    char  path[NGX_MAX_PATH], lock[NGX_MAX_PATH];

    if (w->claim) {
        /* the lock first: no scan takes the job once its record exists */

        ngx_http_podgen_job_path(path, "locks", w->id, "");

        w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

        if (w->lock_fd == -1 || flock(w->lock_fd, LOCK_EX | LOCK_NB) == -1) {
            w->err = errno;

            if (w->lock_fd != -1) {
                (void) close(w->lock_fd);
                w->lock_fd = -1;
            }

            return;
        }
    }

    ngx_http_podgen_job_path(path, "jobs", w->id, ".json");

    if (!w->claim && access(path, F_OK) == -1 && errno == ENOENT) {
        /* deleted meanwhile: it stays deleted */
        w->deleted = 1;
        goto unlock;
    }

    if (ngx_http_podgen_job_write_file(path, w->json.data, w->json.len)
        == NGX_OK)
    {
        /*
         * DELETE removes the lock file first, then the record: a record
         * renamed in between is removed here, one renamed before is
         * removed by DELETE.  An unfinished job always has its lock file.
         */

        ngx_http_podgen_job_path(lock, "locks", w->id, "");

        if (access(lock, F_OK) == -1 && errno == ENOENT) {
            (void) unlink(path);
            w->deleted = 1;
            return;
        }

    } else {
        w->err = errno;

        if (w->claim) {
            ngx_http_podgen_job_path(path, "locks", w->id, "");
            (void) unlink(path);
            (void) close(w->lock_fd);
            w->lock_fd = -1;
        }

        return;
    }

unlock:

    if (w->final || w->deleted) {
        /* finished: nobody needs to take it any more */
        ngx_http_podgen_job_path(path, "locks", w->id, "");
        (void) unlink(path);
    }
}


static void
ngx_http_podgen_job_write_after(void *data)
{
    ngx_http_podgen_job_write_t  *w = data;

    ngx_http_podgen_job_t  *job;

    job = w->job;
    job->writing = 0;

    if (w->claim) {
        if (w->err) {
            ngx_log_error(NGX_LOG_ERR, job->log, w->err,
                          "podgen: job \"%s\" could not be stored",
                          job->rec.id);

            if (job->accepted) {
                job->accepted(job->data, NGX_ERROR, &job->rec);
                job->accepted = NULL;
            }

            job->finished = 1;
            job->final = 1;
            ngx_http_podgen_job_maybe_free(job);
            return;
        }

        job->lock_fd = w->lock_fd;
        job->claimed = 1;

        ngx_http_podgen_job_l1_put(job->rec.id, w->json.data, w->json.len);
        ngx_http_podgen_job_redis_put(job, &w->json, 1);

        if (job->accepted) {
            job->accepted(job->data, NGX_OK, &job->rec);
            job->accepted = NULL;
        }

        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, 1);
        ngx_queue_insert_tail(&ngx_http_podgen_jobs_waiting, &job->queue);
        ngx_http_podgen_job_start_next();
        return;
    }

    if (w->deleted) {
        job->deleted = 1;
        ngx_http_podgen_job_stop(job);
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
        return;
    }

    if (w->err) {
        ngx_log_error(NGX_LOG_ERR, job->log, w->err,
                      "podgen: job \"%s\": the record could not be written",
                      job->rec.id);

    } else if (ngx_http_podgen_job_l1_deleted(job->rec.id)) {
        /* another worker of the node deleted it meanwhile */
        job->deleted = 1;
        ngx_http_podgen_job_stop(job);
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
        return;

    } else {
        ngx_http_podgen_job_l1_put(job->rec.id, w->json.data, w->json.len);
        ngx_http_podgen_job_redis_put(job, &w->json, 1);
    }

    if (job->dirty || (job->finished && !w->final)) {
        job->dirty = 0;
        ngx_http_podgen_job_write(job);
        return;
    }

    if (w->final) {
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
    }
}


static void
ngx_http_podgen_job_write_release(void *data)
{
    ngx_http_podgen_job_write_t  *w = data;

    pg_buf_free(&w->json);
    ngx_free(w);
}


static ngx_int_t
ngx_http_podgen_job_post_write(ngx_http_podgen_job_t *job, ngx_uint_t claim)
{
    ngx_http_podgen_job_write_t  *w;

    w = ngx_calloc(sizeof(ngx_http_podgen_job_write_t), job->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    job->rec.version++;
    job->rec.updated_ms = (int64_t) ngx_time() * 1000
                          + (int64_t) ngx_timeofday()->msec;

    if (pg_job_to_json(&job->rec, &w->json) != 0) {
        ngx_free(w);
        return NGX_ERROR;
    }

    w->job = job;
    w->lock_fd = -1;
    w->claim = claim;
    w->final = job->finished;
    ngx_memcpy(w->id, job->rec.id, sizeof(w->id));

    if (ngx_http_podgen_offload(ngx_http_podgen_jobs_pmcf->thread_pool,
                                ngx_http_podgen_job_write_thread,
                                ngx_http_podgen_job_write_after,
                                ngx_http_podgen_job_write_release, w,
                                job->log)
        == NULL)
    {
        pg_buf_free(&w->json);
        ngx_free(w);
        return NGX_BUSY;
    }

    job->writing = 1;

    return NGX_OK;
}


static void
ngx_http_podgen_job_write(ngx_http_podgen_job_t *job)
{
    if (job->writing) {
        job->dirty = 1;
        return;
    }

    if (ngx_http_podgen_job_post_write(job, 0) != NGX_OK) {
        /* the pool is full: write a little later */
        job->dirty = 1;

        if (!job->retry.timer_set) {
            ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOBS_RETRY);
        }
    }
}


/* ---- lifetime ----------------------------------------------------------- */


static ngx_http_podgen_job_t *
ngx_http_podgen_job_new(pg_job_t *rec)
{
    ngx_http_podgen_job_t  *job;

    job = ngx_calloc(sizeof(ngx_http_podgen_job_t), ngx_cycle->log);
    if (job == NULL) {
        return NULL;
    }

    job->rec = *rec;
    ngx_memzero(rec, sizeof(pg_job_t));

    job->lock_fd = -1;
    job->log = ngx_cycle->log;

    job->retry.handler = ngx_http_podgen_job_retry_handler;
    job->retry.data = job;
    job->retry.log = ngx_cycle->log;

    ngx_http_podgen_jobs_n++;

    if (!ngx_http_podgen_jobs_keep_ev.timer_set) {
        ngx_add_timer(&ngx_http_podgen_jobs_keep_ev, 1000);
    }

    return job;
}


static void
ngx_http_podgen_job_queued(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_t  *job = data;

    if (rc != NGX_OK || reply->type != NGX_HTTP_PODGEN_REDIS_STRING) {
        goto local;
    }

    /* in the stream: a worker of some node takes it from there */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, job->log, 0,
                   "podgen: job \"%s\" queued as %V", job->rec.id,
                   &reply->str);

    if (job->accepted) {
        job->accepted(job->data, NGX_OK, &job->rec);
        job->accepted = NULL;
    }

    job->finished = 1;
    job->final = 1;
    ngx_http_podgen_job_maybe_free(job);
    return;

local:

    /* Redis failed: this node runs it from its own store */

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "podgen: job \"%s\" could not be queued in redis, "
                  "run here", job->rec.id);

    if (ngx_http_podgen_job_post_write(job, 1) != NGX_OK) {
        if (job->accepted) {
            job->accepted(job->data, NGX_ERROR, &job->rec);
            job->accepted = NULL;
        }

        job->finished = 1;
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
    }
}


static void
ngx_http_podgen_job_stored(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_t  *job = data;

    if (rc == NGX_OK
        && ngx_http_podgen_redis_strings(ngx_http_podgen_job_queued, job, 0,
                                         5, "XADD", "%Pjobq", "*", "id",
                                         job->rec.id)
           != NULL)
    {
        return;
    }

    ngx_http_podgen_job_queued(job, NGX_ERROR, NULL);
}


ngx_int_t
ngx_http_podgen_job_submit(pg_job_t *rec,
    ngx_http_podgen_job_accepted_pt accepted, void *data,
    ngx_http_podgen_job_t **jp)
{
    ngx_int_t               rc;
    pg_buf_t                json;
    const char             *argv[3];
    size_t                  argvlen[3];
    ngx_http_podgen_job_t  *job;
    char                    key[sizeof("%Pjob:") + PG_JOB_ID_LEN];

    job = ngx_http_podgen_job_new(rec);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->accepted = accepted;
    job->data = data;

    if (ngx_http_podgen_jobs_redis && ngx_http_podgen_redis_up()) {

        /* the record, then the stream entry: 202 once both are there */

        job->rec.version = 1;
        ngx_memzero(&json, sizeof(pg_buf_t));

        if (pg_job_to_json(&job->rec, &json) == 0) {
            ngx_sprintf((u_char *) key, "%%Pjob:%s%Z", job->rec.id);

            argv[0] = "SET";
            argv[1] = key;
            argv[2] = (char *) json.data;
            argvlen[0] = 3;
            argvlen[1] = ngx_strlen(key);
            argvlen[2] = json.len;

            if (ngx_http_podgen_redis_command(ngx_http_podgen_job_stored, job,
                                              3, argv, argvlen, 0)
                != NULL)
            {
                if (job->rec.kind == PG_JOB_PODCAST) {
                    /* in the library of the fleet (pipelined after it) */
                    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 4,
                                                         "ZADD",
                                                         "%Ppodcasts", "0",
                                                         job->rec.id);
                }

                pg_buf_free(&json);
                *jp = job;
                return NGX_OK;
            }
        }

        pg_buf_free(&json);
        job->rec.version = 0;
    }

    /* Redis mode, Redis down: the node runs it; shared once Redis is back */
    job->unshared = ngx_http_podgen_jobs_redis;

    rc = ngx_http_podgen_job_post_write(job, 1);

    if (rc != NGX_OK) {
        *rec = job->rec;
        ngx_memzero(&job->rec, sizeof(pg_job_t));
        job->final = 1;
        job->finished = 1;
        ngx_http_podgen_job_maybe_free(job);
        return rc;
    }

    *jp = job;

    return NGX_OK;
}


void
ngx_http_podgen_job_detach(ngx_http_podgen_job_t *job)
{
    job->accepted = NULL;
    job->data = NULL;
}


pg_job_t *
ngx_http_podgen_job_record(ngx_http_podgen_job_t *job)
{
    return &job->rec;
}


static void
ngx_http_podgen_job_start_next(void)
{
    ngx_queue_t            *q;
    ngx_http_podgen_job_t  *job;

    while (ngx_http_podgen_jobs_nrunning
           < ngx_http_podgen_jobs_pmcf->jobs.concurrency
           && !ngx_queue_empty(&ngx_http_podgen_jobs_waiting))
    {
        q = ngx_queue_head(&ngx_http_podgen_jobs_waiting);
        ngx_queue_remove(q);
        ngx_queue_insert_tail(&ngx_http_podgen_jobs_running, q);

        job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);
        job->started = 1;
        ngx_http_podgen_jobs_nrunning++;

        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, -1);
        ngx_http_podgen_metrics_job(PG_MJOB_RUNNING, 1);

        ngx_http_podgen_job_run(job);
    }
}


/* Stops everything in flight; the job is then finished. */

static void
ngx_http_podgen_job_stop(ngx_http_podgen_job_t *job)
{
    ngx_uint_t  i;

    if (job->make) {
        ngx_http_podgen_script_cancel(job->make);
        job->make = NULL;
    }

    if (job->batch) {
        ngx_http_podgen_batch_job_cancel(job->batch);
        job->batch = NULL;
    }

    for (i = 0; i < job->nsegs; i++) {
        if (job->segs[i].make) {
            ngx_http_podgen_audio_cancel(job->segs[i].make);
            job->segs[i].make = NULL;
        }
    }

    job->active = 0;
    job->finished = 1;
}


static void
ngx_http_podgen_job_maybe_free(ngx_http_podgen_job_t *job)
{
    ngx_uint_t  i;

    if (job->writing || job->rendering || !job->final) {
        return;
    }

    if (job->retry.timer_set) {
        ngx_del_timer(&job->retry);
    }

    if (job->started) {
        ngx_queue_remove(&job->queue);
        ngx_http_podgen_jobs_nrunning--;
        ngx_http_podgen_metrics_job(PG_MJOB_RUNNING, -1);

        if (!job->deleted) {
            ngx_http_podgen_metrics_job(job->rec.status == PG_JOB_COMPLETED
                                        ? PG_MJOB_COMPLETED : PG_MJOB_FAILED,
                                        1);
        }

    } else if (job->claimed) {
        /* deleted while it waited */
        ngx_queue_remove(&job->queue);
        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, -1);
    }

    if (job->lock_fd != -1) {
        (void) close(job->lock_fd);
    }

    if (job->started || job->deleted) {
        ngx_http_podgen_job_redis_finish(job);
    }

    ngx_free(job->episode);

    for (i = 0; i < job->nsegs; i++) {
        ngx_free(job->segs[i].text);
        ngx_free(job->segs[i].wav);
    }

    ngx_free(job->segs);
    pg_script_free(&job->made);
    pg_podcast_request_free(&job->req);
    pg_job_free(&job->rec);
    ngx_free(job);

    ngx_http_podgen_jobs_n--;

    if (ngx_http_podgen_jobs_pmcf) {
        ngx_http_podgen_job_start_next();
    }
}


static void
ngx_http_podgen_job_retry_handler(ngx_event_t *ev)
{
    ngx_http_podgen_job_t  *job = ev->data;

    if (job->dirty && !job->writing) {
        job->dirty = 0;
        ngx_http_podgen_job_write(job);
    }

    if (job->finished) {
        return;
    }

    if (job->render_again) {
        job->render_again = 0;
        ngx_http_podgen_job_render(job);
        return;
    }

    ngx_http_podgen_job_pump(job);
}


static void
ngx_http_podgen_job_keep_handler(ngx_event_t *ev)
{
    if (ngx_http_podgen_jobs_n) {
        ngx_add_timer(ev, 1000);
    }
}


void
ngx_http_podgen_job_forget(const char *id)
{
    ngx_queue_t            *q, *next;
    ngx_queue_t            *queues[2];
    ngx_uint_t              i;
    ngx_http_podgen_job_t  *job;

    if (ngx_http_podgen_jobs_pmcf == NULL) {
        return;
    }

    queues[0] = &ngx_http_podgen_jobs_waiting;
    queues[1] = &ngx_http_podgen_jobs_running;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = next)
        {
            next = ngx_queue_next(q);
            job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

            if (ngx_strcmp(job->rec.id, id) != 0 || job->finished) {
                continue;
            }

            job->deleted = 1;
            ngx_http_podgen_job_stop(job);
            job->final = 1;
            ngx_http_podgen_job_maybe_free(job);
            return;
        }
    }
}


/* ---- the pipeline ------------------------------------------------------- */


static void
ngx_http_podgen_job_run(ngx_http_podgen_job_t *job)
{
    ngx_int_t                     rc;
    pg_error_t                    err;
    ngx_pool_t                   *pool;
    ngx_http_podgen_script_t      hit;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_podgen_jobs_pmcf;

    job->rec.status = PG_JOB_RUNNING;
    ngx_http_podgen_job_write(job);

    if (job->rec.request == NULL) {
        ngx_http_podgen_job_fail(job, "corrupt_record", "the job has no "
                                 "request");
        return;
    }

    if (job->rec.kind == PG_JOB_BATCH) {
        rc = ngx_http_podgen_batch_job_run(job, job->rec.request,
                                           ngx_strlen(job->rec.request),
                                           &job->batch);
        if (rc != NGX_OK) {
            ngx_http_podgen_job_fail(job, "server_error",
                                     "the batch could not be started");
        }

        return;
    }

    /* the request was checked when it was accepted */

    if (pg_podcast_request_parse(job->rec.request,
                                 ngx_strlen(job->rec.request),
                                 pmcf->max_source, pmcf->max_input, &job->req,
                                 &err)
        != 0)
    {
        ngx_http_podgen_job_fail(job, err.code ? err.code : "invalid_request",
                                 err.message);
        return;
    }

    if (job->req.edited) {
        job->script = &job->req.script;
        ngx_http_podgen_job_segments(job);
        return;
    }

    pool = ngx_create_pool(1024, job->log);
    if (pool == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    rc = ngx_http_podgen_script_make(pmcf, &job->req.script_req, pool,
                                     ngx_http_podgen_job_script_done, job,
                                     job->log, &hit, &job->make, &err);

    switch (rc) {

    case NGX_OK:
        ngx_http_podgen_job_script_done(job, NGX_OK, &hit, NULL);
        break;

    case NGX_AGAIN:
        break;

    case NGX_DECLINED:
        ngx_http_podgen_job_fail(job, err.code ? err.code : "script_error",
                                 err.message);
        break;

    default:
        ngx_http_podgen_job_fail(job, "server_error",
                                 "the script could not be started");
    }

    ngx_destroy_pool(pool);
}


static void
ngx_http_podgen_job_script_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err)
{
    ngx_http_podgen_job_t  *job = data;

    job->make = NULL;

    if (rc != NGX_OK) {
        ngx_http_podgen_job_fail(job, err->code ? err->code : "script_error",
                                 err->message);
        return;
    }

    if (pg_script_from_json((char *) script->json, script->len, &job->made)
        != 0)
    {
        ngx_http_podgen_job_fail(job, "server_error",
                                 "the script could not be read");
        return;
    }

    ngx_free(job->rec.engine);
    job->rec.engine = strdup(script->engine);

    job->script = &job->made;
    ngx_http_podgen_job_segments(job);
}


/* voices given to hosts that name none, in turn (as in scripts) */
static char  *ngx_http_podgen_job_voices[] = {
    "alloy", "echo", "fable", "nova", "onyx", "shimmer"
};


static void
ngx_http_podgen_job_segments(ngx_http_podgen_job_t *job)
{
    char                         *voice_name, *t;
    size_t                        i, n, len;
    pg_host_t                    *host;
    pg_script_t                  *script;
    pg_job_segment_t             *rs;
    ngx_http_podgen_job_seg_t    *seg;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_podgen_jobs_pmcf;
    script = job->script;
    n = script->nsegments;

    if (n == 0) {
        ngx_http_podgen_job_fail(job, "empty_script", "the script has no "
                                 "segments");
        return;
    }

    if (job->rec.title == NULL) {
        job->rec.title = strdup(job->req.title ? job->req.title
                                : (script->title ? script->title
                                                 : "A podcast"));
        if (job->rec.title == NULL) {
            goto nomem;
        }
    }

    job->segs = ngx_calloc(n * sizeof(ngx_http_podgen_job_seg_t), job->log);
    rs = calloc(n, sizeof(pg_job_segment_t));

    if (job->segs == NULL || rs == NULL) {
        free(rs);
        goto nomem;
    }

    /* the record's segments are rebuilt from the script */

    for (i = 0; i < job->rec.nsegments; i++) {
        free(job->rec.segments[i].speaker);
        free(job->rec.segments[i].voice);
        free(job->rec.segments[i].text);
        free(job->rec.segments[i].audio_key);
    }

    free(job->rec.segments);
    job->rec.segments = rs;
    job->rec.nsegments = n;
    job->nsegs = n;

    for (i = 0; i < n; i++) {
        seg = &job->segs[i];
        seg->job = job;

        host = &script->hosts[script->segments[i].speaker
                              < script->nhosts
                              ? script->segments[i].speaker : 0];

        voice_name = host->voice;

        if (voice_name == NULL) {
            voice_name = ngx_http_podgen_job_voices[
                             (host - script->hosts)
                             % (sizeof(ngx_http_podgen_job_voices)
                                / sizeof(char *))];
        }

        seg->voice = ngx_http_podgen_find_voice(pmcf, voice_name);
        if (seg->voice == NULL) {
            ngx_http_podgen_job_fail(job, "invalid_value",
                                     "a host's voice is not known here");
            return;
        }

        t = script->segments[i].text;
        seg->text = pg_text_normalize(t, ngx_strlen(t), &len);

        if (seg->text == NULL) {
            goto nomem;
        }

        if (len == 0) {
            ngx_http_podgen_job_fail(job, "invalid_value",
                                     "a segment has nothing to say");
            return;
        }

        seg->len = len;

        rs[i].speaker = strdup(host->name);
        rs[i].voice = strdup(voice_name);
        rs[i].text = strdup(t);
        rs[i].audio_key = malloc(PG_KEY_LEN + 1);
        rs[i].start = -1;
        rs[i].end = -1;

        if (rs[i].speaker == NULL || rs[i].voice == NULL || rs[i].text == NULL
            || rs[i].audio_key == NULL)
        {
            goto nomem;
        }

        if (ngx_http_podgen_speech_key(seg->voice, PG_FMT_WAV,
                                       job->rec.speed, seg->text, seg->len,
                                       rs[i].audio_key)
            != NGX_OK)
        {
            goto nomem;
        }
    }

    job->rec.done = 0;
    job->rec.total = n;

    ngx_http_podgen_job_write(job);
    ngx_http_podgen_job_pump(job);

    return;

nomem:

    ngx_http_podgen_job_fail(job, "server_error", "out of memory");
}


static void
ngx_http_podgen_job_pump(ngx_http_podgen_job_t *job)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_pool_t                 *pool;
    ngx_http_podgen_audio_t     hit;
    ngx_http_podgen_job_seg_t  *seg;

    for (i = 0; i < job->nsegs; i++) {

        if (job->finished || job->retry.timer_set
            || job->active >= NGX_HTTP_PODGEN_JOBS_WINDOW)
        {
            return;
        }

        seg = &job->segs[i];

        if (seg->state != 0) {
            continue;
        }

        pool = ngx_create_pool(1024, job->log);
        if (pool == NULL) {
            ngx_http_podgen_job_fail(job, "server_error", "out of memory");
            return;
        }

        /* done() may be called before audio_make() returns */

        seg->state = 1;
        job->active++;

        rc = ngx_http_podgen_audio_make(ngx_http_podgen_jobs_pmcf, seg->voice,
                                        PG_FMT_WAV, job->rec.speed, seg->text,
                                        seg->len, pool,
                                        ngx_http_podgen_job_seg_done, seg,
                                        job->log, &hit, &seg->make);

        if (rc == NGX_OK) {
            ngx_http_podgen_job_seg_done(seg, NGX_OK, &hit, NULL);

        } else if (rc == NGX_ERROR) {
            seg->state = 0;
            job->active--;
            ngx_http_podgen_job_fail(job, "server_error",
                                     "a segment could not be started");
        }

        ngx_destroy_pool(pool);
    }
}


static void
ngx_http_podgen_job_seg_done(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err)
{
    ngx_http_podgen_job_seg_t  *seg = data;

    ngx_http_podgen_job_t  *job;

    job = seg->job;
    seg->make = NULL;
    job->active--;

    if (rc != NGX_OK) {
        seg->state = 0;

        if (err->status == 503) {
            /* the pool is full: this segment again, a little later */

            if (!job->retry.timer_set) {
                ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOBS_RETRY);
            }

            return;
        }

        ngx_http_podgen_job_fail(job, err->code, err->message);
        return;
    }

    seg->state = 2;

    seg->wav = ngx_alloc(audio->len, job->log);
    if (seg->wav == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    ngx_memcpy(seg->wav, audio->audio, audio->len);
    seg->wav_len = audio->len;

    job->rec.done++;

    if (job->rec.done == job->nsegs) {
        ngx_http_podgen_job_render(job);
        return;
    }

    ngx_http_podgen_job_write(job);
    ngx_http_podgen_job_pump(job);
}


/* ---- the episode -------------------------------------------------------- */


static void
ngx_http_podgen_job_render_thread(void *data)
{
    ngx_http_podgen_job_render_t  *rd = data;

    pg_buf_t  out;
    char      path[NGX_MAX_PATH], lock[NGX_MAX_PATH], ext[8];

    ngx_memzero(&out, sizeof(pg_buf_t));

    if (pg_episode_render(rd->parts, rd->n, 0, NGX_HTTP_PODGEN_JOB_PAUSE,
                          rd->format, &out, rd->spans, &rd->duration,
                          rd->error, sizeof(rd->error))
        != 0)
    {
        rd->rc = -1;
        pg_buf_free(&out);
        return;
    }

    ngx_sprintf((u_char *) ext, ".%s%Z", pg_format_name(rd->format));
    ngx_http_podgen_job_path(path, "audio", rd->job->rec.id, ext);

    if (ngx_http_podgen_job_write_file(path, out.data, out.len) != NGX_OK) {
        ngx_snprintf((u_char *) rd->error, sizeof(rd->error),
                     "the episode could not be stored: %s%Z",
                     strerror(errno));
        rd->rc = -1;
        pg_buf_free(&out);
        return;
    }

    /* deleted while it was rendered (DELETE removes the lock file first) */

    ngx_http_podgen_job_path(lock, "locks", rd->job->rec.id, "");

    if (access(lock, F_OK) == -1 && errno == ENOENT) {
        (void) unlink(path);
        ngx_snprintf((u_char *) rd->error, sizeof(rd->error), "deleted%Z");
        rd->rc = -1;
        pg_buf_free(&out);
        return;
    }

    rd->bytes = out.len;
    rd->rc = 0;

    if (rd->keep) {
        rd->out = out;
        return;
    }

    pg_buf_free(&out);
}


static void
ngx_http_podgen_job_render_after(void *data)
{
    ngx_http_podgen_job_render_t  *rd = data;

    size_t                  i;
    ngx_http_podgen_job_t  *job;

    job = rd->job;
    job->rendering = 0;

    if (job->finished) {
        /* deleted meanwhile */
        ngx_http_podgen_job_maybe_free(job);
        return;
    }

    if (rd->rc != 0) {
        ngx_http_podgen_job_fail(job, "render_error", rd->error);
        return;
    }

    for (i = 0; i < rd->n && i < job->rec.nsegments; i++) {
        job->rec.segments[i].start = rd->spans[i].start;
        job->rec.segments[i].end = rd->spans[i].end;
    }

    job->rec.duration_s = rd->duration;
    job->rec.audio_bytes = rd->bytes;
    job->rec.status = PG_JOB_COMPLETED;

    if (rd->keep && rd->out.len) {
        /* other nodes serve the episode from Redis */
        ngx_http_podgen_job_redis_episode(job->rec.id, &rd->out);
    }

    for (i = 0; i < job->nsegs; i++) {
        ngx_free(job->segs[i].wav);
        job->segs[i].wav = NULL;
    }

    job->finished = 1;
    ngx_http_podgen_job_write(job);
}


static void
ngx_http_podgen_job_render_release(void *data)
{
    ngx_http_podgen_job_render_t  *rd = data;

    /* after() has run: the task is never detached */

    pg_buf_free(&rd->out);
    ngx_free(rd->parts);
    ngx_free(rd->spans);
    ngx_free(rd);
}


static void
ngx_http_podgen_job_render(ngx_http_podgen_job_t *job)
{
    size_t                         i;
    pg_format_t                    format;
    ngx_http_podgen_job_render_t  *rd;

    format = pg_format_from_name(job->rec.format,
                                 job->rec.format
                                 ? ngx_strlen(job->rec.format) : 0);
    if (format == PG_FMT_UNKNOWN || format == PG_FMT_AAC) {
        ngx_http_podgen_job_fail(job, "invalid_value", "unknown format");
        return;
    }

    rd = ngx_calloc(sizeof(ngx_http_podgen_job_render_t), job->log);
    if (rd == NULL) {
        goto nomem;
    }

    rd->parts = ngx_calloc(job->nsegs * sizeof(pg_episode_part_t), job->log);
    rd->spans = ngx_calloc(job->nsegs * sizeof(pg_episode_span_t), job->log);

    if (rd->parts == NULL || rd->spans == NULL) {
        ngx_free(rd->parts);
        ngx_free(rd->spans);
        ngx_free(rd);
        goto nomem;
    }

    for (i = 0; i < job->nsegs; i++) {
        rd->parts[i].wav = job->segs[i].wav;
        rd->parts[i].len = job->segs[i].wav_len;
    }

    rd->job = job;
    rd->n = job->nsegs;
    rd->format = format;
    rd->keep = ngx_http_podgen_jobs_redis;

    /* the progress record goes out while the episode is made */
    ngx_http_podgen_job_write(job);

    if (ngx_http_podgen_offload(ngx_http_podgen_jobs_pmcf->thread_pool,
                                ngx_http_podgen_job_render_thread,
                                ngx_http_podgen_job_render_after,
                                ngx_http_podgen_job_render_release, rd,
                                job->log)
        == NULL)
    {
        /* the pool is full: a little later */
        ngx_free(rd->parts);
        ngx_free(rd->spans);
        ngx_free(rd);

        job->render_again = 1;

        if (!job->retry.timer_set) {
            ngx_add_timer(&job->retry, NGX_HTTP_PODGEN_JOBS_RETRY);
        }

        return;
    }

    job->rendering = 1;
    return;

nomem:

    ngx_http_podgen_job_fail(job, "server_error", "out of memory");
}


static void
ngx_http_podgen_job_fail(ngx_http_podgen_job_t *job, const char *code,
    const char *message)
{
    if (job->finished) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0, "podgen: job \"%s\" failed: %s",
                  job->rec.id, message);

    ngx_http_podgen_job_stop(job);

    job->rec.status = PG_JOB_FAILED;

    free(job->rec.error_code);
    free(job->rec.error_message);
    job->rec.error_code = strdup(code ? code : "server_error");
    job->rec.error_message = strdup(message ? message : "failed");

    ngx_http_podgen_job_write(job);
}


/* ---- batch jobs --------------------------------------------------------- */


void
ngx_http_podgen_job_progress(ngx_http_podgen_job_t *job, size_t done,
    size_t total)
{
    job->rec.done = done;
    job->rec.total = total;
    ngx_http_podgen_job_write(job);
}


void
ngx_http_podgen_job_batch_done(ngx_http_podgen_job_t *job, ngx_int_t rc,
    u_char *result, size_t len, pg_error_t *err)
{
    job->batch = NULL;

    if (rc != NGX_OK) {
        ngx_http_podgen_job_fail(job, err->code, err->message);
        return;
    }

    free(job->rec.result);

    job->rec.result = malloc(len + 1);
    if (job->rec.result == NULL) {
        ngx_http_podgen_job_fail(job, "server_error", "out of memory");
        return;
    }

    ngx_memcpy(job->rec.result, result, len);
    job->rec.result[len] = '\0';

    job->rec.status = PG_JOB_COMPLETED;
    job->finished = 1;
    ngx_http_podgen_job_write(job);
}


/* ---- unfinished jobs in the store --------------------------------------- */


static void
ngx_http_podgen_job_scan_thread(void *data)
{
    ngx_http_podgen_job_scan_t  *sc = data;

    int             fd;
    DIR            *dir;
    size_t          len;
    u_char         *raw;
    ssize_t         n;
    pg_job_t        rec;
    pg_error_t      err;
    struct stat     st;
    struct dirent  *de;
    char            path[NGX_MAX_PATH];

    ngx_http_podgen_job_path(path, "locks", "", "");

    dir = opendir(path);
    if (dir == NULL) {
        return;
    }

    while (sc->n < sc->room && (de = readdir(dir)) != NULL) {

        len = ngx_strlen(de->d_name);

        if (!pg_job_id_valid(de->d_name, len)) {
            continue;
        }

        ngx_http_podgen_job_path(path, "locks", de->d_name, "");

        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd == -1) {
            continue;
        }

        if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
            /* somebody runs it */
            (void) close(fd);
            continue;
        }

        ngx_http_podgen_job_path(path, "jobs", de->d_name, ".json");

        raw = NULL;
        rec.status = PG_JOB_FAILED;

        if (stat(path, &st) == 0 && st.st_size < 64 * 1024 * 1024) {
            raw = malloc(st.st_size + 1);
        }

        if (raw) {
            int  rfd = open(path, O_RDONLY | O_CLOEXEC);

            n = (rfd == -1) ? -1 : read(rfd, raw, st.st_size);

            if (rfd != -1) {
                (void) close(rfd);
            }

            if (n != st.st_size
                || pg_job_from_json((char *) raw, n, &rec, &err) != 0)
            {
                rec.status = PG_JOB_FAILED;
            }

            free(raw);
        }

        if (rec.status != PG_JOB_QUEUED && rec.status != PG_JOB_RUNNING) {
            /* finished, deleted or unreadable: nothing to take */
            if (raw) {
                pg_job_free(&rec);
            }

            ngx_http_podgen_job_path(path, "locks", de->d_name, "");
            (void) unlink(path);
            (void) close(fd);
            continue;
        }

        sc->recs[sc->n] = rec;
        sc->fds[sc->n] = fd;
        sc->n++;
    }

    (void) closedir(dir);
}


static void
ngx_http_podgen_job_scan_after(void *data)
{
    ngx_http_podgen_job_scan_t  *sc = data;

    ngx_uint_t              i;
    ngx_http_podgen_job_t  *job;

    for (i = 0; i < sc->n; i++) {

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "podgen: job \"%s\" resumed", sc->recs[i].id);

        job = ngx_http_podgen_job_new(&sc->recs[i]);
        if (job == NULL) {
            pg_job_free(&sc->recs[i]);
            (void) close(sc->fds[i]);
            continue;
        }

        job->lock_fd = sc->fds[i];
        job->claimed = 1;

        ngx_http_podgen_metrics_job(PG_MJOB_QUEUED, 1);
        ngx_queue_insert_tail(&ngx_http_podgen_jobs_waiting, &job->queue);
    }

    sc->n = 0;

    ngx_http_podgen_job_start_next();
}


static void
ngx_http_podgen_job_scan_release(void *data)
{
    ngx_http_podgen_job_scan_t  *sc = data;

    ngx_uint_t  i;

    /* not taken over (the worker exits): let them go */

    for (i = 0; i < sc->n; i++) {
        pg_job_free(&sc->recs[i]);
        (void) close(sc->fds[i]);
    }

    ngx_free(sc->recs);
    ngx_free(sc->fds);
    ngx_free(sc);

    ngx_http_podgen_jobs_scanning = 0;

    if (ngx_http_podgen_jobs_pmcf && !ngx_exiting && !ngx_quit
        && !ngx_terminate)
    {
        ngx_add_timer(&ngx_http_podgen_jobs_scan_ev,
                      NGX_HTTP_PODGEN_JOBS_SCAN);
    }
}


static void
ngx_http_podgen_job_scan_handler(ngx_event_t *ev)
{
    ngx_uint_t                   room, have;
    ngx_http_podgen_job_scan_t  *sc;

    if (ngx_exiting || ngx_http_podgen_jobs_scanning) {
        return;
    }

    /* take what this worker can start soon; others take the rest */

    have = ngx_http_podgen_jobs_n;
    room = 2 * ngx_http_podgen_jobs_pmcf->jobs.concurrency;

    if (have >= room) {
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SCAN);
        return;
    }

    room -= have;

    sc = ngx_calloc(sizeof(ngx_http_podgen_job_scan_t), ev->log);
    if (sc == NULL) {
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SCAN);
        return;
    }

    sc->room = room;
    sc->recs = ngx_calloc(room * sizeof(pg_job_t), ev->log);
    sc->fds = ngx_calloc(room * sizeof(int), ev->log);

    if (sc->recs == NULL || sc->fds == NULL
        || ngx_http_podgen_offload(ngx_http_podgen_jobs_pmcf->thread_pool,
                                   ngx_http_podgen_job_scan_thread,
                                   ngx_http_podgen_job_scan_after,
                                   ngx_http_podgen_job_scan_release, sc,
                                   ev->log)
           == NULL)
    {
        ngx_free(sc->recs);
        ngx_free(sc->fds);
        ngx_free(sc);
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_SCAN);
        return;
    }

    ngx_http_podgen_jobs_scanning = 1;
}


/* ---- Redis mode: the job stream ----------------------------------------- */


/*
 * Jobs are entries of the stream {prefix}jobq, read by the consumer group
 * "podgen": each worker is a consumer (host:pid:start).  A worker that
 * runs a job claims its entry again every few seconds; entries idle for
 * longer than NGX_HTTP_PODGEN_JOBS_RECLAIM belong to a dead worker and are
 * taken over (XAUTOCLAIM).  A finished job's entry is acknowledged and
 * deleted.
 */

typedef struct {
    char   entry[48];
    char   id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_delivery_t;


static void
ngx_http_podgen_job_redis_ack(const char *entry)
{
    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 4, "XACK", "%Pjobq",
                                         "podgen", entry);
    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 3, "XDEL", "%Pjobq",
                                         entry);
}


static void
ngx_http_podgen_job_redis_finish(ngx_http_podgen_job_t *job)
{
    if (job->entry[0]) {
        ngx_http_podgen_job_redis_ack(job->entry);
        job->entry[0] = '\0';
    }
}


static ngx_http_podgen_job_t *
ngx_http_podgen_job_find(const char *id)
{
    ngx_queue_t            *q;
    ngx_queue_t            *queues[2];
    ngx_uint_t              i;
    ngx_http_podgen_job_t  *job;

    queues[0] = &ngx_http_podgen_jobs_waiting;
    queues[1] = &ngx_http_podgen_jobs_running;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = ngx_queue_next(q))
        {
            job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

            if (ngx_strcmp(job->rec.id, id) == 0) {
                return job;
            }
        }
    }

    return NULL;
}


/* The record of a delivered entry is here: run it. */

static void
ngx_http_podgen_job_delivered(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_delivery_t  *d = data;

    pg_job_t                rec;
    pg_error_t              err;
    ngx_http_podgen_job_t  *job;

    if (rc != NGX_OK || ngx_http_podgen_jobs_pmcf == NULL) {
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

    if (rec.status == PG_JOB_COMPLETED || rec.status == PG_JOB_FAILED
        || ngx_http_podgen_job_find(rec.id))
    {
        if (rec.status == PG_JOB_COMPLETED || rec.status == PG_JOB_FAILED) {
            ngx_http_podgen_job_redis_ack(d->entry);
        }

        pg_job_free(&rec);
        ngx_free(d);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "podgen: job \"%s\" taken from the stream (%s)", rec.id,
                  d->entry);

    job = ngx_http_podgen_job_new(&rec);
    if (job == NULL) {
        pg_job_free(&rec);
        ngx_free(d);
        return;
    }

    ngx_memcpy(job->entry, d->entry, sizeof(job->entry));
    ngx_free(d);

    /* this node's copy, then it runs here */

    if (ngx_http_podgen_job_post_write(job, 1) != NGX_OK) {
        job->entry[0] = '\0';
        job->finished = 1;
        job->final = 1;
        ngx_http_podgen_job_maybe_free(job);
    }
}


/* [[entry-id, [field, value, ...]], ...] */

static void
ngx_http_podgen_job_entries(ngx_http_podgen_redis_value_t *entries)
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

        if (ngx_http_podgen_redis_strings(ngx_http_podgen_job_delivered, d, 0,
                                          2, "GET", key)
            == NULL)
        {
            ngx_free(d);
        }
    }
}


static void
ngx_http_podgen_jobs_read_done(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    size_t                          i;
    ngx_msec_t                      next;
    ngx_http_podgen_redis_value_t  *stream;

    ngx_http_podgen_jobs_stream_op = NULL;
    next = NGX_HTTP_PODGEN_JOBS_POLL;

    if (rc != NGX_OK) {
        /* NOGROUP after Redis lost its data, or any failure: make sure
         * the group is there on the next look (BUSYGROUP is harmless) */
        ngx_http_podgen_jobs_group_made = 0;
    }

    if (rc == NGX_OK) {
        /* [[stream, entries]] */

        for (i = 0; i < reply->n; i++) {
            stream = ngx_http_podgen_redis_elt(reply, i);

            if (stream->n == 2) {
                ngx_http_podgen_job_entries(ngx_http_podgen_redis_elt(stream,
                                                                      1));
                next = 10;
            }
        }
    }

    if (ngx_http_podgen_jobs_pmcf && !ngx_exiting
        && !ngx_http_podgen_jobs_stream_ev.timer_set)
    {
        ngx_add_timer(&ngx_http_podgen_jobs_stream_ev, next);
    }
}


static void
ngx_http_podgen_jobs_reclaim_done(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    /* [next-cursor, entries, deleted-ids] */

    if (rc == NGX_OK) {
        ngx_http_podgen_job_entries(ngx_http_podgen_redis_elt(reply, 1));
    }
}


static void
ngx_http_podgen_jobs_group_done(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    /* made now, or there already (BUSYGROUP): either way it is there */
    ngx_http_podgen_jobs_group_made = 1;
}


static void
ngx_http_podgen_jobs_beat(void)
{
    int                     argc;
    char                    key[16];
    ngx_queue_t            *q;
    ngx_queue_t            *queues[2];
    ngx_uint_t              i;
    const char             *argv[16];
    size_t                  argvlen[16];
    ngx_http_podgen_job_t  *job;

    ngx_sprintf((u_char *) key, "%%Pjobq%Z");

    /* XCLAIM jobq podgen me 0 id... JUSTID: "still mine", idle 0 */

    argv[0] = "XCLAIM";
    argv[1] = key;
    argv[2] = "podgen";
    argv[3] = ngx_http_podgen_jobs_consumer;
    argv[4] = "0";
    argc = 5;

    queues[0] = &ngx_http_podgen_jobs_waiting;
    queues[1] = &ngx_http_podgen_jobs_running;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]) && argc < 15;
             q = ngx_queue_next(q))
        {
            job = ngx_queue_data(q, ngx_http_podgen_job_t, queue);

            if (job->entry[0]) {
                argv[argc++] = job->entry;
            }
        }
    }

    if (argc == 5) {
        return;
    }

    argv[argc++] = "JUSTID";

    for (i = 0; i < (ngx_uint_t) argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    (void) ngx_http_podgen_redis_command(NULL, NULL, argc, argv, argvlen, 0);
}


/* A page of the index walk is done: the next one on the next turn. */

static void
ngx_http_podgen_jobs_index_done(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_jobs_index_op = NULL;

    if (rc != NGX_OK || reply->type != NGX_HTTP_PODGEN_REDIS_STRING
        || reply->str.len == 0
        || reply->str.len >= sizeof(ngx_http_podgen_jobs_index_at))
    {
        /* again from where it was, later */
        return;
    }

    if (ngx_http_podgen_redis_is(reply, "0")) {
        ngx_http_podgen_jobs_indexed = 1;
        return;
    }

    ngx_memcpy(ngx_http_podgen_jobs_index_at, reply->str.data,
               reply->str.len);
    ngx_http_podgen_jobs_index_at[reply->str.len] = '\0';
}


static void
ngx_http_podgen_jobs_stream_handler(ngx_event_t *ev)
{
    char                          count[NGX_INT_T_LEN + 1];
    ngx_uint_t                    room, beat;

    if (ngx_exiting || ngx_http_podgen_jobs_pmcf == NULL) {
        return;
    }

    if (!ngx_http_podgen_redis_up()) {
        /* the jobs here go on; new ones wait for Redis */
        ngx_add_timer(ev, 1000);
        return;
    }

    if (!ngx_http_podgen_jobs_group_made) {
        (void) ngx_http_podgen_redis_strings(ngx_http_podgen_jobs_group_done,
                                             NULL, 0, 6, "XGROUP", "CREATE",
                                             "%Pjobq", "podgen", "0",
                                             "MKSTREAM");
    }

    if (!ngx_http_podgen_jobs_indexed && ngx_worker == 0
        && ngx_http_podgen_jobs_index_op == NULL)
    {
        ngx_http_podgen_jobs_index_op = ngx_http_podgen_redis_strings(
                                 ngx_http_podgen_jobs_index_done, NULL, 0, 9,
                                 "EVAL", NGX_HTTP_PODGEN_JOBS_INDEX_LUA, "3",
                                 "%Ppodcasts", "%Pepisodes",
                                 "%Ppodcasts:indexed",
                                 ngx_http_podgen_jobs_index_at,
                                 "%Pjob:pod_*", "%Pjob:");
    }

    beat = (ngx_msec_int_t) (ngx_current_msec
                             - ngx_http_podgen_jobs_last_beat)
           >= NGX_HTTP_PODGEN_JOBS_BEAT;

    if (beat) {
        ngx_http_podgen_jobs_last_beat = ngx_current_msec;
        ngx_http_podgen_jobs_beat();
    }

    room = 2 * ngx_http_podgen_jobs_pmcf->jobs.concurrency;
    room = (ngx_http_podgen_jobs_n >= room) ? 0
                                            : room - ngx_http_podgen_jobs_n;

    if (room == 0) {
        ngx_add_timer(ev, NGX_HTTP_PODGEN_JOBS_POLL);
        return;
    }

    ngx_sprintf((u_char *) count, "%ui%Z", room);

    if (beat) {
        /* entries of workers that stopped beating */

        (void) ngx_http_podgen_redis_strings(
                                         ngx_http_podgen_jobs_reclaim_done,
                                         NULL, 0, 8, "XAUTOCLAIM", "%Pjobq",
                                         "podgen",
                                         ngx_http_podgen_jobs_consumer,
                                         NGX_HTTP_PODGEN_JOBS_RECLAIM, "0-0",
                                         "COUNT", count);
    }

    ngx_http_podgen_jobs_stream_op = ngx_http_podgen_redis_strings(
                                         ngx_http_podgen_jobs_read_done, NULL,
                                         0, 9, "XREADGROUP", "GROUP",
                                         "podgen",
                                         ngx_http_podgen_jobs_consumer,
                                         "COUNT", count, "STREAMS", "%Pjobq",
                                         ">");

    if (ngx_http_podgen_jobs_stream_op == NULL) {
        ngx_add_timer(ev, 1000);
    }
}


/* ---- reading a job from anywhere ---------------------------------------- */


typedef struct {
    ngx_http_podgen_job_found_pt   found;
    void                          *data;
    ngx_uint_t                     episode;
    char                           id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_fetch_t;


static void
ngx_http_podgen_job_fetched(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_fetch_t  *f = data;

    pg_job_t    rec;
    pg_error_t  err;

    ngx_memzero(&rec, sizeof(pg_job_t));

    if (f->found == NULL) {
        /* canceled */

    } else if (rc != NGX_OK) {
        f->found(f->data, NGX_ERROR, NULL, NULL, 0);

    } else if (reply->type != NGX_HTTP_PODGEN_REDIS_STRING) {
        f->found(f->data, NGX_DECLINED, NULL, NULL, 0);

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
ngx_http_podgen_job_lookup(ngx_pool_t *pool, const char *id, pg_job_t *rec,
    ngx_log_t *log, ngx_uint_t episode, ngx_http_podgen_job_found_pt found,
    void *data, void **handle)
{
    ngx_int_t                     rc;
    ngx_http_podgen_redis_op_t   *op;
    ngx_http_podgen_job_fetch_t  *f;
    char                          key[sizeof("%Pepisode:") + PG_JOB_ID_LEN];

    *handle = NULL;

    if (!episode) {
        rc = ngx_http_podgen_job_load(pool, id, rec, log);

        if (rc != NGX_DECLINED || !ngx_http_podgen_jobs_redis) {
            return rc;
        }

    } else if (!ngx_http_podgen_jobs_redis) {
        return NGX_DECLINED;
    }

    /* another node's job: Redis has it */

    f = ngx_calloc(sizeof(ngx_http_podgen_job_fetch_t), log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->found = found;
    f->data = data;
    f->episode = episode;
    ngx_memcpy(f->id, id, PG_JOB_ID_LEN);

    ngx_sprintf((u_char *) key, "%%P%s:%s%Z", episode ? "episode" : "job",
                id);

    op = ngx_http_podgen_redis_strings(ngx_http_podgen_job_fetched, f, 2000,
                                       2, "GET", key);
    if (op == NULL) {
        ngx_free(f);
        return NGX_DECLINED;
    }

    *handle = f;

    return NGX_AGAIN;
}


/* found() is not called then; Redis's answer frees what is left */

void
ngx_http_podgen_job_lookup_cancel(void *handle)
{
    ngx_http_podgen_job_fetch_t  *f = handle;

    f->found = NULL;
}


/* DELETE in Redis: NGX_OK there was something, NGX_DECLINED not. */

typedef struct {
    ngx_http_podgen_job_found_pt   found;
    void                          *data;
} ngx_http_podgen_job_del_t;


static void
ngx_http_podgen_job_deleted(void *data, ngx_int_t rc, ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_job_del_t  *d = data;

    if (d->found == NULL) {
        /* canceled */

    } else if (rc != NGX_OK) {
        d->found(d->data, NGX_ERROR, NULL, NULL, 0);

    } else {
        d->found(d->data, (reply->type == NGX_HTTP_PODGEN_REDIS_INTEGER
                           && reply->integer > 0) ? NGX_OK : NGX_DECLINED,
                 NULL, NULL, 0);
    }

    ngx_free(d);
}


ngx_int_t
ngx_http_podgen_job_redis_delete(const char *id,
    ngx_http_podgen_job_found_pt found, void *data, void **handle)
{
    ngx_http_podgen_redis_op_t *op;
    ngx_http_podgen_job_del_t  *d;
    char                        k1[sizeof("%Pjob:") + PG_JOB_ID_LEN];
    char                        k2[sizeof("%Pepisode:") + PG_JOB_ID_LEN];

    *handle = NULL;

    if (!ngx_http_podgen_jobs_redis) {
        return NGX_DECLINED;
    }

    d = ngx_calloc(sizeof(ngx_http_podgen_job_del_t), ngx_cycle->log);
    if (d == NULL) {
        return NGX_ERROR;
    }

    d->found = found;
    d->data = data;

    ngx_sprintf((u_char *) k1, "%%Pjob:%s%Z", id);
    ngx_sprintf((u_char *) k2, "%%Pepisode:%s%Z", id);

    op = ngx_http_podgen_redis_strings(ngx_http_podgen_job_deleted, d, 0, 3,
                                       "DEL", k1, k2);
    if (op == NULL) {
        ngx_free(d);
        return NGX_DECLINED;
    }

    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 3, "ZREM",
                                         "%Ppodcasts", id);
    (void) ngx_http_podgen_redis_strings(NULL, NULL, 0, 3, "ZREM",
                                         "%Pepisodes", id);

    /* the same first field: lookup_cancel() cancels it too */
    *handle = d;

    return NGX_AGAIN;
}


/*
 * Redis mode: the records of the newest podcasts of the fleet with ids
 * below cursor ("": from the newest), at most n; completed ones only for
 * the feed.  The reply is an array of the records' JSON.  NULL: not in
 * Redis mode, or Redis is not up (the node's own store answers then).
 */

ngx_http_podgen_redis_op_t *
ngx_http_podgen_jobs_redis_list(const char *cursor, ngx_uint_t n,
    ngx_uint_t feed, ngx_http_podgen_redis_reply_pt handler, void *data)
{
    char   max[PG_JOB_ID_LEN + 2], count[NGX_INT_T_LEN + 1];

    if (!ngx_http_podgen_jobs_redis) {
        return NULL;
    }

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
