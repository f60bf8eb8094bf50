/*
 * podgen core: HTML sources, parsed with gumbo (an HTML5 parser).
 *
 *   - the page is read as UTF-8, or converted from Latin-1 / windows-1252
 *     when the HTTP header or a <meta charset> says so;
 *   - scripts, styles, navigation, headers, footers, asides, forms,
 *     tables, code and hidden elements (hidden, aria-hidden, display:none,
 *     ad / share / cookie / comment boxes by their class or id) go;
 *   - the main content is the <article> or <main> with the most text,
 *     else the element with the most paragraph text (the way readability
 *     extractors do it);
 *   - the title is the first <h1>, else og:title, else <title> without
 *     the site's name;
 *   - headings below it start sections.
 *
 * gumbo is quadratic in the nesting depth (200,000 nested <div> take half
 * a minute), so a linear pre-scan refuses a page nested deeper than
 * PG_SOURCE_DEPTH_MAX before gumbo sees it; the walk itself is an
 * explicit stack.
 */

#define _GNU_SOURCE             /* memmem(), strcasestr() */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gumbo.h>

#include "pg_buf.h"
#include "pg_json.h"
#include "pg_script_int.h"
#include "pg_source.h"
#include "pg_text.h"


typedef struct {
    pg_source_builder_t   b;
    pg_buf_t              inl;          /* inline text of the open block */
    GumboTag              block;        /* what the inline text belongs to */
    const char           *title;        /* the page's title, said once */
    unsigned              title_seen:1;
} pg_html_t;


/* A growable stack of nodes for the depth-first searches. */
typedef struct {
    const GumboNode  **data;
    size_t             len;
    size_t             cap;
    int                failed;
} pg_html_stack_t;


static void
pg_html_push(pg_html_stack_t *st, const GumboNode *n)
{
    size_t             cap;
    const GumboNode  **p;

    if (st->len == st->cap) {
        cap = st->cap ? st->cap * 2 : 64;
        p = realloc(st->data, cap * sizeof(GumboNode *));

        if (p == NULL) {
            st->failed = 1;
            return;
        }

        st->data = p;
        st->cap = cap;
    }

    st->data[st->len++] = n;
}


static int pg_html_depth(const char *s, size_t len);
static int pg_html_skipped(const GumboNode *node);
static int pg_html_block(GumboTag tag);
static size_t pg_html_score(const GumboNode *node, int direct);
static const GumboNode *pg_html_find(const GumboNode *node, GumboTag tag);
static const GumboNode *pg_html_main(const GumboNode *root);
static void pg_html_text(const GumboNode *node, pg_buf_t *out, int depth);
static void pg_html_walk(pg_html_t *h, const GumboNode *root);
static void pg_html_flush(pg_html_t *h);
static char *pg_html_title(const GumboNode *root, pg_buf_t *tmp);
static char *pg_html_latin1(const char *s, size_t len, size_t *out_len);


int
pg_source_html(const char *data, size_t len, const char *charset,
    pg_source_doc_t *doc, pg_error_t *err)
{
    int                  latin;
    char                *conv, *title;
    size_t               n, clen;
    pg_buf_t             tmp;
    pg_html_t            h;
    const char          *p;
    GumboOutput         *out;
    GumboOptions         opt;
    const GumboNode     *main;

    memset(doc, 0, sizeof(pg_source_doc_t));

    if (pg_html_depth(data, len) != 0) {
        pg_error_set(err, 400, NULL, "invalid_document",
                     "the HTML is nested more than %d elements deep",
                     PG_SOURCE_DEPTH_MAX);
        return -1;
    }

    /* the character set: the HTTP header, else <meta charset> */

    latin = 0;

    if (charset && charset[0]) {
        latin = strcmp(charset, "iso-8859-1") == 0
                || strcmp(charset, "latin1") == 0
                || strcmp(charset, "windows-1252") == 0;

    } else {
        n = len < 2048 ? len : 2048;
        p = memmem(data, n, "charset=", 8);

        if (p) {
            p += 8;
            n = (size_t) (data + n - p);

            if (n && (*p == '"' || *p == '\'')) {
                p++;
                n--;
            }

            latin = (n >= 10 && strncasecmp(p, "iso-8859-1", 10) == 0)
                    || (n >= 12 && strncasecmp(p, "windows-1252", 12) == 0)
                    || (n >= 6 && strncasecmp(p, "latin1", 6) == 0);
        }
    }

    conv = NULL;
    clen = len;

    if (latin) {
        conv = pg_html_latin1(data, len, &clen);
        if (conv == NULL) {
            pg_script_oom(err);
            return -1;
        }

        data = conv;
    }

    opt = kGumboDefaultOptions;
    opt.max_errors = 16;

    out = gumbo_parse_with_options(&opt, data, clen);
    if (out == NULL) {
        free(conv);
        pg_script_oom(err);
        return -1;
    }

    memset(&h, 0, sizeof(pg_html_t));
    memset(&tmp, 0, sizeof(pg_buf_t));

    pg_source_builder_init(&h.b, doc, 0);

    title = pg_html_title(out->root, &tmp);

    if (title) {
        pg_source_set_title(&h.b, title, strlen(title));
        h.title = doc->title;
    }

    main = pg_html_main(out->root);
    h.block = GUMBO_TAG_P;

    pg_html_walk(&h, main);
    pg_html_flush(&h);

    free(title);
    pg_buf_free(&tmp);
    pg_buf_free(&h.inl);
    gumbo_destroy_output(&opt, out);
    free(conv);

    return pg_source_builder_finish(&h.b, err);
}


