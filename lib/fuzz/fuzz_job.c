/*
 * libFuzzer target for lib/pg_job.c and lib/pg_feed.c.  Each input is a
 * job record; every promise is checked, and any violation aborts:
 *
 *   - pg_job_from_json() accepts it, or refuses it with a corrupt_record
 *     error and a zeroed job;
 *   - what it accepts obeys the rules of a record (valid id, kind of the
 *     id, done <= total, keys of 64 hex digits, ...);
 *   - what it accepts is written (pg_job_to_json), reads back equal, and
 *     is written again byte for byte the same;
 *   - the public status object and the JSON transcript parse; the WebVTT
 *     transcript has "-->" only in its timing lines; the RSS feed is
 *     UTF-8 without the control characters XML forbids.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ilib \
 *       lib/fuzz/fuzz_job.c lib/pg_job.c lib/pg_feed.c lib/pg_json.c \
 *       lib/pg_text.c lib/pg_buf.c -lyajl -lm -o build/fuzz_job
 *   build/fuzz_job -max_len=65536 t/fuzz/job
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem() */
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "pg_feed.h"
#include "pg_job.h"
#include "pg_text.h"


#define check(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_job: %s:%d: %s\n",                         \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
same_str(const char *a, const char *b)
{
    return (a && b) ? strcmp(a, b) == 0 : a == b;
}


static void
check_equal(const pg_job_t *a, const pg_job_t *b)
{
    size_t                   i, k;
    const pg_job_segment_t  *x, *y;

    check(strcmp(a->id, b->id) == 0);
    check(a->kind == b->kind);
    check(a->status == b->status);
    check(a->version == b->version);
    check(a->created_ms == b->created_ms);
    check(a->updated_ms == b->updated_ms);
    check(same_str(a->title, b->title));
    check(same_str(a->request, b->request));
    check(same_str(a->format, b->format));
    check(a->speed == b->speed);
    check(a->done == b->done);
    check(a->total == b->total);
    check(same_str(a->error_code, b->error_code));
    check(same_str(a->error_message, b->error_message));
    check(same_str(a->engine, b->engine));
    check(a->duration_s == b->duration_s);
    check(a->audio_bytes == b->audio_bytes);
    check(a->nsegments == b->nsegments);
    check(same_str(a->result, b->result));

    for (i = 0; i < a->nsegments; i++) {
        x = &a->segments[i];
        y = &b->segments[i];

        check(same_str(x->speaker, y->speaker));
        check(same_str(x->voice, y->voice));
        check(same_str(x->text, y->text));
        check(same_str(x->audio_key, y->audio_key));
        check(x->start == y->start);
        check(x->end == y->end);
        check(same_str(x->chapter, y->chapter));
        check(x->nwords == y->nwords);

        for (k = 0; k < x->nwords; k++) {
            check(same_str(x->words[k].word, y->words[k].word));
            check(x->words[k].start == y->words[k].start);
            check(x->words[k].end == y->words[k].end);
        }
    }
}


static void
check_srt(pg_buf_t *b)
{
    size_t      n, line, expect;
    const char *p, *e, *nl;

    p = (const char *) b->data;
    e = p + b->len;
    line = 0;                   /* within a cue: 0 number, 1 timing, 2+ */
    expect = 1;

    while (p < e) {
        nl = memchr(p, '\n', e - p);
        check(nl != NULL);
        n = nl - p;

        if (n == 0) {
            check(line >= 2);   /* a cue has a number and times */
            line = 0;
            expect++;

        } else {
            if (line == 0) {
                check(n < 32 && (size_t) atol(p) == expect);
            }

            check((line == 1) == (memmem(p, n, "-->", 3) != NULL));
            line++;
        }

        p = nl + 1;
    }

    check(line == 0);
}


static void
check_rules(const pg_job_t *job)
{
    size_t  i;

    check(pg_job_id_valid(job->id, strlen(job->id)));
    check(memcmp(job->id, job->kind == PG_JOB_BATCH ? "bat_" : "pod_", 4)
          == 0);
    check(pg_job_status_name(job->status) != NULL);
    check(job->created_ms >= 0 && job->created_ms <= PG_JOB_MS_MAX);
    check(job->updated_ms >= 0 && job->updated_ms <= PG_JOB_MS_MAX);
    check(job->done <= job->total);
    check(job->duration_s >= 0.0 && job->duration_s <= PG_JOB_TIME_MAX);
    check(job->engine == NULL || strcmp(job->engine, "builtin") == 0
          || strcmp(job->engine, "llm") == 0);
    check(job->format == NULL
          || strspn(job->format, "abcdefghijklmnopqrstuvwxyz0123456789")
             == strlen(job->format));
    check(job->nsegments == 0 || job->segments != NULL);

    for (i = 0; i < job->nsegments; i++) {
        check(job->segments[i].speaker != NULL);
        check(job->segments[i].text != NULL);
        check(job->segments[i].audio_key == NULL
              || (strlen(job->segments[i].audio_key) == 64
                  && strspn(job->segments[i].audio_key, "0123456789abcdef")
                     == 64));
        check(job->segments[i].start >= -1.0
              && job->segments[i].start <= PG_JOB_TIME_MAX);
        check(job->segments[i].end >= -1.0
              && job->segments[i].end <= PG_JOB_TIME_MAX);
    }
}


