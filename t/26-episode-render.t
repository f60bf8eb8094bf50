# Episodes rendered as a stream, at one loudness (#21 item 4, #19 items 1
# and 7), checked the way a user would:
#   - an episode of two hosts whose voices differ by 12.7 LU (slt, kal16),
#     in mp3, opus, flac and wav: ffmpeg's ebur128 filter measures it at
#     -16 LUFS +-1 integrated and a true peak of at most -0.7 dBTP, both
#     hosts' segments within 2 LU of each other; the status and the
#     transcript JSON carry the loudness measured; no segment files or
#     half episode are left in the store;
#   - a worker killed (-9) while it renders leaves a temporary file, never
#     a half episode in place; the job is resumed and its episode whole;
#   - podgen_loudness off leaves the episode as it was (quieter, uneven),
#     with loudness null; a louder target (-14, peak -1.5) is followed; bad directives fail
#     nginx -t;
#   - Redis mode: an episode of more than 1 MB reaches Redis whole (the
#     same bytes as the file, no temporary key left), and a second node
#     serves it from there.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use File::Temp ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

skip_rest('ffmpeg is not installed') unless which('ffmpeg');

my $T0 = time;
my $ROOT = repo_root();

# ~1,100 characters: about 70 s of speech, two voices
my $text = slurp("$ROOT/t/data/source-sleep.txt") // die "source: $!";
$text =~ s/\s+/ /g;
my @sentences = $text =~ /([^.]+\.)/g;
my @SEGS;
for my $i (0 .. 3) {
    push @SEGS, { speaker => $i % 2 ? 'Kal' : 'Sue',
                  text => join(' ', @sentences[3 * $i .. 3 * $i + 2]) =~ s/^\s+//r };
}
my @HOSTS = ({ name => 'Sue', voice => 'slt' }, { name => 'Kal', voice => 'kal16' });

sub tmpfile {
    my ($data, $ext) = @_;
    my ($fh, $f) = File::Temp::tempfile('podgen-t26-XXXXXX', TMPDIR => 1,
                                        UNLINK => 1, SUFFIX => ".$ext");
    binmode $fh;
    print {$fh} $data;
    close $fh;
    return $f;
}

# ffmpeg's ebur128: (integrated LUFS, true peak dBTP) of a file, or of
# [from, from + len) s of it
sub ebur128 {
    my ($file, $from, $len) = @_;
    my @cut = defined $from ? ('-ss', $from, '-t', $len) : ();
    my $out = `ffmpeg -nostdin -hide_banner @cut -i '$file' -af ebur128=peak=true -f null - 2>&1`;
    my ($i) = $out =~ /Integrated loudness:\s+I:\s+(-?[\d.]+|-inf) LUFS/;
    my ($p) = $out =~ /True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS/;
    return ($i, $p);
}

sub episode {
    my ($ng, $fmt, $name) = @_;
    my $id = new_podcast($ng, { segments => \@SEGS, hosts => \@HOSTS,
                                format => $fmt, title => "Loud $fmt" }, $name)
        or return;
    my $st = wait_job($ng, $id, 120);
    is($st->{status}, 'completed', "$name: completed")
        or return;
    my ($a) = get($ng, "/v1/podcasts/$id/audio");
    is($a->{status}, 200, "$name: the audio");
    my ($tr, $tj) = get($ng, "/v1/podcasts/$id/transcript.json");
    return { id => $id, status => $st, audio => $a->{body},
             file => tmpfile($a->{body}, $fmt), transcript => $tj };
}

# ---- 1. every format at -16 LUFS, -1 dBTP; voices even -------------------------

my $STORE = File::Temp::tempdir('podgen-t26-store-XXXXXX', TMPDIR => 1,
                                CLEANUP => !$ENV{PODGEN_TEST_KEEP});
chmod 0777, $STORE;

my $ng = Podgen::Test::Nginx->new(
    http_config => "podgen_store $STORE; podgen_loudness -16 peak=-1;",
    config => 'location /v1/podcasts { podgen_podcasts; }', workers => 1);
$ng->start;

for my $fmt (qw(mp3 opus flac wav)) {
    my $name = "loudness $fmt";
    my $e = episode($ng, $fmt, $name) or next;
    my ($i, $p) = ebur128($e->{file});
    ok(defined $i && abs($i - -16) <= 1,
       "$name: ffmpeg measures " . ($i // '?') . ' LUFS integrated (-16 +- 1)');
    ok(defined $p && $p <= -1 + 0.3,
       "$name: true peak " . ($p // '?') . ' dBTP (<= -0.7)');

    my $l = $e->{status}{loudness} // {};
    ok(defined $l->{integrated_lufs} && defined $l->{true_peak_dbtp}
       && defined $l->{gain_db}
       && $l->{gain_db} >= -16 - $l->{integrated_lufs} - 0.02
       && $l->{gain_db} <= -16 - $l->{integrated_lufs} + 12.02,
       "$name: status loudness " . JSON::PP->new->canonical->encode($l));
    is_deeply($e->{transcript}{loudness}, $l,
              "$name: the transcript JSON has the same loudness");

    # each host's segments alone: one level (12.7 LU apart unevened)
    my @segs = @{ $e->{transcript}{segments} // [] };
    if ($fmt eq 'flac' && @segs == 4) {
        my (%lv);
        for my $s (@segs) {
            my ($li) = ebur128($e->{file}, $s->{start}, $s->{end} - $s->{start});
            push @{ $lv{$s->{voice}} }, $li;
        }
        my ($s1, $k1) = ($lv{slt}[0], $lv{kal16}[0]);
        ok(defined $s1 && defined $k1 && abs($s1 - $k1) <= 2,
           sprintf('even voices: slt %s, kal16 %s LUFS', $s1 // '?', $k1 // '?'));
    }

    my @left = (glob("$STORE/parts/$e->{id}*"), glob("$STORE/audio/$e->{id}*.tmp"));
    ok(!@left, "$name: no segment file or temporary episode left")
        or diag("@left");
}

my @bad = $ng->check_error_log;
ok(!@bad, 'loudness: error log clean') or diag(join "\n", @bad);
$ng->stop;

# ---- 1b. a worker killed while it renders: no half episode -------------------

{
    my $store = File::Temp::tempdir('podgen-t26-kill-XXXXXX', TMPDIR => 1,
                                    CLEANUP => !$ENV{PODGEN_TEST_KEEP});
    chmod 0777, $store;
    my $n = Podgen::Test::Nginx->new(
        http_config => "podgen_store $store; podgen_max_audio 2h;
                        podgen_cache_zone t26:128m max_entry=32m;",
        config => 'location /v1/podcasts { podgen_podcasts; }', workers => 1);
    $n->start;
    # ~20 minutes of two repeated segments: synthesized twice, rendered long
    my @long = map { { speaker => $_ % 2 ? 'Kal' : 'Sue',
                       text => $SEGS[$_ % 2]{text} } } 0 .. 59;
    my $id = new_podcast($n, { segments => \@long, hosts => \@HOSTS,
                               format => 'mp3', title => 'Killed' }, 'kill');
    my $st = wait_job($n, $id, 120, until => sub {
        ($_[0]{progress}{total} // 0) > 0
        && $_[0]{progress}{done} == $_[0]{progress}{total}
    });
    my $rendering = ($st->{status} // '') eq 'running';
    ok($rendering, 'kill: the episode is being rendered');
    my $tmp = "$store/audio/$id.mp3.tmp";
    wait_for(sub { -s $tmp }, 5);
    my ($w) = $n->worker_pids;
    kill 'KILL', $w;
    ok(-e $tmp && !-e "$store/audio/$id.mp3",
       'kill: a temporary file, no episode in place');
    my ($r) = get($n, "/v1/podcasts/$id/audio");
    is($r->{status}, 409, 'kill: the audio is not ready (409)');
    $st = wait_job($n, $id, 120);
    is($st->{status}, 'completed', 'kill: resumed and completed');
    ($r) = get($n, "/v1/podcasts/$id/audio", timeout => 30);
    my $f = tmpfile($r->{body}, 'mp3');
    chomp(my $d = `ffprobe -v error -show_entries format=duration -of csv=p=0 '$f'`);
    ok($r->{status} == 200 && abs($d - $st->{duration_s}) < 0.2,
       "kill: the episode whole ($d s, the record says $st->{duration_s})");
    my @left = (glob("$store/parts/$id*"), glob("$store/audio/$id*.tmp"));
    ok(!@left, 'kill: no segment file or temporary episode left')
        or diag("@left");
    $n->stop;
}

# ---- 2. off, another target; bad directives -------------------------------------

{
    my $store = File::Temp::tempdir('podgen-t26-off-XXXXXX', TMPDIR => 1,
                                    CLEANUP => !$ENV{PODGEN_TEST_KEEP});
    chmod 0777, $store;
    my $off = Podgen::Test::Nginx->new(
        http_config => "podgen_store $store; podgen_loudness off;",
        config => 'location /v1/podcasts { podgen_podcasts; }', workers => 1);
    $off->start;
    my $e = episode($off, 'flac', 'loudness off');
    if ($e) {
        my ($i) = ebur128($e->{file});
        ok(defined $i && $i < -17, "loudness off: the episode as made ($i LUFS)");
        ok(exists $e->{status}{loudness} && !defined $e->{status}{loudness},
           'loudness off: status loudness null');
    }
    $off->stop;

    my $hot = Podgen::Test::Nginx->new(
        http_config => "podgen_store $store; podgen_loudness -14 peak=-1.5;",
        config => 'location /v1/podcasts { podgen_podcasts; }', workers => 1);
    $hot->start;
    $e = episode($hot, 'wav', 'loudness -14');
    if ($e) {
        my ($i, $p) = ebur128($e->{file});
        ok(defined $i && abs($i - -14) <= 1, "loudness -14: $i LUFS (-14 +- 1)");
        ok(defined $p && $p <= -1.5 + 0.3, "loudness -14: true peak $p dBTP (<= -1.2)");
    }
    $hot->stop;

    for my $c ('podgen_loudness 5;', 'podgen_loudness -16 peak=3;',
               'podgen_loudness -16 foo=1;', 'podgen_loudness loud;',
               'podgen_loudness -16; podgen_loudness off;') {
        my $n = Podgen::Test::Nginx->new(http_config => $c,
            config => 'location /v1/podcasts { podgen_podcasts; }');
        my ($ok, $out) = $n->test_config;
        ok(!$ok && $out =~ /podgen_loudness/, "nginx -t refuses '$c'")
            or diag($out);
    }
}

# ---- 3. Redis: the episode in pieces, served by another node -------------------

SKIP: {
    skip 'redis-server is not installed', 7 unless which('redis-server');
    my $redis = start_redis();
    my $rport = $redis->port;
    my @nodes;
    for my $name (qw(A B)) {
        my $n = Podgen::Test::Nginx->new(
            http_config => "podgen_redis 127.0.0.1:$rport prefix=t26: timeout=2s;
                            podgen_store store;",
            config => 'location /v1/podcasts { podgen_podcasts; }
                       location = /metrics { podgen_metrics; }', workers => 1);
        $n->start;
        push @nodes, $n;
    }
    my ($A, $B) = @nodes;
    ok(wait_for(sub { (metrics($A)->{podgen_redis_up} // 0) == 1
                      && (metrics($B)->{podgen_redis_up} // 0) == 1 }, 10),
       'redis: both nodes connected');
    my $e = episode($A, 'wav', 'redis');
    if ($e) {
        my $len = length $e->{audio};
        ok($len > 2 * 1024 * 1024, "redis: the episode is $len bytes (3+ pieces)");
        my $r = `redis-cli -p $rport --no-raw STRLEN t26:episode:$e->{id}`;
        $r =~ s/\D//g;
        is($r, $len, 'redis: the key holds as many bytes');
        my $ttl = `redis-cli -p $rport TTL t26:episode:$e->{id}`;
        $ttl =~ s/\s+//g;
        is($ttl, '-1', 'redis: the episode key has no TTL (as a SET made it)');
        my $tmp = `redis-cli -p $rport --scan --pattern 't26:episode:*.tmp'`;
        is($tmp, '', 'redis: no temporary key left');
        my ($b) = get($B, "/v1/podcasts/$e->{id}/audio", timeout => 30);
        ok($b->{status} == 200 && $b->{body} eq $e->{audio},
           'redis: node B serves the same bytes');
    }
    for my $n ($A, $B) {
        my @bad = $n->check_error_log;
        ok(!@bad, 'redis: error log clean') or diag(join "\n", @bad);
        $n->stop;
    }
}

note(sprintf 'run time %.1f s', time - $T0);
done_testing();
