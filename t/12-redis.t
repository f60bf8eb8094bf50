# The L2 cache in Redis: two nginx nodes on one real redis-server share
# artifacts byte for byte; Redis going down, or stalling, never fails a
# request, shows in podgen_redis_up, and the nodes reconnect by themselves.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use File::Temp ();
use POSIX ();
use IO::Socket::INET;
use Socket ();

my $JSON = JSON::PP->new->canonical;

my $redis = start_redis();
my $rport = $redis->port;

sub node {
    my $n = Podgen::Test::Nginx->new(
        workers => 2,
        http_config => "podgen_redis 127.0.0.1:$rport timeout=300ms "
                       . "prefix=t12:;",
        config => 'location = /v1/audio/speech { podgen_speech; }
                   location = /v1/scripts { podgen_scripts; }
                   location = /metrics { podgen_metrics; }');
    $n->start;
    return $n;
}

# speech() of this file: voice echo, 30 s
my @ECHO = (voice => 'echo', timeout => 30);

sub redis_cli { system('redis-cli', '-p', $rport, @_) == 0 }

my $a = node();
my $b = node();

ok(wait_for(sub { (metric($a, 'podgen_redis_up') // 0) == 1
                  && (metric($b, 'podgen_redis_up') // 0) == 1 }, 5),
   'both nodes connect: podgen_redis_up 1');

# ---- shared artifacts ------------------------------------------------------

my $ra = speech($a, @ECHO, input => 'Made on node A, heard on node B.');
is($ra->{headers}{'x-podgen-cache'}, 'MISS', 'node A: MISS');
ok(wait_for(sub { `redis-cli -p $rport --scan --pattern 't12:audio:*'` =~ /\S/ },
            3), 'the audio is in Redis under the prefix');

my $rb = speech($b, @ECHO, input => 'Made on node A, heard on node B.');
is($rb->{headers}{'x-podgen-cache'}, 'HIT-L2', 'node B: HIT-L2');
ok(scalar stored_is_streamed($rb->{body}, $ra->{body}, 'mp3'),
   'node B serves the bytes node A made (and made whole: the Info frame)');
my $ra2 = speech($a, @ECHO, input => 'Made on node A, heard on node B.');
is($ra2->{headers}{'x-podgen-cache'}, 'HIT-L1', 'node A: then HIT-L1');
ok($ra2->{body} eq $rb->{body}, 'node A\'s L1 and node B\'s L2: the same file');
{
    # a FLAC made on B, heard from A's L2: the STREAMINFO has its totals
    my @f = (@ECHO, input => 'A lossless file, from Redis.',
             response_format => 'flac');
    my $fb = speech($b, @f);
    my ($key) = ($fb->{headers}{'x-podgen-audio-url'} // '') =~ /([0-9a-f]{64})/;
    $key //= 'none';
    ok(wait_for(sub { `redis-cli -p $rport --scan --pattern 't12:*$key*'`
                      =~ /\S/ }, 3), 'flac: in Redis');
    my $fa = speech($a, @f);
    is($fa->{headers}{'x-podgen-cache'}, 'HIT-L2', 'flac: HIT-L2 on node A');
    my ($same, $why) = stored_is_streamed($fa->{body} // '', $fb->{body}, 'flac');
    ok($same, 'flac from L2: the streamed file, its STREAMINFO complete')
        or diag $why;
}
is(speech($b, @ECHO, input => 'Made on node A, heard on node B.')
       ->{headers}{'x-podgen-cache'}, 'HIT-L1', 'and then from its own L1');
is(metric($b, 'podgen_cache_requests_total{tier="l2",kind="audio",result="hit"}'),
   1, 'L2 hit counted');

my $sb = $JSON->encode({ topic => 'Shared scripts', engine => 'builtin' });
my $sa = request($a, 'POST', '/v1/scripts', body => $sb,
                 headers => { 'Content-Type' => 'application/json' });
ok(wait_for(sub { `redis-cli -p $rport --scan --pattern 't12:script:*'` =~ /\S/ },
            3), 'the script is in Redis');
my $s2 = request($b, 'POST', '/v1/scripts', body => $sb,
                 headers => { 'Content-Type' => 'application/json' });
is($s2->{headers}{'x-podgen-cache'}, 'HIT-L2', 'script: HIT-L2 on node B');
is($JSON->decode($s2->{body})->{cached}, JSON::PP::true, 'script: cached true');
is_deeply($JSON->decode($s2->{body})->{segments},
          $JSON->decode($sa->{body})->{segments}, 'script: same segments');

# ---- single flight across nodes -------------------------------------------

{
    my $text = join ' ', map { "Both nodes want sentence $_ at once." } 1 .. 12;
    my $audio0 = (metric($a, 'podgen_tts_audio_seconds_total') // 0)
               + (metric($b, 'podgen_tts_audio_seconds_total') // 0);
    my @res = in_parallel(16, sub {
        my $r = speech($_[0] % 2 ? $a : $b, @ECHO, input => $text);
        return ($r->{status}, $r->{headers}{'x-podgen-cache'},
                length $r->{body});
    });
    is(scalar(grep { $_->[0] == 200 } @res), 16, 'two nodes, 16 at once: 200s');
    is(scalar(grep { $_->[1] eq 'MISS' } @res), 1,
       'one request in the fleet made the audio');
    is(scalar(grep { $_->[1] eq 'COALESCED' } @res), 15,
       'the 15 others, on both nodes, waited for it');
    my $audio1 = (metric($a, 'podgen_tts_audio_seconds_total') // 0)
               + (metric($b, 'podgen_tts_audio_seconds_total') // 0);
    my $one = speech($a, @ECHO, input => $text);
    my $d = audio_duration($one->{body}, 'mp3');
    ok(abs(($audio1 - $audio0) - $d) < 0.15 * $d,
       sprintf('synthesized once in the fleet: %.1f s for %.1f s of audio',
               $audio1 - $audio0, $d));
    ok(!`redis-cli -p $rport --scan --pattern 't12:lock:*'`,
       'the Redis lock is gone afterwards');
}

# ---- garbage in Redis --------------------------------------------------------
#
# A value that is not what podgen stored (another format byte, an empty
# string, a key of another type, a script that is not JSON) is a miss: the
# node makes the artifact again, answers 200 with the right bytes and puts
# a good value back.

{
    my $new_key = sub {
        my ($pattern, $before) = @_;
        my ($k) = grep { !$before->{$_} } grep { length }
                  split /\n/, `redis-cli -p $rport --scan --pattern '$pattern'`;
        return $k;
    };
    my $keys_now = sub {
        return { map { $_ => 1 } grep { length }
                 split /\n/, `redis-cli -p $rport --scan --pattern '$_[0]'` };
    };
    my $n = 0;
    for my $case ([ 'another format byte', [ 'SET', "\x05garbage" ] ],
                  [ 'an empty string', [ 'SET', '' ] ],
                  [ 'a list', [ 'DEL' ], [ 'RPUSH', 'a', 'b' ] ]) {
        my ($name, @cmds) = @$case;
        my $text = 'Garbage in Redis, case ' . ++$n . '.';
        my $before = $keys_now->('t12:audio:*');
        my $ra = speech($a, @ECHO, input => $text);
        my $key;
        wait_for(sub { $key = $new_key->('t12:audio:*', $before) }, 3);
        ok($key, "garbage ($name): A stored the audio");
        for my $c (@cmds) {
            my ($cmd, @args) = @$c;
            system('redis-cli', '-p', $rport, $cmd, $key, @args);
        }
        my $rb = speech($b, @ECHO, input => $text);
        is($rb->{status}, 200, "garbage ($name): B answers 200");
        isnt($rb->{headers}{'x-podgen-cache'}, 'HIT-L2',
             "garbage ($name): not as a hit");
        ok($rb->{body} eq $ra->{body}, "garbage ($name): the right bytes");
        ok(wait_for(sub { (`redis-cli -p $rport STRLEN $key` + 0)
                          > length $ra->{body} }, 3),
           "garbage ($name): a good value is back in Redis");
    }

    my $sb = $JSON->encode({ topic => 'Garbage scripts', engine => 'builtin' });
    my $before = $keys_now->('t12:script:*');
    my $sa = request($a, 'POST', '/v1/scripts', body => $sb,
                     headers => { 'Content-Type' => 'application/json' });
    my $key;
    wait_for(sub { $key = $new_key->('t12:script:*', $before) }, 3);
    ok($key && system('redis-cli', '-p', $rport, 'SET', $key,
                      '{"title": [not json') == 0,
       'garbage script: the value in Redis is not JSON');
    my $s2 = request($b, 'POST', '/v1/scripts', body => $sb,
                     headers => { 'Content-Type' => 'application/json' });
    is($s2->{status}, 200, 'garbage script: B answers 200');
    isnt($s2->{headers}{'x-podgen-cache'}, 'HIT-L2', 'garbage script: not a hit');
    is_deeply(($JSON->decode($s2->{body}) // {})->{segments},
              $JSON->decode($sa->{body})->{segments},
              'garbage script: the same segments');
}

# ---- values far larger than one read ---------------------------------------
#
# A node whose L1 keeps nothing over 1 KB answers GET /v1/audio/<key> from
# Redis every time.  Values of 300 KB, 3 MB and 20 MB (stored straight into
# Redis: the format byte, then the bytes) arrive over many reads, several
# replies share one pipelined connection per worker, a slow client holds
# its reply while the others go on, and the 20 MB one is larger than the
# read buffer a worker keeps between replies.

sub redis_set_raw {
    my ($key, $value) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport)
        or die "redis: $!";
    binmode $s;
    print $s join '', "*3\r\n", map { '$' . length($_) . "\r\n$_\r\n" }
                                  'SET', $key, $value;
    my $ok = <$s>;
    close $s;
    return ($ok // '') =~ /^\+OK/;
}

{
    my $l = Podgen::Test::Nginx->new(
        workers => 2,
        listen_options => ' sndbuf=16k',
        http_config => 'podgen_cache_zone l2only:1m max_entry=1k; '
                       . "podgen_redis 127.0.0.1:$rport timeout=2s prefix=t12:;",
        config => 'location /v1/audio/ { podgen_audio; }
                   location = /metrics { podgen_metrics; }');
    $l->start;
    ok(wait_for(sub { (metric($l, 'podgen_redis_up') // 0) == 1 }, 5),
       'large: the node connects');

    my %value;
    my $n = 0;
    for my $size (300_000, 3_000_000, 20_000_000) {
        $n++;
        my $hex = sprintf '%064x', 0xbeef00 + $n;
        # bytes that differ all along, so a misplaced piece shows
        my $bytes = join '', map { pack 'N', $_ * 2654435761 % 4294967291 }
                             1 .. $size / 4;
        ok(redis_set_raw("t12:audio:$hex", chr(3) . $bytes),
           "large: a $size-byte wav is in Redis");
        $value{$hex} = $bytes;
    }
    my @keys = sort keys %value;

    # a client that reads slowly, from a small window, holds its reply
    my ($s, $slow) = slow_client($l, "GET /v1/audio/$keys[1].wav HTTP/1.1\r\n"
                                     . "Host: localhost\r\n"
                                     . "Connection: close\r\n\r\n");
    like($slow, qr/^HTTP\/1\.1 200.*X-Podgen-Cache: HIT-L2/s,
         'large: the slow client has begun its reply');

    # meanwhile, 12 clients at once ask for all three
    my @res = in_parallel(12, sub {
        my $hex = $keys[$_[0] % 3];
        my $r = request($l, 'GET', "/v1/audio/$hex.wav", timeout => 60);
        return ($r->{status}, $r->{headers}{'x-podgen-cache'},
                length($r->{body} // ''),
                ($r->{body} // '') eq $value{$hex} ? 1 : 0);
    });
    is(scalar(grep { $_->[0] == 200 && $_->[1] eq 'HIT-L2' } @res), 12,
       'large: 12 at once, all HIT-L2')
        or diag explain \@res;
    is(scalar(grep { $_->[3] } @res), 12, 'large: every body byte-identical');

    # the slow client reads the rest
    $slow = slow_finish($s, $slow);
    my (undef, $rest) = split /\r\n\r\n/, $slow, 2;
    ok(($rest // '') eq $value{$keys[1]},
       'large: the slow client got the 3 MB, byte for byte');

    my $part = request($l, 'GET', "/v1/audio/$keys[2].wav",
                       headers => { Range => 'bytes=19999000-19999999' });
    is($part->{status}, 206, 'large: a range of the 20 MB value');
    ok($part->{body} eq substr($value{$keys[2]}, 19_999_000, 1000),
       'large: the right 1000 bytes');

    # and a short value after the long ones: the reader is in step
    ok(redis_set_raw("t12:audio:" . ('a' x 64), chr(3) . 'tiny'),
       'large: a 4-byte value too');
    my $tiny = request($l, 'GET', '/v1/audio/' . ('a' x 64) . '.wav');
    is($tiny->{body}, 'tiny', 'large: then a 4-byte value is right');

    $l->stop;
    my @bad = $l->check_error_log;
    ok(!@bad, 'large: error log clean') or diag join "\n", @bad;
}

# ---- ttl= in milliseconds ---------------------------------------------------

{
    my $c = Podgen::Test::Nginx->new(
        http_config => "podgen_redis 127.0.0.1:$rport ttl=1500ms prefix=t12ttl:;",
        config => 'location = /v1/audio/speech { podgen_speech; }');
    $c->start;
    my $r;
    ok(wait_for(sub { $r = speech($c, @ECHO, input => 'A short life in Redis.');
                      $r->{status} == 200 }, 5), 'ttl: speech 200');
    my ($key) = ('');
    wait_for(sub { ($key) = grep { length }
                            split /\n/, `redis-cli -p $rport --scan --pattern 't12ttl:audio:*'`;
                   $key }, 3);
    my $pttl = $key ? `redis-cli -p $rport PTTL $key` + 0 : -3;
    ok($pttl > 500 && $pttl <= 1500,
       "ttl=1500ms: the artifact's PTTL is $pttl ms");
    ok(wait_for(sub { !(`redis-cli -p $rport EXISTS $key` + 0) }, 3),
       'ttl=1500ms: and then it is gone');
    $c->stop;
    my @bad = $c->check_error_log;
    ok(!@bad, 'ttl: error log clean') or diag join "\n", @bad;
}

# ---- Redis stalls ----------------------------------------------------------

my $err0 = metric($a, 'podgen_redis_errors_total');
redis_cli('client', 'pause', '2000', 'ALL');
my $t0 = time;
my $slow = speech($a, @ECHO, input => 'Redis is stalled right now.');
my $took = time - $t0;
is($slow->{status}, 200, 'Redis stalled: still 200');
cmp_ok($took, '<', 1.5, sprintf('answered without waiting for Redis (%.2f s)',
                                $took));
cmp_ok(metric($a, 'podgen_redis_errors_total'), '>', $err0,
       'podgen_redis_errors_total counts the timeout');
sleep 2.2;
ok(wait_for(sub { (metric($a, 'podgen_redis_up') // 0) == 1 }, 8),
   'node A reconnects after the stall');

# ---- Redis goes away -------------------------------------------------------

$redis->stop;
ok(wait_for(sub { my $r = speech($a, @ECHO, input => 'Redis is gone.');
                  $r->{status} == 200 }, 3), 'Redis down: speech still 200');
my $gone = speech($a, @ECHO, input => 'Redis is gone, again.');
is($gone->{status}, 200, 'Redis down: another 200');
is($gone->{headers}{'x-podgen-cache'}, 'MISS', 'made locally');
ok(wait_for(sub { (metric($a, 'podgen_redis_up') // 1) == 0 }, 3),
   'podgen_redis_up 0');

$redis = start_redis(port => $rport);
ok(wait_for(sub { (metric($a, 'podgen_redis_up') // 0) == 1
                  && (metric($b, 'podgen_redis_up') // 0) == 1 }, 10),
   'both nodes reconnect when Redis is back');
my $back = speech($a, @ECHO, input => 'Redis is back.');
is($back->{status}, 200, 'after the return: 200');
ok(wait_for(sub { `redis-cli -p $rport --scan --pattern 't12:audio:*'` =~ /\S/ },
            3), 'and artifacts go to Redis again');

for my $n ($a, $b) {
    $n->stop;
    my @bad = $n->check_error_log;
    ok(!@bad, 'error log clean') or diag join "\n", @bad;
}

done_testing;
