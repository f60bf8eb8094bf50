/*
 * podgen metrics: the status location — Prometheus text format 0.0.4,
 * OpenMetrics 1.0 for a scraper that asks for it (Accept:
 * application/openmetrics-text), or JSON with ?format=json (for the web
 * UI).  Rendering reads the counters without locks; each value is one
 * atomic read.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_podgen_metrics.h"
#include "ngx_http_podgen_metrics_shm.h"


typedef struct {
    u_char      *pos;
    u_char      *last;
    ngx_uint_t   overflow;
    ngx_uint_t   openmetrics;   /* families of counters without "_total" */
} pg_out_t;


static const char  *pg_endpoint_names[PG_EP_N] = {
    "speech", "scripts", "podcasts", "batch", "audio", "voices", "metrics",
    "sources",
    "models"
};

static const char  *pg_tier_names[PG_TIER_N] = { "l1", "l2" };
static const char  *pg_kind_names[PG_KIND_N] = {
    "audio", "script", "source"
};

static const char  *pg_llm_names[PG_LLM_N] = {
    "ok", "error", "timeout", "invalid"
};

static const char  *pg_error_names[PG_ERR_N] = {
    "client", "server", "tts", "encoder", "busy", "client_gone"
};

static const char  *pg_job_names[PG_MJOB_N] = {
    "queued", "running", "completed", "failed"
};

static const char  *pg_first_audio_names[PG_FIRST_AUDIO_N] = {
    "miss", "hit", "coalesced"
};


static void
pg_printf(pg_out_t *o, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    if (o->overflow) {
        return;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(o->pos, o->last, fmt, args);
    va_end(args);

    if (p == o->last) {
        o->overflow = 1;
        return;
    }

    o->pos = p;
}


/*
 * A family's HELP and TYPE.  In OpenMetrics a counter family is named
 * without the "_total" its samples have.
 */

static void
pg_family(pg_out_t *o, const char *name, const char *type, const char *help)
{
    size_t  len;

    len = ngx_strlen(name);

    if (o->openmetrics && ngx_strcmp(type, "counter") == 0
        && len > 6 && ngx_strcmp(name + len - 6, "_total") == 0)
    {
        len -= 6;
    }

    pg_printf(o, "# HELP %*s %s\n# TYPE %*s %s\n", len, name, help,
              len, name, type);
}


/*
 * A double in Prometheus' float syntax with up to 6 decimals and no
 * trailing zeros ("0.005", "2.5", "60"): bucket labels must read the same
 * on every scrape.
 */

static void
pg_double(pg_out_t *o, double v)
{
    int      n;
    u_char   frac_digits[8];
    int64_t  whole, frac;

    if (v < 0) {
        pg_printf(o, "-");
        v = -v;
    }

    whole = (int64_t) v;
    frac = (int64_t) ((v - (double) whole) * 1000000 + 0.5);

    if (frac >= 1000000) {
        whole++;
        frac -= 1000000;
    }

    if (frac == 0) {
        pg_printf(o, "%L", whole);
        return;
    }

    ngx_sprintf(frac_digits, "%06L", frac);

    for (n = 6; frac_digits[n - 1] == '0'; n--) {
        /* void */
    }

    pg_printf(o, "%L.%*s", whole, (size_t) n, frac_digits);
}


static ngx_atomic_int_t
pg_gauge(ngx_atomic_t *a)
{
    /* gauges move both ways through unsigned atomic adds */
    return (ngx_atomic_int_t) *a;
}


static void
pg_histogram(pg_out_t *o, pg_metrics_shm_t *m, const char *name,
    const char *labels, pg_metrics_hist_t *h)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  cum;

    cum = 0;

    for (i = 0; i <= m->nbuckets; i++) {
        cum += h->count[i];

        pg_printf(o, "%s_bucket{%s%sle=\"", name, labels,
                  labels[0] ? "," : "");

        if (i < m->nbuckets) {
            pg_double(o, m->bounds[i]);

        } else {
            pg_printf(o, "+Inf");
        }

        pg_printf(o, "\"} %uA\n", cum);
    }

    pg_printf(o, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels,
              labels[0] ? "}" : "");
    pg_double(o, (double) h->sum_us / 1e6);
    pg_printf(o, "\n%s_count%s%s%s %uA\n", name, labels[0] ? "{" : "",
              labels, labels[0] ? "}" : "", cum);
}


