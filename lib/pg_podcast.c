/*
 * podgen core: the request of POST /v1/podcasts.
 */

#include <stdlib.h>
#include <string.h>

#include "pg_podcast.h"
#include "pg_tts.h"
#include "pg_speech_request.h"
#include "pg_text.h"


static int pg_podcast_title(yajl_val obj, pg_podcast_request_t *req,
    pg_error_t *err);


int
pg_podcast_request_parse(const char *body, size_t len, size_t max_source,
    size_t max_text, pg_podcast_request_t *req, pg_error_t *err)
{
    int          present;
    yajl_val     tree;
    const char  *fmt;

    memset(req, 0, sizeof(pg_podcast_request_t));
    req->format = PG_FMT_MP3;
    req->speed = 1.0;

    tree = pg_json_parse_object(body, len, PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        return -1;
    }

    if (pg_json_get_string(tree, "format", 0, &fmt, err) != 0) {
        goto failed;
    }

    if (fmt) {
        req->format = pg_format_from_name(fmt, strlen(fmt));

        if (req->format == PG_FMT_AAC || req->format == PG_FMT_UNKNOWN) {
            pg_error_set(err, 400, "format", "invalid_value",
                         "unsupported format '%.16s'; use mp3, m4a, opus, "
                         "wav, flac or pcm", fmt);
            goto failed;
        }
    }

    present = 0;

    if (pg_json_get_number(tree, "speed", &req->speed, &present, err) != 0) {
        goto failed;
    }

    if (present && !(req->speed >= PG_SPEED_MIN && req->speed <= PG_SPEED_MAX))
    {
        pg_error_set(err, 400, "speed", "invalid_value",
                     "'speed' must be between 0.25 and 4.0");
        goto failed;
    }

    if (pg_podcast_title(tree, req, err) != 0) {
        goto failed;
    }

    {
        yajl_val  lv = pg_json_get(tree, "language");

        if (lv != NULL && YAJL_IS_STRING(lv)
            && !pg_tts_speaks(lv->u.string, strlen(lv->u.string)))
        {
            pg_error_set(err, 400, "language", "unsupported_language",
                         "no voice here speaks '%.35s': the voices speak "
                         PG_TTS_LANGUAGES " (GET /v1/voices lists them)",
                         lv->u.string);
            goto failed;
        }
    }

    if (pg_json_get(tree, "segments") != NULL) {
        if (pg_script_from_segments(tree, max_text, &req->script, err) != 0) {
            goto failed;
        }

        req->edited = 1;

    } else if (pg_script_request_from_json(tree, max_source, &req->script_req,
                                           err)
               != 0)
    {
        goto failed;
    }

    yajl_tree_free(tree);
    return 0;

failed:

    yajl_tree_free(tree);
    pg_podcast_request_free(req);
    return -1;
}


static int
pg_podcast_title(yajl_val obj, pg_podcast_request_t *req, pg_error_t *err)
{
    size_t       i, len;
    const char  *t;

    if (pg_json_get_string(obj, "title", 0, &t, err) != 0) {
        return -1;
    }

    if (t == NULL) {
        return 0;
    }

    len = strlen(t);

    while (len && (t[0] == ' ' || t[0] == '\t' || t[0] == '\n'
                   || t[0] == '\r'))
    {
        t++;
        len--;
    }

    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'
                   || t[len - 1] == '\n' || t[len - 1] == '\r'))
    {
        len--;
    }

    if (len == 0 || len > PG_PODCAST_TITLE_MAX) {
        pg_error_set(err, 400, "title", "invalid_value",
                     "'title' must be 1 to %d bytes", PG_PODCAST_TITLE_MAX);
        return -1;
    }

    req->title = malloc(len + 1);
    if (req->title == NULL) {
        pg_error_set(err, 500, NULL, "server_error", "out of memory");
        return -1;
    }

    /* a title is one line; markup stays, every writer escapes it */

    for (i = 0; i < len; i++) {
        req->title[i] = ((unsigned char) t[i] < 0x20 || t[i] == 0x7f)
                        ? ' ' : t[i];
    }

    req->title[len] = '\0';

    return 0;
}


void
pg_podcast_request_free(pg_podcast_request_t *req)
{
    pg_script_request_free(&req->script_req);
    pg_script_free(&req->script);
    free(req->title);
    memset(req, 0, sizeof(pg_podcast_request_t));
}
