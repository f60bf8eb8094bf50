/*
 * Unit tests of lib/pg_job.c and lib/pg_feed.c: job ids, the record file
 * (round trips, hostile records, random mutations), the public status
 * object, the WebVTT and JSON transcripts, XML escaping and the RSS feed
 * (checked with xmllint when it is installed), with and without a secret
 * token (HMAC-SHA256 checked against RFC 4231).
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "pg_feed.h"
#include "pg_job.h"
#include "pg_key.h"
#include "unit.h"


#define ID_POD    "pod_0192f3a4b5c6deadbeef"
#define ID_BAT    "bat_0192f3a4b5c6deadbeef"
#define KEY_A     "0123456789abcdef0123456789abcdef" \
                  "0123456789abcdef0123456789abcdef"
#define MUTATIONS 10000


static uint64_t  rng_state = 0x9e3779b97f4a7c15ULL;


static uint64_t
rng_next(void)
{
    /* xorshift64: fixed seed, so every run sees the same mutations */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;

    return rng_state;
}


static int
same_str(const char *a, const char *b)
{
    return (a && b) ? strcmp(a, b) == 0 : a == b;
}


/* the buffer as a NUL-terminated string (it stays owned by b) */
static const char *
buf_str(pg_buf_t *b)
{
    if (pg_buf_append(b, "", 1) != 0) {
        exit(1);
    }

    b->len--;

    return (const char *) b->data;
}


/* 1 when every field of a and b is equal; names the first difference */
static int
job_equal(const pg_job_t *a, const pg_job_t *b)
{
    size_t                   i;
    const pg_job_segment_t  *x, *y;

#define DIFF(cond, what)                                                     \
    if (!(cond)) {                                                           \
        printf("#   %s differs\n", what);                                    \
        return 0;                                                            \
    }

    DIFF(strcmp(a->id, b->id) == 0, "id");
    DIFF(a->kind == b->kind, "kind");
    DIFF(a->status == b->status, "status");
    DIFF(a->version == b->version, "version");
    DIFF(a->created_ms == b->created_ms, "created_ms");
    DIFF(a->updated_ms == b->updated_ms, "updated_ms");
    DIFF(same_str(a->title, b->title), "title");
    DIFF(same_str(a->request, b->request), "request");
    DIFF(same_str(a->format, b->format), "format");
    DIFF(a->speed == b->speed, "speed");
    DIFF(a->done == b->done, "done");
    DIFF(a->total == b->total, "total");
    DIFF(same_str(a->error_code, b->error_code), "error_code");
    DIFF(same_str(a->error_message, b->error_message), "error_message");
    DIFF(same_str(a->engine, b->engine), "engine");
    DIFF(a->duration_s == b->duration_s, "duration_s");
    DIFF(a->audio_bytes == b->audio_bytes, "audio_bytes");
    DIFF(a->nsegments == b->nsegments, "nsegments");
    DIFF(same_str(a->result, b->result), "result");

    for (i = 0; i < a->nsegments; i++) {
        x = &a->segments[i];
        y = &b->segments[i];

        DIFF(same_str(x->speaker, y->speaker), "segment speaker");
        DIFF(same_str(x->voice, y->voice), "segment voice");
        DIFF(same_str(x->text, y->text), "segment text");
        DIFF(same_str(x->audio_key, y->audio_key), "segment audio_key");
        DIFF(x->start == y->start, "segment start");
        DIFF(x->end == y->end, "segment end");
    }

#undef DIFF

    return 1;
}


static void
make_full(pg_job_t *job)
{
    pg_job_segment_t  segs[3];

    memset(job, 0, sizeof(pg_job_t));
    memset(segs, 0, sizeof(segs));

    memcpy(job->id, ID_POD, PG_JOB_ID_LEN + 1);
    job->kind = PG_JOB_PODCAST;
    job->status = PG_JOB_COMPLETED;
    job->version = 42;
    job->created_ms = 1764064800123LL;
    job->updated_ms = 1764064861999LL;
    job->title = strdup("\"Quotes\" & <b>markup</b>\nnew line "
                        "\xc3\xa9t\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x8e\x99 "
                        "\\ back\tslash");
    job->request = strdup("{\"topic\":\"caf\\u00e9 \\\"x\\\"\",\n"
                          " \"hosts\":[{\"name\":\"A<b>\"}]}");
    job->format = strdup("mp3");
    job->speed = 1.25;
    job->done = 3;
    job->total = 3;
    job->engine = strdup("llm");
    job->duration_s = 3725.123456789;
    job->audio_bytes = 1234567;
    job->error_code = strdup("none\x01");
    job->error_message = strdup("line1\r\nline2 </script>");

    segs[0].speaker = "A<b>&c";
    segs[0].voice = "alloy";
    segs[0].text = "Hello --> \"world\"\n\xe4\xb8\xad\xe6\x96\x87";
    segs[0].audio_key = KEY_A;
    segs[0].start = 0.0;
    segs[0].end = 0.1;

    segs[1].speaker = "Sam";
    segs[1].voice = NULL;
    segs[1].text = "";
    segs[1].audio_key = NULL;
    segs[1].start = -1.0;
    segs[1].end = -1.0;

    segs[2].speaker = "Jo";
    segs[2].voice = "echo";
    segs[2].text = "<script>alert(1)</script>";
    segs[2].audio_key = KEY_A;
    segs[2].start = 3600.5;
    segs[2].end = 3725.123456789;

    if (pg_job_set_segments(job, segs, 3) != 0) {
        exit(1);
    }
}


/* ---- ids ---------------------------------------------------------------- */


static void
test_ids(void)
{
    char             id[PG_JOB_ID_LEN + 1], id2[PG_JOB_ID_LEN + 1], name[64];
    size_t           i;
    pg_job_status_t  st;

    static const char  *bad[] = {
        "", "pod_", "../", "../../../etc/passwd",
        "pod_../../../../etc/pass",
        "pod_%2e%2e%2f%2e%2e%2fxxxx",
        "%2e%2e",
        "pod_0192F3A4B5C6DEADBEEF",         /* uppercase hex */
        "pod_0192f3a4b5c6deadbeeF",
        "POD_0192f3a4b5c6deadbeef",
        "pox_0192f3a4b5c6deadbeef",
        "job_0192f3a4b5c6deadbeef",
        "pod_0192f3a4b5c6deadbee",          /* 23 */
        "pod_0192f3a4b5c6deadbeef0",        /* 25 */
        "pod-0192f3a4b5c6deadbeef",
        "pod_0192f3a4b5c6deadbeeg",
        "pod_0192f3a4b5c6 eadbeef",
        "pod_0192f3a4b5c6deadbee\n",
        "bat_/192f3a4b5c6deadbeef",
    };

    pg_job_id_make(id, PG_JOB_PODCAST, 0x0123456789abLL, 0xdeadbeef);
    is_str(id, "pod_0123456789abdeadbeef", "id: made from time and random");
    ok(pg_job_id_valid(id, strlen(id)), "id: a made id is valid");

    pg_job_id_make(id, PG_JOB_BATCH, 0, 0);
    is_str(id, "bat_00000000000000000000", "id: a batch id, zeroes");
    ok(pg_job_id_valid(id, strlen(id)), "id: a batch id is valid");

    pg_job_id_make(id, PG_JOB_PODCAST, 0x7fffffffffffffffLL, 0xffffffff);
    is_str(id, "pod_ffffffffffffffffffff", "id: time cut to 48 bits");

    pg_job_id_make(id, PG_JOB_PODCAST, -1, 1);
    ok(pg_job_id_valid(id, strlen(id)), "id: a negative time still valid");

    pg_job_id_make(id, PG_JOB_PODCAST, 1764064800000LL, 0xffffffff);
    pg_job_id_make(id2, PG_JOB_PODCAST, 1764064800001LL, 0);
    ok(strcmp(id, id2) < 0, "id: ids sort by time");

    pg_job_id_make(id2, PG_JOB_PODCAST, 1764064800000LL + 86400000LL * 3650,
                   0);
    ok(strcmp(id, id2) < 0, "id: ids sort by time, ten years on");

    ok(pg_job_id_valid(ID_POD, PG_JOB_ID_LEN), "id: valid podcast id");
    ok(pg_job_id_valid(ID_BAT, PG_JOB_ID_LEN), "id: valid batch id");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name), "%s", bad[i]);
        name[strcspn(name, "\n")] = '\0';

        ok(!pg_job_id_valid(bad[i], strlen(bad[i])), "id: invalid \"%s\"",
           name);
    }

    ok(!pg_job_id_valid("pod_0192f3a4b5c6\0eadbeef", PG_JOB_ID_LEN),
       "id: NUL inside");
    ok(!pg_job_id_valid(ID_POD, PG_JOB_ID_LEN - 1), "id: length too short");
    ok(!pg_job_id_valid(ID_POD "0", PG_JOB_ID_LEN + 1), "id: too long");
    ok(!pg_job_id_valid(NULL, 0), "id: NULL");

    is_str(pg_job_status_name(PG_JOB_QUEUED), "queued", "status: queued");
    is_str(pg_job_status_name(PG_JOB_RUNNING), "running", "status: running");
    is_str(pg_job_status_name(PG_JOB_COMPLETED), "completed",
           "status: completed");
    is_str(pg_job_status_name(PG_JOB_FAILED), "failed", "status: failed");
    ok(pg_job_status_name((pg_job_status_t) 7) == NULL,
       "status: out of range is NULL");

    ok(pg_job_status_from_name("failed", 6, &st) == 0
       && st == PG_JOB_FAILED, "status: from name");
    ok(pg_job_status_from_name("fail", 4, &st) == -1,
       "status: unknown name");
}


