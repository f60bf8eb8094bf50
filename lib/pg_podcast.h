/*
 * podgen core: the request of POST /v1/podcasts (plain C, no nginx).
 */

#ifndef PG_PODCAST_H
#define PG_PODCAST_H

#include <stddef.h>

#include "pg_audio.h"
#include "pg_json.h"
#include "pg_script.h"


#define PG_PODCAST_TITLE_MAX  200


typedef struct {
    unsigned              edited:1;     /* "segments" given */
    pg_script_request_t   script_req;   /* what to write, when not edited */
    pg_script_t           script;       /* the edited script */
    pg_format_t           format;       /* "format", default mp3 */
    double                speed;        /* 0.25 .. 4, default 1 */
    char                 *title;        /* NULL: the script's */
} pg_podcast_request_t;


/*
 * Parses a request body: a script request (pg_script_request_from_json)
 * or "segments" (pg_script_from_segments), plus "format" (mp3, opus, wav,
 * flac, pcm), "speed" and "title" (1..200 bytes).  max_text bounds each
 * edited segment.  0, or -1 with err naming the field.
 */
int pg_podcast_request_parse(const char *body, size_t len, size_t max_source,
    size_t max_text, pg_podcast_request_t *req, pg_error_t *err);

void pg_podcast_request_free(pg_podcast_request_t *req);

#endif /* PG_PODCAST_H */