static double
pg_hit_ratio(pg_metrics_shm_t *m, ngx_uint_t kind)
{
    double  lookups, hits;

    /* every lookup starts at L1; an L1 miss may still hit L2 */

    lookups = (double) (m->cache[PG_TIER_L1][kind][0]
                        + m->cache[PG_TIER_L1][kind][1]);
    hits = (double) (m->cache[PG_TIER_L1][kind][1]
                     + m->cache[PG_TIER_L2][kind][1]);

    return lookups > 0 ? hits / lookups : 0;
}


static ngx_atomic_int_t
pg_active_connections(void)
{
#if (NGX_STAT_STUB)
    return *ngx_stat_active;
#else
    return -1;
#endif
}


static void
pg_render_prometheus(pg_out_t *o, pg_metrics_shm_t *m)
{
    char               labels[96];
    ngx_uint_t         e, c, t, k;
    pg_metrics_slot_t  g;

    ngx_http_podgen_metrics_gauges(m, &g);

    pg_family(o, "podgen_requests_total", "counter",
              "Requests answered, by endpoint and status code.");

    for (e = 0; e < PG_EP_N; e++) {
        for (c = 0; c < PG_METRICS_CODES_N; c++) {
            if (m->requests[e][c] == 0) {
                continue;
            }

            if (pg_metrics_codes[c]) {
                pg_printf(o, "podgen_requests_total{endpoint=\"%s\","
                          "code=\"%ui\"} %uA\n", pg_endpoint_names[e],
                          pg_metrics_codes[c], m->requests[e][c]);

            } else {
                pg_printf(o, "podgen_requests_total{endpoint=\"%s\","
                          "code=\"other\"} %uA\n", pg_endpoint_names[e],
                          m->requests[e][c]);
            }
        }
    }

    pg_family(o, "podgen_request_duration_seconds", "histogram",
              "Time from request to the last byte handed to nginx.");

    for (e = 0; e < PG_EP_N; e++) {
        ngx_sprintf((u_char *) labels, "endpoint=\"%s\"%Z",
                    pg_endpoint_names[e]);
        pg_histogram(o, m, "podgen_request_duration_seconds", labels,
                     &m->request_duration[e]);
    }

    pg_family(o, "podgen_speech_first_audio_seconds", "histogram",
              "Speech: time from the request to its first audio byte sent, "
              "by cache (miss: a cold stream; hit: L1 or L2; coalesced: "
              "waited for the same audio in flight).");

    for (k = 0; k < PG_FIRST_AUDIO_N; k++) {
        ngx_sprintf((u_char *) labels, "cache=\"%s\"%Z",
                    pg_first_audio_names[k]);
        pg_histogram(o, m, "podgen_speech_first_audio_seconds", labels,
                     &m->first_audio[k]);
    }

    pg_family(o, "podgen_inflight_requests", "gauge",
              "Requests being served now.");

    for (e = 0; e < PG_EP_N; e++) {
        pg_printf(o, "podgen_inflight_requests{endpoint=\"%s\"} %A\n",
                  pg_endpoint_names[e], pg_gauge(&g.inflight[e]));
    }

    pg_family(o, "podgen_cache_requests_total", "counter",
              "Cache lookups by tier, kind of artifact and result.");

    for (t = 0; t < PG_TIER_N; t++) {
        for (k = 0; k < PG_KIND_N; k++) {
            pg_printf(o, "podgen_cache_requests_total{tier=\"%s\","
                      "kind=\"%s\",result=\"hit\"} %uA\n"
                      "podgen_cache_requests_total{tier=\"%s\","
                      "kind=\"%s\",result=\"miss\"} %uA\n",
                      pg_tier_names[t], pg_kind_names[k], m->cache[t][k][1],
                      pg_tier_names[t], pg_kind_names[k], m->cache[t][k][0]);
        }
    }

    pg_family(o, "podgen_cache_hit_ratio", "gauge",
              "Lookups answered from a cache tier over all lookups, since "
              "the metrics zone was created (lifetime; for a window use "
              "rate() of podgen_cache_requests_total).");

    for (k = 0; k < PG_KIND_N; k++) {
        pg_printf(o, "podgen_cache_hit_ratio{kind=\"%s\"} ",
                  pg_kind_names[k]);
        pg_double(o, pg_hit_ratio(m, k));
        pg_printf(o, "\n");
    }

    pg_family(o, "podgen_cache_bytes", "gauge", "Bytes held by a tier.");

    for (t = 0; t < PG_TIER_N; t++) {
        pg_printf(o, "podgen_cache_bytes{tier=\"%s\"} %A\n",
                  pg_tier_names[t], pg_gauge(&m->cache_bytes[t]));
    }

    pg_family(o, "podgen_cache_entries", "gauge",
              "Entries held by the shared-memory cache.");
    pg_printf(o, "podgen_cache_entries %A\n",
              pg_gauge(&m->cache_entries[PG_TIER_L1]));

    pg_family(o, "podgen_cache_evictions_total", "counter",
              "Entries evicted from the shared-memory cache.");
    pg_printf(o, "podgen_cache_evictions_total %uA\n", m->cache_evictions);

    pg_family(o, "podgen_coalesced_requests_total", "counter",
              "Requests that waited for identical work in flight.");

    for (k = 0; k < PG_KIND_N; k++) {
        pg_printf(o, "podgen_coalesced_requests_total{kind=\"%s\"} %uA\n",
                  pg_kind_names[k], m->coalesced[k]);
    }

    pg_family(o, "podgen_tts_synthesis_seconds", "histogram",
              "flite time per synthesized sentence.");
    pg_histogram(o, m, "podgen_tts_synthesis_seconds", "",
                 &m->tts_synthesis);

    pg_family(o, "podgen_tts_audio_seconds_total", "counter",
              "Seconds of audio synthesized.");
    pg_printf(o, "podgen_tts_audio_seconds_total ");
    pg_double(o, (double) m->tts_audio_us / 1e6);
    pg_printf(o, "\n");

    pg_family(o, "podgen_llm_requests_total", "counter",
              "LLM calls by result.");

    for (k = 0; k < PG_LLM_N; k++) {
        pg_printf(o, "podgen_llm_requests_total{result=\"%s\"} %uA\n",
                  pg_llm_names[k], m->llm[k]);
    }

    pg_family(o, "podgen_llm_duration_seconds", "histogram",
              "LLM call time.");
    pg_histogram(o, m, "podgen_llm_duration_seconds", "", &m->llm_duration);

    pg_family(o, "podgen_llm_tokens_total", "counter",
              "Tokens reported by the LLM.");
    pg_printf(o, "podgen_llm_tokens_total{type=\"prompt\"} %uA\n"
              "podgen_llm_tokens_total{type=\"completion\"} %uA\n",
              m->llm_tokens[0], m->llm_tokens[1]);

    pg_family(o, "podgen_llm_retries_total", "counter", "LLM call retries.");
    pg_printf(o, "podgen_llm_retries_total %uA\n", m->llm_retries);

    pg_family(o, "podgen_llm_fallbacks_total", "counter",
              "Scripts written by the built-in engine after LLM failures.");
    pg_printf(o, "podgen_llm_fallbacks_total %uA\n", m->llm_fallbacks);

    pg_family(o, "podgen_active_connections", "gauge",
              "Client connections open on this nginx (all servers).");
    pg_printf(o, "podgen_active_connections %A\n", pg_active_connections());

    pg_family(o, "podgen_thread_pool_queue", "gauge",
              "podgen tasks posted to the thread pool and not finished.");
    pg_printf(o, "podgen_thread_pool_queue %A\n",
              pg_gauge(&g.thread_queue));

    pg_family(o, "podgen_jobs", "gauge",
              "Jobs of this node queued or running now.");

    for (k = 0; k <= PG_MJOB_RUNNING; k++) {
        pg_printf(o, "podgen_jobs{status=\"%s\"} %A\n", pg_job_names[k],
                  pg_gauge(&g.jobs[k]));
    }

    pg_family(o, "podgen_jobs_completed_total", "counter",
              "Jobs this node finished completed.");
    pg_printf(o, "podgen_jobs_completed_total %uA\n",
              m->jobs[PG_MJOB_COMPLETED]);

    pg_family(o, "podgen_jobs_failed_total", "counter",
              "Jobs this node finished failed.");
    pg_printf(o, "podgen_jobs_failed_total %uA\n", m->jobs[PG_MJOB_FAILED]);

    pg_family(o, "podgen_redis_up", "gauge",
              "1 when the Redis connection is up.");
    pg_printf(o, "podgen_redis_up %uA\n", m->redis_up);

    pg_family(o, "podgen_redis_errors_total", "counter",
              "Redis commands that failed.");
    pg_printf(o, "podgen_redis_errors_total %uA\n", m->redis_errors);

    pg_family(o, "podgen_errors_total", "counter", "Errors by type.");

    for (k = 0; k < PG_ERR_N; k++) {
        pg_printf(o, "podgen_errors_total{type=\"%s\"} %uA\n",
                  pg_error_names[k], m->errors[k]);
    }

    pg_family(o, "podgen_build_info", "gauge", "podgen build.");
    pg_printf(o, "podgen_build_info{version=\"%s\",nginx=\"%s\","
              "flite=\"%s\"} 1\n", ngx_http_podgen_metrics_build_version(),
              NGINX_VERSION, ngx_http_podgen_metrics_build_flite());

    pg_family(o, "podgen_start_time_seconds", "gauge",
              "When the metrics zone was created (survives reloads).");
    pg_printf(o, "podgen_start_time_seconds %T\n", m->start_time);
}


