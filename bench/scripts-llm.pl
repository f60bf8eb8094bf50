#!/usr/bin/env perl
# Scripts from an LLM under load: N concurrent, distinct, cold
# POST /v1/scripts, the mock LLM answering each after L ms, nginx with 2
# workers.  The baseline is the LLM latency itself: a perfect server takes
# L ms for all of them at once.  Also: errors, and the RSS growth of the
# workers over the run.
#
#   perl bench/scripts-llm.pl [--n 1000] [--latency 2000] [--out FILE]

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use IO::Socket::IP;
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP);
use Errno qw(EAGAIN EINPROGRESS);
use Time::HiRes qw(time);
use POSIX qw(strftime);
use Podgen::Test;

my ($n, $latency, $out) = (1000, 2000, undef);
GetOptions('n=i' => \$n, 'latency=i' => \$latency, 'out=s' => \$out)
    or die "usage\n";

# 1000 client sockets + 1000 nginx client connections + upstream ones
my $nofile = `sh -c 'ulimit -n'` + 0;
die "ulimit -n is $nofile; need more than " . 3 * $n . "\n"
    if $nofile && $nofile < 3 * $n;

my $mock = Podgen::Test::start_mock_llm(args => ['--quiet']);
my $ng = Podgen::Test::Nginx->new(
    workers => 2,
    worker_connections => 8192,
    main_config => "worker_rlimit_nofile 20000;",
    http_config => "podgen_llm http://127.0.0.1:" . $mock->port
                   . "/v1 model=mock-slow-$latency timeout=30s "
                   . "max_concurrency=1024 retries=0; "
                   . "podgen_llm_fallback off;",
    config => 'location = /v1/scripts { podgen_scripts; }');
$ng->start;

sub rss {
    my $t = 0;
    for my $pid ($ng->worker_pids) {
        open my $s, '<', "/proc/$pid/status" or next;
        while (<$s>) { $t += $1 if /^VmRSS:\s+(\d+)/ }
    }
    return $t / 1024;
}

# one warm-up request: workers load voices, curl connects
Podgen::Test::request($ng, 'POST', '/v1/scripts',
    body => '{"topic":"warm up"}',
    headers => { 'Content-Type' => 'application/json' });

my $rss0 = rss();

# N requests at once on fresh connections; returns (wall, ok)
sub run_load {
    my ($port, $path, $make_body, $is_ok) = @_;
    my $poll = IO::Poll->new;
    my %conn;
    my ($done, $ok) = (0, 0);
    my $t0 = time;

    for my $i (1 .. $n) {
        my $body = $make_body->($i);
        my $req = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
                . "Content-Type: application/json\r\nConnection: close\r\n"
                . "Content-Length: " . length($body) . "\r\n\r\n$body";
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $port, Blocking => 0)
            or die "connect: $!";
        $conn{fileno $s} = { s => $s, out => $req, in => '' };
        $poll->mask($s => POLLOUT);
    }

    while ($done < $n && time - $t0 < 120) {
        $poll->poll(1);
        for my $s ($poll->handles) {
            my $ev = $poll->events($s) or next;
            my $c = $conn{fileno $s};
            if ($ev & POLLOUT) {
                my $w = syswrite $s, $c->{out};
                substr($c->{out}, 0, $w) = '' if $w;
                $poll->mask($s => POLLIN) if $c->{out} eq '';
                next;
            }
            my $r = sysread $s, my $buf, 65536;
            next if !defined $r && $! == EAGAIN;
            if ($r) { $c->{in} .= $buf; next }
            $poll->remove($s);
            close $s;
            $done++;
            $ok++ if $c->{in} =~ m{^HTTP/1\.1 200 } && $is_ok->($c->{in});
        }
    }

    return (time - $t0, $ok);
}

# the baseline: the same load straight at the mock LLM, no podgen between
my ($direct) = run_load($mock->port, '/v1/chat/completions', sub {
    qq({"model":"mock-slow-$latency","messages":[{"role":"user",)
    . qq("content":"Benchmark topic number $_[0] about tea and time"}]})
}, sub { 1 });

my ($wall, $ok) = run_load($ng->port, '/v1/scripts', sub {
    qq({"topic":"Benchmark topic number $_[0] about tea and time"})
}, sub { $_[0] =~ /"engine":"llm"/ });


my $rss1 = rss();
$ng->stop;
$mock->stop;

my $errors = $n - $ok;
my $report = join "\n",
    "## Scripts from an LLM: $n concurrent cold requests",
    "",
    sprintf("Measured %s on 2 cores; 2 nginx workers; t/mock-llm answering "
            . "each call after %d ms. Command: `perl bench/scripts-llm.pl`.",
            strftime('%Y-%m-%d', gmtime), $latency),
    "",
    "| requests | ok | errors | wall time | same load straight to the mock | podgen overhead | worker RSS before | after | growth |",
    "|---|---|---|---|---|---|---|---|---|",
    sprintf("| %d | %d | %d | %.2f s | %.2f s | %+.2f s | %.0f MB | %.0f MB | %+.0f MB |",
            $n, $ok, $errors, $wall, $direct, $wall - $direct, $rss0, $rss1,
            $rss1 - $rss0),
    "",
    "Target (issue 4): 1000 requests with 2 s latency in <= 2.5 s, no error.",
    "The load generator and the mock are single-threaded Perl on the same 2",
    "cores; the direct run shows what they cost by themselves.",
    "";

print $report;

if ($out) {
    my $old = -e $out ? Podgen::Test::_slurp($out) : "# Benchmark results\n\n";
    $old =~ s/## Scripts from an LLM:.*?(?=\n## |\z)//s;
    $old =~ s/\n+\z/\n\n/;
    Podgen::Test::_spew($out, $old . $report);
    print "\nwritten to $out\n";
}
