/*
 * podgen: the library of podcasts — GET {base}?limit=&cursor= (newest
 * first) and GET {base}/feed.xml (RSS 2.0 + iTunes).  In Redis mode the
 * records of the fleet come from Redis (ngx_http_podgen_job_redis.h), else
 * (or while Redis is down) from the node's store; either way they are
 * parsed and the answer written on the thread pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dirent.h>

#include "pg_podcast.h"
#include "pg_feed.h"
#include "pg_key.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_job_store.h"
#include "ngx_http_podgen_job_record.h"
#include "ngx_http_podgen_job_redis.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_podcasts_common.h"


#define NGX_HTTP_PODGEN_LIST_MAX     100
#define NGX_HTTP_PODGEN_FEED_ITEMS   100
#define NGX_HTTP_PODGEN_LINK_MAX     1024   /* bytes of the feed's links'
                                               start */


/* ---- the list and the feed, read on the pool ---------------------------- */


static ngx_uint_t ngx_http_podgen_podcasts_take(
    ngx_http_podgen_podcasts_t *p, pg_job_t **job, u_char *json, size_t len);
static void ngx_http_podgen_podcasts_render(ngx_http_podgen_podcasts_t *p,
    pg_job_t **jobs, size_t taken);
static ngx_int_t ngx_http_podgen_feed_link(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf, ngx_str_t *link);
static ngx_uint_t ngx_http_podgen_feed_host_ok(ngx_str_t *v);


static int
ngx_http_podgen_podcasts_cmp(const void *a, const void *b)
{
    /* newest first: ids sort by time */
    return -ngx_strcmp((const char *) a, (const char *) b);
}


static void
ngx_http_podgen_podcasts_list_thread(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    int             fd;
    DIR            *dir;
    char           *ids, *nids;
    size_t          n, cap, i, taken, len;
    u_char         *raw;
    ssize_t         got;
    pg_job_t      **jobs;
    struct stat     st;
    struct dirent  *de;
    char            path[NGX_MAX_PATH];

    p->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    ngx_http_podgen_job_path(path, "jobs", "", "");

    dir = opendir(path);
    if (dir == NULL) {
        return;
    }

    ids = NULL;
    n = 0;
    cap = 0;

    while ((de = readdir(dir)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len != PG_JOB_ID_LEN + 5
            || ngx_strcmp(de->d_name + PG_JOB_ID_LEN, ".json") != 0
            || !pg_job_id_valid(de->d_name, PG_JOB_ID_LEN)
            || de->d_name[0] != 'p')
        {
            continue;
        }

        if (p->cursor[0]
            && ngx_strncmp(de->d_name, p->cursor, PG_JOB_ID_LEN) >= 0)
        {
            continue;
        }

        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            nids = realloc(ids, cap * (PG_JOB_ID_LEN + 1));
            if (nids == NULL) {
                free(ids);
                (void) closedir(dir);
                return;
            }

            ids = nids;
        }

        ngx_memcpy(ids + n * (PG_JOB_ID_LEN + 1), de->d_name, PG_JOB_ID_LEN);
        ids[n * (PG_JOB_ID_LEN + 1) + PG_JOB_ID_LEN] = '\0';
        n++;
    }

    (void) closedir(dir);

    if (n) {
        qsort(ids, n, PG_JOB_ID_LEN + 1, ngx_http_podgen_podcasts_cmp);
    }

    jobs = calloc(p->limit + 1, sizeof(pg_job_t *));
    if (jobs == NULL) {
        free(ids);
        return;
    }

    taken = 0;

    for (i = 0; i < n && taken <= p->limit; i++) {
        ngx_http_podgen_job_path(path, "jobs", ids + i * (PG_JOB_ID_LEN + 1),
                                 ".json");

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            continue;
        }

        raw = NULL;
        got = -1;

        if (fstat(fd, &st) == 0 && st.st_size < 64 * 1024 * 1024) {
            raw = malloc(st.st_size + 1);
            if (raw) {
                got = read(fd, raw, st.st_size);
            }
        }

        (void) close(fd);

        if (raw && got == st.st_size) {
            taken += ngx_http_podgen_podcasts_take(p, &jobs[taken], raw, got);
        }

        free(raw);
    }

    free(ids);

    ngx_http_podgen_podcasts_render(p, jobs, taken);
}


/* A record that belongs in the list (or the feed) goes to *job: 1, or 0. */

static ngx_uint_t
ngx_http_podgen_podcasts_take(ngx_http_podgen_podcasts_t *p, pg_job_t **job,
    u_char *json, size_t len)
{
    pg_job_t    *rec;
    pg_error_t   err;

    rec = calloc(1, sizeof(pg_job_t));
    if (rec == NULL) {
        return 0;
    }

    if (pg_job_from_json((char *) json, len, rec, &err) != 0) {
        free(rec);
        return 0;
    }

    if (rec->kind != PG_JOB_PODCAST
        || (p->feed && rec->status != PG_JOB_COMPLETED))
    {
        pg_job_free(rec);
        free(rec);
        return 0;
    }

    *job = rec;

    return 1;
}


