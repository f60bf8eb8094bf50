/*
 * podgen core: job records.
 *
 * One set of rules says what a record may hold (pg_job_check()); the
 * reader enforces it on what it parsed, and the writer on what it is asked
 * to write, so that a record written is always a record that reads back.
 */

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "pg_job.h"
#include "pg_key.h"
#include "pg_text.h"


#define PG_JOB_PREFIX_LEN   4
#define PG_JOB_FORMAT_MAX   16          /* bytes of a format name */
#define PG_JOB_SPEED_MAX    100.0
#define PG_JOB_RESULT_DEPTH 64          /* nesting of a batch's result */

#define PG_NELEMS(a)        (sizeof(a) / sizeof((a)[0]))


static int pg_job_check(const pg_job_t *job, pg_error_t *err);
static int pg_job_hex(const char *s, size_t len);
static int pg_job_json_valid(const char *s);
static int pg_job_json_open(void *ctx);
static int pg_job_json_close(void *ctx);
static void pg_job_corrupt(pg_error_t *err, const char *param,
    const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static int pg_job_get_string(yajl_val obj, const char *key, int required,
    char **out, pg_error_t *err);
static int pg_job_get_integer(yajl_val obj, const char *key, int required,
    long long min, long long max, long long *out, pg_error_t *err);
static int pg_job_get_double(yajl_val obj, const char *key, double *out,
    pg_error_t *err);
static int pg_job_parse_segments(yajl_val obj, pg_job_t *job,
    pg_error_t *err);
static void pg_job_free_segments(pg_job_segment_t *segs, size_t n);
static void pg_job_free_words(pg_job_word_t *words, size_t n);
static int pg_job_parse_words(yajl_val item, pg_job_segment_t *seg,
    size_t i, pg_error_t *err);
static int pg_job_dup(const char *s, char **out);
static int pg_job_gen_integer(yajl_gen g, unsigned long long n);
static int pg_job_gen_double(yajl_gen g, const char *fmt, double d);
static int pg_job_gen_link(yajl_gen g, pg_buf_t *tmp, const char *base,
    const char *id, const char *suffix);
static long long pg_job_seconds(int64_t ms);


static const char  *pg_job_status_names[] = {
    "queued", "running", "completed", "failed"
};

static const char  *pg_job_kind_names[] = { "podcast", "batch" };
static const char  *pg_job_prefixes[] = { "pod_", "bat_" };

static const char  pg_job_hex_digits[] = "0123456789abcdef";


/* ---- ids and names ------------------------------------------------------ */


void
pg_job_id_make(char *id, pg_job_kind_t kind, int64_t now_ms, uint32_t rnd)
{
    int       i;
    uint64_t  t;

    memcpy(id, pg_job_prefixes[kind == PG_JOB_BATCH], PG_JOB_PREFIX_LEN);

    t = (uint64_t) now_ms & (uint64_t) PG_JOB_MS_MAX;

    for (i = 11; i >= 0; i--) {
        id[PG_JOB_PREFIX_LEN + i] = pg_job_hex_digits[t & 0xf];
        t >>= 4;
    }

    for (i = 7; i >= 0; i--) {
        id[PG_JOB_PREFIX_LEN + 12 + i] = pg_job_hex_digits[rnd & 0xf];
        rnd >>= 4;
    }

    id[PG_JOB_ID_LEN] = '\0';
}


int
pg_job_id_valid(const char *s, size_t len)
{
    if (s == NULL || len != PG_JOB_ID_LEN) {
        return 0;
    }

    if (memcmp(s, pg_job_prefixes[0], PG_JOB_PREFIX_LEN) != 0
        && memcmp(s, pg_job_prefixes[1], PG_JOB_PREFIX_LEN) != 0)
    {
        return 0;
    }

    return pg_job_hex(s + PG_JOB_PREFIX_LEN, len - PG_JOB_PREFIX_LEN);
}


const char *
pg_job_status_name(pg_job_status_t s)
{
    if ((unsigned) s >= PG_NELEMS(pg_job_status_names)) {
        return NULL;
    }

    return pg_job_status_names[s];
}


int
pg_job_status_from_name(const char *name, size_t len, pg_job_status_t *s)
{
    size_t  i;

    if (name == NULL) {
        return -1;
    }

    for (i = 0; i < PG_NELEMS(pg_job_status_names); i++) {
        if (strlen(pg_job_status_names[i]) == len
            && memcmp(pg_job_status_names[i], name, len) == 0)
        {
            *s = (pg_job_status_t) i;
            return 0;
        }
    }

    return -1;
}


/* 1 when s[0..len) is all lowercase hex digits (and len > 0) */
static int
pg_job_hex(const char *s, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/* ---- the rules of a record ---------------------------------------------- */


static int
pg_job_check(const pg_job_t *job, pg_error_t *err)
{
    size_t                   i, k, len;
    const pg_job_word_t     *w;
    const pg_job_segment_t  *seg;

    len = strnlen(job->id, sizeof(job->id));

    if (!pg_job_id_valid(job->id, len)) {
        pg_job_corrupt(err, "id", "the id is not a job id");
        return -1;
    }

    if ((unsigned) job->kind >= PG_NELEMS(pg_job_kind_names)
        || memcmp(job->id, pg_job_prefixes[job->kind], PG_JOB_PREFIX_LEN)
           != 0)
    {
        pg_job_corrupt(err, "kind", "the kind does not match the id");
        return -1;
    }

    if (pg_job_status_name(job->status) == NULL) {
        pg_job_corrupt(err, "status", "unknown status");
        return -1;
    }

    if (job->version > (uint64_t) LLONG_MAX) {
        pg_job_corrupt(err, "version", "the version is out of range");
        return -1;
    }

    if (job->created_ms < 0 || job->created_ms > PG_JOB_MS_MAX) {
        pg_job_corrupt(err, "created_ms", "the creation time is out of range");
        return -1;
    }

    if (job->updated_ms < 0 || job->updated_ms > PG_JOB_MS_MAX) {
        pg_job_corrupt(err, "updated_ms", "the update time is out of range");
        return -1;
    }

    /* the format becomes a file extension and a MIME type */

    if (job->format != NULL) {
        len = strlen(job->format);

        if (len == 0 || len > PG_JOB_FORMAT_MAX) {
            pg_job_corrupt(err, "format", "the format is not a format name");
            return -1;
        }

        for (i = 0; i < len; i++) {
            if (!((job->format[i] >= 'a' && job->format[i] <= 'z')
                  || (job->format[i] >= '0' && job->format[i] <= '9')))
            {
                pg_job_corrupt(err, "format",
                               "the format is not a format name");
                return -1;
            }
        }
    }

    if (!(job->speed >= 0.0 && job->speed <= PG_JOB_SPEED_MAX)) {
        pg_job_corrupt(err, "speed", "the speed is out of range");
        return -1;
    }

    if (job->done > job->total || job->total > (size_t) LLONG_MAX) {
        pg_job_corrupt(err, "done", "the progress is out of range");
        return -1;
    }

    if (job->engine != NULL && strcmp(job->engine, "builtin") != 0
        && strcmp(job->engine, "llm") != 0)
    {
        pg_job_corrupt(err, "engine", "unknown engine");
        return -1;
    }

    if (!(job->duration_s >= 0.0 && job->duration_s <= PG_JOB_TIME_MAX)) {
        pg_job_corrupt(err, "duration_s", "the duration is out of range");
        return -1;
    }

    if (job->audio_bytes > (size_t) LLONG_MAX) {
        pg_job_corrupt(err, "audio_bytes", "the size is out of range");
        return -1;
    }

    if (job->nsegments > 0 && job->segments == NULL) {
        pg_job_corrupt(err, "segments", "the segments are missing");
        return -1;
    }

    for (i = 0; i < job->nsegments; i++) {
        seg = &job->segments[i];

        if (seg->speaker == NULL || seg->text == NULL) {
            pg_job_corrupt(err, "segments",
                           "segments[%zu] has no speaker or no text", i);
            return -1;
        }

        /* the key names a file of the cache */

        if (seg->audio_key != NULL
            && !(strlen(seg->audio_key) == PG_KEY_LEN
                 && pg_job_hex(seg->audio_key, PG_KEY_LEN)))
        {
            pg_job_corrupt(err, "segments",
                           "segments[%zu].audio_key is not a key", i);
            return -1;
        }

        if (!(seg->start >= -1.0 && seg->start <= PG_JOB_TIME_MAX
              && seg->end >= -1.0 && seg->end <= PG_JOB_TIME_MAX))
        {
            pg_job_corrupt(err, "segments",
                           "segments[%zu] has a time out of range", i);
            return -1;
        }

        for (k = 0; k < seg->nwords; k++) {
            w = &seg->words[k];

            if (w->word == NULL || w->word[0] == '\0'
                || !pg_utf8_valid(w->word, strlen(w->word))
                || !(w->start >= 0 && w->start <= w->end
                     && w->end <= PG_JOB_TIME_MAX)
                || (k > 0 && w->start < seg->words[k - 1].end))
            {
                pg_job_corrupt(err, "segments",
                               "segments[%zu].words[%zu] is not a word", i,
                               k);
                return -1;
            }
        }
    }

    /* the result is inlined in replies: it must be one JSON value */

    if (job->result != NULL && !pg_job_json_valid(job->result)) {
        pg_job_corrupt(err, "result", "the result is not JSON");
        return -1;
    }

    return 0;
}


/*
 * 1 when s is exactly one JSON value nested at most PG_JOB_RESULT_DEPTH
 * deep (whoever reads it back as a tree may recurse), else 0.
 */
static int
pg_job_json_valid(const char *s)
{
    int          rc, depth;
    yajl_handle  h;

    static const yajl_callbacks  callbacks = {
        NULL, NULL, NULL, NULL, NULL, NULL,
        pg_job_json_open, NULL, pg_job_json_close,
        pg_job_json_open, pg_job_json_close
    };

    depth = 0;

    h = yajl_alloc(&callbacks, NULL, &depth);
    if (h == NULL) {
        return 0;
    }

    rc = yajl_parse(h, (const unsigned char *) s, strlen(s)) == yajl_status_ok
         && yajl_complete_parse(h) == yajl_status_ok;

    yajl_free(h);

    return rc;
}


static int
pg_job_json_open(void *ctx)
{
    int  *depth = ctx;

    return ++*depth <= PG_JOB_RESULT_DEPTH;
}


static int
pg_job_json_close(void *ctx)
{
    int  *depth = ctx;

    --*depth;

    return 1;
}


static void
pg_job_corrupt(pg_error_t *err, const char *param, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL) {
        return;
    }

    err->status = 500;
    err->type = "server_error";
    err->param = param;
    err->code = "corrupt_record";

    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);
}


