# More of the L1 cache: LRU eviction in a tiny zone (and honest gauges),
# TTL expiry, max_entry, GET /v1/audio/{key}.{ext} (bytes, HEAD, Range,
# 304, 404/400/405 as JSON), 100 identical cold requests over two workers
# (one synthesis), exact cache metrics from known traffic, and
# podgen_metrics_record off.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use POSIX ();
use IO::Socket::IP;
use Digest::MD5 qw(md5_hex);
use File::Temp ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my $JSON = JSON::PP->new->canonical;
my %CT = ('Content-Type' => 'application/json');

my $LOCATIONS = 'location = /v1/audio/speech { podgen_speech; }
                 location /v1/audio/ { podgen_audio; }
                 location = /metrics { podgen_metrics; }';

sub node {
    my (%a) = @_;
    my $n = Podgen::Test::Nginx->new(workers => $a{workers} // 1,
                                     listen_options => $a{listen} // '',
                                     http_config => $a{http} // '',
                                     config => $LOCATIONS);
    $n->start;
    return $n;
}

# Wav artifacts of $n sentences each ("$words" tell them apart from other
# tests'): a sub for the request body of artifact NAME, a sub that POSTs it,
# and the raw request of NAME for a client of its own.
sub wav_artifacts {
    my ($ng, $words, $n) = @_;
    my $body = sub {
        my ($name) = @_;
        return $JSON->encode({ model => 'tts-1', voice => 'alloy',
                               response_format => 'wav',
                               input => join ' ', map {
                                   "$words sentence $_ of artifact $name."
                               } 1 .. $n });
    };
    my $post = sub {
        request($ng, 'POST', '/v1/audio/speech', body => $body->($_[0]),
                headers => \%CT, timeout => 60);
    };
    my $raw = sub {
        my $b = $body->($_[0]);
        return "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
               . "Content-Type: application/json\r\nConnection: close\r\n"
               . 'Content-Length: ' . length($b) . "\r\n\r\n$b";
    };
    return ($body, $post, $raw);
}

sub log_clean {
    my ($ng, $name) = @_;
    $ng->stop;
    my @bad = $ng->check_error_log;
    ok(!@bad, "$name: error log clean") or diag join "\n", @bad;
}

my $L1_HIT  = 'podgen_cache_requests_total{tier="l1",kind="audio",result="hit"}';
my $L1_MISS = 'podgen_cache_requests_total{tier="l1",kind="audio",result="miss"}';

# ---- (a) eviction in a 256 KB zone, (c) max_entry ---------------------------

