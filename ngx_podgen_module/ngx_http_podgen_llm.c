/*
 * podgen: the LLM client on libcurl multi and nginx events (see header),
 * and the podgen_llm directive that configures it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <curl/curl.h>

#include "pg_llm.h"
#include "ngx_http_podgen_llm.h"
#include "ngx_http_podgen_curl.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_LLM_MAX_REPLY    (4 * 1024 * 1024)
#define NGX_HTTP_PODGEN_LLM_BACKOFF      200     /* ms, doubled per retry */
#define NGX_HTTP_PODGEN_LLM_MAX_BACKOFF  10000


struct ngx_http_podgen_llm_call_s {
    ngx_queue_t                   queue;        /* waiting for a slot */
    const pg_script_request_t    *req;
    ngx_http_podgen_llm_done_pt   done;
    void                         *data;
    ngx_log_t                    *log;

    CURL                         *easy;
    ngx_http_podgen_curl_owner_t  owner;
    struct curl_slist            *headers;
    pg_buf_t                      body;         /* the request */
    pg_buf_t                      reply;
    char                          error[CURL_ERROR_SIZE];
    ngx_msec_t                    retry_after;
    ngx_msec_t                    started;

    ngx_event_t                   retry;
    ngx_uint_t                    attempts;
    ngx_uint_t                    timeouts;

    pg_script_t                   missed;       /* off its length */

    /*
     * A long episode: the call asks for an outline, then is the plan of
     * its parts, one call each (kind PART, parent the plan).
     */
    ngx_uint_t                    kind;
    ngx_http_podgen_llm_call_t   *parent;
    ngx_uint_t                    part;
    pg_llm_outline_t              outline;
    ngx_http_podgen_llm_call_t   *parts[PG_LLM_SECTIONS_MAX];
    pg_script_t                   scripts[PG_LLM_SECTIONS_MAX];
    ngx_uint_t                    written;      /* bit per part */
    ngx_uint_t                    pending;
    pg_error_t                    part_error;

    unsigned                      queued:1;
    unsigned                      active:1;
    unsigned                      has_missed:1;
    unsigned                      part_failed:1;
};


#define NGX_HTTP_PODGEN_LLM_SCRIPT   0
#define NGX_HTTP_PODGEN_LLM_OUTLINE  1
#define NGX_HTTP_PODGEN_LLM_PART     2


typedef struct {
    ngx_http_podgen_llm_conf_t   *conf;
    char                         *endpoint;     /* {url}/chat/completions */
    char                         *model;
    struct curl_slist            *headers;
    ngx_uint_t                    active;
    ngx_uint_t                    waiting;
    ngx_queue_t                   queue;
    ngx_log_t                    *log;
} ngx_http_podgen_llm_t;


static ngx_http_podgen_llm_t  *ngx_http_podgen_llm;


static void ngx_http_podgen_llm_done(void *data, CURLcode code);
static ngx_int_t ngx_http_podgen_llm_launch(ngx_http_podgen_llm_call_t *call);
static void ngx_http_podgen_llm_finish(ngx_http_podgen_llm_call_t *call,
    CURLcode code);
static ngx_int_t ngx_http_podgen_llm_length(ngx_http_podgen_llm_call_t *call,
    pg_script_t *script);
static void ngx_http_podgen_llm_complete(ngx_http_podgen_llm_call_t *call,
    ngx_int_t rc, pg_script_t *script, pg_error_t *err);
static ngx_int_t ngx_http_podgen_llm_plan(ngx_http_podgen_llm_call_t *call,
    pg_llm_reply_t *reply);
static void ngx_http_podgen_llm_stop(ngx_http_podgen_llm_call_t *call);
static void ngx_http_podgen_llm_retry_handler(ngx_event_t *ev);
static void ngx_http_podgen_llm_next(ngx_http_podgen_llm_t *llm);
static void ngx_http_podgen_llm_release(ngx_http_podgen_llm_call_t *call);


/*
 * podgen_llm URL [model=NAME] [api_key_env=VAR] [timeout=TIME]
 *     [max_concurrency=N] [max_queue=N] [retries=N]
 */

