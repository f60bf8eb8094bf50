/*
 * podgen: libcurl multi on nginx events (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/resource.h>

#include "ngx_http_podgen_curl.h"
#include "ngx_http_podgen_foreign_conn.h"


typedef struct {
    CURLM                         *multi;
    ngx_event_t                    timer;
    ngx_uint_t                     active;      /* handles in the multi */
    ngx_log_t                     *log;
    ngx_connection_t             **fds;         /* by descriptor */
    ngx_uint_t                     nfds;
} ngx_http_podgen_curl_t;


static ngx_http_podgen_curl_t  *ngx_http_podgen_curl;


static int ngx_http_podgen_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int ngx_http_podgen_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_podgen_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_podgen_curl_event_handler(ngx_event_t *ev);
static void ngx_http_podgen_curl_check_done(ngx_http_podgen_curl_t *m);


CURLM *
ngx_http_podgen_curl_multi(ngx_log_t *log)
{
    struct rlimit            rlmt;
    ngx_http_podgen_curl_t  *m;

    if (ngx_http_podgen_curl) {
        return ngx_http_podgen_curl->multi;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "podgen: curl_global_init() failed");
        return NULL;
    }

    m = ngx_calloc(sizeof(ngx_http_podgen_curl_t), log);
    if (m == NULL) {
        return NULL;
    }

    if (getrlimit(RLIMIT_NOFILE, &rlmt) == -1 || rlmt.rlim_cur > 1048576) {
        rlmt.rlim_cur = 65536;
    }

    m->nfds = (ngx_uint_t) rlmt.rlim_cur;
    m->fds = ngx_calloc(m->nfds * sizeof(ngx_connection_t *), log);
    m->multi = curl_multi_init();

    if (m->fds == NULL || m->multi == NULL) {
        if (m->multi) {
            curl_multi_cleanup(m->multi);
        }

        ngx_free(m->fds);
        ngx_free(m);
        return NULL;
    }

    /* the cycle's log outlives any request's */
    m->log = ngx_cycle->log;

    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_podgen_curl_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_podgen_curl_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);

    m->timer.handler = ngx_http_podgen_curl_timer_handler;
    m->timer.data = m;
    m->timer.log = m->log;
    m->timer.cancelable = 1;

    ngx_http_podgen_curl = m;

    return m->multi;
}


void
ngx_http_podgen_curl_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_curl_t  *m = ngx_http_podgen_curl;

    if (m == NULL) {
        return;
    }

    /* closes the keep-alive connections (through the close callback):
     * nginx wants no socket left open at exit */

    curl_multi_cleanup(m->multi);
    m->multi = NULL;

    if (m->timer.timer_set) {
        ngx_del_timer(&m->timer);
    }

    ngx_free(m->fds);
    ngx_free(m);

    ngx_http_podgen_curl = NULL;
}


/*
 * curl's sockets as nginx connections, found by descriptor: curl may
 * close a socket before it says CURL_POLL_REMOVE (in its connect phase),
 * so the close callback below takes the socket out of epoll while it is
 * still open, and a later REMOVE finds nothing to do.
 */

static void
ngx_http_podgen_curl_forget(ngx_http_podgen_curl_t *m, curl_socket_t s)
{
    ngx_uint_t         flags;
    ngx_connection_t  *c;

    if (s < 0 || (ngx_uint_t) s >= m->nfds || m->fds[s] == NULL) {
        return;
    }

    c = m->fds[s];

    /* a socket that failed to connect is closed by curl without the close
     * callback, before REMOVE: the kernel has dropped it from epoll then */

    flags = (fcntl(s, F_GETFD) == -1) ? NGX_CLOSE_EVENT : 0;

    ngx_http_podgen_free_foreign_connection(c, flags);

    m->fds[s] = NULL;
}


static int
ngx_http_podgen_curl_close(void *clientp, curl_socket_t s)
{
    ngx_http_podgen_curl_forget(clientp, s);

    return close(s);
}


static int
ngx_http_podgen_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_podgen_curl_t  *m = userp;

    ngx_connection_t  *c;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, m->log, 0,
                   "podgen curl: socket %d what %d", s, what);

    if (what == CURL_POLL_REMOVE) {
        ngx_http_podgen_curl_forget(m, s);
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
        c->read->handler = ngx_http_podgen_curl_event_handler;
        c->write->handler = ngx_http_podgen_curl_event_handler;
        c->read->log = m->log;
        c->write->log = m->log;

        m->fds[s] = c;
    }

    /* level-triggered: curl does not promise to read until EAGAIN */

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
ngx_http_podgen_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_podgen_curl_t  *m = userp;

    /* ngx_add_timer() ignores changes under 300 ms: delete first, curl's
     * deadlines are exact */

    if (m->timer.timer_set) {
        ngx_del_timer(&m->timer);
    }

    if (timeout_ms >= 0) {
        /* a graceful shutdown (reload) waits for transfers in flight, not
         * for an idle multi */
        m->timer.cancelable = (m->active == 0);
        ngx_add_timer(&m->timer, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_podgen_curl_timer_handler(ngx_event_t *ev)
{
    int                      running;
    ngx_http_podgen_curl_t  *m = ev->data;

    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ngx_http_podgen_curl_check_done(m);
}


static void
ngx_http_podgen_curl_event_handler(ngx_event_t *ev)
{
    int                      running;
    ngx_socket_t             fd;
    ngx_connection_t        *c;
    ngx_http_podgen_curl_t  *m;

    c = ev->data;
    m = c->data;
    fd = c->fd;

    /* c may be freed inside: curl can remove its own socket */

    curl_multi_socket_action(m->multi, fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    ngx_http_podgen_curl_check_done(m);
}


static void
ngx_http_podgen_curl_check_done(ngx_http_podgen_curl_t *m)
{
    int                            left;
    CURLMsg                       *msg;
    ngx_http_podgen_curl_owner_t  *owner;

    while ((msg = curl_multi_info_read(m->multi, &left))) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        owner = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                          (char **) &owner);

        if (owner) {
            owner->done(owner->data, msg->data.result);
        }
    }
}


ngx_int_t
ngx_http_podgen_curl_add(CURL *easy, ngx_http_podgen_curl_owner_t *owner,
    ngx_log_t *log)
{
    ngx_http_podgen_curl_t  *m;

    if (ngx_http_podgen_curl_multi(log) == NULL) {
        return NGX_ERROR;
    }

    m = ngx_http_podgen_curl;

    curl_easy_setopt(easy, CURLOPT_PRIVATE, owner);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                     ngx_http_podgen_curl_close);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, m);

    if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
        return NGX_ERROR;
    }

    m->active++;

    return NGX_OK;
}


void
ngx_http_podgen_curl_remove(CURL *easy)
{
    ngx_http_podgen_curl_t  *m = ngx_http_podgen_curl;

    if (m == NULL || m->multi == NULL) {
        return;
    }

    if (curl_multi_remove_handle(m->multi, easy) == CURLM_OK
        && m->active)
    {
        m->active--;
    }
}
