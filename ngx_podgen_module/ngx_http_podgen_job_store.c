/*
 * podgen: the job store on local disk (see the header).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <dirent.h>
#include <sys/file.h>

#include "pg_audio.h"
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
        || ngx_http_podgen_job_store_path(cf, store, "/locks") != NGX_OK
        || ngx_http_podgen_job_store_path(cf, store, "/sync") != NGX_OK
        || ngx_http_podgen_job_store_path(cf, store, "/accepted") != NGX_OK
        || ngx_http_podgen_job_store_path(cf, store, "/parts") != NGX_OK)
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

    if (w->mark) {
        /* before the record: a copy the fleet may not have is never
         * without its mark, even if the process dies right after */

        if (ngx_http_podgen_job_store_mark(w->id) != NGX_OK) {
            w->err = errno;
            return;
        }
    }

    if (w->accept) {
        /* the accepting node's copy, apart from the jobs it runs */

        ngx_http_podgen_job_path(path, "accepted", w->id, ".json");

        if (ngx_http_podgen_job_write_file(path, w->json.data, w->json.len)
            != NGX_OK)
        {
            w->err = errno;
        }

        return;

    } else if (w->claim) {
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
ngx_http_podgen_job_store_part(const char *id, ngx_uint_t i, u_char *data,
    size_t len)
{
    char  path[NGX_MAX_PATH], name[32];

    ngx_sprintf((u_char *) name, ".%ui.wav%Z", i);
    ngx_http_podgen_job_path(path, "parts", id, name);

    return ngx_http_podgen_job_write_file(path, data, len);
}


ngx_int_t
ngx_http_podgen_job_store_read_part(const char *id, ngx_uint_t i,
    u_char **data, size_t *len, char *error, size_t size)
{
    int          fd;
    u_char      *p;
    size_t       got;
    ssize_t      n;
    struct stat  st;
    char         path[NGX_MAX_PATH], name[32];

    ngx_sprintf((u_char *) name, ".%ui.wav%Z", i);
    ngx_http_podgen_job_path(path, "parts", id, name);

    fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1 || fstat(fd, &st) == -1) {
        goto failed;
    }

    p = malloc(st.st_size ? st.st_size : 1);
    if (p == NULL) {
        goto failed;
    }

    for (got = 0; got < (size_t) st.st_size; got += n) {
        n = read(fd, p + got, st.st_size - got);

        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }

            free(p);
            goto failed;
        }
    }

    (void) close(fd);

    *data = p;
    *len = got;

    return NGX_OK;

failed:

    ngx_snprintf((u_char *) error, size, "segment %ui: %s%Z", i,
                 strerror(errno));

    if (fd != -1) {
        (void) close(fd);
    }

    return NGX_ERROR;
}


ngx_uint_t
ngx_http_podgen_job_store_deleted(const char *id)
{
    char  lock[NGX_MAX_PATH];

    ngx_http_podgen_job_path(lock, "locks", id, "");

    return access(lock, F_OK) == -1 && errno == ENOENT;
}


void
ngx_http_podgen_job_store_remove_part(const char *id, ngx_uint_t i)
{
    char  path[NGX_MAX_PATH], name[32];

    ngx_sprintf((u_char *) name, ".%ui.wav%Z", i);
    ngx_http_podgen_job_path(path, "parts", id, name);
    (void) unlink(path);
}


void
ngx_http_podgen_job_store_remove_parts(const char *id, ngx_uint_t n)
{
    DIR            *dir;
    size_t          len;
    ngx_uint_t      i;
    struct dirent  *de;
    char            path[NGX_MAX_PATH], name[32];

    if (n) {
        for (i = 0; i < n; i++) {
            ngx_sprintf((u_char *) name, ".%ui.wav%Z", i);
            ngx_http_podgen_job_path(path, "parts", id, name);
            (void) unlink(path);
        }

        return;
    }

    ngx_http_podgen_job_path(path, "parts", "", "");

    dir = opendir(path);
    if (dir == NULL) {
        return;
    }

    len = ngx_strlen(id);

    while ((de = readdir(dir)) != NULL) {
        if (ngx_strncmp(de->d_name, id, len) == 0 && de->d_name[len] == '.') {
            ngx_http_podgen_job_path(path, "parts", de->d_name, "");
            (void) unlink(path);
        }
    }

    (void) closedir(dir);
}


int
ngx_http_podgen_job_store_episode_open(const char *id, const char *ext,
    char *error, size_t size)
{
    int   fd;
    char  path[NGX_MAX_PATH], tmp[16];

    ngx_sprintf((u_char *) tmp, "%s.tmp%Z", ext);
    ngx_http_podgen_job_path(path, "audio", id, tmp);

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd == -1) {
        ngx_snprintf((u_char *) error, size,
                     "the episode could not be stored: %s%Z",
                     strerror(errno));
    }

    return fd;
}


