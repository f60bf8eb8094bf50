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

#endif /* NGX_HTTP_PODGEN_SOURCES_H */
