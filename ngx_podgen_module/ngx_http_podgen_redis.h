/*
 * podgen: the L2 cache in Redis, shared by nodes — hiredis async on nginx
 * events: one pipelined connection per worker, its socket an nginx
 * connection, reconnect with backoff, a timeout on every command.  When
 * Redis is down or slow, lookups answer "miss" at once and stores are
 * dropped: the cache never causes an error.
 */

#ifndef NGX_HTTP_PODGEN_REDIS_H
#define NGX_HTTP_PODGEN_REDIS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


typedef struct {
    ngx_str_t      addr_text;       /* as configured */
    ngx_str_t      host;            /* numeric, resolved by nginx -t */
    in_port_t      port;
    ngx_str_t      unix_path;
    ngx_int_t      db;
    ngx_str_t      password;
    ngx_str_t      prefix;
    ngx_msec_t     ttl;
    ngx_msec_t     timeout;
} ngx_http_podgen_redis_conf_t;


typedef struct ngx_http_podgen_redis_op_s  ngx_http_podgen_redis_op_t;

/*
 * rc NGX_OK: a value (valid during the call); NGX_DECLINED: none;
 * NGX_ERROR: Redis failed or timed out.
 */
typedef void (*ngx_http_podgen_redis_get_pt)(void *data, ngx_int_t rc,
    u_char *value, size_t len);


/*
 * A reply, typed: what podgen's commands answer (an error reply is rc
 * NGX_ERROR, never a value).  A status reply ("OK") is a string.  Strings
 * point into the reply: valid during the handler's call only.
 */
typedef enum {
    NGX_HTTP_PODGEN_REDIS_NIL = 0,
    NGX_HTTP_PODGEN_REDIS_STRING,
    NGX_HTTP_PODGEN_REDIS_INTEGER,
    NGX_HTTP_PODGEN_REDIS_ARRAY
} ngx_http_podgen_redis_type_e;

typedef struct ngx_http_podgen_redis_value_s  ngx_http_podgen_redis_value_t;

struct ngx_http_podgen_redis_value_s {
    ngx_http_podgen_redis_type_e    type;
    ngx_str_t                       str;        /* STRING */
    int64_t                         integer;    /* INTEGER */
    size_t                          n;          /* ARRAY: elements */
    ngx_http_podgen_redis_value_t  *elts;
};

/* rc NGX_OK: the reply (valid during the call); NGX_ERROR: none. */
typedef void (*ngx_http_podgen_redis_reply_pt)(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply);

/*
 * Element i of an array reply; a nil value when v is no array or has
 * fewer elements, so that a reply of another shape reads as nil.
 */
ngx_http_podgen_redis_value_t *ngx_http_podgen_redis_elt(
    ngx_http_podgen_redis_value_t *v, size_t i);

/* 1: v is the string s (binary compare). */
ngx_uint_t ngx_http_podgen_redis_is(ngx_http_podgen_redis_value_t *v,
    const char *s);


char *ngx_http_podgen_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_podgen_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_podgen_redis_conf_t *conf);
void ngx_http_podgen_redis_exit_process(ngx_cycle_t *cycle);

/* 1 when connected. */
ngx_uint_t ngx_http_podgen_redis_up(void);

/* GET {prefix}{kind}:{hex}.  NULL: Redis is not up (a miss, now). */
ngx_http_podgen_redis_op_t *ngx_http_podgen_redis_get(const char *kind,
    const char *hex, ngx_http_podgen_redis_get_pt handler, void *data);

/*
 * Inside a GET handler called with a value: keeps the value valid as long
 * as the pool, without a copy; returns it, or NULL (no memory).
 */
u_char *ngx_http_podgen_redis_keep(ngx_pool_t *pool);

/* The caller goes away: its handler will not be called. */
void ngx_http_podgen_redis_cancel(ngx_http_podgen_redis_op_t *op);

/* SET {prefix}{kind}:{hex} value PX ttl, fire and forget. */
void ngx_http_podgen_redis_set(const char *kind, const char *hex,
    u_char *value, size_t len);

/*
 * Single flight across nodes: SET {prefix}lock:{kind}:{hex} owner NX PX
 * ttl, the owner naming this process (unlock and relock touch only its
 * own lock).
 * The handler gets NGX_OK (this node makes it), NGX_DECLINED (another
 * node does) or NGX_ERROR.  NULL: Redis is not up.
 */
ngx_http_podgen_redis_op_t *ngx_http_podgen_redis_lock(const char *kind,
    const char *hex, ngx_msec_t ttl, ngx_http_podgen_redis_get_pt handler,
    void *data);
void ngx_http_podgen_redis_unlock(const char *kind, const char *hex);

/* The holder still works: its lock lives ttl ms more. */
void ngx_http_podgen_redis_relock(const char *kind, const char *hex,
    ngx_msec_t ttl);

/*
 * Any command, binary-safe; an argument "%Pname" is the key
 * {prefix}name.  handler NULL: fire and forget.  NULL: Redis is not up
 * (or fire and forget).  timeout 0: the configured one.
 */
ngx_http_podgen_redis_op_t *ngx_http_podgen_redis_command(
    ngx_http_podgen_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen, ngx_msec_t timeout);

/* The same with argc C strings after timeout. */
ngx_http_podgen_redis_op_t *ngx_http_podgen_redis_strings(
    ngx_http_podgen_redis_reply_pt handler, void *data, ngx_msec_t timeout,
    int argc, ...);

#endif /* NGX_HTTP_PODGEN_REDIS_H */
