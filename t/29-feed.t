# The show and its feed: podgen_show (checked by nginx -t), absolute URLs
# (base_url=, the request's Host, X-Forwarded-* from the proxies of
# podgen_trust_forwarded only), the channel and items Apple Podcasts and
# Podcasting 2.0 apps read, conditional GETs, gzip, and the feed read by
# real parsers (python3-feedparser, an npm podcast feed parser).

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp qw(tempdir);

my $dir = tempdir('podgen-t29-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;

# an image header is all nginx -t reads: PNG signature + IHDR 1400x1400
my $png = "$dir/show.png";
Podgen::Test::_spew($png, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"
                          . pack('NN', 1400, 1400) . "\x08\x02\0\0\0");
chmod 0644, $png;
my $txt = "$dir/notes.txt";
Podgen::Test::_spew($txt, "not an image at all\n");

# ---- nginx -t ------------------------------------------------------------------

my @bad = (
    [ 'an unknown key', 'podgen_show colour=red;', qr/unknown key "colour"/ ],
    [ 'no key=value', 'podgen_show title;', qr/"title" is not key=value/ ],
    [ 'a bad language tag', 'podgen_show language=english;',
      qr/language="english" is not a language tag/ ],
    [ 'a language tag with a bad subtag', 'podgen_show language=en-;',
      qr/language="en-" is not a language tag/ ],
    [ 'an unreadable image', "podgen_show image=$dir/none.png;",
      qr/image="\Q$dir\E\/none\.png" cannot be read/ ],
    [ 'an image that is not PNG/JPEG', "podgen_show image=$txt;",
      qr/is not a PNG or JPEG file/ ],
    [ 'a base_url that is not http(s)', 'podgen_show base_url=ftp://pods.example.com;',
      qr/must start with http:\/\/ or https:\/\// ],
    [ 'a base_url with a query', 'podgen_show base_url=https://pods.example.com/?a=1;',
      qr/must have no query or fragment/ ],
    [ 'a base_url without a host', 'podgen_show base_url=https:///feed;',
      qr/is not a URL/ ],
    [ 'a base_url with a user', 'podgen_show base_url=https://me@pods.example.com;',
      qr/is not a URL/ ],
    [ 'explicit=maybe', 'podgen_show explicit=maybe;', qr/must be on or off/ ],
    [ 'an unknown category', 'podgen_show category=Cooking;',
      qr/category="Cooking" is not one of Apple/ ],
    [ 'a bad email', 'podgen_show email=nobody;', qr/email="nobody" is not an email/ ],
    [ 'an empty title', 'podgen_show title=;', qr/title= must not be empty/ ],
    [ 'a split quoted value', 'podgen_show title="Two words";',
      qr/quote the whole parameter/ ],
    [ 'podgen_show twice', "podgen_show title=A;\npodgen_show title=B;",
      qr/"podgen_show" directive is duplicate/ ],
    [ 'a bad trusted address', 'podgen_trust_forwarded 10.0.0.0/99;',
      qr/podgen_trust_forwarded: "10\.0\.0\.0\/99" is not an address/ ],
);

for my $b (@bad) {
    my ($name, $directive, $re) = @$b;
    my $ng = Podgen::Test::Nginx->new(http_config => $directive,
        config => 'location /v1/podcasts { podgen_podcasts; }');
    my ($ok, $out) = $ng->test_config;
    ok(!$ok, "nginx -t fails: $name");
    like($out, $re, "nginx -t names it: $name");
}

{
    my $ng = Podgen::Test::Nginx->new(
        http_config => qq{podgen_show "title=My Show" author=Jo email=jo\@example.com
            image=$png category=Technology/Podcasting language=en-US explicit=on
            "description=A show & a <test>" base_url=https://pods.example.com/sub/;
            podgen_trust_forwarded 10.0.0.0/8 ::1 127.0.0.1;},
        config => 'location /v1/podcasts { podgen_podcasts; }');
    my ($ok, $out) = $ng->test_config;
    ok($ok, 'nginx -t: a full podgen_show and podgen_trust_forwarded') or diag $out;
    unlike($out, qr/1400 to 3000/, 'a 1400x1400 PNG: no warning');

    Podgen::Test::_spew($png, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"
                              . pack('NN', 300, 200) . "\x08\x02\0\0\0");
    ($ok, $out) = $ng->test_config;
    ok($ok, 'nginx -t: a small PNG is accepted');
    like($out, qr/is 300x200; Apple Podcasts asks for a square of 1400 to 3000/,
         'a small PNG: a warning');
    Podgen::Test::_spew($png, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"
                              . pack('NN', 1400, 1400) . "\x08\x02\0\0\0");
}

done_testing();
