/*
 * podgen: sources (see the header).  The glue only: extraction is
 * pg_source_extract() in lib/, run on the thread pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_key.h"
#include "pg_source.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_sources.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_cache.h"
#include "ngx_http_podgen_fetch.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_url.h"


/*
 * One POST or GET.  Lives outside the request pool: the pool thread may
 * still hold it when the client goes away (then request is NULL and
 * release() frees it).
 */
typedef struct {
    ngx_http_request_t            *request;     /* NULL: gone */
    ngx_http_podgen_main_conf_t   *pmcf;
    ngx_log_t                     *log;
    ngx_http_podgen_fetch_t        fetch;
    ngx_http_podgen_offload_t     *offload;
    ngx_msec_t                     start;
    u_char                        *data;        /* a copy of the body */
    size_t                         len;
    pg_source_type_t               type;
    char                           charset[32];
    char                           id[NGX_HTTP_PODGEN_SOURCE_ID_LEN + 1];
    pg_buf_t                       json;        /* made on the pool */
    char                          *url;         /* {"url"}: malloc'd */
    ngx_http_podgen_url_t         *call;        /* fetching it */
    pg_error_t                     err;
    int                            rc;
    unsigned                       post:1;
    unsigned                       want_url:1;
    unsigned                       in_pool:1;
    unsigned                       fetching:1;
} ngx_http_podgen_source_op_t;


static ngx_int_t ngx_http_podgen_sources_get(ngx_http_request_t *r,
    ngx_str_t *id);
static void ngx_http_podgen_sources_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_sources_url(ngx_http_podgen_source_op_t *op,
    u_char *body, size_t len);
static void ngx_http_podgen_sources_fetched(void *data, ngx_int_t rc,
    u_char *body, size_t len, const char *content_type, pg_error_t *err);
static ngx_int_t ngx_http_podgen_source_document(
    ngx_http_podgen_source_op_t *op, u_char *body, size_t len);
