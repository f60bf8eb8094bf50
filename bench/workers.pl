#!/usr/bin/env perl
# Workers benchmark (the scale-out issue): throughput with
# worker_processes 1 against 2, cold and cached, in one run.
#
# Cold TTS: a nginx whose cache stores nothing (`podgen_cache_zone
# nostore:1m max_entry=1`, as in bench/speech-cold.pl) gets distinct
# speech requests (voice slt, mp3, about 60 words each, a number in front so
# that no two are alike) from C clients sending one after another, a
# connection per request.  Cold answers stream a chunk per sentence:
# throughput = seconds of audio received in a window of S seconds that
# starts 1 s after the load (steady state), per second.  Thread settings:
#
#   - one synthesis thread per worker (`thread_pool threads=1`,
#     `podgen_tts_parallelism 1`): the worker processes are the only
#     parallelism, so this is what adding a worker gives;
#   - the pool on every core (`threads=<cpus>`, parallelism <cpus>, the
#     shape of conf/podgen.conf): one worker already spreads synthesis
#     over all cores.
#
# Cached: one short sentence made once, then `wrk -t2 -c64 -d<S>s` POSTing
# it (HIT-L1 every time), 1 worker against 2.
#
# Every variant is a nginx of its own, all started at once; the runs are
# interleaved (1 worker, 2 workers, then 2, 1, ...) and medians compared.
# The machine may be shared: before each measurement the script waits (up
# to 20 s) for the CPUs to be idle, reports the best run beside the
# median, and measures how much CPU nginx got in each run, so that the work
# done per CPU-second can be compared too.
# Target: cold throughput with 2 workers >= 1.8x that with 1 (one thread
# per worker).
#
#   perl bench/workers.pl [--runs N] [--window S] [--clients C]
#                         [--duration S] [--out bench/RESULTS.md]
#
# --window: seconds of cold load counted (10); --clients: cold clients (16);
# --duration: seconds of each wrk run (5).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use JSON::PP;
use File::Temp ();
use Time::HiRes qw(time sleep);
use POSIX qw(strftime);
use Podgen::Test;

$SIG{PIPE} = 'IGNORE';

my ($runs, $window, $clients, $duration, $out) = (3, 10, 16, 5, undef);
GetOptions('runs=i' => \$runs, 'window=i' => \$window,
           'clients=i' => \$clients, 'duration=i' => \$duration,
           'out=s' => \$out)
    or die "usage: $0 [--runs N] [--window S] [--clients C] [--duration S]"
         . " [--out FILE]\n";

die "wrk is not installed\n" unless which('wrk');