char *
ngx_http_podgen_llm_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_podgen_llm_conf_t  *llm;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    llm = (ngx_http_podgen_llm_conf_t *) ((char *) conf + cmd->offset);

    if (llm->url.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!(value[1].len > 7
          && (ngx_strncmp(value[1].data, "http://", 7) == 0
              || ngx_strncmp(value[1].data, "https://", 8) == 0)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "podgen_llm: \"%V\" is not an http:// or "
                           "https:// URL", &value[1]);
        return NGX_CONF_ERROR;
    }

    llm->url = value[1];

    while (llm->url.len && llm->url.data[llm->url.len - 1] == '/') {
        llm->url.len--;
    }

    ngx_str_set(&llm->model, "gpt-4o-mini");
    llm->timeout = 60000;
    llm->max_concurrency = 64;
    llm->max_queue = 4096;
    llm->retries = 2;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            llm->model.data = value[i].data + 6;
            llm->model.len = value[i].len - 6;

            if (llm->model.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_env=", 12) == 0) {
            llm->api_key_env.data = value[i].data + 12;
            llm->api_key_env.len = value[i].len - 12;

            if (llm->api_key_env.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            llm->timeout = ngx_parse_time(&s, 0);
            if (llm->timeout == (ngx_msec_t) NGX_ERROR || llm->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_concurrency=", 16) == 0) {
            n = ngx_atoi(value[i].data + 16, value[i].len - 16);
            if (n <= 0) {
                goto invalid;
            }

            llm->max_concurrency = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_queue=", 10) == 0) {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);
            if (n < 0) {
                goto invalid;
            }

            llm->max_queue = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "retries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n < 0 || n > 10) {
                goto invalid;
            }

            llm->retries = n;
            continue;
        }

        goto invalid;
    }

    /* NUL-terminated copies for curl and getenv() */

    s.data = ngx_pnalloc(cf->pool, llm->url.len + 1);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(s.data, llm->url.data, llm->url.len + 1);
    llm->url.data = s.data;

    s.data = ngx_pnalloc(cf->pool, llm->model.len + 1);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(s.data, llm->model.data, llm->model.len + 1);
    llm->model.data = s.data;

    if (llm->api_key_env.len) {
        s.data = ngx_pnalloc(cf->pool, llm->api_key_env.len + 1);
        if (s.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(s.data, llm->api_key_env.data, llm->api_key_env.len + 1);
        llm->api_key_env.data = s.data;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "podgen_llm: invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_podgen_llm_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_llm_conf_t *conf)
{
    char                   *key, *auth;
    size_t                  len;
    CURLM                  *multi;
    ngx_http_podgen_llm_t  *llm;

    multi = ngx_http_podgen_curl_multi(cycle->log);
    if (multi == NULL) {
        return NGX_ERROR;
    }

    llm = ngx_pcalloc(cycle->pool, sizeof(ngx_http_podgen_llm_t));
    if (llm == NULL) {
        return NGX_ERROR;
    }

    llm->conf = conf;
    llm->log = cycle->log;
    ngx_queue_init(&llm->queue);

    len = conf->url.len + sizeof("/chat/completions");
    llm->endpoint = ngx_pnalloc(cycle->pool, len);
    llm->model = ngx_pnalloc(cycle->pool, conf->model.len + 1);

    if (llm->endpoint == NULL || llm->model == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) llm->endpoint, "%V/chat/completions%Z",
                &conf->url);
    ngx_sprintf((u_char *) llm->model, "%V%Z", &conf->model);

    llm->headers = curl_slist_append(NULL,
                                     "Content-Type: application/json");
    llm->headers = curl_slist_append(llm->headers,
                                     "Accept: application/json");

    /* the key comes from the environment (kept by nginx's "env NAME;")
     * and is never logged */

    if (conf->api_key_env.len) {
        key = getenv((char *) conf->api_key_env.data);

        if (key == NULL || *key == '\0') {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "podgen: environment variable \"%V\" is not set "
                          "(add \"env %V;\" to the main configuration); "
                          "calling the LLM without a key",
                          &conf->api_key_env, &conf->api_key_env);

        } else {
            len = sizeof("Authorization: Bearer ") + ngx_strlen(key);
            auth = ngx_alloc(len, cycle->log);
            if (auth == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf((u_char *) auth, "Authorization: Bearer %s%Z", key);
            llm->headers = curl_slist_append(llm->headers, auth);
            ngx_explicit_memzero(auth, len);
            ngx_free(auth);
        }
    }

    if (llm->headers == NULL) {
        return NGX_ERROR;
    }

    /* keep-alive connections live in the multi's cache, across calls */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                      (long) conf->max_concurrency + 4);

    ngx_http_podgen_llm = llm;

    return NGX_OK;
}


