# A worker killed (-9) while it makes speech: nothing of its work may stall
# the node.  Its single-flight marker in L1 names it, so the worker the
# master starts in its place removes it, and a request waiting for it on
# another worker takes the work over at its next look; the gauges it moved
# (requests in flight, tasks on the pool) come back to zero.
#
# Before: the marker had no owner and lived 300 s, so the same request
# waited (COALESCED) until then, and podgen_inflight_requests stayed at 1.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use IO::Socket::IP;
use IO::Select;
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my $LOCATIONS = 'location = /v1/audio/speech { podgen_speech; }
                 location = /metrics { podgen_metrics; }';

# long enough to be killed in the middle: ~34 sentences, several seconds
sub long_text {
    my ($tag) = @_;
    return join ' ', map {
        "The $tag story goes on with sentence number $_, which takes "
        . "flite a little while to say out loud."
    } 1 .. 34;
}

# A client that sends the request and reads until the header is complete;
# the socket stays open (the server keeps working for it).
sub open_speech {
    my ($ng, $text) = @_;
    my $body = speech_body(input => $text);
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                PeerPort => $ng->port, Timeout => 5)
        or die "connect: $!";
    print $s "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Type: application/json\r\nConnection: close\r\n"
             . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    return $s;
}

# The header of a response on $s (undef after $timeout s).
sub read_head {
    my ($s, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $end = time + $timeout;
    while (time < $end && $buf !~ /\r\n\r\n/) {
        last unless $sel->can_read($end - time);
        my $n = sysread $s, $buf, 4096, length $buf;
        last unless $n;
    }
    return $buf =~ /\r\n\r\n/ ? $buf : undef;
}

# The worker whose socket talks to the client socket $s: the server side
# of the connection in /proc/net/tcp, then which worker has its inode.
sub worker_of {
    my ($ng, $s) = @_;
    my $cport = sprintf '%04X', $s->sockport;
    my $sport = sprintf '%04X', $ng->port;
    my $inode;
    open my $fh, '<', '/proc/net/tcp' or return undef;
    while (<$fh>) {
        my @f = split;
        next unless @f > 9;
        if ($f[1] =~ /:$sport$/ && $f[2] =~ /:$cport$/) { $inode = $f[9]; last }
    }
    close $fh;
    return undef unless $inode;
    for my $pid ($ng->worker_pids) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink $fd // next;
            return $pid if $l eq "socket:[$inode]";
        }
    }
    return undef;
}

sub new_worker {
    my ($ng, @old) = @_;
    my %old = map { $_ => 1 } @old;
    my $new;
    wait_for(sub {
        ($new) = grep { !$old{$_} } $ng->worker_pids;
        return $new && scalar($ng->worker_pids) >= 1;
    }, 10);
    return $new;
}

sub gauge {
    my ($ng, $name) = @_;
    return metric($ng, $name) // -1;
}

# ---- (a) one worker: killed mid-stream, the same request again ---------------

{
    my $ng = Podgen::Test::Nginx->new(workers => 1, config => $LOCATIONS);
    $ng->start;
    my $text = long_text('killed');

    my $s = open_speech($ng, $text);
    my $head = read_head($s, 30) // '';
    like($head, qr/X-Podgen-Cache: MISS/, '(a) a cold request streams');
    ok(wait_for(sub { gauge($ng, 'podgen_inflight_requests{endpoint="speech"}') >= 1 }, 5),
       '(a) it is in flight');

    my ($old) = $ng->worker_pids;
    kill 'KILL', $old;
    close $s;
    my $new = new_worker($ng, $old);
    ok($new, '(a) the master started another worker');

    ok(wait_for(sub { $ng->error_log =~ /cache markers of processes that are gone removed/ }, 5),
       '(a) the new worker removed the dead worker\'s marker');

    my $t0 = time;
    my $r = speech($ng, input => $text, timeout => 60);
    my $took = time - $t0;
    is($r->{status}, 200, sprintf('(a) the same request again: 200 in %.1f s',
                                  $took));
    is(cache_tag($r), 'MISS', '(a) made anew, not waiting for the dead maker');
    my $d = audio_duration($r->{body}, 'mp3') // 0;
    ok($d > 20, sprintf('(a) the whole audio: %.1f s', $d));

    ok(wait_for(sub {
           gauge($ng, 'podgen_inflight_requests{endpoint="speech"}') == 0
           && gauge($ng, 'podgen_thread_pool_queue') == 0
       }, 10),
       '(a) podgen_inflight_requests and podgen_thread_pool_queue back to 0')
        or diag explain metrics($ng);

    $ng->stop;
    my @bad = grep { !/worker process $old exited on signal 9/ }
              $ng->check_error_log;
    ok(!@bad, '(a) error log clean but for the kill') or diag join "\n", @bad;
}

# ---- (b) two workers: a waiter on the other worker takes the work over -------

{
    my $ng = Podgen::Test::Nginx->new(workers => 2, config => $LOCATIONS);
    $ng->start;
    my $text = long_text('second');

    my $a = open_speech($ng, $text);
    my $ahead = read_head($a, 30) // '';
    like($ahead, qr/X-Podgen-Cache: MISS/, '(b) the maker streams');
    my $maker = worker_of($ng, $a);
    ok($maker, '(b) the maker\'s worker: ' . ($maker // 'unknown'));

    # the same request on the other worker (connections go to either)
    my ($b, $waiter);
    for (1 .. 40) {
        $b = open_speech($ng, $text);
        sleep 0.1;
        $waiter = worker_of($ng, $b);
        last if $waiter && $maker && $waiter != $maker;
        close $b;
        undef $b;
    }
    ok($b, '(b) an identical request on the other worker ('
           . ($waiter // 'none') . ') waits');

    SKIP: {
        skip 'no request landed on the other worker', 4 unless $b && $maker;
        ok(!defined read_head($b, 0.5), '(b) it has no answer yet: it waits');

        kill 'KILL', $maker;
        close $a;
        my $t0 = time;
        my $head = read_head($b, 30) // '';
        my $took = time - $t0;
        like($head, qr/^HTTP\/1\.1 200/, sprintf('(b) the waiter answers %.1f s '
                                                 . 'after the kill', $took));
        ok($took < 5, '(b) within one look at the marker, not its 300 s life');

        # the rest of the stream, whole
        my $body = '';
        my $sel = IO::Select->new($b);
        my $end = time + 60;
        while (time < $end && $sel->can_read($end - time)) {
            my $n = sysread $b, $body, 65536, length $body;
            last unless $n;
        }
        like($ng->error_log, qr/the maker of a cache entry \(process $maker\) is gone, made here/,
             '(b) the log says who took it over');
    }
    close $b if $b;

    new_worker($ng, $maker) if $maker;
    ok(wait_for(sub {
           gauge($ng, 'podgen_inflight_requests{endpoint="speech"}') == 0
           && gauge($ng, 'podgen_thread_pool_queue') == 0
       }, 20),
       '(b) gauges back to 0') or diag explain metrics($ng);

    $ng->stop;
    my @bad = grep { !/worker process \d+ exited on signal 9/ }
              $ng->check_error_log;
    ok(!@bad, '(b) error log clean but for the kill') or diag join "\n", @bad;
}

done_testing();
