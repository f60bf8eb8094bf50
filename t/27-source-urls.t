# POST /v1/sources {"url": ...}: podgen fetches the document itself, from
# a real local HTTP server (forked here) serving an article page with
# navigation, ads, scripts and a footer, a PDF, Markdown, a 403, a slow
# and an oversized answer, a gzip bomb, redirects (to a page, to a
# link-local address, in a loop, to ftp).  The SSRF guard refuses
# loopback unless podgen_fetch_allow opens it, also behind a redirect;
# errors name the site's status; nothing blocks the event loop.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use IO::Socket::INET;
use IO::Compress::Gzip qw(gzip);
use POSIX ();
use Time::HiRes qw(time sleep);

sub slurp_data {
    my ($name) = @_;
    my $file = repo_root() . "/t/data/sources/$name";
    open my $fh, '<:raw', $file or die "cannot read $file: $!";
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

my %DOC = (html => slurp_data('article.html'), pdf => slurp_data('report.pdf'),
           md => slurp_data('meeting.md'));
my $zeros = "\0" x (20 * 1024 * 1024);
gzip(\$zeros => \my $BOMB);
undef $zeros;

# ---- the fixture server ----------------------------------------------------

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 32, ReuseAddr => 1, Proto => 'tcp')
    or die "listen: $!";
my $SPORT = $srv->sockport;
my $BASE = "http://127.0.0.1:$SPORT";

sub answer {
    my ($c, $path) = @_;
    my ($status, $type, $body, @h) = (200, 'text/plain', '');
    if ($path eq '/article.html') { ($type, $body) = ('text/html; charset=utf-8', $DOC{html}) }
    elsif ($path eq '/report.pdf') { ($type, $body) = ('application/pdf', $DOC{pdf}) }
    elsif ($path eq '/download') { ($type, $body) = (undef, $DOC{pdf}) }
    elsif ($path eq '/notes.md') { ($type, $body) = ('text/markdown', $DOC{md}) }
    elsif ($path eq '/forbidden') { ($status, $type, $body) = (403, 'text/html', '<h1>Forbidden</h1>') }
    elsif ($path eq '/image') { ($type, $body) = ('image/png', "\x89PNG\r\n\x1a\n") }
    elsif ($path eq '/slow') { sleep 3; $body = 'Too late.' }
    elsif ($path eq '/big') { $body = ("Words and more words. " x 20000) }
    elsif ($path eq '/bomb') { ($type, $body) = ('text/plain', $BOMB); push @h, 'Content-Encoding: gzip' }
    elsif ($path eq '/redirect') { $status = 302; push @h, 'Location: /article.html' }
    elsif ($path eq '/to-metadata') { $status = 302; push @h, 'Location: http://169.254.169.254/latest/meta-data/' }
    elsif ($path eq '/to-ftp') { $status = 302; push @h, 'Location: ftp://127.0.0.1/x' }
    elsif ($path =~ m{^/loop(\d*)$}) { $status = 302; push @h, 'Location: /loop' . (($1 || 0) + 1) }
    else { ($status, $body) = (404, 'no such page') }
    my $head = "HTTP/1.1 $status X\r\nContent-Length: " . length($body)
             . "\r\nConnection: close\r\n";
    $head .= "Content-Type: $type\r\n" if defined $type;
    $head .= "$_\r\n" for @h;
    print $c "$head\r\n$body";
}

my $SERVER = fork // die "fork: $!";
if (!$SERVER) {
    $SIG{CHLD} = 'IGNORE';
    $SIG{TERM} = 'DEFAULT';
    while (my $c = $srv->accept) {
        my $pid = fork;
        if (defined $pid && !$pid) {
            binmode $c;
            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                my $n = sysread $c, $req, 4096, length $req;
                last unless $n;
            }
            my ($path) = $req =~ m{^GET (\S+)};
            answer($c, $path // '/');
            close $c;
            POSIX::_exit(0);
        }
        close $c;
    }
    POSIX::_exit(0);
}
close $srv;

END {
    local $?;               # the test's own exit status stays
    if ($SERVER) { kill 'KILL', $SERVER; waitpid $SERVER, 0 }
}

my $CONFIG = 'location /v1/sources { podgen_sources; }
              location = /v1/scripts { podgen_scripts; }
              location = /v1/voices { podgen_voices; }';

my $ng = Podgen::Test::Nginx->new(
    http_config => "podgen_fetch_allow 127.0.0.1/32;\n"
                 . "    podgen_fetch_timeout 1s;\n    podgen_max_source 300k;",
    config => $CONFIG);
$ng->start;

sub fetch_url { post($_[0], '/v1/sources', { url => $_[1] }) }

my ($r, $j) = fetch_url($ng, "$BASE/article.html");
is($r->{status}, 201, 'html page: 201') or diag show($r);
is($j->{url}, "$BASE/article.html", 'html page: the url');
is($j->{title}, 'How Lighthouse Lenses Work', 'html page: title');
is($j->{content_type}, 'text/html', 'html page: content_type');
unlike($j->{text} // '', qr/Advertisement|Coastal Notes|Copyright|track\(/,
       'html page: the article only');
my $id = $j->{id};

($r, $j) = post($ng, '/v1/sources', $DOC{html},
                headers => { 'Content-Type' => 'text/html; charset=utf-8' });
is($j->{id}, $id, 'the same bytes posted: the same id');

($r, $j) = fetch_url($ng, "$BASE/report.pdf");
is($r->{status}, 201, 'pdf: 201');
is($j->{title}, 'Tidal Energy on the Northern Coast', 'pdf: title');