void
ngx_http_podgen_llm_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_llm_t  *llm = ngx_http_podgen_llm;

    if (llm == NULL) {
        return;
    }

    /* the connections go with the multi (ngx_http_podgen_curl.c) */

    curl_slist_free_all(llm->headers);
    ngx_http_podgen_llm = NULL;
}


/* A transfer ended: the call goes on, and a waiting one may start. */

static void
ngx_http_podgen_llm_done(void *data, CURLcode code)
{
    ngx_http_podgen_llm_finish(data, code);
    ngx_http_podgen_llm_next(ngx_http_podgen_llm);
}


/* ---- calls -------------------------------------------------------------- */


static size_t
ngx_http_podgen_llm_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    ngx_http_podgen_llm_call_t  *call = data;

    size_t  n;

    n = size * nmemb;

    if (call->reply.len + n > NGX_HTTP_PODGEN_LLM_MAX_REPLY
        || pg_buf_append(&call->reply, ptr, n) != 0)
    {
        return 0;               /* curl aborts the transfer */
    }

    return n;
}


static size_t
ngx_http_podgen_llm_header(char *ptr, size_t size, size_t nmemb, void *data)
{
    ngx_http_podgen_llm_call_t  *call = data;

    size_t  n;

    n = size * nmemb;

    if (n > sizeof("Retry-After:") - 1
        && ngx_strncasecmp((u_char *) ptr, (u_char *) "Retry-After:",
                           sizeof("Retry-After:") - 1) == 0)
    {
        call->retry_after = pg_llm_retry_after(
                                   ptr + sizeof("Retry-After:") - 1,
                                   n - (sizeof("Retry-After:") - 1),
                                   NGX_HTTP_PODGEN_LLM_MAX_BACKOFF);
    }

    return n;
}


ngx_http_podgen_llm_call_t *
ngx_http_podgen_llm_script(const pg_script_request_t *req,
    ngx_http_podgen_llm_done_pt done, void *data, ngx_log_t *log,
    ngx_int_t *rc)
{
    ngx_http_podgen_llm_t       *llm = ngx_http_podgen_llm;
    ngx_http_podgen_llm_call_t  *call;

    *rc = NGX_ERROR;

    if (llm == NULL) {
        return NULL;
    }

    if (llm->active >= llm->conf->max_concurrency
        && llm->waiting >= llm->conf->max_queue)
    {
        *rc = NGX_BUSY;
        return NULL;
    }

    /* the call outlives a request that goes away while curl has it */

    call = ngx_calloc(sizeof(ngx_http_podgen_llm_call_t), log);
    if (call == NULL) {
        return NULL;
    }

    call->req = req;
    call->done = done;
    call->data = data;
    call->log = log;

    call->retry.handler = ngx_http_podgen_llm_retry_handler;
    call->retry.data = call;
    call->retry.log = log;

    /* a long episode is planned first, then written a part at a time */

    if (pg_llm_sections(req)) {
        call->kind = NGX_HTTP_PODGEN_LLM_OUTLINE;

        if (pg_llm_build_outline_request(req, llm->model, &call->body)
            != 0)
        {
            ngx_http_podgen_llm_release(call);
            return NULL;
        }

    } else if (pg_llm_build_request(req, llm->model, 0, &call->body) != 0) {
        ngx_http_podgen_llm_release(call);
        return NULL;
    }

    /* never calls done() before the caller has the call */

    if (llm->active < llm->conf->max_concurrency
        && ngx_queue_empty(&llm->queue))
    {
        if (ngx_http_podgen_llm_launch(call) != NGX_OK) {
            ngx_http_podgen_llm_release(call);
            return NULL;
        }

    } else {
        ngx_queue_insert_tail(&llm->queue, &call->queue);
        call->queued = 1;
        llm->waiting++;
    }

    *rc = NGX_OK;

    return call;
}


