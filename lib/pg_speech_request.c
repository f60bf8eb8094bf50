/*
 * podgen core: the OpenAI-compatible POST /v1/audio/speech request.
 */

#include <stdlib.h>
#include <string.h>

#include "pg_speech_request.h"
#include "pg_tts.h"
#include "pg_text.h"


/*
 * The model names podgen answers to: OpenAI's speech models, their dated
 * snapshots, and podgen's own; each speaks with flite all the same.
 * GET /v1/models lists them.
 */
const char  *pg_speech_models[] = {
    "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "flite",
    "tts-1-1106", "tts-1-hd-1106",
    "gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts-2025-12-15",
    NULL
};

/* the families a dated snapshot NAME-YYYY-MM-DD belongs to */
static const char  *pg_speech_families[] = {
    "tts-1", "tts-1-hd", "gpt-4o-mini-tts", NULL
};


static int
pg_speech_is_date(const char *s)
{
    int  i;

    /* YYYY-MM-DD, month 01-12, day 01-31, and nothing after */

    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-') {
                return 0;
            }

        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    if (s[10] != '\0') {
        return 0;
    }

    i = (s[5] - '0') * 10 + (s[6] - '0');
    if (i < 1 || i > 12) {
        return 0;
    }

    i = (s[8] - '0') * 10 + (s[9] - '0');

    return i >= 1 && i <= 31;
}


const char *
pg_speech_model_family(const char *model)
{
    size_t        n;
    const char  **m;

    for (m = pg_speech_models; *m; m++) {
        if (strcmp(*m, model) == 0) {
            break;
        }
    }

    if (*m) {
        /* a listed snapshot speaks as its family */

        if (strcmp(model, "tts-1-1106") == 0) {
            return "tts-1";
        }

        if (strcmp(model, "tts-1-hd-1106") == 0) {
            return "tts-1-hd";
        }

        if (strncmp(model, "gpt-4o-mini-tts-", 16) == 0) {
            return "gpt-4o-mini-tts";
        }

        return *m;
    }

    /* a dated snapshot not listed yet: FAMILY-YYYY-MM-DD */

    for (m = pg_speech_families; *m; m++) {
        n = strlen(*m);

        if (strncmp(model, *m, n) == 0 && model[n] == '-'
            && pg_speech_is_date(model + n + 1))
        {
            return *m;
        }
    }

    return NULL;
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


/*
 * "voice": a name, or a voice object {"id": name} as OpenAI's newer SDKs
 * send for custom voices; other members of the object are ignored.
 */

static int
pg_speech_get_voice(yajl_val tree, const char **voice, pg_error_t *err)
{
    yajl_val  v;

    v = pg_json_get(tree, "voice");

    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        return pg_json_get_string(tree, "voice", 1, voice, err);
    }

    if (pg_json_get_string(v, "id", 0, voice, err) != 0) {
        pg_error_set(err, 400, "voice", "invalid_type",
                     "'voice.id' must be a string");
        return -1;
    }

    if (*voice == NULL) {
        pg_error_set(err, 400, "voice", "missing_required_parameter",
                     "a voice object needs an 'id'");
        return -1;
    }

    return 0;
}


int
pg_speech_request_parse(const char *body, size_t len, size_t max_input,
    pg_voice_exists_pt voice_exists, void *data, pg_speech_request_t *req,
    pg_error_t *err)
{
    int          present;
    double       speed;
    yajl_val     tree;
    const char  *model, *family, *input, *voice, *format, *stream;
    const char  *instructions;

    memset(req, 0, sizeof(pg_speech_request_t));
    req->format = PG_FMT_MP3;
    req->speed = 1.0;

    tree = pg_json_parse_object(body, len, PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        return -1;
    }

    if (pg_json_get_string(tree, "model", 1, &model, err) != 0
        || pg_json_get_string(tree, "input", 1, &input, err) != 0
        || pg_speech_get_voice(tree, &voice, err) != 0
        || pg_json_get_string(tree, "response_format", 0, &format, err) != 0
        || pg_json_get_string(tree, "stream_format", 0, &stream, err) != 0
        || pg_json_get_string(tree, "instructions", 0, &instructions, err)
           != 0
        || pg_json_get_number(tree, "speed", &speed, &present, err) != 0)
    {
        goto failed;
    }

    family = pg_speech_model_family(model);

    if (family == NULL) {
        pg_error_set(err, 400, "model", "invalid_value",
                     "unknown model '%.64s'; use tts-1, tts-1-hd, "
                     "gpt-4o-mini-tts (or a dated snapshot of one) or "
                     "flite; GET /v1/models lists them", model);
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

        if (req->format == PG_FMT_M4A) {
            pg_error_set(err, 400, "response_format", "invalid_value",
                         "'m4a' is for podcast episodes (an MP4 is made "
                         "whole); for speech use aac, mp3, opus, wav, flac "
                         "or pcm");
            goto failed;
        }

        if (req->format == PG_FMT_UNKNOWN) {
            pg_error_set(err, 400, "response_format", "invalid_value",
                         "unknown response_format '%.32s'; use mp3, opus, "
                         "aac, wav, flac or pcm", format);
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

    req->model = strdup(family);
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
