/*
 * podgen: the job store on local disk — files, locks and the scan for
 * unfinished jobs.
 *
 *   {store}/jobs/{id}.json    a job's record, replaced by rename
 *   {store}/locks/{id}        while the job is unfinished: held with
 *                             flock() by the worker that runs it
 *   {store}/audio/{id}.{ext}  a completed podcast's episode (rendered
 *                             into {id}.{ext}.tmp, renamed when whole)
 *   {store}/parts/{id}.{i}.wav  a running podcast's segment i, until its
 *                             episode is rendered (the scan removes those
 *                             of jobs that are no longer running)
 *   {store}/accepted/{id}.json  Redis mode: a job this node accepted for
 *                             the fleet, kept until the fleet holds it
 *                             finished (republished if Redis loses it)
 *   {store}/epoch             Redis mode: the fleet's epoch last seen
 *   {store}/sync/{id}         Redis mode: the record here may be newer
 *                             than the fleet's (made before the record is
 *                             written, removed once Redis holds it final)
 *
 * A worker that dies releases its locks with it; the scan finds unlocked
 * unfinished jobs, so an accepted job is never lost across restarts,
 * reloads and crashes.  Everything here that touches the disk runs on a
 * pool thread (the functions say which).
 */

#ifndef NGX_HTTP_PODGEN_JOB_STORE_H
#define NGX_HTTP_PODGEN_JOB_STORE_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "pg_buf.h"
#include "pg_job.h"


/* a record to write (claim: a new job, its lock taken first) */
typedef struct {
    pg_buf_t       json;
    int            lock_fd;         /* out: the lock, when claimed */
    int            err;             /* out: errno */
    unsigned       claim:1;
    unsigned       accept:1;        /* Redis mode, a new job for the
                                       fleet: to accepted/ */
    unsigned       mark:1;          /* Redis mode: marked as not known
                                       to the fleet (sync/) */
    unsigned       final:1;         /* finished: the lock file goes */
    unsigned       deleted:1;       /* out: deleted meanwhile */
    char           id[PG_JOB_ID_LEN + 1];
} ngx_http_podgen_job_store_write_t;


/* unfinished jobs found, their locks taken */
typedef struct {
    ngx_uint_t     room;
    ngx_uint_t     n;
    pg_job_t      *recs;
    int           *fds;
} ngx_http_podgen_job_scan_t;


/* records of the store to share with the fleet (Redis mode) */
typedef struct {
    pg_job_t       rec;
    pg_buf_t       json;
    unsigned       orphan:1;        /* unfinished, run by nobody here */
} ngx_http_podgen_job_sync_item_t;

typedef struct {
    ngx_uint_t                        all;     /* every record, not only
                                                  the marked ones */
    char                              cursor[PG_JOB_ID_LEN + 1];
    ngx_uint_t                        room;
    ngx_uint_t                        n;
    ngx_uint_t                        end;     /* out: none after these */
    ngx_http_podgen_job_sync_item_t  *items;
} ngx_http_podgen_job_sync_t;


/* Configuration: the store's directories, made by nginx at start. */
ngx_int_t ngx_http_podgen_job_store_paths(ngx_conf_t *cf, ngx_str_t *store);

/* In a worker's init_process. */
void ngx_http_podgen_job_store_init(ngx_str_t *store);

/* Paths in the store; buf has NGX_MAX_PATH bytes. */
void ngx_http_podgen_job_path(char *buf, const char *dir, const char *id,
    const char *ext);

/* A small file into pool: NGX_OK, NGX_DECLINED (none), NGX_ERROR. */
ngx_int_t ngx_http_podgen_job_read_file(ngx_pool_t *pool, const char *path,
    u_char **data, size_t *len, ngx_log_t *log);

/* Thread: data to path, by rename of a temporary file; errno is set. */
ngx_int_t ngx_http_podgen_job_write_file(const char *path, u_char *data,
    size_t len);

/* Thread: a record write (see the type). */
void ngx_http_podgen_job_store_write(ngx_http_podgen_job_store_write_t *w);

/* Thread: segment i's audio to {store}/parts/{id}.{i}.wav; errno set. */
ngx_int_t ngx_http_podgen_job_store_part(const char *id, ngx_uint_t i,
    u_char *data, size_t len);

/*
 * Thread: segment i's audio back, malloc'd (free() it); NGX_ERROR with
 * error set.
 */
ngx_int_t ngx_http_podgen_job_store_read_part(const char *id, ngx_uint_t i,
    u_char **data, size_t *len, char *error, size_t size);

/* Thread: 1 when the job was deleted (DELETE removes the lock first). */
ngx_uint_t ngx_http_podgen_job_store_deleted(const char *id);

/* Thread: segment i's file. */
void ngx_http_podgen_job_store_remove_part(const char *id, ngx_uint_t i);

/* Thread: the segments' files of a job (n of them; 0: all there are). */
void ngx_http_podgen_job_store_remove_parts(const char *id, ngx_uint_t n);

/*
 * Thread: the episode's temporary file {store}/audio/{id}{ext}.tmp, opened
 * for writing (-1 with error set), then, written, renamed into place by
 * episode_done(): NGX_ERROR with error set (also when the job was deleted
 * meanwhile: "deleted").  ok 0: the temporary file is removed.
 */
int ngx_http_podgen_job_store_episode_open(const char *id, const char *ext,
    char *error, size_t size);
ngx_int_t ngx_http_podgen_job_store_episode_done(const char *id,
    const char *ext, int fd, ngx_uint_t ok, char *error, size_t size);

/* Thread: unfinished jobs nobody runs, up to sc->room, locks taken. */
void ngx_http_podgen_job_store_scan(ngx_http_podgen_job_scan_t *sc);

/* Thread: marks a record as not known to the fleet / known final (the
 * accepted copy goes then). */
ngx_int_t ngx_http_podgen_job_store_mark(const char *id);
void ngx_http_podgen_job_store_unmark(const char *id);

/* Thread: every file of a job (deleted elsewhere). */
void ngx_http_podgen_job_store_remove(const char *id);

/*
 * Thread: up to sc->room records after sc->cursor (which moves on), the
 * marked ones or, with sc->all, every one.
 */
void ngx_http_podgen_job_store_unsynced(ngx_http_podgen_job_sync_t *sc);

/*
 * The fleet's epoch as the store last knew it ({store}/epoch): read in a
 * worker's init_process (buf "" if none); set on a pool thread.
 */
void ngx_http_podgen_job_store_epoch(char *buf, size_t size);
void ngx_http_podgen_job_store_set_epoch(const char *epoch);

#endif /* NGX_HTTP_PODGEN_JOB_STORE_H */