/* Starts waiting calls while there are free slots. */

static void
ngx_http_podgen_llm_next(ngx_http_podgen_llm_t *llm)
{
    ngx_queue_t                 *q;
    pg_error_t                   err;
    ngx_http_podgen_llm_call_t  *call;

    while (llm->active < llm->conf->max_concurrency
           && !ngx_queue_empty(&llm->queue))
    {
        q = ngx_queue_head(&llm->queue);
        call = ngx_queue_data(q, ngx_http_podgen_llm_call_t, queue);

        ngx_queue_remove(q);
        call->queued = 0;
        llm->waiting--;

        if (ngx_http_podgen_llm_launch(call) != NGX_OK) {
            pg_error_set(&err, 502, NULL, "llm_error",
                         "could not start the LLM request");
            err.type = "server_error";
            ngx_http_podgen_llm_complete(call, NGX_ERROR, NULL, &err);
            ngx_http_podgen_llm_release(call);
        }
    }
}


static ngx_int_t
ngx_http_podgen_llm_launch(ngx_http_podgen_llm_call_t *call)
{
    CURL                   *easy;
    ngx_http_podgen_llm_t  *llm = ngx_http_podgen_llm;

    easy = curl_easy_init();
    if (easy == NULL) {
        return NGX_ERROR;
    }

    call->easy = easy;
    call->reply.len = 0;
    call->retry_after = 0;
    call->error[0] = '\0';
    call->attempts++;
    call->started = ngx_current_msec;

    curl_easy_setopt(easy, CURLOPT_URL, llm->endpoint);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, llm->headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body.data);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) call->body.len);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, ngx_http_podgen_llm_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION,
                     ngx_http_podgen_llm_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) llm->conf->timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) ngx_min(llm->conf->timeout, 10000));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "podgen/" "0.1");
    /* "Expect: 100-continue" would cost a round trip on every call */
    curl_easy_setopt(easy, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");

    call->owner.done = ngx_http_podgen_llm_done;
    call->owner.data = call;

    if (ngx_http_podgen_curl_add(easy, &call->owner, call->log) != NGX_OK) {
        curl_easy_cleanup(easy);
        call->easy = NULL;
        return NGX_ERROR;
    }

    call->active = 1;
    llm->active++;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, call->log, 0,
                   "podgen llm: call %p attempt %ui", call, call->attempts);

    return NGX_OK;
}


static void
ngx_http_podgen_llm_detach_easy(ngx_http_podgen_llm_call_t *call)
{
    ngx_http_podgen_llm_t  *llm = ngx_http_podgen_llm;

    if (call->easy) {
        ngx_http_podgen_curl_remove(call->easy);
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }

    if (call->active) {
        call->active = 0;
        llm->active--;
    }
}