my $ncpu = `nproc` + 0 || 2;
my $JS = JSON::PP->new->canonical;
my %CT = ('Content-Type' => 'application/json');
my $tmp = File::Temp::tempdir('podgen-bench-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);

sub loadavg {
    my $l = Podgen::Test::_slurp('/proc/loadavg') // '';
    return join ' ', (split ' ', $l)[0 .. 2];
}
my $load0 = loadavg();
my $t_start = time;

# ---- inputs ----------------------------------------------------------------

my $root = Podgen::Test::repo_root();
my $source = Podgen::Test::_slurp("$root/bench/texts/speech-4000.txt")
    // die "bench/texts/speech-4000.txt: $!\n";
my @words = split ' ', $source;
# request i: "Request i." and 60 words of the text from a place of its own
sub cold_body {
    my ($i) = @_;
    my $start = ($i * 37) % (@words - 60);
    my $t = "Request $i. " . join(' ', @words[$start .. $start + 59]);
    return $JS->encode({ model => 'tts-1', voice => 'slt',
                         response_format => 'mp3', input => $t });
}
my $sec_per_byte;    # of the cold answers' mp3, measured at the warm-up
my $cached_body = $JS->encode({ model => 'tts-1', voice => 'alloy',
                                response_format => 'mp3',
                                input => 'One short sentence, served from the cache.' });

# ---- the nginx instances -----------------------------------------------------

my $LOC = 'location = /v1/audio/speech { podgen_speech; }
    location = /metrics { podgen_metrics; }';

my @cold = (
    { name => 'one thread per worker', threads => 1, par => 1 },
    { name => "pool on $ncpu cores", threads => $ncpu, par => $ncpu },
);
my %ng;
for my $v (@cold) {
    for my $w (1, 2) {
        my $n = Podgen::Test::Nginx->new(
            workers => $w,
            worker_connections => 4096,
            main_config => "thread_pool bench threads=$v->{threads} "
                           . "max_queue=65536;",
            http_config => "podgen_thread_pool bench; "
                           . "podgen_tts_parallelism $v->{par}; "
                           . "client_body_buffer_size 64k; "
                           . "podgen_cache_zone nostore:1m max_entry=1; "
                           . "log_format pids '\$pid';",
            # which worker answered each request
            config => "$LOC\naccess_log logs/pids.log pids;");
        $n->start;
        $ng{"$v->{name}/$w"} = $n;
    }
}
for my $w (1, 2) {
    my $n = Podgen::Test::Nginx->new(workers => $w, worker_connections => 4096,
                                     config => "access_log off;\n$LOC");
    $n->start;
    $ng{"cached/$w"} = $n;
}

sub post {
    my ($n, $body) = @_;
    my $r = Podgen::Test::request($n, 'POST', '/v1/audio/speech',
                                  body => $body, headers => \%CT,
                                  timeout => 120);
    die "POST /v1/audio/speech: $r->{status} $r->{body}\n"
        unless $r->{status} == 200;
    return $r;
}

# ---- a quiet machine ------------------------------------------------------------

# (busy, total) jiffies of all CPUs, from /proc/stat
sub cpu_jiffies {
    my $st = Podgen::Test::_slurp('/proc/stat') // '';
    my ($l) = $st =~ /^cpu\s+(.*)$/m;
    my @f = split ' ', $l // '';
    my $total = 0;
    $total += $_ for @f[0 .. 7];
    my $idle = $f[3] + $f[4];
    return ($total - $idle, $total);
}

# Other sessions may share this machine: before each measurement, wait
# (at most 20 s) until the CPUs have been at least 80% idle for a second.
# Returns the idle share seen last.
sub wait_quiet {
    my $end = time + 20;
    my $idle = 0;
    while (1) {
        my ($b0, $t0) = cpu_jiffies();
        sleep 1;
        my ($b1, $t1) = cpu_jiffies();
        $idle = $t1 > $t0 ? 1 - ($b1 - $b0) / ($t1 - $t0) : 0;
        return $idle if $idle >= 0.8 || time > $end;
    }
}

# CPU seconds used so far by a nginx's workers (their threads included)
sub nginx_cpu {
    my ($n) = @_;
    my $s = 0;
    for my $pid ($n->worker_pids) {
        my $st = Podgen::Test::_slurp("/proc/$pid/stat") // next;
        my @f = split ' ', substr($st, rindex($st, ')') + 2);
        $s += ($f[11] + $f[12]) / 100;
    }
    return $s;
}

# ---- cold: C clients for a while ----------------------------------------------------

# C clients send cold requests one after another (a connection each) for
# 1 + $window seconds.  Cold answers stream, a chunk of mp3 per sentence as
# soon as it is synthesized and encoded: the audio bytes that arrive inside
# the window [t0 + 1, t0 + 1 + window] measure the steady state (no
# ramp-up, no tail, and no lumps: concurrent requests share the threads
# sentence by sentence, so whole answers tend to finish together).
# Returns { bytes (in the window), ok, errors, cores, cpu, quiet }.
sub cold_run {
    my ($n, $offset) = @_;
    pipe my $res_r, my $res_w or die "pipe: $!";
    my @kids;
    my $quiet = wait_quiet();
    my $t0 = time;
    my ($w0, $w1) = ($t0 + 1, $t0 + 1 + $window);
    for my $c (1 .. $clients) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $res_r;
            my ($k, $bytes, $ok, $err) = (0, 0, 0, 0);
            while (time < $w1) {
                my $i = $offset + $c * 1000 + $k++;
                my $r = Podgen::Test::stream_request($n, 'POST',
                    '/v1/audio/speech', cold_body($i), \%CT,
                    timeout => 120, discard_body => 1,
                    on_chunk => sub {
                        my $now = time;
                        $bytes += length $_[0] if $now >= $w0 && $now <= $w1;
                    });
                if ($r->{status} == 200 && $r->{complete}) { $ok++ } else { $err++ }
            }
            syswrite $res_w, "$bytes $ok $err\n";
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    close $res_w;
    # the CPU nginx uses inside the window
    sleep $w0 - time if $w0 > time;
    my $c0 = nginx_cpu($n);
    sleep $w1 - time if $w1 > time;
    my $used = nginx_cpu($n) - $c0;
    my $buf = '';
    while (1) {
        my $k = sysread $res_r, $buf, 65536, length $buf;
        last unless $k;
    }
    waitpid $_, 0 for @kids;
    my ($bytes, $ok, $err) = (0, 0, 0);
    for (split /\n/, $buf) {
        my @f = split ' ';
        $bytes += $f[0];
        $ok += $f[1];
        $err += $f[2];
    }
    return { bytes => $bytes, rate => $bytes * $sec_per_byte / $window,
             ok => $ok, errors => $err, quiet => $quiet,
             cores => $used / $window, cpu => $used };
}

# ---- cached: wrk --------------------------------------------------------------------

sub secs {
    my ($v, $u) = @_;
    return $v / 1e6 if $u eq 'us';
    return $v / 1e3 if $u eq 'ms';
    return $v * 60 if $u eq 'm';
    return $v;
}

my $lua = "$tmp/cached.lua";
Podgen::Test::_spew($lua, "wrk.method = \"POST\"\n"
    . "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
    . "wrk.body = [==[$cached_body]==]\n");

sub wrk_run {
    my ($n) = @_;
    my $quiet = wait_quiet();
    my $cmd = "wrk -t2 -c64 -d${duration}s --latency -s $lua "
            . $n->url('/v1/audio/speech') . ' 2>&1';
    my $o = `$cmd`;
    die "wrk failed: $o\n" if $?;
    my %r;
    ($r{rps}) = $o =~ /^Requests\/sec:\s+([\d.]+)/m;
    if ($o =~ /^\s+99%\s+([\d.]+)(us|ms|s|m)\b/m) { $r{p99} = secs($1, $2) }
    ($r{non2xx}) = $o =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    $r{non2xx} //= 0;
    $r{errors} = 0;
    if ($o =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/) {
        $r{errors} = $1 + $2 + $3 + $4;
    }
    die "cannot parse wrk output:\n$o\n" unless defined $r{rps} && defined $r{p99};
    $r{quiet} = $quiet;
    return \%r;
}

sub best {
    my $m = shift;
    $m = $_ > $m ? $_ : $m for @_;
    return $m;
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}

# ---- warm-up, then the runs -------------------------------------------------------------

# seconds of audio per byte of mp3, from a warm-up answer
for my $k (sort keys %ng) {
    next if $k =~ /^cached/;
    for my $i (1 .. 2) {                          # pages in voices, libs
        my $r = post($ng{$k}, cold_body(-$i));
        $sec_per_byte //= (Podgen::Test::audio_duration($r->{body}, 'mp3')
                           // die "the mp3 does not decode\n")
                          / length $r->{body};
    }
}
for my $k (grep { /^cached/ } sort keys %ng) {
    post($ng{$k}, $cached_body);
    sleep 0.2;
    my $r = post($ng{$k}, $cached_body);
    die "$k: not HIT-L1\n"
        unless ($r->{headers}{'x-podgen-cache'} // '') eq 'HIT-L1';
}

# requests per worker during the runs: the pids in logs/pids.log after
# the warm-up
my %pid_mark;
sub pid_lines {
    my ($n) = @_;
    return split /\n/, Podgen::Test::_slurp($n->prefix . '/logs/pids.log') // '';
}
$pid_mark{$_} = scalar(() = pid_lines($ng{$_})) for grep { !/^cached/ } keys %ng;

my (%cold, %cached);
my $offset = 0;
for my $run (1 .. $runs) {
    my @order = $run % 2 ? (1, 2) : (2, 1);
    for my $v (@cold) {
        for my $w (@order) {
            print STDERR "run $run: cold, $v->{name}, $w worker(s)\n";
            $offset += 1000;
            push @{ $cold{"$v->{name}/$w"} }, cold_run($ng{"$v->{name}/$w"},
                                                      $offset);
        }
    }
    for my $w (@order) {
        print STDERR "run $run: cached, $w worker(s)\n";
        push @{ $cached{$w} }, wrk_run($ng{"cached/$w"});
    }
}

# how the work spread over the workers: the CPU time each worker process
# used (its threads included), from /proc
sub worker_cpu {
    my ($n) = @_;
    my @t;
    for my $pid ($n->worker_pids) {
        my $st = Podgen::Test::_slurp("/proc/$pid/stat") // next;
        my @f = split ' ', substr($st, rindex($st, ')') + 2);
        push @t, ($f[11] + $f[12]) / 100;    # utime + stime, in ticks of 10 ms
    }
    return @t;
}
my %cpu = map { $_ => [ worker_cpu($ng{$_}) ] } keys %ng;
my %share;
for my $k (keys %pid_mark) {
    my @l = pid_lines($ng{$k});
    my %c;
    $c{$_}++ for @l[$pid_mark{$k} .. $#l];
    $share{$k} = [ sort { $b <=> $a } values %c ];
}

$_->stop for values %ng;

# ---- report ----------------------------------------------------------------------------------

my $bad = 0;
my @cold_rows;
my (%ratio, %bratio, %eratio, %med, %medcores);
for my $v (@cold) {
    my (%m, %b, %e);
    for my $w (1, 2) {
        my $l = $cold{"$v->{name}/$w"};
        $m{$w} = median(map { $_->{rate} } @$l);
        $b{$w} = best(map { $_->{rate} } @$l);
        # seconds of audio per CPU-second of nginx, over all runs
        my ($audio, $cpu) = (0, 0);
        $audio += $_->{rate} * $window, $cpu += $_->{cpu} for @$l;
        $e{$w} = $cpu ? $audio / $cpu : 0;
        $bad += $_->{errors} for @$l;
        $med{"$v->{name}/$w"} = $m{$w};
        $medcores{"$v->{name}/$w"} = median(map { $_->{cores} } @$l);
    }
    $ratio{ $v->{name} } = $m{2} / $m{1};
    $bratio{ $v->{name} } = $b{2} / $b{1};
    $eratio{ $v->{name} } = $e{1} ? $e{2} / $e{1} : 0;
    for my $w (1, 2) {
        my $l = $cold{"$v->{name}/$w"};
        my $errs = 0;
        $errs += $_->{errors} for @$l;
        push @cold_rows, sprintf '| %s | %d | %.0fx (%s) | %.0fx | %.2f | %.0f | %s | %s |%s',
            $v->{name}, $w, $m{$w},
            join(', ', map { sprintf '%.0f', $_->{rate} } @$l),
            $b{$w},
            median(map { $_->{cores} } @$l), $e{$w},
            join(' / ', @{ $share{"$v->{name}/$w"} || [] }),
            $w == 2 ? sprintf('**%.2fx** / %.2fx / %.2f', $ratio{ $v->{name} },
                              $bratio{ $v->{name} }, $eratio{ $v->{name} })
                    : '',
            $errs ? " $errs errors |" : ' 0 |';
    }
}
my @quiet = map { $_->{quiet} } map { @$_ } values(%cold), values(%cached);
my $noisy = grep { $_ < 0.8 } @quiet;

my %cm = map { $_ => median(map { $_->{rps} } @{ $cached{$_} }) } 1, 2;
my $cratio = $cm{2} / $cm{1};
my @cached_rows;
for my $w (1, 2) {
    my $l = $cached{$w};
    my $errs = 0;
    $errs += $_->{non2xx} + $_->{errors} for @$l;
    $bad += $errs;
    push @cached_rows, sprintf '| %d | %.0f req/s (%s) | %.2f ms | %s | %s |%s',
        $w, $cm{$w}, join(', ', map { sprintf '%.0f', $_->{rps} } @$l),
        median(map { $_->{p99} } @$l) * 1000,
        join(' + ', map { sprintf '%.1f s', $_ } @{ $cpu{"cached/$w"} }),
        $w == 2 ? sprintf('**%.2fx**', $cratio) : '',
        $errs ? " $errs errors |" : ' 0 |';
}

my $cpu = `grep -m1 'model name' /proc/cpuinfo` =~ s/.*:\s*//r;
chomp $cpu;
my $load1 = loadavg();
my $one = $ratio{'one thread per worker'};
my $bone = $bratio{'one thread per worker'};
my $eone = $eratio{'one thread per worker'};
my $pool = $ratio{"pool on $ncpu cores"};
my $bpool = $bratio{"pool on $ncpu cores"};
# all cores through the pool, against one core: both with one worker
my $cores1 = $med{"pool on $ncpu cores/1"} / $med{'one thread per worker/1'};
my $verdict = sprintf('%s: with one synthesis thread per worker, 2 workers give %.2fx the '
                      . 'cold throughput of 1 (median of the runs; best run against best '
                      . 'run: %.2fx; target >= 1.8x); nginx got %.2f cores with 2 workers. Per '
                      . 'CPU-second of nginx the 2 workers do %.2f times the work of 1.',
                      $one >= 1.8 ? '**Target met**' : '**Target MISSED**',
                      $one, $bone, $medcores{'one thread per worker/2'}, $eone);

my $report = join "\n",
    "## Workers: 1 against 2, cold and cached",
    "",
    sprintf("Measured %s UTC on %d cores (%s); %d runs, 1 and 2 workers alternating.",
            strftime('%Y-%m-%d %H:%M', gmtime $t_start), $ncpu, $cpu, $runs),
    sprintf("Load average %s before the run, %s at its end. Before each measurement the script waits",
            $load0, $load1),
    sprintf("(up to 20 s) for a second with the CPUs >= 80%% idle: %d of %d measurements started on a",
            @quiet - $noisy, scalar @quiet),
    "machine that quiet; other sessions' processes may still have taken CPU during a run, which",
    "is why the best run is shown beside the median. Command: `perl bench/workers.pl`.",
    "",
    sprintf("Cold: %d clients each sending distinct speech requests one after another (voice slt, mp3,", $clients),
    "60 words of bench/texts/speech-4000.txt each, a connection per request, nothing cached:",
    "`podgen_cache_zone nostore:1m max_entry=1`). Cold answers stream a chunk per sentence as it",
    sprintf("is made: throughput = seconds of audio received in a window of %d s that starts 1 s after", $window),
    "the load, per second (x real time). nginx cores: CPU time of the workers (their threads",
    "included) in the window / its length, median. Per CPU-s: seconds of audio per CPU-second of",
    "nginx, all runs (the same figure for 1 and 2 workers means the work scales with the cores",
    "nginx gets). Requests per worker: how all runs' requests spread over the worker processes",
    "(from `\$pid` in an access log).",
    "",
    "| synthesis threads | workers | throughput, median (runs) | best | nginx cores | per CPU-s | requests per worker | 2 vs 1: median / best / per CPU-s | errors |",
    "|---|---|---|---|---|---|---|---|---|",
    @cold_rows,
    "",
    sprintf("Cached: one short sentence (mp3) made once, then `wrk -t2 -c64 -d%ds` POSTing it (HIT-L1); median.", $duration),
    "",
    "| workers | cached throughput (runs) | p99 | CPU per worker, all runs | 2 vs 1 | errors |",
    "|---|---|---|---|---|---|",
    @cached_rows,
    "",
    $verdict,
    sprintf("With the pool on all %d cores (the shape of conf/podgen.conf) a second worker gives %.2fx", $ncpu, $pool),
    sprintf("(best %.2fx): one worker already has every core at hand; it got %.2f cores and made %.2fx", $bpool, $medcores{"pool on $ncpu cores/1"}, $cores1),
    "the throughput of one worker with one thread. For cold TTS the thread pool, not the worker",
    "count, is what spreads synthesis over the cores; the work per CPU-second is the same in every",
    "row, so the throughput follows the CPU nginx gets.",
    sprintf("Cached answers never leave the event loop: 2 workers gave %.2fx; wrk runs on the same %d", $cratio, $ncpu),
    "cores and takes its share of them, so this is not what a second core gives a dedicated server.",
    "";

print $report;

if ($out) {
    my $old = -e $out ? do { local (@ARGV, $/) = $out; <> } : "# Benchmark results\n\n";
    $old =~ s/## Workers: 1 against 2, cold and cached.*?(?=\n## |\z)//s;
    $old =~ s/\n+\z/\n\n/;
    open my $o, '>', $out or die "$out: $!";
    print $o $old, $report;
    close $o;
    print "\nwritten to $out\n";
}

exit($bad ? 1 : 0);