/*
 * The list (or the feed) of jobs[0..taken), newest first; one more than
 * the limit says that more follow.  p->status NGX_HTTP_OK when p->out has
 * it.  The jobs are freed.
 */

static void
ngx_http_podgen_podcasts_render(ngx_http_podgen_podcasts_t *p,
    pg_job_t **jobs, size_t taken)
{
    size_t  i;
    char    base[256];

    ngx_snprintf((u_char *) base, sizeof(base), "%V%Z", &p->base);

    if (p->feed) {
        size_t                   k;
        pg_rss_channel_t         ch;
        ngx_http_podgen_show_t  *show;
        char                     link[NGX_HTTP_PODGEN_LINK_MAX + 1];
        char                     lbase[NGX_HTTP_PODGEN_LINK_MAX + 256];
        char                     hex[PG_KEY_LEN + 1];

        /* the show is the configuration's: read only, as the pool may */

        show = p->show;

        ngx_snprintf((u_char *) link, sizeof(link), "%V%Z", &p->host);
        ngx_snprintf((u_char *) lbase, sizeof(lbase), "%V%V%Z", &p->host,
                     &p->base);

        ngx_memzero(&ch, sizeof(pg_rss_channel_t));

        ch.title = (char *) show->title.data;
        ch.link = link;
        ch.base = lbase;
        ch.description = (char *) show->description.data;
        ch.author = (char *) show->author.data;
        ch.email = show->email.len ? (char *) show->email.data : NULL;
        ch.language = (char *) show->language.data;
        ch.category = (char *) show->category.data;
        ch.is_explicit = show->explicit ? 1 : 0;
        ch.image = NULL;
        ch.token = p->feed_token.len ? (char *) p->feed_token.data : NULL;

        k = taken > p->limit ? p->limit : taken;

        p->newest_ms = -1;

        for (i = 0; i < k; i++) {
            if (jobs[i]->updated_ms > p->newest_ms) {
                p->newest_ms = jobs[i]->updated_ms;
            }
        }

        if (pg_rss_write(&ch, jobs, k, &p->out) == 0
            && pg_key_sha256(p->out.data, p->out.len, hex) == 0)
        {
            ngx_memcpy(p->etag, hex, PG_FEED_ETAG_LEN);
            p->etag[PG_FEED_ETAG_LEN] = '\0';
            p->status = NGX_HTTP_OK;
        }

    } else {
        int  ok;

        ok = pg_buf_append_str(&p->out, "{\"object\":\"list\",\"data\":[") == 0;

        for (i = 0; ok && i < taken && i < p->limit; i++) {
            ok = (i == 0 || pg_buf_append(&p->out, ",", 1) == 0)
                 && pg_job_public_json(jobs[i], base, &p->out) == 0;
        }

        if (ok) {
            char  tail[128];

            if (taken > p->limit) {
                ngx_snprintf((u_char *) tail, sizeof(tail),
                             "],\"has_more\":true,\"next_cursor\":\"%s\"}%Z",
                             jobs[p->limit - 1]->id);

            } else {
                ngx_snprintf((u_char *) tail, sizeof(tail),
                             "],\"has_more\":false,\"next_cursor\":null}%Z");
            }

            if (pg_buf_append_str(&p->out, tail) == 0) {
                p->status = NGX_HTTP_OK;
            }
        }
    }

    for (i = 0; i < taken; i++) {
        pg_job_free(jobs[i]);
        free(jobs[i]);
    }

    free(jobs);
}


/* Redis mode: the records Redis answered with, parsed on the pool. */

static void
ngx_http_podgen_podcasts_records_thread(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    u_char      *pos, *end;
    size_t       len, taken;
    pg_job_t   **jobs;

    p->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    jobs = calloc(p->limit + 1, sizeof(pg_job_t *));
    if (jobs == NULL) {
        return;
    }

    taken = 0;
    pos = p->records.data;
    end = pos + p->records.len;

    while (taken <= p->limit && end - pos >= (ssize_t) sizeof(size_t)) {
        ngx_memcpy(&len, pos, sizeof(size_t));
        pos += sizeof(size_t);

        if ((size_t) (end - pos) < len) {
            break;
        }

        taken += ngx_http_podgen_podcasts_take(p, &jobs[taken], pos, len);
        pos += len;
    }

    ngx_http_podgen_podcasts_render(p, jobs, taken);
}