static void
ngx_http_podgen_llm_finish(ngx_http_podgen_llm_call_t *call, CURLcode code)
{
    long                    status;
    double                  seconds;
    ngx_uint_t              retry, result;
    ngx_msec_t              delay;
    pg_error_t              err;
    pg_script_t             script;
    pg_llm_reply_t          reply;
    ngx_http_podgen_llm_t  *llm = ngx_http_podgen_llm;

    status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);

    ngx_http_podgen_llm_detach_easy(call);

    seconds = (double) (ngx_current_msec - call->started) / 1000;
    retry = 0;

    if (code == CURLE_OPERATION_TIMEDOUT) {
        result = PG_LLM_TIMEOUT;
        call->timeouts++;
        retry = 1;
        pg_error_set(&err, 504, NULL, "llm_timeout",
                     "the LLM did not answer within %lu ms",
                     (unsigned long) llm->conf->timeout);

    } else if (code != CURLE_OK) {
        result = PG_LLM_ERROR;
        retry = 1;
        pg_error_set(&err, 502, NULL, "llm_error", "LLM request failed: %s",
                     call->error[0] ? call->error
                                    : curl_easy_strerror(code));

    } else if (status != 200) {
        result = PG_LLM_ERROR;
        retry = (status == 429 || status >= 500);
        pg_error_set(&err, 502, NULL, "llm_error",
                     "the LLM answered HTTP %ld", status);

    } else if (pg_llm_parse_reply((char *) call->reply.data, call->reply.len,
                                  &reply, &err)
               != 0)
    {
        result = PG_LLM_INVALID;
        retry = 1;

    } else if (call->kind == NGX_HTTP_PODGEN_LLM_OUTLINE) {
        ngx_http_podgen_metrics_llm(PG_LLM_OK, seconds, reply.prompt_tokens,
                                    reply.completion_tokens);

        if (ngx_http_podgen_llm_plan(call, &reply) == NGX_OK) {
            pg_llm_reply_free(&reply);
            return;
        }

        pg_llm_reply_free(&reply);

        /* no usable outline: the episode is written in one call instead */

        pg_buf_free(&call->body);
        call->kind = NGX_HTTP_PODGEN_LLM_SCRIPT;

        if (pg_llm_build_request(call->req, llm->model, 0, &call->body)
            != 0)
        {
            pg_error_set(&err, 502, NULL, "llm_error",
                         "could not write the LLM request");
            goto failed;
        }

        ngx_add_timer(&call->retry, 1);
        return;

    } else {
        if (pg_script_from_llm_json(reply.content, reply.content_len,
                                    call->req, &script, &err)
            == 0)
        {
            ngx_http_podgen_metrics_llm(PG_LLM_OK, seconds,
                                        reply.prompt_tokens,
                                        reply.completion_tokens);
            pg_llm_reply_free(&reply);

            if (call->kind == NGX_HTTP_PODGEN_LLM_SCRIPT
                && ngx_http_podgen_llm_length(call, &script) == NGX_AGAIN)
            {
                return;
            }

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, call->log, 0,
                           "podgen llm: call %p done, %uz segments",
                           call, script.nsegments);

            ngx_http_podgen_llm_complete(call, NGX_OK, &script, NULL);
            ngx_http_podgen_llm_release(call);
            return;
        }

        ngx_http_podgen_metrics_llm(PG_LLM_INVALID, seconds,
                                    reply.prompt_tokens,
                                    reply.completion_tokens);
        pg_llm_reply_free(&reply);

        ngx_log_error(NGX_LOG_WARN, call->log, 0,
                      "podgen: LLM reply rejected: %s", err.message);

        /* a model may well write a valid script on the next try */
        retry = 1;

        goto failed;
    }

    ngx_http_podgen_metrics_llm(result, seconds, 0, 0);

    ngx_log_error(NGX_LOG_WARN, call->log, 0,
                  "podgen: LLM attempt %ui failed: %s",
                  call->attempts, err.message);

failed:

    err.type = "server_error";

    if (retry && call->attempts <= llm->conf->retries) {

        /* exponential backoff with jitter, or what the server asked for */

        delay = NGX_HTTP_PODGEN_LLM_BACKOFF << (call->attempts - 1);
        delay += ngx_random() % (delay / 2 + 1);
        delay = ngx_min(delay, NGX_HTTP_PODGEN_LLM_MAX_BACKOFF);

        if (call->retry_after) {
            delay = call->retry_after;
        }

        ngx_http_podgen_metrics_llm_retry();
        ngx_add_timer(&call->retry, delay);
        return;
    }

    /* the script that missed its length is still a script */
    if (call->has_missed) {
        call->has_missed = 0;
        ngx_http_podgen_llm_complete(call, NGX_OK, &call->missed, NULL);
        ngx_http_podgen_llm_release(call);
        return;
    }

    /* every attempt timed out: that is a gateway timeout */
    if (call->timeouts == call->attempts) {
        err.status = 504;
        err.code = "llm_timeout";
    }

    ngx_http_podgen_llm_complete(call, NGX_ERROR, NULL, &err);
    ngx_http_podgen_llm_release(call);
}


