/*
 * podgen: fetching a source URL (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/resource.h>
#include <curl/curl.h>

#include "pg_buf.h"
#include "pg_netguard.h"
#include "ngx_http_podgen_url.h"
#include "ngx_http_podgen_foreign_conn.h"


#define NGX_HTTP_PODGEN_URL_REDIRECTS  5
#define NGX_HTTP_PODGEN_URL_AGENT                                           \
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "      \
    "Gecko) Chrome/120.0 Safari/537.36 podgen/0.1"


struct ngx_http_podgen_url_s {
    CURL                          *easy;
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


typedef struct {
    CURLM                         *multi;
    struct curl_slist             *headers;
    ngx_event_t                    timer;
    ngx_uint_t                     active;
    ngx_log_t                     *log;
    ngx_connection_t             **fds;
    ngx_uint_t                     nfds;
} ngx_http_podgen_url_multi_t;


static ngx_http_podgen_url_multi_t  *ngx_http_podgen_url_multi;


static ngx_http_podgen_url_multi_t *ngx_http_podgen_url_init(ngx_log_t *log);
static int ngx_http_podgen_url_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int ngx_http_podgen_url_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_podgen_url_timer_handler(ngx_event_t *ev);
static void ngx_http_podgen_url_event_handler(ngx_event_t *ev);
static void ngx_http_podgen_url_check_done(ngx_http_podgen_url_multi_t *m);
static void ngx_http_podgen_url_finish(ngx_http_podgen_url_t *u,
    CURLcode code);
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


static ngx_http_podgen_url_multi_t *
ngx_http_podgen_url_init(ngx_log_t *log)
{
    struct rlimit                 rlmt;
    ngx_http_podgen_url_multi_t  *m;

    if (ngx_http_podgen_url_multi) {
        return ngx_http_podgen_url_multi;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return NULL;
    }

    m = ngx_calloc(sizeof(ngx_http_podgen_url_multi_t), log);
    if (m == NULL) {
        return NULL;
    }

    if (getrlimit(RLIMIT_NOFILE, &rlmt) == -1 || rlmt.rlim_cur > 1048576) {
        rlmt.rlim_cur = 65536;
    }

    m->nfds = (ngx_uint_t) rlmt.rlim_cur;
    m->fds = ngx_calloc(m->nfds * sizeof(ngx_connection_t *), log);
    m->multi = curl_multi_init();

    m->headers = curl_slist_append(NULL, "Accept: text/html,"
                                   "application/xhtml+xml,application/pdf,"
                                   "text/markdown,text/plain;q=0.9,"
                                   "*/*;q=0.5");
    m->headers = m->headers ? curl_slist_append(m->headers,
                                   "Accept-Language: en;q=0.9,*;q=0.5")
                            : NULL;

    if (m->fds == NULL || m->multi == NULL || m->headers == NULL) {
        if (m->multi) {
            curl_multi_cleanup(m->multi);
        }

        curl_slist_free_all(m->headers);
        ngx_free(m->fds);
        ngx_free(m);
        return NULL;
    }

    /* the cycle's log outlives any request's */
    m->log = ngx_cycle->log;

    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_podgen_url_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_podgen_url_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);

    m->timer.handler = ngx_http_podgen_url_timer_handler;
    m->timer.data = m;
    m->timer.log = m->log;
    m->timer.cancelable = 1;

    ngx_http_podgen_url_multi = m;

    return m;
}


void
ngx_http_podgen_url_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_url_multi_t  *m = ngx_http_podgen_url_multi;

    if (m == NULL) {
        return;
    }

    curl_multi_cleanup(m->multi);
    m->multi = NULL;

    if (m->timer.timer_set) {
        ngx_del_timer(&m->timer);
    }

    curl_slist_free_all(m->headers);
    ngx_free(m->fds);
    ngx_free(m);

    ngx_http_podgen_url_multi = NULL;
}


/* ---- curl <-> nginx events, as in ngx_http_podgen_llm.c ----------------- */


