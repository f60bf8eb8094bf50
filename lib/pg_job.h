/*
 * podgen core: the durable record of a podcast (or batch) job, and its
 * public status object (plain C, no nginx).
 *
 * A record is one JSON object, kept in a file (embedded mode) or in Redis;
 * every field of pg_job_t is in it.  pg_job_from_json() trusts nothing of
 * what it reads: a record may be truncated, hand-edited or written by
 * another version.
 */

#ifndef PG_JOB_H
#define PG_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "pg_buf.h"
#include "pg_json.h"


#define PG_JOB_ID_LEN     24    /* "pod_", 12 hex (ms time), 8 hex (random) */
#define PG_JOB_MS_MAX     0xffffffffffffLL      /* 12 hex digits of ms */
#define PG_JOB_TIME_MAX   1e9   /* seconds: a sane bound of any time field */


typedef enum {
    PG_JOB_QUEUED = 0,
    PG_JOB_RUNNING,
    PG_JOB_COMPLETED,
    PG_JOB_FAILED
} pg_job_status_t;

typedef enum {
    PG_JOB_PODCAST = 0,
    PG_JOB_BATCH
} pg_job_kind_t;


/* A word of a segment, in seconds from the segment's start. */
typedef struct {
    char               *word;
    double              start;
    double              end;
} pg_job_word_t;


typedef struct {
    char               *speaker;        /* host name */
    char               *voice;          /* voice name, or NULL */
    char               *text;
    char               *audio_key;      /* 64 hex chars of the segment's
                                           cached wav, or NULL */
    double              start;          /* seconds in the episode, -1 until
                                           rendered */
    double              end;
    char               *chapter;        /* a chapter starts here: its
                                           title, or NULL */
    size_t              nwords;         /* known once its audio is made */
    pg_job_word_t      *words;
} pg_job_segment_t;


typedef struct {
    char                id[PG_JOB_ID_LEN + 1];
    pg_job_kind_t       kind;
    pg_job_status_t     status;
    uint64_t            version;        /* +1 on every write */
    int64_t             created_ms;     /* unix ms */
    int64_t             updated_ms;
    char               *title;          /* NULL until known */
    char               *request;        /* the client's request body (JSON
                                           text), verbatim */
    char               *format;         /* "mp3" ... */
    double              speed;
    size_t              done;           /* progress */
    size_t              total;
    char               *error_code;     /* NULL unless failed */
    char               *error_message;
    char               *engine;         /* "builtin" | "llm", NULL until
                                           known */
    double              duration_s;     /* 0 until completed */
    size_t              audio_bytes;
    unsigned            loudness:1;     /* measured when rendered: the */
    double              loudness_lufs;  /* joined segments' integrated */
    double              loudness_peak;  /* loudness, true peak (dBTP; */
    double              loudness_gain;  /* -inf: silence), gain applied */
    size_t              nsegments;
    pg_job_segment_t   *segments;
    char               *result;         /* batch: results JSON text,
                                           verbatim, or NULL */
} pg_job_t;


/*
 * Writes PG_JOB_ID_LEN + 1 bytes to id: "pod_" ("bat_" for a batch) + 12
 * lowercase hex digits of now_ms (its low 48 bits) + 8 of rnd.  Ids of a
 * kind sort by creation time.
 */
void pg_job_id_make(char *id, pg_job_kind_t kind, int64_t now_ms,
    uint32_t rnd);

/*
 * 1 when s[0..len) is exactly a valid id ("pod_" or "bat_" and 20
 * lowercase hex digits), else 0.  Safe for anything taken from a URI.
 */
int pg_job_id_valid(const char *s, size_t len);

/* "queued", "running", "completed", "failed"; NULL when out of range. */
const char *pg_job_status_name(pg_job_status_t s);

/* The reverse of pg_job_status_name(): 0 and *s, or -1 when unknown. */
int pg_job_status_from_name(const char *name, size_t len,
    pg_job_status_t *s);

/*
 * Appends the record: one JSON object with every field of the job
 * (request and result stored as JSON strings).  A job that
 * pg_job_from_json() would refuse (see below) is not written: what is
 * written always reads back equal.  Returns 0, or -1 when out of memory
 * or when the job breaks a rule (nothing is appended then).
 */
