/*
 * podgen core: the OpenAI chat-completions exchange that writes a script.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "pg_llm.h"


static const char  *pg_llm_style_notes[] = {
    /* PG_STYLE_DEEP_DIVE */
    "a deep dive: an intro, several sections that explore the material in "
    "depth with follow-up questions, a recap and an outro",
    /* PG_STYLE_BRIEF */
    "a brief: a short intro, the key points quickly, a one-line outro",
    /* PG_STYLE_DEBATE */
    "a debate: the hosts take opposite sides, answer each other's points "
    "and each states a final position",
    /* PG_STYLE_INTERVIEW */
    "an interview: the first host interviews the others as guests, asking "
    "questions they answer from the material",
    /* PG_STYLE_CRITIQUE */
    "a critique: strengths, then weaknesses and open questions about the "
    "claims, then a verdict"
};


#define pg_gen_lit(g, s)  yajl_gen_string(g, (const unsigned char *) s,     \
                                          sizeof(s) - 1)


static void
pg_gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}


static int
pg_llm_system_prompt(const pg_script_request_t *req, pg_buf_t *b)
{
    char    line[512];
    size_t  i;

    snprintf(line, sizeof(line),
             "You write podcast scripts: natural, engaging spoken dialogue "
             "for %zu host%s. The show is %s. Write about %zu words in "
             "language \"%s\". Use only facts from the source text when "
             "one is given; do not invent statistics. Reply with a JSON "
             "object only: {\"title\": string, \"dialogue\": "
             "[{\"speaker\": host name, \"text\": what they say}]}. "
             "Hosts:",
             req->nhosts, req->nhosts == 1 ? "" : "s",
             pg_llm_style_notes[req->style], req->target_words,
             req->language ? req->language : "en");

    if (pg_buf_append_str(b, line) != 0) {
        return -1;
    }

    for (i = 0; i < req->nhosts; i++) {
        snprintf(line, sizeof(line), "%s %s (%s)", i ? "," : "",
                 req->hosts[i].name,
                 req->hosts[i].role ? req->hosts[i].role : "host");

        if (pg_buf_append_str(b, line) != 0) {
            return -1;
        }
    }

    return pg_buf_append_str(b, ".");
}


static int
pg_llm_user_prompt(const pg_script_request_t *req, pg_buf_t *b)
{
    size_t  len;

    if (req->topic
        && (pg_buf_append_str(b, "Topic: ") != 0
            || pg_buf_append_str(b, req->topic) != 0
            || pg_buf_append_str(b, "\n") != 0))
    {
        return -1;
    }

    if (req->focus
        && (pg_buf_append_str(b, "Focus on: ") != 0
            || pg_buf_append_str(b, req->focus) != 0
            || pg_buf_append_str(b, "\n") != 0))
    {
        return -1;
    }

    if (req->source_text) {
        len = strlen(req->source_text);

        /* a long source is cut at a character boundary */
        if (len > PG_LLM_MAX_SOURCE) {
            len = PG_LLM_MAX_SOURCE;

            while (len > 0
                   && ((unsigned char) req->source_text[len] & 0xc0) == 0x80)
            {
                len--;
            }
        }

        if (pg_buf_append_str(b, "Source text:\n") != 0
            || pg_buf_append(b, req->source_text, len) != 0)
        {
            return -1;
        }

    } else if (pg_buf_append_str(b, "No source text: discuss the topic "
                                    "in general terms.") != 0)
    {
        return -1;
    }

    return 0;
}


static void
pg_llm_gen_schema(yajl_gen g, const pg_script_request_t *req)
{
    size_t  i;

    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "object");
    pg_gen_lit(g, "additionalProperties");
    yajl_gen_bool(g, 0);
    pg_gen_lit(g, "required");
    yajl_gen_array_open(g);
    pg_gen_lit(g, "title");
    pg_gen_lit(g, "dialogue");
    yajl_gen_array_close(g);

    pg_gen_lit(g, "properties");
    yajl_gen_map_open(g);

    pg_gen_lit(g, "title");
    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "string");
    yajl_gen_map_close(g);

    pg_gen_lit(g, "dialogue");
    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "array");
    pg_gen_lit(g, "items");

    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "object");
    pg_gen_lit(g, "additionalProperties");
    yajl_gen_bool(g, 0);
    pg_gen_lit(g, "required");
    yajl_gen_array_open(g);
    pg_gen_lit(g, "speaker");
    pg_gen_lit(g, "text");
    yajl_gen_array_close(g);
    pg_gen_lit(g, "properties");
    yajl_gen_map_open(g);

    pg_gen_lit(g, "speaker");
    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "string");
    pg_gen_lit(g, "enum");
    yajl_gen_array_open(g);
    for (i = 0; i < req->nhosts; i++) {
        pg_gen_str(g, req->hosts[i].name);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

    pg_gen_lit(g, "text");
    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "string");
    yajl_gen_map_close(g);

    yajl_gen_map_close(g);      /* properties */
    yajl_gen_map_close(g);      /* items */
    yajl_gen_map_close(g);      /* dialogue */
    yajl_gen_map_close(g);      /* properties */
    yajl_gen_map_close(g);
}