/*
 * OpenMetrics: after each sample of a counter (NAME_total) and each
 * _count of a histogram, its NAME_created with the same labels: when the
 * zone, and so every counter, started at zero.  Then "# EOF".
 */

static void
pg_openmetrics_created(pg_out_t *o, u_char *in, u_char *end, time_t start)
{
    u_char      *line, *nl, *sp, *brace, *name;
    size_t       len, name_len;
    ngx_uint_t   type;          /* 0 other, 1 counter, 2 histogram */

    name = NULL;
    name_len = 0;
    type = 0;

    for (line = in; line < end; line = nl + 1) {
        nl = ngx_strlchr(line, end, '\n');
        if (nl == NULL) {
            nl = end;
        }

        len = nl - line;
        pg_printf(o, "%*s\n", len, line);

        if (len > 7 && ngx_strncmp(line, "# TYPE ", 7) == 0) {
            name = line + 7;
            sp = ngx_strlchr(name, nl, ' ');
            if (sp == NULL) {
                type = 0;
                continue;
            }

            name_len = sp - name;
            type = (nl - sp == 8 && ngx_strncmp(sp, " counter", 8) == 0)
                   ? 1
                   : (nl - sp == 10 && ngx_strncmp(sp, " histogram", 10) == 0)
                     ? 2 : 0;
            continue;
        }

        if (type == 0 || line[0] == '#') {
            continue;
        }

        /* NAME_total... or NAME_count... of the family */

        if (len <= name_len || ngx_strncmp(line, name, name_len) != 0) {
            continue;
        }

        sp = line + name_len;

        if (!((type == 1 && nl - sp > 6 && ngx_strncmp(sp, "_total", 6) == 0
               && (sp[6] == '{' || sp[6] == ' '))
              || (type == 2 && nl - sp > 6
                  && ngx_strncmp(sp, "_count", 6) == 0
                  && (sp[6] == '{' || sp[6] == ' '))))
        {
            continue;
        }

        sp += 6;
        brace = (*sp == '{') ? ngx_strlchr(sp, nl, '}') : NULL;

        pg_printf(o, "%*s_created%*s %T\n", name_len, name,
                  brace ? (size_t) (brace + 1 - sp) : (size_t) 0, sp, start);
    }

    pg_printf(o, "# EOF\n");
}


