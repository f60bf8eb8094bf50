/*
 * libFuzzer target for lib/pg_podcast.c (POST /v1/podcasts bodies: a
 * script request or an edited script given as segments) and
 * lib/pg_speech_request.c (POST /v1/audio/speech bodies, which batch items
 * carry too).  Promises checked; any violation aborts:
 *
 *   - a parse either succeeds with a usable request or fails with an
 *     error whose status is 400 and whose code is set;
 *   - an edited script has 1..400 segments, 1..6 hosts, every speaker
 *     names a host, every text is non-empty;
 *   - a script request has a canonical form.
 *
 *   make fuzz            (every target, FUZZ_TIME seconds each)
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_podcast.h"
#include "pg_speech_request.h"


#define check(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_podcast: %s:%d: %s\n",                     \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
fuzz_voice_exists(void *data, const char *name)
{
    return strcmp(name, "alloy") == 0 || strcmp(name, "slt") == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                i;
    pg_buf_t              canon;
    pg_error_t            err;
    pg_speech_request_t   sreq;
    pg_podcast_request_t  req;

    memset(&err, 0, sizeof(pg_error_t));

    if (pg_podcast_request_parse((const char *) data, size, 64 * 1024, 4096,
                                 &req, &err)
        != 0)
    {
        check(err.status == 400 || err.status == 500);
        check(err.code != NULL);

    } else {
        check(req.format != PG_FMT_AAC && req.format != PG_FMT_UNKNOWN);
        check(req.speed >= 0.25 && req.speed <= 4.0);
        check(req.title == NULL || (strlen(req.title) > 0
                                    && strlen(req.title) <= 200));

        if (req.edited) {
            check(req.script.nsegments >= 1 && req.script.nsegments <= 400);
            check(req.script.nhosts >= 1 && req.script.nhosts <= 6);

            for (i = 0; i < req.script.nsegments; i++) {
                check(req.script.segments[i].speaker < req.script.nhosts);
                check(req.script.segments[i].text != NULL
                      && req.script.segments[i].text[0] != '\0');
            }

        } else {
            memset(&canon, 0, sizeof(pg_buf_t));
            check(pg_script_request_canonical(&req.script_req, &canon) == 0);
            check(canon.len > 2 && canon.data[0] == '{');
            pg_buf_free(&canon);
        }

        pg_podcast_request_free(&req);
    }

    memset(&err, 0, sizeof(pg_error_t));

    if (pg_speech_request_parse((const char *) data, size, 4096,
                                fuzz_voice_exists, NULL, &sreq, &err)
        != 0)
    {
        check(err.status >= 400 && err.status < 500);
        check(err.code != NULL);

    } else {
        check(sreq.text != NULL && sreq.text_len > 0);
        check(strlen(sreq.text) == sreq.text_len);
        check(sreq.speed >= 0.25 && sreq.speed <= 4.0);
        pg_speech_request_free(&sreq);
    }

    return 0;
}