static void
ngx_http_podgen_url_forget(ngx_http_podgen_url_multi_t *m, curl_socket_t s)
{
    ngx_uint_t         flags;
    ngx_connection_t  *c;

    if (s < 0 || (ngx_uint_t) s >= m->nfds || m->fds[s] == NULL) {
        return;
    }

    c = m->fds[s];

    flags = (fcntl(s, F_GETFD) == -1) ? NGX_CLOSE_EVENT : 0;

    ngx_http_podgen_free_foreign_connection(c, flags);

    m->fds[s] = NULL;
}


static int
ngx_http_podgen_url_close(void *clientp, curl_socket_t s)
{
    ngx_http_podgen_url_forget(clientp, s);

    return close(s);
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


static int
ngx_http_podgen_url_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_podgen_url_multi_t  *m = userp;

    ngx_connection_t  *c;

    if (what == CURL_POLL_REMOVE) {
        ngx_http_podgen_url_forget(m, s);
        return 0;
    }

    if (s < 0 || (ngx_uint_t) s >= m->nfds) {
        return -1;
    }

    c = m->fds[s];

    if (c == NULL) {
        c = ngx_get_connection(s, m->log);
        if (c == NULL) {
            return -1;
        }

        c->data = m;
        c->read->handler = ngx_http_podgen_url_event_handler;
        c->write->handler = ngx_http_podgen_url_event_handler;
        c->read->log = m->log;
        c->write->log = m->log;

        m->fds[s] = c;
    }

    if ((what & CURL_POLL_IN) && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return -1;
        }

    } else if (!(what & CURL_POLL_IN) && c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if ((what & CURL_POLL_OUT) && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return -1;
        }

    } else if (!(what & CURL_POLL_OUT) && c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    return 0;
}


static int
ngx_http_podgen_url_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_podgen_url_multi_t  *m = userp;

    if (m->timer.timer_set) {
        ngx_del_timer(&m->timer);
    }

    if (timeout_ms >= 0) {
        m->timer.cancelable = (m->active == 0);
        ngx_add_timer(&m->timer, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_podgen_url_timer_handler(ngx_event_t *ev)
{
    int                           running;
    ngx_http_podgen_url_multi_t  *m = ev->data;

    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ngx_http_podgen_url_check_done(m);
}


static void
ngx_http_podgen_url_event_handler(ngx_event_t *ev)
{
    int                           running;
    ngx_socket_t                  fd;
    ngx_connection_t             *c;
    ngx_http_podgen_url_multi_t  *m;

    c = ev->data;
    m = c->data;
    fd = c->fd;

    curl_multi_socket_action(m->multi, fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    ngx_http_podgen_url_check_done(m);
}


static void
ngx_http_podgen_url_check_done(ngx_http_podgen_url_multi_t *m)
{
    int                     left;
    CURLMsg                *msg;
    ngx_http_podgen_url_t  *u;

    while ((msg = curl_multi_info_read(m->multi, &left))) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        u = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &u);

        if (u) {
            ngx_http_podgen_url_finish(u, msg->data.result);
        }
    }
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
    CURL                         *easy;
    ngx_http_podgen_url_t        *u;
    ngx_http_podgen_url_multi_t  *m;

    m = ngx_http_podgen_url_init(log);
    u = m ? ngx_calloc(sizeof(ngx_http_podgen_url_t), log) : NULL;
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
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, m->headers);
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
    curl_easy_setopt(easy, CURLOPT_PRIVATE, u);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, u->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) conf->timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) ngx_min(conf->timeout, 10000));
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION,
                     ngx_http_podgen_url_open);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, u);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                     ngx_http_podgen_url_close);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, m);
    /* a connection is judged when it is opened: none is shared */
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);

    if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
        curl_easy_cleanup(easy);
        ngx_free(u);
        pg_error_set(err, 500, NULL, "server_error",
                     "could not start fetching the URL");
        err->type = "server_error";
        return NULL;
    }

    m->active++;

    return u;
}


static void
ngx_http_podgen_url_finish(ngx_http_podgen_url_t *u, CURLcode code)
{
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
    ngx_http_podgen_url_multi_t  *m = ngx_http_podgen_url_multi;

    if (m && u->easy) {
        curl_multi_remove_handle(m->multi, u->easy);
        m->active--;
    }

    if (u->easy) {
        curl_easy_cleanup(u->easy);
    }

    pg_buf_free(&u->body);
    ngx_free(u);
}
