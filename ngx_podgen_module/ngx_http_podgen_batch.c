/*
 * podgen: POST /v1/batch (and /batch/process) — many scripts, speeches and
 * podcasts in one request.
 *
 *   {"requests": [{"type": "script" | "speech" | "podcast", "body": {...}},
 *                 ...], "async": false}
 *
 * Items run concurrently, a few at a time; identical items (same type and
 * same body) are made once; an item that fails is reported in its place
 * and the others go on.  Speech items answer with the URL of their audio
 * (GET /v1/audio/{key}.{ext}), scripts with the script, podcasts with the
 * new job.  With "async": true the batch is itself a durable job (id
 * "bat_..."), polled at /v1/podcasts/{id} like a podcast, whose record
 * holds the results when it is completed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>

#include "pg_key.h"
#include "pg_text.h"
#include "pg_podcast.h"
#include "pg_speech_request.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_scripts.h"
#include "ngx_http_podgen_sources.h"
#include "ngx_http_podgen_artifact.h"
#include "ngx_http_podgen_podcasts.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_batch.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_BATCH_WINDOW  8         /* items made at once */


typedef enum {
    NGX_HTTP_PODGEN_ITEM_SCRIPT = 0,
    NGX_HTTP_PODGEN_ITEM_SPEECH,
    NGX_HTTP_PODGEN_ITEM_PODCAST
} ngx_http_podgen_item_type_e;


typedef struct ngx_http_podgen_batch_s  ngx_http_podgen_batch_t;

typedef void (*ngx_http_podgen_batch_done_pt)(ngx_http_podgen_batch_t *b);


typedef struct {
    ngx_http_podgen_batch_t        *batch;
    ngx_uint_t                      index;
    ngx_uint_t                      type;
    ngx_uint_t                      status;     /* 0 while pending */
    ngx_uint_t                      cached;
    ngx_int_t                       first;      /* -1, or the same item */
    u_char                         *body;       /* the item's body JSON */
    size_t                          body_len;
    pg_buf_t                        result;     /* "body":... | "error":... */
    ngx_http_podgen_script_make_t  *smake;
    ngx_http_podgen_audio_make_t   *amake;
    ngx_http_podgen_job_t          *job;
    char                            key[PG_KEY_LEN + 1];
    unsigned                        started:1;
    unsigned                        typed:1;    /* a known type */
} ngx_http_podgen_batch_item_t;


struct ngx_http_podgen_batch_s {
    ngx_http_podgen_main_conf_t    *pmcf;
    ngx_log_t                      *log;
    ngx_pool_t                     *pool;
    ngx_http_podgen_batch_item_t   *items;
    ngx_uint_t                      n;
    ngx_uint_t                      active;
    ngx_uint_t                      done;
    ngx_uint_t                      deduplicated;
    ngx_msec_t                      start;
    ngx_http_podgen_batch_done_pt   finished;
    void                           *data;       /* request or job */
    pg_buf_t                        out;        /* the reply */
    unsigned                        pumping:1;
    unsigned                        over:1;
};


static ngx_http_podgen_batch_t *ngx_http_podgen_batch_parse(
    ngx_http_podgen_main_conf_t *pmcf, const char *body, size_t len,
    ngx_uint_t *async, ngx_log_t *log, pg_error_t *err);
static void ngx_http_podgen_batch_pump(ngx_http_podgen_batch_t *b);
static void ngx_http_podgen_batch_check(ngx_http_podgen_batch_t *b);
static void ngx_http_podgen_batch_item_error(ngx_http_podgen_batch_item_t *it,
    pg_error_t *err);
static void ngx_http_podgen_batch_free(ngx_http_podgen_batch_t *b);
static void ngx_http_podgen_batch_cancel(ngx_http_podgen_batch_t *b);
static void ngx_http_podgen_batch_body(ngx_http_request_t *r);
static void ngx_http_podgen_batch_request_done(ngx_http_podgen_batch_t *b);
static void ngx_http_podgen_batch_job_done(ngx_http_podgen_batch_t *b);


static const char  *ngx_http_podgen_item_types[] = {
    "script", "speech", "podcast"
};


/* ---- the request -------------------------------------------------------- */


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_podgen_batch_t    *batch;
    ngx_http_podgen_job_t      *job;
} ngx_http_podgen_batch_ctx_t;


