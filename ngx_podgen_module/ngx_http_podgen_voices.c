/*
 * podgen: the voices — the podgen_voice directive, the built-in voices and
 * the OpenAI names that alias them, loading them in every worker, finding
 * one by name, and GET /v1/voices, which lists them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>

#include "pg_json.h"
#include "pg_tts.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_voices.h"
#include "ngx_http_podgen_util.h"


/*
 * OpenAI voice names and the flite voice each speaks with by default;
 * "podgen_voice NAME SOURCE alias=..." overrides any of them.
 */
static struct {
    char  *alias;
    char  *voice;
} ngx_http_podgen_default_aliases[] = {
    { "alloy",   "slt" },
    { "ash",     "rms" },
    { "ballad",  "awb" },
    { "cedar",   "kal16" },
    { "coral",   "slt" },
    { "echo",    "rms" },
    { "fable",   "awb" },
    { "marin",   "slt" },
    { "onyx",    "rms" },
    { "nova",    "slt" },
    { "sage",    "kal16" },
    { "shimmer", "slt" },
    { "verse",   "kal16" },
    { NULL, NULL }
};


static ngx_http_podgen_voice_t *
ngx_http_podgen_conf_voice(ngx_http_podgen_main_conf_t *pmcf, ngx_str_t *name)
{
    ngx_uint_t                i;
    ngx_http_podgen_voice_t  *v;

    v = pmcf->voices.elts;

    for (i = 0; i < pmcf->voices.nelts; i++) {
        if (v[i].name.len == name->len
            && ngx_strncmp(v[i].name.data, name->data, name->len) == 0)
        {
            return &v[i];
        }
    }

    return NULL;
}


