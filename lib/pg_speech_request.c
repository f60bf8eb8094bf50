/*
 * podgen core: the OpenAI-compatible POST /v1/audio/speech request.
 */

#include <stdlib.h>
#include <string.h>

#include "pg_speech_request.h"
#include "pg_tts.h"
#include "pg_text.h"


static const char  *pg_speech_models[] = {
    "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "flite", NULL
};


static int
pg_speech_model_known(const char *model)
{
    const char  **m;

    for (m = pg_speech_models; *m; m++) {
        if (strcmp(*m, model) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
pg_speech_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


static int
pg_speech_parse_input(const char *input, size_t max_input,
    pg_speech_request_t *req, pg_error_t *err)
{
    size_t       len, n, i;
    const char  *start, *end;

    len = strlen(input);

    /* the parser already checked the body, but an escape may make bad
     * UTF-8; yajl turns a lone surrogate "\ud800" into '?', check anyway */

    if (!pg_utf8_valid(input, len)) {
        pg_error_set(err, 400, "input", "invalid_utf8",
                     "'input' is not valid UTF-8 text");
        return -1;
    }

    /* the limit applies to what would be spoken: surrounding whitespace
     * (a trailing newline from a file, say) does not count */

    start = input;
    end = input + len;

    while (start < end && pg_speech_is_space(*start)) {
        start++;
    }

    while (end > start && pg_speech_is_space(end[-1])) {
        end--;
    }

    if (start == end) {
        pg_error_set(err, 400, "input", "empty_input",
                     "'input' is empty");
        return -1;
    }

    n = pg_utf8_length(start, end - start);
    req->input_chars = n;

    if (n > max_input) {
        pg_error_set(err, 400, "input", "string_above_max_length",
                     "'input' is %zu characters long; the maximum is %zu",
                     n, max_input);
        return -1;
    }

    req->text = pg_text_normalize(start, end - start, &req->text_len);
    if (req->text == NULL) {
        pg_error_set(err, 500, NULL, "server_error", "out of memory");
        err->type = "server_error";
        return -1;
    }

    for (i = 0; i < req->text_len; i++) {
        if ((req->text[i] >= 'a' && req->text[i] <= 'z')
            || (req->text[i] >= 'A' && req->text[i] <= 'Z')
            || (req->text[i] >= '0' && req->text[i] <= '9'))
        {
            return 0;
        }
    }

    pg_error_set(err, 400, "input", "empty_input",
                 "'input' has nothing that can be spoken");
    return -1;
}


int
pg_speech_request_parse(const char *body, size_t len, size_t max_input,
    pg_voice_exists_pt voice_exists, void *data, pg_speech_request_t *req,
    pg_error_t *err)
{
    int          present;
    double       speed;
    yajl_val     tree;
    const char  *model, *input, *voice, *format, *stream, *instructions;

    memset(req, 0, sizeof(pg_speech_request_t));
    req->format = PG_FMT_MP3;
    req->speed = 1.0;

    tree = pg_json_parse_object(body, len, PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        return -1;
    }

    if (pg_json_get_string(tree, "model", 1, &model, err) != 0
        || pg_json_get_string(tree, "input", 1, &input, err) != 0
        || pg_json_get_string(tree, "voice", 1, &voice, err) != 0
        || pg_json_get_string(tree, "response_format", 0, &format, err) != 0
        || pg_json_get_string(tree, "stream_format", 0, &stream, err) != 0
        || pg_json_get_string(tree, "instructions", 0, &instructions, err)
           != 0
        || pg_json_get_number(tree, "speed", &speed, &present, err) != 0)
    {
        goto failed;
    }

    if (!pg_speech_model_known(model)) {
        pg_error_set(err, 400, "model", "invalid_value",
                     "unknown model '%.64s'; use tts-1, tts-1-hd, "
                     "gpt-4o-mini-tts or flite", model);
        goto failed;
    }

    if (voice[0] == '\0' || strlen(voice) > 64
        || !voice_exists(data, voice))
    {
        pg_error_set(err, 400, "voice", "invalid_value",
                     "unknown voice '%.64s'; GET /v1/voices lists them",
                     voice);
        goto failed;
    }

    if (format) {
        req->format = pg_format_from_name(format, strlen(format));

        if (req->format == PG_FMT_AAC) {
            pg_error_set(err, 400, "response_format", "unsupported_format",
                         "'aac' is not supported; use mp3, opus, wav, "
                         "flac or pcm");
            goto failed;
        }

        if (req->format == PG_FMT_UNKNOWN) {
            pg_error_set(err, 400, "response_format", "invalid_value",
                         "unknown response_format '%.32s'; use mp3, opus, "
                         "wav, flac or pcm", format);
            goto failed;
        }
    }

    if (present) {
        if (!(speed >= PG_SPEED_MIN && speed <= PG_SPEED_MAX)) {
            pg_error_set(err, 400, "speed", "invalid_value",
                         "'speed' must be between 0.25 and 4.0");
            goto failed;
        }

        req->speed = speed;
    }

    if (stream) {
        if (strcmp(stream, "sse") == 0) {
            req->sse = 1;

        } else if (strcmp(stream, "audio") != 0) {
            pg_error_set(err, 400, "stream_format", "invalid_value",
                         "'stream_format' must be 'audio' or 'sse'");
            goto failed;
        }
    }

    {
        yajl_val  ts = pg_json_get(tree, "timestamps");

        if (ts != NULL && !YAJL_IS_TRUE(ts) && !YAJL_IS_FALSE(ts)
            && !YAJL_IS_NULL(ts))
        {
            pg_error_set(err, 400, "timestamps", "invalid_type",
                         "'timestamps' must be a boolean");
            goto failed;
        }

        req->timestamps = (ts != NULL && YAJL_IS_TRUE(ts));
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

    if (req->timestamps && !req->sse) {
        pg_error_set(err, 400, "timestamps", "invalid_value",
                     "'timestamps' needs 'stream_format': 'sse' (the word "
                     "timings come as speech.audio.timestamps events)");
        goto failed;
    }

    if (pg_speech_parse_input(input, max_input, req, err) != 0) {
        goto failed;
    }

    req->model = strdup(model);
    req->voice = strdup(voice);

    if (req->model == NULL || req->voice == NULL) {
        pg_error_set(err, 500, NULL, "server_error", "out of memory");
        err->type = "server_error";
        goto failed;
    }

    yajl_tree_free(tree);

    return 0;

failed:

    yajl_tree_free(tree);
    pg_speech_request_free(req);

    return -1;
}


void
pg_speech_request_free(pg_speech_request_t *req)
{
    free(req->model);
    free(req->voice);
    free(req->text);

    req->model = NULL;
    req->voice = NULL;
    req->text = NULL;
}
