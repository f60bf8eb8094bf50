/*
 * podgen: the job store on local disk (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <dirent.h>
#include <sys/file.h>

#include "pg_job.h"
#include "ngx_http_podgen_job_store.h"


/* the store's directory: a copy in the worker, read by pool threads */
static ngx_str_t  ngx_http_podgen_job_store;


static ngx_int_t
ngx_http_podgen_job_store_path(ngx_conf_t *cf, ngx_str_t *store,
    const char *sub)
{
    ngx_path_t  *path;

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_ERROR;
    }

    path->name.len = store->len + ngx_strlen(sub);
    path->name.data = ngx_pnalloc(cf->pool, path->name.len + 1);
    if (path->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(path->name.data, "%V%s%Z", store, sub);

    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    /* nginx creates it at start, owned by the workers' user */

    return ngx_add_path(cf, &path);
}


ngx_int_t
ngx_http_podgen_job_store_paths(ngx_conf_t *cf, ngx_str_t *store)
{
    if (ngx_http_podgen_job_store_path(cf, store, "") != NGX_OK
        || ngx_http_podgen_job_store_path(cf, store, "/jobs") != NGX_OK
        || ngx_http_podgen_job_store_path(cf, store, "/audio") != NGX_OK
        || ngx_http_podgen_job_store_path(cf, store, "/locks") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_podgen_job_store_init(ngx_str_t *store)
{
    ngx_http_podgen_job_store = *store;
}


void
ngx_http_podgen_job_path(char *buf, const char *dir, const char *id,
    const char *ext)
{
    ngx_snprintf((u_char *) buf, NGX_MAX_PATH, "%V/%s/%s%s%Z",
                 &ngx_http_podgen_job_store, dir, id, ext);
}


ngx_int_t
ngx_http_podgen_job_read_file(ngx_pool_t *pool, const char *path,
    u_char **data, size_t *len, ngx_log_t *log)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    /* a small file, read like nginx reads a static one */

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        return (ngx_errno == NGX_ENOENT) ? NGX_DECLINED : NGX_ERROR;
    }

    file.name.data = (u_char *) path;
    file.name.len = ngx_strlen(path);
    file.log = log;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 64 * 1024 * 1024)
    {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    *len = ngx_file_size(&fi);
    *data = ngx_pnalloc(pool, *len + 1);

    if (*data == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, *data, *len, 0);
    (void) ngx_close_file(file.fd);

    if (n != (ssize_t) *len) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_podgen_job_write_file(const char *path, u_char *data, size_t len)
{
    int      fd;
    ssize_t  n;
    char     tmp[NGX_MAX_PATH + 8];

    ngx_sprintf((u_char *) tmp, "%s.tmp%Z", path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        return NGX_ERROR;
    }

    while (len) {
        n = write(fd, data, len);

        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }

            goto failed;
        }

        data += n;
        len -= n;
    }

    if (close(fd) == -1) {
        fd = -1;
        goto failed;
    }

    if (rename(tmp, path) == -1) {
        fd = -1;
        goto failed;
    }

    return NGX_OK;

failed:

    n = errno;

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink(tmp);
    errno = n;

    return NGX_ERROR;
}