/*
 * How deep the elements nest, counted on the bytes: start tags minus end
 * tags, void and self-closed elements and those whose end tag is implied
 * (p, li, td, ...) left out, comments and script / style bodies skipped.
 * 0, or -1 when deeper than PG_SOURCE_DEPTH_MAX.
 */
static int
pg_html_depth(const char *s, size_t len)
{
    long          depth;
    size_t        i, k, n;
    int           end;
    char          name[16];
    const char   *e;

    static const char  *flat = " area base br col embed hr img input link "
        "meta param source track wbr p li dt dd tr td th thead tbody tfoot "
        "option optgroup rb rt rtc rp colgroup caption html head body ";

    depth = 0;

    for (i = 0; i < len; i++) {

        if (s[i] != '<') {
            continue;
        }

        if (i + 3 < len && s[i + 1] == '!' && s[i + 2] == '-'
            && s[i + 3] == '-')
        {
            e = memmem(s + i + 4, len - i - 4, "-->", 3);
            if (e == NULL) {
                return 0;
            }

            i = (size_t) (e - s) + 2;
            continue;
        }

        end = (i + 1 < len && s[i + 1] == '/');
        k = i + 1 + (size_t) end;

        for (n = 0; k < len && n < sizeof(name) - 2 && PG_ALNUM(s[k]);
             n++, k++)
        {
            name[n + 1] = (char) (s[k] | 0x20);
        }

        if (n == 0 || !PG_ALPHA(name[1])) {
            continue;
        }

        name[0] = ' ';
        name[n + 1] = ' ';

        if (k < len && PG_ALNUM(s[k])) {
            /* a long name: not one of the flat ones */
            name[n + 1] = '\0';

        } else {
            char  save[18];

            memcpy(save, name, n + 2);
            save[n + 2] = '\0';

            if (strstr(flat, save) != NULL) {
                continue;
            }
        }

        /* the end of the tag; "/>" closes it */

        e = memchr(s + k, '>', len - k);
        if (e == NULL) {
            break;
        }

        if (!end && e[-1] == '/') {
            i = (size_t) (e - s);
            continue;
        }

        if (end) {
            depth -= depth > 0;

        } else if (++depth > PG_SOURCE_DEPTH_MAX) {
            return -1;
        }

        /* raw text: nothing inside is a tag */

        if (!end && ((n == 6 && memcmp(name + 1, "script", 6) == 0)
                     || (n == 5 && memcmp(name + 1, "style", 5) == 0)
                     || (n == 8 && memcmp(name + 1, "textarea", 8) == 0)))
        {
            const char  *c = e;

            for ( ;; ) {
                c = memmem(c, (size_t) (s + len - c), "</", 2);

                if (c == NULL || (size_t) (s + len - c) < n + 2
                    || strncasecmp(c + 2, name + 1, n) == 0)
                {
                    break;
                }

                c += 2;
            }

            if (c == NULL) {
                return 0;
            }

            e = c - 1;
        }

        i = (size_t) (e - s);
    }

    return 0;
}