/* parses b (NUL-terminated here) as JSON; an object is expected */
static void
check_json_object(pg_buf_t *b)
{
    char      ebuf[128];
    yajl_val  tree;

    check(pg_buf_append(b, "", 1) == 0);

    tree = yajl_tree_parse((const char *) b->data, ebuf, sizeof(ebuf));
    if (tree == NULL) {
        fprintf(stderr, "fuzz_job: %s\n%s\n", ebuf, (char *) b->data);
    }

    check(tree != NULL);
    check(YAJL_IS_OBJECT(tree));

    yajl_tree_free(tree);
}


static void
check_vtt(const pg_job_t *job, pg_buf_t *b)
{
    size_t       i, cues, arrows;
    const char  *p, *end;

    cues = 0;

    for (i = 0; i < job->nsegments; i++) {
        cues += job->segments[i].start >= 0.0;
    }

    check(b->len >= 8 && memcmp(b->data, "WEBVTT\n\n", 8) == 0);
    check(pg_utf8_valid((const char *) b->data, b->len));
    check(memchr(b->data, '\r', b->len) == NULL);

    /* one "-->" per cue, always in a timing line: " --> " after "mmm" */

    arrows = 0;
    p = (const char *) b->data;
    end = p + b->len;

    while (end - p >= 3) {
        p = memchr(p, '-', (size_t) (end - p - 2));
        if (p == NULL) {
            break;
        }

        if (p[1] == '-' && p[2] == '>') {
            check(p - (const char *) b->data >= 4 && p[-1] == ' '
                  && p[-2] >= '0' && p[-2] <= '9' && end - p > 3
                  && p[3] == ' ');
            arrows++;
        }

        p++;
    }

    check(arrows == cues);
}


/* XML 1.0 forbids control characters other than \t \n \r */
static void
check_rss(const pg_job_t *job, pg_buf_t *b)
{
    size_t       i, items;
    const char  *p;

    check(pg_utf8_valid((const char *) b->data, b->len));

    for (i = 0; i < b->len; i++) {
        check(b->data[i] >= 0x20 || b->data[i] == '\t' || b->data[i] == '\n'
              || b->data[i] == '\r');
    }

    check(pg_buf_append(b, "", 1) == 0);

    items = 0;

    for (p = (const char *) b->data; (p = strstr(p, "<item>")) != NULL; p++)
    {
        items++;
    }

    check(items == (job->kind == PG_JOB_PODCAST
                    && job->status == PG_JOB_COMPLETED));

    check(strstr((const char *) b->data, "</channel>\n</rss>\n") != NULL);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_buf_t           a, b;
    pg_job_t           job, back;
    pg_error_t         err;
    pg_rss_channel_t   ch;
    pg_job_t          *jobs[2];

    memset(&err, 0, sizeof(err));

    if (pg_job_from_json((const char *) data, size, &job, &err) != 0) {
        check(err.status == 500);
        check(err.code != NULL && strcmp(err.code, "corrupt_record") == 0);
        check(err.message[0] != '\0');
        check(job.id[0] == '\0' && job.title == NULL
              && job.segments == NULL && job.nsegments == 0
              && job.result == NULL);
        return 0;
    }

    check_rules(&job);

    memset(&a, 0, sizeof(pg_buf_t));
    memset(&b, 0, sizeof(pg_buf_t));

    /* the round trip */

    check(pg_job_to_json(&job, &a) == 0);
    check(pg_job_from_json((const char *) a.data, a.len, &back, &err) == 0);
    check_equal(&job, &back);
    check(pg_job_to_json(&back, &b) == 0);
    check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    pg_job_free(&back);

    /* the outputs */

    pg_buf_reset(&b);
    check(pg_job_public_json(&job, "/v1/podcasts", &b) == 0);
    check_json_object(&b);

    pg_buf_reset(&b);
    check(pg_transcript_json(&job, &b) == 0);
    check_json_object(&b);

    pg_buf_reset(&b);
    check(pg_vtt_write(&job, &b) == 0);
    check_vtt(&job, &b);

    pg_buf_reset(&b);
    check(pg_chapters_json(&job, &b) == 0);
    check_json_object(&b);

    /* SubRip: no blank line inside a cue, "-->" in timing lines only */
    pg_buf_reset(&b);
    check(pg_srt_write(&job, &b) == 0);
    check_srt(&b);

    memset(&ch, 0, sizeof(ch));
    ch.title = job.title;
    ch.link = "http://127.0.0.1:8080/";
    ch.description = job.request;
    ch.author = job.error_message;
    ch.image = job.format;

    jobs[0] = &job;
    jobs[1] = NULL;

    pg_buf_reset(&b);
    check(pg_rss_write(&ch, jobs, 2, &b) == 0);
    check_rss(&job, &b);

    pg_buf_free(&a);
    pg_buf_free(&b);
    pg_job_free(&job);

    return 0;
}
