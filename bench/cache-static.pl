#!/usr/bin/env perl
# Cached responses against nginx's static file serving, same bytes, same
# nginx, same run.
#
# One nginx (2 workers, access_log off) serves podgen's locations and, from
# html/static/ with sendfile on, the very bytes podgen answered with,
# written there after fetching them from podgen.  wrk -t2 -c64 -d5s
# --latency against each pair, interleaved:
#
#   - a ~1.8 KB script: POST /v1/scripts (HIT-L1, a 4 KB request with a
#     source_text) vs GET of the JSON file; and a ~1 KB one from a
#     topic-only request (43 bytes), to show what reading the request costs
#   - the wav of a 300-word text (~3.3 MB): POST /v1/audio/speech (HIT-L1)
#   - the mp3 of that text (~0.8 MB): POST /v1/audio/speech (HIT-L1)
#   - the wav again: GET /v1/audio/<key>.wav vs GET of the file
#
# Targets (the caching issue): podgen >= 0.8x static's req/s, p99 <= 1.5x.
#
# Also:
#   - L2-only hits: a second nginx whose L1 holds nothing over 1 KB
#     (max_entry=1k) answers GET /v1/audio/<key>.mp3 from Redis every time;
#     its latency with one client (wrk -t1 -c1) against redis-benchmark
#     GET of a value of the same size, one client (target <= 1.5x);
#   - /metrics rendering, every family populated: wrk req/s (>= 20,000);
#   - what metrics cost on a cached hit: two nginx alike but for
#     podgen_metrics_record on/off, both cached script requests,
#     interleaved (target: on >= 0.97x off).
#
#   perl bench/cache-static.pl [--runs N] [--overhead-runs N] [--duration S]
#                              [--out bench/RESULTS.md]
#
# --runs (default 3) and --overhead-runs (default 3): how many interleaved
# runs the medians are taken over; about 4 minutes with the defaults.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use JSON::PP;
use File::Temp ();
use File::Path qw(make_path);
use Time::HiRes qw(time sleep);
use POSIX qw(strftime);
use Podgen::Test;

$SIG{PIPE} = 'IGNORE';

my ($runs, $oruns, $duration, $out) = (3, 3, 5, undef);
my ($threads, $conns) = (2, 64);
GetOptions('runs=i' => \$runs, 'overhead-runs=i' => \$oruns,
           'duration=i' => \$duration, 'out=s' => \$out)
    or die "usage: $0 [--runs N] [--overhead-runs N] [--duration S] [--out FILE]\n";

for my $bin (qw(wrk redis-server redis-benchmark)) {
    die "$bin is not installed\n" unless which($bin);
}

my $root = Podgen::Test::repo_root();
my $JSON = JSON::PP->new->canonical;
my %CT = ('Content-Type' => 'application/json');
my $tmp = File::Temp::tempdir('podgen-bench-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);

sub loadavg {
    my $l = Podgen::Test::_slurp('/proc/loadavg') // '';
    return join ' ', (split ' ', $l)[0 .. 2];
}
my $load0 = loadavg();

# ---- the inputs ---------------------------------------------------------------

my $text = Podgen::Test::_slurp("$root/bench/texts/speech-4000.txt")
    // die "bench/texts/speech-4000.txt: $!\n";
my @words = split ' ', $text;
my $speech_text = join ' ', @words[0 .. 299];

my $script_body = $JSON->encode({ source_text => $text, target_words => 210,
                                  engine => 'builtin' });
my $topic_body = $JSON->encode({ topic => 'Tea and time', engine => 'builtin' });
my $wav_body = $JSON->encode({ model => 'tts-1', voice => 'alloy',
                               response_format => 'wav',
                               input => $speech_text });
my $mp3_body = $JSON->encode({ model => 'tts-1', voice => 'alloy',
                               response_format => 'mp3',
                               input => $speech_text });
my $small_body = $JSON->encode({ model => 'tts-1', voice => 'alloy',
                                 response_format => 'mp3',
                                 input => 'One short sentence, cached in Redis.' });

# ---- the nginx instances ---------------------------------------------------------

my $redis = Podgen::Test::start_redis();
my $rport = $redis->port;
my $mock = eval { Podgen::Test::start_mock_llm(args => ['--quiet']) };

my $PODGEN = 'access_log off;
    location = /v1/audio/speech { podgen_speech; }
    location = /v1/scripts { podgen_scripts; }
    location /v1/audio/ { podgen_audio; }
    location = /metrics { podgen_metrics; }';

my $STATIC = 'location /static/ {
        root html;
        sendfile on;
        tcp_nopush on;
        types { application/json json; audio/wav wav; audio/mpeg mp3; }
    }';

