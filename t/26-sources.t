# POST /v1/sources and GET /v1/sources/{id}: documents (HTML, PDF,
# Markdown, text; t/data/sources/) as the raw body with their Content-Type
# become {id, object, title, content_type, word_count, text, sections};
# the id is the content address (the same bytes, the same id; four clients
# at once make it once; a second node with the same Redis finds it); the
# errors (415, 413, 400 invalid_document, 422 no_text, 404) are
# OpenAI-shaped, hostile documents (a page bomb, deep nesting) answered in
# bounded time.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use Time::HiRes qw(time);
use IO::Socket::INET;

sub slurp_data {
    my ($name) = @_;
    my $file = repo_root() . "/t/data/sources/$name";
    open my $fh, '<:raw', $file or die "cannot read $file: $!";
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

sub post_doc {
    my ($ng, $type, $body, %o) = @_;
    return post($ng, $o{path} // '/v1/sources', $body,
                headers => { 'Content-Type' => $type });
}

# the PDF "page bomb": n empty pages, written by hand
sub pdf_pages {
    my ($n) = @_;
    my $b = "%PDF-1.4\n";
    my @off;
    $off[1] = length $b;
    $b .= "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n";
    $off[2] = length $b;
    $b .= "2 0 obj << /Type /Pages /Count $n /Kids ["
        . join(' ', map { ($_ + 3) . ' 0 R' } 0 .. $n - 1) . "] >> endobj\n";
    for my $i (0 .. $n - 1) {
        $off[$i + 3] = length $b;
        $b .= ($i + 3) . " 0 obj << /Type /Page /Parent 2 0 R "
            . "/MediaBox [0 0 10 10] >> endobj\n";
    }
    my $xref = length $b;
    $b .= "xref\n0 " . ($n + 3) . "\n0000000000 65535 f \n";
    $b .= sprintf("%010d 00000 n \n", $off[$_]) for 1 .. $n + 2;
    $b .= "trailer << /Size " . ($n + 3) . " /Root 1 0 R >>\n"
        . "startxref\n$xref\n%%EOF\n";
    return $b;
}

my $HTML = slurp_data('article.html');
my $PDF = slurp_data('report.pdf');
my $MD = slurp_data('meeting.md');

my $CONFIG = 'location /v1/sources { podgen_sources; }
              location = /v1/scripts { podgen_scripts; }
              location /v1/podcasts { podgen_podcasts; }
              location = /v1/batch { podgen_batch; }
              location = /v1/voices { podgen_voices; }';

my $STORE = Podgen::Test::tempdir('podgen-t26-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);

my $ng = Podgen::Test::Nginx->new(
    workers => 1,
    http_config => "podgen_max_source 300k;\n    client_max_body_size 2m;\n"
                   . "    podgen_store $STORE;",
    config => $CONFIG);
$ng->start;

# ---- each type -------------------------------------------------------------

my ($r, $j) = post_doc($ng, 'text/html; charset=utf-8', $HTML);
is($r->{status}, 201, 'html: 201') or diag show($r);
is($r->{headers}{'x-podgen-cache'}, 'MISS', 'html: made now');
like($j->{id} // '', qr/^src_[0-9a-f]{64}$/, 'html: id src_<hex>');
is($j->{object}, 'source', 'html: object source');
is($j->{title}, 'How Lighthouse Lenses Work', 'html: the article title');
is($j->{content_type}, 'text/html', 'html: content_type');
ok(!exists $j->{url}, 'html: no url for a posted document');
is(ref $j->{sections}, 'ARRAY', 'html: sections');
is_deeply([map { $_->{title} } @{ $j->{sections} || [] }],
          [undef, 'Orders of lenses', 'Rotation and signals'],
          'html: the <h2> sections, See also left out');
like($j->{text} // '', qr/^A lighthouse lamp on its own is a weak light\./,
     'html: the text starts with the article');
unlike($j->{text} // '', qr/Coastal Notes|Advertisement|Share on|track|Copyright|Subscribe|Great article|Hidden text|\[1\]/,
       'html: no navigation, ads, scripts, comments, footer, hidden text');
my @w = ($j->{text} // '') =~ /\S+/g;
is($j->{word_count}, scalar @w, 'html: word_count counts the text');
my $html_id = $j->{id};

($r, $j) = post_doc($ng, 'application/pdf', $PDF);
is($r->{status}, 201, 'pdf: 201') or diag show($r);
is($j->{title}, 'Tidal Energy on the Northern Coast', 'pdf: title');
is_deeply([map { $_->{title} } @{ $j->{sections} || [] }],
          [qw(Introduction Measurements Costs Conclusion)],
          'pdf: the headings are sections');
unlike($j->{text} // '', qr/Page \d|Harbour Research Group|spe- ?cial/,
       'pdf: no page numbers, running header, broken hyphens');
is($j->{content_type}, 'application/pdf', 'pdf: content_type');

($r, $j) = post_doc($ng, 'text/markdown', $MD);
is($r->{status}, 201, 'markdown: 201');
is($j->{title}, 'Harbour Project: Weekly Sync', 'markdown: # heading title');
unlike($j->{text} // '', qr/[#|`\[\]]|https?:|- \[/,
       'markdown: no markers, table, code, links read aloud');
like($j->{text} // '', qr/^Book the crane for week 48\.$/m,
     'markdown: a checkbox item is a sentence');
my $md_id = $j->{id};

($r, $j) = post_doc($ng, 'text/plain', "Tea\n\nTea is a drink made from leaves. "
                    . "It is older than coffee.\n");
is($r->{status}, 201, 'text: 201');
is($j->{title}, 'Tea', 'text: a short line alone is the title');
is($j->{text}, 'Tea is a drink made from leaves. It is older than coffee.',
   'text: the text');

# ---- the same bytes, the same source -----------------------------------

($r, my $j2) = post_doc($ng, 'text/html; charset=utf-8', $HTML);
is($r->{status}, 201, 'again: 201');
is($r->{headers}{'x-podgen-cache'}, 'HIT-L1', 'again: from L1');
is($j2->{id}, $html_id, 'again: the same id');

($r, $j2) = post_doc($ng, 'text/plain', $MD);
isnt($j2->{id}, $md_id, 'the same bytes as text/plain: another source');

($r, $j2) = get($ng, "/v1/sources/$html_id");
is($r->{status}, 200, 'GET: 200');
is($j2->{id}, $html_id, 'GET: the source');
is($j2->{title}, 'How Lighthouse Lenses Work', 'GET: its title');
like($r->{headers}{etag} // '', qr/^"[0-9a-f]{32}"$/, 'GET: an ETag');

$r = get($ng, '/v1/sources/src_' . ('0' x 64));
error_ok($r, 'GET unknown', status => 404, code => 'not_found');
$r = get($ng, '/v1/sources/../../etc/passwd');
ok($r->{status} == 404 || $r->{status} == 400, 'GET a path: not found');
$r = get($ng, '/v1/sources/src_xyz');
error_ok($r, 'GET a bad id', status => 404, code => 'not_found');

# ---- errors ------------------------------------------------------------

$r = post_doc($ng, 'image/png', "\x89PNG\r\n");
error_ok($r, 'png', status => 415, code => 'unsupported_media_type');
$r = request($ng, 'POST', '/v1/sources', body => 'hello');
error_ok($r, 'no Content-Type', status => 415, code => 'unsupported_media_type');
$r = post_doc($ng, 'text/plain', '');
error_ok($r, 'empty', status => 400, code => 'invalid_document');
$r = post_doc($ng, 'text/plain', 'x' x (300 * 1024 + 1));
error_ok($r, 'over podgen_max_source', status => 413,
         code => 'source_too_large');
$r = post_doc($ng, 'text/plain', "caf\xe9 au lait");
error_ok($r, 'Latin-1 as UTF-8', status => 400, code => 'invalid_document');
($r, $j) = post_doc($ng, 'text/plain; charset=ISO-8859-1', "caf\xe9 au lait.");
is($r->{status}, 201, 'Latin-1 with its charset: 201');
is($j->{text}, "caf\x{e9} au lait.", 'Latin-1: read as such');

$r = post_doc($ng, 'application/pdf', slurp_data('scan.pdf'));
error_ok($r, 'scanned PDF', status => 422, code => 'no_text');
$r = post_doc($ng, 'application/pdf', substr($PDF, 0, 2000));
error_ok($r, 'truncated PDF', status => 400, code => 'invalid_document');
$r = post_doc($ng, 'application/pdf', 'GIF89a not a pdf');
error_ok($r, 'not a PDF', status => 400, code => 'invalid_document');
my $t0 = time;
$r = post_doc($ng, 'application/pdf', pdf_pages(2001));
error_ok($r, 'a PDF of 2001 pages', status => 400, code => 'invalid_document');
ok(time - $t0 < 5, sprintf('2001 pages: answered in %.2fs', time - $t0));
$r = post_doc($ng, 'application/pdf', pdf_pages(1500));
error_ok($r, 'a PDF of 1500 empty pages', status => 422, code => 'no_text');
$t0 = time;
$r = post_doc($ng, 'text/html', '<div>' x 60000);
error_ok($r, 'HTML nested 60,000 deep', status => 400,
         code => 'invalid_document');
ok(time - $t0 < 2, sprintf('deep HTML: answered in %.2fs', time - $t0));
$r = post_doc($ng, 'text/html', '<script>x()</script><nav>Home</nav>');
error_ok($r, 'HTML with nothing to say', status => 422, code => 'no_text');
$r = request($ng, 'DELETE', '/v1/sources');
error_ok($r, 'DELETE', status => 405, code => 'method_not_allowed');
$r = request($ng, 'POST', "/v1/sources/$html_id", body => 'x',
             headers => { 'Content-Type' => 'text/plain' });
error_ok($r, 'POST to an id', status => 405, code => 'method_not_allowed');

# ---- source_ids: scripts, podcasts, batch items ------------------------

{
    my $B = { source_ids => [$md_id], engine => 'builtin', length => 'short' };
    my ($r, $j) = post($ng, '/v1/scripts', $B);
    is($r->{status}, 200, 'script from source_ids: 200') or diag show($r);
    is($j->{title}, 'Harbour Project: Weekly Sync',
       'script from source_ids: the document title');
    my $all = join ' ', map { $_->{text} } @{ $j->{segments} || [] };
    like($all, qr/dredging|crane|permit/, 'script from source_ids: its text');
    unlike($all, qr/[#|`\[]|https?:/, 'script from source_ids: no markup');

    ($r, $j) = post($ng, '/v1/scripts', { %$B, source_ids => [$md_id, $html_id] });
    is($r->{status}, 200, 'two sources: 200');
    $all = join ' ', map { $_->{text} } @{ $j->{segments} || [] };
    like($all, qr/lens|Fresnel|lighthouse/i, 'two sources: the second one too');
    is($j->{title}, 'Harbour Project: Weekly Sync', 'two sources: the first title');

    $r = post($ng, '/v1/scripts', { source_ids => ['src_' . ('a' x 64)] });
    error_ok($r, 'unknown source id', status => 404, code => 'source_not_found',
             param => 'source_ids[0]');
    $r = post($ng, '/v1/scripts', { source_ids => [$md_id, 7] });
    error_ok($r, 'a number as id', status => 400, code => 'invalid_type',
             param => 'source_ids[1]');
    $r = post($ng, '/v1/scripts', { source_ids => [] });
    error_ok($r, 'no ids', status => 400, code => 'invalid_value',
             param => 'source_ids');
    $r = post($ng, '/v1/scripts', { source_ids => $md_id });
    error_ok($r, 'a string, not an array', status => 400, code => 'invalid_type',
             param => 'source_ids');

    my ($pr, $pj) = post($ng, '/v1/podcasts', { %$B, format => 'mp3' });
    is($pr->{status}, 202, 'podcast from source_ids: 202') or diag show($pr);
    my $job = wait_job($ng, $pj->{id} // 'none', 90);
    is($job->{status}, 'completed', 'podcast from source_ids: completed')
        or diag explain $job;
    is($job->{title}, 'Harbour Project: Weekly Sync',
       'podcast from source_ids: the document title');

    $r = post($ng, '/v1/podcasts', { source_ids => ['src_' . ('b' x 64)] });
    error_ok($r, 'podcast, unknown id', status => 404,
             code => 'source_not_found');

    ($r, $j) = post($ng, '/v1/batch', { requests => [
        { type => 'script', body => $B },
        { type => 'script', body => { source_ids => ['src_' . ('c' x 64)] } }] });
    is($r->{status}, 200, 'batch: 200') or diag show($r);
    my @res = @{ $j->{results} || [] };
    is($res[0]{status}, 200, 'batch: the item with source_ids 200');
    is($res[0]{body}{title}, 'Harbour Project: Weekly Sync',
       'batch: the document title');
    is($res[1]{status}, 404, 'batch: an unknown id is the item\'s 404');
}

# ---- clients that go away while their document is read ----------------

{
    my $n = 0;
    for my $k (1 .. 6) {
        # a new long document each time: read on the pool when they leave
        my $doc = join "\n\n", map { "## Part $_ of $k\n\n"
            . ("A sentence of a long document $k. " x 60) } 1 .. 100;
        my $req = "POST /v1/sources HTTP/1.1\r\nHost: x\r\n"
                . "Content-Type: text/markdown\r\n"
                . "Content-Length: " . length($doc) . "\r\n\r\n$doc";
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $ng->port) or next;
        print $sock $req;
        close $sock;
        $n++;
    }
    is($n, 6, 'six clients posted and went away');
    my ($r) = get($ng, '/v1/voices');
    is($r->{status}, 200, 'the server goes on');
}

# ---- single flight: the same new document four times at once ----------

{
    my $pdf = $PDF . "% a copy $$\n";      # new bytes: not cached yet
    my $req = "POST /v1/sources HTTP/1.1\r\nHost: x\r\n"
            . "Content-Type: application/pdf\r\n"
            . "Content-Length: " . length($pdf) . "\r\n"
            . "Connection: close\r\n\r\n$pdf";
    my ($ready, @res) = all_at_once(4, $req, port => $ng->port);
    is($ready, 4, 'at once: 4 connected');
    is(scalar(grep { $_->[0] == 201 } @res), 4, 'at once: 4 times 201');
    is(scalar(grep { $_->[1] eq 'MISS' } @res), 1, 'at once: read once')
        or diag explain \@res;
    my %md5 = map { $_->[3] => 1 } @res;
    is(scalar(keys %md5), 1, 'at once: the same source for all');
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;

# ---- L2: a source posted on one node is there on another ---------------

{
    my $redis = start_redis();
    my @n = map {
        my $n = Podgen::Test::Nginx->new(
            http_config => 'podgen_redis 127.0.0.1:' . $redis->port
                           . ' timeout=300ms prefix=t26:;',
            config => $CONFIG);
        $n->start;
        $n
    } 1 .. 2;
    ok(wait_for(sub { (get($n[0], '/v1/voices'))->{status} == 200 }, 5),
       'two nodes up');
    my $t = "Two nodes\n\nA source posted on one node is found by the other "
          . "one in Redis. $$\n";
    my ($r1, $j1);
    ok(wait_for(sub {
        ($r1, $j1) = post_doc($n[0], 'text/plain', $t);
        $r1->{status} == 201 }, 5), 'node a: 201');
    my ($r3, $j3) = post_doc($n[0], 'text/plain',
        "Cross node\n\nThe lighthouse keeper wrote the tide tables by hand "
        . "every winter evening. $$\n");
    is($r3->{status}, 201, 'node a: a second source: 201');
    my ($rs, $js) = post($n[1], '/v1/scripts', { source_ids => [$j3->{id}] });
    is($rs->{status}, 200, 'node b: source_ids of a source only in L2: 200')
        or diag show($rs);
    like(join(' ', map { $_->{text} } @{ $js->{segments} || [] }),
         qr/lighthouse|tide/i, 'node b: the script is about that source');
    my ($r4, $j4) = post_doc($n[0], 'text/plain',
        "Harbour\n\nThe harbour master counted the fishing boats at dawn. $$\n");
    my ($rp) = post($n[1], '/v1/podcasts', { source_ids => [$j4->{id}] });
    is($rp->{status}, 202, 'node b: a podcast of a source only in L2: 202')
        or diag show($rp);
    my ($r2, $j2);
    ok(wait_for(sub {
        ($r2, $j2) = get($n[1], "/v1/sources/$j1->{id}");
        $r2->{status} == 200 }, 5), 'node b: GET 200') or diag show($r2);
    is($r2->{headers}{'x-podgen-cache'}, 'HIT-L2', 'node b: from L2');
    is($j2->{text}, $j1->{text}, 'node b: the same source');
    ($r2) = post_doc($n[1], 'text/plain', $t);
    like($r2->{headers}{'x-podgen-cache'} // '', qr/^HIT-L[12]$/,
         'node b: the same document posted: not read again');
    for my $x (@n) {
        $x->stop;
        my @b = $x->check_error_log;
        ok(!@b, 'node: error log clean') or diag join "\n", @b;
    }
}

done_testing();