/* ---- the record: writing ------------------------------------------------ */


int
pg_job_to_json(const pg_job_t *job, pg_buf_t *out)
{
    int                      rc;
    size_t                   i, k;
    yajl_gen                 g;
    const pg_job_segment_t  *seg;

    if (pg_job_check(job, NULL) != 0) {
        return -1;
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);

#define PG_KEY(k)  pg_json_gen_string(g, k)

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("id") || pg_json_gen_string(g, job->id)
         || PG_KEY("kind")
         || pg_json_gen_string(g, pg_job_kind_names[job->kind])
         || PG_KEY("status")
         || pg_json_gen_string(g, pg_job_status_name(job->status))
         || PG_KEY("version") || pg_job_gen_integer(g, job->version)
         || PG_KEY("created_ms")
         || pg_job_gen_integer(g, (unsigned long long) job->created_ms)
         || PG_KEY("updated_ms")
         || pg_job_gen_integer(g, (unsigned long long) job->updated_ms)
         || PG_KEY("title") || pg_json_gen_string(g, job->title)
         || PG_KEY("request") || pg_json_gen_string(g, job->request)
         || PG_KEY("format") || pg_json_gen_string(g, job->format)
         || PG_KEY("speed") || pg_job_gen_double(g, "%.17g", job->speed)
         || PG_KEY("done") || pg_job_gen_integer(g, job->done)
         || PG_KEY("total") || pg_job_gen_integer(g, job->total)
         || PG_KEY("error_code") || pg_json_gen_string(g, job->error_code)
         || PG_KEY("error_message")
         || pg_json_gen_string(g, job->error_message)
         || PG_KEY("engine") || pg_json_gen_string(g, job->engine)
         || PG_KEY("duration_s")
         || pg_job_gen_double(g, "%.17g", job->duration_s)
         || PG_KEY("audio_bytes") || pg_job_gen_integer(g, job->audio_bytes)
         || PG_KEY("loudness") || pg_job_gen_loudness(g, job)
         || PG_KEY("segments")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (i = 0; i < job->nsegments && !rc; i++) {
        seg = &job->segments[i];

        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_KEY("speaker") || pg_json_gen_string(g, seg->speaker)
             || PG_KEY("voice") || pg_json_gen_string(g, seg->voice)
             || PG_KEY("text") || pg_json_gen_string(g, seg->text)
             || PG_KEY("audio_key") || pg_json_gen_string(g, seg->audio_key)
             || PG_KEY("start") || pg_job_gen_double(g, "%.17g", seg->start)
             || PG_KEY("end") || pg_job_gen_double(g, "%.17g", seg->end)
             || (seg->chapter
                 && (PG_KEY("chapter")
                     || pg_json_gen_string(g, seg->chapter)));

        if (seg->nwords && !rc) {
            rc = PG_KEY("words")
                 || yajl_gen_array_open(g) != yajl_gen_status_ok;

            for (k = 0; k < seg->nwords && !rc; k++) {
                rc = yajl_gen_array_open(g) != yajl_gen_status_ok
                     || pg_json_gen_string(g, seg->words[k].word)
                     || pg_job_gen_double(g, "%.17g", seg->words[k].start)
                     || pg_job_gen_double(g, "%.17g", seg->words[k].end)
                     || yajl_gen_array_close(g) != yajl_gen_status_ok;
            }

            rc = rc || yajl_gen_array_close(g) != yajl_gen_status_ok;
        }

        rc = rc || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    rc = rc
         || yajl_gen_array_close(g) != yajl_gen_status_ok
         || PG_KEY("result") || pg_json_gen_string(g, job->result)
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

#undef PG_KEY

    yajl_gen_free(g);

    return rc ? -1 : 0;
}

static int
pg_job_gen_integer(yajl_gen g, unsigned long long n)
{
    if (n > (unsigned long long) LLONG_MAX) {
        return 1;
    }

    return yajl_gen_integer(g, (long long) n) != yajl_gen_status_ok;
}


/*
 * "%.17g" reads back as the same double; yajl's own "%.20g" would too,
 * but prints 0.1 as 0.10000000000000000555.
 */
static int
pg_job_gen_double(yajl_gen g, const char *fmt, double d)
{
    int   n;
    char  num[64];

    if (!isfinite(d)) {
        return 1;
    }

    n = snprintf(num, sizeof(num), fmt, d);

    if (n <= 0 || (size_t) n >= sizeof(num)) {
        return 1;
    }

    return yajl_gen_number(g, num, (size_t) n) != yajl_gen_status_ok;
}


int
pg_job_gen_loudness(void *gen, const pg_job_t *job)
{
    yajl_gen  g = gen;

    if (!job->loudness) {
        return yajl_gen_null(g) != yajl_gen_status_ok;
    }

#define PG_VAL(d)  (isfinite(d) ? pg_job_gen_double(g, "%.2f", d)             \
                                : yajl_gen_null(g) != yajl_gen_status_ok)

    return yajl_gen_map_open(g) != yajl_gen_status_ok
           || pg_json_gen_string(g, "integrated_lufs")
           || PG_VAL(job->loudness_lufs)
           || pg_json_gen_string(g, "true_peak_dbtp")
           || PG_VAL(job->loudness_peak)
           || pg_json_gen_string(g, "gain_db")
           || PG_VAL(job->loudness_gain)
           || yajl_gen_map_close(g) != yajl_gen_status_ok;

#undef PG_VAL
}