/* ---- the record --------------------------------------------------------- */


static void
test_round_trip(void)
{
    char        *copy;
    pg_buf_t     b, b2;
    pg_job_t     job, back, min;
    pg_error_t   err;

    memset(&b, 0, sizeof(pg_buf_t));
    memset(&b2, 0, sizeof(pg_buf_t));

    make_full(&job);

    ok(pg_job_to_json(&job, &b) == 0, "record: full job written");

    /* exactly len bytes, no NUL after them: ASan sees any overread */

    copy = malloc(b.len);
    memcpy(copy, b.data, b.len);

    memset(&err, 0, sizeof(err));
    ok(pg_job_from_json(copy, b.len, &back, &err) == 0,
       "record: full job read back");
    if (err.code) {
        printf("#   %s\n", err.message);
    }

    ok(job_equal(&job, &back), "record: every field equal");
    ok(back.segments[0].audio_key != job.segments[0].audio_key,
       "record: strings are copies");

    ok(pg_job_to_json(&back, &b2) == 0, "record: written again");
    ok(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0,
       "record: the same bytes");

    free(copy);
    pg_job_free(&back);

    /* a minimal queued record */

    memset(&min, 0, sizeof(pg_job_t));
    memcpy(min.id, ID_BAT, PG_JOB_ID_LEN + 1);
    min.kind = PG_JOB_BATCH;
    min.status = PG_JOB_QUEUED;
    min.created_ms = 1;
    min.updated_ms = 1;

    pg_buf_reset(&b);
    ok(pg_job_to_json(&min, &b) == 0, "record: minimal job written");
    ok(pg_job_from_json((char *) b.data, b.len, &back, &err) == 0,
       "record: minimal job read back");
    ok(job_equal(&min, &back), "record: minimal job equal");
    ok(back.segments == NULL && back.title == NULL && back.result == NULL,
       "record: minimal job has no members");
    pg_job_free(&back);

    /* the least a record may hold: the defaults */

    {
        static const char  rec[] =
            "{\"id\":\"" ID_POD "\",\"status\":\"running\","
            "\"created_ms\":1764064800123,\"future_field\":[1,{\"x\":2}],"
            "\"title\":\"\\ud83c\\udf99 \\u00e9\"}";

        ok(pg_job_from_json(rec, sizeof(rec) - 1, &back, &err) == 0,
           "record: id, status and created_ms are enough");
        ok(back.status == PG_JOB_RUNNING && back.kind == PG_JOB_PODCAST,
           "record: status and kind");
        ok(back.updated_ms == 1764064800123LL, "record: updated_ms defaults "
           "to created_ms");
        ok(back.speed == 1.0, "record: speed defaults to 1");
        ok(back.nsegments == 0 && back.format == NULL && back.version == 0,
           "record: other defaults");
        is_str(back.title, "\xf0\x9f\x8e\x99 \xc3\xa9",
               "record: escaped surrogate pair decoded");
        pg_job_free(&back);
    }

    {
        static const char  rec[] =
            "{\"id\":\"" ID_BAT "\",\"kind\":\"batch\",\"status\":"
            "\"completed\",\"created_ms\":5,\"result\":\"{\\\"results\\\":"
            "[1,2,{\\\"a\\\":null}]}\",\"title\":null,\"segments\":[]}";

        ok(pg_job_from_json(rec, sizeof(rec) - 1, &back, &err) == 0,
           "record: a completed batch");
        is_str(back.result, "{\"results\":[1,2,{\"a\":null}]}",
               "record: the result verbatim");
        pg_job_free(&back);
    }

    /* a result nested 64 deep is fine */

    {
        char  rec[512];
        char  deep[129];

        memset(deep, '[', 64);
        memset(deep + 64, ']', 64);
        deep[128] = '\0';

        snprintf(rec, sizeof(rec), "{\"id\":\"" ID_BAT "\",\"status\":"
                 "\"completed\",\"created_ms\":5,\"result\":\"%s\"}", deep);

        ok(pg_job_from_json(rec, strlen(rec), &back, &err) == 0,
           "record: a result nested 64 deep");
        pg_job_free(&back);
    }

    ok(pg_job_set_segments(&job, NULL, 0) == 0 && job.nsegments == 0
       && job.segments == NULL, "set_segments: none");

    pg_job_free(&job);
    ok(job.title == NULL && job.segments == NULL && job.id[0] == '\0',
       "free: zeroed");

    /* a job that would not read back is not written */

    make_full(&job);
    job.segments[0].audio_key[0] = 'X';
    pg_buf_reset(&b);
    ok(pg_job_to_json(&job, &b) == -1 && b.len == 0,
       "record: a bad audio_key is not written");
    job.segments[0].audio_key[0] = '0';

    job.kind = PG_JOB_BATCH;
    ok(pg_job_to_json(&job, &b) == -1, "record: kind and id must match");
    job.kind = PG_JOB_PODCAST;

    job.speed = NAN;
    ok(pg_job_to_json(&job, &b) == -1, "record: NaN is not written");
    job.speed = 1.0;

    free(job.title);
    job.title = strdup("bad \xff utf-8");
    ok(pg_job_to_json(&job, &b) == -1, "record: invalid UTF-8 not written");

    free(job.title);
    job.title = strdup("a surrogate \xed\xbe\x99");
    ok(pg_job_to_json(&job, &b) == -1, "record: a surrogate is not written");
    ok(pg_transcript_json(&job, &b) == -1 && b.len == 0,
       "transcript: a surrogate is not written");

    pg_job_free(&job);
    pg_buf_free(&b);
    pg_buf_free(&b2);
}


