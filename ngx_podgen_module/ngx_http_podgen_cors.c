/*
 * podgen: CORS — the podgen_cors directive, the preflight OPTIONS of a
 * podgen location (answered 204 in the access phase, before the API key:
 * a browser sends no Authorization header with it), and a header filter
 * that gives every answer of such a location, errors included, its
 * Access-Control-* headers, so that browser apps on another origin can
 * call the API and read podgen's own headers.  No credentials are ever
 * allowed: the API key travels in Authorization, which CORS lets a page
 * send without them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_cors.h"
#include "ngx_http_podgen_util.h"


/* what a page may read of a reply besides the CORS-safelisted headers */
#define NGX_HTTP_PODGEN_CORS_EXPOSE                                           \
    "X-Request-Id, X-Podgen-Cache, X-Podgen-Audio-Url, X-Podgen-Engine, "     \
    "X-Podgen-Fallback, Server-Timing, Retry-After, Location, ETag, "         \
    "Content-Range, Content-Length"

/* what a page may send: the key, a JSON body, the conditional headers */
#define NGX_HTTP_PODGEN_CORS_HEADERS                                          \
    "Authorization, Content-Type, Range, If-None-Match, If-Match, "           \
    "X-Request-Id"

/* how long a browser may keep a preflight's answer */
#define NGX_HTTP_PODGEN_CORS_MAX_AGE  "3600"


static ngx_table_elt_t *ngx_http_podgen_cors_header_in(ngx_http_request_t *r,
    char *name, size_t len);
static ngx_str_t *ngx_http_podgen_cors_allowed(ngx_http_request_t *r,
    ngx_array_t *origins);
