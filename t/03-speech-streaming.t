# Streaming: a long input is answered chunk by chunk as it is synthesized,
# and clients that go away mid-stream (one, then ten at once at random
# points) leave nothing broken or stuck behind.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);
use POSIX ();
use IO::Socket::IP;

my $LONG = <<'EOF';
The lighthouse stood at the end of a long spit of sand, and for most of the year nobody came to see it. The keeper, a patient woman named Ada, kept a logbook in which she wrote the weather, the ships, and whatever else seemed worth remembering. On calm mornings she walked the beach and collected glass floats, driftwood, and the occasional shoe. She liked the quiet, but she did not love it; the quiet was simply the price of the view.
In the spring a storm came in from the west. It began as a grey line on the horizon, then a wall of rain, and finally a wind so strong that the windows hummed like tuning forks. Ada lit the lamp early. She checked the fuel twice, wound the clockwork that turned the lens, and sat down with a mug of tea to wait. By nine o'clock the waves were breaking over the rocks below the tower, and spray rattled against the glass forty feet above the sea.
At a quarter past ten she saw a light where no light should be. It flickered, vanished, and came back again, low on the water and moving far too slowly for a ship under power. She watched it through the telescope for a long minute. Then she picked up the radio handset and called the harbour at Kettle Bay, three miles up the coast. The operator answered on the second try; his voice crackled and broke, but she could make out the words "fishing boat" and "engine failure" and, after a pause, "can you guide them in?"
Ada could. There was a channel between the reefs that only the local crews knew, and the lighthouse had a second lamp, a small red one, that marked its mouth. She climbed the narrow stairs to the gallery, fought the door open against the wind, and switched it on. For the next hour she signalled with a hand torch: long flashes for left, short ones for right, three quick blinks when the boat drifted too close to the rocks. Twice the little light disappeared behind the swell, and twice her heart stopped until it rose again.
Just after midnight the boat slid into the calm water behind the spit. Its crew of four waved their arms in the beam of the lamp, and one of them held up what looked like an enormous fish. Ada laughed for the first time that day. She went down, put the kettle on again, and wrote in the logbook: "Storm from the west. Boat Marigold, engine failure, brought in through the north channel. All safe. One very large cod."
In the morning the sea was flat and bright, as if nothing had happened. The crew of the Marigold walked down the beach with a basket of bread, a jar of honey, and the cod, which turned out to be even larger in daylight. They stayed for breakfast and told the story four different ways, each one more heroic than the last. When they had gone, Ada climbed the stairs, cleaned the lens, trimmed the wick, and wound the clockwork once more, because the next night would come whether or not anyone was watching.
Years later, when the lighthouse was automated and the keepers were sent away, someone found her logbooks in a cupboard. Most of the pages were about wind speeds and cloud cover. But between the numbers there were small notes: a seal asleep on the slipway, a comet in October, a child who asked whether the light ever got tired. The answer, written in a careful hand, was short. "No. But the keeper does, and that is why we take turns."
The logbooks are kept in the small museum at Kettle Bay now. Visitors read a page or two, look out at the tower, and usually ask the same question the child did. The guide smiles, points to the glass case, and lets the careful handwriting answer for her.
EOF
$LONG =~ s/\n/ /g;
$LONG =~ s/\s+$//;

my $MEDIUM = substr($LONG, 0, 1500);
$MEDIUM =~ s/[^.]*$//;

my $CONFIG = <<'EOF';
location = /v1/audio/speech { podgen_speech; }
location = /status { stub_status; }
EOF

my $ng = Podgen::Test::Nginx->new(
    workers => 2,
    main_config => 'thread_pool default threads=4;',
    config => $CONFIG);
$ng->start;
my @workers = $ng->worker_pids;

sub body_for {
    my ($text, %f) = @_;
    return $JSON->encode({ model => 'tts-1', voice => 'slt',
                           response_format => 'wav', input => $text, %f });
}
my %CT = ('Content-Type' => 'application/json');

sub active_connections {
    my $r = request($ng, 'GET', '/status', timeout => 5);
    return $r->{body} =~ /Active connections:\s*(\d+)/ ? $1 : -1;
}

# Wait until only the status request itself is active.
sub wait_idle {
    my ($timeout) = @_;
    my $deadline = time + $timeout;
    my $n;
    while (time < $deadline) {
        $n = active_connections();
        return 1 if $n == 1;
        sleep 0.1;
    }
    diag "active connections still $n after ${timeout}s";
    return 0;
}

