/*
 * podgen: the L2 cache in Redis (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_foreign_conn.h"
#include "ngx_http_podgen_metrics.h"


#define NGX_HTTP_PODGEN_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_PODGEN_REDIS_BACKOFF_MAX  5000

/* what one read takes from the socket, and what the reader gets at once */
#define NGX_HTTP_PODGEN_REDIS_READ         (256 * 1024)
#define NGX_HTTP_PODGEN_REDIS_SLICE        (16 * 1024)

/* an unused reader buffer up to this size is kept for the next reply */
#define NGX_HTTP_PODGEN_REDIS_KEEP_BUF     (16 * 1024 * 1024)


typedef struct {
    ngx_http_podgen_redis_conf_t  *conf;
    redisAsyncContext             *ac;
    ngx_connection_t              *c;
    ngx_event_t                    reconnect;
    ngx_msec_t                     backoff;
    ngx_log_t                     *log;
    ngx_uint_t                     up;
    ngx_uint_t                     exiting;
    ngx_uint_t                     writing;  /* in redisAsyncHandleWrite() */
} ngx_http_podgen_redis_t;


struct ngx_http_podgen_redis_op_s {
    ngx_http_podgen_redis_get_pt   handler;
    ngx_http_podgen_redis_reply_pt reply;
    void                          *data;
    ngx_event_t                    timer;
    unsigned                       canceled:1;  /* nobody to call */
    unsigned                       answered:1;  /* handler was called */
};


static ngx_http_podgen_redis_t  *ngx_http_podgen_redis;

/* exported by libhiredis (0.14 and later), declared in async.h from 1.0 */
void redisProcessCallbacks(redisAsyncContext *ac);

static char  ngx_http_podgen_redis_buf[NGX_HTTP_PODGEN_REDIS_READ];

/* who holds a lock: host:pid:start, unique in the fleet */
static char  ngx_http_podgen_redis_owner[128];

/* the reply a GET handler is called with (see _keep()) */
static redisReply  *ngx_http_podgen_redis_current;


static void ngx_http_podgen_redis_connect(ngx_http_podgen_redis_t *rd);
static void ngx_http_podgen_redis_schedule(ngx_http_podgen_redis_t *rd);


/* podgen_redis host:port|unix:/path [db=N] [password=P] [prefix=S]
 *     [ttl=TIME] [timeout=TIME] */

char *
ngx_http_podgen_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_podgen_redis_conf_t  *rc;

    u_char      *p;
    ngx_url_t    u;
    ngx_str_t   *value, s;
    ngx_int_t    n;
    ngx_uint_t   i;

    rc = (ngx_http_podgen_redis_conf_t *) ((char *) conf + cmd->offset);

    if (rc->addr_text.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    rc->addr_text = value[1];

    ngx_str_set(&rc->prefix, "podgen:");
    rc->ttl = 86400000;
    rc->timeout = 200;

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        rc->unix_path.len = value[1].len - 5;
        rc->unix_path.data = ngx_pnalloc(cf->pool, rc->unix_path.len + 1);
        if (rc->unix_path.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rc->unix_path.data, value[1].data + 5,
                    rc->unix_path.len + 1);

    } else {
        /* resolved here, once, like nginx's own upstreams: a worker
         * never waits for DNS */

        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[1];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "podgen_redis: %s in \"%V\"",
                               u.err ? u.err : "no address", &value[1]);
            return NGX_CONF_ERROR;
        }

        rc->port = ngx_inet_get_port(u.addrs[0].sockaddr);

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        n = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                          NGX_SOCKADDR_STRLEN, 0);
        p[n] = '\0';
        rc->host.data = p;
        rc->host.len = n;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rc->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rc->db == NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rc->prefix.data = value[i].data + 7;
            rc->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;
            rc->ttl = ngx_parse_time(&s, 0);
            if (rc->ttl == (ngx_msec_t) NGX_ERROR || rc->ttl == 0
                || rc->ttl > 0x7fffffff)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            rc->timeout = ngx_parse_time(&s, 0);
            if (rc->timeout == (ngx_msec_t) NGX_ERROR || rc->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "podgen_redis: invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* ---- hiredis <-> nginx events ------------------------------------------- */


/*
 * hiredis reads 16 KB per call and returns to the event loop between
 * reads: a 1 MB value took 64 trips through epoll.  What the socket has is
 * read here in large pieces, and fed to the reader a slice at a time with
 * the callbacks run after each: the reader moves what follows a reply to
 * the front of its buffer once the reply is taken, so its buffer should
 * not hold much more than the reply being read (fed a burst of pipelined
 * replies at once, it would be moved once per reply).  At the end of the
 * stream or on an error, hiredis's own read handles what it finds.
 */

static void
ngx_http_podgen_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_http_podgen_redis_t  *rd = c->data;

    size_t   off, k;
    ssize_t  n;

    if (rd->ac == NULL) {
        return;
    }

    if (!(rd->ac->c.flags & REDIS_CONNECTED)) {
        redisAsyncHandleRead(rd->ac);
        return;
    }

    for ( ;; ) {
        n = recv(c->fd, ngx_http_podgen_redis_buf,
                 NGX_HTTP_PODGEN_REDIS_READ, 0);

        if (n <= 0) {
            /* EAGAIN (after a read that filled the buffer exactly), the
             * end of the stream or an error: hiredis reads again and
             * handles it */
            redisAsyncHandleRead(rd->ac);
            return;
        }

        for (off = 0; off < (size_t) n; off += k) {
            k = ngx_min((size_t) n - off, NGX_HTTP_PODGEN_REDIS_SLICE);

            if (redisReaderFeed(rd->ac->c.reader,
                                ngx_http_podgen_redis_buf + off, k)
                != REDIS_OK)
            {
                redisAsyncHandleRead(rd->ac);
                return;
            }

            redisProcessCallbacks(rd->ac);

            if (rd->ac == NULL) {
                return;
            }
        }

        if (n < NGX_HTTP_PODGEN_REDIS_READ) {
            return;
        }
    }
}


