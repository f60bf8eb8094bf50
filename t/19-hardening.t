# Hardening: hostile HTTP and injected faults, beyond SPEC §6.
#
# Hostile HTTP, on every POST endpoint (speech, scripts, podcasts, batch):
# slow bodies against client_body_timeout, 10 MB bodies, a million-element
# array, nesting 100,000 deep, raw and escaped NUL, overlong and surrogate
# UTF-8, lone surrogate escapes, control characters, NaN / Infinity /
# 1e999 / negative / huge numbers; markup and newlines in titles and
# speaker names, checked in every output that carries them (status and
# list JSON, transcript.json, WebVTT, RSS); ids with ../, %2e%2e and %00;
# pipelined keep-alive requests mixing good and bad; HEAD; the bearer key.
#
# Faults: a saturated thread pool (503 + Retry-After, recovers by itself),
# an LLM that hangs (timeout, fallback on and off, for scripts and podcast
# jobs), Redis stalled (CLIENT PAUSE), killed and restarted, and a store
# whose disk is full (a 256 KB tmpfs mounted here; root only).
#
# What a user sees is asserted: statuses, JSON error objects
# {"error":{message,type,param,code}}, nginx still serving, and an error
# log without [alert]/[crit]/[emerg] or sanitizer reports.  Each nginx is
# also checked, after its work has finished, for speech jobs still held
# at exit ("podgen: speech job ... still running at exit"), which means
# their memory was never given back.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use IO::Socket::IP;
use IO::Select;
use File::Temp qw(tempdir);
use POSIX ();
use Encode ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my %CT = ('Content-Type' => 'application/json');
my $T0 = time;

my $LOCATIONS = <<'EOF';
        location = /v1/audio/speech { podgen_speech; }
        location = /v1/scripts { podgen_scripts; }
        location /v1/podcasts { podgen_podcasts; }
        location = /v1/batch { podgen_batch; }
        location /v1/audio/ { podgen_audio; }
        location = /v1/voices { podgen_voices; }
        location = /metrics { podgen_metrics; }
EOF

# ---------------------------------------------------------------------------
# helpers