ngx_int_t
ngx_http_podgen_job_store_episode_done(const char *id, const char *ext,
    int fd, ngx_uint_t ok, char *error, size_t size)
{
    int   err;
    char  path[NGX_MAX_PATH], tmp[NGX_MAX_PATH], lock[NGX_MAX_PATH],
          name[16];

    ngx_sprintf((u_char *) name, "%s.tmp%Z", ext);
    ngx_http_podgen_job_path(tmp, "audio", id, name);
    ngx_http_podgen_job_path(path, "audio", id, ext);

    if (close(fd) == -1 && ok) {
        ok = 0;
        err = errno;
        ngx_snprintf((u_char *) error, size,
                     "the episode could not be stored: %s%Z", strerror(err));
    }

    if (!ok) {
        (void) unlink(tmp);
        return NGX_ERROR;
    }

    if (rename(tmp, path) == -1) {
        err = errno;
        (void) unlink(tmp);
        ngx_snprintf((u_char *) error, size,
                     "the episode could not be stored: %s%Z", strerror(err));
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


/*
 * Thread: what a job that is not running any more (no lock file: finished,
 * deleted, or its worker died and nobody took it yet) left: segments in
 * parts/, a half-written episode in audio/.  A job resumed later makes its
 * segments again (from the cache).
 */

static void
ngx_http_podgen_job_store_orphans(const char *sub, const char *suffix)
{
    DIR            *dir;
    size_t          len, slen;
    struct dirent  *de;
    char            path[NGX_MAX_PATH], id[PG_JOB_ID_LEN + 1];

    ngx_http_podgen_job_path(path, sub, "", "");

    dir = opendir(path);
    if (dir == NULL) {
        return;
    }

    slen = ngx_strlen(suffix);

    while ((de = readdir(dir)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len <= PG_JOB_ID_LEN + slen || de->d_name[PG_JOB_ID_LEN] != '.'
            || ngx_strcmp(de->d_name + len - slen, suffix) != 0
            || !pg_job_id_valid(de->d_name, PG_JOB_ID_LEN))
        {
            continue;
        }

        ngx_memcpy(id, de->d_name, PG_JOB_ID_LEN);
        id[PG_JOB_ID_LEN] = '\0';

        ngx_http_podgen_job_path(path, "locks", id, "");

        if (access(path, F_OK) == 0 || errno != ENOENT) {
            continue;
        }

        ngx_http_podgen_job_path(path, sub, de->d_name, "");
        (void) unlink(path);
    }

    (void) closedir(dir);
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

    ngx_http_podgen_job_store_orphans("parts", ".wav");
    ngx_http_podgen_job_store_orphans("audio", ".tmp");

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


/* ---- the copies the fleet may not have (Redis mode) --------------------- */


ngx_int_t
ngx_http_podgen_job_store_mark(const char *id)
{
    int   fd;
    char  path[NGX_MAX_PATH];

    ngx_http_podgen_job_path(path, "sync", id, "");

    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        return NGX_ERROR;
    }

    (void) close(fd);

    return NGX_OK;
}


void
ngx_http_podgen_job_store_unmark(const char *id)
{
    char  path[NGX_MAX_PATH];

    /* the fleet holds it final: the accepting node's copy goes too */

    ngx_http_podgen_job_path(path, "accepted", id, ".json");
    (void) unlink(path);
    ngx_http_podgen_job_path(path, "sync", id, "");
    (void) unlink(path);
}


void
ngx_http_podgen_job_store_remove(const char *id)
{
    ngx_uint_t  f;
    char        path[NGX_MAX_PATH], ext[16];

    /* the lock file first, as DELETE does */

    ngx_http_podgen_job_path(path, "locks", id, "");
    (void) unlink(path);
    ngx_http_podgen_job_path(path, "jobs", id, ".json");
    (void) unlink(path);

    for (f = 0; f < PG_FMT_UNKNOWN; f++) {
        ngx_sprintf((u_char *) ext, ".%s%Z", pg_format_name((pg_format_t) f));
        ngx_http_podgen_job_path(path, "audio", id, ext);
        (void) unlink(path);

        /* a render a dead worker left */
        ngx_sprintf((u_char *) ext, ".%s.tmp%Z",
                    pg_format_name((pg_format_t) f));
        ngx_http_podgen_job_path(path, "audio", id, ext);
        (void) unlink(path);
    }

    ngx_http_podgen_job_store_remove_parts(id, 0);
    ngx_http_podgen_job_store_unmark(id);
}


static int
ngx_http_podgen_job_store_cmp(const void *a, const void *b)
{
    return ngx_strcmp((const char *) a, (const char *) b);
}


/* the whole of a small file, malloc()ed; NULL if there is none */

static u_char *
ngx_http_podgen_job_store_slurp(const char *path, size_t *len)
{
    int          fd;
    u_char      *raw;
    ssize_t      n;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return NULL;
    }

    raw = NULL;

    if (fstat(fd, &st) == 0 && st.st_size < 64 * 1024 * 1024) {
        raw = malloc(st.st_size + 1);
    }

    if (raw) {
        n = read(fd, raw, st.st_size);

        if (n != st.st_size) {
            free(raw);
            raw = NULL;

        } else {
            *len = n;
        }
    }

    (void) close(fd);

    return raw;
}


void
ngx_http_podgen_job_store_unsynced(ngx_http_podgen_job_sync_t *sc)
{
    int                               fd;
    DIR                              *dir;
    char                            (*names)[PG_JOB_ID_LEN + 1];
    size_t                            len, n, cap, i;
    ngx_uint_t                        d;
    u_char                           *raw;
    pg_error_t                        err;
    struct dirent                    *de;
    ngx_http_podgen_job_sync_item_t  *it;
    char                              path[NGX_MAX_PATH];

    /* the ids after the cursor, in order (ids sort by time): the marked
     * ones, or every record here and every accepted one */

    names = NULL;
    n = 0;
    cap = 0;

    for (d = 0; d < (sc->all ? 2 : 1); d++) {
        ngx_http_podgen_job_path(path, sc->all ? (d ? "accepted" : "jobs")
                                               : "sync", "", "");

        dir = opendir(path);
        if (dir == NULL) {
            continue;
        }

        while ((de = readdir(dir)) != NULL) {
            len = ngx_strlen(de->d_name);

            if (len != PG_JOB_ID_LEN + (sc->all ? 5 : 0)
                || !pg_job_id_valid(de->d_name, PG_JOB_ID_LEN)
                || ngx_strncmp(de->d_name, sc->cursor, PG_JOB_ID_LEN) <= 0)
            {
                continue;
            }

            if (n == cap) {
                void  *more;

                cap = cap ? 2 * cap : 64;
                more = realloc(names, cap * sizeof(names[0]));
                if (more == NULL) {
                    break;
                }

                names = more;
            }

            ngx_memcpy(names[n], de->d_name, PG_JOB_ID_LEN);
            names[n][PG_JOB_ID_LEN] = '\0';
            n++;
        }

        (void) closedir(dir);
    }

    if (n) {
        qsort(names, n, sizeof(names[0]), ngx_http_podgen_job_store_cmp);
    }

    sc->end = (n <= sc->room);

    for (i = 0; i < n && sc->n < sc->room; i++) {
        it = &sc->items[sc->n];

        if (i > 0 && ngx_strcmp(names[i], names[i - 1]) == 0) {
            /* in both directories */
            continue;
        }

        ngx_memcpy(sc->cursor, names[i], PG_JOB_ID_LEN + 1);

        /* the copy of a job that ran here, else the accepted one */

        ngx_http_podgen_job_path(path, "jobs", names[i], ".json");

        raw = ngx_http_podgen_job_store_slurp(path, &len);

        if (raw == NULL) {
            ngx_http_podgen_job_path(path, "accepted", names[i], ".json");
            raw = ngx_http_podgen_job_store_slurp(path, &len);
        }

        if (raw == NULL) {
            /* no copy here any more (deleted): nothing to share */
            if (!sc->all) {
                ngx_http_podgen_job_store_unmark(names[i]);
            }

            continue;
        }

        if (pg_job_from_json((char *) raw, len, &it->rec, &err) != 0
            || ngx_strcmp(it->rec.id, names[i]) != 0)
        {
            pg_job_free(&it->rec);
            free(raw);
            continue;
        }

        it->json.data = raw;
        it->json.len = len;
        it->json.cap = len + 1;

        /* unfinished, and nobody here runs it (no lock file, or one
         * nobody holds): the fleet must */

        it->orphan = 0;

        if (it->rec.status == PG_JOB_QUEUED
            || it->rec.status == PG_JOB_RUNNING)
        {
            ngx_http_podgen_job_path(path, "locks", names[i], "");

            fd = open(path, O_RDWR | O_CLOEXEC);

            if (fd == -1) {
                it->orphan = (errno == ENOENT);

            } else {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                    it->orphan = 1;
                }

                (void) close(fd);
            }
        }

        sc->n++;
    }

    if (i < n) {
        sc->end = 0;
    }

    free(names);
}


/* The fleet's epoch as the store knows it: read at a worker's start. */

void
ngx_http_podgen_job_store_epoch(char *buf, size_t size)
{
    int      fd;
    ssize_t  n;
    char     path[NGX_MAX_PATH];

    buf[0] = '\0';

    ngx_snprintf((u_char *) path, NGX_MAX_PATH, "%V/epoch%Z",
                 &ngx_http_podgen_job_store);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }

    n = read(fd, buf, size - 1);
    (void) close(fd);

    buf[(n > 0) ? n : 0] = '\0';
}


void
ngx_http_podgen_job_store_set_epoch(const char *epoch)
{
    char  path[NGX_MAX_PATH];

    ngx_snprintf((u_char *) path, NGX_MAX_PATH, "%V/epoch%Z",
                 &ngx_http_podgen_job_store);

    (void) ngx_http_podgen_job_write_file(path, (u_char *) epoch,
                                          ngx_strlen(epoch));
}