/*
 * The outline came: one call per part, all at once (within the worker's
 * max_concurrency, the rest queued).  NGX_OK: the call is now the plan.
 */

static ngx_int_t
ngx_http_podgen_llm_plan(ngx_http_podgen_llm_call_t *call,
    pg_llm_reply_t *reply)
{
    ngx_uint_t                   i, n;
    pg_error_t                   err;
    ngx_http_podgen_llm_call_t  *part;
    ngx_http_podgen_llm_t       *llm = ngx_http_podgen_llm;

    if (pg_llm_parse_outline(reply->content, reply->content_len,
                             pg_llm_sections(call->req), &call->outline,
                             &err)
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, call->log, 0,
                      "podgen: LLM outline rejected, writing the episode in "
                      "one call: %s", err.message);
        return NGX_DECLINED;
    }

    n = call->outline.nsections;

    for (i = 0; i < n; i++) {
        part = ngx_calloc(sizeof(ngx_http_podgen_llm_call_t), call->log);
        if (part == NULL) {
            goto failed;
        }

        part->kind = NGX_HTTP_PODGEN_LLM_PART;
        part->parent = call;
        part->part = i;
        part->req = call->req;
        part->log = call->log;
        part->retry.handler = ngx_http_podgen_llm_retry_handler;
        part->retry.data = part;
        part->retry.log = call->log;

        call->parts[i] = part;
        call->pending++;

        if (pg_llm_build_part_request(call->req, llm->model, &call->outline,
                                      i, &part->body)
            != 0)
        {
            goto failed;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, call->log, 0,
                   "podgen llm: call %p planned, %ui parts", call, n);

    for (i = 0; i < n; i++) {
        ngx_queue_insert_tail(&llm->queue, &call->parts[i]->queue);
        call->parts[i]->queued = 1;
        llm->waiting++;
    }

    ngx_http_podgen_llm_next(llm);

    return NGX_OK;

failed:

    for (i = 0; i < n; i++) {
        if (call->parts[i]) {
            ngx_http_podgen_llm_release(call->parts[i]);
            call->parts[i] = NULL;
        }
    }

    call->pending = 0;
    pg_llm_outline_free(&call->outline);

    return NGX_DECLINED;
}


/*
 * A call is over: its caller is told, or, for a part, its plan, which
 * tells the caller once every part is in (the turns joined in order, or
 * the first failure).
 */

static void
ngx_http_podgen_llm_complete(ngx_http_podgen_llm_call_t *call, ngx_int_t rc,
    pg_script_t *script, pg_error_t *err)
{
    ngx_uint_t                   i;
    pg_script_t                  joined;
    pg_error_t                   e;
    ngx_http_podgen_llm_call_t  *plan;

    if (call->kind != NGX_HTTP_PODGEN_LLM_PART) {
        call->done(call->data, rc, script, err);
        return;
    }

    plan = call->parent;
    plan->parts[call->part] = NULL;

    if (rc == NGX_OK) {
        plan->scripts[call->part] = *script;
        plan->written |= (ngx_uint_t) 1 << call->part;

    } else if (!plan->part_failed) {
        plan->part_failed = 1;
        plan->part_error = *err;
    }

    if (--plan->pending) {
        return;
    }

    if (plan->part_failed) {
        plan->done(plan->data, NGX_ERROR, NULL, &plan->part_error);

    } else if (pg_llm_join(plan->scripts, plan->outline.nsections,
                           &plan->outline, plan->req, &joined)
               == 0)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, plan->log, 0,
                       "podgen llm: call %p done, %uz segments in parts",
                       plan, joined.nsegments);

        plan->done(plan->data, NGX_OK, &joined, NULL);

    } else {
        pg_error_set(&e, 502, NULL, "invalid_llm_reply",
                     "the parts of the LLM's script do not make one script");
        e.type = "server_error";
        plan->done(plan->data, NGX_ERROR, NULL, &e);
    }

    for (i = 0; i < PG_LLM_SECTIONS_MAX; i++) {
        if (plan->written & ((ngx_uint_t) 1 << i)) {
            pg_script_free(&plan->scripts[i]);
        }
    }

    plan->written = 0;

    ngx_http_podgen_llm_release(plan);
}