int pg_job_to_json(const pg_job_t *job, pg_buf_t *out);

/*
 * Parses a record.  Required: id (a valid id), status (a known name),
 * created_ms.  Optional, with their defaults: kind (that of the id; must
 * match it), version (0), updated_ms (created_ms), done and total (0,
 * done <= total), audio_bytes (0), speed (1; 0..100), duration_s (0;
 * 0..PG_JOB_TIME_MAX), strings or null (NULL): title, request, format
 * ([a-z0-9]{1,16}), error_code, error_message, engine ("builtin" or
 * "llm"), result (a string that holds one JSON value, nested at most
 * 64 deep); segments (an array
 * of {speaker, text: strings; voice: string or null; audio_key: null or
 * 64 lowercase hex digits; start, end: -1..PG_JOB_TIME_MAX, -1 by
 * default; chapter: a string or null; words: an array of [word, start, end], a non-empty string and
 * 0 <= start <= end <= PG_JOB_TIME_MAX, each word starting at or after
 * the end of the one before, at most 100000).  Integers must be JSON
 * integers; times in ms lie in
 * 0..PG_JOB_MS_MAX; every string must be UTF-8 once decoded (an escaped
 * lone surrogate is not).  Anything else -> -1 with *err set (status 500,
 * type "server_error", code "corrupt_record", param the field).  Unknown
 * fields are ignored.  On success the caller frees with pg_job_free(); on
 * failure *job is zeroed.  Safe on any input.
 */
int pg_job_from_json(const char *data, size_t len, pg_job_t *job,
    pg_error_t *err);

/* Frees the members and leaves *job zeroed. */
void pg_job_free(pg_job_t *job);

/*
 * Deep-copies n segments into the job, replacing any it has (for the
 * runner).  0, or -1 when out of memory (the job is then unchanged).
 */
int pg_job_set_segments(pg_job_t *job, const pg_job_segment_t *segs,
    size_t n);

/*
 * Deep-copies n words into the segment, replacing any it has.  0, or -1
 * when out of memory (the segment is then unchanged).
 */
int pg_job_set_words(pg_job_segment_t *seg, const pg_job_word_t *words,
    size_t n);

/*
 * The runner's way to change a field: the job owns its strings.
 * set_string: *field becomes a copy of s (NULL: none).  set_failed: the
 * status is failed, with the error code and message (NULL: defaults).
 * set_result: a copy of len bytes of results JSON.  Each returns 0, or
 * -1 when out of memory (the job is then unchanged).
 */
int pg_job_set_string(char **field, const char *s);
int pg_job_set_failed(pg_job_t *job, const char *code, const char *message);
int pg_job_set_result(pg_job_t *job, const char *data, size_t len);

/*
 * Appends the public status object (GET /v1/podcasts/{id} and the list):
 *
 *   {"id","object":"podcast"|"batch","status","progress":{"done","total"},
 *    "error":null|{"code","message"} (failed only),"title":null|"...",
 *    "format":null|"...","duration_s":null|X (a completed podcast only),
 *    "created_at":unix seconds,"updated_at":unix seconds,
 *    "links":{"self","audio","transcript_vtt","transcript_json",
 *             "transcript_srt","chapters"}}
 *
 * where the links are base + "/" + id [+ "/audio", "/transcript.vtt",
 * "/transcript.json", "/transcript.srt", "/chapters.json"], base e.g.
 * "/v1/podcasts".  A batch has only "self"
 * in its links, and "results" (the result JSON inlined verbatim, or null)
 * when completed.  Returns 0, or -1 when out of memory or when the job
 * cannot be shown (status out of range, result not JSON, not UTF-8).
 */
int pg_job_public_json(const pg_job_t *job, const char *base,
    pg_buf_t *out);

/*
 * The episode's loudness, "loudness":{"integrated_lufs","true_peak_dbtp",
 * "gain_db"} (a value null for silence) or null, as the value of a key
 * already written to g (a yajl_gen).  0 or -1.
 */
int pg_job_gen_loudness(void *g, const pg_job_t *job);

#endif /* PG_JOB_H */