static ngx_http_podgen_alias_t *
ngx_http_podgen_conf_alias(ngx_http_podgen_main_conf_t *pmcf, ngx_str_t *name)
{
    ngx_uint_t                i;
    ngx_http_podgen_alias_t  *a;

    a = pmcf->aliases.elts;

    for (i = 0; i < pmcf->aliases.nelts; i++) {
        if (a[i].alias.len == name->len
            && ngx_strncmp(a[i].alias.data, name->data, name->len) == 0)
        {
            return &a[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_podgen_voice_name_valid(ngx_str_t *name)
{
    size_t  i;

    if (name->len == 0 || name->len >= PG_VOICE_NAME_LEN) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        if (!(ngx_http_podgen_isalnum(name->data[i]) || name->data[i] == '_'
              || name->data[i] == '-' || name->data[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_http_podgen_voice_t *
ngx_http_podgen_add_voice(ngx_conf_t *cf, ngx_http_podgen_main_conf_t *pmcf,
    ngx_str_t *name, ngx_str_t *source)
{
    ngx_http_podgen_voice_t  *v;

    v = ngx_array_push(&pmcf->voices);
    if (v == NULL) {
        return NULL;
    }

    ngx_memzero(v, sizeof(ngx_http_podgen_voice_t));

    v->name = *name;
    ngx_memcpy(v->voice.name, name->data, name->len);
    v->voice.name[name->len] = '\0';

    /* NUL-terminated, for flite */
    v->voice.source = (char *) ngx_pnalloc(cf->pool, source->len + 1);
    if (v->voice.source == NULL) {
        return NULL;
    }

    ngx_cpystrn((u_char *) v->voice.source, source->data, source->len + 1);

    return v;
}


static ngx_int_t
ngx_http_podgen_add_alias(ngx_conf_t *cf, ngx_http_podgen_main_conf_t *pmcf,
    ngx_str_t *alias, ngx_str_t *target)
{
    ngx_http_podgen_alias_t  *a;

    a = ngx_http_podgen_conf_alias(pmcf, alias);

    if (a == NULL) {
        a = ngx_array_push(&pmcf->aliases);
        if (a == NULL) {
            return NGX_ERROR;
        }

        a->alias = *alias;
    }

    a->target = *target;
    a->voice = NULL;

    return NGX_OK;
}


/* podgen_voice NAME builtin:slt|/path/voice.flitevox [alias=a,b,...] */

char *
ngx_http_podgen_voice(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_main_conf_t *pmcf = conf;

    char                      err[256];
    u_char                   *p, *last, *comma;
    ngx_str_t                *value, name, source, alias;
    ngx_uint_t                i;
    ngx_http_podgen_voice_t  *v;

    value = cf->args->elts;
    name = value[1];
    source = value[2];

    if (!ngx_http_podgen_voice_name_valid(&name)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid podgen_voice name \"%V\": use up to %d "
                           "letters, digits, \"_\", \"-\" or \".\"",
                           &name, PG_VOICE_NAME_LEN - 1);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_podgen_conf_voice(pmcf, &name)) {
        return "is duplicate";
    }

    if (source.len > 8 && ngx_strncmp(source.data, "builtin:", 8) == 0) {
        for (i = 0; pg_tts_builtin_names[i]; i++) {
            if (ngx_strlen(pg_tts_builtin_names[i]) == source.len - 8
                && ngx_strncmp(pg_tts_builtin_names[i], source.data + 8,
                               source.len - 8) == 0)
            {
                break;
            }
        }

        if (pg_tts_builtin_names[i] == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen_voice \"%V\": unknown built-in voice "
                               "\"%V\" (built in: slt, rms, awb, kal, kal16)",
                               &name, &source);
            return NGX_CONF_ERROR;
        }

    } else {
        if (ngx_conf_full_name(cf->cycle, &source, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* the voice itself is loaded by every worker; check the file now
         * so that "nginx -t" catches a wrong path */

        if (pg_tts_voice_file_check((char *) source.data, err, sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "podgen_voice \"%V\": %s",
                               &name, err);
            return NGX_CONF_ERROR;
        }
    }

    v = ngx_http_podgen_add_voice(cf, pmcf, &name, &source);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 4) {
        if (ngx_strncmp(value[3].data, "alias=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[3]);
            return NGX_CONF_ERROR;
        }

        p = value[3].data + 6;
        last = value[3].data + value[3].len;

        while (p < last) {
            comma = ngx_strlchr(p, last, ',');
            if (comma == NULL) {
                comma = last;
            }

            alias.data = p;
            alias.len = comma - p;

            if (!ngx_http_podgen_voice_name_valid(&alias)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid alias \"%V\" in \"%V\"",
                                   &alias, &value[3]);
                return NGX_CONF_ERROR;
            }

            if (ngx_http_podgen_add_alias(cf, pmcf, &alias, &name)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            p = comma + 1;
        }
    }

    return NGX_CONF_OK;
}


/*
 * After the configuration is read: the built-in voices under their own
 * names, the OpenAI names as aliases where the configuration gives them no
 * other voice, and every alias resolved to its voice.
 */

char *
ngx_http_podgen_voices_init_conf(ngx_conf_t *cf,
    ngx_http_podgen_main_conf_t *pmcf)
{
    ngx_str_t                 name, source, alias, target;
    ngx_uint_t                i;
    ngx_http_podgen_alias_t  *a;
    ngx_http_podgen_voice_t  *v;

    /* the built-in voices are always there under their own names */

    for (i = 0; pg_tts_builtin_names[i]; i++) {
        name.data = (u_char *) pg_tts_builtin_names[i];
        name.len = ngx_strlen(name.data);

        if (ngx_http_podgen_conf_voice(pmcf, &name)) {
            continue;
        }

        source.len = sizeof("builtin:") - 1 + name.len;
        source.data = ngx_pnalloc(cf->pool, source.len);
        if (source.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(source.data, "builtin:%V", &name);

        if (ngx_http_podgen_add_voice(cf, pmcf, &name, &source) == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 0; ngx_http_podgen_default_aliases[i].alias; i++) {
        alias.data = (u_char *) ngx_http_podgen_default_aliases[i].alias;
        alias.len = ngx_strlen(alias.data);
        target.data = (u_char *) ngx_http_podgen_default_aliases[i].voice;
        target.len = ngx_strlen(target.data);

        if (ngx_http_podgen_conf_alias(pmcf, &alias) == NULL
            && ngx_http_podgen_conf_voice(pmcf, &alias) == NULL
            && ngx_http_podgen_add_alias(cf, pmcf, &alias, &target) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    /* a voice's own name wins over an alias of the same name */

    a = pmcf->aliases.elts;

    for (i = 0; i < pmcf->aliases.nelts; i++) {
        v = ngx_http_podgen_conf_voice(pmcf, &a[i].target);
        if (v == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen voice alias \"%V\" names no voice "
                               "\"%V\"", &a[i].alias, &a[i].target);
            return NGX_CONF_ERROR;
        }

        a[i].voice = v;

        if (v->aliases == NULL) {
            v->aliases = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
            if (v->aliases == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        if (ngx_http_podgen_conf_voice(pmcf, &a[i].alias) == NULL) {
            target.data = ngx_array_push(v->aliases);
            if (target.data == NULL) {
                return NGX_CONF_ERROR;
            }

            *(ngx_str_t *) target.data = a[i].alias;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Voices are loaded once per worker and shared read-only by the synthesis
 * threads.
 */

ngx_int_t
ngx_http_podgen_voices_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_main_conf_t *pmcf)
{
    char                      err[256];
    ngx_uint_t                i;
    ngx_http_podgen_voice_t  *v;

    if (pg_tts_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "podgen: flite initialization failed");
        return NGX_ERROR;
    }

    v = pmcf->voices.elts;

    for (i = 0; i < pmcf->voices.nelts; i++) {
        if (pg_tts_voice_load(&v[i].voice, v[i].voice.source, err,
                              sizeof(err))
            != 0)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "podgen: voice \"%V\": %s", &v[i].name, err);
            return NGX_ERROR;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                       "podgen: voice \"%V\" loaded, %d Hz, from %s",
                       &v[i].name, v[i].voice.rate, v[i].voice.source);
    }

    return NGX_OK;
}


ngx_http_podgen_voice_t *
ngx_http_podgen_find_voice(ngx_http_podgen_main_conf_t *pmcf,
    const char *name)
{
    ngx_str_t                 s;
    ngx_http_podgen_alias_t  *a;
    ngx_http_podgen_voice_t  *v;

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    v = ngx_http_podgen_conf_voice(pmcf, &s);
    if (v) {
        return v;
    }

    a = ngx_http_podgen_conf_alias(pmcf, &s);

    return a ? a->voice : NULL;
}


/* pg_speech_request_parse()'s question: is there a voice of this name? */

int
ngx_http_podgen_voice_exists(void *data, const char *name)
{
    return ngx_http_podgen_find_voice(data, name) != NULL;
}


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

        /* what it can speak: a language elsewhere is 400
         * unsupported_language (pg_tts_speaks) */
        ngx_http_podgen_gen_cstr(g, "languages");
        yajl_gen_array_open(g);
        ngx_http_podgen_gen_cstr(g, PG_TTS_LANGUAGES);
        yajl_gen_array_close(g);

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
