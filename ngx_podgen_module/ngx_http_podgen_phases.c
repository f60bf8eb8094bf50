/*
 * podgen: the phase handlers of podgen locations — access (the API key),
 * content (the endpoint's handler) and log (the request metrics).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "pg_key.h"
#include "pg_job.h"
#include "pg_feed.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_phases.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_speech.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_scripts.h"
#include "ngx_http_podgen_audio.h"
#include "ngx_http_podgen_podcasts.h"
#include "ngx_http_podgen_batch.h"
#include "ngx_http_podgen_sources.h"
#include "ngx_http_podgen_models.h"
#include "ngx_http_podgen_cors.h"
#include "ngx_http_podgen_metrics.h"


static ngx_int_t ngx_http_podgen_access_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_podgen_bearer_ok(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf);
static ngx_uint_t ngx_http_podgen_feed_token_ok(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf);
static ngx_int_t ngx_http_podgen_log_handler(ngx_http_request_t *r);


/*
 * The log phase counts every answer of a podgen location, nginx's own
 * too; the access phase checks the API key.
 */

ngx_int_t
ngx_http_podgen_phases_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_podgen_log_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_podgen_access_handler;

    return NGX_OK;
}


/*
 * The access phase of podgen locations: a CORS preflight is answered
 * (ngx_http_podgen_cors.c); with a key, a missing or wrong bearer token
 * gets 401 (as JSON, from the header filter), unless the request is the
 * feed or an episode's audio with its podgen_feed_token.
 */

static ngx_int_t
ngx_http_podgen_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_table_elt_t             *h;
    ngx_http_podgen_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_NONE) {
        return NGX_DECLINED;
    }

    /* the context, and with it the start of the request's timing */

    if (ngx_http_podgen_get_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a browser's preflight carries no key */

    rc = ngx_http_podgen_cors_preflight(r, plcf);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (plcf->api_key.len == 0) {
        return NGX_DECLINED;
    }

    if (ngx_http_podgen_bearer_ok(r, plcf)
        || ngx_http_podgen_feed_token_ok(r, plcf))
    {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer");

    (void) ngx_http_podgen_begin(r);

    return NGX_HTTP_UNAUTHORIZED;
}


/* The bearer token is compared by its SHA-256, in constant time. */

static ngx_uint_t
ngx_http_podgen_bearer_ok(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;
    char              hash[65];

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return 0;
    }

    p = h->value.data + 7;
    last = h->value.data + h->value.len;

    while (p < last && *p == ' ') {
        p++;
    }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    return pg_key_sha256(p, last - p, hash) == 0
           && CRYPTO_memcmp(hash, plcf->api_key_hash, 64) == 0;
}


/*
 * GET or HEAD of a podcasts location's {base}/feed.xml?token=T, T the
 * podgen_feed_token (compared by its SHA-256, in constant time), or of
 * {base}/{id}/audio?token=E, E the episode's token (pg_feed_episode_token(),
 * compared in constant time): the links of the feed.  Nothing else.
 */

static ngx_uint_t
ngx_http_podgen_feed_token_ok(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf)
{
    ngx_str_t                  rest, token;
    ngx_http_core_loc_conf_t  *clcf;
    char                       hash[65], want[PG_FEED_TOKEN_LEN + 1];

    if (plcf->feed_token.len == 0
        || plcf->endpoint != NGX_HTTP_PODGEN_PODCASTS
        || !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        || ngx_http_arg(r, (u_char *) "token", 5, &token) != NGX_OK)
    {
        return 0;
    }

    /* the path as the podcasts handler reads it */

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

    if (rest.len == sizeof("feed.xml") - 1
        && ngx_strncmp(rest.data, "feed.xml", rest.len) == 0)
    {
        return pg_key_sha256(token.data, token.len, hash) == 0
               && CRYPTO_memcmp(hash, plcf->feed_token_hash, 64) == 0;
    }

    if (rest.len == PG_JOB_ID_LEN + sizeof("/audio") - 1
        && rest.data[0] == 'p'
        && pg_job_id_valid((char *) rest.data, PG_JOB_ID_LEN)
        && ngx_strncmp(rest.data + PG_JOB_ID_LEN, "/audio",
                       sizeof("/audio") - 1) == 0)
    {
        return token.len == PG_FEED_TOKEN_LEN
               && pg_feed_episode_token((char *) plcf->feed_token.data,
                                        plcf->feed_token.len,
                                        (char *) rest.data, want)
                  == 0
               && CRYPTO_memcmp(token.data, want, PG_FEED_TOKEN_LEN) == 0;
    }

    return 0;
}


/*
 * Every podgen location's content handler.  While the endpoint's handler
 * runs, the request is marked: callbacks it reaches synchronously leave the
 * posted requests to nginx (see ngx_http_podgen_finalize()).
 */

ngx_int_t
ngx_http_podgen_content_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    ctx->in_handler = 1;

    switch (plcf->endpoint) {

    case NGX_HTTP_PODGEN_SPEECH:
        rc = ngx_http_podgen_speech_handler(r);
        break;

    case NGX_HTTP_PODGEN_SCRIPTS:
        rc = ngx_http_podgen_scripts_handler(r);
        break;

    case NGX_HTTP_PODGEN_AUDIO:
        rc = ngx_http_podgen_audio_handler(r);
        break;

    case NGX_HTTP_PODGEN_PODCASTS:
        rc = ngx_http_podgen_podcasts_handler(r);
        break;

    case NGX_HTTP_PODGEN_BATCH:
        rc = ngx_http_podgen_batch_handler(r);
        break;

    case NGX_HTTP_PODGEN_SOURCES:
        rc = ngx_http_podgen_sources_handler(r);
        break;

    case NGX_HTTP_PODGEN_MODELS:
        rc = ngx_http_podgen_models_handler(r);
        break;

    default: /* NGX_HTTP_PODGEN_VOICES */
        rc = ngx_http_podgen_voices_handler(r);
        break;
    }

    /* the request is still there: nothing above closed it */
    ctx->in_handler = 0;

    return rc;
}


/*
 * The request's duration: from when podgen's access phase saw it, to the
 * microsecond, less the time a long poll chose to wait; for an answer of
 * nginx's own that podgen never saw before (a bad request line), nginx's
 * milliseconds since the request began.
 */

static ngx_int_t
ngx_http_podgen_log_handler(ngx_http_request_t *r)
{
    double                       seconds;
    ngx_time_t                  *tp;
    ngx_uint_t                   status;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_NONE) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);

    if (ctx && ctx->start_us) {
        seconds = (double) (ngx_http_podgen_now_us() - ctx->start_us) / 1e6;

    } else {
        tp = ngx_timeofday();
        seconds = (double) ((tp->sec - r->start_sec) * 1000
                            + (tp->msec - r->start_msec)) / 1000;
    }

    if (ctx) {
        /* how long a client chose to wait is not the server's latency */
        seconds -= (double) ctx->idle / 1000;
    }

    ngx_http_podgen_metrics_request(
                               ngx_http_podgen_metrics_endpoint(plcf->endpoint),
                               status, ngx_max(seconds, 0));

    return NGX_OK;
}
