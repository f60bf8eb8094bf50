/*
 * podgen: POST /v1/audio/speech — OpenAI-compatible text to speech.
 *
 * The body is validated and normalized by lib/, then a TTS job synthesizes
 * sentences in parallel on the thread pool; encoded audio is written to
 * the client in order, chunked, as soon as each piece exists.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_speech_request.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_tts.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_redis.h"


typedef struct {
    ngx_http_podgen_cache_conf_t  *cache;
    u_char                      key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    char                        key_hex[PG_KEY_LEN + 1];
    pg_format_t                 format;
    pg_buf_t                    full;
    ngx_uint_t                  overflow;
    ngx_http_podgen_tts_job_t  *job;
} ngx_http_podgen_speech_orphan_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_podgen_tts_job_t  *job;
    ngx_http_podgen_voice_t    *voice;
    char                       *text;
    size_t                      text_len;
    double                      speed;
    ngx_event_t                 wait;       /* single flight: poll */
    ngx_http_podgen_redis_op_t *l2;         /* a GET in flight */
    ngx_uint_t                  waiting;    /* counted as a waiter */
    ngx_uint_t                  overflow;   /* too big for an entry */
    ngx_chain_t                *free;
    ngx_chain_t                *busy;
    ngx_uint_t                  input_tokens;
    pg_format_t                 format;
    pg_buf_t                    full;       /* the whole audio, for L1 */
    ngx_http_podgen_cache_conf_t  *cache;
    u_char                      key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
    char                        key_hex[PG_KEY_LEN + 1];
    unsigned                    sse:1;
    unsigned                    header_sent:1;
    unsigned                    done:1;
    unsigned                    owner:1;    /* holds the cache marker */
    unsigned                    remote_lock:1;  /* holds the Redis lock */
    unsigned                    remote_wait:1;  /* another node makes it */
} ngx_http_podgen_speech_t;