my $main = Podgen::Test::Nginx->new(
    workers => 2,
    worker_connections => 4096,
    http_config => "podgen_redis 127.0.0.1:$rport prefix=bench: timeout=1s;"
                   . ($mock ? " podgen_llm http://127.0.0.1:" . $mock->port
                              . "/v1 model=mock-ok timeout=5s retries=0;"
                            : ''),
    config => "$PODGEN\n$STATIC");
$main->start;

# L1 keeps nothing over 1 KB: every audio request is answered from Redis
my $l2node = Podgen::Test::Nginx->new(
    workers => 2,
    worker_connections => 4096,
    http_config => "podgen_cache_zone l2only:1m max_entry=1k; "
                   . "podgen_redis 127.0.0.1:$rport prefix=bench: timeout=1s;",
    config => $PODGEN);
$l2node->start;

my %rec;
for my $flag (qw(on off)) {
    $rec{$flag} = Podgen::Test::Nginx->new(
        workers => 2,
        worker_connections => 4096,
        http_config => "podgen_metrics_record $flag;",
        config => $PODGEN);
    $rec{$flag}->start;
}

sub post {
    my ($ng, $path, $body) = @_;
    my $r = Podgen::Test::request($ng, 'POST', $path, body => $body,
                                  headers => \%CT, timeout => 120);
    die "POST $path: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return $r;
}

# cold, then a hit whose bytes become the static file
sub cached {
    my ($ng, $path, $body) = @_;
    post($ng, $path, $body);
    sleep 0.2;
    my $r = post($ng, $path, $body);
    my $tag = $r->{headers}{'x-podgen-cache'} // '-';
    die "POST $path: $tag on the second request, not HIT-L1\n"
        unless $tag eq 'HIT-L1';
    return $r;
}

my $script = cached($main, '/v1/scripts', $script_body);
my $topic = cached($main, '/v1/scripts', $topic_body);
my $wav = cached($main, '/v1/audio/speech', $wav_body);
my $mp3 = cached($main, '/v1/audio/speech', $mp3_body);
my $small = cached($main, '/v1/audio/speech', $small_body);
my $wav_url = $wav->{headers}{'x-podgen-audio-url'};
my $mp3_url = $mp3->{headers}{'x-podgen-audio-url'};
my $small_url = $small->{headers}{'x-podgen-audio-url'};
{
    my $g = Podgen::Test::request($main, 'GET', $wav_url);
    die "GET $wav_url: $g->{status}\n"
        unless $g->{status} == 200 && $g->{body} eq $wav->{body};
}

my $html = $main->prefix . '/html/static';
make_path($html);
chmod 0755, $html;
my %static = ('script.json' => $script->{body}, 'topic.json' => $topic->{body},
              'speech.wav' => $wav->{body},
              'speech.mp3' => $mp3->{body});
for my $f (sort keys %static) {
    Podgen::Test::_spew("$html/$f", $static{$f});
    chmod 0644, "$html/$f";
    my $g = Podgen::Test::request($main, 'GET', "/static/$f");
    die "GET /static/$f: $g->{status}, or other bytes\n"
        unless $g->{status} == 200 && $g->{body} eq $static{$f};
}

for my $flag (qw(on off)) {
    cached($rec{$flag}, '/v1/scripts', $_) for $script_body, $topic_body;
}

# ---- populate every metrics family of the main node --------------------------------