static void
ngx_http_podgen_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_http_podgen_redis_t  *rd = c->data;

    if (rd->ac) {
        rd->writing = 1;
        redisAsyncHandleWrite(rd->ac);
        rd->writing = 0;
    }
}


/* level-triggered, as hiredis reads one buffer per call */

static void
ngx_http_podgen_redis_add_read(void *privdata)
{
    ngx_http_podgen_redis_t  *rd = privdata;

    if (rd->c && !rd->c->read->active) {
        (void) ngx_add_event(rd->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_podgen_redis_del_read(void *privdata)
{
    ngx_http_podgen_redis_t  *rd = privdata;

    if (rd->c && rd->c->read->active) {
        (void) ngx_del_event(rd->c->read, NGX_READ_EVENT, 0);
    }
}


/*
 * A new command on a connected socket is written when this turn of the
 * event loop ends (a posted event): the socket is almost always writable,
 * and asking epoll first cost two epoll_ctl() calls and a wait.  Only what
 * a write leaves over waits for epoll.
 */

static void
ngx_http_podgen_redis_add_write(void *privdata)
{
    ngx_http_podgen_redis_t  *rd = privdata;

    ngx_event_t  *wev;

    if (rd->c == NULL) {
        return;
    }

    wev = rd->c->write;

    if (rd->writing || rd->ac == NULL
        || !(rd->ac->c.flags & REDIS_CONNECTED))
    {
        if (!wev->active) {
            (void) ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
        }

        return;
    }

    if (!wev->active && !wev->posted) {
        ngx_post_event(wev, &ngx_posted_events);
    }
}


static void
ngx_http_podgen_redis_del_write(void *privdata)
{
    ngx_http_podgen_redis_t  *rd = privdata;

    if (rd->c == NULL) {
        return;
    }

    if (rd->c->write->active) {
        (void) ngx_del_event(rd->c->write, NGX_WRITE_EVENT, 0);
    }

    if (rd->c->write->posted) {
        ngx_delete_posted_event(rd->c->write);
    }
}


/* hiredis closes the socket itself, after this */

static void
ngx_http_podgen_redis_cleanup(void *privdata)
{
    ngx_connection_t         *c;
    ngx_http_podgen_redis_t  *rd = privdata;

    c = rd->c;
    if (c == NULL) {
        return;
    }

    ngx_http_podgen_free_foreign_connection(c, 0);
    rd->c = NULL;
}


static void
ngx_http_podgen_redis_set_up(ngx_http_podgen_redis_t *rd, ngx_uint_t up)
{
    ngx_uint_t  level;

    if (rd->up != up) {
        level = up ? NGX_LOG_NOTICE : NGX_LOG_WARN;
        ngx_log_error(level, rd->log, 0,
                      "podgen: redis %V is %s", &rd->conf->addr_text,
                      up ? "up" : "down");
    }

    rd->up = up;
    ngx_http_podgen_metrics_redis_up(up);
}


static void
ngx_http_podgen_redis_pong(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply               *reply = r;
    ngx_http_podgen_redis_t  *rd = privdata;

    if (reply && reply->type != REDIS_REPLY_ERROR) {
        rd->backoff = NGX_HTTP_PODGEN_REDIS_BACKOFF_MIN;
        ngx_http_podgen_redis_set_up(rd, 1);
        return;
    }

    if (reply) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0, "podgen: redis: %*s",
                      (size_t) reply->len, reply->str);
        ngx_http_podgen_metrics_redis_error();
    }
}


static void
ngx_http_podgen_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_podgen_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "podgen: redis %V: connect failed: %s",
                      &rd->conf->addr_text, ac->errstr);

        /* hiredis frees the context after this callback */
        rd->ac = NULL;
        ngx_http_podgen_redis_set_up(rd, 0);
        ngx_http_podgen_redis_schedule(rd);
    }
}