static void
ngx_http_podgen_podcasts_list_after(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    u_char                      *copy;
    ngx_int_t                    rc;
    ngx_http_request_t          *r;
    ngx_http_podgen_podcasts_t  *peer;

    peer = ngx_http_podgen_podcasts_back(p);
    r = p->request;

    if (p->status != NGX_HTTP_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    copy = ngx_pnalloc(r->pool, p->out.len);
    if (copy == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memcpy(copy, p->out.data, p->out.len);

    if (p->feed) {
        r->headers_out.status = NGX_HTTP_OK;

        /*
         * gzip_types (and every types list) compare the type before its
         * parameters: content_type_len is the length of the type alone
         * (ngx_http_test_content_type())
         */

        ngx_str_set(&r->headers_out.content_type,
                    "application/rss+xml; charset=utf-8");
        r->headers_out.content_type_len = sizeof("application/rss+xml") - 1;

        /* conditional GETs: nginx's not_modified filter answers 304 */

        if (ngx_http_podgen_set_etag(r, p->etag) != NGX_OK) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            goto done;
        }

        if (p->newest_ms >= 0) {
            r->headers_out.last_modified_time = (time_t) (p->newest_ms
                                                          / 1000);
        }

        rc = ngx_http_podgen_add_common_headers(r);
        if (rc == NGX_OK) {
            rc = ngx_http_podgen_send_memory(r, copy, p->out.len);
        }

    } else {
        rc = ngx_http_podgen_send_json(r, NGX_HTTP_OK, copy, p->out.len);
    }

done:

    ngx_http_podgen_podcasts_finish(peer, rc);
}


static void
ngx_http_podgen_podcasts_list_release(void *data)
{
    ngx_http_podgen_podcasts_t  *p = data;

    pg_buf_free(&p->out);
    pg_buf_free(&p->records);
    ngx_free(p);
}


/*
 * Redis mode: the records of the fleet are here; they are parsed and the
 * list written on the pool.  Redis failed: the node's own store answers.
 */

static void
ngx_http_podgen_podcasts_listed(void *data, ngx_int_t rc,
    ngx_http_podgen_redis_value_t *reply)
{
    ngx_http_podgen_podcasts_t  *p = data;

    size_t                          i;
    ngx_http_request_t             *r;
    ngx_http_podgen_redis_value_t  *e;

    p->list_op = NULL;
    r = p->request;

    if (rc == NGX_OK && reply->type == NGX_HTTP_PODGEN_REDIS_ARRAY) {

        for (i = 0; i < reply->n; i++) {
            e = &reply->elts[i];

            if (e->type != NGX_HTTP_PODGEN_REDIS_STRING) {
                continue;
            }

            if (pg_buf_append(&p->records, &e->str.len, sizeof(size_t)) != 0
                || pg_buf_append(&p->records, e->str.data, e->str.len) != 0)
            {
                pg_buf_free(&p->records);
                ngx_http_podgen_podcasts_finish(p,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }

        rc = ngx_http_podgen_podcasts_offload(r, p,
                                     ngx_http_podgen_podcasts_records_thread,
                                     ngx_http_podgen_podcasts_list_after,
                                     ngx_http_podgen_podcasts_list_release);

        if (rc == NGX_DONE) {
            /* the copy on the pool has the records now */
            ngx_memzero(&p->records, sizeof(pg_buf_t));
            return;
        }

        pg_buf_free(&p->records);

    } else {
        rc = ngx_http_podgen_podcasts_offload(r, p,
                                         ngx_http_podgen_podcasts_list_thread,
                                         ngx_http_podgen_podcasts_list_after,
                                         ngx_http_podgen_podcasts_list_release);
        if (rc == NGX_DONE) {
            return;
        }
    }

    ngx_http_podgen_podcasts_finish(p, rc);
}


/*
 * The absolute URL the feed's links start with: the show's base_url=;
 * else the request's scheme and Host; behind a proxy named by
 * podgen_trust_forwarded, its X-Forwarded-Proto (http or https) and
 * X-Forwarded-Host (the first of a list), each when present and sane.
 */

static ngx_int_t
ngx_http_podgen_feed_link(ngx_http_request_t *r,
    ngx_http_podgen_loc_conf_t *plcf, ngx_str_t *link)
{
    u_char           *p;
    ngx_str_t         scheme, host, v;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (plcf->show->base_url.len) {
        *link = plcf->show->base_url;
        return NGX_OK;
    }

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https");

    } else
#endif
    {
        ngx_str_set(&scheme, "http");
    }

    if (r->headers_in.host) {
        host = r->headers_in.host->value;      /* nginx checked it */

    } else if (r->headers_in.server.len) {
        host = r->headers_in.server;

    } else {
        ngx_str_set(&host, "localhost");
    }

    if (plcf->trust_forwarded
        && ngx_cidr_match(r->connection->sockaddr, plcf->trust_forwarded)
           == NGX_OK)
    {
        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            v = h[i].value;

            /* the first of a list: the client's side of the proxies */

            p = ngx_strlchr(v.data, v.data + v.len, ',');
            if (p) {
                v.len = p - v.data;
            }

            while (v.len && v.data[v.len - 1] == ' ') {
                v.len--;
            }

            if (h[i].key.len == sizeof("X-Forwarded-Proto") - 1
                && ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "X-Forwarded-Proto",
                                   h[i].key.len) == 0)
            {
                if (v.len == 5
                    && ngx_strncasecmp(v.data, (u_char *) "https", 5) == 0)
                {
                    ngx_str_set(&scheme, "https");

                } else if (v.len == 4
                           && ngx_strncasecmp(v.data, (u_char *) "http", 4)
                              == 0)
                {
                    ngx_str_set(&scheme, "http");
                }

            } else if (h[i].key.len == sizeof("X-Forwarded-Host") - 1
                       && ngx_strncasecmp(h[i].key.data,
                                          (u_char *) "X-Forwarded-Host",
                                          h[i].key.len) == 0
                       && ngx_http_podgen_feed_host_ok(&v))
            {
                host = v;
            }
        }
    }

    if (host.len > NGX_HTTP_PODGEN_LINK_MAX - sizeof("https://")) {
        host.len = NGX_HTTP_PODGEN_LINK_MAX - sizeof("https://");
    }

    link->data = ngx_pnalloc(r->pool, scheme.len + 3 + host.len);
    if (link->data == NULL) {
        return NGX_ERROR;
    }

    link->len = ngx_sprintf(link->data, "%V://%V", &scheme, &host)
                - link->data;

    return NGX_OK;
}