/* ---- the record: reading ------------------------------------------------ */


int
pg_job_from_json(const char *data, size_t len, pg_job_t *job,
    pg_error_t *err)
{
    char        *s;
    size_t       prefix;
    yajl_val     tree, v;
    long long    n;
    pg_error_t   perr;

    memset(job, 0, sizeof(pg_job_t));

    tree = pg_json_parse_object(data, len, PG_JSON_MAX_DEPTH, &perr);
    if (tree == NULL) {
        pg_job_corrupt(err, NULL, "the record cannot be parsed (%.200s)",
                       perr.message);
        return -1;
    }

    /* id and kind */

    v = pg_json_get(tree, "id");

    if (v == NULL || !YAJL_IS_STRING(v)) {
        pg_job_corrupt(err, "id", "the record has no id");
        goto failed;
    }

    s = YAJL_GET_STRING(v);

    if (!pg_job_id_valid(s, strlen(s))) {
        pg_job_corrupt(err, "id", "the id is not a job id");
        goto failed;
    }

    memcpy(job->id, s, PG_JOB_ID_LEN + 1);

    prefix = (memcmp(s, pg_job_prefixes[PG_JOB_BATCH], PG_JOB_PREFIX_LEN)
              == 0);
    job->kind = (pg_job_kind_t) prefix;

    v = pg_json_get(tree, "kind");

    if (v != NULL) {
        s = YAJL_GET_STRING(v);

        if (s == NULL || strcmp(s, pg_job_kind_names[prefix]) != 0) {
            pg_job_corrupt(err, "kind", "the kind does not match the id");
            goto failed;
        }
    }

    /* status */

    v = pg_json_get(tree, "status");

    if (v == NULL || !YAJL_IS_STRING(v)) {
        pg_job_corrupt(err, "status", "the record has no status");
        goto failed;
    }

    s = YAJL_GET_STRING(v);

    if (pg_job_status_from_name(s, strlen(s), &job->status) != 0) {
        pg_job_corrupt(err, "status", "unknown status");
        goto failed;
    }

    /* numbers */

    if (pg_job_get_integer(tree, "created_ms", 1, 0, PG_JOB_MS_MAX, &n, err)
        != 0)
    {
        goto failed;
    }

    job->created_ms = n;

    n = job->created_ms;

    if (pg_job_get_integer(tree, "updated_ms", 0, 0, PG_JOB_MS_MAX, &n, err)
        != 0)
    {
        goto failed;
    }

    job->updated_ms = n;

    n = 0;

    if (pg_job_get_integer(tree, "version", 0, 0, LLONG_MAX, &n, err) != 0) {
        goto failed;
    }

    job->version = (uint64_t) n;

    n = 0;

    if (pg_job_get_integer(tree, "done", 0, 0, LLONG_MAX, &n, err) != 0) {
        goto failed;
    }

    job->done = (size_t) n;

    n = 0;

    if (pg_job_get_integer(tree, "total", 0, 0, LLONG_MAX, &n, err) != 0) {
        goto failed;
    }

    job->total = (size_t) n;

    n = 0;

    if (pg_job_get_integer(tree, "audio_bytes", 0, 0, LLONG_MAX, &n, err)
        != 0)
    {
        goto failed;
    }

    job->audio_bytes = (size_t) n;

    job->speed = 1.0;

    if (pg_job_get_double(tree, "speed", &job->speed, err) != 0
        || pg_job_get_double(tree, "duration_s", &job->duration_s, err) != 0)
    {
        goto failed;
    }

    {
        yajl_val  l = pg_json_get(tree, "loudness");

        if (l != NULL && YAJL_IS_OBJECT(l)) {
            job->loudness = 1;
            job->loudness_lufs = -HUGE_VAL;
            job->loudness_peak = -HUGE_VAL;
            job->loudness_gain = 0;

            if (pg_job_get_double(l, "integrated_lufs", &job->loudness_lufs,
                                  err) != 0
                || pg_job_get_double(l, "true_peak_dbtp",
                                     &job->loudness_peak, err) != 0
                || pg_job_get_double(l, "gain_db", &job->loudness_gain, err)
                   != 0)
            {
                goto failed;
            }

        } else if (l != NULL && !YAJL_IS_NULL(l)) {
            pg_job_corrupt(err, "loudness", "'loudness' is not an object");
            goto failed;
        }
    }

    /* strings */

    if (pg_job_get_string(tree, "title", 0, &job->title, err) != 0
        || pg_job_get_string(tree, "request", 0, &job->request, err) != 0
        || pg_job_get_string(tree, "format", 0, &job->format, err) != 0
        || pg_job_get_string(tree, "error_code", 0, &job->error_code, err)
           != 0
        || pg_job_get_string(tree, "error_message", 0, &job->error_message,
                             err) != 0
        || pg_job_get_string(tree, "engine", 0, &job->engine, err) != 0
        || pg_job_get_string(tree, "result", 0, &job->result, err) != 0)
    {
        goto failed;
    }

    if (pg_job_parse_segments(tree, job, err) != 0) {
        goto failed;
    }

    if (pg_job_check(job, err) != 0) {
        goto failed;
    }

    yajl_tree_free(tree);

    return 0;

failed:

    yajl_tree_free(tree);
    pg_job_free(job);

    return -1;
}