static void
test_hostile(void)
{
    size_t       i;
    pg_job_t     job;
    pg_error_t   err;

#define R(rest)                                                              \
    "{\"id\":\"" ID_POD "\",\"status\":\"completed\",\"created_ms\":1" rest "}"
#define SEG(s)  R(",\"segments\":[" s "]")

    static const struct {
        const char  *name;
        const char  *rec;
    } cases[] = {
        { "empty", "" },
        { "spaces", "   " },
        { "not an object: array", "[]" },
        { "not an object: null", "null" },
        { "not an object: string", "\"pod\"" },
        { "not an object: number", "12" },
        { "truncated", "{\"id\":\"" ID_POD "\",\"status\":\"queu" },
        { "trailing garbage", R("") "x" },
        { "two objects", R("") R("") },
        { "no id", "{\"status\":\"queued\",\"created_ms\":1}" },
        { "no status", "{\"id\":\"" ID_POD "\",\"created_ms\":1}" },
        { "no created_ms", "{\"id\":\"" ID_POD "\",\"status\":\"queued\"}" },
        { "id null",
          "{\"id\":null,\"status\":\"queued\",\"created_ms\":1}" },
        { "id number", "{\"id\":12,\"status\":\"queued\",\"created_ms\":1}" },
        { "id traversal",
          "{\"id\":\"../../etc/passwd\",\"status\":\"queued\","
          "\"created_ms\":1}" },
        { "id uppercase",
          "{\"id\":\"pod_0192F3A4B5C6DEADBEEF\",\"status\":\"queued\","
          "\"created_ms\":1}" },
        { "id too long",
          "{\"id\":\"" ID_POD "0\",\"status\":\"queued\",\"created_ms\":1}" },
        { "status unknown",
          "{\"id\":\"" ID_POD "\",\"status\":\"done\",\"created_ms\":1}" },
        { "status number",
          "{\"id\":\"" ID_POD "\",\"status\":2,\"created_ms\":1}" },
        { "status case",
          "{\"id\":\"" ID_POD "\",\"status\":\"Queued\",\"created_ms\":1}" },
        { "created_ms string",
          "{\"id\":\"" ID_POD "\",\"status\":\"queued\","
          "\"created_ms\":\"1\"}" },
        { "created_ms negative",
          "{\"id\":\"" ID_POD "\",\"status\":\"queued\",\"created_ms\":-1}" },
        { "created_ms fraction",
          "{\"id\":\"" ID_POD "\",\"status\":\"queued\",\"created_ms\":1.5}" },
        { "created_ms huge",
          "{\"id\":\"" ID_POD "\",\"status\":\"queued\","
          "\"created_ms\":99999999999999999999999}" },
        { "created_ms 1e300",
          "{\"id\":\"" ID_POD "\",\"status\":\"queued\","
          "\"created_ms\":1e300}" },
        { "created_ms above 48 bits",
          "{\"id\":\"" ID_POD "\",\"status\":\"queued\","
          "\"created_ms\":281474976710656}" },
        { "updated_ms null", R(",\"updated_ms\":null") },
        { "version negative", R(",\"version\":-1") },
        { "version huge", R(",\"version\":18446744073709551615") },
        { "kind mismatch", R(",\"kind\":\"batch\"") },
        { "kind number", R(",\"kind\":1") },
        { "kind unknown", R(",\"kind\":\"episode\"") },
        { "done negative", R(",\"done\":-1,\"total\":3") },
        { "done above total", R(",\"done\":4,\"total\":3") },
        { "done string", R(",\"done\":\"1\",\"total\":3") },
        { "done fraction", R(",\"done\":0.5,\"total\":3") },
        { "total huge", R(",\"total\":1e400") },
        { "total bool", R(",\"total\":true") },
        { "audio_bytes negative", R(",\"audio_bytes\":-5") },
        { "speed string", R(",\"speed\":\"fast\"") },
        { "speed negative", R(",\"speed\":-1") },
        { "speed huge", R(",\"speed\":1e999") },
        { "speed null", R(",\"speed\":null") },
        { "duration negative", R(",\"duration_s\":-0.5") },
        { "duration huge", R(",\"duration_s\":1e300") },
        { "duration tiny", R(",\"duration_s\":1e-400") },
        { "title number", R(",\"title\":5") },
        { "title object", R(",\"title\":{}") },
        { "title array", R(",\"title\":[\"x\"]") },
        { "request object", R(",\"request\":{\"topic\":\"x\"}") },
        { "format traversal", R(",\"format\":\"../mp3\"") },
        { "format empty", R(",\"format\":\"\"") },
        { "format too long", R(",\"format\":\"aaaaaaaaaaaaaaaaa\"") },
        { "format uppercase", R(",\"format\":\"MP3\"") },
        { "engine unknown", R(",\"engine\":\"gpt\"") },
        { "engine bool", R(",\"engine\":false") },
        { "error_code number", R(",\"error_code\":3") },
        { "error_message array", R(",\"error_message\":[]") },
        { "result not JSON", R(",\"result\":\"{not json\"") },
        { "result two values", R(",\"result\":\"1 2\"") },
        { "result empty", R(",\"result\":\"\"") },
        { "result too deep",
          R(",\"result\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
            "]]]]]]]]]]]]]]]]]]]]]\"") },
        { "result object", R(",\"result\":{\"results\":[]}") },
        { "segments object", R(",\"segments\":{}") },
        { "segments string", R(",\"segments\":\"x\"") },
        { "segments null", R(",\"segments\":null") },
        { "segment not object", SEG("1") },
        { "segment null", SEG("null") },
        { "segment no text", SEG("{\"speaker\":\"A\"}") },
        { "segment no speaker", SEG("{\"text\":\"A\"}") },
        { "segment speaker number", SEG("{\"speaker\":1,\"text\":\"A\"}") },
        { "segment text null", SEG("{\"speaker\":\"A\",\"text\":null}") },
        { "segment voice number",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"voice\":7}") },
        { "segment audio_key traversal",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"audio_key\":"
              "\"../../../../etc/passwd\"}") },
        { "segment audio_key uppercase",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"audio_key\":"
              "\"0123456789ABCDEF0123456789abcdef"
              "0123456789abcdef0123456789abcdef\"}") },
        { "segment audio_key short",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"audio_key\":\"abc\"}") },
        { "segment start string",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"start\":\"0\"}") },
#define WORDS(w)  SEG("{\"speaker\":\"A\",\"text\":\"t\",\"words\":" w "}")
        { "words object", WORDS("{}") },
        { "word not an array", WORDS("[\"a\"]") },
        { "word of two", WORDS("[[\"a\",0]]") },
        { "word of four", WORDS("[[\"a\",0,1,2]]") },
        { "word empty", WORDS("[[\"\",0,1]]") },
        { "word number", WORDS("[[1,0,1]]") },
        { "word start string", WORDS("[[\"a\",\"0\",1]]") },
        { "word ends before it starts", WORDS("[[\"a\",2,1]]") },
        { "word before 0", WORDS("[[\"a\",-0.5,1]]") },
        { "word end huge", WORDS("[[\"a\",0,1e300]]") },
        { "words overlap", WORDS("[[\"a\",0,1],[\"b\",0.5,2]]") },
        { "word lone surrogate", WORDS("[[\"\\udc00\",0,1]]") },
        { "segment start -5",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"start\":-5}") },
        { "segment end huge",
          SEG("{\"speaker\":\"A\",\"text\":\"t\",\"start\":1,"
              "\"end\":1e300}") },
        { "second segment bad",
          SEG("{\"speaker\":\"A\",\"text\":\"t\"},{\"speaker\":\"B\"}") },
        { "too deep",
          R(",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]") },
        { "u0000", R(",\"title\":\"a\\u0000b\"") },
        { "invalid UTF-8", R(",\"title\":\"a\xff\xfe\"") },
        { "overlong UTF-8", R(",\"title\":\"\xc0\xaf\"") },
        { "escaped lone low surrogate", R(",\"title\":\"a\\udf99\"") },
        { "escaped reversed surrogates",
          R(",\"error_message\":\"\\udf99\\ud83c\"") },
    };