/*
 * A script far off its length (under 80% or over 125% of the target) is
 * asked for once more, the shortfall stated; of the two, the one nearer
 * the target is kept.  NGX_AGAIN: the call goes on, *script is kept for
 * now; NGX_OK: *script is the answer.
 */

static ngx_int_t
ngx_http_podgen_llm_length(ngx_http_podgen_llm_call_t *call,
    pg_script_t *script)
{
    size_t                      target, a, b;
    pg_buf_t                    body;
    pg_script_t                 tmp;
    const pg_script_request_t  *req = call->req;
    ngx_http_podgen_llm_t      *llm = ngx_http_podgen_llm;

    target = req->target_words;

    if (call->has_missed) {
        a = script->word_count;
        b = call->missed.word_count;

        /* the second reply is kept unless the first was nearer */
        if ((b > target ? b - target : target - b)
            < (a > target ? a - target : target - a))
        {
            tmp = *script;
            *script = call->missed;
            call->missed = tmp;
        }

        pg_script_free(&call->missed);
        call->has_missed = 0;

        return NGX_OK;
    }

    if (pg_llm_length_ok(req, script->word_count)) {
        return NGX_OK;
    }

    ngx_memzero(&body, sizeof(pg_buf_t));

    if (pg_llm_build_request(req, llm->model, script->word_count, &body)
        != 0)
    {
        pg_buf_free(&body);
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, call->log, 0,
                  "podgen: LLM script of %uz words for a target of %uz, "
                  "asked again", script->word_count, target);

    pg_buf_free(&call->body);
    call->body = body;
    call->missed = *script;
    call->has_missed = 1;

    /* no backoff: the model answered, only the length was off */

    ngx_http_podgen_metrics_llm_retry();
    ngx_add_timer(&call->retry, 1);

    return NGX_AGAIN;
}


static void
ngx_http_podgen_llm_retry_handler(ngx_event_t *ev)
{
    ngx_http_podgen_llm_call_t  *call = ev->data;
    ngx_http_podgen_llm_t       *llm = ngx_http_podgen_llm;

    ngx_queue_insert_tail(&llm->queue, &call->queue);
    call->queued = 1;
    llm->waiting++;

    ngx_http_podgen_llm_next(llm);
}


void
ngx_http_podgen_llm_cancel(ngx_http_podgen_llm_call_t *call)
{
    ngx_uint_t              i;
    ngx_http_podgen_llm_t  *llm = ngx_http_podgen_llm;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, call->log, 0,
                   "podgen llm: call %p canceled", call);

    /* a plan's parts go with it */

    for (i = 0; i < PG_LLM_SECTIONS_MAX; i++) {
        if (call->parts[i]) {
            ngx_http_podgen_llm_stop(call->parts[i]);
            call->parts[i] = NULL;
        }
    }

    ngx_http_podgen_llm_stop(call);

    /* a slot may have opened */
    ngx_http_podgen_llm_next(llm);
}


static void
ngx_http_podgen_llm_stop(ngx_http_podgen_llm_call_t *call)
{
    ngx_http_podgen_llm_t  *llm = ngx_http_podgen_llm;

    if (call->queued) {
        ngx_queue_remove(&call->queue);
        call->queued = 0;
        llm->waiting--;
    }

    if (call->retry.timer_set) {
        ngx_del_timer(&call->retry);
    }

    ngx_http_podgen_llm_detach_easy(call);
    ngx_http_podgen_llm_release(call);
}


static void
ngx_http_podgen_llm_release(ngx_http_podgen_llm_call_t *call)
{
    ngx_uint_t  i;

    if (call->has_missed) {
        pg_script_free(&call->missed);
    }

    for (i = 0; i < PG_LLM_SECTIONS_MAX; i++) {
        if (call->written & ((ngx_uint_t) 1 << i)) {
            pg_script_free(&call->scripts[i]);
        }
    }

    pg_llm_outline_free(&call->outline);

    pg_buf_free(&call->body);
    pg_buf_free(&call->reply);
    ngx_free(call);
}