/* Elements whose content is not the page's text. */
static int
pg_html_skipped(const GumboNode *node)
{
    size_t              i, j, n;
    const char         *v;
    GumboAttribute     *a;
    const GumboVector  *attrs;

    static const char  *words[] = {
        "advert", "ad-", "ads", "banner", "sidebar", "share", "social",
        "cookie", "comment", "newsletter", "related", "promo", "popup",
        "breadcrumb", "menu", "navbar", "subscribe", "sponsor", "byline",
        "dateline", "credit", NULL
    };

    switch (node->v.element.tag) {
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_BUTTON:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_MATH:
    case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_PRE:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_VIDEO:
    case GUMBO_TAG_AUDIO:
    case GUMBO_TAG_MENU:
        return 1;
    default:
        break;
    }

    attrs = &node->v.element.attributes;

    for (i = 0; i < attrs->length; i++) {
        a = attrs->data[i];
        v = a->value;

        if (strcasecmp(a->name, "hidden") == 0) {
            return 1;
        }

        if (strcasecmp(a->name, "aria-hidden") == 0
            && strcasecmp(v, "true") == 0)
        {
            return 1;
        }

        if (strcasecmp(a->name, "style") == 0) {
            char   c[64];

            /* "display: none" without its spaces */

            for (j = 0, n = 0; v[j] && n + 1 < sizeof(c); j++) {
                if (v[j] != ' ') {
                    c[n++] = (char) (v[j] | 0x20);
                }
            }

            c[n] = '\0';

            if (strstr(c, "display:none") || strstr(c, "visibility:hidden")) {
                return 1;
            }
        }

        if (strcasecmp(a->name, "role") == 0
            && (strcasecmp(v, "navigation") == 0
                || strcasecmp(v, "banner") == 0
                || strcasecmp(v, "contentinfo") == 0
                || strcasecmp(v, "complementary") == 0))
        {
            return 1;
        }

        if (strcasecmp(a->name, "class") == 0
            || strcasecmp(a->name, "id") == 0)
        {
            for (j = 0; words[j]; j++) {
                const char  *w = strcasestr(v, words[j]);
                size_t       wl = strlen(words[j]);

                /* a whole word of the class: "ad-slot", not "shadow" */

                if (w && (w == v || !PG_ALPHA(w[-1]))
                    && (!PG_ALPHA(w[wl]) || words[j][wl - 1] == '-'))
                {
                    return 1;
                }
            }
        }
    }

    return 0;
}


static int
pg_html_block(GumboTag tag)
{
    switch (tag) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_LI:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
    case GUMBO_TAG_BLOCKQUOTE:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_BR:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_BODY:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY:
        return 1;
    default:
        return 0;
    }
}


/*
 * Text of the paragraphs under node (direct: of its own <p> children
 * only), bytes; skipped elements count nothing.  Explicit stack.
 */
static size_t
pg_html_score(const GumboNode *node, int direct)
{
    size_t            total, i;
    pg_html_stack_t   st;
    const GumboNode  *n, *c;

    total = 0;
    memset(&st, 0, sizeof(pg_html_stack_t));
    pg_html_push(&st, node);

    while (st.len) {
        n = st.data[--st.len];

        for (i = 0; i < n->v.element.children.length; i++) {
            c = n->v.element.children.data[i];

            if (c->type == GUMBO_NODE_TEXT && n != node
                && (!direct || n->v.element.tag == GUMBO_TAG_P))
            {
                total += strlen(c->v.text.text);
                continue;
            }

            if (c->type != GUMBO_NODE_ELEMENT || pg_html_skipped(c)) {
                continue;
            }

            if (direct && n == node && c->v.element.tag != GUMBO_TAG_P) {
                continue;
            }

            pg_html_push(&st, c);
        }
    }

    free(st.data);

    return total;
}


/* The first element with that tag, depth-first, not under skipped ones. */
static const GumboNode *
pg_html_find(const GumboNode *node, GumboTag tag)
{
    size_t            i;
    pg_html_stack_t   st;
    const GumboNode  *n, *c;

    memset(&st, 0, sizeof(pg_html_stack_t));
    pg_html_push(&st, node);

    while (st.len) {
        n = st.data[--st.len];

        if (n->v.element.tag == tag) {
            free(st.data);
            return n;
        }

        /* children in reverse, so the first is taken first */

        for (i = n->v.element.children.length; i > 0; i--) {
            c = n->v.element.children.data[i - 1];

            if (c->type == GUMBO_NODE_ELEMENT
                && (c->v.element.tag == tag || !pg_html_skipped(c)))
            {
                pg_html_push(&st, c);
            }
        }
    }

    free(st.data);

    return NULL;
}


/*
 * The main content: the <article> or <main> with the most paragraph text,
 * else the element whose own <p> children have the most text (its parent
 * when that holds several such blocks), else <body>.
 */