#undef R
#undef SEG

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        memset(&job, 0x5a, sizeof(job));

        ok(pg_job_from_json(cases[i].rec, strlen(cases[i].rec), &job, &err)
           == -1
           && err.status == 500 && same_str(err.code, "corrupt_record")
           && err.message[0] != '\0'
           && job.title == NULL && job.segments == NULL && job.id[0] == '\0',
           "hostile: %s (%s)", cases[i].name, err.message);
    }

    /* a raw NUL byte */

    {
        static const char  rec[] = "{\"id\":\"" ID_POD "\",\"status\":"
                                   "\"queued\",\"created_ms\":1,\"t\":\"\0\"}";

        ok(pg_job_from_json(rec, sizeof(rec) - 1, &job, &err) == -1,
           "hostile: a NUL byte");
    }

    /* what is accepted: the same fields, well formed */

    {
        static const char  rec[] =
            "{\"id\":\"" ID_POD "\",\"status\":\"failed\",\"created_ms\":0,"
            "\"updated_ms\":281474976710655,\"version\":9223372036854775807,"
            "\"done\":0,\"total\":0,\"speed\":4,\"duration_s\":0,"
            "\"error_code\":\"tts_failed\",\"error_message\":null,"
            "\"segments\":[{\"speaker\":\"\",\"text\":\"\",\"start\":-1,"
            "\"end\":1000000000}],\"id\":\"" ID_POD "\"}";

        memset(&err, 0, sizeof(err));

        ok(pg_job_from_json(rec, sizeof(rec) - 1, &job, &err) == 0,
           "hostile: limits accepted%s", err.message);
        ok(job.version == 9223372036854775807ULL
           && job.updated_ms == 281474976710655LL && job.speed == 4.0,
           "hostile: limits read");
        pg_job_free(&job);
    }
}


/* every output of a job that was read: must not fail or crash */
static int
outputs_ok(const pg_job_t *job)
{
    int                rc;
    pg_buf_t           b;
    pg_job_t           back;
    pg_error_t         err;
    pg_rss_channel_t   ch;
    pg_job_t *const    jobs[1] = { (pg_job_t *) job };

    memset(&b, 0, sizeof(pg_buf_t));
    memset(&ch, 0, sizeof(ch));
    ch.title = "t";
    ch.link = "http://x";

    rc = pg_job_to_json(job, &b) == 0
         && pg_job_from_json((char *) b.data, b.len, &back, &err) == 0;

    if (rc) {
        rc = job_equal(job, &back);
        pg_job_free(&back);
    }

    pg_buf_reset(&b);
    rc = rc && pg_job_public_json(job, "/v1/podcasts", &b) == 0;
    pg_buf_reset(&b);
    rc = rc && pg_vtt_write(job, &b) == 0;
    pg_buf_reset(&b);
    rc = rc && pg_transcript_json(job, &b) == 0;
    pg_buf_reset(&b);
    rc = rc && pg_rss_write(&ch, jobs, 1, &b) == 0;

    pg_buf_free(&b);

    return rc;
}


static void
test_mutations(void)
{
    char        *m;
    size_t       i, k, n, len, pos, accepted, bad;
    pg_buf_t     b;
    pg_job_t     job;
    pg_error_t   err;

    static const char  *tokens[] = {
        "null", "true", "-1", "0", "1e999", "99999999999999999999", "\"\"",
        "[]", "{}", "\"x\"", ",", ":", "\"", "\\", "\\u0000", "\xff",
        "\xc3", "1.5", "\"completed\"", "\"batch\"", "[[[[", "}}}",
        "\"" KEY_A "\"", "\"pod_00000000000000000000\"", "-0", "1e-400",
    };

    memset(&b, 0, sizeof(pg_buf_t));

    make_full(&job);
    if (pg_job_to_json(&job, &b) != 0) {
        exit(1);
    }
    pg_job_free(&job);

    accepted = 0;
    bad = 0;

    for (i = 0; i < MUTATIONS; i++) {
        len = b.len;
        m = malloc(len + 512);                 /* room for 4 tokens */
        memcpy(m, b.data, len);

        for (n = 1 + rng_next() % 4; n > 0; n--) {
            pos = len ? rng_next() % len : 0;

            switch (rng_next() % 5) {

            case 0:                                 /* a random byte */
                if (len) {
                    m[pos] = (char) rng_next();
                }
                break;

            case 1:                                 /* delete a run */
                k = rng_next() % 8;
                if (k > len - pos) {
                    k = len - pos;
                }
                memmove(m + pos, m + pos + k, len - pos - k);
                len -= k;
                break;

            case 2:                                 /* insert a token */
                {
                    const char  *t = tokens[rng_next()
                                            % (sizeof(tokens)
                                               / sizeof(tokens[0]))];
                    k = strlen(t);
                    memmove(m + pos + k, m + pos, len - pos);
                    memcpy(m + pos, t, k);
                    len += k;
                }
                break;

            case 3:                                 /* cut the end */
                len = pos;
                break;

            default:                                /* a digit or a sign */
                if (len) {
                    m[pos] = "0123456789-.e\""[rng_next() % 14];
                }
            }

        }

        /* exactly len bytes: ASan catches a read past them */

        m = realloc(m, len ? len : 1);

        memset(&err, 0, sizeof(err));

        if (pg_job_from_json(m, len, &job, &err) == 0) {
            accepted++;

            if (!outputs_ok(&job)) {
                bad++;
            }

            pg_job_free(&job);

        } else if (err.status != 500
                   || !same_str(err.code, "corrupt_record"))
        {
            bad++;
        }

        free(m);
    }

    ok(bad == 0, "mutations: %d records, %zu accepted, all outputs fine",
       MUTATIONS, accepted);
    ok(accepted > 0, "mutations: some mutated records still valid");

    pg_buf_free(&b);
}


/* ---- the public status object ------------------------------------------- */


static yajl_val
public_tree(const pg_job_t *job, const char *base)
{
    char      ebuf[128];
    pg_buf_t  b;
    yajl_val  tree;

    memset(&b, 0, sizeof(pg_buf_t));

    if (pg_job_public_json(job, base, &b) != 0) {
        pg_buf_free(&b);
        return NULL;
    }

    tree = yajl_tree_parse(buf_str(&b), ebuf, sizeof(ebuf));
    if (tree == NULL) {
        printf("#   %s\n#   %s\n", ebuf, buf_str(&b));
    }

    pg_buf_free(&b);

    return tree;
}


static yajl_val
get(yajl_val tree, const char *a, const char *b)
{
    const char  *path[3] = { a, b, NULL };

    return yajl_tree_get(tree, path, yajl_t_any);
}


static const char *
get_str(yajl_val tree, const char *a, const char *b)
{
    yajl_val  v;

    v = get(tree, a, b);

    return (v && YAJL_IS_STRING(v)) ? YAJL_GET_STRING(v) : NULL;
}


static long long
get_int(yajl_val tree, const char *a, const char *b)
{
    yajl_val  v;

    v = get(tree, a, b);

    return (v && YAJL_IS_INTEGER(v)) ? YAJL_GET_INTEGER(v) : -999;
}


