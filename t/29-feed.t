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
use IO::Uncompress::Gunzip ();

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

# ---- the feed ------------------------------------------------------------------

my $ng = Podgen::Test::Nginx->new(
    http_config => qq{podgen_store store;
        gzip on; gzip_min_length 1;
        gzip_types application/rss+xml text/vtt application/x-subrip;
        podgen_show "title=The T29 Show" "author=Jo Host" email=jo\@example.com
            image=$png category=Technology/Podcasting language=en-US
            explicit=off "description=Episodes & <tests>";},
    config => join("\n",
        'location /v1/podcasts { podgen_podcasts; podgen_trust_forwarded 10.0.0.0/8; }',
        'location /proxy/v1/podcasts { podgen_podcasts; podgen_trust_forwarded 127.0.0.0/8; }',
        'location /cdn/v1/podcasts { podgen_podcasts;',
        '    podgen_show title=CDN base_url=https://pods.example.com/sub/; }'));
$ng->start;

my %id;
for my $f (qw(mp3 flac)) {
    $id{$f} = new_podcast($ng, { format => $f, title => "Episode in $f",
        segments => [ { speaker => 'Ann', text => "This one is $f." },
                      { speaker => 'Bob', text => 'Short and sweet.' } ] },
        "POST $f") // 'none';
}
my %job;
for my $f (sort keys %id) {
    $job{$f} = wait_job($ng, $id{$f}, 60);
    is($job{$f}{status}, 'completed', "$f: completed");
}

my $feed = request($ng, 'GET', '/v1/podcasts/feed.xml',
                   headers => { Host => 'feeds.test:8081' });
is($feed->{status}, 200, 'feed: 200') or diag show($feed);
my $x = $feed->{body};
is($feed->{headers}{'content-type'}, 'application/rss+xml; charset=utf-8',
   'feed: Content-Type');

