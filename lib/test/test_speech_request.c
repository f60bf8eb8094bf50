/*
 * The speech request parser: every field rule and hostile bodies.
 */

#include <stdlib.h>
#include <string.h>

#include "pg_speech_request.h"
#include "unit.h"


static int
voice_exists(void *data, const char *name)
{
    return strcmp(name, "slt") == 0 || strcmp(name, "alloy") == 0;
}


/* parses body; returns the error code ("ok" on success) */

static const char *
parse(const char *body, size_t len, pg_speech_request_t *req,
    pg_error_t *err)
{
    memset(err, 0, sizeof(pg_error_t));

    if (pg_speech_request_parse(body, len, 100, voice_exists, NULL, req, err)
        == 0)
    {
        return "ok";
    }

    return err->code;
}


static void
expect(const char *body, const char *code, const char *param,
    const char *name)
{
    const char           *got;
    pg_error_t            err;
    pg_speech_request_t   req;

    got = parse(body, strlen(body), &req, &err);

    is_str(got, code, "%s: code", name);

    if (strcmp(got, "ok") == 0) {
        pg_speech_request_free(&req);
    }

    if (strcmp(code, "ok") == 0) {
        return;
    }

    is_int(err.status, 400, "%s: status", name);
    is_str(err.param, param, "%s: param", name);
    ok(err.message[0] != '\0', "%s: message \"%s\"", name, err.message);
}


#define GOOD  "\"model\":\"tts-1\",\"voice\":\"alloy\""