void
ngx_http_podgen_job_store_write(ngx_http_podgen_job_store_write_t *w)
{
    char  path[NGX_MAX_PATH], lock[NGX_MAX_PATH];

    if (w->claim) {
        /* the lock first: no scan takes the job once its record exists */

        ngx_http_podgen_job_path(path, "locks", w->id, "");

        w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

        if (w->lock_fd == -1 || flock(w->lock_fd, LOCK_EX | LOCK_NB) == -1) {
            w->err = errno;

            if (w->lock_fd != -1) {
                (void) close(w->lock_fd);
                w->lock_fd = -1;
            }

            return;
        }
    }

    ngx_http_podgen_job_path(path, "jobs", w->id, ".json");

    if (!w->claim && access(path, F_OK) == -1 && errno == ENOENT) {
        /* deleted meanwhile: it stays deleted */
        w->deleted = 1;
        goto unlock;
    }

    if (ngx_http_podgen_job_write_file(path, w->json.data, w->json.len)
        == NGX_OK)
    {
        /*
         * DELETE removes the lock file first, then the record: a record
         * renamed in between is removed here, one renamed before is
         * removed by DELETE.  An unfinished job always has its lock file.
         */

        ngx_http_podgen_job_path(lock, "locks", w->id, "");

        if (access(lock, F_OK) == -1 && errno == ENOENT) {
            (void) unlink(path);
            w->deleted = 1;
            return;
        }

    } else {
        w->err = errno;

        if (w->claim) {
            ngx_http_podgen_job_path(path, "locks", w->id, "");
            (void) unlink(path);
            (void) close(w->lock_fd);
            w->lock_fd = -1;
        }

        return;
    }

unlock:

    if (w->final || w->deleted) {
        /* finished: nobody needs to take it any more */
        ngx_http_podgen_job_path(path, "locks", w->id, "");
        (void) unlink(path);
    }
}


ngx_int_t
ngx_http_podgen_job_store_episode(const char *id, const char *ext,
    u_char *data, size_t len, char *error, size_t size)
{
    char  path[NGX_MAX_PATH], lock[NGX_MAX_PATH];

    ngx_http_podgen_job_path(path, "audio", id, ext);

    if (ngx_http_podgen_job_write_file(path, data, len) != NGX_OK) {
        ngx_snprintf((u_char *) error, size,
                     "the episode could not be stored: %s%Z",
                     strerror(errno));
        return NGX_ERROR;
    }

    /* deleted while it was rendered (DELETE removes the lock file first) */

    ngx_http_podgen_job_path(lock, "locks", id, "");

    if (access(lock, F_OK) == -1 && errno == ENOENT) {
        (void) unlink(path);
        ngx_snprintf((u_char *) error, size, "deleted%Z");
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_podgen_job_store_scan(ngx_http_podgen_job_scan_t *sc)
{
    int             fd;
    DIR            *dir;
    size_t          len;
    u_char         *raw;
    ssize_t         n;
    pg_job_t        rec;
    pg_error_t      err;
    struct stat     st;
    struct dirent  *de;
    char            path[NGX_MAX_PATH];

    ngx_http_podgen_job_path(path, "locks", "", "");

    dir = opendir(path);
    if (dir == NULL) {
        return;
    }

    while (sc->n < sc->room && (de = readdir(dir)) != NULL) {

        len = ngx_strlen(de->d_name);

        if (!pg_job_id_valid(de->d_name, len)) {
            continue;
        }

        ngx_http_podgen_job_path(path, "locks", de->d_name, "");

        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd == -1) {
            continue;
        }

        if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
            /* somebody runs it */
            (void) close(fd);
            continue;
        }

        ngx_http_podgen_job_path(path, "jobs", de->d_name, ".json");

        raw = NULL;
        rec.status = PG_JOB_FAILED;

        if (stat(path, &st) == 0 && st.st_size < 64 * 1024 * 1024) {
            raw = malloc(st.st_size + 1);
        }

        if (raw) {
            int  rfd = open(path, O_RDONLY | O_CLOEXEC);

            n = (rfd == -1) ? -1 : read(rfd, raw, st.st_size);

            if (rfd != -1) {
                (void) close(rfd);
            }

            if (n != st.st_size
                || pg_job_from_json((char *) raw, n, &rec, &err) != 0)
            {
                rec.status = PG_JOB_FAILED;
            }

            free(raw);
        }

        if (rec.status != PG_JOB_QUEUED && rec.status != PG_JOB_RUNNING) {
            /* finished, deleted or unreadable: nothing to take */
            if (raw) {
                pg_job_free(&rec);
            }

            ngx_http_podgen_job_path(path, "locks", de->d_name, "");
            (void) unlink(path);
            (void) close(fd);
            continue;
        }

        sc->recs[sc->n] = rec;
        sc->fds[sc->n] = fd;
        sc->n++;
    }

    (void) closedir(dir);
}
