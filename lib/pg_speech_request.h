/*
 * podgen core: the OpenAI-compatible POST /v1/audio/speech request
 * (plain C, no nginx): parsing, validation, normalization.
 */

#ifndef PG_SPEECH_REQUEST_H
#define PG_SPEECH_REQUEST_H

#include <stddef.h>

#include "pg_audio.h"
#include "pg_json.h"


#define PG_SPEED_MIN  0.25
#define PG_SPEED_MAX  4.0


typedef struct {
    char         *model;        /* the family of the model asked for */
    char         *voice;
    char         *text;         /* normalized input, what flite will say */
    size_t        text_len;
    size_t        input_chars;  /* code points of the raw input */
    pg_format_t   format;
    double        speed;
    unsigned      sse:1;        /* stream_format = "sse" */
    unsigned      timestamps:1; /* "timestamps": true (with sse only) */
} pg_speech_request_t;


/* The accepted model names, NULL-terminated (GET /v1/models). */
extern const char  *pg_speech_models[];

/*
 * The family a model name speaks as ("tts-1", "tts-1-hd", "gpt-4o-mini-tts",
 * "flite"): a listed name, or a dated snapshot FAMILY-YYYY-MM-DD; NULL for
 * an unknown model.
 */
const char *pg_speech_model_family(const char *model);

/* Returns 1 when a voice (or alias) of this name exists. */
typedef int (*pg_voice_exists_pt)(void *data, const char *name);

/*
 * Fills *req from a JSON body; returns 0, or -1 with *err set.
 * On success the caller frees *req with pg_speech_request_free().
 */
int pg_speech_request_parse(const char *body, size_t len, size_t max_input,
    pg_voice_exists_pt voice_exists, void *data, pg_speech_request_t *req,
    pg_error_t *err);

void pg_speech_request_free(pg_speech_request_t *req);

#endif /* PG_SPEECH_REQUEST_H */
