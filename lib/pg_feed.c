/*
 * podgen core: transcripts and the RSS feed.
 *
 * Text is walked one UTF-8 character at a time (pg_feed_utf8()), so that
 * escaping, dropping and cutting never split a character and a byte of
 * invalid UTF-8 is always replaced, never copied.
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "pg_feed.h"
#include "pg_key.h"
#include "pg_text.h"


#define PG_FEED_BAD        0xffffffffU      /* not a character */
#define PG_FEED_FFFD       "\xef\xbf\xbd"   /* U+FFFD in UTF-8 */
#define PG_FEED_ELLIPSIS   "\xe2\x80\xa6"   /* U+2026 */

#define PG_NELEMS(a)       (sizeof(a) / sizeof((a)[0]))


static size_t pg_feed_utf8(const unsigned char *s, size_t len,
    uint32_t *cp);
static double pg_feed_time(double t);
static int pg_vtt_escape(pg_buf_t *out, const char *s);
static int pg_cue_escape(pg_buf_t *out, const char *s, size_t len,
    int markup);
static int pg_srt_cue(pg_buf_t *out, size_t *cue, double start,
    double end);
static int pg_srt_speaker(pg_buf_t *out, const pg_job_segment_t *seg);
static int pg_srt_sentence_end(const char *word);
static int pg_transcript_words(yajl_gen g, const pg_job_segment_t *seg,
    double end);
static int pg_vtt_time(pg_buf_t *out, double t);
static int pg_transcript_time(yajl_gen g, double t);
static int pg_rss_element(pg_buf_t *out, const char *name, const char *s);
static int pg_rss_url(pg_buf_t *out, const char *link, size_t link_len,
    const char *path, const char *id, const char *suffix);
static int pg_rss_item(pg_buf_t *out, const pg_job_t *job,
    const char *base, size_t base_len, const char *image, const char *token,
    pg_buf_t *tmp);
static int pg_rss_date(pg_buf_t *out, int64_t ms);
static int pg_rss_description(pg_buf_t *out, const pg_job_t *job);
static const char *pg_rss_mime(const char *format);


static const char  *pg_rss_days[] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};

static const char  *pg_rss_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static const struct {
    const char  *format;
    const char  *mime;
} pg_rss_mimes[] = {
    { "mp3",  "audio/mpeg" },
    { "opus", "audio/ogg" },
    { "wav",  "audio/wav" },
    { "flac", "audio/flac" },
    { "pcm",  "audio/pcm" },        /* as pg_format_mime() */
    { "aac",  "audio/aac" },
    { "m4a",  "audio/mp4" }         /* Apple Podcasts takes it, as x-m4a */
};


/*
 * The character at s[0..len), len > 0: returns its length in bytes and
 * its code point in *cp; a byte that starts no valid character (overlong,
 * surrogate, above U+10FFFF, cut short) gives 1 and PG_FEED_BAD.
 */
static size_t
pg_feed_utf8(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t    i, n;
    uint32_t  c, min;

    c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
        min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;
        min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;

    } else {
        goto bad;
    }

    if (len < n) {
        goto bad;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            goto bad;
        }

        c = (c << 6) | (s[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        goto bad;
    }

    *cp = c;

    return n;

bad:

    *cp = PG_FEED_BAD;

    return 1;
}


/* a time in seconds, made safe to print: NaN and negatives are 0 */
static double
pg_feed_time(double t)
{
    if (!(t >= 0.0)) {
        return 0.0;
    }

    return t < PG_JOB_TIME_MAX ? t : PG_JOB_TIME_MAX;
}


/* ---- WebVTT ------------------------------------------------------------- */