static ngx_http_podgen_source_op_t *ngx_http_podgen_source_op(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_podgen_source_start(ngx_http_podgen_source_op_t *op);
static void ngx_http_podgen_source_cleanup(void *data);
static void ngx_http_podgen_source_free(ngx_http_podgen_source_op_t *op);
static void ngx_http_podgen_source_found(ngx_http_podgen_fetch_t *f,
    ngx_uint_t from, u_char *data, size_t len);
static void ngx_http_podgen_source_make(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_source_cache_error(ngx_http_podgen_fetch_t *f);
static ngx_int_t ngx_http_podgen_source_404(ngx_http_podgen_source_op_t *op);
static ngx_int_t ngx_http_podgen_source_pool(
    ngx_http_podgen_source_op_t *op);
static void ngx_http_podgen_source_work(void *data);
static void ngx_http_podgen_source_after(void *data);
static void ngx_http_podgen_source_release(void *data);
static ngx_int_t ngx_http_podgen_source_reply(ngx_http_podgen_source_op_t *op,
    ngx_uint_t from, u_char *json, size_t len);
static void ngx_http_podgen_source_end(ngx_http_podgen_source_op_t *op,
    ngx_int_t rc);
static ngx_int_t ngx_http_podgen_source_check(u_char *data, size_t len);
static ngx_int_t ngx_http_podgen_source_id_valid(const u_char *id,
    size_t len);


/* a source: its JSON object */
static const ngx_http_podgen_fetch_kind_t  ngx_http_podgen_fetch_source = {
    PG_KIND_SOURCE, "source", 0, ngx_http_podgen_source_check
};

static const ngx_http_podgen_fetch_handlers_t
    ngx_http_podgen_source_handlers = {
    ngx_http_podgen_source_found,
    ngx_http_podgen_source_make,
    ngx_http_podgen_source_cache_error
};


ngx_int_t
ngx_http_podgen_sources_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    rest, *ct;
    pg_error_t                   err;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_podgen_main_conf_t *pmcf;
    ngx_http_podgen_source_op_t *op;

    if (ngx_http_podgen_begin(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* what follows the location's name: "" or "/{id}" */

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

    if (rest.len) {
        rc = ngx_http_podgen_check_method(r, NGX_HTTP_GET|NGX_HTTP_HEAD,
                                          "GET, HEAD", &err);
        if (rc == NGX_DECLINED) {
            return ngx_http_podgen_send_error(r, &err);
        }

        if (rc != NGX_OK || ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_podgen_sources_get(r, &rest);
    }

    rc = ngx_http_podgen_check_method(r, NGX_HTTP_POST, "POST", &err);
    if (rc == NGX_DECLINED) {
        return ngx_http_podgen_send_error(r, &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op = ngx_http_podgen_source_op(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->post = 1;

    ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                    : NULL;

    op->type = ct ? pg_source_type((char *) ct->data, ct->len, op->charset,
                                   sizeof(op->charset))
                  : PG_SOURCE_UNKNOWN;

    if (op->type == PG_SOURCE_UNKNOWN && ct
        && ngx_http_podgen_check_json_body(r, &err) == NGX_OK)
    {
        /* {"url": "https://..."}: podgen fetches the document */
        op->want_url = 1;

    } else if (op->type == PG_SOURCE_UNKNOWN) {
        pg_error_set(&err, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                     "unsupported_media_type",
                     "send the document as the body with its Content-Type: "
                     "text/html, application/xhtml+xml, application/pdf, "
                     "text/markdown or text/plain");
        return ngx_http_podgen_send_error(r, &err);
    }

    if (!op->want_url
        && r->headers_in.content_length_n > (off_t) pmcf->max_source)
    {
        pg_error_set(&err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NULL,
                     "source_too_large",
                     "the document is %lld bytes; the maximum is %zu "
                     "(podgen_max_source)",
                     (long long) r->headers_in.content_length_n,
                     pmcf->max_source);
        return ngx_http_podgen_send_error(r, &err);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_podgen_sources_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_podgen_sources_body(ngx_http_request_t *r)
{
    u_char                       *body;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_http_podgen_ctx_t        *ctx;
    ngx_http_podgen_source_op_t  *op;

    ctx = ngx_http_get_module_ctx(r, ngx_http_podgen_module);
    op = ctx ? ctx->source : NULL;

    if (op == NULL || ngx_http_podgen_body_bytes(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (op->want_url) {
        rc = ngx_http_podgen_sources_url(op, body, len);

    } else {
        rc = ngx_http_podgen_source_document(op, body, len);
    }

    if (rc == NGX_AGAIN) {
        r->read_event_handler = ngx_http_test_reading;
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/* {"url": "..."}: the fetch starts; NGX_AGAIN, or a status. */

static ngx_int_t
ngx_http_podgen_sources_url(ngx_http_podgen_source_op_t *op, u_char *body,
    size_t len)
{
    size_t       n;
    yajl_val     tree;
    pg_error_t   err;
    const char  *url;

    tree = pg_json_parse_object((char *) body, len, PG_JSON_MAX_DEPTH, &err);
    if (tree == NULL) {
        return ngx_http_podgen_send_error(op->request, &err);
    }

    if (pg_json_get_string(tree, "url", 1, &url, &err) != 0) {
        yajl_tree_free(tree);
        return ngx_http_podgen_send_error(op->request, &err);
    }

    n = ngx_strlen(url);

    if (n > 4096
        || !((n > 7 && ngx_strncasecmp((u_char *) url, (u_char *) "http://", 7)
                       == 0)
             || (n > 8 && ngx_strncasecmp((u_char *) url,
                                          (u_char *) "https://", 8) == 0)))
    {
        yajl_tree_free(tree);
        pg_error_set(&err, 400, "url", "invalid_value",
                     "'url' must be an http:// or https:// URL (at most "
                     "4096 bytes)");
        return ngx_http_podgen_send_error(op->request, &err);
    }

    op->url = ngx_alloc(n + 1, op->log);
    if (op->url == NULL) {
        yajl_tree_free(tree);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(op->url, url, n + 1);
    yajl_tree_free(tree);

    op->call = ngx_http_podgen_url_fetch(&op->pmcf->fetch, op->url,
                                         op->pmcf->max_source,
                                         ngx_http_podgen_sources_fetched, op,
                                         op->log, &err);
    if (op->call == NULL) {
        return ngx_http_podgen_send_error(op->request, &err);
    }

    return NGX_AGAIN;
}


static void
ngx_http_podgen_sources_fetched(void *data, ngx_int_t rc, u_char *body,
    size_t len, const char *content_type, pg_error_t *err)
{
    ngx_http_podgen_source_op_t  *op = data;

    size_t       n;
    pg_error_t   e;
    const char  *path, *q;

    op->call = NULL;

    if (rc != NGX_OK) {
        ngx_http_podgen_source_end(op,
                           ngx_http_podgen_send_error(op->request, err));
        return;
    }

    op->type = content_type
               ? pg_source_type(content_type, ngx_strlen(content_type),
                                op->charset, sizeof(op->charset))
               : PG_SOURCE_UNKNOWN;

    if (op->type == PG_SOURCE_UNKNOWN) {
        /* no usable Content-Type: the URL's extension */

        path = op->url;
        q = strpbrk(path, "?#");
        n = q ? (size_t) (q - path) : ngx_strlen(path);

        if (n > 4 && ngx_strncasecmp((u_char *) path + n - 4,
                                     (u_char *) ".pdf", 4) == 0)
        {
            op->type = PG_SOURCE_PDF;

        } else if (n > 3 && ngx_strncasecmp((u_char *) path + n - 3,
                                            (u_char *) ".md", 3) == 0)
        {
            op->type = PG_SOURCE_MARKDOWN;

        } else if (content_type == NULL
                   || ngx_strncasecmp((u_char *) content_type,
                                      (u_char *) "application/octet-stream",
                                      24) == 0)
        {
            op->type = (len >= 5 && ngx_strncmp(body, "%PDF-", 5) == 0)
                       ? PG_SOURCE_PDF : PG_SOURCE_HTML;
        }
    }

    if (op->type == PG_SOURCE_UNKNOWN) {
        pg_error_set(&e, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "url",
                     "unsupported_media_type",
                     "the site sent %.64s; a source is HTML, PDF, Markdown "
                     "or text", content_type);
        ngx_http_podgen_source_end(op,
                           ngx_http_podgen_send_error(op->request, &e));
        return;
    }

    rc = ngx_http_podgen_source_document(op, body, len);

    if (rc != NGX_AGAIN) {
        ngx_http_podgen_source_end(op, rc);
    }
}


/* The document's bytes: its id, then the tiers.  NGX_AGAIN or a status. */

static ngx_int_t
ngx_http_podgen_source_document(ngx_http_podgen_source_op_t *op,
    u_char *body, size_t len)
{
    pg_buf_t    name;
    pg_error_t  err;
    char        hex[PG_KEY_LEN + 1];

    if (len == 0) {
        pg_error_set(&err, 400, NULL, "invalid_document",
                     "the body is empty: send the document itself");
        return ngx_http_podgen_send_error(op->request, &err);
    }

    if (len > op->pmcf->max_source) {
        pg_error_set(&err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NULL,
                     "source_too_large",
                     "the document is %zu bytes; the maximum is %zu "
                     "(podgen_max_source)", len, op->pmcf->max_source);
        return ngx_http_podgen_send_error(op->request, &err);
    }

    /* the content address: type, charset, bytes */

    ngx_memzero(&name, sizeof(pg_buf_t));

    if (pg_buf_append_str(&name, pg_source_type_name(op->type)) != 0
        || pg_buf_append(&name, "\n", 1) != 0
        || pg_buf_append_str(&name, op->charset) != 0
        || pg_buf_append(&name, "\n", 1) != 0
        || pg_buf_append(&name, body, len) != 0
        || pg_key_sha256(name.data, name.len, hex) != 0)
    {
        pg_buf_free(&name);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pg_buf_free(&name);

    ngx_sprintf((u_char *) op->id, "src_%s%Z", hex);

    /* the pool thread reads its own copy: the request may go away */

    op->data = ngx_alloc(len, op->log);
    if (op->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(op->data, body, len);
    op->len = len;

    return ngx_http_podgen_source_start(op);
}


static ngx_int_t
ngx_http_podgen_sources_get(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_int_t                     rc;
    pg_error_t                    err;
    ngx_http_podgen_source_op_t  *op;

    if (!ngx_http_podgen_source_id_valid(id->data, id->len)) {
        pg_error_set(&err, NGX_HTTP_NOT_FOUND, NULL, "not_found",
                     "no such source; ids are src_ and 64 hex digits");
        return ngx_http_podgen_send_error(r, &err);
    }

    op = ngx_http_podgen_source_op(r);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(op->id, id->data, id->len);
    op->id[id->len] = '\0';

    rc = ngx_http_podgen_source_start(op);

    if (rc == NGX_AGAIN) {
        /* L2 is asked: the request lives on until a callback answers */
        r->main->count++;
        r->read_event_handler = ngx_http_test_reading;
        return NGX_DONE;
    }

    return rc;
}


static ngx_http_podgen_source_op_t *
ngx_http_podgen_source_op(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_podgen_ctx_t        *ctx;
    ngx_http_podgen_source_op_t  *op;

    ctx = ngx_http_podgen_get_ctx(r);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        return NULL;
    }

    op = ngx_calloc(sizeof(ngx_http_podgen_source_op_t), r->connection->log);
    if (op == NULL) {
        return NULL;
    }

    op->request = r;
    op->pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);
    op->log = r->connection->log;
    op->start = ngx_current_msec;

    cln->handler = ngx_http_podgen_source_cleanup;
    cln->data = op;
    ctx->source = op;

    return op;
}


/*
 * The tiers are asked: a hit is answered at once, otherwise a callback
 * follows.  Returns a status to finalize with, or NGX_AGAIN.
 */

static ngx_int_t
ngx_http_podgen_source_start(ngx_http_podgen_source_op_t *op)
{
    u_char     *value;
    size_t      len;
    ngx_int_t   rc;

    ngx_http_podgen_fetch_init(&op->fetch, &ngx_http_podgen_fetch_source,
                               &ngx_http_podgen_source_handlers,
                               &op->pmcf->cache, op->id + 4, 0, NULL, op,
                               op->log);
    op->fetching = 1;

    rc = ngx_http_podgen_fetch(&op->fetch, op->request->pool, &value, &len);

    switch (rc) {

    case NGX_OK:
        op->fetching = 0;
        return ngx_http_podgen_source_reply(op, NGX_HTTP_PODGEN_FROM_L1,
                                            value, len);

    case NGX_AGAIN:
        return NGX_AGAIN;

    case NGX_DECLINED:
        if (!op->post) {
            ngx_http_podgen_fetch_abandon(&op->fetch);
            op->fetching = 0;
            return ngx_http_podgen_source_404(op);
        }

        return ngx_http_podgen_source_pool(op);

    default:
        op->fetching = 0;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_podgen_source_found(ngx_http_podgen_fetch_t *f, ngx_uint_t from,
    u_char *data, size_t len)
{
    ngx_http_podgen_source_op_t  *op = f->data;

    op->fetching = 0;
    ngx_http_podgen_source_end(op,
                        ngx_http_podgen_source_reply(op, from, data, len));
}


static void
ngx_http_podgen_source_cache_error(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_source_op_t  *op = f->data;

    op->fetching = 0;
    ngx_http_podgen_source_end(op, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* Nobody has it (the one who was making it gave up): as at the start. */

static void
ngx_http_podgen_source_make(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_source_op_t  *op = f->data;

    ngx_int_t  rc;

    if (!op->post) {
        ngx_http_podgen_fetch_abandon(&op->fetch);
        op->fetching = 0;
        ngx_http_podgen_source_end(op, ngx_http_podgen_source_404(op));
        return;
    }

    rc = ngx_http_podgen_source_pool(op);

    if (rc != NGX_AGAIN) {
        ngx_http_podgen_source_end(op, rc);
    }
}


static ngx_int_t
ngx_http_podgen_source_404(ngx_http_podgen_source_op_t *op)
{
    pg_error_t  err;

    pg_error_set(&err, NGX_HTTP_NOT_FOUND, NULL, "not_found",
                 "no source %.16s...: it was never posted, or the caches "
                 "have let it go (POST it again)", op->id);

    return ngx_http_podgen_send_error(op->request, &err);
}


/* A POST's document is extracted on the pool: NGX_AGAIN, or a status. */

static ngx_int_t
ngx_http_podgen_source_pool(ngx_http_podgen_source_op_t *op)
{
    pg_error_t  err;

    op->offload = ngx_http_podgen_offload(op->pmcf->thread_pool,
                                          ngx_http_podgen_source_work,
                                          ngx_http_podgen_source_after,
                                          ngx_http_podgen_source_release,
                                          op, op->log);
    if (op->offload == NULL) {
        ngx_http_podgen_fetch_abandon(&op->fetch);
        op->fetching = 0;
        ngx_http_podgen_metrics_error(PG_ERR_BUSY);

        pg_error_set(&err, 503, NULL, "server_busy",
                     "too many documents are being read; retry shortly");
        err.type = "server_error";
        (void) ngx_http_podgen_add_header(op->request, "Retry-After",
                                          &(ngx_str_t) ngx_string("1"));

        return ngx_http_podgen_send_error(op->request, &err);
    }

    op->in_pool = 1;

    return NGX_AGAIN;
}


/* On a pool thread: the document is read. */

static void
ngx_http_podgen_source_work(void *data)
{
    ngx_http_podgen_source_op_t  *op = data;

    pg_source_doc_t  doc;

    op->rc = pg_source_extract((char *) op->data, op->len, op->type,
                               op->charset, &doc, &op->err);
    if (op->rc != 0) {
        return;
    }

    op->rc = pg_source_to_json(&doc, op->id, pg_source_type_name(op->type),
                               op->url, &op->json);

    if (op->rc != 0) {
        pg_error_set(&op->err, 500, NULL, "server_error",
                     "out of memory");
        op->err.type = "server_error";
    }

    pg_source_doc_free(&doc);
}


static void
ngx_http_podgen_source_after(void *data)
{
    ngx_http_podgen_source_op_t  *op = data;

    ngx_int_t  rc;

    op->offload = NULL;

    if (op->rc != 0) {
        ngx_http_podgen_fetch_abandon(&op->fetch);
        op->fetching = 0;

        if (op->err.status >= 500) {
            op->err.type = "server_error";
        }

        rc = ngx_http_podgen_send_error(op->request, &op->err);

    } else {
        ngx_http_podgen_fetch_store(&op->fetch, op->json.data, op->json.len);
        op->fetching = 0;

        rc = ngx_http_podgen_source_reply(op, NGX_HTTP_PODGEN_FROM_MADE,
                                          op->json.data, op->json.len);
    }

    /* release() comes next and frees op: the request lets go first */
    ngx_http_podgen_source_end(op, rc);
}


static void
ngx_http_podgen_source_release(void *data)
{
    ngx_http_podgen_source_op_t  *op = data;

    op->in_pool = 0;
    op->offload = NULL;

    if (op->request == NULL) {
        ngx_http_podgen_source_free(op);
    }
}


/*
 * The request is answered.  op is freed by the last of its two owners:
 * the request's pool cleanup and, while the document is read, release().
 */

static void
ngx_http_podgen_source_end(ngx_http_podgen_source_op_t *op, ngx_int_t rc)
{
    ngx_http_request_t  *r;

    r = op->request;

    if (r == NULL) {
        return;
    }

    ngx_http_podgen_finalize(r, rc);
}


static void
ngx_http_podgen_source_cleanup(void *data)
{
    ngx_http_podgen_source_op_t  *op = data;

    op->request = NULL;

    if (op->in_pool) {
        if (op->offload) {
            /* the client went away while the document is read */
            ngx_http_podgen_metrics_error(PG_ERR_CLIENT_GONE);
            ngx_http_podgen_offload_detach(op->offload);
            op->offload = NULL;
        }

        return;
    }

    ngx_http_podgen_source_free(op);
}


static void
ngx_http_podgen_source_free(ngx_http_podgen_source_op_t *op)
{
    if (op->call) {
        ngx_http_podgen_url_cancel(op->call);
    }

    if (op->fetching) {
        ngx_http_podgen_fetch_cancel(&op->fetch);
    }

    if (op->url) {
        ngx_free(op->url);
    }

    pg_buf_free(&op->json);

    if (op->data) {
        ngx_free(op->data);
    }

    ngx_free(op);
}


static ngx_int_t
ngx_http_podgen_source_reply(ngx_http_podgen_source_op_t *op,
    ngx_uint_t from, u_char *json, size_t len)
{
    u_char              *copy;
    ngx_str_t            value;
    ngx_http_request_t  *r;

    static ngx_str_t  names[] = {
        ngx_string("MISS"), ngx_string("HIT-L1"), ngx_string("HIT-L2"),
        ngx_string("COALESCED")
    };

    r = op->request;

    if (r == NULL) {
        return NGX_DONE;
    }

    /* the value may be the cache's or the pool thread's memory */

    copy = ngx_pnalloc(r->pool, len);
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(copy, json, len);

    (void) ngx_http_podgen_add_header(r, "X-Podgen-Cache",
                                      &names[from < 4 ? from : 0]);

    value.data = ngx_pnalloc(r->pool, sizeof("source;dur=") + NGX_INT_T_LEN);
    if (value.data) {
        value.len = ngx_sprintf(value.data, "source;dur=%M",
                                (ngx_msec_t) (ngx_current_msec - op->start))
                    - value.data;
        (void) ngx_http_podgen_add_header(r, "Server-Timing", &value);
    }

    if (!op->post) {
        (void) ngx_http_podgen_set_etag(r, op->id + 4);
    }

    return ngx_http_podgen_send_json(r, op->post ? NGX_HTTP_CREATED
                                                 : NGX_HTTP_OK, copy, len);
}


static ngx_int_t
ngx_http_podgen_source_check(u_char *data, size_t len)
{
    return (len > 2 && data[0] == '{' && data[len - 1] == '}')
           ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_podgen_source_id_valid(const u_char *id, size_t len)
{
    size_t  i;

    if (len != NGX_HTTP_PODGEN_SOURCE_ID_LEN
        || ngx_strncmp(id, "src_", 4) != 0)
    {
        return 0;
    }

    for (i = 4; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_podgen_source_l1(ngx_http_podgen_main_conf_t *pmcf,
    const u_char *id, size_t len, ngx_pool_t *pool, u_char **json,
    size_t *json_len)
{
    char        hex[PG_KEY_LEN + 1];
    ngx_uint_t  tag;
    u_char      raw[NGX_HTTP_PODGEN_CACHE_KEY_LEN];

    if (!ngx_http_podgen_source_id_valid(id, len)
        || pmcf->cache.shm_zone == NULL)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(hex, id + 4, PG_KEY_LEN);
    hex[PG_KEY_LEN] = '\0';

    ngx_http_podgen_cache_key(raw, hex);

    return ngx_http_podgen_cache_get_hit(&pmcf->cache, raw, PG_KIND_SOURCE,
                                         pool, json, json_len, &tag);
}


/* ---- "source_ids" in the requests of scripts, podcasts, batches -------- */


typedef struct {
    ngx_http_podgen_main_conf_t  *pmcf;
    ngx_pool_t                   *pool;
} ngx_http_podgen_source_lookup_t;


static int
ngx_http_podgen_source_lookup(void *data, const char *id, const char **json,
    size_t *len)
{
    ngx_http_podgen_source_lookup_t  *lk = data;

    u_char  *p;

    if (ngx_http_podgen_source_l1(lk->pmcf, (u_char *) id, ngx_strlen(id),
                                  lk->pool, &p, len)
        != NGX_OK)
    {
        return -1;
    }

    *json = (const char *) p;

    return 0;
}


ngx_int_t
ngx_http_podgen_sources_expand(ngx_http_podgen_main_conf_t *pmcf,
    ngx_pool_t *pool, u_char **body, size_t *len, pg_error_t *err)
{
    int                               rc;
    u_char                           *p;
    yajl_val                          tree;
    pg_buf_t                          out;
    pg_error_t                        perr;
    ngx_http_podgen_source_lookup_t   lk;

    if (*len < sizeof("\"source_ids\"") - 1
        || ngx_strnstr(*body, "\"source_ids\"", *len) == NULL)
    {
        return NGX_OK;
    }

    tree = pg_json_parse_object((char *) *body, *len, PG_JSON_MAX_DEPTH,
                                &perr);
    if (tree == NULL) {
        /* the caller's parse says what is wrong */
        return NGX_OK;
    }

    lk.pmcf = pmcf;
    lk.pool = pool;

    ngx_memzero(&out, sizeof(pg_buf_t));

    rc = pg_source_expand(tree, pmcf->max_source,
                          ngx_http_podgen_source_lookup, &lk, &out, err);
    yajl_tree_free(tree);

    if (rc <= 0) {
        pg_buf_free(&out);
        return rc == 0 ? NGX_OK : (err->status >= 500 ? NGX_ERROR
                                                      : NGX_DECLINED);
    }

    p = ngx_pnalloc(pool, out.len);
    if (p == NULL) {
        pg_buf_free(&out);
        return NGX_ERROR;
    }

    ngx_memcpy(p, out.data, out.len);
    *body = p;
    *len = out.len;

    pg_buf_free(&out);

    return NGX_OK;
}


/* ---- "source_ids" from the tiers, before the body is handled ---------- */


typedef struct {
    ngx_http_request_t               *request;
    ngx_http_podgen_sources_resume_pt resume;
    ngx_http_podgen_fetch_t           fetch;
    ngx_array_t                       ids;      /* char[PG_KEY_LEN + 1] */
    ngx_uint_t                        next;
    unsigned                          fetching:1;
    unsigned                          done:1;
} ngx_http_podgen_prefetch_t;


static ngx_int_t ngx_http_podgen_prefetch_run(ngx_http_podgen_prefetch_t *pf);
static void ngx_http_podgen_prefetch_found(ngx_http_podgen_fetch_t *f,
    ngx_uint_t from, u_char *data, size_t len);
static void ngx_http_podgen_prefetch_make(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_prefetch_error(ngx_http_podgen_fetch_t *f);
static void ngx_http_podgen_prefetch_cleanup(void *data);


static const ngx_http_podgen_fetch_handlers_t
    ngx_http_podgen_prefetch_handlers = {
    ngx_http_podgen_prefetch_found,
    ngx_http_podgen_prefetch_make,
    ngx_http_podgen_prefetch_error
};


ngx_int_t
ngx_http_podgen_sources_prefetch(ngx_http_request_t *r, u_char *body,
    size_t len, ngx_http_podgen_sources_resume_pt resume)
{
    char                         *hex;
    size_t                        i;
    yajl_val                      tree, ids, v;
    pg_error_t                    perr;
    ngx_pool_cleanup_t           *cln;
    ngx_http_podgen_ctx_t        *ctx;
    ngx_http_podgen_prefetch_t   *pf;
    ngx_http_podgen_main_conf_t  *pmcf;

    ctx = ngx_http_podgen_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->source) {
        /* resumed: the sources are in L1 now, as far as any tier had them */
        pf = ctx->source;
        return pf->done ? NGX_OK : NGX_AGAIN;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    if (pmcf->cache.shm_zone == NULL
        || len < sizeof("\"source_ids\"") - 1
        || ngx_strnstr(body, "\"source_ids\"", len) == NULL)
    {
        return NGX_OK;
    }

    tree = pg_json_parse_object((char *) body, len, PG_JSON_MAX_DEPTH,
                                &perr);
    if (tree == NULL) {
        return NGX_OK;          /* the caller's parse says what is wrong */
    }

    pf = ngx_pcalloc(r->pool, sizeof(ngx_http_podgen_prefetch_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (pf == NULL || cln == NULL
        || ngx_array_init(&pf->ids, r->pool, 4, PG_KEY_LEN + 1) != NGX_OK)
    {
        yajl_tree_free(tree);
        return NGX_ERROR;
    }

    ids = pg_json_get(tree, "source_ids");

    /* the expansion judges the ids; only good ones are looked for */

    for (i = 0; ids && YAJL_IS_ARRAY(ids) && i < ids->u.array.len
                && i < PG_SOURCE_IDS_MAX; i++)
    {
        v = ids->u.array.values[i];

        if (!YAJL_IS_STRING(v)
            || !ngx_http_podgen_source_id_valid((u_char *) v->u.string,
                                                ngx_strlen(v->u.string)))
        {
            continue;
        }

        hex = ngx_array_push(&pf->ids);
        if (hex == NULL) {
            yajl_tree_free(tree);
            return NGX_ERROR;
        }

        ngx_memcpy(hex, v->u.string + 4, PG_KEY_LEN);
        hex[PG_KEY_LEN] = '\0';
    }

    yajl_tree_free(tree);

    pf->request = r;
    pf->resume = resume;

    cln->handler = ngx_http_podgen_prefetch_cleanup;
    cln->data = pf;
    ctx->source = pf;

    return ngx_http_podgen_prefetch_run(pf);
}


/* The ids in order: NGX_OK when all are looked for, or NGX_AGAIN. */

static ngx_int_t
ngx_http_podgen_prefetch_run(ngx_http_podgen_prefetch_t *pf)
{
    char                         *hex;
    u_char                       *value;
    size_t                        len;
    ngx_int_t                     rc;
    ngx_http_request_t           *r;
    ngx_http_podgen_main_conf_t  *pmcf;

    r = pf->request;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_podgen_module);

    while (pf->next < pf->ids.nelts) {
        hex = (char *) pf->ids.elts + pf->next * (PG_KEY_LEN + 1);
        pf->next++;

        ngx_http_podgen_fetch_init(&pf->fetch, &ngx_http_podgen_fetch_source,
                                   &ngx_http_podgen_prefetch_handlers,
                                   &pmcf->cache, hex, 0, NULL, pf,
                                   r->connection->log);
        pf->fetching = 1;

        rc = ngx_http_podgen_fetch(&pf->fetch, r->pool, &value, &len);

        switch (rc) {

        case NGX_AGAIN:
            return NGX_AGAIN;

        case NGX_DECLINED:
            /* in no tier: the expansion answers 404 source_not_found */
            ngx_http_podgen_fetch_abandon(&pf->fetch);
            break;

        default:
            /* an L1 hit (NGX_OK), or the cache failed: as for a miss */
            break;
        }

        pf->fetching = 0;
    }

    pf->done = 1;

    return NGX_OK;
}


static void
ngx_http_podgen_prefetch_next(ngx_http_podgen_prefetch_t *pf)
{
    ngx_http_request_t  *r;

    pf->fetching = 0;

    if (ngx_http_podgen_prefetch_run(pf) == NGX_AGAIN) {
        return;
    }

    r = pf->request;

    pf->resume(r);
    ngx_http_run_posted_requests(r->connection);
}


static void
ngx_http_podgen_prefetch_found(ngx_http_podgen_fetch_t *f, ngx_uint_t from,
    u_char *data, size_t len)
{
    /* an L2 hit is in L1 now (ngx_http_podgen_fetch.c) */
    ngx_http_podgen_prefetch_next(f->data);
}


static void
ngx_http_podgen_prefetch_make(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_prefetch_t  *pf = f->data;

    ngx_http_podgen_fetch_abandon(&pf->fetch);
    ngx_http_podgen_prefetch_next(pf);
}


static void
ngx_http_podgen_prefetch_error(ngx_http_podgen_fetch_t *f)
{
    ngx_http_podgen_prefetch_next(f->data);
}


static void
ngx_http_podgen_prefetch_cleanup(void *data)
{
    ngx_http_podgen_prefetch_t  *pf = data;

    if (pf->fetching) {
        ngx_http_podgen_fetch_cancel(&pf->fetch);
        pf->fetching = 0;
    }
}