static void
test_public(void)
{
    int          s;
    yajl_val     t, v;
    pg_job_t     job;
    const char  *name;

    make_full(&job);
    job.done = 2;
    job.total = 5;
    job.duration_s = 61.25;
    free(job.error_code);
    free(job.error_message);
    job.error_code = strdup("tts_failed");
    job.error_message = strdup("synthesis \"failed\"");

    for (s = PG_JOB_QUEUED; s <= PG_JOB_FAILED; s++) {
        job.status = (pg_job_status_t) s;
        name = pg_job_status_name(job.status);

        t = public_tree(&job, "/v1/podcasts");
        ok(t != NULL && YAJL_IS_OBJECT(t), "public %s: parses", name);
        if (t == NULL) {
            continue;
        }

        is_str(get_str(t, "id", NULL), ID_POD, "public %s: id", name);
        is_str(get_str(t, "object", NULL), "podcast", "public %s: object",
               name);
        is_str(get_str(t, "status", NULL), name, "public %s: status", name);
        ok(get_int(t, "progress", "done") == 2
           && get_int(t, "progress", "total") == 5,
           "public %s: progress", name);
        is_str(get_str(t, "title", NULL), job.title, "public %s: title",
               name);
        is_str(get_str(t, "format", NULL), "mp3", "public %s: format", name);
        is_int(get_int(t, "created_at", NULL), 1764064800,
               "public %s: created_at in seconds", name);
        is_int(get_int(t, "updated_at", NULL), 1764064861,
               "public %s: updated_at in seconds", name);
        is_str(get_str(t, "links", "self"), "/v1/podcasts/" ID_POD,
               "public %s: self", name);
        is_str(get_str(t, "links", "audio"), "/v1/podcasts/" ID_POD "/audio",
               "public %s: audio", name);
        is_str(get_str(t, "links", "transcript_vtt"),
               "/v1/podcasts/" ID_POD "/transcript.vtt",
               "public %s: transcript_vtt", name);
        is_str(get_str(t, "links", "transcript_json"),
               "/v1/podcasts/" ID_POD "/transcript.json",
               "public %s: transcript_json", name);
        ok(get(t, "results", NULL) == NULL, "public %s: no results", name);

        v = get(t, "duration_s", NULL);

        if (s == PG_JOB_COMPLETED) {
            ok(v != NULL && YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) == 61.25,
               "public %s: duration_s", name);

        } else {
            ok(v != NULL && YAJL_IS_NULL(v), "public %s: duration_s null",
               name);
        }

        v = get(t, "error", NULL);

        if (s == PG_JOB_FAILED) {
            ok(v != NULL && YAJL_IS_OBJECT(v), "public %s: error object",
               name);
            is_str(get_str(t, "error", "code"), "tts_failed",
                   "public %s: error code", name);
            is_str(get_str(t, "error", "message"), "synthesis \"failed\"",
                   "public %s: error message", name);

        } else {
            ok(v != NULL && YAJL_IS_NULL(v), "public %s: error null", name);
        }

        yajl_tree_free(t);
    }

    /* no title yet, no format, failed without a code */

    free(job.title);
    free(job.format);
    free(job.error_code);
    job.title = NULL;
    job.format = NULL;
    job.error_code = NULL;
    job.status = PG_JOB_FAILED;

    t = public_tree(&job, "");
    ok(t != NULL, "public: a bare job");
    if (t != NULL) {
        v = get(t, "title", NULL);
        ok(v != NULL && YAJL_IS_NULL(v), "public: title null");
        v = get(t, "format", NULL);
        ok(v != NULL && YAJL_IS_NULL(v), "public: format null");
        ok(get_str(t, "error", "code") != NULL, "public: a default code");
        is_str(get_str(t, "links", "self"), "/" ID_POD, "public: empty base");
        yajl_tree_free(t);
    }

    pg_job_free(&job);

    /* a batch */

    memset(&job, 0, sizeof(pg_job_t));
    memcpy(job.id, ID_BAT, PG_JOB_ID_LEN + 1);
    job.kind = PG_JOB_BATCH;
    job.status = PG_JOB_COMPLETED;
    job.created_ms = 1999;
    job.updated_ms = 2000;
    job.result = strdup(" {\"results\":[{\"index\":0,\"status\":200}],"
                        "\"stats\":{\"total\":1}} ");

    t = public_tree(&job, "/v1/batch");
    ok(t != NULL, "public batch: parses");
    if (t != NULL) {
        is_str(get_str(t, "object", NULL), "batch", "public batch: object");
        is_str(get_str(t, "links", "self"), "/v1/batch/" ID_BAT,
               "public batch: self");
        ok(get(t, "links", "audio") == NULL, "public batch: only self");
        v = get(t, "results", "stats");
        ok(v != NULL && YAJL_IS_OBJECT(v), "public batch: results inlined");
        is_int(get_int(t, "created_at", NULL), 1, "public batch: created_at");
        is_int(get_int(t, "updated_at", NULL), 2, "public batch: updated_at");
        yajl_tree_free(t);
    }

    job.status = PG_JOB_RUNNING;
    t = public_tree(&job, "/v1/batch");
    ok(t != NULL && get(t, "results", NULL) == NULL,
       "public batch: no results while running");
    yajl_tree_free(t);

    job.status = PG_JOB_COMPLETED;
    free(job.result);
    job.result = strdup("{\"results\":[1,2");

    {
        pg_buf_t  b;

        memset(&b, 0, sizeof(pg_buf_t));
        ok(pg_job_public_json(&job, "/v1/batch", &b) == -1,
           "public batch: a result that is not JSON is not inlined");
        pg_buf_free(&b);
    }

    pg_job_free(&job);
}


/* ---- transcripts -------------------------------------------------------- */


static void
test_vtt(void)
{
    pg_buf_t          b;
    pg_job_t          job;
    pg_job_segment_t  segs[4];

    static const char  want[] =
        "WEBVTT\n"
        "\n"
        "1\n"
        "01:02:05.500 --> 01:02:10.250\n"
        "<v A&lt;b&gt;&amp;c>Hello --&gt; world again &amp; &lt;i&gt;\n"
        "\n"
        "2\n"
        "01:02:10.250 --> 100:00:00.001\n"
        "<v Sam \xc3\xa9>Last \xef\xbf\xbd line\n"
        "\n";

    memset(&job, 0, sizeof(pg_job_t));
    memset(segs, 0, sizeof(segs));
    memset(&b, 0, sizeof(pg_buf_t));

    memcpy(job.id, ID_POD, PG_JOB_ID_LEN + 1);
    job.status = PG_JOB_COMPLETED;

    segs[0].speaker = "A<b>&c";
    segs[0].text = "Hello -->\nworld\r\n\tagain & <i>";
    segs[0].start = 3725.5;
    segs[0].end = 3730.25;

    segs[1].speaker = "Sam";
    segs[1].text = "not rendered";
    segs[1].start = -1;
    segs[1].end = -1;

    segs[2].speaker = "Sam\n\xc3\xa9";
    segs[2].text = "Last \xff line";
    segs[2].start = 3730.25;
    segs[2].end = 360000.001;

    segs[3].speaker = "Jo";
    segs[3].text = "not rendered either";
    segs[3].start = -0.5;
    segs[3].end = 2;

    pg_job_set_segments(&job, segs, 4);

    ok(pg_vtt_write(&job, &b) == 0, "vtt: written");
    is_str(buf_str(&b), want, "vtt: the exact text");
    ok(strstr(buf_str(&b) + 8, "-->\n") == NULL
       && strstr(buf_str(&b), "--> world") == NULL, "vtt: no raw --> in text");

    /* an end before its start, no speaker */

    job.segments[0].end = 1.0;
    free(job.segments[0].speaker);
    job.segments[0].speaker = strdup("");
    job.nsegments = 1;

    pg_buf_reset(&b);
    ok(pg_vtt_write(&job, &b) == 0, "vtt: written again");
    ok(strstr(buf_str(&b), "01:02:05.500 --> 01:02:05.500\nHello") != NULL,
       "vtt: end clamped to start, no <v> tag");

    free(job.segments[0].speaker);
    job.segments[0].speaker = strdup("Jo--");

    pg_buf_reset(&b);
    ok(pg_vtt_write(&job, &b) == 0
       && strstr(buf_str(&b), "\n<v Jo-- >Hello") != NULL,
       "vtt: a speaker ending with -- makes no raw -->");

    job.nsegments = 4;

    pg_job_free(&job);
    pg_buf_free(&b);
}