/* whether the client's Accept asks for OpenMetrics (Prometheus does) */

static ngx_uint_t
pg_wants_openmetrics(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Accept") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "application/openmetrics-text",
                                sizeof("application/openmetrics-text") - 2)
               != NULL)
        {
            return 1;
        }
    }
}


static ngx_atomic_uint_t
pg_sum_row(ngx_atomic_t *row, ngx_uint_t n)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  s;

    s = 0;

    for (i = 0; i < n; i++) {
        s += row[i];
    }

    return s;
}


static void
pg_render_json(pg_out_t *o, pg_metrics_shm_t *m)
{
    ngx_uint_t         e, c, k, first;
    ngx_atomic_uint_t  n, errors, total;
    pg_metrics_slot_t  g;

    ngx_http_podgen_metrics_gauges(m, &g);

    pg_printf(o, "{\"version\":\"%s\",\"uptime_s\":%T,",
              ngx_http_podgen_metrics_build_version(),
              ngx_time() - m->start_time);

    pg_printf(o, "\"active_connections\":%A,\"thread_pool_queue\":%A,",
              pg_active_connections(), pg_gauge(&g.thread_queue));

    pg_printf(o, "\"endpoints\":{");

    for (e = 0; e < PG_EP_N; e++) {
        n = m->request_duration[e].count[0];
        total = pg_sum_row(m->requests[e], PG_METRICS_CODES_N);

        errors = 0;

        for (c = 0; c < PG_METRICS_CODES_N; c++) {
            if (pg_metrics_codes[c] >= 400 || pg_metrics_codes[c] == 0) {
                errors += m->requests[e][c];
            }
        }

        n = pg_sum_row(m->request_duration[e].count, m->nbuckets + 1);

        pg_printf(o, "%s\"%s\":{\"requests\":%uA,\"errors\":%uA,"
                  "\"error_rate\":", e ? "," : "", pg_endpoint_names[e],
                  total, errors);
        pg_double(o, total ? (double) errors / total : 0);
        pg_printf(o, ",\"avg_ms\":");
        pg_double(o, n ? (double) m->request_duration[e].sum_us / n / 1000
                       : 0);
        pg_printf(o, ",\"inflight\":%A,\"codes\":{",
                  pg_gauge(&g.inflight[e]));

        first = 1;

        for (c = 0; c < PG_METRICS_CODES_N; c++) {
            if (m->requests[e][c] == 0) {
                continue;
            }

            if (pg_metrics_codes[c]) {
                pg_printf(o, "%s\"%ui\":%uA", first ? "" : ",",
                          pg_metrics_codes[c], m->requests[e][c]);

            } else {
                pg_printf(o, "%s\"other\":%uA", first ? "" : ",",
                          m->requests[e][c]);
            }

            first = 0;
        }

        pg_printf(o, "}}");
    }

    pg_printf(o, "},\"cache\":{");

    for (k = 0; k < PG_KIND_N; k++) {
        pg_printf(o, "%s\"%s\":{\"hit_ratio\":", k ? "," : "",
                  pg_kind_names[k]);
        pg_double(o, pg_hit_ratio(m, k));
        pg_printf(o, ",\"l1_hits\":%uA,\"l2_hits\":%uA,\"misses\":%uA}",
                  m->cache[PG_TIER_L1][k][1], m->cache[PG_TIER_L2][k][1],
                  m->cache[PG_TIER_L1][k][0] - m->cache[PG_TIER_L2][k][1]);
    }

    pg_printf(o, ",\"bytes\":%A,\"entries\":%A,\"evictions\":%uA},",
              pg_gauge(&m->cache_bytes[PG_TIER_L1]),
              pg_gauge(&m->cache_entries[PG_TIER_L1]), m->cache_evictions);

    n = pg_sum_row(m->tts_synthesis.count, m->nbuckets + 1);

    pg_printf(o, "\"tts\":{\"sentences\":%uA,\"synthesis_s\":", n);
    pg_double(o, (double) m->tts_synthesis.sum_us / 1e6);
    pg_printf(o, ",\"audio_s\":");
    pg_double(o, (double) m->tts_audio_us / 1e6);
    pg_printf(o, "},\"llm\":{");

    for (k = 0; k < PG_LLM_N; k++) {
        pg_printf(o, "\"%s\":%uA,", pg_llm_names[k], m->llm[k]);
    }

    pg_printf(o, "\"retries\":%uA,\"fallbacks\":%uA},\"jobs\":{",
              m->llm_retries, m->llm_fallbacks);

    for (k = 0; k < PG_MJOB_N; k++) {
        pg_printf(o, "%s\"%s\":%A", k ? "," : "", pg_job_names[k],
                  pg_gauge(k <= PG_MJOB_RUNNING ? &g.jobs[k] : &m->jobs[k]));
    }

    pg_printf(o, "},\"errors\":{");

    for (k = 0; k < PG_ERR_N; k++) {
        pg_printf(o, "%s\"%s\":%uA", k ? "," : "", pg_error_names[k],
                  m->errors[k]);
    }

    pg_printf(o, "},\"redis_up\":%s}\n", m->redis_up ? "true" : "false");
}


