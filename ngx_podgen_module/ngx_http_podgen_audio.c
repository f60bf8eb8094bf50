/*
 * podgen: GET /v1/audio/{key}.{ext} — content-addressed audio.
 *
 * The key names the exact bytes (SHA-256 of what made them), so a found
 * artifact never changes: Cache-Control immutable, a strong ETag, Range.
 * Looked up in L1, then in Redis (which fills L1).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_audio.h"
#include "pg_key.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_audio.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_metrics.h"


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_podgen_redis_op_t  *l2;
    pg_format_t                  format;
    char                         hex[PG_KEY_LEN + 1];
    u_char                       key[NGX_HTTP_PODGEN_CACHE_KEY_LEN];
} ngx_http_podgen_artifact_req_t;


static ngx_int_t ngx_http_podgen_audio_send(ngx_http_request_t *r,
    ngx_http_podgen_artifact_req_t *a, u_char *data, size_t len, char *how);
static void ngx_http_podgen_audio_l2_done(void *data, ngx_int_t rc,
    u_char *value, size_t len);
static void ngx_http_podgen_audio_cleanup(void *data);


/* "<64 lowercase hex>.<ext>" as the last path segment */

static ngx_int_t
ngx_http_podgen_audio_parse(ngx_http_request_t *r,
    ngx_http_podgen_artifact_req_t *a)
{
    u_char      *p, *last, *name;
    ngx_uint_t   i;

    last = r->uri.data + r->uri.len;

    for (p = last; p > r->uri.data && p[-1] != '/'; p--) {
        /* void */
    }

    name = p;

    if ((size_t) (last - name) < PG_KEY_LEN + 2 || name[PG_KEY_LEN] != '.') {
        return NGX_DECLINED;
    }

    for (i = 0; i < PG_KEY_LEN; i++) {
        if (!((name[i] >= '0' && name[i] <= '9')
              || (name[i] >= 'a' && name[i] <= 'f')))
        {
            return NGX_DECLINED;
        }
    }

    a->format = pg_format_from_name((char *) name + PG_KEY_LEN + 1,
                                    last - (name + PG_KEY_LEN + 1));

    if (a->format == PG_FMT_UNKNOWN) {
        return NGX_DECLINED;
    }

    ngx_memcpy(a->hex, name, PG_KEY_LEN);
    a->hex[PG_KEY_LEN] = '\0';
    ngx_http_podgen_cache_key(a->key, a->hex);

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_audio_handler(ngx_http_request_t *r)
{
    u_char                       *data;
    size_t                        len;
    ngx_int_t                     rc;
    pg_error_t                    err;
    ngx_pool_cleanup_t           *cln;
    ngx_http_podgen_artifact_req_t      *a;
    ngx_http_podgen_main_conf_t  *pmcf;

    if (ngx_http_podgen_begin(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_podgen_check_method(r, NGX_HTTP_GET|NGX_HTTP_HEAD,
                                      "GET, HEAD", &err);
    if (rc == NGX_DECLINED) {
        return ngx_http_podgen_send_error(r, &err);
    }

    if (rc != NGX_OK || ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_artifact_req_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->request = r;

    if (ngx_http_podgen_audio_parse(r, a) != NGX_OK) {
        pg_error_set(&err, 400, NULL, "invalid_key",
                     "expected /v1/audio/<64 hex digits>.<mp3|opus|wav|flac"
                     "|pcm>");
        return ngx_http_podgen_send_error(r, &err);
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (pmcf->cache.shm_zone
        && ngx_http_podgen_cache_get_tagged(&pmcf->cache, a->key,
                                            PG_KIND_AUDIO, a->format,
                                            r->pool, &data, &len)
           == NGX_OK)
    {
        return ngx_http_podgen_audio_send(r, a, data, len, "HIT-L1");
    }

    a->l2 = ngx_http_podgen_redis_get("audio", a->hex,
                                      ngx_http_podgen_audio_l2_done, a);
    if (a->l2) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            ngx_http_podgen_redis_cancel(a->l2);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_podgen_audio_cleanup;
        cln->data = a;

        r->main->count++;
        return NGX_DONE;
    }

    pg_error_set(&err, 404, NULL, "not_found", "no such audio");
    return ngx_http_podgen_send_error(r, &err);
}


static void
ngx_http_podgen_audio_l2_done(void *data, ngx_int_t rc, u_char *value,
    size_t len)
{
    ngx_http_podgen_artifact_req_t  *a = data;

    u_char                       *copy;
    pg_error_t                    err;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_podgen_main_conf_t  *pmcf;

    a->l2 = NULL;
    r = a->request;
    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (rc != NGX_OK || len < 2 || value[0] != (u_char) a->format) {
        pg_error_set(&err, 404, NULL, "not_found", "no such audio");
        ngx_http_podgen_finalize(r, ngx_http_podgen_send_error(r, &err));
        return;
    }

    if (pmcf->cache.shm_zone) {
        (void) ngx_http_podgen_cache_put(&pmcf->cache, a->key, PG_KIND_AUDIO,
                                         value + 1, len - 1, a->format,
                                         c->log);
    }

    copy = ngx_http_podgen_redis_keep(r->pool);
    if (copy == NULL) {
        ngx_http_podgen_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_podgen_finalize(r, ngx_http_podgen_audio_send(r, a, copy + 1,
                                                           len - 1,
                                                           "HIT-L2"));
}


static void
ngx_http_podgen_audio_cleanup(void *data)
{
    ngx_http_podgen_artifact_req_t  *a = data;

    if (a->l2) {
        ngx_http_podgen_redis_cancel(a->l2);
        a->l2 = NULL;
    }
}


static ngx_int_t
ngx_http_podgen_audio_send(ngx_http_request_t *r,
    ngx_http_podgen_artifact_req_t *a, u_char *data, size_t len, char *how)
{
    ngx_str_t         value;

    if (ngx_http_podgen_set_etag(r, a->hex) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type.data = (u_char *) pg_format_mime(a->format);
    r->headers_out.content_type.len = ngx_strlen(pg_format_mime(a->format));
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->allow_ranges = 1;

    ngx_str_set(&value, "public, max-age=31536000, immutable");
    if (ngx_http_podgen_add_header(r, "Cache-Control", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = (u_char *) how;
    value.len = ngx_strlen(how);

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK
        || ngx_http_podgen_add_header(r, "X-Podgen-Cache", &value) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_podgen_send_memory(r, data, len);
}
