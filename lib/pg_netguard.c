/*
 * podgen core: the SSRF guard (see the header).
 */

#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "pg_netguard.h"


/* Ranges refused unless allowed; IPv4 ones also apply to embedded forms. */
static const struct {
    uint8_t   a, b, c, d;
    unsigned  prefix;
} pg_netguard_v4[] = {
    { 0, 0, 0, 0, 8 },          /* "this network", unspecified */
    { 10, 0, 0, 0, 8 },         /* private */
    { 100, 64, 0, 0, 10 },      /* CGNAT */
    { 127, 0, 0, 0, 8 },        /* loopback */
    { 169, 254, 0, 0, 16 },     /* link-local, cloud metadata */
    { 172, 16, 0, 0, 12 },      /* private */
    { 192, 0, 0, 0, 24 },       /* IETF protocol assignments */
    { 192, 0, 2, 0, 24 },       /* documentation */
    { 192, 88, 99, 0, 24 },     /* 6to4 relay anycast */
    { 192, 168, 0, 0, 16 },     /* private */
    { 198, 18, 0, 0, 15 },      /* benchmarking */
    { 198, 51, 100, 0, 24 },    /* documentation */
    { 203, 0, 113, 0, 24 },     /* documentation */
    { 224, 0, 0, 0, 4 },        /* multicast */
    { 240, 0, 0, 0, 4 }         /* reserved, broadcast */
};


static int pg_netguard_in(const uint8_t *addr, const uint8_t *net,
    unsigned prefix);
static int pg_netguard_v4_public(const uint8_t *a);


int
pg_cidr_parse(const char *s, size_t len, pg_cidr_t *out)
{
    char           buf[64];
    size_t         i;
    unsigned long  prefix;
    const char    *slash;

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    memset(out, 0, sizeof(pg_cidr_t));

    slash = strchr(buf, '/');
    prefix = (unsigned long) -1;

    if (slash) {
        if (slash[1] == '\0') {
            return -1;
        }

        prefix = 0;

        for (i = 1; slash[i]; i++) {
            if (slash[i] < '0' || slash[i] > '9' || prefix > 128) {
                return -1;
            }

            prefix = prefix * 10 + (unsigned long) (slash[i] - '0');
        }

        buf[slash - buf] = '\0';
    }

    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;

        if (prefix == (unsigned long) -1) {
            prefix = 32;
        }

        if (prefix > 32) {
            return -1;
        }

    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;

        if (prefix == (unsigned long) -1) {
            prefix = 128;
        }

        if (prefix > 128) {
            return -1;
        }

    } else {
        return -1;
    }

    out->prefix = (unsigned) prefix;

    return 0;
}


int
pg_addr_allowed(const struct sockaddr *sa, const pg_cidr_t *allow,
    size_t nallow)
{
    size_t                      i;
    const uint8_t              *a, *v4;
    const struct sockaddr_in   *sin;
    const struct sockaddr_in6  *sin6;

    static const uint8_t  mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0xff, 0xff };
    static const uint8_t  zero[12] = { 0 };
    static const uint8_t  nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0,
                                        0, 0, 0, 0 };

    if (sa == NULL) {
        return 0;
    }

    if (sa->sa_family == AF_INET) {
        sin = (const struct sockaddr_in *) sa;
        a = (const uint8_t *) &sin->sin_addr;

        for (i = 0; i < nallow; i++) {
            if (allow[i].family == AF_INET
                && pg_netguard_in(a, allow[i].addr, allow[i].prefix))
            {
                return 1;
            }
        }

        return pg_netguard_v4_public(a);
    }

    if (sa->sa_family != AF_INET6) {
        return 0;
    }

    sin6 = (const struct sockaddr_in6 *) sa;
    a = (const uint8_t *) &sin6->sin6_addr;

    for (i = 0; i < nallow; i++) {
        if (allow[i].family == AF_INET6
            && pg_netguard_in(a, allow[i].addr, allow[i].prefix))
        {
            return 1;
        }
    }

    /* forms that carry an IPv4 address are judged by it (allow ranges
     * of IPv4 too) */

    v4 = NULL;

    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
        v4 = a + 12;

    } else if (memcmp(a, zero, 12) == 0) {
        /* ::, ::1 and IPv4-compatible ::a.b.c.d (deprecated) */
        v4 = a + 12;

        if (v4[0] == 0) {
            return 0;
        }
    }

    if (v4) {
        for (i = 0; i < nallow; i++) {
            if (allow[i].family == AF_INET
                && pg_netguard_in(v4, allow[i].addr, allow[i].prefix))
            {
                return 1;
            }
        }

        return pg_netguard_v4_public(v4);
    }

    /* 6to4 2002::/16 carries one too, in bytes 2..5 */

    if (a[0] == 0x20 && a[1] == 0x02) {
        return pg_netguard_v4_public(a + 2);
    }

    if ((a[0] & 0xfe) == 0xfc            /* ULA fc00::/7 */
        || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)      /* fe80::/10 */
        || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)      /* fec0::/10 */
        || a[0] == 0xff                  /* multicast */
        || (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        || (a[0] == 0x01 && a[1] == 0 && memcmp(a + 2, zero, 6) == 0))
    {
        /* ..., documentation 2001:db8::/32, discard 100::/64 */
        return 0;
    }

    return 1;
}


static int
pg_netguard_v4_public(const uint8_t *a)
{
    size_t   i;
    uint8_t  net[4];

    for (i = 0; i < sizeof(pg_netguard_v4) / sizeof(pg_netguard_v4[0]); i++) {
        net[0] = pg_netguard_v4[i].a;
        net[1] = pg_netguard_v4[i].b;
        net[2] = pg_netguard_v4[i].c;
        net[3] = pg_netguard_v4[i].d;

        if (pg_netguard_in(a, net, pg_netguard_v4[i].prefix)) {
            return 0;
        }
    }

    return 1;
}


static int
pg_netguard_in(const uint8_t *addr, const uint8_t *net, unsigned prefix)
{
    unsigned  bytes, bits;
    uint8_t   mask;

    bytes = prefix / 8;
    bits = prefix % 8;

    if (memcmp(addr, net, bytes) != 0) {
        return 0;
    }

    if (bits == 0) {
        return 1;
    }

    mask = (uint8_t) (0xff << (8 - bits));

    return (addr[bytes] & mask) == (net[bytes] & mask);
}
