# The podgen_metrics location: Prometheus text format 0.0.4 with every
# family of SPEC.md section 5 (and the first-audio histogram and finished
# job counters), OpenMetrics 1.0 on Accept: application/openmetrics-text
# (# EOF, _created, counter families without _total; promtool's strict
# parser), durations to the microsecond (# HELP, # TYPE, well-formed histograms,
# promtool-clean), counters that move with the traffic and are exact when
# two workers share them, that survive a HUP reload, ?format=json,
# podgen_metrics_buckets, podgen_build_info and the connection gauges.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use IO::Socket::IP;
use Socket ();
use IO::Poll qw(POLLIN POLLHUP POLLERR);
use Errno qw(EAGAIN EINTR);
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my %CT = ('Content-Type' => 'application/json');

# family => type
my %FAMILY = (
    podgen_requests_total            => 'counter',
    podgen_request_duration_seconds  => 'histogram',
    podgen_inflight_requests         => 'gauge',
    podgen_cache_requests_total      => 'counter',
    podgen_cache_hit_ratio           => 'gauge',
    podgen_cache_bytes               => 'gauge',
    podgen_cache_entries             => 'gauge',
    podgen_cache_evictions_total     => 'counter',
    podgen_coalesced_requests_total  => 'counter',
    podgen_tts_synthesis_seconds     => 'histogram',
    podgen_tts_audio_seconds_total   => 'counter',
    podgen_llm_requests_total        => 'counter',
    podgen_llm_duration_seconds      => 'histogram',
    podgen_llm_tokens_total          => 'counter',
    podgen_llm_retries_total         => 'counter',
    podgen_llm_fallbacks_total       => 'counter',
    podgen_active_connections        => 'gauge',
    podgen_thread_pool_queue         => 'gauge',
    podgen_jobs                      => 'gauge',
    podgen_jobs_completed_total      => 'counter',
    podgen_jobs_failed_total         => 'counter',
    podgen_speech_first_audio_seconds => 'histogram',
    podgen_redis_up                  => 'gauge',
    podgen_redis_errors_total        => 'counter',
    podgen_errors_total              => 'counter',
    podgen_build_info                => 'gauge',
);

