/*
 * podgen: the location directives — podgen_speech, podgen_voices and the
 * other endpoints, podgen_api_key and podgen_feed_token.
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
 * A secret of a directive: VALUE, env:NAME (read when nginx reads its
 * configuration) or off (""), NUL-terminated.
 */

static char *
ngx_http_podgen_secret(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *out)
{
    char       *env;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(out, "");
        return NGX_CONF_OK;
    }

    if (value[1].len > 4 && ngx_strncmp(value[1].data, "env:", 4) == 0) {
        env = getenv((char *) value[1].data + 4);

        if (env == NULL || *env == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V: the environment variable \"%s\" is "
                               "not set", &cmd->name, value[1].data + 4);
            return NGX_CONF_ERROR;
        }

        out->len = ngx_strlen(env);
        out->data = ngx_pnalloc(cf->pool, out->len + 1);
        if (out->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(out->data, env, out->len + 1);

        return NGX_CONF_OK;
    }

    *out = value[1];

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

    char       *rv;
    ngx_str_t  *value;

    if (plcf->api_key.len != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    rv = ngx_http_podgen_secret(cf, cmd, &plcf->api_key);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    /* a key written in the configuration, not one from the environment */

    if (plcf->api_key.data == value[1].data && plcf->api_key.len < 8) {
        return "is too short: use a key of at least 8 characters";
    }

    return NGX_CONF_OK;
}


/*
 * podgen_feed_token SECRET | env:NAME | off: with podgen_api_key on, the
 * feed of a podcasts location answers GET {base}/feed.xml?token=SECRET
 * without a bearer key, and each episode's audio its own token (see
 * pg_feed_episode_token()), which the links of the feed carry: podcast
 * apps cannot send an Authorization header.  The secret goes into URLs,
 * so it is of URL-safe characters.
 */

char *
ngx_http_podgen_feed_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_loc_conf_t *plcf = conf;

    char        *rv;
    u_char       c;
    ngx_uint_t   i;

    if (plcf->feed_token.len != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    rv = ngx_http_podgen_secret(cf, cmd, &plcf->feed_token);
    if (rv != NGX_CONF_OK || plcf->feed_token.len == 0) {
        return rv;
    }

    if (plcf->feed_token.len < 16 || plcf->feed_token.len > 256) {
        return "must be 16 to 256 characters long";
    }

    for (i = 0; i < plcf->feed_token.len; i++) {
        c = plcf->feed_token.data[i];

        if (!(ngx_http_podgen_isalnum(c)
              || c == '-' || c == '.' || c == '_' || c == '~'))
        {
            return "must be of letters, digits and \"-._~\" only "
                   "(it goes into URLs)";
        }
    }

    return NGX_CONF_OK;
}