/* A string or null (NULL) member; absent is NULL unless required. */
static int
pg_job_get_string(yajl_val obj, const char *key, int required, char **out,
    pg_error_t *err)
{
    char      *s;
    yajl_val   v;

    *out = NULL;

    v = pg_json_get(obj, key);

    if (v == NULL || YAJL_IS_NULL(v)) {
        if (required) {
            pg_job_corrupt(err, key, "'%s' is missing", key);
            return -1;
        }

        return 0;
    }

    if (!YAJL_IS_STRING(v)) {
        pg_job_corrupt(err, key, "'%s' is not a string", key);
        return -1;
    }

    /*
     * yajl decodes an escaped lone surrogate ("\udc00") into bytes that
     * are not UTF-8, and its generator lets them through
     */

    s = YAJL_GET_STRING(v);

    if (s == NULL || !pg_utf8_valid(s, strlen(s))) {
        pg_job_corrupt(err, key, "'%s' is not UTF-8", key);
        return -1;
    }

    if (pg_job_dup(s, out) != 0) {
        pg_job_corrupt(err, key, "out of memory");
        return -1;
    }

    return 0;
}


/* An integer member in [min, max]; *out is left alone when absent. */
static int
pg_job_get_integer(yajl_val obj, const char *key, int required,
    long long min, long long max, long long *out, pg_error_t *err)
{
    long long  n;
    yajl_val   v;

    v = pg_json_get(obj, key);

    if (v == NULL) {
        if (required) {
            pg_job_corrupt(err, key, "'%s' is missing", key);
            return -1;
        }

        return 0;
    }

    if (!YAJL_IS_INTEGER(v)) {
        pg_job_corrupt(err, key, "'%s' is not an integer", key);
        return -1;
    }

    n = YAJL_GET_INTEGER(v);

    if (n < min || n > max) {
        pg_job_corrupt(err, key, "'%s' is out of range", key);
        return -1;
    }

    *out = n;

    return 0;
}