int
main(void)
{
    char                 *big;
    size_t                i, n;
    pg_error_t            err;
    pg_speech_request_t   req;

    /* a good request and its defaults */

    big = "{" GOOD ",\"input\":\"Hello there.\"}";
    is_str(parse(big, strlen(big), &req, &err), "ok", "minimal request");
    is_int(req.format, PG_FMT_MP3, "mp3 by default");
    ok(req.speed == 1.0, "speed 1 by default");
    ok(!req.sse, "audio stream by default");
    is_str(req.text, "Hello there.", "input normalized");
    pg_speech_request_free(&req);

    is_str(parse("{" GOOD ",\"input\":\"Caf\xc3\xa9 \xe2\x80\x94 ok\","
                 "\"response_format\":\"opus\",\"speed\":2,"
                 "\"stream_format\":\"sse\",\"instructions\":\"calm\","
                 "\"extra\":{\"a\":[1,2]}}",
                 strlen("{" GOOD ",\"input\":\"Caf\xc3\xa9 \xe2\x80\x94 ok\","
                 "\"response_format\":\"opus\",\"speed\":2,"
                 "\"stream_format\":\"sse\",\"instructions\":\"calm\","
                 "\"extra\":{\"a\":[1,2]}}"), &req, &err),
           "ok", "every field, unknown ones ignored");
    is_int(req.format, PG_FMT_OPUS, "opus");
    ok(req.speed == 2.0, "speed 2");
    ok(req.sse, "sse");
    is_int(req.input_chars, 9, "input counted in characters");
    pg_speech_request_free(&req);

    /* the body */

    expect("", "invalid_json", NULL, "empty body");
    expect("nope", "invalid_json", NULL, "not JSON");
    expect("[1,2]", "invalid_json", NULL, "an array");
    expect("\"str\"", "invalid_json", NULL, "a string");
    expect("{" GOOD ",\"input\":\"x\"", "invalid_json", NULL, "truncated");
    expect("{" GOOD ",\"input\":\"x\"} {}", "invalid_json", NULL,
           "trailing garbage");
    expect("{" GOOD ",\"input\":\"a\xc0\xaf\"}", "invalid_utf8", NULL,
           "overlong UTF-8");
    expect("{" GOOD ",\"input\":\"a\xed\xa0\x80\"}", "invalid_utf8", NULL,
           "surrogate in UTF-8");
    /* (yajl would turn it into '?', or pair it with any escape) */
    expect("{" GOOD ",\"input\":\"a\\ud800\"}", "invalid_utf8", NULL,
           "escaped lone high surrogate");
    expect("{" GOOD ",\"input\":\"a\\ud800\\u0041\"}", "invalid_utf8", NULL,
           "escaped high surrogate before another escape");
    expect("{" GOOD ",\"input\":\"a\\ud83d\\ude00\"}", "ok", NULL,
           "an escaped surrogate pair");
    expect("{" GOOD ",\"input\":\"a\\u0000b\"}", "invalid_json", NULL,
           "escaped NUL");
    expect("{" GOOD ",\"input\":\"tab\there\"}", "invalid_json", NULL,
           "raw control character in a string");

    is_str(parse("{\"input\":\"a\0b\"}", 14, &req, &err), "invalid_json",
           "raw NUL byte");

    /* nesting: 32 levels are fine, 33 are not */

    big = malloc(1 << 20);

    n = 0;
    n += sprintf(big, "{" GOOD ",\"input\":\"hi\",\"x\":");
    for (i = 0; i < 31; i++) {
        big[n++] = '[';
    }
    for (i = 0; i < 31; i++) {
        big[n++] = ']';
    }
    big[n++] = '}';
    big[n] = '\0';
    expect(big, "ok", NULL, "32 levels deep");

    n = sprintf(big, "{" GOOD ",\"input\":\"hi\",\"x\":");
    for (i = 0; i < 32; i++) {
        big[n++] = '[';
    }
    for (i = 0; i < 32; i++) {
        big[n++] = ']';
    }
    big[n++] = '}';
    big[n] = '\0';
    expect(big, "nesting_too_deep", NULL, "33 levels deep");

    memset(big, '[', (1 << 20) - 1);
    big[(1 << 20) - 1] = '\0';
    expect(big, "nesting_too_deep", NULL, "a megabyte of [");

    /* brackets inside strings do not count */
    n = sprintf(big, "{" GOOD ",\"input\":\"");
    for (i = 0; i < 60; i++) {
        big[n++] = '[';
    }
    n += sprintf(big + n, " hi\"}");
    expect(big, "ok", NULL, "brackets in a string are not nesting");

    free(big);

    /* fields */

    expect("{\"voice\":\"slt\",\"input\":\"x\"}", "missing_required_parameter",
           "model", "no model");
    expect("{\"model\":\"tts-1\",\"input\":\"x\"}",
           "missing_required_parameter", "voice", "no voice");
    expect("{" GOOD "}", "missing_required_parameter", "input", "no input");
    expect("{" GOOD ",\"input\":5}", "invalid_type", "input", "input number");
    expect("{\"model\":null,\"voice\":\"slt\",\"input\":\"x\"}", "invalid_type",
           "model", "model null");
    expect("{\"model\":\"tts-1\",\"voice\":[],\"input\":\"x\"}",
           "invalid_type", "voice", "voice array");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":\"fast\"}", "invalid_type",
           "speed", "speed string");
    expect("{" GOOD ",\"input\":\"x\",\"response_format\":1}", "invalid_type",
           "response_format", "format number");
    expect("{" GOOD ",\"input\":\"\"}", "empty_input", "input", "empty input");
    expect("{" GOOD ",\"input\":\" \\n\\t \"}", "empty_input", "input",
           "whitespace input");
    expect("{" GOOD ",\"input\":\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"}",
           "empty_input", "input", "only emoji: nothing to say");
    expect("{\"model\":\"gpt-9\",\"voice\":\"slt\",\"input\":\"x\"}",
           "invalid_value", "model", "unknown model");
    expect("{\"model\":\"tts-1\",\"voice\":\"bob\",\"input\":\"x\"}",
           "invalid_value", "voice", "unknown voice");
    expect("{" GOOD ",\"input\":\"x\",\"response_format\":\"aac\"}",
           "ok", NULL, "aac");
    expect("{" GOOD ",\"input\":\"x\",\"response_format\":\"m4a\"}",
           "invalid_value", "response_format", "m4a is for episodes");
    expect("{" GOOD ",\"input\":\"x\",\"response_format\":\"MP3\"}",
           "invalid_value", "response_format", "format is case-sensitive");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":0.2}", "invalid_value",
           "speed", "speed too low");
    expect("{" GOOD ",\"input\":\"x\",\"language\":\"de\"}",
           "unsupported_language", "language", "German: no voice speaks it");
    expect("{" GOOD ",\"input\":\"x\",\"language\":\"eng\"}",
           "unsupported_language", "language", "'eng' is not 'en'");
    expect("{" GOOD ",\"input\":\"x\",\"language\":\"EN-gb\"}", "ok",
           NULL, "en-GB in any case is spoken");
    expect("{" GOOD ",\"input\":\"x\",\"language\":\"en\"}", "ok",
           NULL, "en is spoken");
    expect("{" GOOD ",\"input\":\"x\",\"timestamps\":true}",
           "invalid_value", "timestamps", "timestamps without sse");
    expect("{" GOOD ",\"input\":\"x\",\"timestamps\":true,"
           "\"stream_format\":\"sse\"}", "ok", NULL, "timestamps with sse");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":4.01}", "invalid_value",
           "speed", "speed too high");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":0.25}", "ok", NULL,
           "speed 0.25");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":4}", "ok", NULL, "speed 4");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":1e999}", "invalid_value",
           "speed", "speed 1e999");
    expect("{" GOOD ",\"input\":\"x\",\"speed\":NaN}", "invalid_json", NULL,
           "speed NaN");
    expect("{" GOOD ",\"input\":\"x\",\"stream_format\":\"ws\"}",
           "invalid_value", "stream_format", "stream_format ws");
    expect("{" GOOD ",\"input\":\"first\",\"input\":7}", "invalid_type",
           "input", "duplicate keys: the last wins");

    /* today's OpenAI surface: snapshots, voice objects */

    big = "{\"model\":\"gpt-4o-mini-tts-2025-12-15\",\"voice\":{\"id\":"
          "\"alloy\",\"x\":1},\"input\":\"Hi.\"}";
    is_str(parse(big, strlen(big), &req, &err), "ok",
           "a listed snapshot and a voice object");
    is_str(req.model, "gpt-4o-mini-tts", "the snapshot speaks as its family");
    is_str(req.voice, "alloy", "the voice object's id");
    pg_speech_request_free(&req);

    big = "{\"model\":\"gpt-4o-mini-tts-2031-01-31\",\"voice\":\"slt\","
          "\"input\":\"Hi.\"}";
    is_str(parse(big, strlen(big), &req, &err), "ok",
           "a snapshot not released yet");
    is_str(req.model, "gpt-4o-mini-tts", "its family");
    pg_speech_request_free(&req);

    big = "{\"model\":\"tts-1-hd-1106\",\"voice\":\"slt\","
          "\"input\":\"Hi.\"}";
    is_str(parse(big, strlen(big), &req, &err), "ok", "tts-1-hd-1106");
    is_str(req.model, "tts-1-hd", "speaks as tts-1-hd");
    pg_speech_request_free(&req);

    is_str(pg_speech_model_family("tts-1-2024-02-29"), "tts-1",
           "tts-1 dated");
    is_str(pg_speech_model_family("flite"), "flite", "flite");
    ok(pg_speech_model_family("gpt-4o-mini-tts-2025-13-01") == NULL,
       "month 13 is no date");
    ok(pg_speech_model_family("gpt-4o-mini-tts-2025-12-15x") == NULL,
       "trailing garbage after the date");
    ok(pg_speech_model_family("gpt-4o-mini-tts-") == NULL, "no date");
    ok(pg_speech_model_family("flite-2025-01-01") == NULL,
       "flite has no snapshots");
    ok(pg_speech_model_family("tts-1-hd-2025-1-01") == NULL,
       "a short month");

    expect("{\"model\":\"tts-1\",\"voice\":{\"id\":\"bob\"},"
           "\"input\":\"x\"}", "invalid_value", "voice",
           "a voice object of an unknown voice");
    expect("{\"model\":\"tts-1\",\"voice\":{\"id\":3},\"input\":\"x\"}",
           "invalid_type", "voice", "a voice object with a number id");
    expect("{\"model\":\"tts-1\",\"voice\":{},\"input\":\"x\"}",
           "missing_required_parameter", "voice",
           "a voice object without an id");

    /* the limit counts characters, not bytes */

    big = malloc(512);
    n = sprintf(big, "{" GOOD ",\"input\":\"");
    for (i = 0; i < 100; i++) {
        n += sprintf(big + n, "\xc3\xa9");
    }
    sprintf(big + n, "\"}");
    expect(big, "ok", NULL, "100 two-byte characters fit a limit of 100");

    n = sprintf(big, "{" GOOD ",\"input\":\"");
    for (i = 0; i < 101; i++) {
        big[n++] = 'a';
    }
    sprintf(big + n, "\"}");
    expect(big, "string_above_max_length", "input", "101 characters");
    free(big);

    return done_testing();
}