like($x, qr{<title>The T29 Show</title>}, 'channel: title');
like($x, qr{<description>Episodes &amp; &lt;tests&gt;</description>}, 'channel: description');
like($x, qr{<link>http://feeds\.test:8081</link>}, 'channel: link from Host');
like($x, qr{<language>en-US</language>}, 'channel: language');
like($x, qr{<itunes:author>Jo Host</itunes:author>}, 'channel: itunes:author');
like($x, qr{<itunes:owner>\s*<itunes:name>Jo Host</itunes:name>\s*<itunes:email>jo\@example\.com</itunes:email>\s*</itunes:owner>},
     'channel: itunes:owner');
like($x, qr{<itunes:image href="http://feeds\.test:8081/v1/podcasts/artwork\.png"/>},
     'channel: itunes:image, absolute');
like($x, qr{<itunes:category text="Technology">\s*<itunes:category text="Podcasting"/>},
     'channel: itunes:category');
like($x, qr{<itunes:explicit>false</itunes:explicit>}, 'channel: itunes:explicit');
like($x, qr{<podcast:locked owner="jo\@example\.com">yes</podcast:locked>},
     'channel: podcast:locked yes (an owner email)');
my ($guid) = $x =~ m{<podcast:guid>([^<]+)</podcast:guid>};
$guid //= '';
SKIP: {
    skip 'no python3', 1 unless which('python3');
    my $want = `python3 -c 'import uuid; print(uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), "feeds.test:8081/v1/podcasts/feed.xml"))'`;
    chomp $want;
    is($guid, $want, 'channel: podcast:guid is the UUIDv5 of the feed URL (python uuid)');
}

# every URL of the feed is absolute
my @urls = $x =~ m{(?:url|href|uri)="([^"]*)"}g;
ok(@urls >= 10, 'feed: URLs (' . scalar(@urls) . ')');
is(scalar(grep { !m{^http://feeds\.test:8081/v1/podcasts/} } @urls), 0,
   'feed: every URL absolute, from the Host') or diag join "\n", @urls;

# items
my ($mp3) = $x =~ m{(<item>(?:(?!</item>).)*?\Q$id{mp3}\E.*?</item>)}s;
my ($flac) = $x =~ m{(<item>(?:(?!</item>).)*?\Q$id{flac}\E.*?</item>)}s;
ok($mp3 && $flac, 'both items') or diag $x;
$mp3 //= ''; $flac //= '';
like($mp3, qr{<guid isPermaLink="false">\Q$id{mp3}\E</guid>}, 'item: guid');
like($mp3, qr{<pubDate>\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT</pubDate>}, 'item: pubDate RFC 2822');
my ($url, $len, $type) = $mp3 =~ m{<enclosure url="([^"]+)" length="(\d+)" type="([^"]+)"/>};
is($type, 'audio/mpeg', 'mp3 item: an enclosure, audio/mpeg');
like($mp3, qr{<itunes:image href="http://feeds\.test:8081/v1/podcasts/artwork\.png"/>}, 'item: itunes:image');
like($mp3, qr{<podcast:transcript url="http://feeds\.test:8081/v1/podcasts/\Q$id{mp3}\E/transcript\.vtt" type="text/vtt"/>},
     'item: VTT transcript');
like($mp3, qr{<podcast:transcript url="[^"]+/transcript\.srt" type="application/x-subrip"/>}, 'item: SRT transcript');
like($mp3, qr{<podcast:transcript url="[^"]+/transcript\.json" type="application/json"/>}, 'item: JSON transcript');
like($mp3, qr{<podcast:chapters url="[^"]+/chapters\.json" type="application/json\+chapters"/>}, 'item: chapters');
unlike($flac, qr{<enclosure}, 'flac item: no enclosure');
like($flac, qr{<podcast:alternateEnclosure type="audio/flac" length="\d+" default="true">\s*<podcast:source uri="http://feeds\.test:8081/v1/podcasts/\Q$id{flac}\E/audio"/>},
     'flac item: podcast:alternateEnclosure with its source');

my $path = ($url // '') =~ s{^http://[^/]+}{}r;
my $audio = request($ng, 'GET', $path || '/none');
is($audio->{status}, 200, 'the enclosure: 200');
is($len, $audio->{headers}{'content-length'}, 'enclosure length = the Content-Length');
is($len, length $audio->{body}, 'enclosure length = the bytes');
my @d = $mp3 =~ m{<itunes:duration>(\d\d):(\d\d):(\d\d)</itunes:duration>};
my $secs = @d ? $d[0] * 3600 + $d[1] * 60 + $d[2] : -1;
ok(abs($secs - ($job{mp3}{duration_s} // -99)) <= 0.5 + 1e-9,
   "itunes:duration $secs s is the episode's " . ($job{mp3}{duration_s} // '?') . " s");
like($audio->{headers}{'content-disposition'} // '',
     qr{^attachment; filename="Episode in mp3\.mp3"; filename\*=UTF-8''Episode%20in%20mp3\.mp3$},
     'audio: Content-Disposition with the extension');

# ---- whose X-Forwarded-* --------------------------------------------------------

my %fwd = ('X-Forwarded-Proto' => 'https', 'X-Forwarded-Host' => 'pods.proxy.example');
my $f1 = request($ng, 'GET', '/v1/podcasts/feed.xml',
                 headers => { Host => 'inner:8080', %fwd });
like($f1->{body}, qr{<link>http://inner:8080</link>}, 'untrusted client: X-Forwarded-* ignored');
unlike($f1->{body}, qr{pods\.proxy\.example}, 'untrusted client: the forwarded host is nowhere');
my $f2 = request($ng, 'GET', '/proxy/v1/podcasts/feed.xml',
                 headers => { Host => 'inner:8080', %fwd });
like($f2->{body}, qr{<link>https://pods\.proxy\.example</link>}, 'trusted proxy: X-Forwarded-Proto and -Host');
like($f2->{body}, qr{<enclosure url="https://pods\.proxy\.example/proxy/v1/podcasts/\Q$id{mp3}\E/audio"},
     'trusted proxy: enclosures from the forwarded origin');
my $f3 = request($ng, 'GET', '/proxy/v1/podcasts/feed.xml',
                 headers => { Host => 'inner:8080', 'X-Forwarded-Host' => 'evil"><x', 'X-Forwarded-Proto' => 'gopher' });
like($f3->{body}, qr{<link>http://inner:8080</link>}, 'trusted proxy: insane forwarded values ignored');
my $f4 = request($ng, 'GET', '/cdn/v1/podcasts/feed.xml', headers => { Host => 'inner:8080', %fwd });
like($f4->{body}, qr{<link>https://pods\.example\.com/sub</link>}, 'base_url: the link');
my @u4 = $f4->{body} =~ m{(?:url|href|uri)="([^"]*)"}g;
ok(@u4 >= 10, 'base_url: URLs');
is(scalar(grep { !m{^https://pods\.example\.com/sub/cdn/v1/podcasts/} } @u4), 0,
   'base_url: every URL starts with it') or diag join "\n", @u4;
like($f4->{body}, qr{<podcast:locked>no</podcast:locked>}, 'no email: podcast:locked no');

# ---- conditional GETs -----------------------------------------------------------

my $etag = $feed->{headers}{etag} // 'none';
my $lm = $feed->{headers}{'last-modified'} // 'none';
like($etag, qr/^"[0-9a-f]{32}"$/, 'feed: ETag');
like($lm, qr/GMT$/, 'feed: Last-Modified');
my %H = (Host => 'feeds.test:8081');
is(request($ng, 'GET', '/v1/podcasts/feed.xml', headers => { %H, 'If-None-Match' => $etag })->{status},
   304, 'feed: If-None-Match -> 304');
is(request($ng, 'GET', '/v1/podcasts/feed.xml', headers => { %H, 'If-Modified-Since' => $lm })->{status},
   304, 'feed: If-Modified-Since -> 304');
is(request($ng, 'GET', '/v1/podcasts/feed.xml', headers => { Host => 'other', 'If-None-Match' => $etag })->{status},
   200, 'feed: another Host, other links: 200');
for my $file ("$id{mp3}/audio", "$id{flac}/audio", "$id{mp3}/transcript.vtt",
              "$id{mp3}/transcript.srt", "$id{mp3}/chapters.json",
              "$id{mp3}/transcript.json") {
    my $r = request($ng, 'GET', "/v1/podcasts/$file");
    my ($e, $m) = ($r->{headers}{etag}, $r->{headers}{'last-modified'});
    ok($e && $m, "$file: ETag and Last-Modified") or next;
    is(request($ng, 'GET', "/v1/podcasts/$file", headers => { 'If-None-Match' => $e })->{status},
       304, "$file: If-None-Match -> 304");
    is(request($ng, 'GET', "/v1/podcasts/$file", headers => { 'If-Modified-Since' => $m })->{status},
       304, "$file: If-Modified-Since -> 304");
}

# ---- gzip_types ------------------------------------------------------------------

for my $t ([ 'feed.xml', 'application/rss+xml' ],
           [ "$id{mp3}/transcript.vtt", 'text/vtt' ],
           [ "$id{mp3}/transcript.srt", 'application/x-subrip' ]) {
    my ($file, $ct) = @$t;
    my $r = request($ng, 'GET', "/v1/podcasts/$file",
                    headers => { 'Accept-Encoding' => 'gzip' });
    is($r->{headers}{'content-encoding'}, 'gzip', "$file: gzip_types $ct compresses it");
    like($r->{headers}{'content-type'} // '', qr{^\Q$ct\E(?:;|$)}, "$file: $ct");
    my $plain;
    IO::Uncompress::Gunzip::gunzip(\$r->{body}, \$plain);
    ok(defined $plain && length $plain > 10, "$file: gunzips");
}

# ---- real parsers ------------------------------------------------------------------

my $fx = "$dir/feed.xml";
Podgen::Test::_spew($fx, $x);

SKIP: {
    # Debian's python3-feedparser is /usr/bin/python3's (a python3 first
    # in PATH may be another)
    my ($python) = grep { defined && -x
                          && system("'$_' -c 'import feedparser' 2>/dev/null") == 0 }
                   '/usr/bin/python3', which('python3');
    skip 'python3-feedparser is not installed', 12 unless $python;
    my $py = "$dir/feed.py";
    Podgen::Test::_spew($py, <<'PY');
import feedparser, json, sys
d = feedparser.parse(sys.argv[1])
f = d.feed
out = {"bozo": d.bozo, "version": d.version, "title": f.get("title"),
       "link": f.get("link"), "language": f.get("language"),
       "author": f.get("author"), "image": (f.get("image") or {}).get("href"),
       "tags": [t.get("term") for t in f.get("tags", [])],
       "items": [{"id": e.get("id"), "title": e.get("title"),
                  "published": e.get("published_parsed") is not None,
                  "duration": e.get("itunes_duration"),
                  "enclosures": [{"href": x.get("href"), "length": x.get("length"),
                                  "type": x.get("type")} for x in e.get("enclosures", [])]}
                 for e in d.entries]}
print(json.dumps(out))
PY
    my $out = `'$python' '$py' '$fx' 2>&1`;
    my $j = jdecode($out) // {};
    is($j->{bozo}, 0, 'feedparser: no error (bozo 0)') or diag $out;
    is($j->{version}, 'rss20', 'feedparser: RSS 2.0');
    is($j->{title}, 'The T29 Show', 'feedparser: title');
    is($j->{link}, 'http://feeds.test:8081', 'feedparser: link');
    is($j->{language}, 'en-US', 'feedparser: language');
    is($j->{author}, 'Jo Host', 'feedparser: author');
    like($j->{image} // '', qr{^http://feeds\.test:8081/v1/podcasts/artwork\.png$}, 'feedparser: image');
    ok(grep({ ($_ // '') eq 'Technology' } @{ $j->{tags} // [] }), 'feedparser: category');
    my ($e) = grep { ($_->{id} // '') eq $id{mp3} } @{ $j->{items} // [] };
    ok($e && $e->{published}, 'feedparser: the mp3 item, its date parsed');
    is_deeply($e->{enclosures}, [ { href => $url, length => $len, type => 'audio/mpeg' } ],
              'feedparser: the enclosure');
    is($e->{duration}, sprintf('%02d:%02d:%02d', @d), 'feedparser: duration');
    my ($fl) = grep { ($_->{id} // '') eq $id{flac} } @{ $j->{items} // [] };
    is_deeply($fl->{enclosures}, [], 'feedparser: the flac item has no enclosure');
}

SKIP: {
    my $node = which('node');
    my $npm = which('npm');
    skip 'node/npm are not installed', 14 unless $node && $npm;
    my $JS = repo_root() . '/t/js';
    if (!-f "$JS/node_modules/podcast-partytime/package.json") {
        note 'installing podcast-partytime@5 into t/js';
        my $out = `cd '$JS' && '$npm' install --no-audit --no-fund --no-save --loglevel=error podcast-partytime\@5 2>&1`;
        skip "npm install podcast-partytime\@5 failed:\n$out", 14
            if $? != 0 || !-f "$JS/node_modules/podcast-partytime/package.json";
    }
    my $out = `'$node' '$JS/feed.cjs' '$fx' 2>&1`;
    my $j = jdecode($out) // {};
    ok(!$j->{error} && $j->{title}, 'partytime: parsed') or diag $out;
    is($j->{title}, 'The T29 Show', 'partytime: title');
    is($j->{language}, 'en-US', 'partytime: language');
    is($j->{guid}, $guid, 'partytime: podcast:guid');
    ok(ref $j->{locked} eq 'HASH' ? $j->{locked}{value} : $j->{locked},
       'partytime: podcast:locked yes') or diag $out;
    is(ref $j->{owner} eq 'HASH' ? $j->{owner}{email} : undef, 'jo@example.com', 'partytime: itunes:owner email');
    like($j->{image} // '', qr{^http://feeds\.test:8081/v1/podcasts/artwork\.png$}, 'partytime: image');
    my ($e) = grep { ($_->{guid} // '') eq $id{mp3} } @{ $j->{items} // [] };
    ok($e, 'partytime: the mp3 item') or diag $out;
    $e //= {};
    is($e->{enclosure}{url}, $url, 'partytime: enclosure url');
    is($e->{enclosure}{length}, $len, 'partytime: enclosure length');
    is($e->{duration}, $secs, 'partytime: duration');
    # (partytime names SubRip by the namespace's application/srt)
    is_deeply([ sort map { $_->{type} =~ s{^application/x-subrip$}{application/srt}r }
                @{ $e->{transcripts} // [] } ],
              [ 'application/json', 'application/srt', 'text/vtt' ],
              'partytime: three transcripts: JSON, SRT, VTT');
    is($e->{chapters}{type}, 'application/json+chapters', 'partytime: chapters');
    my ($fl) = grep { ($_->{guid} // '') eq $id{flac} } @{ $j->{items} // [] };
    # (partytime keeps items with an enclosure only)
    ok(!$fl || ($fl->{alternativeEnclosures} && @{ $fl->{alternativeEnclosures} }),
       'partytime: the flac item, if kept, has its alternateEnclosure') or diag $out;
}

$ng->stop;
my @alerts = $ng->check_error_log;
is(scalar(@alerts), 0, 'a clean error log') or diag join "\n", @alerts;

done_testing();