{
    # errors, other formats, a scripted LLM call, coalesced requests
    Podgen::Test::request($main, 'POST', '/v1/audio/speech', headers => \%CT,
        body => '{"model":"tts-1","input":"Hi.","voice":"nobody"}');
    Podgen::Test::request($main, 'GET', '/v1/audio/' . ('0' x 64) . '.mp3');
    post($main, '/v1/scripts', $JSON->encode({ topic => 'Metrics', engine => 'llm' }))
        if $mock;
    my $co = $JSON->encode({ model => 'tts-1', voice => 'alloy',
                             response_format => 'opus',
                             input => "$speech_text $speech_text" });
    my @kids;
    for (1 .. 4) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            Podgen::Test::request($main, 'POST', '/v1/audio/speech',
                                  body => $co, headers => \%CT, timeout => 60);
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid $_, 0 for @kids;
}

# the L2 node answers the audio from Redis, every time
sleep 0.3;
for my $u ($small_url, $mp3_url) {
    for (1 .. 2) {
        my $g = Podgen::Test::request($l2node, 'GET', $u);
        my $tag = $g->{headers}{'x-podgen-cache'} // '-';
        die "L2 node: GET $u: $g->{status} $tag\n"
            unless $g->{status} == 200 && $tag eq 'HIT-L2';
    }
}

# ---- wrk -----------------------------------------------------------------------------

sub lua_post {
    my ($name, $body) = @_;
    my $f = "$tmp/$name.lua";
    Podgen::Test::_spew($f, "wrk.method = \"POST\"\n"
        . "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
        . "wrk.body = [==[$body]==]\n");
    return $f;
}

sub secs {
    my ($v, $u) = @_;
    return $v / 1e6 if $u eq 'us';
    return $v / 1e3 if $u eq 'ms';
    return $v * 60 if $u eq 'm';
    return $v;
}