static void
ngx_http_podgen_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_podgen_redis_t  *rd = ac->data;

    rd->ac = NULL;
    ngx_http_podgen_redis_set_up(rd, 0);

    if (!rd->exiting) {
        ngx_http_podgen_redis_schedule(rd);
    }
}


static void
ngx_http_podgen_redis_connect(ngx_http_podgen_redis_t *rd)
{
    redisAsyncContext  *ac;

    if (rd->conf->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) rd->conf->unix_path.data);

    } else {
        ac = redisAsyncConnect((char *) rd->conf->host.data, rd->conf->port);
    }

    if (ac == NULL) {
        ngx_http_podgen_redis_schedule(rd);
        return;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "podgen: redis %V: %s", &rd->conf->addr_text,
                      ac->errstr);
        redisAsyncFree(ac);
        ngx_http_podgen_redis_schedule(rd);
        return;
    }

    rd->c = ngx_get_connection(ac->c.fd, rd->log);
    if (rd->c == NULL) {
        redisAsyncFree(ac);
        ngx_http_podgen_redis_schedule(rd);
        return;
    }

    rd->c->data = rd;
    rd->c->read->handler = ngx_http_podgen_redis_read_handler;
    rd->c->write->handler = ngx_http_podgen_redis_write_handler;
    rd->c->read->log = rd->log;
    rd->c->write->log = rd->log;

    ac->c.reader->maxbuf = NGX_HTTP_PODGEN_REDIS_KEEP_BUF;

    ac->data = rd;
    ac->ev.data = rd;
    ac->ev.addRead = ngx_http_podgen_redis_add_read;
    ac->ev.delRead = ngx_http_podgen_redis_del_read;
    ac->ev.addWrite = ngx_http_podgen_redis_add_write;
    ac->ev.delWrite = ngx_http_podgen_redis_del_write;
    ac->ev.cleanup = ngx_http_podgen_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_podgen_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_podgen_redis_on_disconnect);

    rd->ac = ac;

    /* the first command starts the (non-blocking) connect */

    if (rd->conf->password.len) {
        redisAsyncCommand(ac, ngx_http_podgen_redis_pong, rd, "AUTH %b",
                          rd->conf->password.data, rd->conf->password.len);
    }

    if (rd->conf->db) {
        redisAsyncCommand(ac, ngx_http_podgen_redis_pong, rd, "SELECT %d",
                          (int) rd->conf->db);
    }

    redisAsyncCommand(ac, ngx_http_podgen_redis_pong, rd, "PING");
}


static void
ngx_http_podgen_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_podgen_redis_t  *rd = ev->data;

    if (rd->ac == NULL && !rd->exiting) {
        ngx_http_podgen_redis_connect(rd);
    }
}


static void
ngx_http_podgen_redis_schedule(ngx_http_podgen_redis_t *rd)
{
    if (rd->reconnect.timer_set || rd->exiting) {
        return;
    }

    ngx_add_timer(&rd->reconnect, rd->backoff);

    rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_PODGEN_REDIS_BACKOFF_MAX);
}