/* A finite number member; *out is left alone when absent. */
static int
pg_job_get_double(yajl_val obj, const char *key, double *out,
    pg_error_t *err)
{
    double    d;
    yajl_val  v;

    v = pg_json_get(obj, key);

    if (v == NULL) {
        return 0;
    }

    if (!YAJL_IS_NUMBER(v)) {
        pg_job_corrupt(err, key, "'%s' is not a number", key);
        return -1;
    }

    if (YAJL_IS_DOUBLE(v)) {
        d = YAJL_GET_DOUBLE(v);

    } else if (YAJL_IS_INTEGER(v)) {
        d = (double) YAJL_GET_INTEGER(v);

    } else {
        d = NAN;
    }

    if (!isfinite(d)) {
        pg_job_corrupt(err, key, "'%s' is out of range", key);
        return -1;
    }

    *out = d;

    return 0;
}


static int
pg_job_parse_segments(yajl_val obj, pg_job_t *job, pg_error_t *err)
{
    size_t             i, n;
    yajl_val           v, item;
    pg_job_segment_t  *seg;

    v = pg_json_get(obj, "segments");

    if (v == NULL) {
        return 0;
    }

    if (!YAJL_IS_ARRAY(v)) {
        pg_job_corrupt(err, "segments", "'segments' is not an array");
        return -1;
    }

    n = v->u.array.len;

    if (n == 0) {
        return 0;
    }

    job->segments = calloc(n, sizeof(pg_job_segment_t));
    if (job->segments == NULL) {
        pg_job_corrupt(err, "segments", "out of memory");
        return -1;
    }

    for (i = 0; i < n; i++) {
        item = v->u.array.values[i];
        seg = &job->segments[i];

        job->nsegments = i + 1;

        seg->start = -1.0;
        seg->end = -1.0;

        if (!YAJL_IS_OBJECT(item)) {
            pg_job_corrupt(err, "segments", "segments[%zu] is not an object",
                           i);
            return -1;
        }

        if (pg_job_get_string(item, "speaker", 1, &seg->speaker, err) != 0
            || pg_job_get_string(item, "text", 1, &seg->text, err) != 0
            || pg_job_get_string(item, "voice", 0, &seg->voice, err) != 0
            || pg_job_get_string(item, "audio_key", 0, &seg->audio_key, err)
               != 0
            || pg_job_get_double(item, "start", &seg->start, err) != 0
            || pg_job_get_double(item, "end", &seg->end, err) != 0
            || pg_job_get_string(item, "chapter", 0, &seg->chapter, err) != 0
            || pg_job_parse_words(item, seg, i, err) != 0)
        {
            if (err != NULL) {
                err->param = "segments";
            }

            return -1;
        }
    }

    return 0;
}