static void
test_transcript(void)
{
    pg_buf_t  b;
    pg_job_t  job;
    yajl_val  t, segs, s, v;

    memset(&b, 0, sizeof(pg_buf_t));

    make_full(&job);

    ok(pg_transcript_json(&job, &b) == 0, "transcript: written");

    t = yajl_tree_parse(buf_str(&b), NULL, 0);
    ok(t != NULL && YAJL_IS_OBJECT(t), "transcript: parses");

    if (t != NULL) {
        is_str(get_str(t, "id", NULL), ID_POD, "transcript: id");
        is_str(get_str(t, "title", NULL), job.title, "transcript: title");
        v = get(t, "duration_s", NULL);
        ok(v && YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) == 3725.123,
           "transcript: duration_s");

        segs = get(t, "segments", NULL);
        ok(segs && YAJL_IS_ARRAY(segs) && segs->u.array.len == 3,
           "transcript: 3 segments");

        if (segs && YAJL_IS_ARRAY(segs) && segs->u.array.len == 3) {
            s = segs->u.array.values[0];
            is_int(get_int(s, "index", NULL), 0, "transcript: index");
            is_str(get_str(s, "speaker", NULL), "A<b>&c",
                   "transcript: speaker");
            is_str(get_str(s, "voice", NULL), "alloy", "transcript: voice");
            is_str(get_str(s, "text", NULL), job.segments[0].text,
                   "transcript: text");

            s = segs->u.array.values[1];
            v = get(s, "start", NULL);
            ok(v && YAJL_IS_NULL(v), "transcript: not rendered: null start");
            v = get(s, "voice", NULL);
            ok(v && YAJL_IS_NULL(v), "transcript: no voice: null");

            s = segs->u.array.values[2];
            is_int(get_int(s, "index", NULL), 2, "transcript: index 2");
            v = get(s, "start", NULL);
            ok(v && YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) == 3600.5,
               "transcript: start");
            v = get(s, "end", NULL);
            ok(v && YAJL_IS_DOUBLE(v) && YAJL_GET_DOUBLE(v) == 3725.123,
               "transcript: end");
        }

        yajl_tree_free(t);
    }

    job.status = PG_JOB_RUNNING;
    pg_buf_reset(&b);
    ok(pg_transcript_json(&job, &b) == 0, "transcript: running");
    ok(strstr(buf_str(&b), "\"duration_s\":null") != NULL,
       "transcript: running: duration_s null");

    pg_job_free(&job);
    pg_buf_free(&b);
}


/* ---- XML and RSS -------------------------------------------------------- */


static const char *
xml(const char *s, size_t len)
{
    static pg_buf_t  b;

    pg_buf_reset(&b);

    if (pg_xml_escape(&b, s, len) != 0) {
        exit(1);
    }

    return buf_str(&b);
}


static int
xmllint_ok(const pg_buf_t *b, int *skipped)
{
    int    rc, fd;
    char   path[] = "/tmp/test_job_feed_XXXXXX", cmd[128];
    FILE  *f;

    *skipped = 0;

    if (system("command -v xmllint >/dev/null 2>&1") != 0) {
        *skipped = 1;
        return 1;
    }

    fd = mkstemp(path);
    if (fd == -1) {
        return 0;
    }

    f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        unlink(path);
        return 0;
    }

    fwrite(b->data, 1, b->len, f);
    fclose(f);

    snprintf(cmd, sizeof(cmd), "xmllint --noout %s", path);
    rc = system(cmd);
    unlink(path);

    return rc == 0;
}


static void
test_xml(void)
{
    is_str(xml("a&b<c>d\"e'f", 11), "a&amp;b&lt;c&gt;d&quot;e&apos;f",
           "xml: the five characters");
    is_str(xml("a\x01\x08\x0b\x0c\x1f\x7f" "b\t\n\r", 11), "a\x7f" "b\t\n\r",
           "xml: control characters dropped, tab and newlines kept");
    is_str(xml("x\xff\xc3(\xed\xa0\x80y", 8),
           "x\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy",
           "xml: invalid UTF-8 replaced byte by byte");
    is_str(xml("\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\x99", 9),
           "\xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\x99", "xml: valid UTF-8 kept");
    is_str(xml("\xef\xbf\xbe\xef\xbf\xbf!", 7), "!",
           "xml: U+FFFE and U+FFFF dropped");
    is_str(xml("\xf0\x9f\x8e", 3), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
           "xml: a cut character");
    is_str(xml("ab\0cd", 5), "abcd", "xml: NUL dropped");
    is_str(xml("", 0), "", "xml: empty");
}


