/*
 * podgen: /v1/podcasts — create podcast jobs, follow them, and the
 * library: list, audio, transcripts, delete, and the RSS feed.
 *
 *   POST   {base}                         a job: 202 + Location
 *   GET    {base}?limit=&cursor=          newest first
 *   GET    {base}/feed.xml                RSS 2.0 + iTunes
 *   GET    {base}/{id}[?wait=N]           status; ETag; long poll
 *   DELETE {base}/{id}                    204
 *   GET    {base}/{id}/audio              the episode (Range)
 *   GET    {base}/{id}/transcript.vtt     WebVTT
 *   GET    {base}/{id}/transcript.srt     SubRip, captions timed by words
 *   GET    {base}/{id}/chapters.json      Podcasting 2.0 JSON chapters
 *   GET    {base}/{id}/transcript.json
 *
 * {base} is the location's name.  Deleting runs on the thread pool; a
 * status is read from L1, else from its small record file.  The list and
 * the feed are in ngx_http_podgen_podcast_library.c, the episode and its
 * transcripts in ngx_http_podgen_podcast_files.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dirent.h>


#include "pg_podcast.h"
#include "pg_feed.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_job_store.h"
#include "ngx_http_podgen_job_record.h"
#include "ngx_http_podgen_job_redis.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_scripts.h"
#include "ngx_http_podgen_sources.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_podcasts_common.h"


#define NGX_HTTP_PODGEN_WAIT_MAX     60         /* s of a long poll */
#define NGX_HTTP_PODGEN_WAIT_TICK    100        /* ms between looks */




static ngx_int_t ngx_http_podgen_podcasts_route(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_str_t *rest);
static void ngx_http_podgen_podcasts_create(ngx_http_request_t *r);
static void ngx_http_podgen_podcasts_accepted(void *data, ngx_int_t rc,
    pg_job_t *rec);
static ngx_int_t ngx_http_podgen_podcasts_status(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p);
static void ngx_http_podgen_podcasts_wait_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_podgen_podcasts_delete(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p);
static void ngx_http_podgen_podcasts_cleanup(void *data);
static ngx_int_t ngx_http_podgen_podcast_record_body(
    ngx_http_podgen_main_conf_t *pmcf, u_char *body, size_t len,
    ngx_uint_t salt, pg_job_t *rec, pg_error_t *err);


static ngx_http_podgen_podcasts_t *
ngx_http_podgen_podcasts_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_podgen_podcasts_t  *p;

    p = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_podcasts_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (p == NULL || cln == NULL) {
        return NULL;
    }

    p->request = r;

    cln->handler = ngx_http_podgen_podcasts_cleanup;
    cln->data = p;

    /* links are made of the location's name */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p->base = clcf->name;

    while (p->base.len > 1 && p->base.data[p->base.len - 1] == '/') {
        p->base.len--;
    }

    p->wait.handler = ngx_http_podgen_podcasts_wait_handler;
    p->wait.data = p;
    p->wait.log = r->connection->log;

    return p;
}


