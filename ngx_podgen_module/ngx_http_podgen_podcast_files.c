/*
 * podgen: a podcast's files — GET {base}/{id}/audio (the episode, with
 * Range), /transcript.vtt, /transcript.srt, /transcript.json and
 * /chapters.json; from this node's store,
 * or in Redis mode the fleet's copy.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pg_podcast.h"
#include "pg_feed.h"
#include "ngx_http_podgen_module.h"
#include "ngx_http_podgen_job.h"
#include "ngx_http_podgen_job_store.h"
#include "ngx_http_podgen_job_record.h"
#include "ngx_http_podgen_job_redis.h"
#include "ngx_http_podgen_util.h"
#include "ngx_http_podgen_offload.h"
#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_podcasts_common.h"


/* ---- the episode and its transcripts ------------------------------------ */


static ngx_int_t ngx_http_podgen_podcasts_file_have(
    ngx_http_podgen_podcasts_t *p, ngx_int_t rc, pg_job_t *rec);
static ngx_int_t ngx_http_podgen_podcasts_validators(ngx_http_request_t *r,
    pg_job_t *rec, ngx_str_t *what);
static ngx_int_t ngx_http_podgen_podcasts_disposition(ngx_http_request_t *r,
    pg_job_t *rec, const char *ext);


static void
ngx_http_podgen_podcasts_file_found(void *data, ngx_int_t rc, pg_job_t *rec,
    u_char *audio, size_t len)
{
    ngx_http_podgen_podcasts_t  *p = data;

    p->fetch = NULL;

    rc = ngx_http_podgen_podcasts_file_have(p, rc, rec);

    if (rc != NGX_DONE) {
        ngx_http_podgen_podcasts_finish(p, rc);
    }
}


ngx_int_t
ngx_http_podgen_podcasts_file(ngx_http_request_t *r,
    ngx_http_podgen_podcasts_t *p, ngx_str_t *what)
{
    ngx_int_t  rc;
    pg_job_t   rec;

    p->what = *what;

    ngx_memzero(&rec, sizeof(pg_job_t));

    rc = ngx_http_podgen_job_lookup(r->pool, p->id, &rec, r->connection->log,
                                    0, ngx_http_podgen_podcasts_file_found,
                                    p, &p->fetch);
    if (rc == NGX_AGAIN) {
        ngx_http_podgen_podcasts_hold(p);
        return NGX_DONE;
    }

    rc = ngx_http_podgen_podcasts_file_have(p, rc, &rec);

    pg_job_free(&rec);

    return rc;
}


/* Another node made the episode: Redis has its bytes. */