static void
test_rss(void)
{
    int                skipped;
    char               text[400];
    pg_buf_t           b;
    pg_job_t           a, r, c, q;
    const char        *s;
    pg_job_segment_t   seg;
    pg_rss_channel_t   ch;
    pg_job_t          *jobs[5];

    memset(&b, 0, sizeof(pg_buf_t));

    make_full(&a);
    free(a.title);
    a.title = strdup("Tom & Jerry <live> \"quoted\" \x01\xff");
    a.audio_bytes = 12345;
    a.duration_s = 3725.6;
    a.created_ms = 1764064800999LL;

    /* running: skipped */

    make_full(&r);
    pg_job_id_make(r.id, PG_JOB_PODCAST, 1, 0xabcdef01);
    r.status = PG_JOB_RUNNING;

    /* completed, opus, a long text, no title */

    make_full(&c);
    pg_job_id_make(c.id, PG_JOB_PODCAST, 2, 0x12345678);
    free(c.title);
    free(c.format);
    c.title = NULL;
    c.format = strdup("opus");
    c.audio_bytes = 7;

    memset(text, 'w', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    memset(&seg, 0, sizeof(seg));
    seg.speaker = "A";
    seg.text = text;
    seg.start = -1;
    seg.end = -1;
    pg_job_set_segments(&c, &seg, 1);

    /* a batch: skipped */

    memset(&q, 0, sizeof(pg_job_t));
    memcpy(q.id, ID_BAT, PG_JOB_ID_LEN + 1);
    q.kind = PG_JOB_BATCH;
    q.status = PG_JOB_COMPLETED;

    jobs[0] = &a;
    jobs[1] = &r;
    jobs[2] = &c;
    jobs[3] = &q;
    jobs[4] = NULL;

    memset(&ch, 0, sizeof(ch));
    ch.title = "podgen & friends";
    ch.link = "http://127.0.0.1:8080/";
    ch.description = "Episodes <generated> by podgen";
    ch.author = "podgen";
    ch.image = "http://127.0.0.1:8080/cover.png?a=1&b=2";

    ok(pg_rss_write(&ch, jobs, 5, &b) == 0, "rss: written");
    s = buf_str(&b);

    ok(xmllint_ok(&b, &skipped), "rss: well-formed%s",
       skipped ? " # SKIP xmllint is not installed" : " (xmllint)");

    ok(strncmp(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss "
               "version=\"2.0\"", 52) == 0, "rss: the prolog");
    ok(strstr(s, "xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\"")
       && strstr(s, "xmlns:atom=\"http://www.w3.org/2005/Atom\""),
       "rss: namespaces");
    ok(strstr(s, "<title>podgen &amp; friends</title>") != NULL,
       "rss: channel title escaped");
    ok(strstr(s, "<atom:link href=\"http://127.0.0.1:8080/v1/podcasts/"
              "feed.xml\" rel=\"self\" type=\"application/rss+xml\"/>")
       != NULL, "rss: atom self link, no double slash");
    ok(strstr(s, "<itunes:image href=\"http://127.0.0.1:8080/cover.png?a=1"
              "&amp;b=2\"/>") != NULL, "rss: image escaped");
    ok(strstr(s, "<language>en</language>")
       && strstr(s, "<itunes:explicit>false</itunes:explicit>")
       && strstr(s, "<itunes:category text=\"Technology\"/>")
       && strstr(s, "<itunes:author>podgen</itunes:author>"),
       "rss: channel tags");

    ok(strstr(s, "<title>Tom &amp; Jerry &lt;live&gt; &quot;quoted&quot; "
              "\xef\xbf\xbd</title>") != NULL,
       "rss: item title escaped, control dropped, bad byte replaced");
    ok(strstr(s, "<guid isPermaLink=\"false\">" ID_POD "</guid>") != NULL,
       "rss: guid");
    ok(strstr(s, "<pubDate>Tue, 25 Nov 2025 10:00:00 GMT</pubDate>") != NULL,
       "rss: pubDate");
    ok(strstr(s, "<enclosure url=\"http://127.0.0.1:8080/v1/podcasts/"
              ID_POD "/audio\" length=\"12345\" type=\"audio/mpeg\"/>")
       != NULL, "rss: enclosure url, length, type");
    ok(strstr(s, "<itunes:duration>01:02:06</itunes:duration>") != NULL,
       "rss: duration");
    ok(strstr(s, "<itunes:episodeType>full</itunes:episodeType>") != NULL,
       "rss: episode type");
    ok(strstr(s, "<description>Hello --&gt; &quot;world&quot;\n"
              "\xe4\xb8\xad\xe6\x96\x87 &lt;script&gt;") != NULL,
       "rss: description of the segments, escaped");

    ok(strstr(s, r.id) == NULL, "rss: a running job is skipped");
    ok(strstr(s, ID_BAT) == NULL, "rss: a batch is skipped");

    ok(strstr(s, "type=\"audio/ogg\"") != NULL, "rss: opus is audio/ogg");
    ok(strstr(s, "length=\"7\"") != NULL, "rss: second enclosure");

    {
        char  want[400];

        memset(want, 'w', 299);
        memcpy(want + 299, "\xe2\x80\xa6</description>",
               sizeof("\xe2\x80\xa6</description>"));
        ok(strstr(s, want) != NULL
           && strstr(s, "<title>" "pod_") != NULL,
           "rss: description cut at 300 characters; the id as title");
    }

    /* no jobs, a bare channel */

    memset(&ch, 0, sizeof(ch));
    pg_buf_reset(&b);
    ok(pg_rss_write(&ch, jobs, 0, &b) == 0, "rss: empty feed");
    ok(strstr(buf_str(&b), "<item>") == NULL, "rss: no items");
    ok(xmllint_ok(&b, &skipped), "rss: empty feed well-formed");

    pg_job_free(&a);
    pg_job_free(&r);
    pg_job_free(&c);
    pg_job_free(&q);
    pg_buf_free(&b);
}


static void
test_rss_token(void)
{
    int                skipped;
    char               hex[PG_KEY_LEN + 1], t1[PG_FEED_TOKEN_LEN + 1];
    char               t2[PG_FEED_TOKEN_LEN + 1], want[200];
    pg_buf_t           b;
    pg_job_t           a, c;
    const char        *s;
    pg_rss_channel_t   ch;
    pg_job_t          *jobs[2];

    /* RFC 4231, test case 2 */
    ok(pg_key_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, hex)
       == 0
       && strcmp(hex, "5bdcc146bf60754e6a042426089575c7"
                      "5a003f089d2739839dec58b964ec3843") == 0,
       "hmac-sha256: RFC 4231 test case 2");

    memset(&b, 0, sizeof(pg_buf_t));

    make_full(&a);
    make_full(&c);
    pg_job_id_make(c.id, PG_JOB_PODCAST, 2, 0x12345678);
    jobs[0] = &a;
    jobs[1] = &c;

    ok(pg_feed_episode_token("s3cret-feed-token", 17, a.id, t1) == 0
       && pg_feed_episode_token("s3cret-feed-token", 17, c.id, t2) == 0
       && strlen(t1) == PG_FEED_TOKEN_LEN && strcmp(t1, t2) != 0,
       "rss token: one token per episode");
    ok(pg_key_hmac_sha256("s3cret-feed-token", 17, "audio:" ID_POD,
                          sizeof("audio:" ID_POD) - 1, hex) == 0
       && strncmp(hex, t1, PG_FEED_TOKEN_LEN) == 0,
       "rss token: HMAC-SHA256(token, \"audio:\" id), cut");
    ok(pg_feed_episode_token("another-feed-token", 18, a.id, t2) == 0
       && strcmp(t1, t2) != 0, "rss token: another secret, another token");

    memset(&ch, 0, sizeof(ch));
    ch.link = "http://127.0.0.1:8080";
    ch.token = "s3cret-feed-token";

    ok(pg_rss_write(&ch, jobs, 2, &b) == 0, "rss token: written");
    s = buf_str(&b);

    ok(xmllint_ok(&b, &skipped), "rss token: well-formed%s",
       skipped ? " # SKIP xmllint is not installed" : " (xmllint)");
    ok(strstr(s, "<atom:link href=\"http://127.0.0.1:8080/v1/podcasts/"
              "feed.xml?token=s3cret-feed-token\" rel=\"self\"") != NULL,
       "rss token: the self link carries the feed's token");

    snprintf(want, sizeof(want), "<enclosure url=\"http://127.0.0.1:8080"
             "/v1/podcasts/%s/audio?token=%s\" length=", a.id, t1);
    ok(strstr(s, want) != NULL, "rss token: an enclosure carries its "
       "episode's token");
    ok(pg_feed_episode_token(ch.token, strlen(ch.token), c.id, t2) == 0
       && strstr(s, t2) != NULL, "rss token: so does the other");
    ok(strstr(s, "/audio\"") == NULL, "rss token: no enclosure without");

    pg_job_free(&a);
    pg_job_free(&c);
    pg_buf_free(&b);
}