int
pg_llm_build_request(const pg_script_request_t *req, const char *model,
    pg_buf_t *out)
{
    int                   rc;
    size_t                len;
    yajl_gen              g;
    pg_buf_t              prompt;
    const unsigned char  *buf;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    memset(&prompt, 0, sizeof(pg_buf_t));
    rc = -1;

    yajl_gen_map_open(g);
    pg_gen_lit(g, "model");
    pg_gen_str(g, model);
    pg_gen_lit(g, "temperature");
    yajl_gen_double(g, 0.7);

    pg_gen_lit(g, "messages");
    yajl_gen_array_open(g);

    if (pg_llm_system_prompt(req, &prompt) != 0) {
        goto done;
    }

    yajl_gen_map_open(g);
    pg_gen_lit(g, "role");
    pg_gen_lit(g, "system");
    pg_gen_lit(g, "content");
    yajl_gen_string(g, prompt.data, prompt.len);
    yajl_gen_map_close(g);

    pg_buf_reset(&prompt);

    if (pg_llm_user_prompt(req, &prompt) != 0) {
        goto done;
    }

    yajl_gen_map_open(g);
    pg_gen_lit(g, "role");
    pg_gen_lit(g, "user");
    pg_gen_lit(g, "content");
    yajl_gen_string(g, prompt.data, prompt.len);
    yajl_gen_map_close(g);

    yajl_gen_array_close(g);

    pg_gen_lit(g, "response_format");
    yajl_gen_map_open(g);
    pg_gen_lit(g, "type");
    pg_gen_lit(g, "json_schema");
    pg_gen_lit(g, "json_schema");
    yajl_gen_map_open(g);
    pg_gen_lit(g, "name");
    pg_gen_lit(g, "podcast_script");
    pg_gen_lit(g, "strict");
    yajl_gen_bool(g, 1);
    pg_gen_lit(g, "schema");
    pg_llm_gen_schema(g, req);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    yajl_gen_map_close(g);

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok
        || pg_buf_append(out, buf, len) != 0)
    {
        goto done;
    }

    rc = 0;

done:

    pg_buf_free(&prompt);
    yajl_gen_free(g);

    return rc;
}


int
pg_llm_parse_reply(const char *body, size_t len, pg_llm_reply_t *reply,
    pg_error_t *err)
{
    yajl_val     tree, v, msg;
    const char  *path_choices[] = { "choices", NULL };
    const char  *path_content[] = { "message", "content", NULL };
    const char  *path_finish[] = { "finish_reason", NULL };
    const char  *path_error[] = { "error", "message", NULL };
    const char  *path_prompt[] = { "usage", "prompt_tokens", NULL };
    const char  *path_compl[] = { "usage", "completion_tokens", NULL };

    memset(reply, 0, sizeof(pg_llm_reply_t));

    tree = pg_json_parse_object(body, len, PG_JSON_MAX_DEPTH, err);
    if (tree == NULL) {
        pg_error_set(err, 502, NULL, "invalid_llm_reply",
                     "the LLM reply is not a JSON object");
        return -1;
    }

    v = yajl_tree_get(tree, path_error, yajl_t_string);
    if (v) {
        pg_error_set(err, 502, NULL, "invalid_llm_reply",
                     "the LLM answered an error: %.200s",
                     YAJL_GET_STRING(v));
        goto failed;
    }

    v = yajl_tree_get(tree, path_choices, yajl_t_array);
    if (v == NULL || v->u.array.len == 0
        || !YAJL_IS_OBJECT(v->u.array.values[0]))
    {
        pg_error_set(err, 502, NULL, "invalid_llm_reply",
                     "the LLM reply has no choices");
        goto failed;
    }

    msg = v->u.array.values[0];

    v = yajl_tree_get(msg, path_content, yajl_t_string);
    if (v == NULL) {
        pg_error_set(err, 502, NULL, "invalid_llm_reply",
                     "the LLM reply has no message content");
        goto failed;
    }

    reply->content = strdup(v->u.string);
    if (reply->content == NULL) {
        goto nomem;
    }

    reply->content_len = strlen(reply->content);

    v = yajl_tree_get(msg, path_finish, yajl_t_string);
    if (v) {
        reply->finish_reason = strdup(v->u.string);
        if (reply->finish_reason == NULL) {
            goto nomem;
        }
    }

    v = yajl_tree_get(tree, path_prompt, yajl_t_number);
    if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
        reply->prompt_tokens = (size_t) YAJL_GET_INTEGER(v);
    }

    v = yajl_tree_get(tree, path_compl, yajl_t_number);
    if (v && YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) > 0) {
        reply->completion_tokens = (size_t) YAJL_GET_INTEGER(v);
    }

    yajl_tree_free(tree);

    return 0;

nomem:

    pg_error_set(err, 500, NULL, "server_error", "out of memory");

failed:

    yajl_tree_free(tree);
    pg_llm_reply_free(reply);

    return -1;
}


void
pg_llm_reply_free(pg_llm_reply_t *reply)
{
    free(reply->content);
    free(reply->finish_reason);
    reply->content = NULL;
    reply->finish_reason = NULL;
}


unsigned long
pg_llm_retry_after(const char *value, size_t len, unsigned long max_ms)
{
    size_t         i;
    unsigned long  s;

    while (len && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }

    s = 0;

    for (i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9') {
            break;
        }

        s = s * 10 + (value[i] - '0');

        if (s * 1000 > max_ms) {
            return max_ms;
        }
    }

    if (i == 0) {
        return 0;               /* an HTTP date, or garbage */
    }

    return s * 1000;
}
