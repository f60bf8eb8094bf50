/*
 * Unit tests of lib/pg_netguard.c: which addresses a source URL may be
 * fetched from, IPv4 and IPv6 and the forms that embed IPv4, and
 * podgen_fetch_allow ranges.
 */

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "pg_netguard.h"
#include "unit.h"


static int
allowed(const char *ip, const pg_cidr_t *allow, size_t n)
{
    struct sockaddr_in   sin;
    struct sockaddr_in6  sin6;

    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));

    if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        return pg_addr_allowed((struct sockaddr *) &sin, allow, n);
    }

    if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        return pg_addr_allowed((struct sockaddr *) &sin6, allow, n);
    }

    printf("# not an address: %s\n", ip);
    exit(1);
}


int
main(void)
{
    size_t      i;
    pg_cidr_t   allow[3];

    static const char  *refused[] = {
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "100.127.255.254", "224.0.0.1", "239.1.1.1", "255.255.255.255",
        "0.0.0.0", "0.1.2.3", "240.0.0.1", "192.0.2.7", "198.18.0.1",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe", "::127.0.0.1", "2002:7f00:1::1",
        "2001:db8::1", "fec0::1", NULL
    };

    static const char  *public[] = {
        "93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1",
        "192.169.0.1", "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:8.8.8.8", "2001:4860:4860::8888", NULL
    };

    for (i = 0; refused[i]; i++) {
        ok(!allowed(refused[i], NULL, 0), "refused by default: %s",
           refused[i]);
    }

    for (i = 0; public[i]; i++) {
        ok(allowed(public[i], NULL, 0), "public: %s", public[i]);
    }

    /* podgen_fetch_allow 127.0.0.1/32; 10.8.0.0/16; fd00::/8 */

    ok(pg_cidr_parse("127.0.0.1/32", 12, &allow[0]) == 0, "parse /32");
    ok(pg_cidr_parse("10.8.0.0/16", 11, &allow[1]) == 0, "parse /16");
    ok(pg_cidr_parse("fd00::/8", 8, &allow[2]) == 0, "parse v6 /8");

    ok(allowed("127.0.0.1", allow, 3), "allowed: 127.0.0.1 in its /32");
    ok(!allowed("127.0.0.2", allow, 3), "a /32 is exact: 127.0.0.2 not");
    ok(allowed("10.8.200.1", allow, 3), "allowed: 10.8.200.1 in 10.8/16");
    ok(!allowed("10.9.0.1", allow, 3), "10.9.0.1 is outside 10.8/16");
    ok(allowed("::ffff:127.0.0.1", allow, 3),
       "allowed: the IPv4-mapped form of an allowed address");
    ok(allowed("fd00::5", allow, 3), "allowed: fd00::5 in fd00::/8");
    ok(!allowed("fc00::5", allow, 3), "fc00::5 is outside fd00::/8");
    ok(!allowed("::1", allow, 3), "::1 not opened by 127.0.0.1/32");

    ok(pg_cidr_parse("10.0.0.0/33", 11, &allow[0]) == -1, "bad: /33");
    ok(pg_cidr_parse("::/129", 6, &allow[0]) == -1, "bad: /129");
    ok(pg_cidr_parse("localhost", 9, &allow[0]) == -1, "bad: a name");
    ok(pg_cidr_parse("1.2.3.4/", 8, &allow[0]) == -1, "bad: no prefix");
    ok(pg_cidr_parse("1.2.3.4", 7, &allow[0]) == 0 && allow[0].prefix == 32,
       "an address alone is a /32");

    return done_testing();
}
