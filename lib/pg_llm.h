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