# Parse the text format.  Returns {help => {fam => text}, type => {fam =>
# type}, samples => [[name, {labels}, value, line]], value => {'name{..}'
# => value}, errors => [...]}.
sub parse_prom {
    my ($text) = @_;
    my (%help, %type, @samples, %value, @err, %series);
    my $n = 0;
    for my $line (split /\n/, $text) {
        $n++;
        if ($line =~ /^# HELP (\w+) (.*)$/) {
            push @err, "line $n: second HELP for $1" if exists $help{$1};
            $help{$1} = $2;
        } elsif ($line =~ /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/) {
            push @err, "line $n: second TYPE for $1" if exists $type{$1};
            $type{$1} = $2;
        } elsif ($line =~ /^#/) {
            push @err, "line $n: unknown comment: $line";
        } elsif ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/) {
            my ($name, $lab, $v) = ($1, $2 // '', $3);
            my %l;
            while ($lab =~ /\G([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)",?/gc) { $l{$1} = $2 }
            push @err, "line $n: bad labels: $line"
                if length $lab && (pos($lab) // 0) != length $lab;
            push @err, "line $n: bad value: $line"
                unless $v =~ /^(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|[-+]?Inf|NaN)$/;
            my $key = $name . (length $lab ? "{$lab}" : '');
            push @err, "line $n: duplicate series $key" if $series{$key}++;
            push @samples, [ $name, \%l, $v, $line ];
            $value{$key} = $v;
        } elsif ($line ne '') {
            push @err, "line $n: not a sample: $line";
        }
    }
    return { help => \%help, type => \%type, samples => \@samples,
             value => \%value, errors => \@err };
}

sub family_of {
    my ($p, $name) = @_;
    return $name if $p->{type}{$name};
    (my $base = $name) =~ s/_(?:bucket|sum|count)$//;
    return $base if ($p->{type}{$base} // '') eq 'histogram';
    return undef;
}

sub get_metrics {
    my ($ng, $path) = @_;
    my $r = request($ng, 'GET', $path // '/metrics', timeout => 10);
    return ($r, parse_prom($r->{body}));
}

# nginx counts a request when it logs it, after the response: an error
# reply is followed by a lingering close (shutdown(SHUT_WR), then nginx
# reads what the client still sends), so the client can see EOF a moment
# before the request is counted and leaves the in-flight gauge.  Poll
# until $cond holds (at most 3 s).
sub settled_metrics {
    my ($ng, $cond) = @_;
    my $deadline = time + 3;
    while (1) {
        my ($r, $p) = get_metrics($ng);
        return ($r, $p) if $cond->($p) || time > $deadline;
        sleep 0.05;
    }
}

sub val {
    my ($p, $key) = @_;
    return $p->{value}{$key} // 0;
}

# The histogram series of a family, grouped by their labels without le:
# { 'endpoint="speech"' => { buckets => [[le, v], ...], sum, count } }
sub histograms {
    my ($p, $fam) = @_;
    my %h;
    for my $s (@{ $p->{samples} }) {
        my ($name, $l, $v) = @$s;
        next unless $name =~ /^\Q$fam\E_(bucket|sum|count)$/;
        my $kind = $1;
        my $id = join ',', map { "$_=\"$l->{$_}\"" } sort grep { $_ ne 'le' } keys %$l;
        if ($kind eq 'bucket') { push @{ $h{$id}{buckets} }, [ $l->{le}, $v ] }
        else { $h{$id}{$kind} = $v }
    }
    return \%h;
}

sub histograms_ok {
    my ($p, $name) = @_;
    my @bad;
    for my $fam (grep { $p->{type}{$_} eq 'histogram' } sort keys %{ $p->{type} }) {
        my $h = histograms($p, $fam);
        push @bad, "$fam: no series" unless %$h;
        for my $id (sort keys %$h) {
            my $b = $h->{$id}{buckets} || [];
            push @bad, "$fam\{$id}: no +Inf bucket"
                unless @$b && $b->[-1][0] eq '+Inf';
            push @bad, "$fam\{$id}: no _sum/_count"
                unless defined $h->{$id}{sum} && defined $h->{$id}{count};
            for my $i (1 .. $#$b) {
                push @bad, "$fam\{$id}: le not increasing at $b->[$i][0]"
                    unless $b->[$i][0] eq '+Inf' || $b->[$i][0] > $b->[$i - 1][0];
                push @bad, "$fam\{$id}: buckets not cumulative at le=$b->[$i][0]"
                    if $b->[$i][1] < $b->[$i - 1][1];
            }
            push @bad, "$fam\{$id}: +Inf $b->[-1][1] != _count $h->{$id}{count}"
                if @$b && defined $h->{$id}{count} && $b->[-1][1] != $h->{$id}{count};
        }
    }
    ok(!@bad, "$name: histograms are well-formed") or diag join "\n", @bad;
}

sub les {
    my ($p, $fam) = @_;
    my $h = histograms($p, $fam);
    my ($first) = sort keys %$h;
    return defined $first ? [ map { $_->[0] } @{ $h->{$first}{buckets} } ] : [];
}

# Open $n connections at once, send $req on each, read every answer.
sub burst {
    my ($ng, $n, $req) = @_;
    my (@socks, %buf);
    my $poll = IO::Poll->new;
    for (1 .. $n) {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $ng->port,
                                    Timeout => 10) or die "connect: $@";
        push @socks, $s;
    }
    for my $s (@socks) {
        syswrite($s, $req) == length $req or die 'short write';
        $s->blocking(0);
        $poll->mask($s => POLLIN);
        $buf{$s} = '';
    }
    my $left = $n;
    my $deadline = time + 30;
    while ($left && time < $deadline) {
        $poll->poll($deadline - time) > 0 or next;
        for my $s ($poll->handles(POLLIN | POLLHUP | POLLERR)) {
            my $r = sysread $s, $buf{$s}, 65536, length $buf{$s};
            next if !defined $r && ($! == EAGAIN || $! == EINTR);
            if (!$r) { $poll->remove($s); $left-- }
        }
    }
    my @st = map { my ($r) = parse_responses($buf{$_}); $r ? $r->{status} : 0 } @socks;
    close $_ for @socks;
    return @st;
}

my $CONFIG = <<'EOF';
location = /v1/audio/speech { podgen_speech; }
location = /v1/scripts { podgen_scripts; }
location = /v1/voices { podgen_voices; }
location = /metrics { access_log off; podgen_metrics; }
access_log logs/pid.log pidlog;
EOF
my $HTTP = q{log_format pidlog '$pid $status $request_uri';};

my $ng = Podgen::Test::Nginx->new(workers => 2, config => $CONFIG,
                                  http_config => $HTTP,
                                  main_config => 'thread_pool default threads=4;');
$ng->start;
$ng->mark_error_log;

# --- format ------------------------------------------------------------------

{
    my ($r, $p) = get_metrics($ng);
    is($r->{status}, 200, 'GET /metrics: 200');
    like($r->{headers}{'content-type'} // '', qr{^text/plain; version=0\.0\.4(?:;|$)},
         'Content-Type: text/plain; version=0.0.4');
    ok(!@{ $p->{errors} }, 'every line parses') or diag join "\n", @{ $p->{errors} };
    for my $fam (sort keys %FAMILY) {
        ok(exists $p->{help}{$fam} && length $p->{help}{$fam}, "$fam: # HELP");
        is($p->{type}{$fam}, $FAMILY{$fam}, "$fam: # TYPE $FAMILY{$fam}");
        # a labelled counter may have no series before its first event
        next if $fam eq 'podgen_requests_total';
        ok((grep { (family_of($p, $_->[0]) // '') eq $fam } @{ $p->{samples} }),
           "$fam: has samples");
    }
    my @orphans = grep { !defined family_of($p, $_->[0]) } @{ $p->{samples} };
    ok(!@orphans, 'every sample belongs to a family with a # TYPE')
        or diag join "\n", map { $_->[3] } @orphans;
    # HELP/TYPE come before the family's samples
    my (%seen_type, @early);
    for my $line (split /\n/, $r->{body}) {
        if ($line =~ /^# TYPE (\w+)/) { $seen_type{$1} = 1; next }
        next if $line =~ /^#/ || $line !~ /^(\w+)/;
        my $f = family_of($p, $1);
        push @early, $line if defined $f && !$seen_type{$f};
    }
    ok(!@early, '# TYPE precedes the samples of its family') or diag "@early";
    histograms_ok($p, 'fresh');

    # the labels SPEC.md names
    for my $res (qw(ok error timeout invalid)) {
        ok(exists $p->{value}{"podgen_llm_requests_total{result=\"$res\"}"},
           "podgen_llm_requests_total{result=\"$res\"}");
    }
    ok((grep { $_->[0] eq 'podgen_llm_tokens_total' && defined $_->[1]{type} } @{ $p->{samples} }),
       'podgen_llm_tokens_total{type}');
    ok((grep { $_->[0] eq 'podgen_jobs' && defined $_->[1]{status} } @{ $p->{samples} }),
       'podgen_jobs{status}');
    ok((grep { $_->[0] eq 'podgen_errors_total' && defined $_->[1]{type} } @{ $p->{samples} }),
       'podgen_errors_total{type}');
    for my $ep (qw(speech scripts voices)) {
        ok(exists $p->{value}{"podgen_inflight_requests{endpoint=\"$ep\"}"},
           "podgen_inflight_requests{endpoint=\"$ep\"}");
        ok(exists $p->{value}{"podgen_request_duration_seconds_count{endpoint=\"$ep\"}"},
           "podgen_request_duration_seconds{endpoint=\"$ep\"}");
    }
    ok((grep { $_->[0] eq 'podgen_cache_requests_total'
               && defined $_->[1]{tier} && defined $_->[1]{kind} && defined $_->[1]{result} }
        @{ $p->{samples} }), 'podgen_cache_requests_total{tier,kind,result}');

    # podgen_build_info
    my ($bi) = grep { $_->[0] eq 'podgen_build_info' } @{ $p->{samples} };
    ok($bi, 'podgen_build_info sample');
    if ($bi) {
        is($bi->[2], 1, 'podgen_build_info is 1');
        like($bi->[1]{version} // '', qr/^\d+\.\d+\.\d+/, "version=\"$bi->[1]{version}\"");
        like($bi->[1]{flite} // '', qr/^\d+(?:\.\d+)+/, "flite=\"$bi->[1]{flite}\"");
        my $nv = `$ENV{PODGEN_NGINX} -v 2>&1` if $ENV{PODGEN_NGINX};
        $nv = `/usr/sbin/nginx -v 2>&1` unless $nv;
        my ($want) = ($nv // '') =~ m{nginx/(\d+\.\d+\.\d+)};
        is($bi->[1]{nginx}, $want, "nginx=\"$bi->[1]{nginx}\" is the running nginx");
    }

    my $head = request($ng, 'HEAD', '/metrics');
    is($head->{status}, 200, 'HEAD /metrics: 200');
    is($head->{body}, '', 'HEAD /metrics: no body');
}

# --- promtool ----------------------------------------------------------------

sub promtool_ok {
    my ($text, $name) = @_;
    SKIP: {
        my $pt = which('promtool');
        skip 'promtool is not installed', 1 unless $pt;
        my $dir = File::Temp::tempdir(CLEANUP => 1);
        open my $fh, '>', "$dir/m.txt" or die;
        print $fh $text;
        close $fh;
        my $out = `$pt check metrics < $dir/m.txt 2>&1`;
        my $rc = $?;
        is($rc, 0, "$name: promtool check metrics") or diag $out;
    }
}
use File::Temp ();

promtool_ok(request($ng, 'GET', '/metrics')->{body}, 'fresh');

# --- counters move -----------------------------------------------------------

{
    # 3 good and 2 bad speech requests
    my @st;
    for my $i (1 .. 3) {
        push @st, request($ng, 'POST', '/v1/audio/speech', headers => \%CT,
            body => speech_body(response_format => 'wav',
                                input => "Metrics test sentence number $i."))->{status};
    }
    push @st, request($ng, 'POST', '/v1/audio/speech', headers => \%CT,
        body => speech_body(response_format => 'wav', input => 'Hi.',
                            voice => 'nobody'))->{status};
    push @st, request($ng, 'POST', '/v1/audio/speech', headers => \%CT,
        body => '{"model":"tts-1","input":')->{status};
    is("@st", '200 200 200 400 400', '3 speech requests and 2 bad ones');

    my ($r, $p) = settled_metrics($ng, sub {
        val($_[0], 'podgen_request_duration_seconds_count{endpoint="speech"}') >= 5
        && val($_[0], 'podgen_inflight_requests{endpoint="speech"}') == 0 });
    is(val($p, 'podgen_requests_total{endpoint="speech",code="200"}'), 3,
       'podgen_requests_total{endpoint="speech",code="200"} 3');
    is(val($p, 'podgen_requests_total{endpoint="speech",code="400"}'), 2,
       'podgen_requests_total{endpoint="speech",code="400"} 2');
    my $h = histograms($p, 'podgen_request_duration_seconds')->{'endpoint="speech"'};
    is($h->{count}, 5, 'podgen_request_duration_seconds_count{endpoint="speech"} 5');
    is($h->{buckets}[-1][1], 5, '... +Inf bucket 5');
    ok($h->{sum} > 0, "... _sum $h->{sum} > 0");
    ok(val($p, 'podgen_tts_audio_seconds_total') > 0,
       'podgen_tts_audio_seconds_total ' . val($p, 'podgen_tts_audio_seconds_total') . ' > 0');
    my $tts = histograms($p, 'podgen_tts_synthesis_seconds')->{''};
    ok($tts && $tts->{count} >= 3, 'podgen_tts_synthesis_seconds_count >= 3');
    is(val($p, 'podgen_errors_total{type="client"}'), 2, 'podgen_errors_total{type="client"} 2');
    is(val($p, 'podgen_inflight_requests{endpoint="speech"}'), 0, 'nothing in flight');
    is(val($p, 'podgen_requests_total{endpoint="scripts",code="200"}'), 0,
       'scripts untouched');
    histograms_ok($p, 'after speech');
    promtool_ok($r->{body}, 'after speech');

    # ?format=json has the same figures
    my $jr = request($ng, 'GET', '/metrics?format=json');
    is($jr->{status}, 200, '?format=json: 200');
    like($jr->{headers}{'content-type'} // '', qr{^application/json\b}, '?format=json: JSON type');
    my $j = eval { $JSON->decode($jr->{body}) };
    ok($j, '?format=json parses') or diag $jr->{body};
    is($j && $j->{endpoints}{speech}{requests}, 5, 'endpoints.speech.requests 5');
    is_deeply($j && $j->{endpoints}{speech}{codes}, { 200 => 3, 400 => 2 },
              'endpoints.speech.codes');
    is($j && $j->{endpoints}{speech}{errors}, 2, 'endpoints.speech.errors 2');
    ok($j && $j->{tts}{audio_s} > 0, 'tts.audio_s > 0');
    ok($j && exists $j->{llm} && exists $j->{cache} && exists $j->{errors},
       'llm, cache and errors sections');
}

# --- OpenMetrics, precision, first audio ------------------------------------

{
    # two speech hits take well under a millisecond each: their _sum is
    # still more than 0 (microseconds, not nginx's cached milliseconds)
    my $body = speech_body(response_format => 'wav',
                           input => 'First audio, then a hit.');
    my ($b0, $p0) = get_metrics($ng);
    my @st = map { request($ng, 'POST', '/v1/audio/speech', headers => \%CT,
                           body => $body) } 1 .. 3;
    is(join(' ', map { $_->{headers}{'x-podgen-cache'} // '-' } @st),
       'MISS HIT-L1 HIT-L1', 'a cold stream, then two hits');
    my ($r, $p) = settled_metrics($ng, sub {
        val($_[0], 'podgen_speech_first_audio_seconds_count{cache="hit"}')
        >= val($p0, 'podgen_speech_first_audio_seconds_count{cache="hit"}') + 2 });
    for my $c (['miss', 1], ['hit', 2]) {
        my ($cache, $n) = @$c;
        my $k = "podgen_speech_first_audio_seconds_count{cache=\"$cache\"}";
        is(val($p, $k) - val($p0, $k), $n, "first audio: $n more with cache=\"$cache\"");
    }
    my $hit_sum = val($p, 'podgen_speech_first_audio_seconds_sum{cache="hit"}')
                - val($p0, 'podgen_speech_first_audio_seconds_sum{cache="hit"}');
    ok($hit_sum > 0 && $hit_sum < 0.5,
       "first audio of two hits sums to $hit_sum s: > 0, in full precision");
    # microseconds: a sum of whole milliseconds has 1 in 1,000 chances,
    # so of two snapshots (before and after three requests) at least one
    # shows digits past the millisecond
    my @us = grep { /^podgen_request_duration_seconds_sum\{endpoint="speech"\} \d+\.\d{4,6}$/m }
             ($b0->{body}, $r->{body});
    ok(@us >= 1, 'podgen_request_duration_seconds_sum has microsecond digits')
        or diag $r->{body};
    ok(exists $p->{value}{'podgen_jobs_completed_total'}
       && exists $p->{value}{'podgen_jobs_failed_total'},
       'finished jobs are counters: podgen_jobs_completed_total, podgen_jobs_failed_total');
    ok(!grep({ $_->[0] eq 'podgen_jobs' && $_->[1]{status} =~ /^(?:completed|failed)$/ }
             @{ $p->{samples} }),
       'the podgen_jobs gauge is only what goes up and down (queued, running)');
    like($p->{help}{podgen_cache_hit_ratio} // '', qr/lifetime/,
         'podgen_cache_hit_ratio says it is a lifetime ratio');
    is($r->{headers}{vary}, 'Accept', '0.0.4: Vary: Accept');

    # what Prometheus 2.x asks for
    my $om = request($ng, 'GET', '/metrics', headers => { Accept =>
        'application/openmetrics-text;version=1.0.0,application/openmetrics-text;'
        . 'version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' });
    is($om->{status}, 200, 'OpenMetrics: 200');
    is($om->{headers}{'content-type'},
       'application/openmetrics-text; version=1.0.0; charset=utf-8',
       'OpenMetrics: its content type');
    is($om->{headers}{vary}, 'Accept', 'OpenMetrics: Vary: Accept');
    like($om->{body}, qr/\n# EOF\n\z/, 'OpenMetrics: ends with # EOF');
    like($om->{body}, qr/^# TYPE podgen_requests counter$/m,
         'OpenMetrics: a counter family is named without _total');
    like($om->{body}, qr/^podgen_requests_total\{endpoint="speech",code="200"\} \d+$/m,
         'OpenMetrics: its samples keep _total');
    my ($start) = $r->{body} =~ /^podgen_start_time_seconds (\d+)$/m;
    like($om->{body}, qr/^podgen_requests_created\{endpoint="speech",code="200"\} \Q$start\E$/m,
         'OpenMetrics: _created of a counter is when the zone started');
    like($om->{body}, qr/^podgen_speech_first_audio_seconds_created\{cache="miss"\} \Q$start\E$/m,
         'OpenMetrics: _created of a histogram');
    unlike($om->{body}, qr/^# TYPE \w+_total counter$/m,
           'OpenMetrics: no counter family ends in _total');
    my $n_total = () = $om->{body} =~ /^\w+_total[{ ]/mg;
    my $n_created = () = $om->{body} =~ /^\w+_created[{ ]/mg;
    my $n_count = () = $om->{body} =~ /^\w+_count[{ ]/mg;
    is($n_created, $n_total + $n_count,
       "OpenMetrics: a _created for each of $n_total counters and $n_count histograms");

    # promtool: the 0.0.4 page with its linter, the OpenMetrics page with
    # its strict OpenMetrics parser (tsdb create-blocks-from openmetrics,
    # which wants a timestamp on every sample)
    promtool_ok($r->{body}, '0.0.4 after hits');
    SKIP: {
        my $pt = which('promtool');
        skip 'promtool is not installed', 1 unless $pt;
        my $dir = File::Temp::tempdir(CLEANUP => 1);
        open my $fh, '>', "$dir/om.txt" or die;
        print $fh join '', map { /^#/ ? "$_\n" : "$_ 1700000000\n" }
                           split /\n/, $om->{body};
        close $fh;
        my $out = `$pt tsdb create-blocks-from openmetrics $dir/om.txt $dir/blocks 2>&1`;
        ok($? == 0 && $out =~ /\b(\d+)\s+\d+\s+(\d+)\s+\d+\s*$/m && $2 > 100,
           'promtool parses the OpenMetrics page (strict parser, '
           . ($2 // 0) . ' series)') or diag $out;
    }
}

# --- two workers, exact totals -------------------------------------------------

my @WORKERS = $ng->worker_pids;
{
    unlink $ng->prefix . '/logs/pid.log';
    kill 'USR1', $ng->master_pid;    # reopen the logs
    sleep 0.3;
    my $voices = "GET /v1/voices HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    my $bad = speech_body(response_format => 'wav', input => 'Hi.',
                          voice => 'nobody');
    my $badreq = "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
               . "Content-Type: application/json\r\nContent-Length: " . length($bad)
               . "\r\n\r\n$bad";
    my @st = (burst($ng, 150, $voices), burst($ng, 50, $badreq));
    for (1 .. 50) { push @st, request($ng, 'GET', '/v1/voices')->{status} }
    is(scalar(grep { $_ == 200 } @st[0 .. 149, 200 .. 249]), 200,
       '200 voices requests on separate connections');
    is(scalar(grep { $_ == 400 } @st[150 .. 199]), 50, '50 bad speech requests');
    my ($r, $p) = settled_metrics($ng, sub {
        val($_[0], 'podgen_request_duration_seconds_count{endpoint="speech"}') >= 55
        && val($_[0], 'podgen_inflight_requests{endpoint="speech"}') == 0 });
    is(val($p, 'podgen_requests_total{endpoint="voices",code="200"}'), 200,
       'podgen_requests_total voices 200: exactly 200');
    is(val($p, 'podgen_requests_total{endpoint="speech",code="400"}'), 52,
       'podgen_requests_total speech 400: exactly 2 + 50');
    is(histograms($p, 'podgen_request_duration_seconds')->{'endpoint="voices"'}{count}, 200,
       'podgen_request_duration_seconds_count voices 200');
    is(val($p, 'podgen_errors_total{type="client"}'), 52, 'podgen_errors_total{type="client"} 52');
    histograms_ok($p, 'after the burst');
    # both workers counted into the same zone
    open my $fh, '<', $ng->prefix . '/logs/pid.log';
    my %pid;
    while (<$fh>) { $pid{$1}++ if /^(\d+) / }
    close $fh;
    note 'requests per worker: ' . join ', ', map { "$_: $pid{$_}" } sort keys %pid;
    is(scalar(grep { my $w = $_; grep { $_ == $w } @WORKERS } keys %pid), 2,
       'both workers served some of them');
}

# --- HUP reload ----------------------------------------------------------------

{
    my ($r, $p) = get_metrics($ng);
    my $voices = val($p, 'podgen_requests_total{endpoint="voices",code="200"}');
    my $speech = val($p, 'podgen_requests_total{endpoint="speech",code="200"}');
    my $start = val($p, 'podgen_start_time_seconds');
    my $hist = histograms($p, 'podgen_request_duration_seconds')->{'endpoint="voices"'}{count};
    my @new = $ng->reload;
    isnt("@new", "@WORKERS", 'HUP: new workers');
    ($r, $p) = get_metrics($ng);
    is(val($p, 'podgen_requests_total{endpoint="voices",code="200"}'), $voices,
       "after HUP: voices 200 still $voices");
    is(val($p, 'podgen_requests_total{endpoint="speech",code="200"}'), $speech,
       "after HUP: speech 200 still $speech");
    is(histograms($p, 'podgen_request_duration_seconds')->{'endpoint="voices"'}{count}, $hist,
       'after HUP: the histogram is kept (same buckets)');
    is(val($p, 'podgen_start_time_seconds'), $start, 'after HUP: same start time')
        if exists $p->{value}{podgen_start_time_seconds};
    request($ng, 'GET', '/v1/voices') for 1 .. 5;
    ($r, $p) = get_metrics($ng);
    is(val($p, 'podgen_requests_total{endpoint="voices",code="200"}'), $voices + 5,
       'after HUP: and counting on (+5)');

    # a reload that changes the buckets: counters kept, histograms re-filed
    $ng->reload(http_config => "$HTTP\npodgen_metrics_buckets 0.5 5;");
    ($r, $p) = get_metrics($ng);
    is(val($p, 'podgen_requests_total{endpoint="voices",code="200"}'), $voices + 5,
       'HUP with new buckets: counters kept');
    is_deeply(les($p, 'podgen_request_duration_seconds'), [ '0.5', '5', '+Inf' ],
              'HUP with new buckets: le="0.5", "5", "+Inf"');
    histograms_ok($p, 'after HUP with new buckets');
    promtool_ok($r->{body}, 'after HUP with new buckets');
}

# --- connections ------------------------------------------------------------------

{
    my ($r, $p) = get_metrics($ng);
    ok(val($p, 'podgen_active_connections') >= 1,
       'podgen_active_connections >= 1 (the metrics request itself)');

    # idle connections count
    my @idle = map { IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $ng->port)
                         or die "connect: $@" } 1 .. 5;
    sleep 0.2;
    ($r, $p) = get_metrics($ng);
    ok(val($p, 'podgen_active_connections') >= 6,
       'with 5 more connections open: podgen_active_connections '
       . val($p, 'podgen_active_connections') . ' >= 6');

    # a speech request whose client does not read: in flight
    my $long = join ' ', ('The keeper climbed the stairs and lit the lamp again.') x 60;
    # (slow 24 kHz pcm: megabytes, more than the socket buffers hold)
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $ng->port)
        or die "connect: $@";
    setsockopt($s, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 8192);
    my $b = speech_body(input => $long, response_format => 'pcm', speed => 0.5);
    print $s "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($b) . "\r\n\r\n$b";
    sleep 0.5;
    ($r, $p) = get_metrics($ng);
    is(val($p, 'podgen_inflight_requests{endpoint="speech"}'), 1,
       'a speech response the client does not read: podgen_inflight_requests{endpoint="speech"} 1');
    my $j = eval { $JSON->decode(request($ng, 'GET', '/metrics?format=json')->{body}) };
    is($j && $j->{endpoints}{speech}{inflight}, 1, '... and endpoints.speech.inflight 1');
    ok($j && $j->{active_connections} >= 7, '... and active_connections >= 7 in JSON');

    close $_ for @idle, $s;
    my $deadline = time + 5;
    do { sleep 0.1; ($r, $p) = get_metrics($ng) }
        until (val($p, 'podgen_active_connections') <= 1
               && val($p, 'podgen_inflight_requests{endpoint="speech"}') == 0)
              || time > $deadline;
    is(val($p, 'podgen_active_connections'), 1, 'all closed: podgen_active_connections 1');
    is(val($p, 'podgen_inflight_requests{endpoint="speech"}'), 0, 'all closed: nothing in flight');
    ok(val($p, 'podgen_errors_total{type="client_gone"}') >= 1,
       'the reader that went away: podgen_errors_total{type="client_gone"} >= 1');
}

my @bad = $ng->check_error_log(1);
ok(!@bad, 'no alert/crit/emerg/sanitizer reports') or diag join "\n", @bad;
$ng->stop;

# --- podgen_metrics_buckets ---------------------------------------------------------

{
    my $ng2 = Podgen::Test::Nginx->new(config => $CONFIG, http_config =>
        "$HTTP\npodgen_metrics_buckets 0.01 0.1 1;");
    $ng2->start;
    request($ng2, 'POST', '/v1/audio/speech', headers => \%CT,
            body => speech_body(response_format => 'wav', input => 'Buckets.'));
    my ($r, $p) = get_metrics($ng2);
    for my $fam (qw(podgen_request_duration_seconds podgen_tts_synthesis_seconds
                    podgen_llm_duration_seconds)) {
        is_deeply(les($p, $fam), [ '0.01', '0.1', '1', '+Inf' ],
                  "podgen_metrics_buckets 0.01 0.1 1: $fam le labels");
    }
    my @le = map { $_->[1]{le} } grep { defined $_->[1]{le} } @{ $p->{samples} };
    ok(!(grep { !/^(?:0\.01|0\.1|1|\+Inf)$/ } @le), 'no other le anywhere');
    histograms_ok($p, 'custom buckets');
    promtool_ok($r->{body}, 'custom buckets');
    $ng2->stop;

    for my $c ([ '1 0.5', 'decreasing' ], [ '0 1', 'zero' ], [ '0.1 abc', 'not a number' ],
               [ '0.1 0.1', 'repeated' ]) {
        my $bad = Podgen::Test::Nginx->new(config => $CONFIG,
            http_config => "$HTTP\npodgen_metrics_buckets $c->[0];");
        my ($ok, $out) = $bad->test_config;
        ok(!$ok, "podgen_metrics_buckets $c->[0] ($c->[1]): nginx -t fails");
        like($out, qr/\[emerg\].*(?:bucket)/i, '... with a message about the bucket');
    }
}

done_testing;