ngx_int_t
ngx_http_podgen_podcasts_handler(ngx_http_request_t *r)
{
    ngx_str_t                    rest;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_podgen_podcasts_t  *p;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rest = r->uri;

    if (rest.len >= clcf->name.len
        && ngx_strncmp(rest.data, clcf->name.data, clcf->name.len) == 0)
    {
        rest.data += clcf->name.len;
        rest.len -= clcf->name.len;
    }

    while (rest.len && rest.data[0] == '/') {
        rest.data++;
        rest.len--;
    }

    if (rest.len == 0 && r->method == NGX_HTTP_POST) {
        return ngx_http_podgen_read_json_request(r,
                                              ngx_http_podgen_podcasts_create);
    }

    if (ngx_http_podgen_begin(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_podgen_podcasts_ctx(r);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_podgen_podcasts_route(r, p, &rest);
}


static ngx_int_t
ngx_http_podgen_podcasts_route(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_str_t *rest)
{
    u_char      *slash;
    ngx_int_t    rc;
    ngx_str_t    id, sub;
    pg_error_t   err;

    if (rest->len == 0 || (rest->len == 8
                           && ngx_strncmp(rest->data, "feed.xml", 8) == 0))
    {
        rc = ngx_http_podgen_check_method(r, NGX_HTTP_GET|NGX_HTTP_HEAD,
                                          rest->len ? "GET, HEAD"
                                                    : "GET, HEAD, POST",
                                          &err);
        if (rc == NGX_DECLINED) {
            return ngx_http_podgen_send_error(r, &err);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_podgen_podcasts_list(r, p, rest->len != 0);
    }

    slash = ngx_strlchr(rest->data, rest->data + rest->len, '/');

    id.data = rest->data;
    id.len = slash ? (size_t) (slash - rest->data) : rest->len;
    sub.data = slash ? slash + 1 : rest->data + rest->len;
    sub.len = rest->data + rest->len - sub.data;

    /* only ids name files: nothing else reaches the store */

    if (!pg_job_id_valid((char *) id.data, id.len)
        || (id.data[0] != 'p' && sub.len))
    {
        /* batch jobs ("bat_") have a status, no episode */
        return ngx_http_podgen_podcasts_not_found(r);
    }

    ngx_memcpy(p->id, id.data, PG_JOB_ID_LEN);
    p->id[PG_JOB_ID_LEN] = '\0';

    if (sub.len == 0 && !slash) {
        rc = ngx_http_podgen_check_method(r, NGX_HTTP_GET|NGX_HTTP_HEAD
                                             |NGX_HTTP_DELETE,
                                          "GET, HEAD, DELETE", &err);
        if (rc == NGX_DECLINED) {
            return ngx_http_podgen_send_error(r, &err);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (r->method == NGX_HTTP_DELETE) {
            return ngx_http_podgen_podcasts_delete(r, p);
        }

        return ngx_http_podgen_podcasts_status(r, p);
    }

    if ((sub.len == 5 && ngx_strncmp(sub.data, "audio", 5) == 0)
        || (sub.len == 14 && ngx_strncmp(sub.data, "transcript.vtt", 14) == 0)
        || (sub.len == 14 && ngx_strncmp(sub.data, "transcript.srt", 14) == 0)
        || (sub.len == 13 && ngx_strncmp(sub.data, "chapters.json", 13) == 0)
        || (sub.len == 15
            && ngx_strncmp(sub.data, "transcript.json", 15) == 0))
    {
        rc = ngx_http_podgen_check_method(r, NGX_HTTP_GET|NGX_HTTP_HEAD,
                                          "GET, HEAD", &err);
        if (rc == NGX_DECLINED) {
            return ngx_http_podgen_send_error(r, &err);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_podgen_podcasts_file(r, p, &sub);
    }

    return ngx_http_podgen_podcasts_not_found(r);
}


/*
 * Whether the job exists cannot be told now (Redis, which holds the
 * fleet's records, is away or slow): never a 404 for an id that may be.
 */

ngx_int_t
ngx_http_podgen_podcasts_unavailable(ngx_http_request_t *r)
{
    ngx_str_t   value;
    pg_error_t  err;

    ngx_str_set(&value, "1");

    if (ngx_http_podgen_add_header(r, "Retry-After", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pg_error_set(&err, NGX_HTTP_SERVICE_UNAVAILABLE, NULL, "unavailable",
                 "the podcast's record cannot be read now; retry shortly");
    err.type = "server_error";

    return ngx_http_podgen_send_error(r, &err);
}


ngx_int_t
ngx_http_podgen_podcasts_not_found(ngx_http_request_t *r)
{
    pg_error_t  err;

    pg_error_set(&err, NGX_HTTP_NOT_FOUND, NULL, "not_found",
                 "no such podcast");

    return ngx_http_podgen_send_error(r, &err);
}


/* ---- POST: a new job ---------------------------------------------------- */


static ngx_int_t
ngx_http_podgen_podcasts_check(ngx_http_podgen_main_conf_t *pmcf,
    pg_podcast_request_t *req, pg_error_t *err)
{
    size_t      i;
    ngx_int_t   rc;
    static char param[32];

    if (req->edited) {
        for (i = 0; i < req->script.nhosts; i++) {
            if (req->script.hosts[i].voice
                && ngx_http_podgen_find_voice(pmcf, req->script.hosts[i].voice)
                   == NULL)
            {
                ngx_sprintf((u_char *) param, "hosts[%uz].voice%Z", i);
                pg_error_set(err, 400, param, "invalid_value",
                             "unknown voice '%.64s'; GET /v1/voices lists "
                             "them", req->script.hosts[i].voice);
                return NGX_DECLINED;
            }
        }

        return NGX_OK;
    }

    rc = ngx_http_podgen_script_hosts(pmcf, &req->script_req, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (req->script_req.engine == PG_ENGINE_LLM && !pmcf->llm_enabled) {
        pg_error_set(err, 400, "engine", "invalid_value",
                     "no LLM is configured on this server; use "
                     "\"engine\": \"builtin\"");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A podcast request checked whole (fields, voices, engine) and the new
 * queued record that keeps it as it came: the runner reads it again.
 * NGX_OK, NGX_DECLINED (*err), NGX_ERROR.
 */

ngx_int_t
ngx_http_podgen_podcast_record(ngx_http_podgen_main_conf_t *pmcf,
    u_char *body, size_t len, ngx_uint_t salt, pg_job_t *rec, pg_error_t *err)
{
    ngx_int_t    rc;
    ngx_pool_t  *pool;

    /* "source_ids": the record keeps the sources themselves as its
     * source_text, so the job needs no cache when it runs */

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_podgen_sources_expand(pmcf, pool, &body, &len, err);

    if (rc == NGX_OK) {
        rc = ngx_http_podgen_podcast_record_body(pmcf, body, len, salt, rec,
                                                 err);
    }

    ngx_destroy_pool(pool);

    return rc;
}


static ngx_int_t
ngx_http_podgen_podcast_record_body(ngx_http_podgen_main_conf_t *pmcf,
    u_char *body, size_t len, ngx_uint_t salt, pg_job_t *rec, pg_error_t *err)
{
    ngx_int_t             rc;
    ngx_time_t           *tp;
    pg_podcast_request_t  req;

    if (pg_podcast_request_parse((char *) body, len, pmcf->max_source,
                                 pmcf->max_input, &req, err)
        != 0)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_podgen_podcasts_check(pmcf, &req, err);

    if (rc != NGX_OK) {
        pg_podcast_request_free(&req);
        return rc;
    }

    ngx_memzero(rec, sizeof(pg_job_t));

    tp = ngx_timeofday();

    rec->kind = PG_JOB_PODCAST;
    rec->status = PG_JOB_QUEUED;
    rec->created_ms = (int64_t) tp->sec * 1000 + tp->msec;
    rec->updated_ms = rec->created_ms;
    rec->speed = req.speed;
    rec->request = malloc(len + 1);
    rec->format = strdup(pg_format_name(req.format));
    rec->title = req.title ? strdup(req.title) : NULL;

    pg_job_id_make(rec->id, PG_JOB_PODCAST, rec->created_ms,
                   (uint32_t) ngx_random() ^ ((uint32_t) ngx_pid << 16)
                   ^ (uint32_t) salt);

    rc = (rec->request == NULL || rec->format == NULL
          || (req.title && rec->title == NULL)) ? NGX_ERROR : NGX_OK;

    pg_podcast_request_free(&req);

    if (rc != NGX_OK) {
        pg_job_free(rec);
        return NGX_ERROR;
    }

    ngx_memcpy(rec->request, body, len);
    rec->request[len] = '\0';

    return NGX_OK;
}


static void
ngx_http_podgen_podcasts_create(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    ngx_int_t                     rc;
    pg_job_t                      rec;
    pg_error_t                    err;
    ngx_http_podgen_podcasts_t   *p;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* "source_ids": looked for in the tiers first (L2 fills L1) */

    rc = ngx_http_podgen_sources_prefetch(r, body, len,
                                          ngx_http_podgen_podcasts_create);
    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_podgen_podcast_record(pmcf, body, len, 0, &rec, &err);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc == NGX_DECLINED
                                     ? ngx_http_podgen_send_error(r, &err)
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_http_podgen_podcasts_ctx(r);
    if (p == NULL) {
        pg_job_free(&rec);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(p->id, rec.id, sizeof(p->id));

    rc = ngx_http_podgen_job_submit(&rec, ngx_http_podgen_podcasts_accepted,
                                    p, &p->job);

    if (rc != NGX_OK) {
        pg_job_free(&rec);

        if (rc == NGX_DECLINED) {
            ngx_http_finalize_request(r, ngx_http_podgen_too_many_jobs(r));
            return;
        }

        if (rc == NGX_BUSY) {
            ngx_http_podgen_metrics_error(PG_ERR_BUSY);
            pg_error_set(&err, 503, NULL, "server_busy",
                         "the job queue is full; retry shortly");
            err.type = "server_error";
            ngx_str_set(&r->headers_out.content_type, "application/json");
            (void) ngx_http_podgen_add_header(r, "Retry-After",
                                              &(ngx_str_t) ngx_string("1"));
            ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
            return;
        }

        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->read_event_handler = ngx_http_test_reading;
}


static void
ngx_http_podgen_podcasts_accepted(void *data, ngx_int_t rc, pg_job_t *rec)
{
    ngx_http_podgen_podcasts_t  *p = data;

    ngx_str_t            location;
    ngx_http_request_t  *r;

    p->job = NULL;
    r = p->request;

    if (rc != NGX_OK) {
        /* the error filter makes it JSON: 507 insufficient_storage, 500 */
        ngx_http_podgen_finalize(r, rc == NGX_HTTP_INSUFFICIENT_STORAGE
                                    ? rc : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    location.data = ngx_pnalloc(r->pool, p->base.len + 1 + PG_JOB_ID_LEN);
    if (location.data == NULL) {
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    location.len = ngx_sprintf(location.data, "%V/%s", &p->base, rec->id)
                   - location.data;

    r->headers_out.location = ngx_list_push(&r->headers_out.headers);
    if (r->headers_out.location == NULL) {
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->headers_out.location->hash = 1;
    ngx_str_set(&r->headers_out.location->key, "Location");
    r->headers_out.location->value = location;

    ngx_http_podgen_finalize(r, ngx_http_podgen_podcasts_reply(r, p, rec,
                                                       NGX_HTTP_ACCEPTED));
}


/* ---- GET {id}: the status ----------------------------------------------- */


ngx_int_t
ngx_http_podgen_podcasts_reply(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, pg_job_t *rec, ngx_uint_t status)
{
    u_char           *json;
    size_t            len;
    pg_buf_t          out;
    ngx_str_t         value;
    ngx_table_elt_t  *etag;
    char              base[256];

    ngx_memzero(&out, sizeof(pg_buf_t));
    ngx_snprintf((u_char *) base, sizeof(base), "%V%Z", &p->base);

    if (pg_job_public_json(rec, base, &out) != 0) {
        pg_buf_free(&out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = out.len;
    json = ngx_pnalloc(r->pool, len);

    if (json) {
        ngx_memcpy(json, out.data, len);
    }

    pg_buf_free(&out);

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the record's version names the state: If-None-Match gives 304 */

    etag = ngx_list_push(&r->headers_out.headers);
    if (etag == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    etag->hash = 1;
    ngx_str_set(&etag->key, "ETag");
    etag->value.data = ngx_pnalloc(r->pool, PG_JOB_ID_LEN + NGX_INT64_LEN + 4);
    if (etag->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    etag->value.len = ngx_sprintf(etag->value.data, "\"%s-%uL\"", rec->id,
                                  rec->version)
                      - etag->value.data;
    r->headers_out.etag = etag;

    if (rec->status == PG_JOB_QUEUED || rec->status == PG_JOB_RUNNING) {
        ngx_str_set(&value, "2");
        (void) ngx_http_podgen_add_header(r, "Retry-After", &value);
    }

    ngx_str_set(&value, "no-cache");
    (void) ngx_http_podgen_add_header(r, "Cache-Control", &value);

    return ngx_http_podgen_send_json(r, status, json, len);
}


void
ngx_http_podgen_podcasts_hold(ngx_http_podgen_podcasts_t *p)
{
    if (!p->held) {
        p->held = 1;
        p->request->main->count++;
    }
}


/* The end of an answer that went async: rc is finalized here. */

void
ngx_http_podgen_podcasts_finish(ngx_http_podgen_podcasts_t *p, ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = p->request;
    p->held = 0;

    ngx_http_podgen_finalize(r, rc);
}


static void ngx_http_podgen_podcasts_status_found(void *data, ngx_int_t rc,
    pg_job_t *rec, u_char *audio, size_t len);


/* The time a long poll waited is the client's, not the server's latency. */

void
ngx_http_podgen_podcasts_waited(ngx_http_podgen_podcasts_t *p)
{
    ngx_http_podgen_ctx_t  *ctx;

    if (!p->waiting || p->wait_start == 0) {
        return;
    }

    ctx = ngx_http_get_module_ctx(p->request, ngx_http_podgen_module);

    if (ctx) {
        ctx->idle += ngx_current_msec - p->wait_start;
    }

    p->wait_start = 0;
}


/* The client's If-None-Match names an older state: it gets this one now. */

static ngx_uint_t
ngx_http_podgen_podcasts_stale(ngx_http_request_t *r, pg_job_t *rec)
{
    u_char            etag[PG_JOB_ID_LEN + NGX_INT64_LEN + 4], *last;
    ngx_table_elt_t  *inm;

    inm = r->headers_in.if_none_match;

    if (inm == NULL) {
        return 0;
    }

    last = ngx_sprintf(etag, "\"%s-%uL\"", rec->id, rec->version);

    return inm->value.len != (size_t) (last - etag)
           || ngx_strncmp(inm->value.data, etag, last - etag) != 0;
}


/*
 * A record (or none) is here: answer, or (a long poll) wait for another.
 * NGX_DONE: waiting.
 */

static ngx_int_t
ngx_http_podgen_podcasts_have(ngx_http_podgen_podcasts_t *p, ngx_int_t rc,
    pg_job_t *rec)
{
    ngx_http_request_t  *r;

    r = p->request;

    if (rc != NGX_OK) {
        ngx_http_podgen_podcasts_waited(p);

        if (rc == NGX_BUSY) {
            return ngx_http_podgen_podcasts_unavailable(r);
        }

        return (rc == NGX_DECLINED) ? ngx_http_podgen_podcasts_not_found(r)
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!p->waiting) {
        if (p->wait_s == 0 || rec->status == PG_JOB_COMPLETED
            || rec->status == PG_JOB_FAILED
            || ngx_http_podgen_podcasts_stale(r, rec))
        {
            return ngx_http_podgen_podcasts_reply(r, p, rec, NGX_HTTP_OK);
        }

        /* a long poll: looked at now and again on a timer, until the
         * record changes or the time is up */

        p->waiting = 1;
        p->version = rec->version;
        p->wait_start = ngx_current_msec;
        p->deadline = ngx_current_msec + (ngx_msec_t) p->wait_s * 1000;

        r->read_event_handler = ngx_http_test_reading;
        ngx_add_timer(&p->wait, NGX_HTTP_PODGEN_WAIT_TICK);

        return NGX_DONE;
    }

    if (rec->version == p->version
        && (ngx_msec_int_t) (p->deadline - ngx_current_msec) > 0)
    {
        ngx_add_timer(&p->wait, NGX_HTTP_PODGEN_WAIT_TICK);
        return NGX_DONE;
    }

    ngx_http_podgen_podcasts_waited(p);

    return ngx_http_podgen_podcasts_reply(r, p, rec, NGX_HTTP_OK);
}


/* Looks the record up; NGX_DONE: the answer comes later. */

static ngx_int_t
ngx_http_podgen_podcasts_look(ngx_http_podgen_podcasts_t *p)
{
    ngx_int_t            rc;
    pg_job_t             rec;
    ngx_http_request_t  *r;

    r = p->request;

    ngx_memzero(&rec, sizeof(pg_job_t));

    rc = ngx_http_podgen_job_lookup(r->pool, p->id, &rec, r->connection->log,
                                    0, ngx_http_podgen_podcasts_status_found,
                                    p, &p->fetch);
    if (rc == NGX_AGAIN) {
        ngx_http_podgen_podcasts_hold(p);
        return NGX_DONE;
    }

    rc = ngx_http_podgen_podcasts_have(p, rc, &rec);

    pg_job_free(&rec);

    if (rc == NGX_DONE) {
        ngx_http_podgen_podcasts_hold(p);
    }

    return rc;
}


static void
ngx_http_podgen_podcasts_status_found(void *data, ngx_int_t rc,
    pg_job_t *rec, u_char *audio, size_t len)
{
    ngx_http_podgen_podcasts_t  *p = data;

    p->fetch = NULL;

    rc = ngx_http_podgen_podcasts_have(p, rc, rec);

    if (rc != NGX_DONE) {
        ngx_http_podgen_podcasts_finish(p, rc);
    }
}


static ngx_int_t
ngx_http_podgen_podcasts_status(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p)
{
    ngx_int_t   wait;
    ngx_str_t   arg;
    pg_error_t  err;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wait = 0;

    if (ngx_http_arg(r, (u_char *) "wait", 4, &arg) == NGX_OK) {
        wait = ngx_atoi(arg.data, arg.len);

        if (wait == NGX_ERROR) {
            pg_error_set(&err, 400, "wait", "invalid_value",
                         "'wait' must be a number of seconds, 0 to %d",
                         NGX_HTTP_PODGEN_WAIT_MAX);
            return ngx_http_podgen_send_error(r, &err);
        }

        if (wait > NGX_HTTP_PODGEN_WAIT_MAX) {
            wait = NGX_HTTP_PODGEN_WAIT_MAX;
        }
    }

    p->wait_s = wait;

    return ngx_http_podgen_podcasts_look(p);
}


static void
ngx_http_podgen_podcasts_wait_handler(ngx_event_t *ev)
{
    ngx_http_podgen_podcasts_t  *p = ev->data;

    ngx_int_t  rc;

    rc = ngx_http_podgen_podcasts_look(p);

    if (rc != NGX_DONE) {
        ngx_http_podgen_podcasts_finish(p, rc);
    }
}


/*
 * Store work on the pool for a request.  The pool thread gets a copy of
 * the context outside the request's pool (the client may go away before
 * the thread is done); release() frees the copy.  NGX_DONE, or an answer.
 */

ngx_int_t
ngx_http_podgen_podcasts_offload(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_http_podgen_work_pt work,
    ngx_http_podgen_work_pt after, ngx_http_podgen_work_pt release)
{
    pg_error_t                    err;
    ngx_http_podgen_podcasts_t   *q;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    q = ngx_calloc(sizeof(ngx_http_podgen_podcasts_t) + p->base.len
                   + p->host.len, r->connection->log);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *q = *p;
    q->base.data = (u_char *) (q + 1);
    q->host.data = q->base.data + p->base.len;

    if (p->base.len) {
        ngx_memcpy(q->base.data, p->base.data, p->base.len);
    }

    if (p->host.len) {
        ngx_memcpy(q->host.data, p->host.data, p->host.len);
    }

    q->offload = ngx_http_podgen_offload(pmcf->thread_pool, work, after,
                                         release, q, r->connection->log);
    if (q->offload == NULL) {
        ngx_free(q);
        ngx_http_podgen_metrics_error(PG_ERR_BUSY);
        pg_error_set(&err, 503, NULL, "server_busy",
                     "the server is busy; retry shortly");
        err.type = "server_error";
        return ngx_http_podgen_send_error(r, &err);
    }

    p->copy = q;
    q->peer = p;

    r->read_event_handler = ngx_http_test_reading;
    ngx_http_podgen_podcasts_hold(p);

    return NGX_DONE;
}


/* The pool thread is done: the request takes the copy's answer. */

ngx_http_podgen_podcasts_t *
ngx_http_podgen_podcasts_back(ngx_http_podgen_podcasts_t *q)
{
    q->offload = NULL;
    q->answered = 1;
    q->peer->copy = NULL;
    q->peer->status = q->status;

    return q->peer;
}


/* ---- DELETE ------------------------------------------------------------- */


static void
ngx_http_podgen_podcasts_delete_thread(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    ngx_uint_t  f, running;
    char        path[NGX_MAX_PATH], ext[8];

    /* the lock file first: a record or an episode the job writes after
     * this sees it gone and removes itself (ngx_http_podgen_jobs.c) */

    ngx_http_podgen_job_path(path, "locks", p->id, "");
    running = (unlink(path) == 0);

    /* (a running job may remove its record itself, having seen its lock
     * file gone: the job was there all the same) */

    ngx_http_podgen_job_path(path, "jobs", p->id, ".json");

    if (unlink(path) == -1 && !running) {
        p->status = (errno == ENOENT) ? NGX_HTTP_NOT_FOUND
                                      : NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    for (f = 0; f < PG_FMT_UNKNOWN; f++) {
        ngx_sprintf((u_char *) ext, ".%s%Z", pg_format_name((pg_format_t) f));
        ngx_http_podgen_job_path(path, "audio", p->id, ext);
        (void) unlink(path);
    }

    ngx_http_podgen_job_store_unmark(p->id);

    p->status = NGX_HTTP_NO_CONTENT;
}


static ngx_int_t
ngx_http_podgen_podcasts_deleted(ngx_http_request_t *r, ngx_int_t status)
{
    ngx_int_t  rc;

    if (status == NGX_HTTP_NOT_FOUND) {
        return ngx_http_podgen_podcasts_not_found(r);
    }

    if (status != NGX_HTTP_NO_CONTENT) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->header_only = 1;
    r->headers_out.content_length_n = 0;

    rc = ngx_http_podgen_add_common_headers(r);
    if (rc == NGX_OK) {
        rc = ngx_http_send_header(r);
    }

    return rc;
}


static void
ngx_http_podgen_podcasts_redis_deleted(void *data, ngx_int_t rc,
    pg_job_t *rec, u_char *audio, size_t len)
{
    ngx_http_podgen_podcasts_t  *p = data;

    p->fetch = NULL;

    if (rc == NGX_OK) {
        /* a job of another node: gone from Redis (its node stops it
         * when it next writes its record) */
        p->status = NGX_HTTP_NO_CONTENT;
        ngx_http_podgen_job_tombstone(p->id);

    } else if (rc == NGX_ERROR && p->status == NGX_HTTP_NOT_FOUND) {
        /* Redis failed: whether another node has it is unknown */
        ngx_http_podgen_podcasts_finish(p,
                           ngx_http_podgen_podcasts_unavailable(p->request));
        return;
    }

    ngx_http_podgen_podcasts_finish(p,
                       ngx_http_podgen_podcasts_deleted(p->request, p->status));
}


static void
ngx_http_podgen_podcasts_delete_after(void *data)
{
    ngx_http_podgen_podcasts_t  *q = data;

    ngx_int_t                    rc;
    ngx_http_podgen_podcasts_t  *p;

    p = ngx_http_podgen_podcasts_back(q);

    if (q->status == NGX_HTTP_NO_CONTENT) {
        ngx_http_podgen_job_forget(q->id);
        ngx_http_podgen_job_tombstone(q->id);
    }

    /* in Redis mode, the shared record and episode go too */

    if (q->status == NGX_HTTP_NO_CONTENT || q->status == NGX_HTTP_NOT_FOUND) {
        rc = ngx_http_podgen_job_redis_delete(q->id,
                                        ngx_http_podgen_podcasts_redis_deleted,
                                        p, &p->fetch);
        if (rc == NGX_AGAIN) {
            return;
        }

        if (q->status == NGX_HTTP_NOT_FOUND && ngx_http_podgen_jobs_shared()) {
            /* Redis is away: another node's job may be there */
            ngx_http_podgen_podcasts_finish(p,
                           ngx_http_podgen_podcasts_unavailable(p->request));
            return;
        }
    }

    ngx_http_podgen_podcasts_finish(p,
                       ngx_http_podgen_podcasts_deleted(p->request, p->status));
}


static void
ngx_http_podgen_podcasts_delete_release(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    if (!p->answered && p->status == NGX_HTTP_NO_CONTENT) {
        /* the client went away; the files are gone all the same */
        ngx_http_podgen_job_forget(p->id);
        ngx_http_podgen_job_tombstone(p->id);
    }

    ngx_free(p);
}


static ngx_int_t
ngx_http_podgen_podcasts_delete(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p)
{
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_podgen_podcasts_offload(r, p,
                                       ngx_http_podgen_podcasts_delete_thread,
                                       ngx_http_podgen_podcasts_delete_after,
                                       ngx_http_podgen_podcasts_delete_release);
}


/* ---- lifetime ----------------------------------------------------------- */


static void
ngx_http_podgen_podcasts_cleanup(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    ngx_http_podgen_podcasts_t  *q;

    if (p->wait.timer_set) {
        ngx_del_timer(&p->wait);
    }

    ngx_http_podgen_podcasts_waited(p);

    if (p->fetch) {
        ngx_http_podgen_job_lookup_cancel(p->fetch);
        p->fetch = NULL;
    }

    if (p->list_op) {
        ngx_http_podgen_redis_cancel(p->list_op);
        p->list_op = NULL;
    }

    q = p->copy;

    if (q) {
        /* the pool still works for us: its release() frees the copy */
        q->request = NULL;
        ngx_http_podgen_offload_detach(q->offload);
        p->copy = NULL;
    }

    if (p->job) {
        /* accepted or not, the job goes on */
        ngx_http_podgen_job_detach(p->job);
        p->job = NULL;
    }
}