static const GumboNode *
pg_html_main(const GumboNode *root)
{
    size_t            i, s, best_score, best_article;
    pg_html_stack_t   st;
    const GumboNode  *n, *c, *best, *article, *body;

    body = pg_html_find(root, GUMBO_TAG_BODY);
    if (body == NULL) {
        body = root;
    }

    best = NULL;
    article = NULL;
    best_score = 0;
    best_article = 0;

    memset(&st, 0, sizeof(pg_html_stack_t));
    pg_html_push(&st, body);

    while (st.len) {
        n = st.data[--st.len];

        if (n->v.element.tag == GUMBO_TAG_ARTICLE
            || n->v.element.tag == GUMBO_TAG_MAIN)
        {
            s = pg_html_score(n, 0);

            if (s > best_article) {
                best_article = s;
                article = n;
            }
        }

        s = pg_html_score(n, 1);

        if (s > best_score) {
            best_score = s;
            best = n;
        }

        for (i = 0; i < n->v.element.children.length; i++) {
            c = n->v.element.children.data[i];

            if (c->type == GUMBO_NODE_ELEMENT && !pg_html_skipped(c)) {
                pg_html_push(&st, c);
            }
        }
    }

    free(st.data);

    if (article && best_article * 2 >= best_score) {
        return article;
    }

    if (best == NULL) {
        return body;
    }

    /* an article split into several <div>s of paragraphs: take them all */

    if (best->parent && best->parent->type == GUMBO_NODE_ELEMENT
        && best->parent != body
        && pg_html_score(best->parent, 0) > best_score + best_score / 2)
    {
        return best->parent;
    }

    return best;
}


/* The text under node, for titles: spaces for blocks. */
static void
pg_html_text(const GumboNode *node, pg_buf_t *out, int depth)
{
    size_t            i;
    const GumboNode  *c;

    if (depth > 32) {
        return;
    }

    for (i = 0; i < node->v.element.children.length; i++) {
        c = node->v.element.children.data[i];

        if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_WHITESPACE
            || c->type == GUMBO_NODE_CDATA)
        {
            (void) pg_buf_append_str(out, c->v.text.text);

        } else if (c->type == GUMBO_NODE_ELEMENT && !pg_html_skipped(c)) {
            pg_html_text(c, out, depth + 1);
            (void) pg_buf_append(out, " ", 1);
        }
    }
}


/* The walk, in document order, with an explicit stack of positions. */
static void
pg_html_walk(pg_html_t *h, const GumboNode *root)
{
    size_t            sp, i;
    GumboTag          tag;
    const GumboNode  *n, *c;

    struct {
        const GumboNode  *node;
        size_t            next;
    } stack[PG_SOURCE_DEPTH_MAX + 8];

    sp = 0;
    stack[sp].node = root;
    stack[sp].next = 0;
    sp++;

    while (sp && !h->b.failed) {
        n = stack[sp - 1].node;
        i = stack[sp - 1].next++;

        if (i >= n->v.element.children.length) {
            /* leaving the element: a block ends */

            if (pg_html_block(n->v.element.tag)) {
                pg_html_flush(h);
            }

            sp--;
            continue;
        }

        c = n->v.element.children.data[i];

        if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_CDATA
            || c->type == GUMBO_NODE_WHITESPACE)
        {
            if (pg_buf_append_str(&h->inl, c->v.text.text) != 0) {
                h->b.failed = 1;
            }

            continue;
        }

        if (c->type != GUMBO_NODE_ELEMENT || pg_html_skipped(c)) {
            continue;
        }

        tag = c->v.element.tag;

        if (pg_html_block(tag)) {
            pg_html_flush(h);
            h->block = tag;

        } else if (pg_buf_append(&h->inl, " ", 1 - (tag == GUMBO_TAG_A
                                                    || tag == GUMBO_TAG_SPAN
                                                    || tag == GUMBO_TAG_B
                                                    || tag == GUMBO_TAG_I
                                                    || tag == GUMBO_TAG_EM
                                                    || tag == GUMBO_TAG_STRONG
                                                    || tag == GUMBO_TAG_SUP))
                   != 0)
        {
            h->b.failed = 1;
        }

        if (sp < PG_SOURCE_DEPTH_MAX) {
            stack[sp].node = c;
            stack[sp].next = 0;
            sp++;
        }
    }
}