static void
ngx_http_podgen_podcasts_episode_found(void *data, ngx_int_t rc,
    pg_job_t *rec, u_char *audio, size_t len)
{
    ngx_http_podgen_podcasts_t  *p = data;

    u_char              *copy;
    ngx_http_request_t  *r;

    p->fetch = NULL;
    r = p->request;

    if (rc == NGX_DECLINED) {
        ngx_http_podgen_podcasts_finish(p,
                                     ngx_http_podgen_podcasts_not_found(r));
        return;
    }

    if (rc == NGX_BUSY) {
        ngx_http_podgen_podcasts_finish(p,
                                   ngx_http_podgen_podcasts_unavailable(r));
        return;
    }

    copy = (rc == NGX_OK) ? ngx_pnalloc(r->pool, len ? len : 1) : NULL;

    if (copy == NULL) {
        ngx_http_podgen_podcasts_finish(p, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(copy, audio, len);

    r->allow_ranges = 1;

    ngx_http_podgen_podcasts_finish(p,
                                ngx_http_podgen_send_memory(r, copy, len));
}


static ngx_int_t
ngx_http_podgen_podcasts_file_have(ngx_http_podgen_podcasts_t *p,
    ngx_int_t rc, pg_job_t *rec)
{
    u_char                    *data;
    pg_buf_t                   out;
    ngx_uint_t                 srt;
    ngx_str_t                  value, *what;
    ngx_buf_t                 *b;
    pg_error_t                 err;
    ngx_chain_t                cl;
    pg_format_t                format;
    ngx_file_info_t            fi;
    ngx_pool_cleanup_t        *cln;
    ngx_http_request_t        *r;
    ngx_pool_cleanup_file_t   *clnf;
    char                       path[NGX_MAX_PATH], ext[8];

    r = p->request;
    what = &p->what;

    if (rc == NGX_DECLINED) {
        return ngx_http_podgen_podcasts_not_found(r);
    }

    if (rc == NGX_BUSY) {
        return ngx_http_podgen_podcasts_unavailable(r);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rec->status != PG_JOB_COMPLETED) {
        pg_error_set(&err, 409, NULL, "not_ready",
                     "the podcast is %s; its audio and transcript come "
                     "when it is completed",
                     pg_job_status_name(rec->status));

        ngx_str_set(&value, "2");
        (void) ngx_http_podgen_add_header(r, "Retry-After", &value);

        return ngx_http_podgen_send_error(r, &err);
    }

    if (what->data[0] == 't' || what->data[0] == 'c') {
        ngx_memzero(&out, sizeof(pg_buf_t));

        srt = (what->len == 14 && what->data[11] == 's');

        rc = srt ? pg_srt_write(rec, &out)
                 : (what->data[0] == 'c') ? pg_chapters_json(rec, &out)
                 : (what->len == 14) ? pg_vtt_write(rec, &out)
                                     : pg_transcript_json(rec, &out);

        data = (rc == 0) ? ngx_pnalloc(r->pool, out.len ? out.len : 1) : NULL;

        if (data == NULL) {
            pg_buf_free(&out);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(data, out.data, out.len);
        value.len = out.len;
        pg_buf_free(&out);

        if (ngx_http_podgen_podcasts_validators(r, rec, what) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (what->len == 15) {
            return ngx_http_podgen_send_json(r, NGX_HTTP_OK, data, value.len);
        }

        r->headers_out.status = NGX_HTTP_OK;

        /*
         * content_type_len is the type's length without its parameters:
         * what gzip_types and the other types lists compare
         * (ngx_http_test_content_type())
         */

        if (what->data[0] == 'c') {
            ngx_str_set(&r->headers_out.content_type,
                        "application/json+chapters");
            r->headers_out.content_type_len =
                                      r->headers_out.content_type.len;

        } else if (srt) {
            ngx_str_set(&r->headers_out.content_type,
                        "application/x-subrip; charset=utf-8");
            r->headers_out.content_type_len =
                                      sizeof("application/x-subrip") - 1;

        } else {
            ngx_str_set(&r->headers_out.content_type,
                        "text/vtt; charset=utf-8");
            r->headers_out.content_type_len = sizeof("text/vtt") - 1;
        }

        if (ngx_http_podgen_add_common_headers(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_podgen_send_memory(r, data, value.len);
    }

    /* the audio: a file, sent like a static one (sendfile, Range) */

    format = pg_format_from_name(rec->format, rec->format
                                              ? ngx_strlen(rec->format) : 0);

    if (format == PG_FMT_UNKNOWN) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type.data = (u_char *) pg_format_mime(format);
    r->headers_out.content_type.len = ngx_strlen(pg_format_mime(format));
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    ngx_sprintf((u_char *) ext, ".%s%Z", pg_format_name(format));
    ngx_http_podgen_job_path(path, "audio", p->id, ext);

    if (ngx_http_podgen_podcasts_disposition(r, rec, ext) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_pool_cleanup_file_t));
    b = ngx_calloc_buf(r->pool);
    if (cln == NULL || b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file->fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (b->file->fd == NGX_INVALID_FILE) {

        /* not made here: another node's, in Redis; validators from the
         * record, the same on every node */

        if (ngx_http_podgen_podcasts_validators(r, rec, what) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_podgen_job_lookup(r->pool, p->id, NULL,
                                        r->connection->log, 1,
                                        ngx_http_podgen_podcasts_episode_found,
                                        p, &p->fetch);
        if (rc == NGX_AGAIN) {
            if (ngx_http_podgen_add_common_headers(r) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_http_podgen_podcasts_hold(p);
            return NGX_DONE;
        }

        return (rc == NGX_BUSY) ? ngx_http_podgen_podcasts_unavailable(r)
                                : ngx_http_podgen_podcasts_not_found(r);
    }

    cln->handler = ngx_pool_cleanup_file;
    clnf = cln->data;
    clnf->fd = b->file->fd;
    clnf->name = (u_char *) "podgen episode";
    clnf->log = r->connection->log;

    if (ngx_fd_info(b->file->fd, &fi) == NGX_FILE_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file->name.len = ngx_strlen(path);
    b->file->name.data = ngx_pnalloc(r->pool, b->file->name.len + 1);
    if (b->file->name.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(b->file->name.data, path, b->file->name.len + 1);
    b->file->log = r->connection->log;
    b->file_pos = 0;
    b->file_last = ngx_file_size(&fi);
    b->in_file = b->file_last ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->sync = b->in_file ? 0 : 1;

    r->headers_out.content_length_n = ngx_file_size(&fi);
    r->headers_out.last_modified_time = ngx_file_mtime(&fi);
    r->allow_ranges = 1;

    if (ngx_http_set_etag(r) != NGX_OK
        || ngx_http_podgen_add_common_headers(r) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


/*
 * ETag and Last-Modified of what is made from a completed record: the
 * record's version names its state, the file names the representation;
 * nginx's not_modified filter answers If-None-Match and
 * If-Modified-Since with 304.
 */

static ngx_int_t
ngx_http_podgen_podcasts_validators(ngx_http_request_t *r, pg_job_t *rec,
    ngx_str_t *what)
{
    ngx_table_elt_t  *etag;

    etag = ngx_list_push(&r->headers_out.headers);
    if (etag == NULL) {
        return NGX_ERROR;
    }

    etag->hash = 1;
    ngx_str_set(&etag->key, "ETag");
    etag->value.data = ngx_pnalloc(r->pool, PG_JOB_ID_LEN + NGX_INT64_LEN
                                            + what->len + 5);
    if (etag->value.data == NULL) {
        return NGX_ERROR;
    }

    etag->value.len = ngx_sprintf(etag->value.data, "\"%*s-%uL-%V\"",
                                  (size_t) PG_JOB_ID_LEN, rec->id,
                                  rec->version, what)
                      - etag->value.data;
    r->headers_out.etag = etag;

    if (rec->updated_ms > 0) {
        r->headers_out.last_modified_time = (time_t) (rec->updated_ms
                                                      / 1000);
    }

    return NGX_OK;
}


/*
 * Content-Disposition: attachment; filename="Title.mp3";
 * filename*=UTF-8''Title.mp3 (RFC 6266): the name a podcast app or a
 * browser saves the episode as, with its extension.  The quoted name is
 * ASCII (other bytes, quotes, slashes and controls become "_"), the
 * extended one the title percent-encoded; at most 100 bytes of title, cut
 * between characters.
 */

static ngx_int_t
ngx_http_podgen_podcasts_disposition(ngx_http_request_t *r, pg_job_t *rec,
    const char *ext)
{
    u_char     *d, c;
    size_t      i, len;
    ngx_str_t   value;
    const char *title;

    static const char  hex[] = "0123456789ABCDEF";

    title = (rec->title && rec->title[0]) ? rec->title : rec->id;
    len = ngx_strlen(title);

    if (len > 100) {
        len = 100;

        while (len > 0 && ((u_char) title[len] & 0xc0) == 0x80) {
            len--;                  /* not inside a character */
        }
    }

    value.data = ngx_pnalloc(r->pool, sizeof("attachment; filename=\"\"; "
                                             "filename*=UTF-8''") + 4 * len
                                      + 2 * ngx_strlen(ext));
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(value.data, "attachment; filename=\"",
                   sizeof("attachment; filename=\"") - 1);

    for (i = 0; i < len; i++) {
        c = title[i];
        *d++ = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/')
               ? '_' : c;
    }

    d = ngx_sprintf(d, "%s\"; filename*=UTF-8''", ext);

    for (i = 0; i < len; i++) {
        c = title[i];

        /* RFC 5987 attr-char */

        if (ngx_http_podgen_isalnum(c) || ngx_strchr("!#$&+-.^_`|~", c)) {
            if (c != 0) {
                *d++ = c;
                continue;
            }
        }

        *d++ = '%';
        *d++ = hex[c >> 4];
        *d++ = hex[c & 0x0f];
    }

    d = ngx_sprintf(d, "%s", ext);

    value.len = d - value.data;

    return ngx_http_podgen_add_header(r, "Content-Disposition", &value);
}
