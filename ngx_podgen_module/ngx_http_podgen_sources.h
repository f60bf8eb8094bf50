/*
 * podgen: sources — POST /v1/sources (a document as the raw body, with its
 * Content-Type) and GET /v1/sources/{id}.
 *
 * A source's id is its content address: "src_" and the SHA-256 of its
 * type, charset and bytes, so the same document is the same source on
 * every node.  The extracted source (pg_source.h, as JSON) is an artifact
 * of the tiered cache like scripts and audio: L1, then L2, then made on
 * the thread pool (parsing HTML and PDF never runs on the event loop).
 */

#ifndef NGX_HTTP_PODGEN_SOURCES_H
#define NGX_HTTP_PODGEN_SOURCES_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_json.h"
#include "pg_key.h"
#include "ngx_http_podgen_module.h"


#define NGX_HTTP_PODGEN_SOURCE_ID_LEN  (4 + PG_KEY_LEN)     /* src_<hex> */


ngx_int_t ngx_http_podgen_sources_handler(ngx_http_request_t *r);

/*
 * A source known to this node's L1, by id: NGX_OK and its JSON in *json
 * (from pool, read only), NGX_DECLINED when L1 does not have it (or the
 * id is not one), NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_source_l1(ngx_http_podgen_main_conf_t *pmcf,
    const u_char *id, size_t len, ngx_pool_t *pool, u_char **json,
    size_t *json_len);

/*
 * A request body with "source_ids" becomes the same request with the
 * sources as its "source_text" (pg_source_expand()), in pool; bodies
 * without them are left as they are.  Sources are looked up in L1, where
 * POST /v1/sources put them.  NGX_OK, NGX_DECLINED (*err: 404
 * source_not_found, 400), NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_sources_expand(ngx_http_podgen_main_conf_t *pmcf,
    ngx_pool_t *pool, u_char **body, size_t *len, pg_error_t *err);

typedef void (*ngx_http_podgen_sources_resume_pt)(ngx_http_request_t *r);

/*
 * Before a body with "source_ids" is handled: each id is looked for in
 * the tiers (L1, then L2, which fills L1), so that a source posted on
 * another node expands here too.  NGX_OK: go on now; NGX_AGAIN: return
 * without finalizing, resume(r) is called later (and calls this again,
 * which then says NGX_OK); NGX_ERROR.
 */
ngx_int_t ngx_http_podgen_sources_prefetch(ngx_http_request_t *r,
    u_char *body, size_t len, ngx_http_podgen_sources_resume_pt resume);

#endif /* NGX_HTTP_PODGEN_SOURCES_H */