static void ngx_http_podgen_speech_body(ngx_http_request_t *r);
static void ngx_http_podgen_speech_cleanup(void *data);
static ngx_int_t ngx_http_podgen_speech_url(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s);
static ngx_int_t ngx_http_podgen_speech_cached(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *data, size_t len, char *how);
static void ngx_http_podgen_speech_try(ngx_http_podgen_speech_t *s);
static void ngx_http_podgen_speech_wait_handler(ngx_event_t *ev);
static void ngx_http_podgen_speech_locked(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_speech_l2_done(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_speech_start(ngx_http_podgen_speech_t *s);
static void ngx_http_podgen_speech_orphan_output(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);
static void ngx_http_podgen_speech_output(void *data, u_char *audio,
    size_t len, ngx_uint_t last, ngx_int_t rc);
static ngx_int_t ngx_http_podgen_speech_send_header(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s);
static ngx_int_t ngx_http_podgen_speech_send(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *audio, size_t len,
    ngx_uint_t last);
static void ngx_http_podgen_speech_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_speech_flushed(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, ngx_int_t rc);


static u_char  ngx_http_podgen_sse_delta_start[] =
    "data: {\"type\":\"speech.audio.delta\",\"audio\":\"";
static u_char  ngx_http_podgen_sse_delta_end[] = "\"}\n\n";


ngx_int_t
ngx_http_podgen_speech_handler(ngx_http_request_t *r)
{
    return ngx_http_podgen_read_json_request(r, ngx_http_podgen_speech_body);
}


int
ngx_http_podgen_voice_exists(void *data, const char *name)
{
    return ngx_http_podgen_find_voice(data, name) != NULL;
}


static void
ngx_http_podgen_speech_body(ngx_http_request_t *r)
{
    char                          hex[PG_KEY_LEN + 1];
    u_char                       *body;
    size_t                        len;
    pg_error_t                    err;
    ngx_pool_cleanup_t           *cln;
    pg_speech_request_t           req;
    ngx_http_podgen_ctx_t        *ctx;
    ngx_http_podgen_voice_t      *voice;
    ngx_http_podgen_speech_t     *s;
    ngx_http_podgen_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);
    ctx = ngx_http_podgen_get_ctx(r);

    if (ctx == NULL
        || ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pg_speech_request_parse((char *) body, len, pmcf->max_input,
                                ngx_http_podgen_voice_exists, pmcf, &req,
                                &err)
        != 0)
    {
        ngx_http_finalize_request(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    voice = ngx_http_podgen_find_voice(pmcf, req.voice);

    s = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_speech_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (s == NULL || cln == NULL
        || ngx_http_podgen_speech_key(voice, req.format, req.speed, req.text,
                                      req.text_len, hex) != NGX_OK)
    {
        pg_speech_request_free(&req);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* what the work needs, kept in the request: it may start later, when
     * another request making the same audio gives up */

    s->text = ngx_pnalloc(r->pool, req.text_len + 1);
    if (s->text == NULL) {
        pg_speech_request_free(&req);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(s->text, req.text, req.text_len + 1);
    s->text_len = req.text_len;

    s->request = r;
    s->voice = voice;
    s->format = req.format;
    s->speed = req.speed;
    s->sse = req.sse;
    s->input_tokens = (req.text_len + 3) / 4;
    s->cache = pmcf->cache.shm_zone ? &pmcf->cache : NULL;
    ngx_memcpy(s->key_hex, hex, sizeof(hex));
    ngx_http_podgen_cache_key(s->key, hex);

    pg_speech_request_free(&req);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "podgen speech: voice %V, format %s, speed %.2f, "
                   "%uz chars", &voice->name, pg_format_name(s->format),
                   s->speed, s->text_len);

    ctx->speech = s;

    cln->handler = ngx_http_podgen_speech_cleanup;
    cln->data = s;

    s->wait.handler = ngx_http_podgen_speech_wait_handler;
    s->wait.data = s;
    s->wait.log = r->connection->log;

    /* notice a client that goes away while we work or wait */
    r->read_event_handler = ngx_http_test_reading;

    ngx_http_podgen_speech_try(s);
}


/*
 * The cache decides: a hit is served, work in flight elsewhere is waited
 * for (single flight), else this request makes the audio.
 */

static void
ngx_http_podgen_speech_try(ngx_http_podgen_speech_t *s)
{
    u_char              *data;
    size_t               len;
    ngx_int_t            rc;
    ngx_uint_t           tag, waited;
    ngx_http_request_t  *r;

    r = s->request;

    if (s->cache) {
        waited = s->waiting;

        rc = ngx_http_podgen_cache_acquire(s->cache, s->key, PG_KIND_AUDIO,
                                           r->pool, &data, &len, &tag,
                                           &s->waiting, 300);
        switch (rc) {

        case NGX_OK:
            s->done = 1;
            rc = ngx_http_podgen_speech_cached(r, s, data, len,
                                               waited ? "COALESCED"
                                                      : "HIT-L1");
            ngx_http_podgen_finalize(r, rc);
            return;

        case NGX_AGAIN:
            ngx_add_timer(&s->wait, 20);
            return;

        case NGX_DECLINED:
            s->owner = 1;

            /* this node makes it, unless another node has */
            s->l2 = ngx_http_podgen_redis_get("audio", s->key_hex,
                                              ngx_http_podgen_speech_l2_done,
                                              s);
            if (s->l2) {
                return;
            }

            break;

        default:
            s->done = 1;
            ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_podgen_speech_start(s);
}


static void
ngx_http_podgen_speech_l2_done(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_speech_t  *s = data;

    u_char              *copy;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    s->l2 = NULL;
    r = s->request;
    c = r->connection;

    if (rc != NGX_OK || len < 2 || value[0] != (u_char) s->format) {
        if (!s->remote_wait) {
            ngx_http_podgen_metrics_cache(1, PG_KIND_AUDIO, 0);
        }

        if (rc == NGX_ERROR) {
            /* Redis failed: make it here */
            ngx_http_podgen_speech_start(s);
            return;
        }

        /* is another node making it? */
        s->l2 = ngx_http_podgen_redis_lock("audio", s->key_hex, 60000,
                                           ngx_http_podgen_speech_locked, s);
        if (s->l2 == NULL) {
            ngx_http_podgen_speech_start(s);
        }

        return;
    }

    ngx_http_podgen_metrics_cache(1, PG_KIND_AUDIO, 1);

    /* an L2 hit fills L1 (and frees the waiters of this node) */

    if (ngx_http_podgen_cache_put(s->cache, s->key, PG_KIND_AUDIO,
                                  value + 1, len - 1, s->format, c->log)
        != NGX_OK)
    {
        /* not stored here: local waiters must not wait for nothing */
        ngx_http_podgen_cache_release(s->cache, s->key);
    }

    s->owner = 0;

    copy = ngx_http_podgen_redis_keep(r->pool);
    if (copy == NULL) {
        s->done = 1;
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (s->remote_wait) {
        ngx_http_podgen_metrics_coalesced(PG_KIND_AUDIO);
    }

    s->done = 1;
    ngx_http_podgen_finalize(r, ngx_http_podgen_speech_cached(r, s, copy + 1,
                                                              len - 1,
                                                              s->remote_wait
                                                              ? "COALESCED"
                                                              : "HIT-L2"));
}


static void
ngx_http_podgen_speech_locked(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_speech_t  *s = data;

    s->l2 = NULL;

    if (rc == NGX_OK) {
        s->remote_lock = 1;
        ngx_http_podgen_speech_start(s);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_podgen_speech_start(s);
        return;
    }

    /* another node makes it: look for the result now and then (this
     * request keeps its node's marker, so local requests wait here) */

    s->remote_wait = 1;
    ngx_add_timer(&s->wait, 50);
}


static void
ngx_http_podgen_speech_wait_handler(ngx_event_t *ev)
{
    ngx_http_podgen_speech_t  *s = ev->data;

    if (!s->remote_wait) {
        ngx_http_podgen_speech_try(s);
        return;
    }

    s->l2 = ngx_http_podgen_redis_get("audio", s->key_hex,
                                      ngx_http_podgen_speech_l2_done, s);
    if (s->l2 == NULL) {
        /* Redis went away: make it here */
        ngx_http_podgen_speech_start(s);
    }
}


static void
ngx_http_podgen_speech_start(ngx_http_podgen_speech_t *s)
{
    ngx_int_t                     rc;
    pg_error_t                    err;
    ngx_table_elt_t              *h;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_podgen_tts_conf_t    conf;
    ngx_http_podgen_main_conf_t  *pmcf;

    r = s->request;
    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    conf.thread_pool = pmcf->thread_pool;
    conf.voice = &s->voice->voice;
    conf.format = s->format;
    conf.speed = s->speed;
    conf.parallelism = pmcf->parallelism;
    conf.chunk_max = pmcf->chunk_max;
    conf.first_chunk_max = pmcf->first_chunk_max;
    conf.output = ngx_http_podgen_speech_output;
    conf.data = s;
    conf.log = c->log;

    s->job = ngx_http_podgen_tts_start(&conf, s->text, s->text_len, &rc);

    if (s->job) {
        return;
    }

    if (s->owner) {
        ngx_http_podgen_cache_release(s->cache, s->key);
        s->owner = 0;
    }

    if (s->remote_lock) {
        ngx_http_podgen_redis_unlock("audio", s->key_hex);
        s->remote_lock = 0;
    }

    s->done = 1;

    if (rc == NGX_BUSY) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h) {
            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");
            ngx_str_set(&h->value, "1");
        }

        ngx_http_podgen_metrics_error(PG_ERR_BUSY);

        pg_error_set(&err, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                     "server_busy",
                     "the speech queue is full; retry shortly");
        err.type = "server_error";

    } else {
        pg_error_set(&err, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL,
                     "server_error", "could not start synthesis");
        err.type = "server_error";
    }

    ngx_http_podgen_finalize(r, ngx_http_podgen_send_error(r, &err));
}


/* where the finished audio stays, content-addressed (GET /v1/audio/) */

static ngx_int_t
ngx_http_podgen_speech_url(ngx_http_request_t *r, ngx_http_podgen_speech_t *s)
{
    ngx_str_t  value;

    if (s->cache == NULL) {
        return NGX_OK;
    }

    value.data = ngx_pnalloc(r->pool, sizeof("/v1/audio/.flac") + PG_KEY_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(value.data, "/v1/audio/%s.%s", s->key_hex,
                            pg_format_name(s->format))
                - value.data;

    return ngx_http_podgen_add_header(r, "X-Podgen-Audio-Url", &value);
}


/*
 * The key of speech audio: what flite says (normalized text), the voice,
 * the format, the speed, and flite's version.
 */

ngx_int_t
ngx_http_podgen_speech_key(ngx_http_podgen_voice_t *voice, pg_format_t format,
    double speed, const char *text, size_t len, char *hex)
{
    ngx_int_t  rc;
    pg_buf_t   canon;
    char       head[160];

    ngx_memzero(&canon, sizeof(pg_buf_t));

    ngx_snprintf((u_char *) head, sizeof(head),
                 "speech|v1|flite-%s|det=%d|%V|%s|%.3f|%Z",
                 pg_tts_version(), pg_tts_deterministic(), &voice->name,
                 pg_format_name(format), speed);

    rc = NGX_ERROR;

    if (pg_buf_append_str(&canon, head) == 0
        && pg_buf_append(&canon, text, len) == 0
        && pg_key_sha256(canon.data, canon.len, hex) == 0)
    {
        rc = NGX_OK;
    }

    pg_buf_free(&canon);

    return rc;
}


/*
 * A hit is served whole: Content-Length, ETag (If-None-Match gives 304 in
 * nginx's not_modified filter) and Range (nginx's range filter).
 */

static ngx_int_t
ngx_http_podgen_speech_cached(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *data, size_t len, char *how)
{
    u_char           *p, *body;
    size_t            size;
    ngx_str_t         value, src, dst;

    if (s->sse) {
        size = sizeof(ngx_http_podgen_sse_delta_start) - 1
               + ngx_base64_encoded_length(len)
               + sizeof(ngx_http_podgen_sse_delta_end) - 1 + 160;

        p = ngx_pnalloc(r->pool, size);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body = p;
        p = ngx_cpymem(p, ngx_http_podgen_sse_delta_start,
                       sizeof(ngx_http_podgen_sse_delta_start) - 1);
        src.data = data;
        src.len = len;
        dst.data = p;
        ngx_encode_base64(&dst, &src);
        p += dst.len;
        p = ngx_cpymem(p, ngx_http_podgen_sse_delta_end,
                       sizeof(ngx_http_podgen_sse_delta_end) - 1);
        p = ngx_sprintf(p, "data: {\"type\":\"speech.audio.done\","
                        "\"usage\":{\"input_tokens\":%ui,"
                        "\"output_tokens\":0,\"total_tokens\":%ui}}\n\n",
                        s->input_tokens, s->input_tokens);
        len = p - body;

        ngx_str_set(&r->headers_out.content_type, "text/event-stream");

    } else {
        body = data;

        r->headers_out.content_type.data = (u_char *) pg_format_mime(s->format);
        r->headers_out.content_type.len =
                                  ngx_strlen(r->headers_out.content_type.data);

        /* a strong validator: the key names the exact bytes */

        if (ngx_http_podgen_set_etag(r, s->key_hex) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->allow_ranges = 1;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    value.data = (u_char *) how;
    value.len = ngx_strlen(how);

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK
        || ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value) != NGX_OK
        || ngx_http_podgen_speech_url(r, s) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_podgen_send_memory(r, body, len);
}


/*
 * The request goes away.  A waiter stops waiting.  An owner whose audio
 * others wait for hands its job to an orphan that finishes it into the
 * cache; with nobody waiting, the work stops.
 */

static void
ngx_http_podgen_speech_cleanup(void *data)
{
    ngx_http_podgen_speech_t  *s = data;

    ngx_http_podgen_speech_orphan_t  *o;

    if (s->wait.timer_set) {
        ngx_del_timer(&s->wait);
    }

    if (s->waiting) {
        ngx_http_podgen_cache_leave(s->cache, s->key);
        s->waiting = 0;
    }

    if (s->l2) {
        ngx_http_podgen_redis_cancel(s->l2);
        s->l2 = NULL;
    }

    if (s->job == NULL) {
        if (s->owner) {
            ngx_http_podgen_cache_release(s->cache, s->key);
            s->owner = 0;
        }

        if (s->remote_lock) {
            ngx_http_podgen_redis_unlock("audio", s->key_hex);
            s->remote_lock = 0;
        }

        pg_buf_free(&s->full);
        return;
    }

    if (!s->done) {
        ngx_http_podgen_metrics_error(PG_ERR_CLIENT_GONE);
    }

    /* still the owner: the audio is not stored yet */

    if (s->owner) {
        if (ngx_http_podgen_cache_waiters(s->cache, s->key)) {
            o = ngx_calloc(sizeof(ngx_http_podgen_speech_orphan_t),
                           ngx_cycle->log);
            if (o) {
                o->cache = s->cache;
                ngx_memcpy(o->key, s->key, NGX_HTTP_PODGEN_CACHE_KEY_LEN);
                ngx_memcpy(o->key_hex, s->key_hex, sizeof(s->key_hex));
                o->format = s->format;
                o->overflow = s->overflow;
                o->full = s->full;
                ngx_memzero(&s->full, sizeof(pg_buf_t));

                o->job = s->job;
                ngx_http_podgen_tts_rebind(s->job,
                                           ngx_http_podgen_speech_orphan_output,
                                           o);
                s->job = NULL;
                s->owner = 0;
                return;
            }
        }

        ngx_http_podgen_cache_release(s->cache, s->key);
        s->owner = 0;
    }

    if (s->remote_lock) {
        ngx_http_podgen_redis_unlock("audio", s->key_hex);
        s->remote_lock = 0;
    }

    pg_buf_free(&s->full);

    ngx_http_podgen_tts_detach(s->job);
    s->job = NULL;
}


/* Stores the finished audio; releases the marker if it cannot. */

static void
ngx_http_podgen_speech_store(ngx_http_podgen_cache_conf_t *cache,
    u_char *key, char *hex, pg_format_t format, pg_buf_t *full,
    ngx_uint_t complete, ngx_log_t *log)
{
    u_char  *v;

    if (!complete || full->len == 0) {
        ngx_http_podgen_cache_release(cache, key);
        ngx_http_podgen_redis_unlock("audio", hex);
        pg_buf_free(full);
        return;
    }

    if (format == PG_FMT_WAV) {
        (void) pg_wav_fix_sizes(full->data, full->len);
    }

    if (ngx_http_podgen_cache_put(cache, key, PG_KIND_AUDIO, full->data,
                                  full->len, format, log)
        != NGX_OK)
    {
        ngx_http_podgen_cache_release(cache, key);
    }

    /* L2: the format byte, then the audio */

    if (ngx_http_podgen_redis_up()) {
        v = ngx_alloc(full->len + 1, log);
        if (v) {
            v[0] = (u_char) format;
            ngx_memcpy(v + 1, full->data, full->len);
            ngx_http_podgen_redis_set("audio", hex, v, full->len + 1);
            ngx_free(v);
        }

        /* after the value: a node polling sees it before the lock goes */
        ngx_http_podgen_redis_unlock("audio", hex);
    }

    pg_buf_free(full);
}


/* Keeps the whole stream for the cache, while it fits an entry. */

static void
ngx_http_podgen_speech_keep(ngx_http_podgen_cache_conf_t *cache,
    pg_buf_t *full, ngx_uint_t *overflow, u_char *audio, size_t len)
{
    if (*overflow || len == 0) {
        return;
    }

    if (full->len + len > cache->max_entry
        || pg_buf_append(full, audio, len) != 0)
    {
        *overflow = 1;
        pg_buf_free(full);
    }
}


static void
ngx_http_podgen_speech_orphan_output(void *data, u_char *audio, size_t len,
    ngx_uint_t last, ngx_int_t rc)
{
    ngx_http_podgen_speech_orphan_t  *o = data;

    if (rc == NGX_OK) {
        ngx_http_podgen_speech_keep(o->cache, &o->full, &o->overflow, audio,
                                    len);
    }

    if (!last && rc == NGX_OK) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "podgen speech: orphan done, rc %i", rc);

    ngx_http_podgen_speech_store(o->cache, o->key, o->key_hex, o->format,
                                 &o->full,
                                 rc == NGX_OK && !o->overflow,
                                 ngx_cycle->log);

    /* the last output: detached, the job frees itself */
    ngx_http_podgen_tts_detach(o->job);
    ngx_free(o);
}


static void
ngx_http_podgen_speech_output(void *data, u_char *audio, size_t len,
    ngx_uint_t last, ngx_int_t rc)
{
    ngx_http_podgen_speech_t  *s = data;

    pg_error_t           err;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = s->request;
    c = r->connection;

    if (rc != NGX_OK) {
        s->done = 1;

        if (s->owner) {
            ngx_http_podgen_speech_store(s->cache, s->key, s->key_hex,
                                         s->format, &s->full, 0, c->log);
            s->owner = 0;
            s->remote_lock = 0;
        }

        if (!s->header_sent) {
            pg_error_set(&err, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL,
                         "server_error", "speech synthesis failed");
            err.type = "server_error";
            rc = ngx_http_podgen_send_error(r, &err);

        } else {
            /* the status is out: cut the stream so the client sees it
             * is incomplete */
            rc = NGX_ERROR;
        }

        ngx_http_podgen_finalize(r, rc);
        return;
    }

    if (!s->header_sent) {
        rc = ngx_http_podgen_speech_send_header(r, s);

        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            s->done = (rc != NGX_ERROR);
            ngx_http_podgen_finalize(r, rc);
            return;
        }
    }

    if (s->owner) {
        ngx_http_podgen_speech_keep(s->cache, &s->full, &s->overflow, audio,
                                    len);

        if (last) {
            ngx_http_podgen_speech_store(s->cache, s->key, s->key_hex,
                                         s->format, &s->full, !s->overflow,
                                         c->log);
            s->owner = 0;
            s->remote_lock = 0;
        }
    }

    rc = ngx_http_podgen_speech_send(r, s, audio, len, last);

    if (!last) {
        if (ngx_http_podgen_speech_flushed(r, s, rc) == NGX_OK) {
            return;
        }

        /* the client is gone: the cleanup hands the work on or stops it */
        rc = NGX_ERROR;

    } else if (rc != NGX_ERROR) {
        s->done = 1;
    }

    ngx_http_podgen_finalize(r, rc);
}


static ngx_int_t
ngx_http_podgen_speech_send_header(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s)
{
    ngx_str_t               value;
    ngx_http_podgen_ctx_t  *ctx;

    ctx = ngx_http_podgen_get_ctx(r);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    if (s->sse) {
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");

        ngx_str_set(&value, "no-cache");
        if (ngx_http_podgen_add_header(r, "Cache-Control", &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        r->headers_out.content_type.data =
                                      (u_char *) pg_format_mime(s->format);
        r->headers_out.content_type.len =
                                      ngx_strlen(pg_format_mime(s->format));
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_str_set(&value, "MISS");

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK
        || ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_podgen_speech_url(r, s) != NGX_OK) {
        return NGX_ERROR;
    }

    /* time to the first audio: what a streaming client waits for */

    value.data = ngx_pnalloc(r->pool,
                             sizeof("first-audio;dur=") + NGX_INT_T_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(value.data, "first-audio;dur=%M",
                            (ngx_msec_t) (ngx_current_msec - ctx->start))
                - value.data;

    if (ngx_http_podgen_add_header(r, "Server-Timing", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    s->header_sent = 1;

    return ngx_http_send_header(r);
}


static ngx_buf_t *
ngx_http_podgen_speech_buf(ngx_http_request_t *r, ngx_http_podgen_speech_t *s,
    size_t size, ngx_chain_t ***last)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = ngx_chain_get_free_buf(r->pool, &s->free);
    if (cl == NULL) {
        return NULL;
    }

    b = cl->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->start = ngx_palloc(r->pool, size);
    if (b->start == NULL) {
        return NULL;
    }

    b->pos = b->start;
    b->last = b->start;
    b->end = b->start + size;
    b->temporary = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_podgen_module;

    **last = cl;
    *last = &cl->next;

    return b;
}


static ngx_int_t
ngx_http_podgen_speech_send(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, u_char *audio, size_t len, ngx_uint_t last)
{
    size_t         size;
    ngx_int_t      rc;
    ngx_buf_t     *b;
    ngx_str_t      src, dst;
    ngx_chain_t   *out, **ll, *cl;

    out = NULL;
    ll = &out;
    b = NULL;

    if (len) {
        size = s->sse ? sizeof(ngx_http_podgen_sse_delta_start) - 1
                        + ngx_base64_encoded_length(len)
                        + sizeof(ngx_http_podgen_sse_delta_end) - 1
                      : len;

        b = ngx_http_podgen_speech_buf(r, s, size, &ll);
        if (b == NULL) {
            return NGX_ERROR;
        }

        if (s->sse) {
            b->last = ngx_cpymem(b->last, ngx_http_podgen_sse_delta_start,
                                 sizeof(ngx_http_podgen_sse_delta_start) - 1);

            src.data = audio;
            src.len = len;
            dst.data = b->last;
            ngx_encode_base64(&dst, &src);
            b->last += dst.len;

            b->last = ngx_cpymem(b->last, ngx_http_podgen_sse_delta_end,
                                 sizeof(ngx_http_podgen_sse_delta_end) - 1);

        } else {
            b->last = ngx_cpymem(b->last, audio, len);
        }
    }

    if (last && s->sse) {
        b = ngx_http_podgen_speech_buf(r, s, 160, &ll);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->last = ngx_sprintf(b->last,
                              "data: {\"type\":\"speech.audio.done\","
                              "\"usage\":{\"input_tokens\":%ui,"
                              "\"output_tokens\":0,\"total_tokens\":%ui}}"
                              "\n\n",
                              s->input_tokens, s->input_tokens);
    }

    if (last && b == NULL) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
    }

    if (b == NULL) {
        return NGX_OK;
    }

    *ll = NULL;

    /* every piece goes out now, not when postpone_output is reached */
    b->flush = 1;

    if (last) {
        b->last_buf = 1;
        b->last_in_chain = 1;
    }

    rc = ngx_http_output_filter(r, out);

    ngx_chain_update_chains(r->pool, &s->free, &s->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_podgen_module);

    /* sent pieces give their (large) memory back at once: a long stream
     * must not keep every piece until the request ends */

    for (cl = s->free; cl; cl = cl->next) {
        if (cl->buf->start) {
            ngx_pfree(r->pool, cl->buf->start);
            cl->buf->start = NULL;
        }
    }

    return rc;
}


/*
 * Between pieces a slow client may leave data unsent: keep flushing it on
 * write events, under send_timeout, until the next piece arrives.
 */

static ngx_int_t
ngx_http_podgen_speech_flushed(ngx_http_request_t *r,
    ngx_http_podgen_speech_t *s, ngx_int_t rc)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    r->write_event_handler = ngx_http_podgen_speech_write_handler;

    if (r->connection->buffered || r->buffered || s->busy) {
        if (!wev->delayed && !wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

    } else if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_podgen_speech_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_chain_t               *out;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_podgen_ctx_t     *ctx;
    ngx_http_podgen_speech_t  *s;

    c = r->connection;
    wev = c->write;

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);
    if (ctx == NULL || ctx->speech == NULL) {
        return;
    }

    s = ctx->speech;

    if (s->done) {
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "podgen: client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    out = NULL;
    ngx_chain_update_chains(r->pool, &s->free, &s->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_podgen_module);

    if (ngx_http_podgen_speech_flushed(r, s, rc) != NGX_OK) {
        /* the client is gone (ngx_http_request_handler() runs the posted
         * requests after us) */
        ngx_http_finalize_request(r, NGX_ERROR);
    }
}
