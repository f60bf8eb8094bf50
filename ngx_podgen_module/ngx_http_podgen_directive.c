/*
 * podgen: the location directives — podgen_speech, podgen_voices and the
 * other endpoints, and podgen_api_key.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_directive.h"
#include "ngx_http_podgen_phases.h"


/*
 * podgen_speech, podgen_voices, podgen_scripts, podgen_audio,
 * podgen_podcasts, podgen_batch: the location serves that endpoint.  The
 * main configuration learns that podgen is in use (an implicit L1 zone,
 * voices loaded by the workers) and whether the jobs are.
 */

char *
ngx_http_podgen_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_loc_conf_t *plcf = conf;

    ngx_http_core_srv_conf_t     *cscf;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_podgen_loc_conf_t   *splcf;
    ngx_http_podgen_main_conf_t  *pmcf;

    if (plcf->endpoint != NGX_HTTP_PODGEN_NONE) {
        return "is duplicate: one podgen endpoint per location";
    }

    plcf->endpoint = (ngx_uint_t) cmd->post;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_podgen_content_handler;

    /* what nginx answers before it chooses a location is JSON too in a
     * server with podgen locations (ngx_http_podgen_error_filter.c) */

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
    splcf = cscf->ctx->loc_conf[ngx_http_podgen_module.ctx_index];
    splcf->server_endpoints = 1;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_podgen_module);

    if (plcf->endpoint == NGX_HTTP_PODGEN_PODCASTS
        || plcf->endpoint == NGX_HTTP_PODGEN_BATCH)
    {
        pmcf->jobs.used = 1;
    }

    pmcf->used = 1;

    return NGX_CONF_OK;
}


/*
 * podgen_api_key KEY | env:NAME | off: clients must send
 * "Authorization: Bearer KEY", as to OpenAI.
 */

char *
ngx_http_podgen_api_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_loc_conf_t *plcf = conf;

    char       *env;
    ngx_str_t  *value;

    if (plcf->api_key.len != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&plcf->api_key, "");
        return NGX_CONF_OK;
    }

    if (value[1].len > 4 && ngx_strncmp(value[1].data, "env:", 4) == 0) {
        env = getenv((char *) value[1].data + 4);

        if (env == NULL || *env == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen_api_key: the environment variable "
                               "\"%s\" is not set", value[1].data + 4);
            return NGX_CONF_ERROR;
        }

        plcf->api_key.len = ngx_strlen(env);
        plcf->api_key.data = ngx_pstrdup(cf->pool,
                                         &(ngx_str_t) { plcf->api_key.len,
                                                        (u_char *) env });
        return plcf->api_key.data ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (value[1].len < 8) {
        return "is too short: use a key of at least 8 characters";
    }

    plcf->api_key = value[1];

    return NGX_CONF_OK;
}