# Stops an nginx and checks its whole error log; $no_leak also checks that
# no speech job was still held when the workers exited.
sub finish {
    my ($ng, $name, %o) = @_;
    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, "$name: error log has no alert/crit/emerg/sanitizer report")
        or diag join "\n", @bad[0 .. ($#bad > 30 ? 30 : $#bad)];
    if ($o{no_leak}) {
        my @held = grep { /speech job \S+ (?:still running at exit|leaked)/ }
                   split /\n/, $ng->error_log;
        ok(!@held, "$name: no speech job held at worker exit once all "
                   . "work is done") or diag scalar(@held)
            . " speech jobs never released (each keeps its PCM and "
            . "encoded audio; the podcast/batch artifact maker drops its job "
            . "after the last output without ngx_http_podgen_tts_detach), e.g.:\n" . join("\n", @held[0 .. ($#held > 2 ? 2 : $#held)]);
    }
}

# ===========================================================================
# 1. hostile HTTP
# ===========================================================================

my $store = tempdir('podgen-t19-store-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0777, $store;

# One worker: a slow client and a busy request share its event loop.
my $ng = Podgen::Test::Nginx->new(
    workers => 1,
    main_config => 'thread_pool default threads=4;',
    http_config => <<"EOF",
    podgen_store $store/s;
    client_body_timeout 2s;
    client_max_body_size 1m;
EOF
    config => $LOCATIONS);
$ng->start;

# ---- slow bodies ------------------------------------------------------------

note sprintf '%5.1f s: slow bodies', time - $T0;

{
    my @slow;
    for my $i (1 .. 20) {
        my $path = $i % 2 ? '/v1/audio/speech' : '/v1/podcasts';
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $ng->port, Proto => 'tcp')
            or die "connect: $!";
        binmode $s;
        $s->autoflush(1);
        syswrite $s, "POST $path HTTP/1.1\r\nHost: localhost\r\n"
                   . "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                   . '{"model":"tts-1","voice":"alloy","input":"Half';
        push @slow, { s => $s, t => time, path => $path };
    }
    # meanwhile the same worker serves everybody else at once
    my $t = time;
    my $v = request($ng, 'GET', '/v1/voices', timeout => 5);
    my $sp = post($ng, '/v1/audio/speech',
                  { model => 'tts-1', voice => 'alloy', input => 'Served while others stall.' });
    is($v->{status}, 200, 'slow bodies: GET /v1/voices meanwhile: 200');
    is($sp->{status}, 200, 'slow bodies: a speech request meanwhile: 200');
    cmp_ok(time - $t, '<', 1.5, 'slow bodies: and both answered without waiting');

    my ($answered, $closed, $bad) = (0, 0, 0);
    my @late;
    for my $c (@slow) {
        my $sel = IO::Select->new($c->{s});
        my $buf = '';
        my $deadline = $c->{t} + 8;
        while (time < $deadline) {
            last unless $sel->can_read($deadline - time);
            my $n = sysread $c->{s}, $buf, 65536, length $buf;
            last if !$n;
        }
        my $took = time - $c->{t};
        push @late, sprintf('%.1f', $took) if $took < 1.5 || $took > 6;
        close $c->{s};
        if ($buf eq '') { $closed++; next }
        my ($r) = parse_responses($buf, methods => ['POST']);
        my $j = jdecode($r->{body});
        if ($r->{status} == 408 && $j && ($j->{error}{code} // '') eq 'request_timeout') {
            $answered++;
        } else {
            $bad++;
            diag "slow body on $c->{path}: " . show($r);
        }
    }
    is($bad, 0, "slow bodies: 20 clients sending half a body get 408 JSON "
              . "or a closed connection ($answered answered, $closed closed)");
    is(scalar(@late), 0, 'slow bodies: cut off after client_body_timeout (2 s)')
        or diag "after @late s";
    is(request($ng, 'GET', '/v1/voices', timeout => 5)->{status}, 200,
       'slow bodies: nginx still serves afterwards');
}

# ---- bad bodies ------------------------------------------------------------------
#
# 10 MB bodies, a million elements, nesting 100,000 deep, NUL, bad UTF-8,
# surrogates and control characters in every string a client controls, on
# every endpoint, and numbers: blocks after __DATA__.  Here: what a block
# cannot say.

# A high surrogate escape followed by an escape that is not a low surrogate
# is invalid UTF-16; yajl combines the two into an unrelated astral code
# point ("\ud800\u0041" becomes U+10041): pg_json refuses it first.
{
    my $r = post($ng, '/v1/scripts', '{"engine":"builtin","length":"short",'
                                   . '"topic":"Alpha\ud800\u0041Beta"}');
    my $j = jdecode($r->{body});
    ok($r->{status} == 400
       || ($j && ($j->{title} // '') !~ /\x{10041}|\xf0\x90\x81\x81/),
       'a high surrogate escape followed by "\u0041" is refused, '
       . 'not turned into U+10041') or diag "title: " . ($j && $j->{title} // '');
}

# ---- markup and newlines in titles and speaker names ---------------------------

note sprintf '%5.1f s: markup and newlines in titles and speaker names', time - $T0;

my %episode;    # id, title, segments of a completed podcast, for later
{
    my $MARK = 'SECRET-' . int(rand 1e9);
    my $title = qq(<b>"Tea" & 'scones'</b>\n]]> --> </title><script>alert(1)</script> &amp; $MARK);
    my @seg = (
        [ '<i>A&B</i>', 'Hello there. <script>alert(1)</script> --> and &lt;b&gt; too.' ],
        [ 'Bo"b',       "Line one.\n\nNOTE injected\n\n00:00:00.000 --> 00:00:09.000\nA fake cue." ],
        [ 'C --> D',    'Less < more > and & ampersands ]]> end.' ],
        [ 'E>F',        "Tab\there, bell\x07 and caf\x{e9} \x{2713} done." ],
    );
    my $body = $JSON->encode({ title => $title, format => 'mp3',
        segments => [ map { { speaker => $_->[0], text => $_->[1] } } @seg ] });
    my $r = post($ng, '/v1/podcasts', $body);
    is($r->{status}, 202, 'markup: podcast accepted') or diag show($r);
    my $id = (jdecode($r->{body}) // {})->{id} // '';
    (my $want_title = $title) =~ s/[\x00-\x1f\x7f]/ /g;
    my $st = wait_job($ng, $id, 30);
    is($st && $st->{status}, 'completed', 'markup: the job completes')
        or diag explain $st;
    is($st && $st->{title}, $want_title,
       'status JSON: the title round-trips (its newline made a space)');

    my $l = request($ng, 'GET', '/v1/podcasts?limit=100');
    my $lj = jdecode($l->{body});
    ok($lj && (grep { $_->{id} eq $id && $_->{title} eq $want_title }
               @{ $lj->{data} || [] }), 'list JSON: parses, the title round-trips');

    my $tj = jdecode(request($ng, 'GET', "/v1/podcasts/$id/transcript.json")->{body});
    is_deeply([ map { $_->{speaker} } @{ $tj->{segments} || [] } ],
              [ map { $_->[0] } @seg ], 'transcript.json: speakers round-trip');
    like($tj->{segments}[0]{text} // '', qr{<script>alert\(1\)</script> -->},
         'transcript.json: markup in the text is data');

    # WebVTT: a header, then one cue per segment, each a timing line and a
    # one-line payload "<v NAME>TEXT" with < & > escaped; nothing in a
    # payload can end the cue or start another one
    my $vr = request($ng, 'GET', "/v1/podcasts/$id/transcript.vtt");
    my $vtt = $vr->{body};
    my @blocks = split /\n\n+/, $vtt;
    is(shift(@blocks), 'WEBVTT', 'VTT: header block');
    @blocks = grep { /\S/ } @blocks;
    is(scalar(@blocks), scalar(@seg), 'VTT: one cue per segment, no injected cue')
        or diag $vtt;
    my $unesc = sub {
        my $s = shift;
        $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&quot;/"/g;
        $s =~ s/&apos;/'/g; $s =~ s/&#(\d+);/chr $1/ge; $s =~ s/&#x([0-9a-f]+);/chr hex $1/gie;
        $s =~ s/&nbsp;/\x{a0}/g; $s =~ s/&amp;/&/g;
        return $s;
    };
    my $i = 0;
    for my $b (@blocks) {
        my @l = split /\n/, $b;
        shift @l if @l && $l[0] !~ /-->/;    # cue id
        my $timing = shift @l // '';
        like($timing, qr/^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}$/,
             "VTT cue $i: timing line");
        is(scalar(@l), 1, "VTT cue $i: a one-line payload") or diag $b;
        my $pl = join "\n", @l;
        unlike($pl, qr/-->/, "VTT cue $i: no '-->' in the payload");
        my ($ann, $text) = $pl =~ /^<v ([^>]*)>(.*)$/s;
        ok(defined $ann, "VTT cue $i: a <v> voice tag") or diag $pl;
        $ann //= ''; $text //= '';
        unlike($text, qr/[<>]/, "VTT cue $i: no raw < or > in the text");
        unlike($ann, qr/[<&](?!(?:lt|gt|amp|quot|nbsp);)/, "VTT cue $i: the name is escaped");
        is($unesc->($ann), $seg[$i][0], "VTT cue $i: the speaker's name round-trips");
        (my $want = $seg[$i][1]) =~ s/[\x00-\x1f\x7f]+/ /g;
        $want =~ s/ +/ /g;
        my $got = $unesc->($text);
        $got = Encode::decode('UTF-8', $got);
        $got =~ s/ +/ /g;
        is($got, $want, "VTT cue $i: the text round-trips (spacing aside)");
        $i++;
    }

    # RSS: well-formed XML whose item title is the title
    my $feed = request($ng, 'GET', '/v1/podcasts/feed.xml')->{body};
    my $xmllint = which('xmllint');
    my $wf = sub {
        my ($xml, $name) = @_;
        SKIP: {
            skip 'xmllint is not installed', 1 unless $xmllint;
            my $dir = tempdir(CLEANUP => 1);
            open my $fh, '>:raw', "$dir/f.xml" or die;
            print $fh $xml;
            close $fh;
            my $out = `$xmllint --noout $dir/f.xml 2>&1`;
            is($?, 0, "$name: well-formed XML") or diag $out;
        }
    };
    $wf->($feed, 'RSS');
    my ($item) = $feed =~ m{<item>((?:(?!</item>).)*<guid[^>]*>\Q$id\E</guid>.*?)</item>}s;
    ok($item, 'RSS: the episode is an item') or diag $feed;
    my ($t) = ($item // '') =~ m{<title>(.*?)</title>}s;
    is($unesc->($t // ''), $want_title, 'RSS: the item title round-trips');
    unlike($feed, qr/<script|<b>|<i>/, 'RSS: no markup from the client is live');
    $wf->(request($ng, 'GET', '/v1/podcasts/feed.xml',
                  headers => { Host => q(ev"il<x>&'y) })->{body},
          'RSS with a hostile Host header');

    %episode = (id => $id, mark => $MARK);
}

# ---- ids that are not ids ---------------------------------------------------------

note sprintf '%5.1f s: ids that are not ids', time - $T0;

{
    my $id = $episode{id};
    my $key = (post($ng, '/v1/audio/speech',
                    { model => 'tts-1', voice => 'alloy', input => 'A key to look up.' })
               ->{headers}{'x-podgen-audio-url'} // '') =~ m{/v1/audio/([0-9a-f]{64})}
              ? $1 : '0' x 64;
    # [path, 1 when nginx's normalized URI is still in a podgen location
    #  (a JSON error then); %2f is decoded before "..", so most escapes
    #  leave the podgen locations and meet nginx's own 400/404]
    my @paths = (
        [ "/v1/podcasts/../../../etc/passwd" ],
        [ "/v1/podcasts/%2e%2e/%2e%2e/%2e%2e/etc/passwd" ],
        [ "/v1/podcasts/%2e%2e%2f%2e%2e%2fjobs%2f$id.json" ],
        [ "/v1/podcasts/..%2fjobs%2f$id.json" ],
        [ "/v1/podcasts/$id%2f..%2f..%2fjobs%2f$id.json" ],
        [ "/v1/podcasts/$id/..%2f..%2fjobs%2f$id.json" ],
        [ "/v1/podcasts/$id/../../jobs/$id.json" ],
        [ "/v1/podcasts/$id/transcript.vtt/../../../jobs/$id.json" ],
        [ "/v1/podcasts/$id%00" ],
        [ "/v1/podcasts/$id%00.json" ],
        [ "/v1/podcasts/$id/audio%00" ],
        [ "/v1/podcasts/%252e%252e%252fjobs%252f$id.json", 1 ],
        [ "/v1/podcasts/pod_../../jobs", 1 ],
        [ "/v1/podcasts/x/..%2f$id.json", 1 ],
        [ "/v1/podcasts/pod_0000000000000000000.", 1 ],
        [ "/v1/podcasts/" . uc($id), 1 ],
        [ "/v1/podcasts/${id}0", 1 ],
        [ "/v1/podcasts/$id/transcript.vtt.json", 1 ],
        [ "/v1/audio/../../etc/passwd" ],
        [ "/v1/audio/%2e%2e/%2e%2e/jobs/$id.json" ],
        [ "/v1/audio/..%2f..%2fjobs%2f$id.json" ],
        [ "/v1/audio/..%2f..%2faudio%2f$id.mp3" ],
        [ "/v1/audio/$key.mp3%00.json" ],
        [ "/v1/audio/$key%00.mp3" ],
        [ "/v1/audio/$key.mp3/..%2f..%2f..%2fetc%2fpasswd" ],
        [ "/v1/audio/$key.json", 1 ],
        [ "/v1/audio/$key.", 1 ],
        [ "/v1/audio/.mp3", 1 ],
    );
    for my $p (@paths) {
        my ($path, $ours) = @$p;
        for my $m (qw(GET DELETE)) {
            my $r = request($ng, $m, $path, timeout => 10);
            my $leak = $r->{body} =~ /\Q$episode{mark}\E|root:x?:0:|"request"\s*:|^(?:ID3|\xff[\xe0-\xff]|RIFF)/;
            ok($r->{status} =~ /^40[045]$/ && !$leak, "$m $path: $r->{status}, no file content")
                or diag show($r);
            # one that reaches a podgen location answers JSON
            if ($ours) {
                like($r->{headers}{'content-type'} // '', qr{^application/json},
                     "$m $path: a JSON error");
            }
        }
    }
    my $st = request($ng, 'GET', "/v1/podcasts/$id");
    is($st->{status}, 200, 'the episode is still there after the DELETE attempts');
}

# ---- pipelining -------------------------------------------------------------------

note sprintf '%5.1f s: pipelining', time - $T0;

{
    my $good = $JSON->encode({ model => 'tts-1', voice => 'alloy', response_format => 'wav',
                               input => 'Pipelined and cold ' . time . '.' });
    my $bad = '{"model":"tts-1","input":';
    my $pod = $JSON->encode({ segments => [ { speaker => 'A', text => 'Pipelined podcast.' } ] });
    my $req = sub {
        my ($m, $p, $b, @h) = @_;
        return "$m $p HTTP/1.1\r\nHost: localhost\r\n"
             . join('', map { "$_\r\n" } @h)
             . (defined $b ? "Content-Type: application/json\r\nContent-Length: "
                             . length($b) . "\r\n\r\n$b" : "\r\n");
    };
    my @want = (
        [ 'POST', 200, 'audio/wav' ],
        [ 'POST', 400, 'invalid_json' ],
        [ 'GET',  200, 'application/json' ],
        [ 'GET',  404, 'not_found' ],
        [ 'PUT',  405, 'method_not_allowed' ],
        [ 'POST', 202, 'application/json' ],
        [ 'HEAD', 200, '' ],
        [ 'POST', 400, 'invalid_json' ],
    );
    my $bytes = $req->('POST', '/v1/audio/speech', $good)
              . $req->('POST', '/v1/scripts', $bad)
              . $req->('GET', '/v1/voices')
              . $req->('GET', '/v1/podcasts/pod_nope')
              . $req->('PUT', '/v1/voices', '{}')
              . $req->('POST', '/v1/podcasts', $pod)
              . $req->('HEAD', '/v1/voices')
              . $req->('POST', '/v1/audio/speech', '', 'Connection: close');
    my ($buf, $err) = raw_request($ng, $bytes, timeout => 30);
    my @r = parse_responses($buf, methods => [ map { $_->[0] } @want ]);
    is(scalar(@r), scalar(@want), 'pipelined: 8 requests in one write, 8 answers')
        or diag "error: " . ($err // '-');
    for my $i (0 .. $#want) {
        my ($m, $st, $what) = @{ $want[$i] };
        my $r = $r[$i] || { status => 0, headers => {}, body => '' };
        is($r->{status}, $st, "pipelined #$i ($m): $st, in order") or diag show($r);
        if ($what =~ m{/}) {
            like($r->{headers}{'content-type'} // '', qr/^\Q$what\E/, "pipelined #$i: $what");
        } elsif ($what) {
            is((jdecode($r->{body}) // {})->{error}{code}, $what, "pipelined #$i: $what");
        }
    }
    ok($r[0] && $r[0]{chunked} && length($r[0]{body}) > 1000,
       'pipelined: the streamed audio is complete before the next answer');
    my $pid = $r[5] && (jdecode($r[5]{body}) // {})->{id};
    my $pj = $pid ? wait_job($ng, $pid, 20) : undef;
    is($pj && $pj->{status}, 'completed', 'pipelined: the podcast it accepted completes');
}

# ---- HEAD -------------------------------------------------------------------------

note sprintf '%5.1f s: HEAD', time - $T0;

{
    my $id = $episode{id};
    my $url = post($ng, '/v1/audio/speech',
                   { model => 'tts-1', voice => 'alloy', input => 'A key to look up.' })
              ->{headers}{'x-podgen-audio-url'} // '/v1/audio/none.mp3';
    for my $p ('/v1/voices', "/v1/podcasts/$id", "/v1/podcasts/$id/audio",
               "/v1/podcasts/$id/transcript.vtt", "/v1/podcasts/$id/transcript.json",
               '/v1/podcasts/feed.xml', '/v1/podcasts?limit=3', $url) {
        my $g = request($ng, 'GET', $p);
        my $h = request($ng, 'HEAD', $p, keep_raw => 1);
        my $raw_body = $h->{raw} =~ /\r\n\r\n(.*)\z/s ? $1 : '';
        ok($h->{status} == 200 && $raw_body eq '', "HEAD $p: 200, no body")
            or diag show($h);
        is($h->{headers}{'content-length'}, length $g->{body},
           "HEAD $p: Content-Length of the GET");
    }
    for my $p ("/v1/podcasts/$id/audio", $url) {
        my $len = length request($ng, 'GET', $p)->{body};
        for my $rg ('bytes=999999999-', 'bytes=-0', 'bytes=1-0',
                    'bytes=18446744073709551615-', 'bytes=0-18446744073709551616', 'bytes=abc') {
            my $r = request($ng, 'GET', $p, headers => { Range => $rg });
            ok($r->{status} == 416 && ($r->{headers}{'content-range'} // '') eq "bytes */$len"
               && ($r->{headers}{'content-type'} // '') =~ /json/,
               "GET $p with Range: $rg: 416 JSON, Content-Range: bytes */$len") or diag show($r);
        }
    }
    my $h = request($ng, 'HEAD', '/v1/podcasts/pod_00000000000000000000', keep_raw => 1);
    ok($h->{status} == 404 && $h->{raw} !~ /\r\n\r\n./s, 'HEAD of an unknown id: 404, no body');
    $h = request($ng, 'HEAD', '/v1/audio/speech');
    is($h->{status}, 405, 'HEAD /v1/audio/speech: 405');
    like($h->{headers}{allow} // '', qr/POST/, '... with Allow: POST');
}

# ---- DELETE while a job runs ---------------------------------------------------------
note sprintf '%5.1f s: DELETE while a job runs', time - $T0;

{
    my $r = post($ng, '/v1/podcasts', { format => 'flac', segments => [ map {
        { speaker => 'S' . ($_ % 3), text => "Deleted while running, segment $_, with "
          . 'enough words that it takes a moment to synthesize all of them.' } } 1 .. 12 ] });
    my $id = (jdecode($r->{body}) // {})->{id} // 'none';
    sleep 0.2;
    my $st = (jdecode(request($ng, 'GET', "/v1/podcasts/$id")->{body}) // {})->{status} // '?';
    my $dir = tempdir(CLEANUP => 1);
    my $pid = fork // die;
    if (!$pid) {
        # long polls (each answers at a change of progress) until the end
        my ($w, $j, $end) = (undef, undef, time + 20);
        while (time < $end) {
            $w = request($ng, 'GET', "/v1/podcasts/$id?wait=20", timeout => 25);
            $j = jdecode($w->{body});
            last if $w->{status} != 200 || ($j->{status} // '') =~ /^(?:completed|failed)$/;
        }
        open my $fh, '>', "$dir/lp" or POSIX::_exit(1);
        printf $fh "%d %s %.3f", $w->{status}, $j->{status} // ($j->{error} && $j->{error}{code}) // '-', time;
        close $fh;
        POSIX::_exit(0);
    }
    sleep 0.2;
    my $t_del = time;
    is(request($ng, 'DELETE', "/v1/podcasts/$id")->{status}, 204,
       "DELETE of a $st job: 204");
    waitpid $pid, 0;
    my ($lst, $what, $at) = split ' ', slurp("$dir/lp") // '0 - 0';
    ok($lst == 404 && $at - $t_del < 3,
       sprintf("DELETE: a long poll on it ends with 404 (%s %s, %.1f s after the DELETE)",
               $lst, $what, $at - $t_del));
    sleep 2;    # the job's in-flight work comes back meanwhile
    is(request($ng, 'GET', "/v1/podcasts/$id")->{status}, 404, 'DELETE: status stays 404');
    is(request($ng, 'GET', "/v1/podcasts/$id/audio")->{status}, 404, 'DELETE: no audio');
    my @left = glob("$store/s/*/$id*");
    is(scalar(@left), 0, 'DELETE: nothing of it is left in the store') or diag "@left";
}

# everything posted is finished; nothing may be left held
ok(wait_for(sub {
    my $l = jdecode(request($ng, 'GET', '/v1/podcasts?limit=100')->{body});
    $l && !grep { $_->{status} !~ /^(?:completed|failed)$/ } @{ $l->{data} };
}, 30), 'hostile HTTP: every podcast job accepted has finished');
sleep 0.5;
finish($ng, 'hostile HTTP', no_leak => 1);

# ---- the bearer key ----------------------------------------------------------------

note sprintf '%5.1f s: the bearer key', time - $T0;

{
    my $KEY = 'pk-t19-' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 24);
    my $ak = Podgen::Test::Nginx->new(
        http_config => "podgen_api_key $KEY;\npodgen_store $store/k;",
        config => $LOCATIONS);
    $ak->start;
    my $sb = { model => 'tts-1', voice => 'alloy', input => 'Authorized.' };
    # (the other keys are blocks); nginx itself may refuse the header
    my $r = post($ak, '/v1/audio/speech', $sb,
                 headers => { Authorization => "Bearer $KEY\x00x" });
    if ($r->{status} != 400) {
        error_ok($r, 'api key: the key with a NUL after it', status => 401,
                 code => 'invalid_api_key');
        is($r->{headers}{'www-authenticate'}, 'Bearer',
           'api key: the key with a NUL after it: WWW-Authenticate');
    }
    # a 401 before the body is read keeps the connection usable
    my $b = $JSON->encode($sb);
    my $one = "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($b) . "\r\n\r\n$b";
    my $two = "GET /v1/voices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $KEY\r\n"
            . "Connection: close\r\n\r\n";
    my ($buf) = raw_request($ak, $one . $two, timeout => 10);
    my @r = parse_responses($buf, methods => [qw(POST GET)]);
    is(join(' ', map { $_->{status} } @r), '401 200',
       'api key: pipelined 401 then an authorized request');
    finish($ak, 'api key');
}

# ===========================================================================
# 2. faults
# ===========================================================================

# ---- a saturated thread pool --------------------------------------------------------

note sprintf '%5.1f s: a saturated thread pool', time - $T0;

{
    my $tp = Podgen::Test::Nginx->new(
        workers => 1,
        main_config => 'thread_pool default threads=1 max_queue=2;',
        http_config => "podgen_store $store/tp;",
        config => $LOCATIONS);
    $tp->start;
    my $dir = tempdir(CLEANUP => 1);
    my (%status, @bad, @five);
    my $n = 0;
    for my $burst (1 .. 10) {
        my @kids;
        for my $i (1 .. 30) {
            my $pid = fork // die "fork: $!";
            if (!$pid) {
                my $pod = $i % 10 == 0;
                my $r = $pod
                    ? post($tp, '/v1/podcasts', { format => 'wav', segments => [
                          { speaker => 'A', text => "Busy podcast $burst $i." } ] })
                    : post($tp, '/v1/audio/speech', { model => 'tts-1', voice => 'alloy',
                          response_format => 'wav', input => "Burst $burst, request $i." });
                my $j = jdecode($r->{body});
                my $line = join "\t", $pod ? 'podcast' : 'speech', $r->{status},
                    $r->{error} ? 'incomplete' : 'whole',
                    $r->{headers}{'retry-after'} // '-',
                    ($j && ref $j->{error} eq 'HASH' ? $j->{error}{code} : '-'),
                    ($r->{status} == 200 && $r->{body} =~ /^RIFF....WAVE/s
                     && length($r->{body}) > 1000 ? 'audio' : '-'),
                    ($j && $j->{id}) // '-';
                open my $fh, '>', "$dir/$burst.$i" or POSIX::_exit(1);
                print $fh "$line\n";
                close $fh;
                POSIX::_exit(0);
            }
            push @kids, $pid;
        }
        waitpid $_, 0 for @kids;
        for my $i (1 .. 30) {
            open my $fh, '<', "$dir/$burst.$i" or next;
            chomp(my $l = <$fh> // '');
            my ($kind, $st, $whole, $ra, $code, $audio, $id) = split /\t/, $l;
            $n++;
            $status{"$kind $st"}++;
            push @five, "$kind $st $code" if $st == 500;
            if ($st == 503) {
                push @bad, "$kind 503 without Retry-After or server_busy: $l"
                    unless $ra =~ /^\d+$/ && $code eq 'server_busy';
            } elsif ($kind eq 'speech' && $st == 200) {
                push @bad, "speech 200 but not whole audio: $l"
                    unless $whole eq 'whole' && $audio eq 'audio';
            } elsif ($kind eq 'podcast' && $st == 202) {
                push @{ $status{accepted} }, $id;
            } elsif ($st != 500) {
                push @bad, "unexpected: $l";
            }
        }
    }
    my $summary = join ', ', map { "$_: $status{$_}" } grep { !ref $status{$_} } sort keys %status;
    note "saturated pool, $n requests: $summary";
    ok($status{'speech 503'}, 'saturated pool: some speech requests get 503');
    ok($status{'speech 200'}, 'saturated pool: the others are made (200)');
    is(scalar(@bad), 0, 'saturated pool: every 503 is JSON server_busy with Retry-After, '
                      . 'every 200 is whole audio') or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    is(scalar(@five), 0, 'saturated pool: no request fails with 500 (a busy pool is a 503)')
        or diag scalar(@five) . " of $n answered 500 \"speech synthesis failed\" ($summary): "
              . "a request whose sentence was synthesized could not post its "
              . "encoding task to the full queue and, with nothing else in flight, "
              . "was failed (ngx_http_podgen_tts_try_encode)";
    sleep 2;
    my $after = post($tp, '/v1/audio/speech', { model => 'tts-1', voice => 'alloy',
                                               input => 'After the storm.' });
    is($after->{status}, 200, 'saturated pool: 2 s later a request is 200 (recovers by itself)');
    for my $id (@{ $status{accepted} || [] }) {
        my $j = wait_job($tp, $id, 20);
        is($j && $j->{status}, 'completed', "saturated pool: podcast $id accepted "
                                          . 'during the storm completes')
            or diag explain $j;
    }
    finish($tp, 'saturated pool');
}

# ---- an LLM that hangs ----------------------------------------------------------------

note sprintf '%5.1f s: an LLM that hangs', time - $T0;

{
    my $mock = start_mock_llm(quiet => 1);
    my %ng;
    for my $fb (qw(on off)) {
        $ng{$fb} = Podgen::Test::Nginx->new(
            http_config => "podgen_llm http://127.0.0.1:" . $mock->port
                         . "/v1 model=mock-hang timeout=1s retries=0;\n"
                         . "podgen_llm_fallback $fb;\npodgen_store $store/llm-$fb;",
            config => $LOCATIONS);
        $ng{$fb}->start;
    }
    # both nginx at once: each script call hangs for its timeout
    my $t = time;
    my $pid = fork // die;
    if (!$pid) {
        my $r = post($ng{off}, '/v1/scripts', { topic => 'Hanging LLM, fallback off' });
        open my $fh, '>', "/tmp/podgen-t19-llm-$$" or POSIX::_exit(1);
        print $fh $JSON->encode({ status => $r->{status}, body => $r->{body},
                                  ct => $r->{headers}{'content-type'} // '' });
        close $fh;
        POSIX::_exit(0);
    }
    my $v = request($ng{on}, 'GET', '/v1/voices', timeout => 5);
    my $on = post($ng{on}, '/v1/scripts', { topic => 'Hanging LLM, fallback on' });
    waitpid $pid, 0;
    my $off = jdecode(slurp("/tmp/podgen-t19-llm-$pid"));
    unlink "/tmp/podgen-t19-llm-$pid";
    is($v->{status}, 200, 'LLM hangs: other requests are served meanwhile');
    is($on->{status}, 200, 'LLM hangs, fallback on: 200') or diag show($on);
    is($on->{headers}{'x-podgen-fallback'}, 'llm_timeout',
       'LLM hangs, fallback on: X-Podgen-Fallback: llm_timeout');
    is((jdecode($on->{body}) // {})->{engine}, 'builtin', '... written by the built-in engine');
    error_ok({ status => $off->{status}, body => $off->{body},
               headers => { 'content-type' => $off->{ct} } },
             'LLM hangs, fallback off', status => 504, code => 'llm_timeout');
    cmp_ok(time - $t, '<', 5, 'LLM hangs: both answered within a few seconds of the 1 s timeout');

    my %job;
    for my $fb (qw(on off)) {
        my $r = post($ng{$fb}, '/v1/podcasts', { topic => "Hanging LLM podcast $fb",
                                                 length => 'short', format => 'opus' });
        is($r->{status}, 202, "LLM hangs, fallback $fb: podcast accepted") or diag show($r);
        $job{$fb} = (jdecode($r->{body}) // {})->{id};
    }
    my $jon = wait_job($ng{on}, $job{on}, 40);
    is($jon && $jon->{status}, 'completed', 'LLM hangs, fallback on: the podcast completes')
        or diag explain $jon;
    my $joff = wait_job($ng{off}, $job{off}, 20);
    is($joff && $joff->{status}, 'failed', 'LLM hangs, fallback off: the podcast fails')
        or diag explain $joff;
    like($joff && ref $joff->{error} ? "$joff->{error}{code}: $joff->{error}{message}" : '',
         qr/llm_timeout: \S/, '... with error llm_timeout and a message');
    finish($ng{$_}, "LLM hangs, fallback $_") for qw(on off);
    $mock->stop;
}

# ---- Redis stalled, killed, restarted --------------------------------------------------

note sprintf '%5.1f s: Redis stalled, killed, restarted', time - $T0;

SKIP: {
    skip 'redis-server is not installed', 1 unless which('redis-server');
    my $redis = start_redis();
    my $rport = $redis->port;
    # one worker: the one that posts a job is the one that polls the stream
    my $rn = Podgen::Test::Nginx->new(
        workers => 1,
        http_config => "podgen_redis 127.0.0.1:$rport timeout=300ms prefix=t19:;\n"
                     . "podgen_store $store/redis;",
        config => $LOCATIONS);
    $rn->start;
    ok(wait_for(sub { (metric($rn, 'podgen_redis_up') // 0) == 1 }, 5), 'Redis: connected');
    my $k = 0;
    my $speech = sub {
        my $t = time;
        my $r = post($rn, '/v1/audio/speech', { model => 'tts-1', voice => 'echo',
                                                input => "Redis trouble, take " . ++$k . '.' });
        return ($r, time - $t);
    };
    my $podcast = sub {
        my ($name) = @_;
        my $r = post($rn, '/v1/podcasts', { format => 'mp3',
            segments => [ { speaker => 'A', text => "Redis is $name." } ] });
        is($r->{status}, 202, "Redis $name: podcast accepted") or diag show($r);
        my $j = wait_job($rn, (jdecode($r->{body}) // {})->{id} // 'none', 12);
        is($j && $j->{status}, 'completed', "Redis $name: the podcast completes")
            or do {
                diag explain $j;
                my @l = split /\n/, $rn->error_log_since_mark;
                my ($why) = (grep({ /NOGROUP/ } @l), grep({ /redis/ } @l));
                diag "error log: $why" if $why;
            };
        return $j && $j->{id};
    };
    # the library comes from Redis; without it, from the node's own store
    my $library = sub {
        my ($name, $id) = @_;
        my $t = time;
        my $r = request($rn, 'GET', '/v1/podcasts?limit=100');
        my $took = time - $t;
        is($r->{status}, 200, "Redis $name: the list answers 200");
        cmp_ok($took, '<', 2, sprintf('... in %.2f s', $took));
        my $l = jdecode($r->{body}) // {};
        ok(grep({ ($_->{id} // '') eq ($id // '-') } @{ $l->{data} // [] }),
           "Redis $name: the list has the podcast this node made");
        my $f = request($rn, 'GET', '/v1/podcasts/feed.xml');
        ok($f->{status} == 200 && index($f->{body}, $id // '-') >= 0,
           "Redis $name: so has the feed");
    };

    my $healthy = $podcast->('healthy');
    $library->('healthy', $healthy);
    ok(wait_for(sub { `redis-cli -p $rport xinfo groups t19:jobq 2>&1` =~ /podgen/ }, 5),
       'Redis healthy: the jobs stream has its consumer group "podgen"');

    system('redis-cli', '-p', $rport, 'client', 'pause', '4000', 'ALL');
    $library->('paused', $healthy);
    for (1 .. 3) {
        my ($r, $took) = $speech->();
        is($r->{status}, 200, "Redis paused: speech 200 ($_)");
        cmp_ok($took, '<', 2, sprintf('... in %.2f s', $took));
    }
    $podcast->('paused');

    kill 'KILL', $redis->pid;
    $redis->stop;
    for (1 .. 3) {
        my ($r, $took) = $speech->();
        is($r->{status}, 200, "Redis killed: speech 200 ($_)");
    }
    ok(wait_for(sub { (metric($rn, 'podgen_redis_up') // 1) == 0 }, 5),
       'Redis killed: podgen_redis_up 0');
    $podcast->('killed');
    $library->('killed', $healthy);

    # a restarted Redis is empty (no persistence here): no stream, no
    # consumer group; podgen must make them again
    $redis = start_redis(port => $rport);
    $rn->mark_error_log;
    ok(wait_for(sub { (metric($rn, 'podgen_redis_up') // 0) == 1 }, 15),
       'Redis restarted: podgen_redis_up 1 again');
    my ($r) = $speech->();
    is($r->{status}, 200, 'Redis restarted: speech 200');
    $podcast->('restarted');
    finish($rn, 'Redis faults');
    $redis->stop;
}

# ---- a job accepted while Redis is down is shared when it comes back -------------------
#
# The node runs it from its own store; its script waits for a slow LLM
# (6 s), and by then Redis is back: the next record write puts the record
# in Redis and the podcast in the fleet's library, and at the end the
# episode too, so any node can answer for it.

note sprintf '%5.1f s: a job accepted while Redis is down', time - $T0;

SKIP: {
    skip 'redis-server is not installed', 1 unless which('redis-server');
    my $redis = start_redis();
    my $rport = $redis->port;
    my $mock = start_mock_llm(quiet => 1);
    my $rn = Podgen::Test::Nginx->new(
        workers => 1,
        http_config => "podgen_redis 127.0.0.1:$rport timeout=300ms prefix=t19s:;\n"
                     . 'podgen_llm http://127.0.0.1:' . $mock->port
                     . "/v1 model=mock-slow-6000 timeout=20s retries=0;\n"
                     . "podgen_store $store/shared-later;",
        config => $LOCATIONS);
    $rn->start;
    ok(wait_for(sub { (metric($rn, 'podgen_redis_up') // 0) == 1 }, 5),
       'shared later: connected');
    $redis->stop;
    ok(wait_for(sub { (metric($rn, 'podgen_redis_up') // 1) == 0 }, 5),
       'shared later: Redis is down');
    my $r = post($rn, '/v1/podcasts', { topic => 'Shared when Redis is back',
                                        engine => 'llm', format => 'mp3' });
    is($r->{status}, 202, 'shared later: accepted with Redis down')
        or diag show($r);
    my $id = (jdecode($r->{body}) // {})->{id} // 'none';
    $redis = start_redis(port => $rport);
    ok(wait_for(sub { (metric($rn, 'podgen_redis_up') // 0) == 1 }, 5),
       'shared later: Redis is back before the script is');
    my $j = wait_job($rn, $id, 40);
    is($j && $j->{status}, 'completed', 'shared later: the job completes');
    my $rec = `redis-cli -p $rport GET t19s:job:$id`;
    like($rec, qr/"status":"completed"/, 'shared later: its record is in Redis');
    ok(`redis-cli -p $rport ZSCORE t19s:podcasts $id` =~ /^0/
       && `redis-cli -p $rport ZSCORE t19s:episodes $id` =~ /^0/,
       'shared later: and in the library of the fleet');
    ok(`redis-cli -p $rport STRLEN t19s:episode:$id` > 1000,
       'shared later: and so is the episode');
    my $l = jdecode(request($rn, 'GET', '/v1/podcasts')->{body}) // {};
    ok(grep({ ($_->{id} // '') eq $id } @{ $l->{data} // [] }),
       'shared later: the list (from Redis) has it');
    finish($rn, 'shared later');
    $redis->stop;
    $mock->stop;
}

# ---- the store's disk is full ----------------------------------------------------------

note sprintf '%5.1f s: the store\'s disk is full', time - $T0;

our ($MNT, $DISK_NG);
END {
    # before the harness's own END: nginx must be gone to unmount
    local $?;
    if ($MNT) {
        eval { $DISK_NG->stop if $DISK_NG };
        for (1 .. 50) {
            last if system('umount', $MNT) == 0;
            sleep 0.1;
        }
        system('umount', '-l', $MNT) if `grep -F ' $MNT ' /proc/mounts`;
    }
}

SKIP: {
    my $dir = tempdir('podgen-t19-full-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    skip 'not root: cannot mount a tmpfs', 1 if $> != 0;
    if (system("mount -t tmpfs -o size=256k tmpfs $dir 2>/dev/null") != 0) {
        skip 'cannot mount a tmpfs here', 1;
    }
    $MNT = $dir;
    chmod 01777, $dir;
    $DISK_NG = Podgen::Test::Nginx->new(
        workers => 2,
        main_config => 'thread_pool default threads=2;',
        http_config => "podgen_store $dir/store;",
        config => $LOCATIONS);
    $DISK_NG->start;
    my $d = $DISK_NG;
    my (@states, @ids);
    my $failed_msg;
    for my $i (1 .. 30) {
        my $r = post($d, '/v1/podcasts', { format => 'wav', title => "Filling $i",
            segments => [ { speaker => 'A', text => "Episode $i fills the disk a little more." },
                          { speaker => 'B', text => "Yes it does, number $i." } ] });
        if ($r->{status} == 202) {
            my $id = (jdecode($r->{body}) // {})->{id};
            my $j = wait_job($d, $id, 20);
            push @states, $j->{status} // 'none';
            push @ids, $id;
            if ($j && $j->{status} eq 'failed') {
                $failed_msg //= ref $j->{error} ? "$j->{error}{code}: $j->{error}{message}" : '';
            }
        } else {
            error_ok($r, "disk full: POST $i is refused with a JSON 5xx",
                     status => $r->{status} >= 500 ? $r->{status} : 500,
                     code => qr/./);
            push @states, "POST $r->{status}";
        }
        last if @states >= 4 && $states[-1] ne 'completed' && $states[-2] ne 'completed';
    }
    note "disk full: " . join ', ', @states;
    ok((grep { $_ eq 'completed' } @states), 'disk full: episodes complete while there is room');
    ok((grep { $_ ne 'completed' } @states), 'disk full: then the disk is full');
    ok(!grep({ !/^(?:completed|failed|POST 5\d\d)$/ } @states),
       'disk full: every job ends completed or failed, every refused POST is a 5xx');
    like($failed_msg // '', qr/\S+: .*(?:space|disk|store)/i,
         'disk full: a failed job says why') if defined $failed_msg;

    # fill the rest with a file: even a record cannot be written now
    system("dd if=/dev/zero of=$dir/filler bs=4k 2>/dev/null");
    my $r = post($d, '/v1/podcasts', { segments => [ { speaker => 'A', text => 'No room.' } ] });
    ok($r->{status} >= 500 && ($r->{headers}{'content-type'} // '') =~ /json/
       || $r->{status} == 202, "disk completely full: POST is a JSON 5xx ($r->{status}) or accepted")
        or diag show($r);
    if ($r->{status} == 202) {
        my $j = wait_job($d, (jdecode($r->{body}) // {})->{id}, 20);
        is($j && $j->{status}, 'failed', 'disk completely full: the job fails');
    } else {
        error_ok($r, 'disk completely full: POST', status => 507,
                 code => 'insufficient_storage', type => 'server_error');
    }
    is(request($d, 'GET', '/v1/voices')->{status}, 200, 'disk full: nginx keeps serving');
    is(request($d, 'GET', '/v1/podcasts?limit=100')->{status}, 200, 'disk full: the list is served');
    is(request($d, 'GET', "/v1/podcasts/$ids[0]")->{status}, 200,
       'disk full: an old episode\'s status is served');

    my @recs = glob("$dir/store/jobs/*");
    my @corrupt = grep {
        my $t = slurp($_) // '';
        !(/\.json$/ && eval { my $j = $JSON->decode($t); ref $j eq 'HASH' && $j->{id} && $j->{status} });
    } @recs;
    ok(@recs > 0, 'disk full: records exist (' . scalar(@recs) . ')');
    is(scalar(@corrupt), 0, 'disk full: every record in the store is whole JSON, '
                          . 'no temporary file is left') or diag "@corrupt";

    unlink "$dir/filler";
    $r = post($d, '/v1/podcasts', { format => 'mp3',
        segments => [ { speaker => 'A', text => 'Room again.' } ] });
    is($r->{status}, 202, 'disk freed: a podcast is accepted again');
    my $j = wait_job($d, (jdecode($r->{body}) // {})->{id} // 'none', 20);
    is($j && $j->{status}, 'completed', 'disk freed: and completes');
    finish($d, 'disk full');
    undef $DISK_NG;
}

# ===========================================================================
# 3. blocks
# ===========================================================================

note sprintf '%5.1f s: blocks', time - $T0;

# under the sanitizers yajl's one-element-at-a-time realloc() is quadratic
# (see t/01): a smaller array there
our $MILLION = '[' . join(',', (0) x (($ENV{PODGEN_PRELOAD} || $ENV{PODGEN_VALGRIND})
                                      ? 20_000 : 1_000_000)) . ']';

# The server of the hostile HTTP part, with a store in its prefix; every
# block's log is checked for speech jobs held at exit too (the last block
# of a server sees its exit).  The million-element arrays go to a server
# that takes 4 MB bodies; the bearer key has a server of its own.
run_blocks(defaults => {
    main_config => 'thread_pool default threads=4;',
    http_config => "podgen_store store;\nclient_body_timeout 2s;\n"
                 . "client_max_body_size 1m;",
    config => $LOCATIONS,
    more_headers => 'Content-Type: application/json',
    no_error_log => "still running at exit\nleaked (refs",
});

note sprintf 'ran in %.1f s', time - $T0;

__DATA__

=== 10 MB body on /v1/audio/speech
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","voice":"alloy","topic":"x","input":"'
. ('a' x (10 * 1024 * 1024)) . '"}'
--- timeout: 20
--- api_error: 413 code=request_too_large
--- max_time: 5

=== 10 MB body on /v1/scripts
--- request eval
"POST /v1/scripts\n" . '{"model":"tts-1","voice":"alloy","topic":"x","input":"'
. ('a' x (10 * 1024 * 1024)) . '"}'
--- timeout: 20
--- api_error: 413 code=request_too_large
--- max_time: 5

=== 10 MB body on /v1/podcasts
--- request eval
"POST /v1/podcasts\n" . '{"model":"tts-1","voice":"alloy","topic":"x","input":"'
. ('a' x (10 * 1024 * 1024)) . '"}'
--- timeout: 20
--- api_error: 413 code=request_too_large
--- max_time: 5

=== 10 MB body on /v1/batch
--- request eval
"POST /v1/batch\n" . '{"model":"tts-1","voice":"alloy","topic":"x","input":"'
. ('a' x (10 * 1024 * 1024)) . '"}'
--- timeout: 20
--- api_error: 413 code=request_too_large
--- max_time: 5

=== 10 MB chunked body on /v1/podcasts
--- request eval
"POST /v1/podcasts\n"
. join('', map { sprintf("%x\r\n", 65536) . ('b' x 65536) . "\r\n" } 1 .. 160)
. "0\r\n\r\n"
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- timeout: 20
--- api_error: 413 code=request_too_large

=== arrays 100,000 deep on /v1/audio/speech
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('[' x 100_000) . (']' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== objects 100,000 deep on /v1/audio/speech
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('{"a":' x 100_000) . '1' . ('}' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== arrays 100,000 deep on /v1/scripts
--- request eval
"POST /v1/scripts\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('[' x 100_000) . (']' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== objects 100,000 deep on /v1/scripts
--- request eval
"POST /v1/scripts\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('{"a":' x 100_000) . '1' . ('}' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== arrays 100,000 deep on /v1/podcasts
--- request eval
"POST /v1/podcasts\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('[' x 100_000) . (']' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== objects 100,000 deep on /v1/podcasts
--- request eval
"POST /v1/podcasts\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('{"a":' x 100_000) . '1' . ('}' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== arrays 100,000 deep on /v1/batch
--- request eval
"POST /v1/batch\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('[' x 100_000) . (']' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== objects 100,000 deep on /v1/batch
--- request eval
"POST /v1/batch\n" . '{"model":"tts-1","voice":"alloy","input":"x","x":'
. ('{"a":' x 100_000) . '1' . ('}' x 100_000) . '}'
--- api_error: 400 code=nesting_too_deep
--- max_time: 2

=== speech input with a raw NUL byte
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello \x00 there"})
--- api_error: 400 code=invalid_json

=== speech input with an escaped NUL
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hello \u0000 there"}
--- api_error: 400 code=invalid_json

=== speech input with a raw control byte
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello \x01 there"})
--- api_error: 400 code=invalid_json

=== speech input with a raw newline
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello\nthere"})
--- api_error: 400 code=invalid_json

=== speech input with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello \xc0\xaf there"})
--- api_error: 400 code=invalid_utf8

=== speech input with overlong NUL (C0 80)
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello \xc0\x80 there"})
--- api_error: 400 code=invalid_utf8

=== speech input with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello \xed\xa0\x80 there"})
--- api_error: 400 code=invalid_utf8

=== speech input with a lone low surrogate escape
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hello \udc00 there"}
--- api_error: 400 code=invalid_utf8

=== speech input with a reversed surrogate pair
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hello \udc00\ud800 there"}
--- api_error: 400 code=invalid_utf8

=== speech input with a code point above U+10FFFF
--- request eval
"POST /v1/audio/speech\n" . qq({"model":"tts-1","voice":"alloy","input":"Hello \xf4\x90\x80\x80 there"})
--- api_error: 400 code=invalid_utf8

=== scripts topic with a raw NUL byte
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello \x00 there"})
--- api_error: 400 code=invalid_json

=== scripts topic with an escaped NUL
--- request
POST /v1/scripts
{"engine":"builtin","length":"short","topic":"Hello \u0000 there"}
--- api_error: 400 code=invalid_json

=== scripts topic with a raw control byte
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello \x01 there"})
--- api_error: 400 code=invalid_json

=== scripts topic with a raw newline
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello\nthere"})
--- api_error: 400 code=invalid_json

=== scripts topic with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello \xc0\xaf there"})
--- api_error: 400 code=invalid_utf8

=== scripts topic with overlong NUL (C0 80)
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello \xc0\x80 there"})
--- api_error: 400 code=invalid_utf8

=== scripts topic with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello \xed\xa0\x80 there"})
--- api_error: 400 code=invalid_utf8

=== scripts topic with a lone low surrogate escape
--- request
POST /v1/scripts
{"engine":"builtin","length":"short","topic":"Hello \udc00 there"}
--- api_error: 400 code=invalid_utf8

=== scripts topic with a reversed surrogate pair
--- request
POST /v1/scripts
{"engine":"builtin","length":"short","topic":"Hello \udc00\ud800 there"}
--- api_error: 400 code=invalid_utf8

=== scripts topic with a code point above U+10FFFF
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","length":"short","topic":"Hello \xf4\x90\x80\x80 there"})
--- api_error: 400 code=invalid_utf8

=== scripts host name with a raw NUL byte
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \x00 there"},{"name":"B"}]})
--- api_error: 400 code=invalid_json

=== scripts host name with an escaped NUL
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \u0000 there"},{"name":"B"}]}
--- api_error: 400 code=invalid_json

=== scripts host name with a raw control byte
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \x01 there"},{"name":"B"}]})
--- api_error: 400 code=invalid_json

=== scripts host name with a raw newline
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello\nthere"},{"name":"B"}]})
--- api_error: 400 code=invalid_json

=== scripts host name with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \xc0\xaf there"},{"name":"B"}]})
--- api_error: 400 code=invalid_utf8

=== scripts host name with overlong NUL (C0 80)
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \xc0\x80 there"},{"name":"B"}]})
--- api_error: 400 code=invalid_utf8

=== scripts host name with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \xed\xa0\x80 there"},{"name":"B"}]})
--- api_error: 400 code=invalid_utf8

=== scripts host name with a lone low surrogate escape
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \udc00 there"},{"name":"B"}]}
--- api_error: 400 code=invalid_utf8

=== scripts host name with a reversed surrogate pair
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \udc00\ud800 there"},{"name":"B"}]}
--- api_error: 400 code=invalid_utf8

=== scripts host name with a code point above U+10FFFF
--- request eval
"POST /v1/scripts\n" . qq({"engine":"builtin","topic":"Tea","hosts":[{"name":"Hello \xf4\x90\x80\x80 there"},{"name":"B"}]})
--- api_error: 400 code=invalid_utf8

=== podcast title with a raw NUL byte
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello \x00 there","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_json

=== podcast title with an escaped NUL
--- request
POST /v1/podcasts
{"title":"Hello \u0000 there","segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_json

=== podcast title with a raw control byte
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello \x01 there","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_json

=== podcast title with a raw newline
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello\nthere","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_json

=== podcast title with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello \xc0\xaf there","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast title with overlong NUL (C0 80)
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello \xc0\x80 there","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast title with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello \xed\xa0\x80 there","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast title with a lone low surrogate escape
--- request
POST /v1/podcasts
{"title":"Hello \udc00 there","segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_utf8

=== podcast title with a reversed surrogate pair
--- request
POST /v1/podcasts
{"title":"Hello \udc00\ud800 there","segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_utf8

=== podcast title with a code point above U+10FFFF
--- request eval
"POST /v1/podcasts\n" . qq({"title":"Hello \xf4\x90\x80\x80 there","segments":[{"speaker":"A","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast speaker with a raw NUL byte
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello \x00 there","text":"Hi."}]})
--- api_error: 400 code=invalid_json

=== podcast speaker with an escaped NUL
--- request
POST /v1/podcasts
{"segments":[{"speaker":"Hello \u0000 there","text":"Hi."}]}
--- api_error: 400 code=invalid_json

=== podcast speaker with a raw control byte
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello \x01 there","text":"Hi."}]})
--- api_error: 400 code=invalid_json

=== podcast speaker with a raw newline
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello\nthere","text":"Hi."}]})
--- api_error: 400 code=invalid_json

=== podcast speaker with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello \xc0\xaf there","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast speaker with overlong NUL (C0 80)
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello \xc0\x80 there","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast speaker with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello \xed\xa0\x80 there","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast speaker with a lone low surrogate escape
--- request
POST /v1/podcasts
{"segments":[{"speaker":"Hello \udc00 there","text":"Hi."}]}
--- api_error: 400 code=invalid_utf8

=== podcast speaker with a reversed surrogate pair
--- request
POST /v1/podcasts
{"segments":[{"speaker":"Hello \udc00\ud800 there","text":"Hi."}]}
--- api_error: 400 code=invalid_utf8

=== podcast speaker with a code point above U+10FFFF
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"Hello \xf4\x90\x80\x80 there","text":"Hi."}]})
--- api_error: 400 code=invalid_utf8

=== podcast segment text with a raw NUL byte
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello \x00 there"}]})
--- api_error: 400 code=invalid_json

=== podcast segment text with an escaped NUL
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello \u0000 there"}]}
--- api_error: 400 code=invalid_json

=== podcast segment text with a raw control byte
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello \x01 there"}]})
--- api_error: 400 code=invalid_json

=== podcast segment text with a raw newline
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello\nthere"}]})
--- api_error: 400 code=invalid_json

=== podcast segment text with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello \xc0\xaf there"}]})
--- api_error: 400 code=invalid_utf8

=== podcast segment text with overlong NUL (C0 80)
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello \xc0\x80 there"}]})
--- api_error: 400 code=invalid_utf8

=== podcast segment text with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello \xed\xa0\x80 there"}]})
--- api_error: 400 code=invalid_utf8

=== podcast segment text with a lone low surrogate escape
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello \udc00 there"}]}
--- api_error: 400 code=invalid_utf8

=== podcast segment text with a reversed surrogate pair
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Hello \udc00\ud800 there"}]}
--- api_error: 400 code=invalid_utf8

=== podcast segment text with a code point above U+10FFFF
--- request eval
"POST /v1/podcasts\n" . qq({"segments":[{"speaker":"A","text":"Hello \xf4\x90\x80\x80 there"}]})
--- api_error: 400 code=invalid_utf8

=== batch item input with a raw NUL byte
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \x00 there"}}]})
--- api_error: 400 code=invalid_json

=== batch item input with an escaped NUL
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \u0000 there"}}]}
--- api_error: 400 code=invalid_json

=== batch item input with a raw control byte
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \x01 there"}}]})
--- api_error: 400 code=invalid_json

=== batch item input with a raw newline
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello\nthere"}}]})
--- api_error: 400 code=invalid_json

=== batch item input with overlong UTF-8 (C0 AF)
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \xc0\xaf there"}}]})
--- api_error: 400 code=invalid_utf8

=== batch item input with overlong NUL (C0 80)
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \xc0\x80 there"}}]})
--- api_error: 400 code=invalid_utf8

=== batch item input with a UTF-8 surrogate (ED A0 80)
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \xed\xa0\x80 there"}}]})
--- api_error: 400 code=invalid_utf8

=== batch item input with a lone low surrogate escape
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \udc00 there"}}]}
--- api_error: 400 code=invalid_utf8

=== batch item input with a reversed surrogate pair
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \udc00\ud800 there"}}]}
--- api_error: 400 code=invalid_utf8

=== batch item input with a code point above U+10FFFF
--- request eval
"POST /v1/batch\n" . qq({"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hello \xf4\x90\x80\x80 there"}}]})
--- api_error: 400 code=invalid_utf8

=== speech input with escaped control characters: accepted
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f."}
--- error_code_like: ^20[02]$

=== scripts topic with escaped control characters: accepted
--- request
POST /v1/scripts
{"engine":"builtin","length":"short","topic":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f."}
--- error_code_like: ^20[02]$

=== scripts host name with escaped control characters
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","hosts":[{"name":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f."},{"name":"B"}]}
--- api_error: 400 code=invalid_value param=hosts[0].name

=== podcast title with escaped control characters: accepted, and the job completes
--- request
POST /v1/podcasts
{"title":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f.","segments":[{"speaker":"A","text":"Hi."}]}
--- request_code: 202
--- wait_status: completed

=== podcast speaker with escaped control characters
--- request
POST /v1/podcasts
{"segments":[{"speaker":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f.","text":"Hi."}]}
--- api_error: 400 code=invalid_value param=segments[0].speaker

=== podcast segment text with escaped control characters: accepted, and the job completes
--- request
POST /v1/podcasts
{"segments":[{"speaker":"A","text":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f."}]}
--- request_code: 202
--- wait_status: completed

=== batch item input with escaped control characters: accepted, and the batch item is made
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Bell\u0007 escape\u001b[31m tab\t line\nend\u007f."}}]}
--- error_code_like: ^20[02]$
--- response_json
{"results":[{"status":200}]}

=== speech speed NaN
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":NaN}
--- api_error: 400 code=invalid_json

=== podcast speed NaN
--- request
POST /v1/podcasts
{"speed":NaN,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_json

=== speech speed Infinity
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":Infinity}
--- api_error: 400 code=invalid_json

=== podcast speed Infinity
--- request
POST /v1/podcasts
{"speed":Infinity,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_json

=== speech speed -Infinity
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":-Infinity}
--- api_error: 400 code=invalid_json

=== podcast speed -Infinity
--- request
POST /v1/podcasts
{"speed":-Infinity,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_json

=== speech speed 1e999
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":1e999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== podcast speed 1e999
--- request
POST /v1/podcasts
{"speed":1e999,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== speech speed -1e999
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":-1e999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== podcast speed -1e999
--- request
POST /v1/podcasts
{"speed":-1e999,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== speech speed 1e-999
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":1e-999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== podcast speed 1e-999
--- request
POST /v1/podcasts
{"speed":1e-999,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== speech speed -1
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":-1}
--- api_error: 400 code=invalid_value

=== podcast speed -1
--- request
POST /v1/podcasts
{"speed":-1,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_value

=== speech speed -0
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":-0}
--- api_error: 400 code=invalid_value

=== podcast speed -0
--- request
POST /v1/podcasts
{"speed":-0,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_value

=== speech speed "NaN"
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":"NaN"}
--- api_error: 400 code=invalid_type

=== podcast speed "NaN"
--- request
POST /v1/podcasts
{"speed":"NaN","segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=invalid_type

=== speech speed a huge integer
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Hi.","speed":123456789012345678901234567890}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== podcast speed a huge integer
--- request
POST /v1/podcasts
{"speed":123456789012345678901234567890,"segments":[{"speaker":"A","text":"Hi."}]}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== batch: an item with speed -1 fails in its place, the other is made
--- request
POST /v1/batch
{"requests":[{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hi.","speed":-1}},{"type":"speech","body":{"model":"tts-1","voice":"alloy","input":"Hi."}}]}
--- error_code: 200
--- response_json
{"results":[{"status":400,"error":{"code":"invalid_value"}},{"status":200}]}

=== scripts target_words 1e300
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":1e300}
--- api_error: 400 code=invalid_value

=== podcast target_words 1e300
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":1e300}
--- api_error: 400 code=invalid_value

=== scripts target_words 1e999
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":1e999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== podcast target_words 1e999
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":1e999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== scripts target_words 99999999999999999999
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":99999999999999999999}
--- api_error: 400 code=invalid_value

=== podcast target_words 99999999999999999999
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":99999999999999999999}
--- api_error: 400 code=invalid_value

=== scripts target_words 9007199254740993
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":9007199254740993}
--- api_error: 400 code=invalid_value

=== podcast target_words 9007199254740993
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":9007199254740993}
--- api_error: 400 code=invalid_value

=== scripts target_words -1
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":-1}
--- api_error: 400 code=invalid_value

=== podcast target_words -1
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":-1}
--- api_error: 400 code=invalid_value

=== scripts target_words 0
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":0}
--- api_error: 400 code=invalid_value

=== podcast target_words 0
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":0}
--- api_error: 400 code=invalid_value

=== scripts target_words 2.5
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":2.5}
--- api_error: 400 code=invalid_value

=== podcast target_words 2.5
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":2.5}
--- api_error: 400 code=invalid_value

=== scripts target_words 5001
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":5001}
--- api_error: 400 code=invalid_value

=== podcast target_words 5001
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":5001}
--- api_error: 400 code=invalid_value

=== scripts target_words -1e999
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":-1e999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== podcast target_words -1e999
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":-1e999}
--- api_error: 400 code=/^(?:invalid_value|invalid_json)$/

=== scripts target_words "300"
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":"300"}
--- api_error: 400 code=invalid_type

=== podcast target_words "300"
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":"300"}
--- api_error: 400 code=invalid_type

=== scripts target_words true
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":true}
--- api_error: 400 code=invalid_type

=== podcast target_words true
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":true}
--- api_error: 400 code=invalid_type

=== scripts target_words [300]
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":[300]}
--- api_error: 400 code=invalid_type

=== podcast target_words [300]
--- request
POST /v1/podcasts
{"engine":"builtin","topic":"Tea","target_words":[300]}
--- api_error: 400 code=invalid_type

=== target_words 5000 (the maximum) is fine
--- request
POST /v1/scripts
{"engine":"builtin","topic":"Tea","target_words":5000}
--- error_code: 200

=== a million-element array on /v1/audio/speech
--- http_config
podgen_store store;
client_max_body_size 4m;
--- request eval
"POST /v1/audio/speech\n" . '{"model":"tts-1","voice":"alloy","input":' . $main::MILLION . '}'
--- timeout: 20
--- api_error: 400 code=invalid_type param=input
--- max_time: 3

=== a million-element array on /v1/scripts
--- http_config
podgen_store store;
client_max_body_size 4m;
--- request eval
"POST /v1/scripts\n" . '{"engine":"builtin","topic":' . $main::MILLION . '}'
--- timeout: 20
--- api_error: 400 code=invalid_type param=topic
--- max_time: 3

=== a million-element array on /v1/podcasts
--- http_config
podgen_store store;
client_max_body_size 4m;
--- request eval
"POST /v1/podcasts\n" . '{"segments":' . $main::MILLION . '}'
--- timeout: 20
--- api_error: 400 code=invalid_value param=segments
--- max_time: 3

=== a million-element array on /v1/batch
--- http_config
podgen_store store;
client_max_body_size 4m;
--- request eval
"POST /v1/batch\n" . '{"requests":' . $main::MILLION . '}'
--- timeout: 20
--- api_error: 400 code=/^(?:batch_too_large|invalid_value)$/ param=requests
--- max_time: 3

=== api key: no Authorization
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
--- api_error: 401 code=invalid_api_key
--- response_headers
WWW-Authenticate: Bearer

=== api key: a wrong key
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
Authorization: Bearer pk-t19-qwertyuiopasdfghjklzxcvbx
--- api_error: 401 code=invalid_api_key
--- response_headers
WWW-Authenticate: Bearer

=== api key: a prefix of the key
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
Authorization: Bearer pk-t19-qwertyuiopasdfghjklzxcv
--- api_error: 401 code=invalid_api_key
--- response_headers
WWW-Authenticate: Bearer

=== api key: an empty bearer
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers eval
"Content-Type: application/json\nAuthorization: Bearer "
--- api_error: 401 code=invalid_api_key
--- response_headers
WWW-Authenticate: Bearer

=== api key: Basic with the key
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
Authorization: Basic pk-t19-qwertyuiopasdfghjklzxcvb
--- api_error: 401 code=invalid_api_key
--- response_headers
WWW-Authenticate: Bearer

=== api key: the key without a scheme
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
Authorization: pk-t19-qwertyuiopasdfghjklzxcvb
--- api_error: 401 code=invalid_api_key
--- response_headers
WWW-Authenticate: Bearer

=== api key: the right key: 200
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
Authorization: Bearer pk-t19-qwertyuiopasdfghjklzxcvb
--- error_code: 200

=== api key: the scheme is case-insensitive
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"Authorized."}
--- more_headers
Content-Type: application/json
Authorization: bearer pk-t19-qwertyuiopasdfghjklzxcvb
--- error_code: 200

=== api key: GET /v1/voices without it
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
GET /v1/voices
--- api_error: 401 code=invalid_api_key

=== api key: GET /v1/podcasts without it
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
GET /v1/podcasts
--- api_error: 401 code=invalid_api_key

=== api key: GET /v1/podcasts/feed.xml without it
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
GET /v1/podcasts/feed.xml
--- api_error: 401 code=invalid_api_key

=== api key: GET /v1/audio/0000000000000000000000000000000000000000000000000000000000000000.mp3 without it
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
GET /v1/audio/0000000000000000000000000000000000000000000000000000000000000000.mp3
--- api_error: 401 code=invalid_api_key

=== api key: GET /v1/voices with it
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
GET /v1/voices
--- more_headers
Authorization: Bearer pk-t19-qwertyuiopasdfghjklzxcvb
--- error_code: 200

=== api key: /metrics is not covered
--- http_config
podgen_api_key pk-t19-qwertyuiopasdfghjklzxcvb;
podgen_store store;
--- request
GET /metrics
--- error_code: 200