{
    my $ng = node(http => 'podgen_cache_zone tiny:256k max_entry=64k;');

    # 12 artifacts of 20-40 KB each (one or two sentences of mp3): about
    # 360 KB in all, more than the zone holds
    my @texts = map {
        my $n = $_;
        "Artifact number $n of the tiny zone"
            . ($n % 3 == 0 ? ' is a little longer.' : ' is short.')
    } 1 .. 12;
    my @len;
    for my $i (0 .. $#texts) {
        my $r = speech($ng, input => $texts[$i]);
        is(cache_tag($r), 'MISS', "tiny zone: artifact $i is made")
            if $i == 0 || $i == $#texts;
        push @len, length $r->{body};
    }
    my ($min, $max) = (sort { $a <=> $b } @len)[0, -1];
    ok($min >= 20_000 && $max <= 40_000,
       "tiny zone: artifacts are 20-40 KB ($min-$max bytes)");

    my $m = metrics($ng);
    my $entries = $m->{podgen_cache_entries};
    my $bytes = $m->{'podgen_cache_bytes{tier="l1"}'};
    my $ev = $m->{podgen_cache_evictions_total};
    cmp_ok($ev, '>', 0, "tiny zone: podgen_cache_evictions_total $ev > 0");
    ok($entries >= 2 && $entries < @texts,
       "tiny zone: podgen_cache_entries $entries, fewer than the 12 stored");
    is($ev, @texts - $entries,
       'tiny zone: every artifact is either held or was evicted');
    cmp_ok($bytes, '<=', 256 * 1024,
           "tiny zone: podgen_cache_bytes $bytes <= the zone size");
    ok($bytes >= $entries * $min && $bytes <= $entries * $max,
       "tiny zone: bytes $bytes fit $entries entries of $min-$max bytes");

    # the newest is still there, the least recently used one is gone
    is(cache_tag(speech($ng, input => $texts[-1])), 'HIT-L1',
       'tiny zone: the newest hits');
    is(cache_tag(speech($ng, input => $texts[0])), 'MISS',
       'tiny zone: the oldest was evicted');
    is(cache_tag(speech($ng, input => $texts[0])), 'HIT-L1',
       'tiny zone: and is cached again');

    # (c) 8 sentences of mp3 are about 190 KB: over max_entry=64k
    my $big = join ' ', map { "Sentence $_ makes this artifact too big to keep." }
              1 .. 8;
    my $e0 = metrics($ng)->{podgen_cache_entries};
    my $b1 = speech($ng, input => $big);
    cmp_ok(length $b1->{body}, '>', 64 * 1024,
           sprintf('max_entry: the artifact is %d bytes', length $b1->{body}));
    is(cache_tag($b1), 'MISS', 'max_entry: made');
    is(cache_tag(speech($ng, input => $big)), 'MISS',
       'max_entry: not cached, made again');
    is(cache_tag(speech($ng, input => $big)), 'MISS', 'max_entry: and again');
    is(metrics($ng)->{podgen_cache_entries}, $e0,
       'max_entry: podgen_cache_entries unchanged');
    my $u = $b1->{headers}{'x-podgen-audio-url'} // '/v1/audio/none.mp3';
    is(request($ng, 'GET', $u)->{status}, 404,
       'max_entry: not under /v1/audio/ either');

    log_clean($ng, 'tiny zone');
}

# ---- (b) TTL ----------------------------------------------------------------

{
    my $ng = node(http => 'podgen_cache_zone short:1m ttl=1s;');

    # ngx_time() has whole seconds: start right after a second begins, so
    # that "right away" falls in the same second as the store
    sleep(1.05 - (time - int time));
    my $text = 'This entry lives for one second.';
    is(cache_tag(speech($ng, input => $text)), 'MISS', 'ttl=1s: made');
    is(cache_tag(speech($ng, input => $text)), 'HIT-L1',
       'ttl=1s: a hit right away');
    sleep 2.2;
    is(cache_tag(speech($ng, input => $text)), 'MISS',
       'ttl=1s: a miss after 2.2 s');

    # stored late in a second, the entry should still live 0.4 s later
    sleep(1.9 - (time - int time));
    my $late = 'This entry is stored late in a second.';
    speech($ng, input => $late);
    sleep 0.4;
    is(cache_tag(speech($ng, input => $late)), 'HIT-L1',
       'ttl=1s: an entry stored at .9 s still hits 0.4 s later');

    log_clean($ng, 'ttl');
}

# ---- (f) exact cache metrics, 2 workers -------------------------------------

