/*
 * podgen: the phase handlers of podgen locations — access (the API key),
 * content (the endpoint's handler) and log (the request metrics).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "pg_key.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_phases.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_speech.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_scripts.h"
#include "ngx_http_podgen_audio.h"
#include "ngx_http_podgen_podcasts.h"
#include "ngx_http_podgen_batch.h"
#include "ngx_http_podgen_metrics.h"


static ngx_int_t ngx_http_podgen_access_handler(ngx_http_request_t *r);
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
 * The access phase of podgen locations with a key: a missing or wrong
 * bearer token gets 401 (as JSON, from the header filter).  The token is
 * compared by its SHA-256, in constant time.
 */

static ngx_int_t
ngx_http_podgen_access_handler(ngx_http_request_t *r)
{
    u_char                      *p, *last;
    ngx_table_elt_t             *h;
    ngx_http_podgen_loc_conf_t  *plcf;
    char                         hash[65];

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_NONE || plcf->api_key.len == 0) {
        return NGX_DECLINED;
    }

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        p = h->value.data + 7;
        last = h->value.data + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        if (pg_key_sha256(p, last - p, hash) == 0
            && CRYPTO_memcmp(hash, plcf->api_key_hash, 64) == 0)
        {
            return NGX_OK;
        }
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

    default: /* NGX_HTTP_PODGEN_VOICES */
        rc = ngx_http_podgen_voices_handler(r);
        break;
    }

    /* the request is still there: nothing above closed it */
    ctx->in_handler = 0;

    return rc;
}


static ngx_int_t
ngx_http_podgen_log_handler(ngx_http_request_t *r)
{
    ngx_time_t                  *tp;
    ngx_msec_int_t               ms;
    ngx_uint_t                   status;
    ngx_http_podgen_ctx_t       *ctx;
    ngx_http_podgen_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_NONE) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);

    if (ctx) {
        /* how long a client chose to wait is not the server's latency */
        ms -= (ngx_msec_int_t) ctx->idle;
    }

    ngx_http_podgen_metrics_request(
                               ngx_http_podgen_metrics_endpoint(plcf->endpoint),
                               status, (ngx_msec_t) ngx_max(ms, 0));

    return NGX_OK;
}