static void
ngx_http_podgen_batch_cleanup(void *data)
{
    ngx_http_podgen_batch_ctx_t  *ctx = data;

    if (ctx->batch) {
        ngx_http_podgen_metrics_error(PG_ERR_CLIENT_GONE);
        ngx_http_podgen_batch_cancel(ctx->batch);
        ctx->batch = NULL;
    }

    if (ctx->job) {
        ngx_http_podgen_job_detach(ctx->job);
        ctx->job = NULL;
    }
}


ngx_int_t
ngx_http_podgen_batch_handler(ngx_http_request_t *r)
{
    return ngx_http_podgen_read_json_request(r, ngx_http_podgen_batch_body);
}


static void
ngx_http_podgen_batch_accepted(void *data, ngx_int_t rc, pg_job_t *rec)
{
    ngx_http_podgen_batch_ctx_t  *ctx = data;

    pg_buf_t             out;
    ngx_str_t            location;
    u_char              *json;
    ngx_http_request_t  *r;

    ctx->job = NULL;
    r = ctx->request;

    ngx_memzero(&out, sizeof(pg_buf_t));

    if (rc != NGX_OK || pg_job_public_json(rec, "/v1/podcasts", &out) != 0) {
        /* the error filter makes it JSON: 507 insufficient_storage, 500 */
        pg_buf_free(&out);
        ngx_http_podgen_finalize(r, rc == NGX_HTTP_INSUFFICIENT_STORAGE
                                    ? rc : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json = ngx_pnalloc(r->pool, out.len);
    location.data = ngx_pnalloc(r->pool, sizeof("/v1/podcasts/")
                                         + PG_JOB_ID_LEN);
    r->headers_out.location = ngx_list_push(&r->headers_out.headers);

    if (json == NULL || location.data == NULL
        || r->headers_out.location == NULL)
    {
        pg_buf_free(&out);
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(json, out.data, out.len);

    location.len = ngx_sprintf(location.data, "/v1/podcasts/%s", rec->id)
                   - location.data;

    r->headers_out.location->hash = 1;
    ngx_str_set(&r->headers_out.location->key, "Location");
    r->headers_out.location->value = location;

    rc = ngx_http_podgen_send_json(r, NGX_HTTP_ACCEPTED, json, out.len);
    pg_buf_free(&out);

    ngx_http_podgen_finalize(r, rc);
}


static void
ngx_http_podgen_batch_body(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    ngx_int_t                     rc;
    pg_job_t                      rec;
    ngx_uint_t                    async;
    ngx_time_t                   *tp;
    pg_error_t                    err;
    ngx_pool_cleanup_t           *cln;
    ngx_http_podgen_batch_t      *b;
    ngx_http_podgen_batch_ctx_t  *ctx;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b = ngx_http_podgen_batch_parse(pmcf, (char *) body, len, &async,
                                    r->connection->log, &err);
    if (b == NULL) {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_batch_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        ngx_http_podgen_batch_free(b);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->request = r;
    cln->handler = ngx_http_podgen_batch_cleanup;
    cln->data = ctx;

    if (async) {
        /* checked; the job parses it again when it runs */
        ngx_http_podgen_batch_free(b);

        if (!pmcf->jobs.used || ngx_http_podgen_jobs_conf() == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memzero(&rec, sizeof(pg_job_t));

        tp = ngx_timeofday();

        rec.kind = PG_JOB_BATCH;
        rec.status = PG_JOB_QUEUED;
        rec.created_ms = (int64_t) tp->sec * 1000 + tp->msec;
        rec.updated_ms = rec.created_ms;
        rec.speed = 1.0;
        rec.request = malloc(len + 1);
        rec.title = strdup("Batch");

        if (rec.request == NULL || rec.title == NULL) {
            pg_job_free(&rec);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(rec.request, body, len);
        rec.request[len] = '\0';

        pg_job_id_make(rec.id, PG_JOB_BATCH, rec.created_ms,
                       (uint32_t) ngx_random() ^ ((uint32_t) ngx_pid << 16));

        rc = ngx_http_podgen_job_submit(&rec, ngx_http_podgen_batch_accepted,
                                        ctx, &ctx->job);
        if (rc != NGX_OK) {
            pg_job_free(&rec);

            if (rc == NGX_DECLINED) {
                ngx_http_finalize_request(r,
                                          ngx_http_podgen_too_many_jobs(r));
                return;
            }

            pg_error_set(&err, 503, NULL, "server_busy",
                         "the job queue is full; retry shortly");
            err.type = "server_error";
            ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
            return;
        }

        r->read_event_handler = ngx_http_test_reading;
        return;
    }

    b->finished = ngx_http_podgen_batch_request_done;
    b->data = ctx;
    ctx->batch = b;

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    ngx_http_podgen_batch_pump(b);

    /* the body handler's reference */
    ngx_http_finalize_request(r, NGX_DONE);
}


static void
ngx_http_podgen_batch_request_done(ngx_http_podgen_batch_t *b)
{
    ngx_http_podgen_batch_ctx_t  *ctx = b->data;

    u_char              *json;
    size_t               len;
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    ctx->batch = NULL;
    r = ctx->request;

    len = b->out.len;
    json = ngx_pnalloc(r->pool, len);

    if (json == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        ngx_memcpy(json, b->out.data, len);
        rc = ngx_http_podgen_send_json(r, NGX_HTTP_OK, json, len);
    }

    ngx_http_podgen_batch_free(b);

    ngx_http_podgen_finalize(r, rc);
}


/* ---- as a job ----------------------------------------------------------- */


static void ngx_http_podgen_batch_job_run(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_batch_job_cancel(ngx_http_podgen_job_t *job);
static void ngx_http_podgen_batch_job_retry(ngx_http_podgen_job_t *job);
static ngx_uint_t ngx_http_podgen_batch_job_busy(ngx_http_podgen_job_t *job);


static const ngx_http_podgen_job_kind_t  ngx_http_podgen_batch_job_kind = {
    PG_JOB_BATCH,
    ngx_http_podgen_batch_job_run,
    ngx_http_podgen_batch_job_cancel,
    ngx_http_podgen_batch_job_retry,
    ngx_http_podgen_batch_job_busy,
    ngx_http_podgen_batch_job_cancel        /* free: what is left of it */
};


void
ngx_http_podgen_batch_job_init(void)
{
    ngx_http_podgen_job_add_kind(&ngx_http_podgen_batch_job_kind);
}


static void
ngx_http_podgen_batch_job_run(ngx_http_podgen_job_t *job)
{
    ngx_uint_t                    async;
    pg_error_t                    err;
    ngx_http_podgen_batch_t      *b;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_podgen_module);

    b = ngx_http_podgen_batch_parse(pmcf, job->rec.request,
                                    ngx_strlen(job->rec.request), &async,
                                    ngx_cycle->log, &err);
    if (b == NULL) {
        ngx_http_podgen_job_fail(job, "server_error",
                                 "the batch could not be started");
        return;
    }

    b->finished = ngx_http_podgen_batch_job_done;
    b->data = job;
    job->ctx = b;

    ngx_http_podgen_job_progress(job, 0, b->n);
    ngx_http_podgen_batch_pump(b);
}


static void
ngx_http_podgen_batch_job_cancel(ngx_http_podgen_job_t *job)
{
    if (job->ctx) {
        ngx_http_podgen_batch_cancel(job->ctx);
        job->ctx = NULL;
    }
}


static void
ngx_http_podgen_batch_job_retry(ngx_http_podgen_job_t *job)
{
    /* the items retry on their own */
}


static ngx_uint_t
ngx_http_podgen_batch_job_busy(ngx_http_podgen_job_t *job)
{
    return 0;
}


static void
ngx_http_podgen_batch_job_done(ngx_http_podgen_batch_t *b)
{
    ngx_http_podgen_job_t  *job = b->data;

    job->ctx = NULL;
    job->rec.done = b->n;

    ngx_http_podgen_job_complete(job, b->out.data, b->out.len);
    ngx_http_podgen_batch_free(b);
}


/* ---- parsing ------------------------------------------------------------ */


static ngx_int_t
ngx_http_podgen_batch_gen(yajl_gen g, yajl_val v, ngx_uint_t depth)
{
    size_t  i;

    if (depth > PG_JSON_MAX_DEPTH) {
        return NGX_ERROR;
    }

    switch (v->type) {

    case yajl_t_string:
        return yajl_gen_string(g, (u_char *) v->u.string,
                               ngx_strlen(v->u.string))
               == yajl_gen_status_ok ? NGX_OK : NGX_ERROR;

    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, ngx_strlen(v->u.number.r))
               == yajl_gen_status_ok ? NGX_OK : NGX_ERROR;

    case yajl_t_object:
        yajl_gen_map_open(g);

        for (i = 0; i < v->u.object.len; i++) {
            if (yajl_gen_string(g, (u_char *) v->u.object.keys[i],
                                ngx_strlen(v->u.object.keys[i]))
                != yajl_gen_status_ok
                || ngx_http_podgen_batch_gen(g, v->u.object.values[i],
                                             depth + 1)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        yajl_gen_map_close(g);
        return NGX_OK;

    case yajl_t_array:
        yajl_gen_array_open(g);

        for (i = 0; i < v->u.array.len; i++) {
            if (ngx_http_podgen_batch_gen(g, v->u.array.values[i], depth + 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        yajl_gen_array_close(g);
        return NGX_OK;

    case yajl_t_true:
        yajl_gen_bool(g, 1);
        return NGX_OK;

    case yajl_t_false:
        yajl_gen_bool(g, 0);
        return NGX_OK;

    default:
        yajl_gen_null(g);
        return NGX_OK;
    }
}


static ngx_http_podgen_batch_t *
ngx_http_podgen_batch_parse(ngx_http_podgen_main_conf_t *pmcf,
    const char *body, size_t len, ngx_uint_t *async, ngx_log_t *log,
    pg_error_t *err)
{
    size_t                         i, t, n, glen;
    u_char                        *digest_src;
    yajl_gen                       g;
    yajl_val                       tree, v, item, type, ibody;
    const unsigned char           *gbuf;
    ngx_http_podgen_batch_t       *b;
    ngx_http_podgen_batch_item_t  *it;
    ngx_uint_t                     j;

    tree = pg_json_parse_object(body, len, PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        return NULL;
    }

    *async = 0;

    v = pg_json_get(tree, "async");
    if (v) {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
            pg_error_set(err, 400, "async", "invalid_type",
                         "'async' must be true or false");
            goto failed;
        }

        *async = YAJL_IS_TRUE(v);
    }

    v = pg_json_get(tree, "requests");

    if (v == NULL) {
        pg_error_set(err, 400, "requests", "missing_required_parameter",
                     "'requests' is required: an array of {type, body}");
        goto failed;
    }

    if (!YAJL_IS_ARRAY(v)) {
        pg_error_set(err, 400, "requests", "invalid_type",
                     "'requests' must be an array of {type, body}");
        goto failed;
    }

    n = v->u.array.len;

    if (n == 0) {
        pg_error_set(err, 400, "requests", "invalid_value",
                     "'requests' is empty");
        goto failed;
    }

    if (n > pmcf->jobs.batch_max) {
        pg_error_set(err, 400, "requests", "batch_too_large",
                     "a batch holds at most %zu requests; this one has %zu",
                     (size_t) pmcf->jobs.batch_max, n);
        goto failed;
    }

    b = ngx_calloc(sizeof(ngx_http_podgen_batch_t), log);
    if (b == NULL) {
        goto nomem;
    }

    b->items = ngx_calloc(n * sizeof(ngx_http_podgen_batch_item_t), log);
    b->pool = ngx_create_pool(4096, log);

    if (b->items == NULL || b->pool == NULL) {
        ngx_free(b->items);
        if (b->pool) {
            ngx_destroy_pool(b->pool);
        }
        ngx_free(b);
        goto nomem;
    }

    b->pmcf = pmcf;
    b->log = log;
    b->n = n;
    b->start = ngx_current_msec;

    /* items answered here wait for the first pump */
    b->pumping = 1;

    for (i = 0; i < n; i++) {
        it = &b->items[i];
        it->batch = b;
        it->index = i;
        it->first = -1;

        item = v->u.array.values[i];
        type = YAJL_IS_OBJECT(item) ? pg_json_get(item, "type") : NULL;
        ibody = YAJL_IS_OBJECT(item) ? pg_json_get(item, "body") : NULL;

        /* a bad item is answered in its place; the rest go on */

        if (!YAJL_IS_OBJECT(item)) {
            pg_error_set(err, 400, "requests[]", "invalid_type",
                         "requests[%zu] must be an object {type, body}", i);
            ngx_http_podgen_batch_item_error(it, err);
            continue;
        }

        if (type == NULL || !YAJL_IS_STRING(type)) {
            pg_error_set(err, 400, "type", type ? "invalid_type"
                                                : "missing_required_parameter",
                         "requests[%zu].type must be \"script\", \"speech\" "
                         "or \"podcast\"", i);
            ngx_http_podgen_batch_item_error(it, err);
            continue;
        }

        for (t = 0; t < 3; t++) {
            if (ngx_strcmp(type->u.string, ngx_http_podgen_item_types[t])
                == 0)
            {
                break;
            }
        }

        if (t == 3) {
            pg_error_set(err, 400, "type", "invalid_value",
                         "requests[%zu].type must be \"script\", \"speech\" "
                         "or \"podcast\"", i);
            ngx_http_podgen_batch_item_error(it, err);
            continue;
        }

        it->type = t;
        it->typed = 1;

        if (ibody == NULL || !YAJL_IS_OBJECT(ibody)) {
            pg_error_set(err, 400, "body", ibody ? "invalid_type"
                                                 : "missing_required_parameter",
                         "requests[%zu].body must be an object", i);
            ngx_http_podgen_batch_item_error(it, err);
            continue;
        }

        /* the item's body as text: what its endpoint would have read */

        g = yajl_gen_alloc(NULL);
        if (g == NULL) {
            ngx_http_podgen_batch_free(b);
            goto nomem;
        }

        if (ngx_http_podgen_batch_gen(g, ibody, 0) != NGX_OK
            || yajl_gen_get_buf(g, &gbuf, &glen) != yajl_gen_status_ok)
        {
            yajl_gen_free(g);
            ngx_http_podgen_batch_free(b);
            goto nomem;
        }

        it->body = ngx_alloc(glen + 16, log);
        if (it->body == NULL) {
            yajl_gen_free(g);
            ngx_http_podgen_batch_free(b);
            goto nomem;
        }

        /* identical items: the same type and the same body */

        digest_src = it->body;
        digest_src = ngx_cpymem(digest_src, ngx_http_podgen_item_types[t],
                                ngx_strlen(ngx_http_podgen_item_types[t]));
        *digest_src++ = '\n';
        ngx_memcpy(digest_src, gbuf, glen);
        (void) pg_key_sha256(it->body, digest_src + glen - it->body, it->key);

        ngx_memmove(it->body, gbuf, glen);
        it->body[glen] = '\0';
        it->body_len = glen;
        yajl_gen_free(g);

        for (j = 0; j < i; j++) {
            if (b->items[j].body && b->items[j].first == -1
                && ngx_strcmp(b->items[j].key, it->key) == 0)
            {
                it->first = j;
                b->deduplicated++;
                break;
            }
        }
    }

    b->pumping = 0;

    yajl_tree_free(tree);
    return b;

nomem:

    pg_error_set(err, 500, NULL, "server_error", "out of memory");
    err->type = "server_error";

failed:

    yajl_tree_free(tree);
    return NULL;
}


/* ---- items -------------------------------------------------------------- */


static void
ngx_http_podgen_batch_item_end(ngx_http_podgen_batch_item_t *it,
    ngx_uint_t status)
{
    ngx_http_podgen_batch_t  *b;

    b = it->batch;
    it->status = status;
    b->done++;

    if (it->started) {
        b->active--;
    }

    if (b->finished == ngx_http_podgen_batch_job_done && !b->over) {
        ngx_http_podgen_job_progress(b->data, b->done, b->n);
    }

    if (!b->pumping) {
        ngx_http_podgen_batch_pump(b);
    }
}


static void
ngx_http_podgen_batch_item_error(ngx_http_podgen_batch_item_t *it,
    pg_error_t *err)
{
    ngx_str_t  json;

    pg_buf_reset(&it->result);

    if (ngx_http_podgen_error_json(it->batch->pool, err, &json) == NGX_OK) {

        while (json.len && json.data[json.len - 1] != '}') {
            json.len--;
        }

        /* {"error":{...}} -> "error":{...} */

        if (json.len > 2) {
            (void) pg_buf_append(&it->result, json.data + 1, json.len - 2);
        }
    }

    ngx_http_podgen_batch_item_end(it, err->status ? err->status : 500);
}


static void
ngx_http_podgen_batch_item_oom(ngx_http_podgen_batch_item_t *it)
{
    pg_error_t  err;

    pg_error_set(&err, 500, NULL, "server_error", "out of memory");
    err.type = "server_error";
    ngx_http_podgen_batch_item_error(it, &err);
}


static void
ngx_http_podgen_batch_script_done(void *data, ngx_int_t rc,
    ngx_http_podgen_script_t *script, pg_error_t *err)
{
    ngx_http_podgen_batch_item_t  *it = data;

    u_char  *json;
    size_t   len;

    it->smake = NULL;

    if (rc != NGX_OK) {
        ngx_http_podgen_batch_item_error(it, err);
        return;
    }

    json = ngx_http_podgen_script_reply_json(it->batch->pool, script, &len);

    it->cached = script->cached ? 1 : 0;

    if (json == NULL
        || pg_buf_append_str(&it->result, "\"body\":") != 0
        || pg_buf_append(&it->result, json, len) != 0)
    {
        ngx_http_podgen_batch_item_oom(it);
        return;
    }

    ngx_http_podgen_batch_item_end(it, 200);
}


static void
ngx_http_podgen_batch_audio_done(void *data, ngx_int_t rc,
    ngx_http_podgen_audio_t *audio, pg_error_t *err)
{
    ngx_http_podgen_batch_item_t  *it = data;

    pg_format_t  format;
    u_char       line[256];

    it->amake = NULL;

    if (rc != NGX_OK) {
        ngx_http_podgen_batch_item_error(it, err);
        return;
    }

    format = (pg_format_t) it->cached;  /* kept there while making */
    it->cached = audio->cached ? 1 : 0;

    ngx_snprintf(line, sizeof(line),
                 "\"audio_url\":\"/v1/audio/%s.%s\",\"bytes\":%uz%Z",
                 audio->key, pg_format_name(format), audio->len);

    if (pg_buf_append_str(&it->result, (char *) line) != 0) {
        ngx_http_podgen_batch_item_oom(it);
        return;
    }

    ngx_http_podgen_batch_item_end(it, 200);
}


static void
ngx_http_podgen_batch_podcast_accepted(void *data, ngx_int_t rc,
    pg_job_t *rec)
{
    ngx_http_podgen_batch_item_t  *it = data;

    pg_error_t  e;

    it->job = NULL;

    if (rc == NGX_HTTP_INSUFFICIENT_STORAGE) {
        pg_error_set(&e, NGX_HTTP_INSUFFICIENT_STORAGE, NULL,
                     "insufficient_storage",
                     "the job store has no room for the podcast's record");
        e.type = "server_error";
        ngx_http_podgen_batch_item_error(it, &e);
        return;
    }

    if (rc != NGX_OK
        || pg_buf_append_str(&it->result, "\"body\":") != 0
        || pg_job_public_json(rec, "/v1/podcasts", &it->result) != 0)
    {
        pg_error_set(&e, 500, NULL, "server_error",
                     "the podcast job could not be stored");
        e.type = "server_error";
        ngx_http_podgen_batch_item_error(it, &e);
        return;
    }

    ngx_http_podgen_batch_item_end(it, 202);
}


static void
ngx_http_podgen_batch_start_speech(ngx_http_podgen_batch_item_t *it)
{
    ngx_int_t                     rc;
    pg_error_t                    err;
    pg_speech_request_t           req;
    ngx_http_podgen_audio_t       hit;
    ngx_http_podgen_voice_t      *voice;
    ngx_http_podgen_batch_t      *b;

    b = it->batch;

    if (pg_speech_request_parse((char *) it->body, it->body_len,
                                b->pmcf->max_input,
                                ngx_http_podgen_voice_exists, b->pmcf, &req,
                                &err)
        != 0)
    {
        ngx_http_podgen_batch_item_error(it, &err);
        return;
    }

    voice = ngx_http_podgen_find_voice(b->pmcf, req.voice);

    it->cached = (ngx_uint_t) req.format;

    rc = ngx_http_podgen_audio_make(b->pmcf, voice, req.format, req.speed,
                                    req.text, req.text_len, b->pool,
                                    ngx_http_podgen_batch_audio_done, it,
                                    b->log, &hit, &it->amake);
    pg_speech_request_free(&req);

    if (rc == NGX_OK) {
        ngx_http_podgen_batch_audio_done(it, NGX_OK, &hit, NULL);
        return;
    }

    if (rc == NGX_ERROR) {
        pg_error_set(&err, 500, NULL, "server_error",
                     "could not start synthesis");
        err.type = "server_error";
        ngx_http_podgen_batch_item_error(it, &err);
    }
}


static void
ngx_http_podgen_batch_start_script(ngx_http_podgen_batch_item_t *it)
{
    u_char                    *body;
    size_t                     len;
    ngx_int_t                  rc;
    yajl_val                   tree;
    pg_error_t                 err;
    pg_script_request_t        req;
    ngx_http_podgen_script_t   hit;
    ngx_http_podgen_batch_t   *b;

    b = it->batch;

    /* "source_ids": the sources become the source_text */

    body = it->body;
    len = it->body_len;

    rc = ngx_http_podgen_sources_expand(b->pmcf, b->pool, &body, &len, &err);

    if (rc != NGX_OK) {
        if (rc != NGX_DECLINED) {
            pg_error_set(&err, 500, NULL, "server_error", "out of memory");
            err.type = "server_error";
        }

        ngx_http_podgen_batch_item_error(it, &err);
        return;
    }

    tree = pg_json_parse_object((char *) body, len, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL) {
        ngx_http_podgen_batch_item_error(it, &err);
        return;
    }

    rc = pg_script_request_from_json(tree, b->pmcf->max_source, &req, &err);
    yajl_tree_free(tree);

    if (rc != 0) {
        ngx_http_podgen_batch_item_error(it, &err);
        return;
    }

    rc = ngx_http_podgen_script_make(b->pmcf, &req, b->pool,
                                     ngx_http_podgen_batch_script_done, it,
                                     b->log, &hit, &it->smake, &err);
    switch (rc) {

    case NGX_OK:
        ngx_http_podgen_batch_script_done(it, NGX_OK, &hit, NULL);
        break;

    case NGX_AGAIN:
        break;

    case NGX_DECLINED:
        ngx_http_podgen_batch_item_error(it, &err);
        break;

    default:
        pg_error_set(&err, 500, NULL, "server_error",
                     "the script could not be started");
        err.type = "server_error";
        ngx_http_podgen_batch_item_error(it, &err);
    }
}


static void
ngx_http_podgen_batch_start_podcast(ngx_http_podgen_batch_item_t *it)
{
    ngx_int_t                rc;
    pg_job_t                 rec;
    pg_error_t               err;
    ngx_http_podgen_batch_t *b;

    b = it->batch;

    if (!b->pmcf->jobs.used || ngx_http_podgen_jobs_conf() == NULL) {
        pg_error_set(&err, 400, "type", "invalid_value",
                     "podcasts are not enabled on this server");
        ngx_http_podgen_batch_item_error(it, &err);
        return;
    }

    rc = ngx_http_podgen_podcast_record(b->pmcf, it->body, it->body_len,
                                        it->index, &rec, &err);
    if (rc != NGX_OK) {
        if (rc != NGX_DECLINED) {
            pg_error_set(&err, 500, NULL, "server_error", "out of memory");
            err.type = "server_error";
        }

        ngx_http_podgen_batch_item_error(it, &err);
        return;
    }

    rc = ngx_http_podgen_job_submit(&rec,
                                    ngx_http_podgen_batch_podcast_accepted,
                                    it, &it->job);
    if (rc == NGX_DECLINED) {
        pg_job_free(&rec);
        pg_error_set(&err, 429, NULL, "too_many_jobs",
                     "too many unfinished jobs (podgen_max_jobs); retry "
                     "later");
        err.type = "rate_limit_error";
        ngx_http_podgen_batch_item_error(it, &err);

    } else if (rc != NGX_OK) {
        pg_job_free(&rec);
        pg_error_set(&err, 503, NULL, "server_busy",
                     "the job queue is full; retry shortly");
        err.type = "server_error";
        ngx_http_podgen_batch_item_error(it, &err);
    }
}


static void
ngx_http_podgen_batch_pump(ngx_http_podgen_batch_t *b)
{
    ngx_uint_t                     i;
    ngx_http_podgen_batch_item_t  *it;

    if (b->pumping || b->over) {
        return;
    }

    b->pumping = 1;

    for (i = 0; i < b->n; i++) {
        it = &b->items[i];

        if (it->started || it->status || it->first != -1) {
            continue;
        }

        if (b->active >= NGX_HTTP_PODGEN_BATCH_WINDOW) {
            break;
        }

        it->started = 1;
        b->active++;

        switch (it->type) {

        case NGX_HTTP_PODGEN_ITEM_SPEECH:
            ngx_http_podgen_batch_start_speech(it);
            break;

        case NGX_HTTP_PODGEN_ITEM_SCRIPT:
            ngx_http_podgen_batch_start_script(it);
            break;

        default:
            ngx_http_podgen_batch_start_podcast(it);
        }
    }

    b->pumping = 0;

    ngx_http_podgen_batch_check(b);
}


/* Every first item is answered: duplicates take their answers. */

static void
ngx_http_podgen_batch_check(ngx_http_podgen_batch_t *b)
{
    ngx_uint_t                     i, succeeded, failed;
    ngx_http_podgen_batch_item_t  *it, *first;
    u_char                         head[128];

    for (i = 0; i < b->n; i++) {
        it = &b->items[i];

        if (it->status == 0 && it->first == -1) {
            if (b->active < NGX_HTTP_PODGEN_BATCH_WINDOW && !it->started) {
                /* room was made while pumping */
                ngx_http_podgen_batch_pump(b);
            }

            return;
        }
    }

    if (b->over) {
        return;
    }

    b->over = 1;

    succeeded = 0;
    failed = 0;

    if (pg_buf_append_str(&b->out, "{\"object\":\"batch\",\"results\":[")
        != 0)
    {
        goto nomem;
    }

    for (i = 0; i < b->n; i++) {
        it = &b->items[i];
        first = (it->first == -1) ? it : &b->items[it->first];

        if (first->status < 400) {
            succeeded++;

        } else {
            failed++;
        }

        ngx_snprintf(head, sizeof(head),
                     "%s{\"index\":%ui,\"type\":\"%s\",\"status\":%ui,"
                     "\"cached\":%s,\"deduplicated\":%s,%Z",
                     i ? "," : "", i,
                     first->typed ? ngx_http_podgen_item_types[first->type]
                                  : "unknown",
                     first->status,
                     (first->cached || it != first) ? "true" : "false",
                     it != first ? "true" : "false");

        if (pg_buf_append_str(&b->out, (char *) head) != 0
            || pg_buf_append(&b->out, first->result.data, first->result.len)
               != 0
            || pg_buf_append(&b->out, "}", 1) != 0)
        {
            goto nomem;
        }
    }

    ngx_snprintf(head, sizeof(head),
                 "],\"stats\":{\"total\":%ui,\"succeeded\":%ui,\"failed\":%ui,"
                 "\"deduplicated\":%ui,\"elapsed_ms\":%M}}%Z",
                 b->n, succeeded, failed, b->deduplicated,
                 (ngx_msec_t) (ngx_current_msec - b->start));

    if (pg_buf_append_str(&b->out, (char *) head) != 0) {
        goto nomem;
    }

    b->finished(b);
    return;

nomem:

    pg_buf_reset(&b->out);
    (void) pg_buf_append_str(&b->out, "{\"object\":\"batch\",\"results\":[],"
                             "\"error\":\"out of memory\"}");
    b->finished(b);
}


/* ---- lifetime ----------------------------------------------------------- */


static void
ngx_http_podgen_batch_cancel(ngx_http_podgen_batch_t *b)
{
    ngx_uint_t                     i;
    ngx_http_podgen_batch_item_t  *it;

    b->over = 1;

    for (i = 0; i < b->n; i++) {
        it = &b->items[i];

        if (it->smake) {
            ngx_http_podgen_script_cancel(it->smake);
            it->smake = NULL;
        }

        if (it->amake) {
            ngx_http_podgen_audio_cancel(it->amake);
            it->amake = NULL;
        }

        if (it->job) {
            /* accepted podcasts go on without us */
            ngx_http_podgen_job_detach(it->job);
            it->job = NULL;
        }
    }

    ngx_http_podgen_batch_free(b);
}


static void
ngx_http_podgen_batch_free(ngx_http_podgen_batch_t *b)
{
    ngx_uint_t  i;

    for (i = 0; i < b->n; i++) {
        ngx_free(b->items[i].body);
        pg_buf_free(&b->items[i].result);
    }

    pg_buf_free(&b->out);
    ngx_free(b->items);
    ngx_destroy_pool(b->pool);
    ngx_free(b);
}