{
    my $ng = node(workers => 2);
    my @t = map { "Counted artifact number $_." } 1 .. 3;
    my %len;
    for my $t (@t) {
        my $r = speech($ng, input => $t);
        is(cache_tag($r), 'MISS', "metrics: cold '$t'");
        $len{$t} = length $r->{body};
    }
    my @tags;
    push @tags, cache_tag(speech($ng, input => $t[$_ % 3])) for 0 .. 4;
    is("@tags", join(' ', ('HIT-L1') x 5), 'metrics: 5 repeats hit');

    # a request is counted when its log phase runs, just after its last
    # byte: the other worker may render /metrics a moment before that
    my $m = metrics($ng);
    for (1 .. 20) {
        last if ($m->{'podgen_requests_total{endpoint="speech",code="200"}'}
                 // 0) >= 8;
        sleep 0.05;
        $m = metrics($ng);
    }
    is($m->{$L1_HIT}, 5, 'metrics: L1 audio hits 5');
    is($m->{$L1_MISS}, 3, 'metrics: L1 audio misses 3');
    is($m->{'podgen_cache_hit_ratio{kind="audio"}'}, 0.625,
       'metrics: podgen_cache_hit_ratio{kind="audio"} 0.625');
    is($m->{'podgen_requests_total{endpoint="speech",code="200"}'}, 8,
       'metrics: 8 speech requests');
    is($m->{podgen_cache_entries}, 3, 'metrics: 3 entries');
    my $sum = 0;
    $sum += $_ for values %len;
    is($m->{'podgen_cache_bytes{tier="l1"}'}, $sum,
       "metrics: podgen_cache_bytes is their size ($sum)");
    is($m->{'podgen_coalesced_requests_total{kind="audio"}'}, 0,
       'metrics: nothing coalesced');
    is($m->{podgen_cache_evictions_total}, 0, 'metrics: nothing evicted');

    log_clean($ng, 'metrics');
}

# ---- (d) GET /v1/audio/{key}.{ext}, (e) 100 at once ------------------------

my $ng = node(workers => 2);

{
    my $r = speech($ng,
                   input => 'Fetch me again by my key. I am an immutable artifact.');
    is(cache_tag($r), 'MISS', 'audio: the speech request made it');
    ok($r->{chunked}, 'audio: it was streamed');
    my $url = $r->{headers}{'x-podgen-audio-url'} // '';
    like($url, qr{^/v1/audio/[0-9a-f]{64}\.mp3$}, "audio: X-Podgen-Audio-Url $url");
    my ($key) = $url =~ m{([0-9a-f]{64})};
    $key //= '0' x 64;

    my $g = request($ng, 'GET', $url);
    is($g->{status}, 200, 'GET: 200');
    my ($same, $why) = stored_is_streamed($g->{body}, $r->{body}, 'mp3');
    ok($same, 'GET: the bytes that were streamed, with the Info frame '
              . 'filled in') or diag $why;
    is($g->{headers}{'content-length'}, length $r->{body}, 'GET: Content-Length');
    is($g->{headers}{'content-type'}, 'audio/mpeg', 'GET: Content-Type');
    is($g->{headers}{'cache-control'}, 'public, max-age=31536000, immutable',
       'GET: Cache-Control immutable');
    my $etag = $g->{headers}{etag} // '';
    like($etag, qr/^"[0-9a-f]{32}"$/, "GET: strong ETag $etag");
    is($g->{headers}{'x-podgen-cache'}, 'HIT-L1', 'GET: from L1');

    my $h = request($ng, 'HEAD', $url);
    is($h->{status}, 200, 'HEAD: 200');
    is($h->{headers}{'content-length'}, length $r->{body}, 'HEAD: Content-Length');
    is($h->{headers}{etag}, $etag, 'HEAD: the same ETag');
    is($h->{body}, '', 'HEAD: no body');

    my $rg = request($ng, 'GET', $url, headers => { Range => 'bytes=100-1099' });
    is($rg->{status}, 206, 'Range: 206');
    is($rg->{headers}{'content-range'}, 'bytes 100-1099/' . length $r->{body},
       'Range: Content-Range');
    ok($rg->{body} eq substr($g->{body}, 100, 1000), 'Range: the right bytes');
    my $sfx = request($ng, 'GET', $url, headers => { Range => 'bytes=-16' });
    ok($sfx->{status} == 206 && $sfx->{body} eq substr($g->{body}, -16),
       'Range: a suffix range');

    my $nm = request($ng, 'GET', $url, headers => { 'If-None-Match' => $etag });
    is($nm->{status}, 304, 'If-None-Match: 304');
    is($nm->{body}, '', '304: no body');
    is(request($ng, 'GET', $url, headers => { 'If-None-Match' => '"other"' })
           ->{status}, 200, 'If-None-Match with another tag: 200');

    my $json_error = sub {
        my ($res, $status, $name) = @_;
        my $e = eval { $JSON->decode($res->{body}) };
        ok($res->{status} == $status
           && ($res->{headers}{'content-type'} // '') =~ m{^application/json}
           && ref $e eq 'HASH' && ref $e->{error} eq 'HASH',
           "$name: $status, a JSON error")
            or diag "got $res->{status} "
                    . ($res->{headers}{'content-type'} // '-') . ": "
                    . substr($res->{body}, 0, 200);
        return $e;
    };

    my $e = $json_error->(request($ng, 'GET', "/v1/audio/$key.wav"), 404,
                          'a key stored as mp3, asked as wav');
    is($e->{error}{code}, 'not_found', 'wrong extension: code not_found');
    $json_error->(request($ng, 'GET', '/v1/audio/' . ('0' x 64) . '.mp3'),
                  404, 'an unknown key');
    {
        my $h0 = metrics($ng)->{$L1_HIT};
        request($ng, 'GET', "/v1/audio/$key.opus");
        is(metrics($ng)->{$L1_HIT} - $h0, 0,
           'a 404 for the wrong extension is not counted as an L1 hit');
    }

    my %bad = (
        'a short key'         => '/v1/audio/' . substr($key, 0, 63) . '.mp3',
        'uppercase hex'       => '/v1/audio/' . uc($key) . '.mp3',
        'no extension'        => "/v1/audio/$key",
        'an empty extension'  => "/v1/audio/$key.",
        'an unknown format'   => "/v1/audio/$key.ogg",
        'a double extension'  => "/v1/audio/$key.mp3.mp3",
        'a key with ..'       => "/v1/audio/$key..mp3",
        '.. in the name'      => '/v1/audio/...mp3',
        '.. resolved inside'  => '/v1/audio/x/../' . substr($key, 1) . '.mp3',
        'trailing /..'        => "/v1/audio/$key.mp3/..",
        'nothing'             => '/v1/audio/',
        'a longer key'        => "/v1/audio/${key}0.mp3",
    );
    for my $name (sort keys %bad) {
        $json_error->(request($ng, 'GET', $bad{$name}), 400, $name);
    }

    # a path that .. takes out of /v1/audio/ is nginx's, never a file
    my $out = request($ng, 'GET', '/v1/audio/../../../etc/passwd');
    ok($out->{status} >= 400 && $out->{body} !~ /root:/,
       "/v1/audio/../../../etc/passwd: $out->{status}, no file");

    for my $m (qw(POST PUT DELETE)) {
        my $p = request($ng, $m, $url, body => '');
        $json_error->($p, 405, "$m /v1/audio/...");
        is($p->{headers}{allow}, 'GET, HEAD', "$m: Allow: GET, HEAD");
    }
}

sub concurrent_cold {
    my ($n, $body) = @_;
    return all_at_once($n, "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
                           . "Content-Type: application/json\r\n"
                           . "Connection: close\r\nContent-Length: "
                           . length($body) . "\r\n\r\n$body",
                       port => $ng->port);
}

{
    my $text = join ' ', map {
        "A hundred listeners want sentence $_ of this story at once."
    } 1 .. 10;
    my $m0 = metrics($ng);
    my ($ready, @res) = concurrent_cold(100, speech_body(input => $text));
    is($ready, 100, '100 clients connected before any sent');
    is(scalar(grep { $_->[0] == 200 } @res), 100, '100 at once: all 200');
    my %tags;
    $tags{ $_->[1] }++ for @res;
    is($tags{MISS} // 0, 1, 'exactly one MISS')
        or diag explain \%tags;
    is($tags{COALESCED} // 0, 99, '99 COALESCED');
    # the 99 get the stored file, the MISS what was streamed
    my %md5 = map { $_->[3] => 1 } grep { $_->[1] eq 'COALESCED' } @res;
    is(scalar keys %md5, 1, '99 identical bodies');

    my $one = speech($ng, input => $text);
    is(cache_tag($one), 'HIT-L1', 'then it is cached');
    is(md5_hex($one->{body}), (keys %md5)[0], 'with the same bytes');
    my $d = audio_duration($one->{body}, 'mp3') // 0;
    my $m1 = metrics($ng);
    my $grew = $m1->{podgen_tts_audio_seconds_total}
             - $m0->{podgen_tts_audio_seconds_total};
    ok($d > 0 && abs($grew - $d) <= 0.15 * $d,
       sprintf('podgen_tts_audio_seconds_total grew by %.2f s for %.2f s of audio',
               $grew, $d));
    is($m1->{'podgen_coalesced_requests_total{kind="audio"}'}
       - $m0->{'podgen_coalesced_requests_total{kind="audio"}'}, 99,
       'podgen_coalesced_requests_total grew by 99');
}

log_clean($ng, 'audio');

# ---- (g) podgen_metrics_record off ------------------------------------------

{
    my $off = node(workers => 2, http => 'podgen_metrics_record off;');
    my $t = 'Nobody counts this sentence.';
    is(cache_tag(speech($off, input => $t)), 'MISS',
       'record off: speech works');
    is(cache_tag(speech($off, input => $t)), 'HIT-L1',
       'record off: and is cached');
    my $r = request($off, 'GET', '/metrics');
    is($r->{status}, 200, 'record off: /metrics still answers 200')
        or diag "got $r->{status}: " . substr($r->{body}, 0, 120);
    my %m;
    for (split /\n/, $r->{body}) {
        $m{$1} = $2 + 0 if /^(podgen_\S+_total\S*)\s+(\S+)$/;
    }
    ok(%m && !grep({ $_ != 0 } values %m),
       'record off: every counter is 0 (' . scalar(keys %m) . ' counters)')
        or diag join "\n", map { "$_ $m{$_}" } grep { $m{$_} } sort keys %m;
    log_clean($off, 'record off');
}

# ---- (i) a large hit is sent from shared memory while it is evicted ---------
#
# Hits of 16 KB and more are not copied: the request pins the entry and
# sends it from the zone.  Here a slow client reads a ~1 MB wav hit while two
# other artifacts push it out of a 3 MB zone; it must still get every byte,
# and the memory must come back once it is done (two new 1 MB artifacts fit
# again side by side).

{
    # (a small send buffer: nginx itself holds most of the response)
    my $ng = node(http => 'podgen_cache_zone pin:3m max_entry=2m;',
                  listen => ' sndbuf=16k');
    my (undef, $wavreq, $raw) = wav_artifacts($ng,
                                   'Pinned, read slowly over a narrow socket,', 9);
    my $p = $wavreq->('P');
    is(cache_tag($p), 'MISS', 'pin: the artifact is made');
    my $plen = length $p->{body};
    ok($plen > 700_000 && $plen < 1_400_000,
       "pin: it is about 1 MB ($plen bytes)");
    # (a streamed MISS carries placeholder RIFF sizes; the stored copy not)
    my $ref = $wavreq->('P');
    is(cache_tag($ref), 'HIT-L1', 'pin: and cached');

    # a client with a 4 KB receive buffer asks for it and reads a little
    my ($s, $got) = slow_client($ng, $raw->('P'));
    like($got, qr/^HTTP\/1\.1 200.*X-Podgen-Cache: HIT-L1/s,
         'pin: the slow client gets a hit');

    # two more artifacts of the same size evict it meanwhile
    is(cache_tag($wavreq->('Q')), 'MISS', 'pin: a second artifact is made');
    is(cache_tag($wavreq->('R')), 'MISS', 'pin: a third one');
    is(cache_tag($wavreq->('P')), 'MISS', 'pin: the pinned one left the index');

    $got = slow_finish($s, $got);
    my ($hdr, $rest) = split /\r\n\r\n/, $got, 2;
    # (the stored copy is longer by its word timings' chunk)
    is(length($rest // ''), length $ref->{body},
       'pin: the slow client got every byte');
    ok(($rest // '') eq $ref->{body}, 'pin: and the same bytes');

    # its memory came back: two fresh artifacts are held at once
    $wavreq->($_) for qw(S T);
    is(cache_tag($wavreq->('S')), 'HIT-L1',
       'pin: the memory came back (1 of 2)');
    is(cache_tag($wavreq->('T')), 'HIT-L1',
       'pin: the memory came back (2 of 2)');
    log_clean($ng, 'pin');
}

# ---- (j) a worker killed while it pins an entry ------------------------------
#
# A worker that dies runs no pool cleanup: its pins would hold their entries
# forever (an evicted one would never give its memory back).  The worker
# the master starts in its place gives them back.

{
    my $ng = node(http => 'podgen_cache_zone pinkill:3m max_entry=2m;',
                  listen => ' sndbuf=16k');
    my (undef, $wavreq, $raw) = wav_artifacts($ng,
                                   'Killed, it stays pinned while its worker dies,', 7);
    is(cache_tag($wavreq->('P')), 'MISS', 'kill: the artifact is made');
    my ($s, $got) = slow_client($ng, $raw->('P'));
    like($got, qr/X-Podgen-Cache: HIT-L1/, 'kill: a slow client pins the hit');

    my ($old) = $ng->worker_pids;
    kill 'KILL', $old;
    close $s;
    my $new;
    my $end = time + 10;
    while (time < $end) {
        ($new) = grep { $_ != $old } $ng->worker_pids;
        last if $new;
        sleep 0.05;
    }
    ok($new, 'kill: the master started another worker');
    ok(wait_for(sub { $ng->error_log =~ /1 cache pins of process $old, which is gone, given back/ }, 5),
       'kill: it gave the dead worker\'s pin back');

    # (~1 MB each: the 3 MB zone holds three, two while 1 MB stays pinned)
    # four more evict it, and its memory comes back: the last three are
    # held at once
    is(cache_tag($wavreq->($_)), 'MISS',
       "kill: artifact $_ is made") for qw(Q R S T);
    is(cache_tag($wavreq->($_)), 'HIT-L1',
       "kill: artifact $_ is held") for qw(R S T);

    $ng->stop;
    my @bad = grep { !/worker process $old exited on signal 9/ }
              $ng->check_error_log;
    ok(!@bad, 'kill: error log clean but for the kill') or diag join "\n", @bad;
}

# ---- an L2 hit too big for this node's L1 ------------------------------------

SKIP: {
    skip 'redis-server is not installed', 4 unless which('redis-server');
    my $redis = start_redis();
    my $rp = $redis->port;
    my $maker = node(http => "podgen_redis 127.0.0.1:$rp prefix=t13:;");
    # this node's L1 holds nothing over 1 KB: Redis answers every time
    my $small = node(http => "podgen_cache_zone small:1m max_entry=1k; "
                             . "podgen_redis 127.0.0.1:$rp prefix=t13:;");
    my $t = 'Made on one node, too big for the first tier of the other.';
    is(cache_tag(speech($maker, input => $t)), 'MISS',
       'L2: made on the first node');
    my $end = time + 3;
    sleep 0.05 while time < $end
        && !`redis-cli -p $rp --scan --pattern 't13:audio:*'`;
    is(cache_tag(speech($small, input => $t)), 'HIT-L2',
       'L2: the other node reads it');
    {
        # an L2 hit that L1 declines must release the node's marker
        my $r = request($small, 'POST', '/v1/audio/speech', headers => \%CT,
                        body => speech_body(input => $t), timeout => 3);
        is(cache_tag($r), 'HIT-L2', 'L2: and again, without waiting');
    }
    $maker->stop;
    $small->stop;
    ok(!$maker->check_error_log && !$small->check_error_log,
       'L2: error logs clean');
}

done_testing;
