# Scale-out: two nginx nodes (A and B: own nginx prefixes, ports and job
# stores, 2 workers each) on one real redis-server, one Redis key prefix.
#
#   (a) speech made on A is an HIT-L2 on B, byte for byte;
#   (b) 50 identical concurrent cold requests split over A and B: exactly
#       one synthesis in the fleet, 50 identical bodies;
#   (c) a podcast posted on A is visible on B, is followed to completion
#       from B, and its audio is the same bytes from A and from B;
#   (e) a real Prometheus scrapes both nodes: its query API returns
#       podgen_requests_total for both instances;
#   (d) the node that took a long job is killed (-9, master and workers)
#       mid-run: the other node takes it over (~10 s later) and finishes
#       it, and the episode decodes;
#   (f) error logs clean (the killed node's: up to the kill).
#
# (e) runs before (d): Prometheus needs both nodes alive.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use POSIX ();
use IO::Socket::IP;
use Digest::MD5 qw(md5_hex);
use File::Temp ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my $T0 = time;

my $redis = start_redis();
my $rport = $redis->port;

# One synthesis thread per worker: the long job of (d) then lasts long
# enough to be killed in the middle, whatever the machine.
sub node {
    my ($name) = @_;
    my $n = Podgen::Test::Nginx->new(
        workers => 2,
        main_config => 'thread_pool default threads=1 max_queue=4096;',
        http_config => "podgen_redis 127.0.0.1:$rport prefix=t18: "
                       . "timeout=1s;
                        podgen_store store;
                        podgen_tts_parallelism 1;
                        client_body_buffer_size 64k;",
        config => 'location = /v1/audio/speech { podgen_speech; }
                   location /v1/audio/ { podgen_audio; }
                   location /v1/podcasts { podgen_podcasts; }
                   location = /metrics { podgen_metrics; }');
    $n->{name} = $name;
    $n->start;
    return $n;
}

sub redis_keys {
    my ($pattern) = @_;
    return grep { length } split /\n/,
        `redis-cli -p $rport --scan --pattern '$pattern'`;
}

my $A = node('A');
my $B = node('B');
$_->mark_error_log for $A, $B;

ok(wait_for(sub { (metrics($A)->{podgen_redis_up} // 0) == 1
                  && (metrics($B)->{podgen_redis_up} // 0) == 1 }, 10),
   'both nodes are connected to Redis');

# ---- Prometheus, started now so that it scrapes while the rest runs ----------

my $prom;
my $pport;
my $pdir = File::Temp::tempdir('podgen-prom-XXXXXX', TMPDIR => 1,
                               CLEANUP => !$ENV{PODGEN_TEST_KEEP});
my @targets = map { '127.0.0.1:' . $_->port } $A, $B;
if (my $bin = which('prometheus')) {
    my $list = join ', ', map { "'$_'" } @targets;
    open my $cf, '>', "$pdir/prometheus.yml" or die "$pdir: $!";
    print $cf <<"EOF";
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: podgen
    metrics_path: /metrics
    static_configs:
      - targets: [$list]
EOF
    close $cf;
    $pport = free_port();
    $prom = eval {
        Podgen::Test::Process->spawn(
            cmd => [ $bin, "--config.file=$pdir/prometheus.yml",
                     "--storage.tsdb.path=$pdir/data",
                     "--web.listen-address=127.0.0.1:$pport",
                     '--log.level=warn' ],
            port => $pport, dir => $pdir, log => "$pdir/prometheus.log",
            timeout => 30);
    };
    diag("prometheus did not start: $@") unless $prom;
}

# ---- (a) made on A, an L2 hit on B ---------------------------------------------

{
    my $text = 'Node A makes this sentence; node B finds it in Redis.';
    my $ra = speech($A, input => $text);
    is(cache_tag($ra), 'MISS', '(a) node A: MISS');
    ok(wait_for(sub { redis_keys('t18:audio:*') }, 5),
       '(a) the audio reached Redis');
    my $rb = speech($B, input => $text);
    is(cache_tag($rb), 'HIT-L2', '(a) node B: HIT-L2');
    # the stored copy: what was streamed, its Info frame filled in
    ok($rb->{status} == 200 && length $rb->{body}
       && stored_is_streamed($rb->{body}, $ra->{body}, 'mp3'),
       sprintf('(a) the same file (%d and %d bytes)', length $ra->{body},
               length $rb->{body}));
}

# ---- (b) 50 identical cold requests over both nodes ------------------------------

# $n requests with the same body, alternately to A and B; every client is
# connected before any sends.  Returns [status, cache tag, length, md5]s.
sub concurrent_cold {
    my ($n, $body) = @_;
    return all_at_once($n, "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
                           . "Content-Type: application/json\r\n"
                           . "Connection: close\r\nContent-Length: "
                           . length($body) . "\r\n\r\n$body",
                       port => sub { ($_[0] % 2 ? $A : $B)->port });
}

my $L1_MISS = 'podgen_cache_requests_total{tier="l1",kind="audio",result="miss"}';
my $L2_HIT  = 'podgen_cache_requests_total{tier="l2",kind="audio",result="hit"}';
my $AUDIO_S = 'podgen_tts_audio_seconds_total';

# Every L1 miss is answered from L2 (at once, or after waiting for the
# node that holds the Redis lock) or by a synthesis: syntheses in the
# fleet = the L1 audio misses of both nodes - their L2 audio hits.
sub fleet {
    my %s;
    for my $n ($A, $B) {
        my $m = metrics($n);
        $s{$_} += $m->{$_} // 0 for $L1_MISS, $L2_HIT, $AUDIO_S;
    }
    return \%s;
}

{
    my $text = join ' ', map {
        "Fifty listeners on two nodes want sentence $_ of this story."
    } 1 .. 8;
    my $m0 = fleet();
    my ($ready, @res) = concurrent_cold(50, speech_body(input => $text));
    my $m1 = fleet();
    is($ready, 50, '(b) 50 clients connected before any sent');
    is(scalar(grep { $_->[0] == 200 } @res), 50, '(b) 50 x 200');
    my %tags;
    $tags{ $_->[1] }++ for @res;
    is($tags{MISS} // 0, 1, '(b) exactly one MISS in the fleet')
        or diag explain \%tags;
    # the 49 get the stored file, the MISS what it streamed
    my %md5 = map { $_->[3] => 1 } grep { $_->[1] ne 'MISS' } @res;
    is(scalar keys %md5, 1, '(b) 49 identical bodies');
    my $synth = ($m1->{$L1_MISS} - $m0->{$L1_MISS})
              - ($m1->{$L2_HIT} - $m0->{$L2_HIT});
    is($synth, 1, sprintf('(b) one synthesis: L1 audio misses %d - L2 audio '
                          . 'hits %d, summed over A and B',
                          $m1->{$L1_MISS} - $m0->{$L1_MISS},
                          $m1->{$L2_HIT} - $m0->{$L2_HIT}));
    my $one = speech($B, input => $text);
    is(md5_hex($one->{body}), (keys %md5)[0], '(b) the cached copy is the same');
    my $d = audio_duration($one->{body}, 'mp3') // 0;
    my $grew = $m1->{$AUDIO_S} - $m0->{$AUDIO_S};
    ok($d > 0 && abs($grew - $d) <= 0.15 * $d,
       sprintf('(b) podgen_tts_audio_seconds_total over both nodes grew by '
               . '%.2f s for %.2f s of audio', $grew, $d));
}

# ---- (c) a podcast made through A, seen from B ----------------------------------

{
    my ($r, $j) = post_podcast($A, {
        title => 'Two nodes', format => 'mp3',
        hosts => [ { name => 'Ann', voice => 'alloy' },
                   { name => 'Bob', voice => 'echo' } ],
        segments => [
            { speaker => 'Ann', text => 'Welcome to a show made by a fleet.' },
            { speaker => 'Bob', text => 'Any node can answer for it.' },
            { speaker => 'Ann', text => 'And Redis keeps the record.' } ] });
    is($r->{status}, 202, '(c) POST on A: 202');
    my $id = $j->{id} // 'none';
    my ($rb, $jb) = get($B, "/v1/podcasts/$id");
    is($rb->{status}, 200, '(c) GET on B: 200');
    is_deeply([ @{ $jb // {} }{qw(id title format created_at)} ],
              [ @$j{qw(id title format created_at)} ],
              '(c) B shows the record A accepted');
    my $done = wait_job($B, $id, 30);
    is($done->{status}, 'completed', '(c) followed to completion from B')
        or diag explain $done;
    my (undef, $ja) = get($A, "/v1/podcasts/$id");
    (undef, $jb) = get($B, "/v1/podcasts/$id");
    is_deeply($jb, $ja, '(c) A and B answer the same completed record');
    my $aa = request($A, 'GET', "/v1/podcasts/$id/audio");
    my $ab = request($B, 'GET', "/v1/podcasts/$id/audio");
    is("$aa->{status} $ab->{status}", '200 200', '(c) audio from A and B: 200');
    ok(length $aa->{body} && $aa->{body} eq $ab->{body},
       sprintf('(c) the same %d bytes from both', length $aa->{body}));
    my $d = audio_duration($ab->{body}, 'mp3');
    ok($d && $d > 3, sprintf('(c) the episode decodes: %.1f s', $d // 0));
}

# ---- (g) the library of the fleet ------------------------------------------------
#
# The list and the feed come from Redis: both nodes show every podcast of
# the fleet, whichever node accepted or ran it, newest first, with the same
# pages; a podcast deleted through one node leaves both lists and feeds.

{
    my @ids;
    for my $i (1 .. 3) {
        my $n = $i == 2 ? $B : $A;
        my ($r, $j) = post_podcast($n, {
            title => "Fleet library $i", format => 'mp3',
            hosts => [ { name => 'Ann', voice => 'alloy' } ],
            segments => [ { speaker => 'Ann',
                            text => "Episode $i of the fleet's library." } ] });
        is($r->{status}, 202, "(g) podcast $i accepted by $n->{name}");
        push @ids, $j->{id} // "none$i";
        sleep 0.01;
    }
    for my $id (@ids) {
        my $done = wait_job($A, $id, 60);
        is($done->{status}, 'completed', "(g) $id completed");
    }

    my %list;
    for my $n ($A, $B) {
        my ($r, $j) = get($n, '/v1/podcasts?limit=100');
        is($r->{status}, 200, "(g) list on $n->{name}: 200");
        $list{$n->{name}} = [ map { $_->{id} } @{ $j->{data} // [] } ];
    }
    is_deeply($list{B}, $list{A}, '(g) A and B list the same podcasts');
    my %on_a = map { $_ => 1 } @{ $list{A} };
    is(scalar(grep { $on_a{$_} } @ids), 3,
       '(g) the list has the podcasts of both nodes');
    is_deeply($list{A}, [ sort { $b cmp $a } @{ $list{A} } ],
              '(g) newest first');
    ok(@{ $list{A} } >= 4, '(g) and the one of (c): ' . scalar @{ $list{A} });

    # pages of 2 from B, then of 1 from A, give the same list
    for my $p ([ $B, 2 ], [ $A, 1 ]) {
        my ($n, $limit) = @$p;
        my (@paged, $cursor, $pages);
        while (1) {
            my $q = "/v1/podcasts?limit=$limit"
                    . ($cursor ? "&cursor=$cursor" : '');
            my ($r, $j) = get($n, $q);
            last unless $r->{status} == 200 && ++$pages < 50;
            push @paged, map { $_->{id} } @{ $j->{data} };
            last unless $j->{has_more};
            $cursor = $j->{next_cursor};
        }
        is_deeply(\@paged, $list{A},
                  "(g) pages of $limit on $n->{name} give the same list");
    }

    my %feed;
    for my $n ($A, $B) {
        my $f = request($n, 'GET', '/v1/podcasts/feed.xml');
        is($f->{status}, 200, "(g) feed on $n->{name}: 200");
        $feed{$n->{name}} = [ $f->{body} =~ m{/v1/podcasts/(pod_[0-9a-f]+)/audio}g ];
    }
    is_deeply($feed{B}, $feed{A}, '(g) A and B have the same feed');
    my %in_feed = map { $_ => 1 } @{ $feed{A} };
    is(scalar(grep { $in_feed{$_} } @ids), 3,
       '(g) the feed has the episodes of both nodes');

    # a record from before the library had its index (an upgrade): listed
    # once a node starts its workers and walks the records
    my $src = `redis-cli -p $rport GET t18:job:$ids[1]`;
    chomp $src;
    my $old = 'pod_000000000001abcdef01';
    (my $rec = $src) =~ s/\Q$ids[1]\E/$old/g;
    ok(length $rec > 100
       && system('redis-cli', '-p', $rport, 'SET', "t18:job:$old", $rec) == 0,
       '(g) an unindexed record is in Redis');
    my $has = sub {
        my ($n, $id) = @_;
        my (undef, $j) = get($n, '/v1/podcasts?limit=100');
        return scalar grep { $_->{id} eq $id } @{ $j->{data} // [] };
    };
    ok(!$has->($B, $old), '(g) the list does not know it yet');
    system('redis-cli', '-p', $rport, 'DEL', 't18:podcasts:indexed');
    $A->reload;
    ok(wait_for(sub { $has->($B, $old) }, 10),
       '(g) after a reload of A, B lists it');
    like(request($B, 'GET', '/v1/podcasts/feed.xml')->{body}, qr/\Q$old\E/,
         '(g) and it is in the feed (completed)');
    ok(wait_for(sub { redis_keys('t18:podcasts:indexed') }, 5),
       '(g) the walk is marked done');
    is(request($A, 'DELETE', "/v1/podcasts/$old")->{status}, 204,
       '(g) DELETE of the old record: 204');

    # a record that is not JSON, listed in the index: skipped by the list,
    # a clean error for its status
    my $bad = 'pod_000000000002abcdef02';
    system('redis-cli', '-p', $rport, 'SET', "t18:job:$bad", '{"id": [oops');
    system('redis-cli', '-p', $rport, 'ZADD', 't18:podcasts', '0', $bad);
    {
        my ($r, $j) = get($B, '/v1/podcasts?limit=100');
        is($r->{status}, 200, '(g) a corrupt record: the list still answers');
        ok(!grep({ $_->{id} eq $bad } @{ $j->{data} // [] }),
           '(g) without the corrupt record');
        my ($rs, $js) = get($B, "/v1/podcasts/$bad");
        ok($rs->{status} >= 400 && $rs->{status} != 502 && $js
           && $js->{error}, "(g) its status: a JSON error ($rs->{status})");
    }
    system('redis-cli', '-p', $rport, 'DEL', "t18:job:$bad");

    # deleted through B: gone from both
    is(request($B, 'DELETE', "/v1/podcasts/$ids[0]")->{status}, 204,
       '(g) DELETE through B: 204');
    for my $n ($A, $B) {
        my (undef, $j) = get($n, '/v1/podcasts?limit=100');
        ok(!grep({ $_->{id} eq $ids[0] } @{ $j->{data} // [] }),
           "(g) the deleted podcast left the list on $n->{name}");
        my $f = request($n, 'GET', '/v1/podcasts/feed.xml');
        ok(index($f->{body}, $ids[0]) < 0,
           "(g) and the feed on $n->{name}");
    }
}

# ---- (e) Prometheus has both nodes ------------------------------------------------


SKIP: {
    skip 'prometheus is not installed or did not start', 3 unless $prom;
    my %want = map { $_ => 1 } @targets;
    my %seen;
    my $res;
    my $t0 = time;
    wait_for(sub {
        $res = prom_query($pport, 'podgen_requests_total{job="podgen",'
                                  . 'endpoint="speech",code="200"}') or return 0;
        %seen = map { $_->{metric}{instance} => $_->{value}[1] } @$res;
        return !grep { !$seen{$_} } @targets;
    }, 20);
    ok(!grep({ !$seen{$_} } @targets),
       sprintf('(e) podgen_requests_total{endpoint="speech",code="200"} for '
               . 'both instances after %.1f s: %s', time - $t0,
               join(', ', map { "$_=" . ($seen{$_} // '-') } @targets)))
        or diag explain($res), "\n", $prom->log;
    my $up = prom_query($pport, 'up{job="podgen"}') // [];
    is(scalar(grep { $want{ $_->{metric}{instance} } && $_->{value}[1] eq '1' }
              @$up), 2, '(e) up is 1 for both targets');
    my $sum = prom_query($pport, 'sum(podgen_requests_total{job="podgen"})') // [];
    ok(@$sum && $sum->[0]{value}[1] > 50,
       '(e) sum over the fleet: ' . (@$sum ? $sum->[0]{value}[1] : '-'));
    $prom->stop;
    unlike($prom->log, qr/level=error/, '(e) prometheus logged no error')
        or diag $prom->log;
}

# ---- (d) the node running a long job is killed --------------------------------------

my $killed;
{
    # 16 segments of about 70 words, two voices: several seconds of
    # synthesis on one thread
    my @src = map {
        my $f = "t/data/source-$_.txt";
        open my $fh, '<', $f or die "$f: $!";
        local $/;
        my $t = <$fh>;
        $t =~ s/\s+/ /g;
        grep { length > 20 } split /(?<=[.!?])\s+/, $t;
    } qw(bread history sleep);
    my @segs;
    my $i = 0;
    while (@segs < 16 && $i < @src) {
        my $t = '';
        $t .= ($t eq '' ? '' : ' ') . $src[$i++]
            while $i < @src && length $t < 420;
        push @segs, { speaker => @segs % 2 ? 'Bob' : 'Ann', text => $t };
    }
    my ($r, $j) = post_podcast($A, {
        title => 'The long one', format => 'mp3',
        hosts => [ { name => 'Ann', voice => 'slt' },
                   { name => 'Bob', voice => 'rms' } ],
        segments => \@segs });
    is($r->{status}, 202, sprintf('(d) POST of a %d-segment job on A: 202',
                                  scalar @segs));
    my $id = $j->{id} // 'none';

    # who took it?
    my $owner;
    wait_for(sub {
        for my $n ($A, $B) {
            $owner = $n, return 1
                if $n->error_log =~ /job "\Q$id\E" taken from the stream/;
        }
        return 0;
    }, 10);
    ok($owner, '(d) a node took the job from the stream: '
               . ($owner ? $owner->{name} : 'none'));
    $owner //= $A;
    my $other = $owner == $A ? $B : $A;

    # kill it in the middle: a segment done, most still to do
    my $st = {};
    my $t0 = time;
    wait_for(sub {
        (undef, $st) = get($other, "/v1/podcasts/$id", timeout => 5);
        $st //= {};
        my $p = $st->{progress} // {};
        return ($st->{status} // '') =~ /^(?:completed|failed)$/
            || (($p->{done} // 0) >= 1 && ($p->{total} // 0) > 0);
    }, 40);
    my $p = $st->{progress} // {};
    ok(($st->{status} // '') eq 'running' && ($p->{done} // 0) >= 1
       && $p->{done} < $p->{total} - 2,
       sprintf('(d) running on %s, %d/%d segments done after %.1f s',
               $owner->{name}, $p->{done} // -1, $p->{total} // -1,
               time - $t0)) or diag explain $st;

    my @bad = $owner->check_error_log(1);
    ok(!@bad, "(d) node $owner->{name}: error log clean up to the kill")
        or diag join "\n", @bad;
    my @pids = ($owner->master_pid, $owner->worker_pids);
    kill 'KILL', @pids;
    my $tk = time;
    ok(wait_for(sub { !grep { Podgen::Test::_pid_alive($_) } @pids }, 5),
       "(d) node $owner->{name} killed (-9: master and "
       . (@pids - 1) . ' workers)');
    $owner->{master} = undef;
    $killed = $owner;

    my $done = wait_job($other, $id, 60);
    my $took = time - $tk;
    is($done->{status}, 'completed',
       sprintf('(d) node %s finished it, %.1f s after the kill',
               $other->{name}, $took)) or diag explain $done;
    like($other->error_log, qr/job "\Q$id\E" taken from the stream/,
         "(d) node $other->{name} took it over from the stream");
    my $au = request($other, 'GET', "/v1/podcasts/$id/audio", timeout => 30);
    is($au->{status}, 200, "(d) its audio from node $other->{name}: 200");
    SKIP: {
        my $ffprobe = which('ffprobe');
        skip 'ffprobe is not installed', 1 unless $ffprobe;
        my $f = "$pdir/episode.mp3";
        open my $fh, '>:raw', $f or die "$f: $!";
        print $fh $au->{body};
        close $fh;
        my $dur = `$ffprobe -v error -show_entries format=duration -of csv=p=0 $f 2>&1`;
        chomp $dur;
        ok($? == 0 && $dur =~ /^[\d.]+$/ && $dur > 60
           && abs($dur - ($done->{duration_s} // 0)) < 1,
           "(d) ffprobe: the episode lasts $dur s (the record says "
           . ($done->{duration_s} // '-') . ' s)');
    }
}

# ---- (f) error logs --------------------------------------------------------------------

for my $n ($A, $B) {
    next if $killed && $n == $killed;
    $n->stop;
    my @bad = $n->check_error_log;
    ok(!@bad, "(f) node $n->{name}: error log clean") or diag join "\n", @bad;
}

note(sprintf 'took %.1f s', time - $T0);
done_testing;