($r, $j) = fetch_url($ng, "$BASE/download");
is($r->{status}, 201, 'no Content-Type: 201');
is($j->{content_type}, 'application/pdf', 'no Content-Type: a PDF by its bytes');

($r, $j) = fetch_url($ng, "$BASE/notes.md");
is($r->{status}, 201, 'markdown: 201');
is($j->{title}, 'Harbour Project: Weekly Sync', 'markdown: title');

($r, $j) = fetch_url($ng, "$BASE/redirect");
is($r->{status}, 201, 'a redirect to the page: 201');
is($j->{title}, 'How Lighthouse Lenses Work', 'redirect: the page');

# errors that say what happened

$r = fetch_url($ng, "$BASE/forbidden");
error_ok($r, '403', status => 502, code => 'source_fetch_failed', param => 'url');
like(($r->{body} // ''), qr/403/, '403: the site\'s status in the message');
$r = fetch_url($ng, "$BASE/nothing-here");
like(($r->{body} // ''), qr/answered 404/, '404: said so');
$r = fetch_url($ng, "$BASE/image");
error_ok($r, 'an image', status => 415, code => 'unsupported_media_type');
my $t0 = time;
$r = fetch_url($ng, "$BASE/slow");
error_ok($r, 'slow site', status => 502, code => 'source_fetch_failed');
ok(time - $t0 < 2.5, sprintf('slow: given up after the 1s timeout (%.2fs)', time - $t0));
$r = fetch_url($ng, "$BASE/big");
error_ok($r, 'oversized', status => 413, code => 'source_too_large');
$t0 = time;
$r = fetch_url($ng, "$BASE/bomb");
error_ok($r, 'gzip bomb', status => 413, code => 'source_too_large');
ok(time - $t0 < 2, sprintf('gzip bomb: stopped at the cap (%.2fs)', time - $t0));
$r = fetch_url($ng, "$BASE/loop");
error_ok($r, 'redirect loop', status => 502, code => 'source_fetch_failed');
like(($r->{body} // ''), qr/redirects/, 'loop: too many redirects');
$r = fetch_url($ng, "$BASE/to-ftp");
error_ok($r, 'redirect to ftp', status => 400, code => 'url_not_allowed');

# the SSRF guard

$t0 = time;
$r = fetch_url($ng, "$BASE/to-metadata");
error_ok($r, 'redirect to 169.254.169.254', status => 400,
         code => 'url_not_allowed', param => 'url');
like(($r->{body} // ''), qr/169\.254\.169\.254/, 'metadata: the address named');
ok(time - $t0 < 2, 'metadata: refused before connecting');
for my $u ('http://10.0.0.1/', 'http://[::1]/', 'http://[::ffff:127.0.0.2]/',
           'http://127.0.0.2/', 'http://0.0.0.0/', 'http://100.64.0.1/',
           'http://224.0.0.1/') {
    $r = fetch_url($ng, $u);
    error_ok($r, "refused: $u", status => 400, code => 'url_not_allowed');
}
for my $u ('ftp://example.com/x', 'file:///etc/passwd', 'gopher://x/', 'x') {
    $r = fetch_url($ng, $u);
    error_ok($r, "not http(s): $u", status => 400, code => 'invalid_value',
             param => 'url');
}
$r = post($ng, '/v1/sources', { uri => 'http://x/' });
error_ok($r, 'no url', status => 400, code => 'missing_required_parameter');

# the loop answers while a fetch waits on a slow site

{
    my $pid = fork // die;
    if (!$pid) { fetch_url($ng, "$BASE/slow"); POSIX::_exit(0) }
    sleep 0.2;
    my $s = time;
    my $v = get($ng, '/v1/voices');
    is($v->{status}, 200, 'meanwhile: voices 200');
    ok(time - $s < 0.5, sprintf('meanwhile: voices in %.3fs', time - $s));
    waitpid $pid, 0;
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;

# without podgen_fetch_allow, the fixture itself (loopback) is refused

my $closed = Podgen::Test::Nginx->new(config => $CONFIG);
$closed->start;
for my $u ("$BASE/article.html", "http://localhost:$SPORT/article.html") {
    $r = fetch_url($closed, $u);
    error_ok($r, "default guard: $u", status => 400, code => 'url_not_allowed');
}
$closed->stop;
@bad = $closed->check_error_log;
ok(!@bad, 'default guard: error log clean') or diag join "\n", @bad;

# the LLM client and the fetcher share the worker's curl multi: the LLM's
# keep-alive connection (to loopback) is never lent to a source fetch

my $mock = start_mock_llm(quiet => 1);
my $MURL = 'http://127.0.0.1:' . $mock->port;
my $shared = Podgen::Test::Nginx->new(
    http_config => "podgen_llm $MURL/v1 model=mock-ok timeout=5s;\n"
                 . "    podgen_llm_fallback off;",
    config => $CONFIG);
$shared->start;
$r = post($shared, '/v1/scripts', { topic => 'lighthouse keepers',
                                     length => 'short' });
is($r->{status}, 200, 'LLM script before a fetch: 200') or diag show($r);
is($r->{headers}{'x-podgen-engine'}, 'llm', '... written by the LLM');
$r = fetch_url($shared, "$MURL/stats");
error_ok($r, 'the LLM\'s own loopback address is refused all the same',
         status => 400, code => 'url_not_allowed');
$shared->stop;
@bad = $shared->check_error_log;
ok(!@bad, 'shared multi: error log clean') or diag join "\n", @bad;

done_testing();