static int
pg_job_parse_words(yajl_val item, pg_job_segment_t *seg, size_t i,
    pg_error_t *err)
{
    char      *s;
    size_t     k, n;
    yajl_val   v, w, t[3];

    v = pg_json_get(item, "words");

    if (v == NULL || YAJL_IS_NULL(v)) {
        return 0;
    }

    if (!YAJL_IS_ARRAY(v) || v->u.array.len > 100000) {
        pg_job_corrupt(err, "segments", "segments[%zu].words is not an "
                       "array of words", i);
        return -1;
    }

    n = v->u.array.len;

    if (n == 0) {
        return 0;
    }

    seg->words = calloc(n, sizeof(pg_job_word_t));
    if (seg->words == NULL) {
        pg_job_corrupt(err, "segments", "out of memory");
        return -1;
    }

    for (k = 0; k < n; k++) {
        w = v->u.array.values[k];
        seg->nwords = k + 1;

        if (!YAJL_IS_ARRAY(w) || w->u.array.len != 3) {
            goto bad;
        }

        t[0] = w->u.array.values[0];
        t[1] = w->u.array.values[1];
        t[2] = w->u.array.values[2];

        if (!YAJL_IS_STRING(t[0]) || !YAJL_IS_NUMBER(t[1])
            || !YAJL_IS_NUMBER(t[2]))
        {
            goto bad;
        }

        s = YAJL_GET_STRING(t[0]);

        if (s == NULL || !pg_utf8_valid(s, strlen(s))) {
            goto bad;
        }

        seg->words[k].start = YAJL_IS_DOUBLE(t[1]) ? YAJL_GET_DOUBLE(t[1])
                              : YAJL_IS_INTEGER(t[1])
                                ? (double) YAJL_GET_INTEGER(t[1]) : NAN;
        seg->words[k].end = YAJL_IS_DOUBLE(t[2]) ? YAJL_GET_DOUBLE(t[2])
                            : YAJL_IS_INTEGER(t[2])
                              ? (double) YAJL_GET_INTEGER(t[2]) : NAN;

        if (pg_job_dup(s, &seg->words[k].word) != 0) {
            pg_job_corrupt(err, "segments", "out of memory");
            return -1;
        }
    }

    /* the ranges are checked with the rest of the record */

    return 0;

bad:

    pg_job_corrupt(err, "segments", "segments[%zu].words[%zu] is not "
                   "[word, start, end]", i, k);
    return -1;
}


