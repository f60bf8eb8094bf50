# A real Prometheus scrapes podgen: the target is up, podgen's series are
# queryable through the HTTP API with the values /metrics shows, and
# `promtool check metrics` accepts a populated page.  Prometheus asks for
# OpenMetrics and gets it (its _created series prove which format it
# parsed); the first-audio histogram answers histogram_quantile.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use File::Temp ();
use Time::HiRes qw(time sleep);

my $prom_bin = which('prometheus')
    or skip_rest('prometheus is not installed');

my $JSON = JSON::PP->new->canonical;
my %CT = ('Content-Type' => 'application/json');

my $ng = Podgen::Test::Nginx->new(
    workers => 2,
    config => 'location = /v1/audio/speech { podgen_speech; }
               location = /v1/scripts { podgen_scripts; }
               location /v1/audio/ { podgen_audio; }
               location = /metrics { podgen_metrics; }');
$ng->start;

# ---- traffic: every kind of thing podgen counts -----------------------------

my $body = $JSON->encode({ model => 'tts-1', voice => 'alloy',
                           response_format => 'mp3',
                           input => 'Prometheus is listening to this.' });
my $s1 = request($ng, 'POST', '/v1/audio/speech', body => $body,
                 headers => \%CT);
my $s2 = request($ng, 'POST', '/v1/audio/speech', body => $body,
                 headers => \%CT);
is("$s1->{status} $s2->{status}", '200 200', 'speech: two 200s');
request($ng, 'GET', $s2->{headers}{'x-podgen-audio-url'} // '/v1/audio/x');
request($ng, 'POST', '/v1/audio/speech', headers => \%CT,
        body => '{"model":"tts-1","input":"Hi.","voice":"nobody"}');
my $sb = $JSON->encode({ topic => 'Scraping', engine => 'builtin' });
request($ng, 'POST', '/v1/scripts', body => $sb, headers => \%CT) for 1 .. 2;

my $page = request($ng, 'GET', '/metrics');
is($page->{status}, 200, '/metrics: 200');

# ---- promtool ----------------------------------------------------------------

SKIP: {
    my $pt = which('promtool');
    skip 'promtool is not installed', 1 unless $pt;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    open my $fh, '>', "$dir/m.txt" or die "$dir/m.txt: $!";
    print $fh $page->{body};
    close $fh;
    my $out = `$pt check metrics < $dir/m.txt 2>&1`;
    is($?, 0, 'promtool check metrics: a populated page passes')
        or diag $out;
}

# ---- Prometheus ----------------------------------------------------------------

my $dir = File::Temp::tempdir('podgen-prom-XXXXXX', TMPDIR => 1,
                              CLEANUP => !$ENV{PODGEN_TEST_KEEP});
my $target = '127.0.0.1:' . $ng->port;
open my $cf, '>', "$dir/prometheus.yml" or die "$dir/prometheus.yml: $!";
print $cf <<"EOF";
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: podgen
    metrics_path: /metrics
    static_configs:
      - targets: ['$target']
EOF
close $cf;

my $pport = free_port();
my $prom = eval {
    Podgen::Test::Process->spawn(
        cmd => [ $prom_bin, "--config.file=$dir/prometheus.yml",
                 "--storage.tsdb.path=$dir/data",
                 "--web.listen-address=127.0.0.1:$pport",
                 '--log.level=warn' ],
        port => $pport, dir => $dir, log => "$dir/prometheus.log",
        timeout => 20);
};
ok($prom, "prometheus listens on $pport") or diag $@;
skip_rest('prometheus did not start') unless $prom;

# /api/v1/query?query=... -> the result list, or undef

sub wait_query {
    my ($q, $ok, $secs) = @_;
    my $end = time + $secs;
    my $res;
    while (time < $end) {
        $res = prom_query($pport, $q);
        return $res if $res && $ok->($res);
        sleep 0.25;
    }
    return $res;
}

my $t0 = time;
my $up = wait_query('up{job="podgen"}', sub {
    grep { $_->{metric}{instance} eq $target && $_->{value}[1] eq '1' } @{ $_[0] }
}, 20);
ok($up && grep({ $_->{metric}{instance} eq $target && $_->{value}[1] eq '1' }
               @$up),
   sprintf('up{instance="%s"} is 1 (after %.1f s)', $target, time - $t0))
    or diag explain($up), "\n", $prom->log;

my $req = wait_query('podgen_requests_total', sub { @{ $_[0] } >= 3 }, 10);
my %series = map {
    ($_->{metric}{endpoint} // '') . ' ' . ($_->{metric}{code} // '')
        => $_->{value}[1]
} @{ $req || [] };
ok($req && @$req, 'podgen_requests_total has series: '
                  . join(', ', map { "$_=$series{$_}" } sort keys %series));
is($series{'speech 200'}, 2, 'podgen_requests_total{endpoint="speech",code="200"} 2');
is($series{'speech 400'}, 1, 'podgen_requests_total{endpoint="speech",code="400"} 1');
is($series{'scripts 200'}, 2, 'podgen_requests_total{endpoint="scripts",code="200"} 2');
is($series{'audio 200'}, 1, 'podgen_requests_total{endpoint="audio",code="200"} 1');
ok(!grep({ $_->{metric}{job} ne 'podgen' || $_->{metric}{instance} ne $target }
         @{ $req || [] }), 'every series is labelled with the job and target');

my ($direct) = request($ng, 'GET', '/metrics')->{body}
               =~ /^podgen_cache_hit_ratio\{kind="audio"\} (\S+)$/m;
my $hr = wait_query('podgen_cache_hit_ratio{kind="audio"}',
                    sub { $_[0][0] && $_[0][0]{value}[1] == $direct }, 5);
ok($hr && $hr->[0] && $hr->[0]{value}[1] == $direct,
   "podgen_cache_hit_ratio{kind=\"audio\"} in Prometheus is $direct, as on /metrics");

my $hist = prom_query($pport, 'histogram_quantile(0.5, sum by (le) '
                                . '(podgen_request_duration_seconds_bucket{endpoint="speech"}))');
ok($hist && @$hist && $hist->[0]{value}[1] =~ /^[0-9.e+-]+$/
   && $hist->[0]{value}[1] > 0,
   'histogram_quantile over podgen_request_duration_seconds works: '
   . ($hist && @$hist ? $hist->[0]{value}[1] : 'nothing'));

my $cr = prom_query($pport, 'podgen_requests_created{endpoint="speech",code="200"}');
ok($cr && @$cr && $cr->[0]{value}[1] > 1e9,
   'Prometheus parsed OpenMetrics: podgen_requests_created is a series')
    or diag explain $cr;

my $fa = prom_query($pport, 'histogram_quantile(0.5, sum by (le) '
                              . '(podgen_speech_first_audio_seconds_bucket{cache="miss"}))');
ok($fa && @$fa && $fa->[0]{value}[1] =~ /^[0-9.e+-]+$/ && $fa->[0]{value}[1] > 0,
   'histogram_quantile over podgen_speech_first_audio_seconds works: '
   . ($fa && @$fa ? $fa->[0]{value}[1] : 'nothing'));

my $tr = request($pport, 'GET', '/api/v1/targets', timeout => 5);
my $tg = eval { $JSON->decode($tr->{body}) };
my ($t) = grep { ($_->{labels}{job} // '') eq 'podgen' }
          @{ ($tg && $tg->{data}{activeTargets}) || [] };
is($t && $t->{lastError}, '', 'the target has no scrape error')
    or diag explain $t;

# every query of the Grafana dashboard (docker/grafana) runs in Prometheus
{
    open my $fh, '<', repo_root() . '/docker/grafana/dashboards/podgen.json'
        or die "podgen.json: $!";
    my $d = $JSON->decode(do { local $/; <$fh> });
    close $fh;
    my @panels = @{ $d->{panels} };
    my (@bad, $n, $with_data);
    while (my $p = shift @panels) {
        push @panels, @{ $p->{panels} || [] };
        for my $t (@{ $p->{targets} || [] }) {
            (my $e = $t->{expr}) =~ s/\$__rate_interval/1m/g;
            $e =~ s/\$instance/.*/g;
            $n++;
            my $res = prom_query($pport, $e);
            if (!defined $res) { push @bad, "$p->{title}: $e"; next }
            $with_data++ if @$res;
        }
    }
    ok($n && !@bad, "Prometheus evaluates all $n queries of the dashboard "
                    . "(" . ($with_data // 0) . " with data already)")
        or diag join "\n", @bad;
}

my $scr = prom_query($pport, 'scrape_samples_scraped{job="podgen"}');
ok($scr && @$scr && $scr->[0]{value}[1] > 100,
   'scrape_samples_scraped: ' . ($scr && @$scr ? $scr->[0]{value}[1] : '-'));

$prom->stop;
ok(!$prom->alive, 'prometheus stopped');
unlike($prom->log, qr/level=error/, 'prometheus logged no error')
    or diag $prom->log;

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log clean') or diag join "\n", @bad;

done_testing;