sub cpu_ticks {
    my $t = 0;
    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $st = <$fh>;
        close $fh;
        my @f = split ' ', substr($st, rindex($st, ')') + 2);
        $t += $f[11] + $f[12];    # utime + stime
    }
    return $t;
}

sub short_request_ok {
    my ($name) = @_;
    my $r = request($ng, 'POST', '/v1/audio/speech',
                    body => body_for('Still here?'), headers => \%CT,
                    timeout => 60);
    is($r->{status}, 200, "$name: a normal request works")
        or diag "$r->{status} " . ($r->{error} // '') . " $r->{body}";
    like($r->{body}, qr/^RIFF/, "$name: WAV body");
    return $r;
}

note sprintf 'long input: %d characters', length $LONG;
cmp_ok(length $LONG, '>=', 3400, 'the long input is ~3,500 characters');
cmp_ok(length $LONG, '<=', 4096, 'and within the default podgen_max_input');

# --- 1. a long input streams ------------------------------------------------

{
    my @arrivals;
    my $r = stream_request($ng, 'POST', '/v1/audio/speech', body_for($LONG),
                           \%CT, timeout => 120,
                           on_chunk => sub { push @arrivals, $_[1] });
    is($r->{status}, 200, 'long: 200') or diag explain { %$r, body => undef };
    is($r->{headers}{'content-type'}, 'audio/wav', 'long: audio/wav');
    ok($r->{chunked}, 'long: chunked');
    ok($r->{complete}, 'long: complete (terminating chunk seen)')
        or diag $r->{error} // '';
    my $n = scalar @{ $r->{chunks} };
    cmp_ok($n, '>=', 10, 'long: many chunks');
    note sprintf 'long: %d chunks, %d bytes, first %.3f s, last %.3f s',
        $n, length $r->{body}, $r->{first_byte_time} // -1,
        $r->{last_byte_time} // -1;
    ok(defined $r->{first_byte_time} && defined $r->{last_byte_time}
       && $r->{first_byte_time} < 0.3 * $r->{last_byte_time},
       'long: the first chunk arrives well before the last')
        or diag sprintf 'first %.3f s, last %.3f s',
            $r->{first_byte_time} // -1, $r->{last_byte_time} // -1;
    # audio keeps coming over time, not in one burst at the end
    if (@arrivals >= 4) {
        my $mid = $arrivals[int(@arrivals / 2)];
        ok($mid < 0.9 * $arrivals[-1], 'long: chunks are spread over time')
            or diag "middle chunk at $mid s, last at $arrivals[-1] s";
    }
    my ($d, $err) = audio_duration($r->{body}, 'wav');
    ok(defined $d && $d > 60, 'long: more than a minute of audio')
        or diag sprintf 'duration %s %s', $d // 'undef', $err // '';
    note sprintf 'long: %.1f s of audio', $d // -1;
}

# --- 2. the client disconnects after the first chunk ------------------------

{
    $ng->mark_error_log;
    my $r = stream_request($ng, 'POST', '/v1/audio/speech', body_for($LONG),
                           \%CT, timeout => 60, abort_after_chunks => 1);
    is($r->{status}, 200, 'disconnect: 200 before the disconnect');
    is($r->{aborted}, 'chunks', 'disconnect: closed after the first chunk');

    # The abandoned synthesis should stop soon: the whole long input takes
    # a few seconds of CPU, so a synthesis that went on for the gone client
    # would keep the workers busy for the next second.
    my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
    sleep 0.3;
    my $c1 = cpu_ticks(@workers);
    sleep 1;
    my $busy = (cpu_ticks(@workers) - $c1) / $hz;
    note sprintf 'worker CPU 0.3-1.3 s after the disconnect: %.2f s', $busy;
    cmp_ok($busy, '<', 0.3,
           'disconnect: nothing keeps synthesizing for the gone client');

    short_request_ok('disconnect');
    sleep 1.5;
    ok(wait_idle(10), 'disconnect: no connection left active');

    my @bad = $ng->check_error_log(1);
    ok(!@bad, 'disconnect: no alert/crit in the error log')
        or diag join "\n", @bad;
    my $log = $ng->error_log_since_mark;
    unlike($log, qr/\[error\]/, 'disconnect: no [error] lines');
    note "error log after the disconnect:\n$log";
    is_deeply([ $ng->worker_pids ], \@workers, 'disconnect: no worker died');

}

# --- 3. ten clients disconnect at random points, concurrently ---------------

{
    my $seed = $ENV{PODGEN_TEST_SEED} // int(time * 1000) % 1_000_000;
    srand $seed;
    note "random seed $seed (set PODGEN_TEST_SEED to repeat)";
    $ng->mark_error_log;

    my $body = body_for($MEDIUM);
    my $req = "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nContent-Length: "
            . length($body) . "\r\n\r\n$body";
    my @c;
    for my $i (0 .. 9) {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $ng->port, Proto => 'tcp')
            or die "connect: $@";
        binmode $s;
        # where to stop: 0 = right after sending the request (before any
        # response), or after a random number of response bytes
        my $limit = $i == 0 ? 0
                  : $i == 1 ? 1
                  : int(rand(400_000)) + 1;
        push @c, { s => $s, limit => $limit, got => 0, rst => $i % 2,
                   sent => 0, delay => rand(0.5) };
        note sprintf 'client %d stops after %d bytes%s', $i, $limit,
            $i % 2 ? ' (RST)' : '';
    }
    my $t0 = time;
    my $sel = IO::Select->new;
    my $deadline = time + 60;
    while (grep { $_->{s} } @c) {
        last if time > $deadline;
        for my $c (grep { $_->{s} && !$_->{sent} } @c) {
            next if time - $t0 < $c->{delay};
            syswrite $c->{s}, $req;
            $c->{sent} = 1;
            $sel->add($c->{s});
            if ($c->{limit} == 0) {
                $sel->remove($c->{s});
                close $c->{s};
                $c->{s} = undef;
            }
        }
        for my $fh ($sel->can_read(0.05)) {
            my ($c) = grep { $_->{s} && $_->{s} == $fh } @c;
            next unless $c;
            my $n = sysread $fh, my $buf, 16384;
            $c->{got} += $n if $n;
            if (!$n || $c->{got} >= $c->{limit}) {
                $sel->remove($fh);
                setsockopt $fh, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)
                    if $c->{rst};
                close $fh;
                $c->{s} = undef;
                $c->{eof} = 1 if defined $n && $n == 0;
            }
        }
    }
    ok(!grep({ $_->{s} } @c), 'ten clients: all gone within 60 s');
    $_->{s} && close $_->{s} for @c;
    note join ' ', map { "$_->{got}" . ($_->{eof} ? '(eof)' : '') } @c;

    short_request_ok('ten clients');
    ok(wait_idle(15), 'ten clients: no connection left active');
    my @bad = $ng->check_error_log(1);
    ok(!@bad, 'ten clients: no alert/crit in the error log')
        or diag join "\n", @bad;
    unlike($ng->error_log_since_mark, qr/\[error\]/,
           'ten clients: no [error] lines');
    is_deeply([ $ng->worker_pids ], \@workers, 'ten clients: no worker died');
    short_request_ok('ten clients, again');
}