ngx_int_t
ngx_http_podgen_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_redis_conf_t *conf)
{
    ngx_http_podgen_redis_t  *rd;

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_podgen_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->conf = conf;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_PODGEN_REDIS_BACKOFF_MIN;

    ngx_snprintf((u_char *) ngx_http_podgen_redis_owner,
                 sizeof(ngx_http_podgen_redis_owner) - 1, "%V:%P:%M%Z",
                 &cycle->hostname, ngx_pid, ngx_current_msec);

    rd->reconnect.handler = ngx_http_podgen_redis_reconnect_handler;
    rd->reconnect.data = rd;
    rd->reconnect.log = cycle->log;
    rd->reconnect.cancelable = 1;

    ngx_http_podgen_redis = rd;

    ngx_http_podgen_redis_connect(rd);

    return NGX_OK;
}


void
ngx_http_podgen_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_podgen_redis_t  *rd = ngx_http_podgen_redis;

    redisAsyncContext  *ac;

    if (rd == NULL) {
        return;
    }

    /* requests are over when a worker exits gracefully: what is pending
     * belongs to nobody.  nginx wants no socket left open. */

    rd->exiting = 1;

    if (rd->ac) {
        ac = rd->ac;
        rd->ac = NULL;
        redisAsyncFree(ac);
    }

    ngx_http_podgen_redis = NULL;
}


ngx_uint_t
ngx_http_podgen_redis_up(void)
{
    return ngx_http_podgen_redis && ngx_http_podgen_redis->up
           && ngx_http_podgen_redis->ac;
}


/* ---- commands ----------------------------------------------------------- */


static void
ngx_http_podgen_redis_answer(ngx_http_podgen_redis_op_t *op, ngx_int_t rc,
    u_char *value, size_t len)
{
    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    if (!op->answered && !op->canceled) {
        op->answered = 1;

        if (op->handler) {
            op->handler(op->data, rc, value, len);

        } else {
            /* a command: value is the typed reply, or NULL */
            op->reply(op->data, rc, (ngx_http_podgen_redis_value_t *) value);
        }
    }
}


static void
ngx_http_podgen_redis_get_done(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                  *reply = r;
    ngx_http_podgen_redis_op_t  *op = privdata;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_podgen_metrics_redis_error();
        ngx_http_podgen_redis_answer(op, NGX_ERROR, NULL, 0);

    } else if (reply->type == REDIS_REPLY_STRING) {
        ngx_http_podgen_redis_current = reply;
        ngx_http_podgen_redis_answer(op, NGX_OK, (u_char *) reply->str,
                                     reply->len);
        ngx_http_podgen_redis_current = NULL;

    } else {
        ngx_http_podgen_redis_answer(op, NGX_DECLINED, NULL, 0);
    }

    /* hiredis has the op until here, whatever happened to its caller */
    ngx_free(op);
}


/*
 * A command that takes too long: the caller gets an error now (and goes
 * on without the cache); a connection this slow is dropped and made anew.
 */

static void
ngx_http_podgen_redis_timeout(ngx_event_t *ev)
{
    ngx_http_podgen_redis_op_t  *op = ev->data;
    ngx_http_podgen_redis_t     *rd = ngx_http_podgen_redis;

    redisAsyncContext  *ac;

    ngx_log_error(NGX_LOG_WARN, ev->log, 0, "podgen: redis timed out");
    ngx_http_podgen_metrics_redis_error();

    ngx_http_podgen_redis_answer(op, NGX_ERROR, NULL, 0);

    if (rd && rd->ac) {
        /* pending callbacks run with NULL replies (this op is freed
         * there); a disconnect would wait for the replies */
        ac = rd->ac;
        rd->ac = NULL;
        redisAsyncFree(ac);
        ngx_http_podgen_redis_set_up(rd, 0);
        ngx_http_podgen_redis_schedule(rd);
    }
}


/* An operation with its timeout; NULL when Redis is not up. */

static ngx_http_podgen_redis_op_t *
ngx_http_podgen_redis_op_new(ngx_http_podgen_redis_get_pt handler,
    void *data)
{
    ngx_http_podgen_redis_t     *rd = ngx_http_podgen_redis;
    ngx_http_podgen_redis_op_t  *op;

    if (!ngx_http_podgen_redis_up()) {
        return NULL;
    }

    op = ngx_calloc(sizeof(ngx_http_podgen_redis_op_t), rd->log);
    if (op == NULL) {
        return NULL;
    }

    op->handler = handler;
    op->data = data;
    op->timer.handler = ngx_http_podgen_redis_timeout;
    op->timer.data = op;
    op->timer.log = rd->log;

    return op;
}


