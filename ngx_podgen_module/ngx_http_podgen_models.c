/*
 * podgen: GET /v1/models and GET /v1/models/{id} in OpenAI's shape, so
 * that SDKs and tools that list models first (client.models.list()) find
 * the names POST /v1/audio/speech accepts.  Every one speaks with flite;
 * a dated snapshot of an OpenAI model speaks as its family.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>

#include "pg_speech_request.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_models.h"
#include "ngx_http_podgen_util.h"


/* when each model came out (OpenAI's "created"); flite: flite 2.2 */
static struct {
    char     *name;
    time_t    created;
} ngx_http_podgen_model_dates[] = {
    { "tts-1",           1681940951 },
    { "tts-1-hd",        1699046015 },
    { "tts-1-1106",      1699053241 },
    { "tts-1-hd-1106",   1699053533 },
    { "gpt-4o-mini-tts", 1742403959 },
    { "flite",           1597363200 },
    { NULL, 0 }
};


static time_t ngx_http_podgen_model_created(const char *id);
static void ngx_http_podgen_model_gen(yajl_gen g, const char *id);


/* a dated snapshot NAME-YYYY-MM-DD came out on its date */

static time_t
ngx_http_podgen_model_created(const char *id)
{
    size_t       len;
    ngx_int_t    y, m, d, era, yoe, doy, doe;
    ngx_uint_t   i;
    const char  *p;

    for (i = 0; ngx_http_podgen_model_dates[i].name; i++) {
        if (ngx_strcmp(ngx_http_podgen_model_dates[i].name, id) == 0) {
            return ngx_http_podgen_model_dates[i].created;
        }
    }

    len = ngx_strlen(id);
    if (len < 10) {
        return 0;
    }

    /* pg_speech_model_family() checked the digits */
    p = id + len - 10;
    y = ngx_atoi((u_char *) p, 4);
    m = ngx_atoi((u_char *) p + 5, 2);
    d = ngx_atoi((u_char *) p + 8, 2);

    if (y == NGX_ERROR || m == NGX_ERROR || d == NGX_ERROR) {
        return 0;
    }

    /* days from the civil date (Howard Hinnant's algorithm) */

    if (m <= 2) {
        y--;
    }

    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (time_t) (era * 146097 + doe - 719468) * 86400;
}


static void
ngx_http_podgen_model_gen(yajl_gen g, const char *id)
{
    yajl_gen_map_open(g);
    yajl_gen_string(g, (u_char *) "id", 2);
    yajl_gen_string(g, (u_char *) id, ngx_strlen(id));
    yajl_gen_string(g, (u_char *) "object", 6);
    yajl_gen_string(g, (u_char *) "model", 5);
    yajl_gen_string(g, (u_char *) "created", 7);
    yajl_gen_integer(g, ngx_http_podgen_model_created(id));
    yajl_gen_string(g, (u_char *) "owned_by", 8);
    yajl_gen_string(g, (u_char *) "podgen", 6);
    yajl_gen_map_close(g);
}


ngx_int_t
ngx_http_podgen_models_handler(ngx_http_request_t *r)
{
    size_t                     len;
    u_char                    *json;
    yajl_gen                   g;
    ngx_int_t                  rc;
    ngx_str_t                  rest;
    pg_error_t                 err;
    ngx_uint_t                 i;
    const unsigned char       *buf;
    ngx_http_core_loc_conf_t  *clcf;
    char                       id[65];

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

    /* {location}, or {location}/{id} */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rest = r->uri;

    if (rest.len >= clcf->name.len
        && ngx_strncmp(rest.data, clcf->name.data, clcf->name.len) == 0)
    {
        rest.data += clcf->name.len;
        rest.len -= clcf->name.len;
    }

    if (rest.len && rest.data[0] == '/') {
        rest.data++;
        rest.len--;
    }

    id[0] = '\0';

    if (rest.len) {
        if (rest.len >= sizeof(id)) {
            goto not_found;
        }

        for (i = 0; i < rest.len; i++) {
            if (!(ngx_http_podgen_isalnum(rest.data[i])
                  || rest.data[i] == '-' || rest.data[i] == '.'
                  || rest.data[i] == '_'))
            {
                goto not_found;
            }
        }

        ngx_memcpy(id, rest.data, rest.len);
        id[rest.len] = '\0';

        if (pg_speech_model_family(id) == NULL) {
            goto not_found;
        }
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (id[0]) {
        ngx_http_podgen_model_gen(g, id);

    } else {
        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "object", 6);
        yajl_gen_string(g, (u_char *) "list", 4);
        yajl_gen_string(g, (u_char *) "data", 4);
        yajl_gen_array_open(g);

        for (i = 0; pg_speech_models[i]; i++) {
            ngx_http_podgen_model_gen(g, pg_speech_models[i]);
        }

        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    }

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

not_found:

    /* the name only when it is plain text */

    if (id[0] == '\0' || rest.len >= sizeof(id)) {
        pg_error_set(&err, NGX_HTTP_NOT_FOUND, "model", "model_not_found",
                     "no such model; GET /v1/models lists them");

    } else {
        pg_error_set(&err, NGX_HTTP_NOT_FOUND, "model", "model_not_found",
                     "the model '%s' does not exist; GET /v1/models lists "
                     "them", id);
    }

    return ngx_http_podgen_send_error(r, &err);
}