# --- 4. a cached answer for clients that are already gone ---------------------
#
# The whole request arrives in one read, so the body handler runs inside the
# content handler, finds the audio in the cache and writes it at once -- to a
# socket the client has closed.  The write fails there and then; the request
# must be closed exactly once (a close under the content handler used to be
# followed by nginx's own: "http request count is zero", a use after free).

{
    $ng->mark_error_log;
    my $body = body_for($MEDIUM);
    my $r = request($ng, 'POST', '/v1/audio/speech', body => $body,
                    headers => \%CT, timeout => 60);
    is($r->{status}, 200, 'gone before the hit: the audio is cached first');
    my $req = "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nContent-Length: "
            . length($body) . "\r\n\r\n$body";
    for my $i (1 .. 40) {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $ng->port, Proto => 'tcp')
            or die "connect: $@";
        syswrite $s, $req;
        # half of them reset the connection, half close it
        setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $i % 2;
        close $s;
    }
    sleep 0.5;
    short_request_ok('gone before the hit');
    ok(wait_idle(10), 'gone before the hit: no connection left active');
    my @bad = $ng->check_error_log(1);
    ok(!@bad, 'gone before the hit: no alert/crit in the error log')
        or diag join "\n", @bad;
    is_deeply([ $ng->worker_pids ], \@workers,
              'gone before the hit: no worker died');
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean after shutdown') or diag join "\n", @bad;
unlike($ng->error_log, qr/open socket .* left in connection/,
       'no connection left open at shutdown');

done_testing;