ngx_http_podgen_redis_op_t *
ngx_http_podgen_redis_get(const char *kind, const char *hex,
    ngx_http_podgen_redis_get_pt handler, void *data)
{
    ngx_http_podgen_redis_t     *rd = ngx_http_podgen_redis;
    ngx_http_podgen_redis_op_t  *op;

    op = ngx_http_podgen_redis_op_new(handler, data);
    if (op == NULL) {
        return NULL;
    }

    if (redisAsyncCommand(rd->ac, ngx_http_podgen_redis_get_done, op,
                          "GET %b%s:%s", rd->conf->prefix.data,
                          rd->conf->prefix.len, kind, hex)
        != REDIS_OK)
    {
        ngx_free(op);
        return NULL;
    }

    ngx_add_timer(&op->timer, rd->conf->timeout);

    return op;
}


/*
 * Called by a GET handler with a value: the value stays valid as long as
 * the pool (hiredis's buffer is handed over, not copied).
 */

u_char *
ngx_http_podgen_redis_keep(ngx_pool_t *pool)
{
    u_char              *p;
    redisReply          *reply;
    ngx_pool_cleanup_t  *cln;

    reply = ngx_http_podgen_redis_current;
    if (reply == NULL || reply->str == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    /* freeReplyObject() frees str with free() */
    p = (u_char *) reply->str;
    reply->str = NULL;

    cln->handler = free;
    cln->data = p;

    return p;
}


void
ngx_http_podgen_redis_cancel(ngx_http_podgen_redis_op_t *op)
{
    op->canceled = 1;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }
}


static void
ngx_http_podgen_redis_set_done(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_podgen_metrics_redis_error();
    }
}


void
ngx_http_podgen_redis_set(const char *kind, const char *hex, u_char *value,
    size_t len)
{
    ngx_http_podgen_redis_t  *rd = ngx_http_podgen_redis;

    if (!ngx_http_podgen_redis_up()) {
        return;
    }

    (void) redisAsyncCommand(rd->ac, ngx_http_podgen_redis_set_done, NULL,
                             "SET %b%s:%s %b PX %d", rd->conf->prefix.data,
                             rd->conf->prefix.len, kind, hex, value, len,
                             (int) rd->conf->ttl);
}


/* ---- the cross-node lock of single flight ------------------------------- */


/* a lock is removed or renewed by its owner only */

#define NGX_HTTP_PODGEN_REDIS_UNLOCK_LUA                                     \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "                         \
    "return redis.call('DEL', KEYS[1]) end return 0"

#define NGX_HTTP_PODGEN_REDIS_RELOCK_LUA                                     \
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "                         \
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"



static void
ngx_http_podgen_redis_lock_done(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                  *reply = r;
    ngx_http_podgen_redis_op_t  *op = privdata;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_podgen_metrics_redis_error();
        ngx_http_podgen_redis_answer(op, NGX_ERROR, NULL, 0);

    } else if (reply->type == REDIS_REPLY_STATUS) {
        ngx_http_podgen_redis_answer(op, NGX_OK, NULL, 0);

    } else {
        /* nil: another node holds it */
        ngx_http_podgen_redis_answer(op, NGX_DECLINED, NULL, 0);
    }

    ngx_free(op);
}


/*
 * SET {prefix}lock:{kind}:{hex} owner NX PX ttl: NGX_OK this node makes
 * it, NGX_DECLINED another node does, NGX_ERROR Redis failed.  The owner
 * names this process: a holder renews its lock while it works and removes
 * only its own; one that dies is survived through the (short) TTL.
 */