static char *ngx_http_podgen_cors_methods(ngx_uint_t endpoint);
static ngx_uint_t ngx_http_podgen_cors_token_list(ngx_str_t *s);
static ngx_int_t ngx_http_podgen_cors_header_filter(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

static ngx_str_t  ngx_http_podgen_cors_any = ngx_string("*");


/*
 * podgen_cors ORIGIN ... | * | off: the origins (scheme://host[:port], as
 * browsers send them in Origin) whose pages may call podgen here; "*" any
 * page.
 */

char *
ngx_http_podgen_cors(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_loc_conf_t *plcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (plcf->cors != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        plcf->cors = NULL;
        return NGX_CONF_OK;
    }

    plcf->cors = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                  sizeof(ngx_str_t));
    if (plcf->cors == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "*") == 0
            || ngx_strcmp(value[i].data, "off") == 0)
        {
            if (cf->args->nelts != 2) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" of podgen_cors goes alone",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

        } else {
            /* an origin: scheme://host[:port], no path */

            p = value[i].data;
            last = p + value[i].len;

            if (value[i].len > 7 && ngx_strncmp(p, "http://", 7) == 0) {
                p += 7;

            } else if (value[i].len > 8
                       && ngx_strncmp(p, "https://", 8) == 0)
            {
                p += 8;

            } else {
                p = NULL;
            }

            if (p == NULL || p == last || ngx_strlchr(p, last, '/')) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid origin \"%V\" of podgen_cors: "
                                   "use scheme://host[:port], \"*\" or "
                                   "\"off\"", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        o = ngx_array_push(plcf->cors);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_podgen_cors_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_podgen_cors_header_filter;

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_podgen_cors_header_in(ngx_http_request_t *r, char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* the Access-Control-Allow-Origin for this request's Origin, or NULL */

static ngx_str_t *
ngx_http_podgen_cors_allowed(ngx_http_request_t *r, ngx_array_t *origins)
{
    ngx_str_t        *o;
    ngx_uint_t        i;
    ngx_table_elt_t  *origin;

    o = origins->elts;

    if (origins->nelts == 1 && o[0].len == 1 && o[0].data[0] == '*') {
        return &ngx_http_podgen_cors_any;
    }

    origin = ngx_http_podgen_cors_header_in(r, "Origin",
                                            sizeof("Origin") - 1);
    if (origin == NULL) {
        return NULL;
    }

    for (i = 0; i < origins->nelts; i++) {
        if (o[i].len == origin->value.len
            && ngx_strncasecmp(o[i].data, origin->value.data, o[i].len) == 0)
        {
            return &origin->value;
        }
    }

    return NULL;
}


static char *
ngx_http_podgen_cors_methods(ngx_uint_t endpoint)
{
    switch (endpoint) {

    case NGX_HTTP_PODGEN_SPEECH:
    case NGX_HTTP_PODGEN_SCRIPTS:
    case NGX_HTTP_PODGEN_BATCH:
        return "POST, OPTIONS";

    case NGX_HTTP_PODGEN_PODCASTS:
        return "GET, HEAD, POST, DELETE, OPTIONS";

    case NGX_HTTP_PODGEN_SOURCES:
        return "GET, HEAD, POST, OPTIONS";

    default: /* voices, models, audio */
        return "GET, HEAD, OPTIONS";
    }
}


/* Access-Control-Request-Headers: a list of header names, nothing else */

static ngx_uint_t
ngx_http_podgen_cors_token_list(ngx_str_t *s)
{
    u_char      c;
    ngx_uint_t  i;

    if (s->len == 0 || s->len > 1024) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (!(ngx_http_podgen_isalnum(c) || c == '-' || c == '_'
              || c == ',' || c == ' '))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The access phase of a podgen location with podgen_cors: a preflight
 * (OPTIONS with Origin and Access-Control-Request-Method) is answered
 * 204 here, before the API key is asked for; the header filter adds the
 * origin.  NGX_DECLINED for any other request.
 */

ngx_int_t
ngx_http_podgen_cors_preflight(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf)
{
    u_char           *p;
    ngx_str_t         v;
    ngx_table_elt_t  *h;

    if (plcf->cors == NULL || r->method != NGX_HTTP_OPTIONS
        || r != r->main
        || ngx_http_podgen_cors_header_in(r, "Origin", sizeof("Origin") - 1)
           == NULL
        || ngx_http_podgen_cors_header_in(r, "Access-Control-Request-Method",
                              sizeof("Access-Control-Request-Method") - 1)
           == NULL)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_podgen_begin(r) != NGX_OK
        || ngx_http_discard_request_body(r) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v.data = (u_char *) ngx_http_podgen_cors_methods(plcf->endpoint);
    v.len = ngx_strlen(v.data);

    if (ngx_http_podgen_add_header(r, "Access-Control-Allow-Methods", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the SDKs send headers of their own (X-Stainless-*): a page may send
     * what it asks for; without credentials that gives it nothing more */

    ngx_str_set(&v, NGX_HTTP_PODGEN_CORS_HEADERS);

    h = ngx_http_podgen_cors_header_in(r, "Access-Control-Request-Headers",
                               sizeof("Access-Control-Request-Headers") - 1);

    if (h && ngx_http_podgen_cors_token_list(&h->value)) {
        v.len = sizeof(NGX_HTTP_PODGEN_CORS_HEADERS ", ") - 1 + h->value.len;
        v.data = ngx_pnalloc(r->pool, v.len);
        if (v.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(v.data, NGX_HTTP_PODGEN_CORS_HEADERS ", ",
                       sizeof(NGX_HTTP_PODGEN_CORS_HEADERS ", ") - 1);
        ngx_memcpy(p, h->value.data, h->value.len);
    }

    if (ngx_http_podgen_add_header(r, "Access-Control-Allow-Headers", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, NGX_HTTP_PODGEN_CORS_MAX_AGE);

    if (ngx_http_podgen_add_header(r, "Access-Control-Max-Age", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_podgen_add_common_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_NO_CONTENT;
}


/*
 * Every answer where podgen_cors is on gets its Access-Control-Allow-Origin
 * (for an allowed Origin), the headers a page may read, and, with a list of
 * origins, "Vary: Origin" (the answer differs by origin, for caches).
 */

static ngx_int_t
ngx_http_podgen_cors_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                    v, *origin;
    ngx_table_elt_t             *h;
    ngx_http_podgen_loc_conf_t  *plcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

    if (plcf == NULL || plcf->cors == NULL
        || plcf->cors == NGX_CONF_UNSET_PTR)
    {
        return ngx_http_next_header_filter(r);
    }

    /* a filter_finalize'd answer comes here again with its headers kept */

    h = ngx_http_podgen_header_out(r, "Vary");

    if (ngx_http_podgen_header_out(r, "Access-Control-Expose-Headers")
        || (h && h->value.len == 6
            && ngx_strncmp(h->value.data, "Origin", 6) == 0))
    {
        return ngx_http_next_header_filter(r);
    }

    origin = ngx_http_podgen_cors_allowed(r, plcf->cors);

    if (origin != &ngx_http_podgen_cors_any) {
        ngx_str_set(&v, "Origin");

        if (ngx_http_podgen_add_header(r, "Vary", &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (origin == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_podgen_add_header(r, "Access-Control-Allow-Origin", origin)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&v, NGX_HTTP_PODGEN_CORS_EXPOSE);

    if (ngx_http_podgen_add_header(r, "Access-Control-Expose-Headers", &v)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* Server-Timing reaches a page's Resource Timing only with this */

    if (ngx_http_podgen_add_header(r, "Timing-Allow-Origin", origin)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}