# wrk(url, lua => file, t => threads, c => connections)
sub wrk {
    my ($url, %o) = @_;
    my @cmd = ('wrk', '-t', $o{t} // $threads, '-c', $o{c} // $conns,
               '-d', "${duration}s", '--latency');
    push @cmd, '-s', $o{lua} if $o{lua};
    my $cmd = join(' ', @cmd, $url) . ' 2>&1';
    my $o = `$cmd`;
    die "wrk failed: $o\n" if $?;
    my %r = (raw => $o);
    ($r{rps}) = $o =~ /^Requests\/sec:\s+([\d.]+)/m;
    if ($o =~ /^\s+Latency\s+([\d.]+)(us|ms|s|m)\b/m) { $r{avg} = secs($1, $2) }
    if ($o =~ /^\s+50%\s+([\d.]+)(us|ms|s|m)\b/m) { $r{p50} = secs($1, $2) }
    if ($o =~ /^\s+99%\s+([\d.]+)(us|ms|s|m)\b/m) { $r{p99} = secs($1, $2) }
    ($r{non2xx}) = $o =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    $r{non2xx} //= 0;
    if ($o =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/) {
        $r{errors} = $1 + $2 + $3 + $4;
    }
    $r{errors} //= 0;
    die "cannot parse wrk output:\n$o\n" unless defined $r{rps} && defined $r{p99};
    return \%r;
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

sub med {
    my ($list, $k) = @_;
    return median(map { $_->{$k} } @$list);
}

sub fmt_ms { sprintf '%.2f ms', $_[0] * 1000 }

sub fmt_size {
    my ($n) = @_;
    return sprintf('%.1f MB', $n / 1e6) if $n >= 1e6;
    return sprintf('%.0f KB', $n / 1e3) if $n >= 1e4;
    return sprintf('%.1f KB', $n / 1e3);
}

my $mu = sub { $main->url($_[0]) };
my @pairs = (
    { name => sprintf('script JSON (%s request: source_text)',
                      fmt_size(length $script_body)),
      size => length $script->{body},
      podgen => [ 'POST /v1/scripts (HIT-L1)', $mu->('/v1/scripts'),
                  lua => lua_post('script', $script_body) ],
      static => [ 'GET /static/script.json', $mu->('/static/script.json') ] },
    { name => sprintf('script JSON (%d B request: topic only)',
                      length $topic_body),
      size => length $topic->{body},
      podgen => [ 'POST /v1/scripts (HIT-L1)', $mu->('/v1/scripts'),
                  lua => lua_post('topic', $topic_body) ],
      static => [ 'GET /static/topic.json', $mu->('/static/topic.json') ] },
    { name => 'wav, 300 words', size => length $wav->{body},
      podgen => [ 'POST /v1/audio/speech wav (HIT-L1)', $mu->('/v1/audio/speech'),
                  lua => lua_post('wav', $wav_body) ],
      static => [ 'GET /static/speech.wav', $mu->('/static/speech.wav') ] },
    { name => 'mp3, 300 words', size => length $mp3->{body},
      podgen => [ 'POST /v1/audio/speech mp3 (HIT-L1)', $mu->('/v1/audio/speech'),
                  lua => lua_post('mp3', $mp3_body) ],
      static => [ 'GET /static/speech.mp3', $mu->('/static/speech.mp3') ] },
    { name => 'wav by key', size => length $wav->{body},
      podgen => [ 'GET /v1/audio/<key>.wav (HIT-L1)', $mu->($wav_url) ],
      static => [ 'GET /static/speech.wav', $mu->('/static/speech.wav') ] },
);

sub metric {
    my ($ng, $re) = @_;
    my $m = Podgen::Test::request($ng, 'GET', '/metrics')->{body};
    return $m =~ /^$re (\S+)$/m ? $1 : undef;
}

for my $run (1 .. $runs) {
    for my $p (@pairs) {
        my @order = $run % 2 ? qw(podgen static) : qw(static podgen);
        for my $side (@order) {
            my ($label, $url, %o) = @{ $p->{$side} };
            print STDERR "run $run: $p->{name}: $label\n";
            push @{ $p->{res}{$side} }, wrk($url, %o);
        }
    }
}

my $bad = 0;
my @pair_rows;
for my $p (@pairs) {
    my ($P, $S) = @{ $p->{res} }{qw(podgen static)};
    my ($prps, $srps) = (med($P, 'rps'), med($S, 'rps'));
    my ($pp99, $sp99) = (med($P, 'p99'), med($S, 'p99'));
    my $errs = 0;
    $errs += $_->{non2xx} + $_->{errors} for @$P, @$S;
    $bad += $errs;
    my $rr = $prps / $srps;
    my $lr = $pp99 / $sp99;
    push @pair_rows, sprintf '| %s | %s | %s | %.0f | %s | %s | %.0f | %s | **%.2fx** %s | **%.2fx** %s |%s',
        $p->{name}, fmt_size($p->{size}), $p->{podgen}[0], $prps, fmt_ms($pp99),
        $p->{static}[0], $srps, fmt_ms($sp99),
        $rr, ($rr >= 0.8 ? 'ok' : 'MISSED'), $lr, ($lr <= 1.5 ? 'ok' : 'MISSED'),
        $errs ? " $errs errors |" : ' 0 |';
}

# ---- L2-only hits vs redis-benchmark -----------------------------------------------

sub redis_bench {
    my ($size, $n) = @_;
    my $o = `redis-benchmark -p $rport -t set,get -d $size -n $n -c 1 --csv 2>&1`;
    die "redis-benchmark failed: $o\n" if $?;
    for (split /\n/, $o) {
        my @f = map { s/^"|"$//gr } split /,/;
        next unless @f >= 7 && $f[0] eq 'GET';
        # test, rps, avg, min, p50, p95, p99, max (ms)
        return { rps => $f[1], avg => $f[2] / 1000, p50 => $f[4] / 1000,
                 p99 => $f[6] / 1000 };
    }
    die "cannot parse redis-benchmark output:\n$o\n";
}

# Each row, median of --runs interleaved runs: the L2-only node (HIT-L2),
# the main node answering the same URL from its L1 (HIT-L1: what the HTTP
# exchange of these bytes costs by itself, same client), and
# redis-benchmark.  An L2 hit can be no faster than the two added: the
# value crosses two sockets (Redis -> nginx -> client) and four processes
# wake up where redis-benchmark has two.
my @l2_rows;
for my $c ([ 'one-sentence mp3', $small_url, length($small->{body}) ],
           [ '300-word mp3', $mp3_url, length($mp3->{body}) ]) {
    my ($name, $url, $len) = @$c;
    my (@l2, @l1, @rb);
    for my $run (1 .. $runs) {
        print STDERR "L2: $name, run $run/$runs\n";
        my $w = wrk($l2node->url($url), t => 1, c => 1);
        $bad += $w->{non2xx} + $w->{errors};
        push @l2, $w;
        my $h = wrk($main->url($url), t => 1, c => 1);
        $bad += $h->{non2xx} + $h->{errors};
        push @l1, $h;
        # as many GETs as wrk made, at least 1000
        my $n = int($w->{rps} * $duration);
        $n = 1000 if $n < 1000;
        push @rb, redis_bench($len + 1, $n);
    }
    my ($l2avg, $l1avg, $rbavg) = map { med($_, 'avg') } \@l2, \@l1, \@rb;
    my $ratio = $l2avg / $rbavg;
    push @l2_rows, sprintf '| %s | %s | %.0f | %s | %s | %s | %.0f | %s | %s | **%.2fx** %s | %.2fx | %s | %.2fx | %.2fx |',
        $name, fmt_size($len + 1),
        med(\@l2, 'rps'), fmt_ms($l2avg), fmt_ms(med(\@l2, 'p50')),
        fmt_ms(med(\@l2, 'p99')),
        med(\@rb, 'rps'), fmt_ms($rbavg), fmt_ms(med(\@rb, 'p99')),
        $ratio, ($ratio <= 1.5 ? 'ok' : 'MISSED'),
        med(\@l2, 'p99') / med(\@rb, 'p99'),
        fmt_ms($l1avg), $l1avg / $rbavg, $l2avg / ($l1avg + $rbavg);
}
my $l2hits = metric($l2node, 'podgen_cache_requests_total\{tier="l1",kind="audio",result="hit"\}');

# ---- /metrics -----------------------------------------------------------------------

my $page = Podgen::Test::request($main, 'GET', '/metrics')->{body};
my (%fam, %nonzero);
for (split /\n/, $page) {
    $fam{$1} = 1 if /^# TYPE (\S+)/;
    next unless /^([a-z_:]+)(?:\{[^}]*\})? (\S+)$/ && $2 != 0;
    my $n = $1;
    $n =~ s/_(?:bucket|sum|count)$// unless $fam{$n};
    $nonzero{$n} = 1;
}
my @zero = grep { !$nonzero{$_} } sort keys %fam;
print STDERR "/metrics\n";
my $mw = wrk($main->url('/metrics'));
$bad += $mw->{non2xx} + $mw->{errors};

# ---- metrics on/off ------------------------------------------------------------------

my @ov = (
    { name => sprintf('the %s script (%s request)', fmt_size(length $script->{body}),
                      fmt_size(length $script_body)),
      lua => lua_post('script', $script_body) },
    { name => sprintf('the topic-only script (%d B request)', length $topic_body),
      lua => lua_post('topic', $topic_body) },
);
for my $run (1 .. $oruns) {
    for my $o (@ov) {
        for my $flag ($run % 2 ? qw(on off) : qw(off on)) {
            print STDERR "overhead run $run: $o->{name}: record $flag\n";
            push @{ $o->{$flag} }, wrk($rec{$flag}->url('/v1/scripts'),
                                       lua => $o->{lua});
        }
    }
}
my @ov_rows;
for my $o (@ov) {
    $bad += $_->{non2xx} + $_->{errors} for @{ $o->{on} }, @{ $o->{off} };
    my ($on, $off) = (med($o->{on}, 'rps'), med($o->{off}, 'rps'));
    push @ov_rows, sprintf '| %s | %.0f | %s | %.0f | %s | **%.3fx** %s | %s | %s |',
        $o->{name}, $on, fmt_ms(med($o->{on}, 'p99')),
        $off, fmt_ms(med($o->{off}, 'p99')),
        $on / $off, ($on / $off >= 0.97 ? 'ok' : 'MISSED'),
        join(', ', map { sprintf '%.0f', $_->{rps} } @{ $o->{on} }),
        join(', ', map { sprintf '%.0f', $_->{rps} } @{ $o->{off} });
}

# ---- the report -----------------------------------------------------------------------

my $load1 = loadavg();
for my $n ($main, $l2node, values %rec) {
    $n->stop;
    my @b = $n->check_error_log;
    warn "error.log of " . $n->prefix . ":\n" . join("\n", @b) . "\n" if @b;
}
$mock->stop if $mock;
$redis->stop;

my $ncpu = `nproc` + 0 || 2;
my $cpu = `grep -m1 'model name' /proc/cpuinfo` =~ s/.*:\s*//r;
chomp $cpu;

my $report = join "\n",
    "## Cached responses vs static files",
    "",
    sprintf("Measured %s on %d cores (%s). Command: `perl bench/cache-static.pl`.",
            strftime('%Y-%m-%d %H:%M UTC', gmtime), $ncpu, $cpu),
    sprintf("Load average %s before the run, %s at its end (the run itself keeps both"
            . " cores busy); other processes may have shared the machine.",
            $load0, $load1),
    "One nginx, 2 workers, `access_log off`; the static side is `root html; sendfile on;`",
    "serving files written from podgen's own responses (byte-identical).",
    sprintf("`wrk -t%d -c%d -d%ds --latency` (a Lua script for POST bodies),"
            . " median of %d interleaved run%s;", $threads, $conns, $duration,
            $runs, $runs == 1 ? '' : 's'),
    "the static side is a GET (nginx's static module answers no POST).",
    "Text: the first 300 words of bench/texts/speech-4000.txt, voice alloy (slt).",
    "",
    "| artifact | size | podgen | req/s | p99 | static | req/s | p99 | req/s vs static (>= 0.8x) | p99 vs static (<= 1.5x) | errors |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    @pair_rows,
    "",
    "### L2-only hits vs Redis itself",
    "",
    "A second nginx (2 workers, `podgen_cache_zone l2only:1m max_entry=1k`: its L1",
    "keeps nothing) answers `GET /v1/audio/<key>.mp3` from Redis on every request",
    sprintf("(L1 hits during the run: %s). One client, keep-alive: `wrk -t1 -c1 -d%ds`",
            $l2hits // '?', $duration),
    "against `redis-benchmark -t set,get -c 1 -d <value size>` (the GET line), same",
    "redis-server, same value size (the artifact plus podgen's format byte).",
    "Also the main node answering the same URL from its L1 (HIT-L1), same client:",
    "what the HTTP exchange of these bytes costs without Redis. An L2 hit is that",
    "exchange plus a Redis GET (the value crosses two sockets, four processes wake",
    "where redis-benchmark has two), so \"L1 + GET\" is its floor.",
    sprintf("Median of %d interleaved run%s.", $runs, $runs == 1 ? '' : 's'),
    "",
    "| artifact | value size | HIT-L2 req/s | mean | p50 | p99 | redis GET req/s | mean | p99 | L2 mean vs Redis (<= 1.5x) | L2 p99 vs Redis | HIT-L1 mean | L1 vs Redis | L2 vs L1 + GET |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    @l2_rows,
    "",
    "### /metrics and what metrics cost",
    "",
    sprintf("GET /metrics (%d families, %d of them non-zero%s; %s bytes):"
            . " **%.0f req/s** (target >= 20,000: %s), p99 %s.",
            scalar(keys %fam), scalar(keys %fam) - @zero,
            (@zero ? '; zero: ' . join(', ', @zero) : ''),
            length $page, $mw->{rps}, ($mw->{rps} >= 20000 ? 'ok' : 'MISSED'),
            fmt_ms($mw->{p99})),
    "",
    sprintf("What metrics cost on a cached hit: POST /v1/scripts (HIT-L1) on two nginx"
            . " alike but for `podgen_metrics_record`, median of %d interleaved runs"
            . " (target: on >= 0.97x off).", $oruns),
    "",
    "| request | on req/s | p99 | off req/s | p99 | on vs off | runs on | runs off |",
    "|---|---|---|---|---|---|---|---|",
    @ov_rows,
    "",
    ($bad ? "\n**$bad non-2xx responses or socket errors** in the runs above.\n" : ''),
    "wrk, nginx and redis-server share the 2 cores: the figures are ratios within",
    "one run, not capacities.",
    "";

print $report;

if ($out) {
    my $old = -e $out ? Podgen::Test::_slurp($out) : "# Benchmark results\n\n";
    $old =~ s/## Cached responses vs static files.*?(?=\n## |\z)//s;
    $old =~ s/\n+\z/\n\n/;
    Podgen::Test::_spew($out, $old . $report);
    print "\nwritten to $out\n";
}