ngx_http_podgen_redis_op_t *
ngx_http_podgen_redis_lock(const char *kind, const char *hex,
    ngx_msec_t ttl, ngx_http_podgen_redis_get_pt handler, void *data)
{
    ngx_http_podgen_redis_t     *rd = ngx_http_podgen_redis;
    ngx_http_podgen_redis_op_t  *op;

    op = ngx_http_podgen_redis_op_new(handler, data);
    if (op == NULL) {
        return NULL;
    }

    if (redisAsyncCommand(rd->ac, ngx_http_podgen_redis_lock_done, op,
                          "SET %block:%s:%s %s NX PX %d",
                          rd->conf->prefix.data, rd->conf->prefix.len, kind,
                          hex, ngx_http_podgen_redis_owner, (int) ttl)
        != REDIS_OK)
    {
        ngx_free(op);
        return NULL;
    }

    ngx_add_timer(&op->timer, rd->conf->timeout);

    return op;
}


void
ngx_http_podgen_redis_unlock(const char *kind, const char *hex)
{
    ngx_http_podgen_redis_t  *rd = ngx_http_podgen_redis;

    if (!ngx_http_podgen_redis_up()) {
        return;
    }

    (void) redisAsyncCommand(rd->ac, ngx_http_podgen_redis_set_done, NULL,
                             "EVAL %s 1 %block:%s:%s %s",
                             NGX_HTTP_PODGEN_REDIS_UNLOCK_LUA,
                             rd->conf->prefix.data, rd->conf->prefix.len,
                             kind, hex, ngx_http_podgen_redis_owner);
}


/* The holder is still at work: its lock lives ttl ms more. */

void
ngx_http_podgen_redis_relock(const char *kind, const char *hex,
    ngx_msec_t ttl)
{
    ngx_http_podgen_redis_t  *rd = ngx_http_podgen_redis;

    if (!ngx_http_podgen_redis_up()) {
        return;
    }

    (void) redisAsyncCommand(rd->ac, ngx_http_podgen_redis_set_done, NULL,
                             "EVAL %s 1 %block:%s:%s %s %d",
                             NGX_HTTP_PODGEN_REDIS_RELOCK_LUA,
                             rd->conf->prefix.data, rd->conf->prefix.len,
                             kind, hex, ngx_http_podgen_redis_owner,
                             (int) ttl);
}


/* ---- any command (jobs) ------------------------------------------------- */


static ngx_http_podgen_redis_value_t  ngx_http_podgen_redis_nil;


ngx_http_podgen_redis_value_t *
ngx_http_podgen_redis_elt(ngx_http_podgen_redis_value_t *v, size_t i)
{
    if (v == NULL || v->type != NGX_HTTP_PODGEN_REDIS_ARRAY || i >= v->n) {
        return &ngx_http_podgen_redis_nil;
    }

    return &v->elts[i];
}


ngx_uint_t
ngx_http_podgen_redis_is(ngx_http_podgen_redis_value_t *v, const char *s)
{
    size_t  len;

    len = ngx_strlen(s);

    return v->type == NGX_HTTP_PODGEN_REDIS_STRING && v->str.len == len
           && ngx_memcmp(v->str.data, s, len) == 0;
}


/* Elements of the arrays in a reply, nested ones included. */

static size_t
ngx_http_podgen_redis_count(redisReply *reply, ngx_uint_t depth)
{
    size_t  i, n;

    if (reply->type != REDIS_REPLY_ARRAY || depth > 8) {
        return 0;
    }

    n = reply->elements;

    for (i = 0; i < reply->elements; i++) {
        n += ngx_http_podgen_redis_count(reply->element[i], depth + 1);
    }

    return n;
}


/*
 * The typed value of a reply; array elements are taken from *next, room
 * made by the caller for all of them.  Strings point into the reply.
 * Arrays nested deeper than podgen's replies read as nil.
 */

static void
ngx_http_podgen_redis_convert(redisReply *reply,
    ngx_http_podgen_redis_value_t *v, ngx_http_podgen_redis_value_t **next,
    ngx_uint_t depth)
{
    size_t  i;

    ngx_memzero(v, sizeof(ngx_http_podgen_redis_value_t));

    switch (reply->type) {

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        v->type = NGX_HTTP_PODGEN_REDIS_STRING;
        v->str.data = (u_char *) reply->str;
        v->str.len = reply->len;
        break;

    case REDIS_REPLY_INTEGER:
        v->type = NGX_HTTP_PODGEN_REDIS_INTEGER;
        v->integer = reply->integer;
        break;

    case REDIS_REPLY_ARRAY:
        if (depth > 8) {
            break;
        }

        v->type = NGX_HTTP_PODGEN_REDIS_ARRAY;
        v->n = reply->elements;
        v->elts = *next;
        *next += reply->elements;

        for (i = 0; i < reply->elements; i++) {
            ngx_http_podgen_redis_convert(reply->element[i], &v->elts[i],
                                          next, depth + 1);
        }

        break;

    default:
        /* nil (and error elements of an array) */
        break;
    }
}


