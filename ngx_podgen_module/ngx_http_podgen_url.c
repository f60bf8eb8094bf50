/*
 * podgen: fetching a source URL (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <curl/curl.h>

#include "pg_buf.h"
#include "pg_netguard.h"
#include "ngx_http_podgen_url.h"
#include "ngx_http_podgen_curl.h"


#define NGX_HTTP_PODGEN_URL_REDIRECTS  5
#define NGX_HTTP_PODGEN_URL_AGENT                                           \
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "      \
    "Gecko) Chrome/120.0 Safari/537.36 podgen/0.1"


struct ngx_http_podgen_url_s {
    CURL                          *easy;
    ngx_http_podgen_curl_owner_t   owner;
    ngx_http_podgen_url_conf_t    *conf;
    ngx_http_podgen_url_done_pt    done;
    void                          *data;
    ngx_log_t                     *log;
    pg_buf_t                       body;
    size_t                         max;
    char                           error[CURL_ERROR_SIZE];
    char                           refused[64];     /* the address */
    unsigned                       blocked:1;
    unsigned                       too_big:1;
};


/* the Accept headers, made on first use, per worker */
static struct curl_slist  *ngx_http_podgen_url_headers;


static void ngx_http_podgen_url_done(void *data, CURLcode code);
static void ngx_http_podgen_url_free(ngx_http_podgen_url_t *u);


/* podgen_fetch_allow CIDR ...: ranges the SSRF guard opens */

char *
ngx_http_podgen_fetch_allow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_podgen_url_conf_t  *uc;

    ngx_str_t   *value;
    pg_cidr_t   *c;
    ngx_uint_t   i;

    uc = (ngx_http_podgen_url_conf_t *) ((char *) conf + cmd->offset);

    if (uc->allow == NULL) {
        uc->allow = ngx_array_create(cf->pool, 4, sizeof(pg_cidr_t));
        if (uc->allow == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        c = ngx_array_push(uc->allow);
        if (c == NULL) {
            return NGX_CONF_ERROR;
        }

        if (pg_cidr_parse((char *) value[i].data, value[i].len, c) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen_fetch_allow: \"%V\" is not an "
                               "address or CIDR range (\"127.0.0.1/32\", "
                               "\"fd00::/8\")", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static struct curl_slist *
ngx_http_podgen_url_init(void)
{
    struct curl_slist  *h;

    if (ngx_http_podgen_url_headers) {
        return ngx_http_podgen_url_headers;
    }

    h = curl_slist_append(NULL, "Accept: text/html,"
                          "application/xhtml+xml,application/pdf,"
                          "text/markdown,text/plain;q=0.9,*/*;q=0.5");
    if (h == NULL) {
        return NULL;
    }

    ngx_http_podgen_url_headers = curl_slist_append(h,
                                   "Accept-Language: en;q=0.9,*;q=0.5");
    if (ngx_http_podgen_url_headers == NULL) {
        curl_slist_free_all(h);
    }

    return ngx_http_podgen_url_headers;
}


void
ngx_http_podgen_url_exit_process(ngx_cycle_t *cycle)
{
    curl_slist_free_all(ngx_http_podgen_url_headers);
    ngx_http_podgen_url_headers = NULL;
}


/* The SSRF guard: every address curl connects to, redirects too. */

static curl_socket_t
ngx_http_podgen_url_open(void *clientp, curlsocktype purpose,
    struct curl_sockaddr *address)
{
    ngx_http_podgen_url_t  *u = clientp;

    size_t       n;
    pg_cidr_t   *allow;

    allow = u->conf->allow ? u->conf->allow->elts : NULL;
    n = u->conf->allow ? u->conf->allow->nelts : 0;

    if (purpose == CURLSOCKTYPE_IPCXN
        && !pg_addr_allowed(&address->addr, allow, n))
    {
        u->blocked = 1;
        (void) ngx_sock_ntop(&address->addr, address->addrlen,
                             (u_char *) u->refused, sizeof(u->refused) - 1,
                             0);
        u->refused[sizeof(u->refused) - 1] = '\0';
        return CURL_SOCKET_BAD;
    }

    return socket(address->family, address->socktype, address->protocol);
}


/* ---- fetches ------------------------------------------------------------ */


static size_t
ngx_http_podgen_url_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    ngx_http_podgen_url_t  *u = data;

    size_t  n;

    n = size * nmemb;

    if (u->body.len + n > u->max) {
        u->too_big = 1;
        return 0;               /* curl aborts the transfer */
    }

    if (pg_buf_append(&u->body, ptr, n) != 0) {
        return 0;
    }

    return n;
}


ngx_http_podgen_url_t *
ngx_http_podgen_url_fetch(ngx_http_podgen_url_conf_t *conf, const char *url,
    size_t max, ngx_http_podgen_url_done_pt done, void *data, ngx_log_t *log,
    pg_error_t *err)
{
    CURL                   *easy;
    struct curl_slist      *headers;
    ngx_http_podgen_url_t  *u;

    headers = ngx_http_podgen_url_init();
    u = headers ? ngx_calloc(sizeof(ngx_http_podgen_url_t), log) : NULL;
    easy = u ? curl_easy_init() : NULL;

    if (easy == NULL) {
        if (u) {
            ngx_free(u);
        }

        pg_error_set(err, 500, NULL, "server_error",
                     "could not start fetching the URL");
        err->type = "server_error";
        return NULL;
    }

    u->easy = easy;
    u->conf = conf;
    u->done = done;
    u->data = data;
    u->log = log;
    u->max = max;

    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, NGX_HTTP_PODGEN_URL_AGENT);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS,
                     (long) NGX_HTTP_PODGEN_URL_REDIRECTS);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) max);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, ngx_http_podgen_url_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, u->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) conf->timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) ngx_min(conf->timeout, 10000));
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION,
                     ngx_http_podgen_url_open);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, u);
    /*
     * a connection is judged when it is opened: none is shared, neither
     * kept after the fetch nor taken from the multi's cache (where the
     * LLM client keeps its own, to an address the guard may refuse)
     */
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);

    u->owner.done = ngx_http_podgen_url_done;
    u->owner.data = u;

    if (ngx_http_podgen_curl_add(easy, &u->owner, log) != NGX_OK) {
        curl_easy_cleanup(easy);
        ngx_free(u);
        pg_error_set(err, 500, NULL, "server_error",
                     "could not start fetching the URL");
        err->type = "server_error";
        return NULL;
    }

    return u;
}


