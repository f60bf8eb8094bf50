/*
 * podgen: GET /v1/models and GET /v1/models/{id}, OpenAI's list of the
 * model names podgen accepts.
 */

#ifndef NGX_HTTP_PODGEN_MODELS_H
#define NGX_HTTP_PODGEN_MODELS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_podgen_models_handler(ngx_http_request_t *r);


#endif /* NGX_HTTP_PODGEN_MODELS_H */