ngx_int_t
ngx_http_podgen_metrics_handler(ngx_http_request_t *r)
{
    size_t             size;
    ngx_int_t          rc, json, om;
    ngx_buf_t         *b, *text;
    ngx_str_t          value;
    pg_out_t           o;
    ngx_table_elt_t   *h;
    ngx_chain_t        out;
    pg_metrics_shm_t  *m;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* with podgen_metrics_record off, every figure is zero */

    m = ngx_http_podgen_metrics_shm;
    if (m == NULL) {
        m = ngx_pcalloc(r->pool, sizeof(pg_metrics_shm_t));
        if (m == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    json = 0;

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK
        && value.len == 4 && ngx_strncmp(value.data, "json", 4) == 0)
    {
        json = 1;
    }

    om = !json && pg_wants_openmetrics(r);

    /* the output is a few tens of KB; grow and retry if it is not enough */

    for (size = 64 * 1024; /* void */; size *= 2) {

        b = ngx_create_temp_buf(r->pool, size);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        o.pos = b->pos;
        o.last = b->end;
        o.overflow = 0;
        o.openmetrics = om;

        if (json) {
            pg_render_json(&o, m);

        } else {
            pg_render_prometheus(&o, m);
        }

        if (!o.overflow && om) {
            /* the text again, with the _created samples */

            text = b;
            text->last = o.pos;

            b = ngx_create_temp_buf(r->pool, 2 * size);
            if (b == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            o.pos = b->pos;
            o.last = b->end;

            pg_openmetrics_created(&o, text->pos, text->last, m->start_time);
        }

        if (!o.overflow) {
            break;
        }

        if (size > 16 * 1024 * 1024) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    b->last = o.pos;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else if (om) {
        ngx_str_set(&r->headers_out.content_type,
                    "application/openmetrics-text; version=1.0.0; "
                    "charset=utf-8");

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* the format depends on Accept */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Vary");
    ngx_str_set(&h->value, "Accept");

    ngx_http_podgen_metrics_request(PG_EP_METRICS, NGX_HTTP_OK, 0);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
