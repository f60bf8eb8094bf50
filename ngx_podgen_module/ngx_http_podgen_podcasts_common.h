/*
 * podgen: /v1/podcasts — what the files of the endpoint share: the
 * request's context and the helpers of an answer that goes async.
 *
 *   ngx_http_podgen_podcasts.c         routes, POST, status, DELETE
 *   ngx_http_podgen_podcast_library.c  the list and the feed
 *   ngx_http_podgen_podcast_files.c    the episode and its transcripts
 */

#ifndef NGX_HTTP_PODGEN_PODCASTS_COMMON_H
#define NGX_HTTP_PODGEN_PODCASTS_COMMON_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_buf.h"
#include "pg_job.h"
#include "pg_feed.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_redis.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_podcasts.h"


typedef struct ngx_http_podgen_podcasts_s {
    ngx_http_request_t        *request;
    ngx_http_podgen_job_t     *job;         /* being accepted */
    ngx_http_podgen_offload_t *offload;
    ngx_event_t                wait;
    ngx_msec_t                 deadline;
    uint64_t                   version;
    ngx_str_t                  base;
    ngx_str_t                  host;        /* the feed: the absolute
                                               URL its links start with */
    ngx_str_t                  feed_token;  /* podgen_feed_token, or "" */
    ngx_http_podgen_show_t    *show;        /* podgen_show (the feed) */
    char                       id[PG_JOB_ID_LEN + 1];
    char                       cursor[PG_JOB_ID_LEN + 1];
    ngx_uint_t                 limit;
    ngx_uint_t                 feed;
    pg_buf_t                   out;
    ngx_int_t                  status;      /* of the pool work */
    void                      *fetch;       /* a lookup in Redis */
    ngx_http_podgen_redis_op_t *list_op;    /* the fleet's list, in Redis */
    pg_buf_t                   records;     /* its records: length, JSON */
    ngx_msec_t                 wait_start;
    ngx_int_t                  wait_s;
    ngx_str_t                  what;        /* audio, transcript.* */
    char                       etag[PG_FEED_ETAG_LEN + 1];  /* the feed's */
    int64_t                    newest_ms;   /* the feed's newest item */
    unsigned                   held:1;      /* r->main->count++ */
    unsigned                   waiting:1;
    struct ngx_http_podgen_podcasts_s  *copy;  /* working on the pool */
    struct ngx_http_podgen_podcasts_s  *peer;  /* the request's context */
    unsigned                   answered:1;
} ngx_http_podgen_podcasts_t;


/* the answer goes async: the request is held until _finish() */
void ngx_http_podgen_podcasts_hold(ngx_http_podgen_podcasts_t *p);
void ngx_http_podgen_podcasts_finish(ngx_http_podgen_podcasts_t *p,
    ngx_int_t rc);

/*
 * Store work on the pool for a request (on a copy of the context, which
 * release() frees): NGX_DONE, or an answer.  after() takes the request's
 * context back with _back().
 */
ngx_int_t ngx_http_podgen_podcasts_offload(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_http_podgen_work_pt work,
    ngx_http_podgen_work_pt after, ngx_http_podgen_work_pt release);
ngx_http_podgen_podcasts_t *ngx_http_podgen_podcasts_back(
    ngx_http_podgen_podcasts_t *q);

/* A long poll's wait is the client's time, not the server's latency. */
void ngx_http_podgen_podcasts_waited(ngx_http_podgen_podcasts_t *p);

ngx_int_t ngx_http_podgen_podcasts_not_found(ngx_http_request_t *r);

/* 503 + Retry-After: whether the job exists cannot be told now. */
ngx_int_t ngx_http_podgen_podcasts_unavailable(ngx_http_request_t *r);
ngx_int_t ngx_http_podgen_podcasts_reply(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, pg_job_t *rec, ngx_uint_t status);

/* GET {base} and {base}/feed.xml */
ngx_int_t ngx_http_podgen_podcasts_list(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_uint_t feed);

/* GET {base}/{id}/audio, /transcript.vtt, /transcript.json */
ngx_int_t ngx_http_podgen_podcasts_file(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_str_t *what);

#endif /* NGX_HTTP_PODGEN_PODCASTS_COMMON_H */
