/*
 * podgen: GET /v1/voices — the voices this server speaks with.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>

#include "ngx_http_podgen_module.h"


static void
ngx_http_podgen_gen_ngx_str(yajl_gen g, ngx_str_t *s)
{
    yajl_gen_string(g, s->data, s->len);
}


static void
ngx_http_podgen_gen_cstr(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *) s, ngx_strlen(s));
}


ngx_int_t
ngx_http_podgen_voices_handler(ngx_http_request_t *r)
{
    u_char                       *json;
    size_t                        len;
    yajl_gen                      g;
    ngx_int_t                     rc;
    ngx_str_t                    *alias;
    pg_error_t                    err;
    ngx_uint_t                    i, j;
    const unsigned char          *buf;
    ngx_http_podgen_voice_t      *v;
    ngx_http_podgen_main_conf_t  *pmcf;

    if (ngx_http_podgen_begin(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_podgen_gen_cstr(g, "object");
    ngx_http_podgen_gen_cstr(g, "list");
    ngx_http_podgen_gen_cstr(g, "data");
    yajl_gen_array_open(g);

    v = pmcf->voices.elts;

    for (i = 0; i < pmcf->voices.nelts; i++) {
        yajl_gen_map_open(g);

        ngx_http_podgen_gen_cstr(g, "id");
        ngx_http_podgen_gen_ngx_str(g, &v[i].name);
        ngx_http_podgen_gen_cstr(g, "name");
        ngx_http_podgen_gen_ngx_str(g, &v[i].name);
        ngx_http_podgen_gen_cstr(g, "sample_rate");
        yajl_gen_integer(g, v[i].voice.rate);
        ngx_http_podgen_gen_cstr(g, "builtin");
        yajl_gen_bool(g, v[i].voice.builtin);
        ngx_http_podgen_gen_cstr(g, "engine");
        ngx_http_podgen_gen_cstr(g, "flite");

        ngx_http_podgen_gen_cstr(g, "aliases");
        yajl_gen_array_open(g);

        if (v[i].aliases) {
            alias = v[i].aliases->elts;

            for (j = 0; j < v[i].aliases->nelts; j++) {
                ngx_http_podgen_gen_ngx_str(g, &alias[j]);
            }
        }

        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        yajl_gen_free(g);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json = ngx_pnalloc(r->pool, len + 1);
    if (json == NULL) {
        yajl_gen_free(g);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(json, buf, len);
    json[len] = '\n';

    yajl_gen_free(g);

    return ngx_http_podgen_send_json(r, NGX_HTTP_OK, json, len + 1);
}