/* a host[:port] of letters, digits, "-._:[]" (a name or an address) */

static ngx_uint_t
ngx_http_podgen_feed_host_ok(ngx_str_t *v)
{
    u_char      c;
    size_t      i;

    if (v->len == 0 || v->len > 255) {
        return 0;
    }

    for (i = 0; i < v->len; i++) {
        c = v->data[i];

        if (!(ngx_http_podgen_isalnum(c) || c == '-' || c == '.' || c == '_'
              || c == ':' || c == '[' || c == ']'))
        {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_podgen_podcasts_list(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_uint_t feed)
{
    ngx_int_t                    n;
    ngx_str_t                    arg;
    pg_error_t                   err;
    ngx_http_podgen_loc_conf_t  *plcf;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p->feed = feed;
    p->limit = feed ? NGX_HTTP_PODGEN_FEED_ITEMS : 20;

    if (!feed && ngx_http_arg(r, (u_char *) "limit", 5, &arg) == NGX_OK) {
        n = ngx_atoi(arg.data, arg.len);

        if (n < 1 || n > NGX_HTTP_PODGEN_LIST_MAX) {
            pg_error_set(&err, 400, "limit", "invalid_value",
                         "'limit' must be 1 to %d", NGX_HTTP_PODGEN_LIST_MAX);
            return ngx_http_podgen_send_error(r, &err);
        }

        p->limit = n;
    }

    if (!feed && ngx_http_arg(r, (u_char *) "cursor", 6, &arg) == NGX_OK
        && arg.len)
    {
        if (!pg_job_id_valid((char *) arg.data, arg.len)) {
            pg_error_set(&err, 400, "cursor", "invalid_value",
                         "'cursor' must be a next_cursor of a list");
            return ngx_http_podgen_send_error(r, &err);
        }

        ngx_memcpy(p->cursor, arg.data, PG_JOB_ID_LEN);
        p->cursor[PG_JOB_ID_LEN] = '\0';
    }

    if (feed) {
        plcf = ngx_http_get_module_loc_conf(r, ngx_http_podgen_module);

        if (ngx_http_podgen_feed_link(r, plcf, &p->host) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p->show = plcf->show;

        /* the links of the feed carry its token (NUL-terminated) */

        p->feed_token = plcf->feed_token;
    }

    /* Redis mode: the library of the fleet; else (or Redis is down) the
     * node's own store */

    p->list_op = ngx_http_podgen_job_redis_list(p->cursor, p->limit + 1,
                                                feed,
                                                ngx_http_podgen_podcasts_listed,
                                                p);
    if (p->list_op) {
        r->read_event_handler = ngx_http_test_reading;
        ngx_http_podgen_podcasts_hold(p);
        return NGX_DONE;
    }

    return ngx_http_podgen_podcasts_offload(r, p,
                                         ngx_http_podgen_podcasts_list_thread,
                                         ngx_http_podgen_podcasts_list_after,
                                         ngx_http_podgen_podcasts_list_release);
}