/* ---- memory ------------------------------------------------------------- */


void
pg_job_free(pg_job_t *job)
{
    free(job->title);
    free(job->request);
    free(job->format);
    free(job->error_code);
    free(job->error_message);
    free(job->engine);
    free(job->result);

    pg_job_free_segments(job->segments, job->nsegments);

    memset(job, 0, sizeof(pg_job_t));
}


int
pg_job_set_segments(pg_job_t *job, const pg_job_segment_t *segs, size_t n)
{
    size_t             i;
    pg_job_segment_t  *copy;

    copy = NULL;

    if (n > 0) {
        copy = calloc(n, sizeof(pg_job_segment_t));
        if (copy == NULL) {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        copy[i].start = segs[i].start;
        copy[i].end = segs[i].end;

        if (pg_job_dup(segs[i].speaker, &copy[i].speaker) != 0
            || pg_job_dup(segs[i].voice, &copy[i].voice) != 0
            || pg_job_dup(segs[i].text, &copy[i].text) != 0
            || pg_job_dup(segs[i].audio_key, &copy[i].audio_key) != 0
            || pg_job_dup(segs[i].chapter, &copy[i].chapter) != 0
            || pg_job_set_words(&copy[i], segs[i].words, segs[i].nwords)
               != 0)
        {
            pg_job_free_segments(copy, i + 1);
            return -1;
        }
    }

    pg_job_free_segments(job->segments, job->nsegments);

    job->segments = copy;
    job->nsegments = n;

    return 0;
}


int
pg_job_set_words(pg_job_segment_t *seg, const pg_job_word_t *words,
    size_t n)
{
    size_t          i;
    pg_job_word_t  *copy;

    copy = NULL;

    if (n > 0) {
        copy = calloc(n, sizeof(pg_job_word_t));
        if (copy == NULL) {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        copy[i].start = words[i].start;
        copy[i].end = words[i].end;

        if (pg_job_dup(words[i].word, &copy[i].word) != 0) {
            pg_job_free_words(copy, i + 1);
            return -1;
        }
    }

    pg_job_free_words(seg->words, seg->nwords);

    seg->words = copy;
    seg->nwords = n;

    return 0;
}


static void
pg_job_free_words(pg_job_word_t *words, size_t n)
{
    size_t  i;

    if (words == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        free(words[i].word);
    }

    free(words);
}


static void
pg_job_free_segments(pg_job_segment_t *segs, size_t n)
{
    size_t  i;

    if (segs == NULL) {
        return;
    }

    for (i = 0; i < n; i++) {
        free(segs[i].speaker);
        free(segs[i].voice);
        free(segs[i].text);
        free(segs[i].audio_key);
        free(segs[i].chapter);
        pg_job_free_words(segs[i].words, segs[i].nwords);
    }

    free(segs);
}


/* strdup() that copies NULL as NULL: 0, or -1 when out of memory */
static int
pg_job_dup(const char *s, char **out)
{
    *out = NULL;

    if (s == NULL) {
        return 0;
    }

    *out = strdup(s);

    return *out == NULL ? -1 : 0;
}


int
pg_job_set_string(char **field, const char *s)
{
    char  *copy;

    if (pg_job_dup(s, &copy) != 0) {
        return -1;
    }

    free(*field);
    *field = copy;

    return 0;
}


int
pg_job_set_failed(pg_job_t *job, const char *code, const char *message)
{
    char  *c, *m;

    c = strdup(code ? code : "server_error");
    m = strdup(message ? message : "failed");

    if (c == NULL || m == NULL) {
        free(c);
        free(m);
        return -1;
    }

    free(job->error_code);
    free(job->error_message);

    job->error_code = c;
    job->error_message = m;
    job->status = PG_JOB_FAILED;

    return 0;
}


int
pg_job_set_result(pg_job_t *job, const char *data, size_t len)
{
    char  *copy;

    copy = malloc(len + 1);
    if (copy == NULL) {
        return -1;
    }

    memcpy(copy, data, len);
    copy[len] = '\0';

    free(job->result);
    job->result = copy;

    return 0;
}


/* ---- the public status object ------------------------------------------- */


int
pg_job_public_json(const pg_job_t *job, const char *base, pg_buf_t *out)
{
    int          rc, batch, completed;
    char         id[PG_JOB_ID_LEN + 1];
    size_t       len;
    yajl_gen     g;
    pg_buf_t     tmp;
    const char  *status;

    status = pg_job_status_name(job->status);
    if (status == NULL) {
        return -1;
    }

    len = strnlen(job->id, sizeof(job->id));
    if (len > PG_JOB_ID_LEN) {
        len = PG_JOB_ID_LEN;
    }

    memcpy(id, job->id, len);
    id[len] = '\0';

    batch = (job->kind == PG_JOB_BATCH);
    completed = (job->status == PG_JOB_COMPLETED);

    /* the result is inlined as it is: it must be JSON */

    if (batch && completed && job->result != NULL
        && !pg_job_json_valid(job->result))
    {
        return -1;
    }

    if (base == NULL) {
        base = "";
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);

    memset(&tmp, 0, sizeof(pg_buf_t));

#define PG_KEY(k)  pg_json_gen_string(g, k)

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("id") || pg_json_gen_string(g, id)
         || PG_KEY("object")
         || pg_json_gen_string(g, batch ? "batch" : "podcast")
         || PG_KEY("status") || pg_json_gen_string(g, status)
         || PG_KEY("progress")
         || yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("done") || pg_job_gen_integer(g, job->done)
         || PG_KEY("total") || pg_job_gen_integer(g, job->total)
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || PG_KEY("error");

    if (!rc && job->status == PG_JOB_FAILED) {
        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_KEY("code")
             || pg_json_gen_string(g, job->error_code ? job->error_code
                                                     : "server_error")
             || PG_KEY("message")
             || pg_json_gen_string(g, job->error_message
                                     ? job->error_message
                                     : "the job failed")
             || yajl_gen_map_close(g) != yajl_gen_status_ok;

    } else {
        rc = rc || yajl_gen_null(g) != yajl_gen_status_ok;
    }

    rc = rc
         || PG_KEY("title") || pg_json_gen_string(g, job->title)
         || PG_KEY("format") || pg_json_gen_string(g, job->format)
         || PG_KEY("duration_s");

    if (!rc && completed && !batch) {
        rc = pg_job_gen_double(g, "%.3f", job->duration_s);

    } else {
        rc = rc || yajl_gen_null(g) != yajl_gen_status_ok;
    }

    if (!batch) {
        rc = rc || PG_KEY("loudness") || pg_job_gen_loudness(g, job);
    }

    rc = rc
         || PG_KEY("created_at")
         || yajl_gen_integer(g, pg_job_seconds(job->created_ms))
            != yajl_gen_status_ok
         || PG_KEY("updated_at")
         || yajl_gen_integer(g, pg_job_seconds(job->updated_ms))
            != yajl_gen_status_ok
         || PG_KEY("links")
         || yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("self") || pg_job_gen_link(g, &tmp, base, id, "");

    if (!batch) {
        rc = rc
             || PG_KEY("audio")
             || pg_job_gen_link(g, &tmp, base, id, "/audio")
             || PG_KEY("transcript_vtt")
             || pg_job_gen_link(g, &tmp, base, id, "/transcript.vtt")
             || PG_KEY("transcript_json")
             || pg_job_gen_link(g, &tmp, base, id, "/transcript.json")
             || PG_KEY("transcript_srt")
             || pg_job_gen_link(g, &tmp, base, id, "/transcript.srt")
             || PG_KEY("chapters")
             || pg_job_gen_link(g, &tmp, base, id, "/chapters.json");
    }

    rc = rc || yajl_gen_map_close(g) != yajl_gen_status_ok;

    if (batch && completed) {

        /*
         * yajl_gen_number() writes its text as it is, with the separator
         * before it: the way to inline JSON that was checked above
         */

        rc = rc
             || PG_KEY("results")
             || (job->result != NULL
                 ? yajl_gen_number(g, job->result, strlen(job->result))
                 : yajl_gen_null(g)) != yajl_gen_status_ok;
    }

    rc = rc
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || pg_json_gen_buf(g, out) != 0;

#undef PG_KEY

    yajl_gen_free(g);
    pg_buf_free(&tmp);

    return rc ? -1 : 0;
}


static int
pg_job_gen_link(yajl_gen g, pg_buf_t *tmp, const char *base, const char *id,
    const char *suffix)
{
    pg_buf_reset(tmp);

    if (pg_buf_append_str(tmp, base) != 0
        || pg_buf_append(tmp, "/", 1) != 0
        || pg_buf_append_str(tmp, id) != 0
        || pg_buf_append_str(tmp, suffix) != 0)
    {
        return 1;
    }

    return yajl_gen_string(g, tmp->data, tmp->len) != yajl_gen_status_ok;
}


/* unix ms to unix seconds, rounded down */
static long long
pg_job_seconds(int64_t ms)
{
    long long  s;

    s = ms / 1000;

    if (ms % 1000 < 0) {
        s--;
    }

    return s;
}