static void
ngx_http_podgen_redis_command_done(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                  *reply = r;
    ngx_http_podgen_redis_op_t  *op = privdata;

    size_t                          n;
    ngx_http_podgen_redis_value_t   value, *elts, *next;

    if (op == NULL) {
        /* fire and forget */
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            ngx_http_podgen_metrics_redis_error();
        }

        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "podgen: redis: %*s", (size_t) reply->len,
                          reply->str);
        }

        ngx_http_podgen_metrics_redis_error();
        ngx_http_podgen_redis_answer(op, NGX_ERROR, NULL, 0);

    } else {
        n = ngx_http_podgen_redis_count(reply, 0);

        elts = NULL;

        if (n) {
            elts = ngx_alloc(n * sizeof(ngx_http_podgen_redis_value_t),
                             ngx_cycle->log);
            if (elts == NULL) {
                ngx_http_podgen_redis_answer(op, NGX_ERROR, NULL, 0);
                ngx_free(op);
                return;
            }
        }

        next = elts;
        ngx_http_podgen_redis_convert(reply, &value, &next, 0);

        ngx_http_podgen_redis_answer(op, NGX_OK, (u_char *) &value, 0);

        ngx_free(elts);
    }

    ngx_free(op);
}


/*
 * argv[0] may hold "%P" in any argument: it is replaced by the prefix.
 * handler NULL: fire and forget.  Returns the op (to cancel), or NULL
 * when Redis is not up (handler is not called then) or for fire and
 * forget.
 */

ngx_http_podgen_redis_op_t *
ngx_http_podgen_redis_command(ngx_http_podgen_redis_reply_pt handler,
    void *data, int argc, const char **argv, const size_t *argvlen,
    ngx_msec_t timeout)
{
    int                          i;
    u_char                      *p;
    ngx_http_podgen_redis_t     *rd = ngx_http_podgen_redis;
    ngx_http_podgen_redis_op_t  *op;
    const char                  *av[16];
    size_t                       al[16];
    u_char                       keys[16][192];

    if (!ngx_http_podgen_redis_up() || argc > 16) {
        return NULL;
    }

    /* keys: "%P" + name -> prefix + name */

    for (i = 0; i < argc; i++) {
        if (argvlen[i] > 2 && argv[i][0] == '%' && argv[i][1] == 'P'
            && argvlen[i] - 2 + rd->conf->prefix.len < sizeof(keys[0]))
        {
            p = ngx_cpymem(keys[i], rd->conf->prefix.data,
                           rd->conf->prefix.len);
            p = ngx_cpymem(p, argv[i] + 2, argvlen[i] - 2);
            av[i] = (char *) keys[i];
            al[i] = p - keys[i];

        } else {
            av[i] = argv[i];
            al[i] = argvlen[i];
        }
    }

    op = NULL;

    if (handler) {
        op = ngx_http_podgen_redis_op_new(NULL, data);
        if (op == NULL) {
            return NULL;
        }

        op->reply = handler;
    }

    if (redisAsyncCommandArgv(rd->ac, ngx_http_podgen_redis_command_done, op,
                              argc, av, al)
        != REDIS_OK)
    {
        ngx_free(op);
        return NULL;
    }

    if (op) {
        ngx_add_timer(&op->timer, timeout ? timeout : rd->conf->timeout);
    }

    return op;
}


/* The same with C strings: argc of them after timeout. */

ngx_http_podgen_redis_op_t *
ngx_http_podgen_redis_strings(ngx_http_podgen_redis_reply_pt handler,
    void *data, ngx_msec_t timeout, int argc, ...)
{
    int          i;
    va_list      args;
    const char  *argv[16];
    size_t       argvlen[16];

    if (argc > 16) {
        return NULL;
    }

    va_start(args, argc);

    for (i = 0; i < argc; i++) {
        argv[i] = va_arg(args, const char *);
        argvlen[i] = ngx_strlen(argv[i]);
    }

    va_end(args);

    return ngx_http_podgen_redis_command(handler, data, argc, argv, argvlen,
                                         timeout);
}