static void
test_rss_show(void)
{
    int                skipped;
    char               guid[37];
    pg_buf_t           b;
    pg_job_t           a, f;
    const char        *s, *item2;
    pg_rss_channel_t   ch;
    pg_job_t          *jobs[2];

    /* the Podcasting 2.0 specification's example */
    ok(pg_feed_guid("https://podnews.net/rss", 23, guid) == 0
       && strcmp(guid, "9b024349-ccf0-5f69-a609-6b82873eab3c") == 0,
       "guid: podnews.net/rss, the spec's example");
    ok(pg_feed_guid("podnews.net/rss/", 16, guid) == 0
       && strcmp(guid, "9b024349-ccf0-5f69-a609-6b82873eab3c") == 0,
       "guid: no scheme, a trailing slash: the same");
    ok(pg_feed_guid("http://podnews.net/rss", 22, guid) == 0
       && strcmp(guid, "9b024349-ccf0-5f69-a609-6b82873eab3c") == 0,
       "guid: http: the same");
    ok(pg_feed_guid("https://podnews.net/rss2", 24, guid) == 0
       && strcmp(guid, "9b024349-ccf0-5f69-a609-6b82873eab3c") != 0
       && guid[14] == '5' && strchr("89ab", guid[19]) != NULL,
       "guid: another URL, another v5 UUID");

    ok(pg_feed_enclosure_format("mp3") && pg_feed_enclosure_format("m4a")
       && !pg_feed_enclosure_format("opus") && !pg_feed_enclosure_format("flac")
       && !pg_feed_enclosure_format("wav"),
       "enclosure formats: mp3 and m4a only");

    memset(&b, 0, sizeof(pg_buf_t));

    make_full(&a);
    a.audio_bytes = 1000;
    a.duration_s = 61.4;
    a.updated_ms = 1764064900000LL;

    make_full(&f);
    pg_job_id_make(f.id, PG_JOB_PODCAST, 2, 0x12345678);
    free(f.format);
    f.format = strdup("flac");
    f.audio_bytes = 2000;
    f.updated_ms = 1764065000000LL;

    jobs[0] = &a;
    jobs[1] = &f;

    memset(&ch, 0, sizeof(ch));
    ch.title = "My Show";
    ch.link = "https://pods.example.com/sub/";
    ch.base = "https://pods.example.com/sub/v1/podcasts";
    ch.description = "About <things>";
    ch.author = "Jo & Al";
    ch.email = "jo@example.com";
    ch.language = "en-US";
    ch.category = "Technology/Tech News";
    ch.is_explicit = 1;

    ok(pg_rss_write(&ch, jobs, 2, &b) == 0, "rss show: written");
    s = buf_str(&b);

    ok(xmllint_ok(&b, &skipped), "rss show: well-formed%s",
       skipped ? " # SKIP xmllint is not installed" : " (xmllint)");
    ok(strstr(s, "xmlns:podcast=\"https://podcastindex.org/namespace/1.0\"")
       != NULL, "rss show: the podcast namespace");
    ok(strstr(s, "<link>https://pods.example.com/sub</link>") != NULL,
       "rss show: link");
    ok(strstr(s, "<language>en-US</language>") != NULL, "rss show: language");
    ok(strstr(s, "<atom:link href=\"https://pods.example.com/sub/v1/podcasts/"
              "feed.xml\" rel=\"self\"") != NULL, "rss show: self link");
    ok(strstr(s, "<itunes:owner>\n<itunes:name>Jo &amp; Al</itunes:name>\n"
              "<itunes:email>jo@example.com</itunes:email>\n</itunes:owner>")
       != NULL, "rss show: owner");
    ok(strstr(s, "<itunes:image href=\"https://pods.example.com/sub/v1/"
              "podcasts/artwork.png\"/>") != NULL, "rss show: artwork URL");
    ok(strstr(s, "<itunes:category text=\"Technology\">\n<itunes:category "
              "text=\"Tech News\"/>\n</itunes:category>") != NULL,
       "rss show: a subcategory");
    ok(strstr(s, "<itunes:explicit>true</itunes:explicit>") != NULL,
       "rss show: explicit");
    pg_feed_guid("pods.example.com/sub/v1/podcasts/feed.xml", 41, guid);
    ok(strstr(s, "<podcast:guid>") != NULL && strstr(s, guid) != NULL,
       "rss show: podcast:guid of the feed's URL");
    ok(strstr(s, "<podcast:locked owner=\"jo@example.com\">yes"
              "</podcast:locked>") != NULL, "rss show: locked with an owner");
    ok(strstr(s, "<lastBuildDate>Tue, 25 Nov 2025 10:03:20 GMT"
              "</lastBuildDate>") != NULL, "rss show: lastBuildDate, newest");

    item2 = strstr(s, f.id);
    ok(strstr(s, "<enclosure url=\"https://pods.example.com/sub/v1/podcasts/"
              ID_POD "/audio\" length=\"1000\" type=\"audio/mpeg\"/>") != NULL,
       "rss show: mp3 enclosure");
    ok(item2 != NULL && strstr(item2, "<enclosure") == NULL
       && strstr(item2, "<podcast:alternateEnclosure type=\"audio/flac\" "
                 "length=\"2000\" default=\"true\">\n<podcast:source uri=\""
                 "https://pods.example.com/sub/v1/podcasts/") != NULL,
       "rss show: flac: an alternateEnclosure, no enclosure");
    ok(strstr(s, "<itunes:duration>00:01:01</itunes:duration>") != NULL,
       "rss show: duration");
    ok(strstr(s, "<podcast:transcript url=\"https://pods.example.com/sub/v1/"
              "podcasts/" ID_POD "/transcript.vtt\" type=\"text/vtt\"/>")
       && strstr(s, "/transcript.srt\" type=\"application/x-subrip\"/>")
       && strstr(s, "/transcript.json\" type=\"application/json\"/>"),
       "rss show: transcripts");
    ok(strstr(s, "<podcast:chapters url=\"https://pods.example.com/sub/v1/"
              "podcasts/" ID_POD "/chapters.json\" type=\"application/"
              "json+chapters\"/>") != NULL, "rss show: chapters");

    /* no email: not locked, no itunes:email */

    ch.email = NULL;
    ch.token = "s3cret-feed-token";
    pg_buf_reset(&b);
    ok(pg_rss_write(&ch, jobs, 2, &b) == 0, "rss show: no email");
    s = buf_str(&b);
    ok(strstr(s, "<podcast:locked>no</podcast:locked>") != NULL
       && strstr(s, "itunes:email") == NULL, "rss show: unlocked");
    ok(strstr(s, "podcast:transcript") == NULL
       && strstr(s, "podcast:chapters") == NULL,
       "rss show: with a token, no transcript or chapters links");
    ok(strstr(s, "<podcast:guid>") != NULL && strstr(s, guid) != NULL,
       "rss show: the guid does not depend on the token");

    pg_job_free(&a);
    pg_job_free(&f);
    pg_buf_free(&b);
}


/* ---- the runner's setters ---------------------------------------------- */


static void
test_setters(void)
{
    pg_job_t    job, back;
    pg_buf_t    b;
    pg_error_t  err;

    memset(&job, 0, sizeof(job));
    memset(&b, 0, sizeof(b));

    ok(pg_job_set_string(&job.title, "First") == 0
       && strcmp(job.title, "First") == 0, "set_string: a copy");
    ok(pg_job_set_string(&job.title, "Second") == 0
       && strcmp(job.title, "Second") == 0, "set_string: replaced");
    ok(pg_job_set_string(&job.title, job.title) == 0
       && strcmp(job.title, "Second") == 0, "set_string: itself");
    ok(pg_job_set_string(&job.engine, NULL) == 0 && job.engine == NULL,
       "set_string: NULL is none");

    job.status = PG_JOB_RUNNING;
    ok(pg_job_set_failed(&job, "render_error", "no room") == 0
       && job.status == PG_JOB_FAILED
       && strcmp(job.error_code, "render_error") == 0
       && strcmp(job.error_message, "no room") == 0, "set_failed");
    ok(pg_job_set_failed(&job, NULL, NULL) == 0
       && strcmp(job.error_code, "server_error") == 0
       && strcmp(job.error_message, "failed") == 0,
       "set_failed: defaults replace the old error");

    ok(pg_job_set_result(&job, "[1,2]xyz", 5) == 0
       && strcmp(job.result, "[1,2]") == 0, "set_result: len bytes");

    /* what the setters made is a record that reads back */

    pg_job_id_make(job.id, PG_JOB_BATCH, 1700000000000LL, 7);
    job.kind = PG_JOB_BATCH;
    job.created_ms = 1700000000000LL;
    ok(pg_job_to_json(&job, &b) == 0
       && pg_job_from_json((char *) b.data, b.len, &back, &err) == 0
       && strcmp(back.result, "[1,2]") == 0
       && strcmp(back.error_code, "server_error") == 0,
       "setters: the record reads back");

    pg_job_free(&back);
    pg_buf_free(&b);
    pg_job_free(&job);
}


int
main(void)
{
    test_ids();
    test_setters();
    test_round_trip();
    test_hostile();
    test_mutations();
    test_public();
    test_vtt();
    test_transcript();
    test_xml();
    test_rss();
    test_rss_token();
    test_rss_show();

    return done_testing();
}