int
pg_vtt_write(const pg_job_t *job, pg_buf_t *out)
{
    int                      n;
    char                     num[32];
    size_t                   i, cue;
    double                   start, end;
    const pg_job_segment_t  *seg;

    if (pg_buf_append_str(out, "WEBVTT\n\n") != 0) {
        return -1;
    }

    cue = 0;

    for (i = 0; i < job->nsegments; i++) {
        seg = &job->segments[i];

        if (!(seg->start >= 0.0)) {
            continue;                       /* not rendered */
        }

        start = pg_feed_time(seg->start);
        end = pg_feed_time(seg->end);

        if (end < start) {
            end = start;
        }

        n = snprintf(num, sizeof(num), "%zu\n", ++cue);

        if (pg_buf_append(out, num, (size_t) n) != 0
            || pg_vtt_time(out, start) != 0
            || pg_buf_append_str(out, " --> ") != 0
            || pg_vtt_time(out, end) != 0
            || pg_buf_append(out, "\n", 1) != 0)
        {
            return -1;
        }

        if (seg->speaker != NULL && seg->speaker[0] != '\0') {
            if (pg_buf_append_str(out, "<v ") != 0
                || pg_vtt_escape(out, seg->speaker) != 0)
            {
                return -1;
            }

            /*
             * "<v Jo-->" would hold a raw "-->", which ends a cue; the
             * space is trimmed off the name by WebVTT parsers
             */

            if (out->data[out->len - 1] == '-'
                && pg_buf_append(out, " ", 1) != 0)
            {
                return -1;
            }

            if (pg_buf_append(out, ">", 1) != 0) {
                return -1;
            }
        }

        if (pg_vtt_escape(out, seg->text) != 0
            || pg_buf_append_str(out, "\n\n") != 0)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * s escaped for a cue's text: & < > as character references, a run of
 * control characters (CR, LF, tab, ...) as one space, invalid UTF-8 as
 * U+FFFD.
 */
static int
pg_vtt_escape(pg_buf_t *out, const char *s)
{
    if (s == NULL) {
        return 0;
    }

    return pg_cue_escape(out, s, strlen(s), 1);
}


/* the same, but & < > as they are when !markup (SRT), but for "-->" */
static int
pg_cue_escape(pg_buf_t *out, const char *s, size_t len, int markup)
{
    int                   space;
    size_t                i, k, plain;
    uint32_t              c;
    const char           *rep;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    plain = 0;                  /* the start of bytes copied as they are */
    space = 0;

    for (i = 0; i < len; i += k) {
        k = pg_feed_utf8(p + i, len - i, &c);

        if (c == '&' && markup) {
            rep = "&amp;";

        } else if (c == '<' && markup) {
            rep = "&lt;";

        } else if (c == '>' && markup) {
            rep = "&gt;";

        } else if (c == '>' && i >= 2 && p[i - 1] == '-' && p[i - 2] == '-') {
            rep = " >";         /* "-->" is a SubRip timing line's */

        } else if (c < 0x20 || c == 0x7f) {
            rep = space ? "" : " ";

        } else if (c == PG_FEED_BAD) {
            rep = PG_FEED_FFFD;

        } else {
            space = 0;
            continue;
        }

        space = (c < 0x20 || c == 0x7f);

        if (pg_buf_append(out, p + plain, i - plain) != 0
            || pg_buf_append_str(out, rep) != 0)
        {
            return -1;
        }

        plain = i + k;
    }

    return pg_buf_append(out, p + plain, len - plain);
}


static int
pg_vtt_time(pg_buf_t *out, double t)
{
    int        n;
    char       buf[64];
    long long  ms;

    ms = llround(t * 1000.0);

    n = snprintf(buf, sizeof(buf), "%02lld:%02d:%02d.%03d",
                 ms / 3600000, (int) (ms / 60000 % 60),
                 (int) (ms / 1000 % 60), (int) (ms % 1000));

    return pg_buf_append(out, buf, (size_t) n);
}


/* ---- SubRip ------------------------------------------------------------- */


int
pg_srt_write(const pg_job_t *job, pg_buf_t *out)
{
    size_t                   i, k, first, chars, cue;
    double                   start, end, ws, we;
    const pg_job_word_t     *w;
    const pg_job_segment_t  *seg;

    cue = 0;

    for (i = 0; i < job->nsegments; i++) {
        seg = &job->segments[i];

        if (!(seg->start >= 0.0)) {
            continue;                       /* not rendered */
        }

        start = pg_feed_time(seg->start);
        end = pg_feed_time(seg->end);

        if (end < start) {
            end = start;
        }

        if (seg->nwords == 0) {
            if (seg->text[0] == '\0'
                && (seg->speaker == NULL || seg->speaker[0] == '\0'))
            {
                continue;                   /* a cue of nothing */
            }

            if (pg_srt_cue(out, &cue, start, end) != 0
                || pg_srt_speaker(out, seg) != 0
                || pg_cue_escape(out, seg->text, strlen(seg->text), 0) != 0
                || pg_buf_append_str(out, "\n\n") != 0)
            {
                return -1;
            }

            continue;
        }

        /* captions of a few words each, timed by their words */

        for (first = 0; first < seg->nwords; first = k) {
            chars = 0;

            for (k = first; k < seg->nwords; k++) {
                w = &seg->words[k];
                chars += strlen(w->word) + 1;

                if (k > first && chars > PG_SRT_CUE_CHARS) {
                    break;
                }

                if (k + 1 - first >= PG_SRT_CUE_WORDS
                    || pg_srt_sentence_end(w->word))
                {
                    k++;
                    break;
                }
            }

            ws = start + seg->words[first].start;
            we = start + seg->words[k - 1].end;

            if (ws > end) {
                ws = end;
            }

            if (we > end) {
                we = end;
            }

            if (pg_srt_cue(out, &cue, ws, we) != 0
                || (first == 0 && pg_srt_speaker(out, seg) != 0))
            {
                return -1;
            }

            for (chars = first; chars < k; chars++) {
                w = &seg->words[chars];

                if ((chars > first && pg_buf_append(out, " ", 1) != 0)
                    || pg_cue_escape(out, w->word, strlen(w->word), 0) != 0)
                {
                    return -1;
                }
            }

            if (pg_buf_append_str(out, "\n\n") != 0) {
                return -1;
            }
        }
    }

    return 0;
}


static int
pg_srt_cue(pg_buf_t *out, size_t *cue, double start, double end)
{
    int        n;
    char       buf[128];
    long long  a, b;

    a = llround(start * 1000.0);
    b = llround(end * 1000.0);

    if (b < a) {
        b = a;
    }

    n = snprintf(buf, sizeof(buf),
                 "%zu\n%02lld:%02d:%02d,%03d --> %02lld:%02d:%02d,%03d\n",
                 ++*cue,
                 a / 3600000, (int) (a / 60000 % 60), (int) (a / 1000 % 60),
                 (int) (a % 1000),
                 b / 3600000, (int) (b / 60000 % 60), (int) (b / 1000 % 60),
                 (int) (b % 1000));

    return pg_buf_append(out, buf, (size_t) n);
}


static int
pg_srt_speaker(pg_buf_t *out, const pg_job_segment_t *seg)
{
    if (seg->speaker == NULL || seg->speaker[0] == '\0') {
        return 0;
    }

    if (pg_cue_escape(out, seg->speaker, strlen(seg->speaker), 0) != 0
        || pg_buf_append_str(out, ": ") != 0)
    {
        return -1;
    }

    return 0;
}


static int
pg_srt_sentence_end(const char *word)
{
    size_t  n;

    n = strlen(word);

    while (n > 0 && (word[n - 1] == '"' || word[n - 1] == '\''
                     || word[n - 1] == ')'))
    {
        n--;
    }

    return n > 0 && (word[n - 1] == '.' || word[n - 1] == '!'
                     || word[n - 1] == '?');
}


/* ---- the JSON transcript ------------------------------------------------ */


int
pg_transcript_json(const pg_job_t *job, pg_buf_t *out)
{
    int                      rc;
    char                     id[PG_JOB_ID_LEN + 1];
    size_t                   i, len, blen;
    double                   end;
    yajl_gen                 g;
    const unsigned char     *buf;
    const pg_job_segment_t  *seg;

    len = strnlen(job->id, sizeof(job->id));
    if (len > PG_JOB_ID_LEN) {
        len = PG_JOB_ID_LEN;
    }

    memcpy(id, job->id, len);
    id[len] = '\0';

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);

#define PG_KEY(k)  pg_json_gen_string(g, k)

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || PG_KEY("id") || pg_json_gen_string(g, id)
         || PG_KEY("title") || pg_json_gen_string(g, job->title)
         || PG_KEY("duration_s")
         || pg_transcript_time(g, job->status == PG_JOB_COMPLETED
                                  ? job->duration_s : -1.0)
         || PG_KEY("loudness") || pg_job_gen_loudness(g, job)
         || PG_KEY("segments")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (i = 0; i < job->nsegments && !rc; i++) {
        seg = &job->segments[i];

        end = -1.0;

        if (seg->start >= 0.0) {
            end = seg->end >= seg->start ? seg->end : seg->start;
        }

        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || PG_KEY("index")
             || yajl_gen_integer(g, (long long) i) != yajl_gen_status_ok
             || PG_KEY("speaker") || pg_json_gen_string(g, seg->speaker)
             || PG_KEY("voice") || pg_json_gen_string(g, seg->voice)
             || PG_KEY("text") || pg_json_gen_string(g, seg->text)
             || PG_KEY("start") || pg_transcript_time(g, seg->start)
             || PG_KEY("end") || pg_transcript_time(g, end)
             || PG_KEY("words") || pg_transcript_words(g, seg, end)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    rc = rc
         || yajl_gen_array_close(g) != yajl_gen_status_ok
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || yajl_gen_get_buf(g, &buf, &blen) != yajl_gen_status_ok
         || pg_buf_append(out, buf, blen) != 0;

#undef PG_KEY

    yajl_gen_free(g);

    return rc ? -1 : 0;
}

/* ---- chapters ----------------------------------------------------------- */


int
pg_chapters_json(const pg_job_t *job, pg_buf_t *out)
{
    int                      rc;
    size_t                   i, n, blen;
    yajl_gen                 g;
    const char              *title;
    const unsigned char     *buf;
    const pg_job_segment_t  *seg;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return -1;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);

    title = job->title ? job->title : "";

    rc = yajl_gen_map_open(g) != yajl_gen_status_ok
         || pg_json_gen_string(g, "version")
         || pg_json_gen_string(g, "1.2.0")
         || pg_json_gen_string(g, "title") || pg_json_gen_string(g, title)
         || pg_json_gen_string(g, "chapters")
         || yajl_gen_array_open(g) != yajl_gen_status_ok;

    /* a chapter at 0 s, the episode's title, when the first segment
     * starts none */

    if (job->nsegments == 0 || job->segments[0].chapter == NULL) {
        rc = rc
             || yajl_gen_map_open(g) != yajl_gen_status_ok
             || pg_json_gen_string(g, "startTime")
             || yajl_gen_number(g, "0", 1) != yajl_gen_status_ok
             || pg_json_gen_string(g, "title")
             || pg_json_gen_string(g, title)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    for (i = 0, n = 0; i < job->nsegments && !rc; i++) {
        seg = &job->segments[i];

        if (seg->chapter == NULL || !(seg->start >= 0.0)) {
            continue;
        }

        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || pg_json_gen_string(g, "startTime")
             || pg_transcript_time(g, n++ == 0 && i == 0 ? 0.0 : seg->start)
             || pg_json_gen_string(g, "title")
             || pg_json_gen_string(g, seg->chapter)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    rc = rc
         || yajl_gen_array_close(g) != yajl_gen_status_ok
         || yajl_gen_map_close(g) != yajl_gen_status_ok
         || yajl_gen_get_buf(g, &buf, &blen) != yajl_gen_status_ok
         || pg_buf_append(out, buf, blen) != 0;

    yajl_gen_free(g);

    return rc ? -1 : 0;
}


/* the words in episode time, within the segment; [] until rendered */
static int
pg_transcript_words(yajl_gen g, const pg_job_segment_t *seg, double end)
{
    int                   rc;
    size_t                k;
    double                a, b;
    const pg_job_word_t  *w;

    rc = yajl_gen_array_open(g) != yajl_gen_status_ok;

    for (k = 0; seg->start >= 0.0 && k < seg->nwords && !rc; k++) {
        w = &seg->words[k];

        a = seg->start + w->start;
        b = seg->start + w->end;

        if (a > end) {
            a = end;
        }

        if (b > end) {
            b = end;
        }

        rc = yajl_gen_map_open(g) != yajl_gen_status_ok
             || pg_json_gen_string(g, "word")
             || pg_json_gen_string(g, w->word)
             || pg_json_gen_string(g, "start") || pg_transcript_time(g, a)
             || pg_json_gen_string(g, "end") || pg_transcript_time(g, b)
             || yajl_gen_map_close(g) != yajl_gen_status_ok;
    }

    return rc || yajl_gen_array_close(g) != yajl_gen_status_ok;
}


/* seconds with 3 decimals; null for a negative (unknown) time */
static int
pg_transcript_time(yajl_gen g, double t)
{
    int   n;
    char  num[64];

    if (!(t >= 0.0)) {
        return yajl_gen_null(g) != yajl_gen_status_ok;
    }

    n = snprintf(num, sizeof(num), "%.3f", pg_feed_time(t));

    return yajl_gen_number(g, num, (size_t) n) != yajl_gen_status_ok;
}


/* ---- XML ---------------------------------------------------------------- */


int
pg_xml_escape(pg_buf_t *out, const char *s, size_t len)
{
    size_t                i, k, plain;
    uint32_t              c;
    const char           *rep;
    const unsigned char  *p;

    if (s == NULL) {
        return 0;
    }

    p = (const unsigned char *) s;
    plain = 0;

    for (i = 0; i < len; i += k) {
        k = pg_feed_utf8(p + i, len - i, &c);

        switch (c) {

        case '&':
            rep = "&amp;";
            break;

        case '<':
            rep = "&lt;";
            break;

        case '>':
            rep = "&gt;";
            break;

        case '"':
            rep = "&quot;";
            break;

        case '\'':
            rep = "&apos;";
            break;

        case '\t':
        case '\n':
        case '\r':
            continue;

        case 0xfffe:
        case 0xffff:
            rep = "";
            break;

        case PG_FEED_BAD:
            rep = PG_FEED_FFFD;
            break;

        default:
            if (c >= 0x20) {
                continue;
            }

            rep = "";                   /* a control character */
        }

        if (pg_buf_append(out, p + plain, i - plain) != 0
            || pg_buf_append_str(out, rep) != 0)
        {
            return -1;
        }

        plain = i + k;
    }

    return pg_buf_append(out, p + plain, len - plain);
}


/* ---- RSS ---------------------------------------------------------------- */


int
pg_rss_write(const pg_rss_channel_t *ch, pg_job_t *const *jobs, size_t n,
    pg_buf_t *out)
{
    int          rc;
    char         guid[37];
    size_t       i, link_len, base_len;
    int64_t      newest;
    pg_buf_t     tmp, base, image, self;
    const char  *link, *cat, *slash;

    link = ch->link ? ch->link : "";
    link_len = strlen(link);

    while (link_len > 0 && link[link_len - 1] == '/') {
        link_len--;
    }

    memset(&tmp, 0, sizeof(pg_buf_t));
    memset(&base, 0, sizeof(pg_buf_t));
    memset(&image, 0, sizeof(pg_buf_t));
    memset(&self, 0, sizeof(pg_buf_t));

    /* the URLs, unescaped: base, the artwork, the feed itself */

    if (ch->base != NULL) {
        rc = pg_buf_append_str(&base, ch->base) != 0;

    } else {
        rc = pg_buf_append(&base, link, link_len) != 0
             || pg_buf_append_str(&base, "/v1/podcasts") != 0;
    }

    base_len = base.len;

    while (base_len > 0 && base.data[base_len - 1] == '/') {
        base_len--;
    }

    rc = rc
         || pg_buf_append(&image, base.data, base_len) != 0
         || pg_buf_append_str(&image, "/artwork.png") != 0
         || pg_buf_append(&image, "", 1) != 0
         || pg_buf_append(&self, base.data, base_len) != 0
         || pg_buf_append_str(&self, "/feed.xml") != 0
         || pg_buf_append(&base, "", 1) != 0;

    if (rc) {
        goto done;
    }

    base.data[base_len] = '\0';

    if (pg_feed_guid((const char *) self.data, self.len, guid) != 0) {
        rc = 1;
        goto done;
    }

    newest = -1;

    for (i = 0; i < n; i++) {
        if (jobs[i] != NULL && jobs[i]->kind == PG_JOB_PODCAST
            && jobs[i]->status == PG_JOB_COMPLETED
            && jobs[i]->updated_ms > newest)
        {
            newest = jobs[i]->updated_ms;
        }
    }

    rc = pg_buf_append_str(out,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<rss version=\"2.0\""
             " xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\""
             " xmlns:podcast=\"https://podcastindex.org/namespace/1.0\""
             " xmlns:atom=\"http://www.w3.org/2005/Atom\">\n"
             "<channel>\n") != 0
         || pg_rss_element(out, "title", ch->title) != 0
         || pg_buf_append_str(out, "<link>") != 0
         || pg_xml_escape(out, link, link_len) != 0
         || pg_buf_append_str(out, "</link>\n") != 0
         || pg_rss_element(out, "description", ch->description) != 0
         || pg_rss_element(out, "language",
                           ch->language ? ch->language : "en") != 0
         || pg_buf_append_str(out, "<generator>podgen</generator>\n") != 0;

    if (!rc && newest >= 0) {
        rc = pg_buf_append_str(out, "<lastBuildDate>") != 0
             || pg_rss_date(out, newest) != 0
             || pg_buf_append_str(out, "</lastBuildDate>\n") != 0;
    }

    rc = rc
         || pg_buf_append_str(out, "<atom:link href=\"") != 0
         || pg_xml_escape(out, (const char *) self.data, self.len) != 0
         || (ch->token != NULL
             && (pg_buf_append_str(out, "?token=") != 0
                 || pg_xml_escape(out, ch->token, strlen(ch->token)) != 0))
         || pg_buf_append_str(out,
                "\" rel=\"self\" type=\"application/rss+xml\"/>\n") != 0
         || pg_rss_element(out, "itunes:author", ch->author) != 0
         || pg_buf_append_str(out, "<itunes:owner>\n") != 0
         || pg_rss_element(out, "itunes:name", ch->author) != 0
         || (ch->email != NULL && ch->email[0] != '\0'
             && pg_rss_element(out, "itunes:email", ch->email) != 0)
         || pg_buf_append_str(out, "</itunes:owner>\n") != 0;

    if (rc) {
        goto done;
    }

    if (ch->image != NULL) {
        image.len = 0;
        rc = pg_buf_append_str(&image, ch->image) != 0
             || pg_buf_append(&image, "", 1) != 0;
    }

    rc = rc
         || pg_buf_append_str(out, "<itunes:image href=\"") != 0
         || pg_xml_escape(out, (const char *) image.data, image.len - 1) != 0
         || pg_buf_append_str(out, "\"/>\n<image>\n") != 0
         || pg_rss_element(out, "url", (const char *) image.data) != 0
         || pg_rss_element(out, "title", ch->title) != 0
         || pg_buf_append_str(out, "<link>") != 0
         || pg_xml_escape(out, link, link_len) != 0
         || pg_buf_append_str(out, "</link>\n</image>\n") != 0;

    /* itunes:category, nested for "Parent/Sub" */

    cat = ch->category ? ch->category : "Technology";
    slash = strchr(cat, '/');

    rc = rc
         || pg_buf_append_str(out, "<itunes:category text=\"") != 0
         || pg_xml_escape(out, cat, slash ? (size_t) (slash - cat)
                                          : strlen(cat)) != 0;

    if (!rc && slash != NULL) {
        rc = pg_buf_append_str(out, "\">\n<itunes:category text=\"") != 0
             || pg_xml_escape(out, slash + 1, strlen(slash + 1)) != 0
             || pg_buf_append_str(out, "\"/>\n</itunes:category>\n") != 0;

    } else {
        rc = rc || pg_buf_append_str(out, "\"/>\n") != 0;
    }

    rc = rc
         || pg_buf_append_str(out, ch->is_explicit
                                   ? "<itunes:explicit>true</itunes:explicit>\n"
                                   : "<itunes:explicit>false</itunes:explicit>\n")
            != 0
         || pg_buf_append_str(out, "<itunes:type>episodic</itunes:type>\n")
            != 0
         || pg_buf_append_str(out, "<podcast:guid>") != 0
         || pg_buf_append_str(out, guid) != 0
         || pg_buf_append_str(out, "</podcast:guid>\n") != 0;

    if (!rc && ch->email != NULL && ch->email[0] != '\0') {
        rc = pg_buf_append_str(out, "<podcast:locked owner=\"") != 0
             || pg_xml_escape(out, ch->email, strlen(ch->email)) != 0
             || pg_buf_append_str(out, "\">yes</podcast:locked>\n") != 0;

    } else {
        rc = rc || pg_buf_append_str(out, "<podcast:locked>no</podcast:locked>\n")
                   != 0;
    }

    for (i = 0; i < n && !rc; i++) {
        if (jobs[i] == NULL || jobs[i]->kind != PG_JOB_PODCAST
            || jobs[i]->status != PG_JOB_COMPLETED)
        {
            continue;
        }

        rc = pg_rss_item(out, jobs[i], (const char *) base.data, base_len,
                         (const char *) image.data, ch->token, &tmp)
             != 0;
    }

    rc = rc || pg_buf_append_str(out, "</channel>\n</rss>\n") != 0;

done:

    pg_buf_free(&tmp);
    pg_buf_free(&base);
    pg_buf_free(&image);
    pg_buf_free(&self);

    return rc ? -1 : 0;
}


int
pg_feed_episode_token(const char *token, size_t token_len, const char *id,
    char *out)
{
    char  msg[sizeof("audio:") + PG_JOB_ID_LEN], hex[PG_KEY_LEN + 1];
    int   n;

    n = snprintf(msg, sizeof(msg), "audio:%.*s", PG_JOB_ID_LEN, id);

    if (n < 0 || pg_key_hmac_sha256(token, token_len, msg, (size_t) n, hex)
                 != 0)
    {
        return -1;
    }

    memcpy(out, hex, PG_FEED_TOKEN_LEN);
    out[PG_FEED_TOKEN_LEN] = '\0';

    return 0;
}


int
pg_feed_guid(const char *url, size_t len, char *out)
{
    int                   rc;
    size_t                i;
    EVP_MD_CTX           *ctx;
    unsigned int          mdlen;
    unsigned char         md[EVP_MAX_MD_SIZE];
    static const char     digits[] = "0123456789abcdef";

    /* ead4c236-bf58-58c6-a2c6-a6b28d128cb6, the Podcasting 2.0
     * namespace's */
    static const unsigned char  ns[16] = {
        0xea, 0xd4, 0xc2, 0x36, 0xbf, 0x58, 0x58, 0xc6,
        0xa2, 0xc6, 0xa6, 0xb2, 0x8d, 0x12, 0x8c, 0xb6
    };

    for (i = 0; i + 3 <= len; i++) {
        if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') {
            url += i + 3;
            len -= i + 3;
            break;
        }

        if (url[i] == '/' || url[i] == '.') {
            break;                  /* no scheme */
        }
    }

    while (len > 0 && url[len - 1] == '/') {
        len--;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1
         && EVP_DigestUpdate(ctx, ns, sizeof(ns)) == 1
         && EVP_DigestUpdate(ctx, url, len) == 1
         && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1
         && mdlen >= 16;

    EVP_MD_CTX_free(ctx);

    if (!rc) {
        return -1;
    }

    md[6] = (md[6] & 0x0f) | 0x50;          /* version 5 */
    md[8] = (md[8] & 0x3f) | 0x80;          /* the RFC 4122 variant */

    for (i = 0; i < 16; i++) {
        *out++ = digits[md[i] >> 4];
        *out++ = digits[md[i] & 0x0f];

        if (i == 3 || i == 5 || i == 7 || i == 9) {
            *out++ = '-';
        }
    }

    *out = '\0';

    return 0;
}


int
pg_feed_enclosure_format(const char *format)
{
    return format == NULL || strcmp(format, "mp3") == 0
           || strcmp(format, "m4a") == 0;
}


static int
pg_rss_item(pg_buf_t *out, const pg_job_t *job, const char *base,
    size_t base_len, const char *image, const char *token, pg_buf_t *tmp)
{
    int          n, enclosure;
    char         id[PG_JOB_ID_LEN + 1], num[96];
    char         etoken[PG_FEED_TOKEN_LEN + 1];
    size_t       len, i;
    long long    s;
    const char  *mime;

    static const struct {
        const char  *path;
        const char  *type;
    } links[] = {
        { "/transcript.vtt", "text/vtt" },
        { "/transcript.srt", "application/x-subrip" },
        { "/transcript.json", "application/json" },
    };

    len = strnlen(job->id, sizeof(job->id));
    if (len > PG_JOB_ID_LEN) {
        len = PG_JOB_ID_LEN;
    }

    memcpy(id, job->id, len);
    id[len] = '\0';

    pg_buf_reset(tmp);

    if (pg_rss_description(tmp, job) != 0) {
        return -1;
    }

    if (token != NULL
        && pg_feed_episode_token(token, strlen(token), id, etoken) != 0)
    {
        return -1;
    }

    enclosure = pg_feed_enclosure_format(job->format);
    mime = pg_rss_mime(job->format);

    if (pg_buf_append_str(out, "<item>\n") != 0
        || pg_rss_element(out, "title", job->title ? job->title : id) != 0
        || pg_buf_append_str(out, "<guid isPermaLink=\"false\">") != 0
        || pg_xml_escape(out, id, len) != 0
        || pg_buf_append_str(out, "</guid>\n<pubDate>") != 0
        || pg_rss_date(out, job->created_ms) != 0
        || pg_buf_append_str(out, "</pubDate>\n<description>") != 0
        || pg_xml_escape(out, (const char *) tmp->data, tmp->len) != 0
        || pg_buf_append_str(out, enclosure
                                  ? "</description>\n<enclosure url=\""
                                  : "</description>\n"
                                    "<podcast:alternateEnclosure type=\"")
           != 0)
    {
        return -1;
    }

    if (!enclosure) {
        n = snprintf(num, sizeof(num), "\" length=\"%zu\" default=\"true\">\n"
                     "<podcast:source uri=\"", job->audio_bytes);

        if (pg_buf_append_str(out, mime) != 0
            || pg_buf_append(out, num, (size_t) n) != 0)
        {
            return -1;
        }
    }

    if (pg_rss_url(out, base, base_len, "/", id, "/audio") != 0
        || (token != NULL
            && (pg_buf_append_str(out, "?token=") != 0
                || pg_buf_append_str(out, etoken) != 0)))
    {
        return -1;
    }

    if (enclosure) {
        n = snprintf(num, sizeof(num), "\" length=\"%zu\" type=\"",
                     job->audio_bytes);

        if (pg_buf_append(out, num, (size_t) n) != 0
            || pg_buf_append_str(out, mime) != 0
            || pg_buf_append_str(out, "\"/>\n") != 0)
        {
            return -1;
        }

    } else if (pg_buf_append_str(out, "\"/>\n</podcast:alternateEnclosure>\n")
               != 0)
    {
        return -1;
    }

    s = llround(pg_feed_time(job->duration_s));

    n = snprintf(num, sizeof(num), "<itunes:duration>%02lld:%02d:%02d"
                 "</itunes:duration>\n", s / 3600, (int) (s / 60 % 60),
                 (int) (s % 60));

    if (pg_buf_append(out, num, (size_t) n) != 0
        || pg_buf_append_str(out, "<itunes:image href=\"") != 0
        || pg_xml_escape(out, image, strlen(image)) != 0
        || pg_buf_append_str(out,
               "\"/>\n<itunes:episodeType>full</itunes:episodeType>\n") != 0)
    {
        return -1;
    }

    /* a token opens the feed and the audio only: no links that would
     * not open */

    for (i = 0; token == NULL && i < PG_NELEMS(links); i++) {
        if (pg_buf_append_str(out, "<podcast:transcript url=\"") != 0
            || pg_rss_url(out, base, base_len, "/", id, links[i].path) != 0
            || pg_buf_append_str(out, "\" type=\"") != 0
            || pg_buf_append_str(out, links[i].type) != 0
            || pg_buf_append_str(out, "\"/>\n") != 0)
        {
            return -1;
        }
    }

    if (token == NULL
        && (pg_buf_append_str(out, "<podcast:chapters url=\"") != 0
            || pg_rss_url(out, base, base_len, "/", id, "/chapters.json")
               != 0
            || pg_buf_append_str(out,
                   "\" type=\"application/json+chapters\"/>\n") != 0))
    {
        return -1;
    }

    return pg_buf_append_str(out, "</item>\n");
}


/* "<name>" escaped s "</name>\n"; NULL is empty */
static int
pg_rss_element(pg_buf_t *out, const char *name, const char *s)
{
    if (s == NULL) {
        s = "";
    }

    if (pg_buf_append(out, "<", 1) != 0
        || pg_buf_append_str(out, name) != 0
        || pg_buf_append(out, ">", 1) != 0
        || pg_xml_escape(out, s, strlen(s)) != 0
        || pg_buf_append(out, "</", 2) != 0
        || pg_buf_append_str(out, name) != 0
        || pg_buf_append(out, ">\n", 2) != 0)
    {
        return -1;
    }

    return 0;
}


/* base + path + id + suffix, escaped for an attribute */
static int
pg_rss_url(pg_buf_t *out, const char *link, size_t link_len,
    const char *path, const char *id, const char *suffix)
{
    if (pg_xml_escape(out, link, link_len) != 0
        || pg_xml_escape(out, path, strlen(path)) != 0
        || pg_xml_escape(out, id, strlen(id)) != 0
        || pg_xml_escape(out, suffix, strlen(suffix)) != 0)
    {
        return -1;
    }

    return 0;
}


/* RFC 2822 (and RFC 822): "Tue, 25 Nov 2026 10:00:00 GMT" */
static int
pg_rss_date(pg_buf_t *out, int64_t ms)
{
    int        n;
    char       buf[64];
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000 - (ms % 1000 < 0));

    if (gmtime_r(&t, &tm) == NULL
        || (unsigned) tm.tm_wday >= PG_NELEMS(pg_rss_days)
        || (unsigned) tm.tm_mon >= PG_NELEMS(pg_rss_months))
    {
        t = 0;

        if (gmtime_r(&t, &tm) == NULL) {
            return -1;
        }
    }

    n = snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 pg_rss_days[tm.tm_wday], tm.tm_mday,
                 pg_rss_months[tm.tm_mon], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);

    if (n <= 0 || (size_t) n >= sizeof(buf)) {
        return -1;
    }

    return pg_buf_append(out, buf, (size_t) n);
}


/*
 * The first segments' texts, joined by spaces, at most
 * PG_FEED_DESCRIPTION_MAX characters: a longer text is cut and ends with
 * an ellipsis.  Unescaped: the caller escapes.  The title when there is
 * no text.
 */
static int
pg_rss_description(pg_buf_t *out, const pg_job_t *job)
{
    size_t                i, j, k, len, nchars, last;
    uint32_t              c;
    const unsigned char  *p;

    nchars = 0;
    last = 0;                   /* where the last character starts */

    for (i = 0; i < job->nsegments; i++) {
        if (job->segments[i].text == NULL
            || job->segments[i].text[0] == '\0')
        {
            continue;
        }

        p = (const unsigned char *) job->segments[i].text;
        len = strlen(job->segments[i].text);

        if (nchars > 0) {
            if (nchars == PG_FEED_DESCRIPTION_MAX) {
                goto cut;
            }

            last = out->len;

            if (pg_buf_append(out, " ", 1) != 0) {
                return -1;
            }

            nchars++;
        }

        for (j = 0; j < len; j += k) {
            if (nchars == PG_FEED_DESCRIPTION_MAX) {
                goto cut;
            }

            k = pg_feed_utf8(p + j, len - j, &c);

            last = out->len;

            if (pg_buf_append(out, p + j, k) != 0) {
                return -1;
            }

            nchars++;
        }
    }

    if (nchars == 0 && job->title != NULL) {
        return pg_buf_append_str(out, job->title);
    }

    return 0;

cut:

    /* the ellipsis takes the place of the last character */

    out->len = last;

    while (out->len > 0 && out->data[out->len - 1] == ' ') {
        out->len--;
    }

    return pg_buf_append_str(out, PG_FEED_ELLIPSIS);
}


static const char *
pg_rss_mime(const char *format)
{
    size_t  i;

    if (format == NULL) {
        return "audio/mpeg";
    }

    for (i = 0; i < PG_NELEMS(pg_rss_mimes); i++) {
        if (strcmp(pg_rss_mimes[i].format, format) == 0) {
            return pg_rss_mimes[i].mime;
        }
    }

    return "application/octet-stream";
}