static void
ngx_http_podgen_url_done(void *data, CURLcode code)
{
    ngx_http_podgen_url_t  *u = data;

    long         status;
    char        *ctype, *effective;
    pg_error_t   err;

    status = 0;
    ctype = NULL;
    effective = NULL;

    curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(u->easy, CURLINFO_CONTENT_TYPE, &ctype);
    curl_easy_getinfo(u->easy, CURLINFO_EFFECTIVE_URL, &effective);

    if (u->blocked && code != CURLE_OK) {
        /* (a refused address among others that worked is no failure) */
        pg_error_set(&err, 400, "url", "url_not_allowed",
                     "podgen does not fetch from %s (loopback, private, "
                     "link-local, CGNAT and multicast addresses are "
                     "refused; podgen_fetch_allow opens a range)",
                     u->refused);

    } else if (u->too_big || code == CURLE_FILESIZE_EXCEEDED) {
        pg_error_set(&err, 413, "url", "source_too_large",
                     "the document is larger than %zu bytes "
                     "(podgen_max_source)", u->max);

    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        pg_error_set(&err, 502, "url", "source_fetch_failed",
                     "the site did not answer within %lu ms",
                     (unsigned long) u->conf->timeout);

    } else if (code == CURLE_TOO_MANY_REDIRECTS) {
        pg_error_set(&err, 502, "url", "source_fetch_failed",
                     "more than %d redirects", NGX_HTTP_PODGEN_URL_REDIRECTS);

    } else if (code == CURLE_UNSUPPORTED_PROTOCOL) {
        pg_error_set(&err, 400, "url", "url_not_allowed",
                     "only http and https URLs are fetched, redirects too");

    } else if (code != CURLE_OK) {
        pg_error_set(&err, 502, "url", "source_fetch_failed",
                     "fetching failed: %.160s",
                     u->error[0] ? u->error : curl_easy_strerror(code));

    } else if (status < 200 || status > 299) {
        pg_error_set(&err, 502, "url", "source_fetch_failed",
                     "the site answered %ld for %.160s", status,
                     effective ? effective : "the URL");

    } else {
        u->done(u->data, NGX_OK, u->body.data, u->body.len, ctype, NULL);
        ngx_http_podgen_url_free(u);
        return;
    }

    if (err.status >= 500) {
        err.type = "server_error";
    }

    ngx_log_error(NGX_LOG_INFO, u->log, 0, "podgen: source fetch: %s",
                  err.message);

    u->done(u->data, NGX_ERROR, NULL, 0, NULL, &err);
    ngx_http_podgen_url_free(u);
}


void
ngx_http_podgen_url_cancel(ngx_http_podgen_url_t *u)
{
    ngx_http_podgen_url_free(u);
}


static void
ngx_http_podgen_url_free(ngx_http_podgen_url_t *u)
{
    if (u->easy) {
        ngx_http_podgen_curl_remove(u->easy);
        curl_easy_cleanup(u->easy);
    }

    pg_buf_free(&u->body);
    ngx_free(u);
}