/* The inline text gathered so far becomes a block of the builder. */
static void
pg_html_flush(pg_html_t *h)
{
    int          level;
    size_t       n;
    const char  *s;

    s = (const char *) h->inl.data;
    n = h->inl.len;

    if (n == 0) {
        return;
    }

    switch (h->block) {

    case GUMBO_TAG_H1:
    case GUMBO_TAG_H2:
    case GUMBO_TAG_H3:
    case GUMBO_TAG_H4:
    case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
        level = (int) (h->block - GUMBO_TAG_H1) + 1;

        /* the title's own heading is not a section */

        pg_buf_reset(&h->b.tmp);

        if (h->title && !h->title_seen) {
            size_t  a = 0, tl = strlen(h->title);

            while (a < n && (s[a] == ' ' || s[a] == '\n' || s[a] == '\t')) {
                a++;
            }

            if (n - a >= tl && strncmp(s + a, h->title, tl) == 0) {
                h->title_seen = 1;
                break;
            }
        }

        pg_source_heading(&h->b, level, s, n);
        break;

    case GUMBO_TAG_LI:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
        pg_source_item(&h->b, s, n);
        break;

    default:
        pg_source_paragraph(&h->b, s, n);
        break;
    }

    pg_buf_reset(&h->inl);
}


/*
 * The title: the first <h1> in the body, else og:title, else <title>
 * without " | Site", " - Site" and the like.  malloc'd or NULL.
 */
static char *
pg_html_title(const GumboNode *root, pg_buf_t *tmp)
{
    char               *t;
    size_t              i, j, len, best;
    const char         *s, *seps[] = { " | ", " - ", " \xe2\x80\x94 ",
                                       " \xe2\x80\x93 ", " \xc2\xb7 ",
                                       " :: ", " // ", NULL };
    const GumboNode    *n, *head, *c;
    GumboAttribute     *prop, *content;

    pg_buf_reset(tmp);

    n = pg_html_find(root, GUMBO_TAG_BODY);
    n = n ? pg_html_find(n, GUMBO_TAG_H1) : NULL;

    if (n) {
        pg_html_text(n, tmp, 0);

        if (pg_script_count_words((const char *) tmp->data, tmp->len)) {
            goto found;
        }

        pg_buf_reset(tmp);
    }

    head = pg_html_find(root, GUMBO_TAG_HEAD);
    if (head == NULL) {
        return NULL;
    }

    for (i = 0; i < head->v.element.children.length; i++) {
        c = head->v.element.children.data[i];

        if (c->type != GUMBO_NODE_ELEMENT
            || c->v.element.tag != GUMBO_TAG_META)
        {
            continue;
        }

        prop = gumbo_get_attribute(&c->v.element.attributes, "property");
        content = gumbo_get_attribute(&c->v.element.attributes, "content");

        if (prop && content && strcmp(prop->value, "og:title") == 0) {
            (void) pg_buf_append_str(tmp, content->value);

            if (pg_script_count_words((const char *) tmp->data, tmp->len)) {
                goto found;
            }

            pg_buf_reset(tmp);
        }
    }

    for (i = 0; i < head->v.element.children.length; i++) {
        c = head->v.element.children.data[i];

        if (c->type == GUMBO_NODE_ELEMENT
            && c->v.element.tag == GUMBO_TAG_TITLE)
        {
            pg_html_text(c, tmp, 0);
            break;
        }
    }

    if (tmp->len == 0) {
        return NULL;
    }

    /* "Article | Site": the site's name, after the last separator, goes */

    (void) pg_buf_append(tmp, "", 1);
    s = (const char *) tmp->data;
    best = 0;

    for (j = 0; seps[j]; j++) {
        const char  *p, *q;

        for (p = s; (q = strstr(p, seps[j])) != NULL; p = q + 1) {
            len = (size_t) (q - s);

            if (len > best) {
                best = len;
            }
        }
    }

    if (best && pg_script_count_words(s, best)) {
        t = malloc(best + 1);
        if (t) {
            memcpy(t, s, best);
            t[best] = '\0';
        }

        return t;
    }

    tmp->len--;

found:

    t = malloc(tmp->len + 1);
    if (t) {
        memcpy(t, tmp->data, tmp->len);
        t[tmp->len] = '\0';

        /* one line */

        for (i = 0; i < tmp->len; i++) {
            if ((unsigned char) t[i] < 0x20) {
                t[i] = ' ';
            }
        }
    }

    return t;
}


/* Latin-1 (and windows-1252, read as Latin-1) to UTF-8. */
static char *
pg_html_latin1(const char *s, size_t len, size_t *out_len)
{
    char           *o;
    size_t          i, n;
    unsigned char   c;

    o = malloc(len * 2 + 1);
    if (o == NULL) {
        return NULL;
    }

    for (i = 0, n = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c < 0x80) {
            o[n++] = (char) c;

        } else if (c < 0xa0) {
            o[n++] = ' ';       /* C1 (windows-1252 punctuation) */

        } else {
            o[n++] = (char) (0xc0 | (c >> 6));
            o[n++] = (char) (0x80 | (c & 0x3f));
        }
    }

    o[n] = '\0';
    *out_len = n;

    return o;
}
