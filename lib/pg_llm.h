/*
 * podgen core: the OpenAI chat-completions exchange that writes a script
 * (plain C, no nginx, no network): building the request body, reading
 * the reply envelope, and parsing and validating the script inside it.
 */

#ifndef PG_LLM_H
#define PG_LLM_H

#include <stddef.h>

#include "pg_buf.h"
#include "pg_json.h"
#include "pg_script.h"


/* Bytes of source text sent to the model at most. */
#define PG_LLM_MAX_SOURCE  24000


typedef struct {
    char    *content;           /* choices[0].message.content, malloc'd */
    size_t   content_len;
    size_t   prompt_tokens;
    size_t   completion_tokens;
    char    *finish_reason;     /* malloc'd, may be NULL */
} pg_llm_reply_t;


/*
 * The body of POST {base}/chat/completions: model; a system message with
 * the speech rules, the show's shape, the hosts (persona, a side in a
 * debate, who opens and closes) and the length in words, minutes and
 * turns; a user message with the topic, the focus and the source between
 * explicit markers, declared as data, with its truncation stated; and
 * response_format {"type":"json_schema",...} describing {title,
 * dialogue:[{speaker (one of the hosts), text}]}.  rejected_words, when
 * not 0, is the length of a first reply that missed the target: a second
 * user message states the shortfall and asks for the script again.
 * 0 or -1.
 */
int pg_llm_build_request(const pg_script_request_t *req, const char *model,
    size_t rejected_words, pg_buf_t *out);

/*
 * Long episodes (PG_LLM_LONG_WORDS words and more) are written in parts:
 * one call plans them (an outline: a title and 2..PG_LLM_SECTIONS_MAX
 * sections {title, points}, about PG_LLM_SECTION_WORDS words each), one
 * call per part writes it, all at once; the first part greets, the last
 * says goodbye, the others do neither.
 */
#define PG_LLM_LONG_WORDS     1500
#define PG_LLM_SECTION_WORDS  700
#define PG_LLM_SECTIONS_MAX   8

typedef struct {
    char    *title;
    char    *points;
} pg_llm_section_t;

typedef struct {
    char              *title;           /* may be NULL */
    size_t             nsections;
    pg_llm_section_t   sections[PG_LLM_SECTIONS_MAX];
} pg_llm_outline_t;

/* The number of parts for the request, or 0 for a single call. */
size_t pg_llm_sections(const pg_script_request_t *req);

int pg_llm_build_outline_request(const pg_script_request_t *req,
    const char *model, pg_buf_t *out);

/* The outline in a reply's content; -1 with err (invalid_llm_reply). */
int pg_llm_parse_outline(const char *json, size_t len, size_t n,
    pg_llm_outline_t *outline, pg_error_t *err);
void pg_llm_outline_free(pg_llm_outline_t *outline);

/* The request that writes part (0-based) of the outline. */
int pg_llm_build_part_request(const pg_script_request_t *req,
    const char *model, const pg_llm_outline_t *outline, size_t part,
    pg_buf_t *out);

/*
 * The parts' turns in order, as one script titled by the outline; the
 * parts' segments move into it (pg_script_free() them after).  0 or -1
 * (out of memory, or more than 400 turns in all).
 */
int pg_llm_join(pg_script_t *parts, size_t n,
    const pg_llm_outline_t *outline, const pg_script_request_t *req,
    pg_script_t *out);

/*
 * 1 when a script of this many words is close enough to the target (80%
 * to 125%), else 0.
 */
int pg_llm_length_ok(const pg_script_request_t *req, size_t words);

/*
 * Reads an OpenAI chat.completion object.  Returns 0, or -1 with *err set
 * (code "invalid_llm_reply"; an OpenAI error object in the body gives its
 * message).
 */
int pg_llm_parse_reply(const char *body, size_t len, pg_llm_reply_t *reply,
    pg_error_t *err);

void pg_llm_reply_free(pg_llm_reply_t *reply);

/*
 * Parses and validates a script written by an LLM: the JSON object
 * {"title": string, "dialogue": [{"speaker": string, "text": string}, ...]}
 * where every speaker must be one of the hosts' names (case-insensitive;
 * stored as the host's index), every text non-empty after trimming and at
 * most 2000 bytes, 2..400 turns, title 1..200 bytes (a missing title is
 * made from the topic).  Also accepts the object wrapped in a ```json
 * fence.  Returns 0, or -1 with a reason in err (code "invalid_llm_reply").
 */
int pg_script_from_llm_json(const char *json, size_t len,
    const pg_script_request_t *req, pg_script_t *script, pg_error_t *err);

/*
 * Retry-After header value (seconds, or an HTTP date is ignored): the
 * delay in milliseconds, 0 when absent or unusable, capped at max_ms.
 */
unsigned long pg_llm_retry_after(const char *value, size_t len,
    unsigned long max_ms);

#endif /* PG_LLM_H */
