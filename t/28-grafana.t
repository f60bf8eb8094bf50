# The Grafana dashboard shipped in docker/grafana/: its JSON loads, every
# panel has queries on the provisioned Prometheus datasource, every query
# is PromQL that promtool parses, and every podgen metric a query names is
# one /metrics serves (after traffic of each kind); the compose file runs
# Grafana with the provisioning mounted; the dashboard covers what an
# operator looks for (hit rates per kind and tier, p50/p95/p99 latency per
# endpoint, first audio, active connections, error rates, jobs, Redis up).
# t/14-prometheus.t evaluates the same queries in a real Prometheus.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp qw(tempdir);

my $ROOT = repo_root();
my $G = "$ROOT/docker/grafana";

sub read_text {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    return scalar <$fh>;
}

# every target of the dashboard: [panel title, expr]
sub dashboard_queries {
    my ($d) = @_;
    my @q;
    my @panels = @{ $d->{panels} || [] };
    while (my $p = shift @panels) {
        push @panels, @{ $p->{panels} || [] };
        next if ($p->{type} // '') eq 'row';
        push @q, [ $p->{title}, $_->{expr}, $p, $_ ] for @{ $p->{targets} || [] };
        push @q, [ $p->{title}, undef, $p, undef ] unless @{ $p->{targets} || [] };
    }
    return @q;
}

my $text = read_text("$G/dashboards/podgen.json");
ok(defined $text, 'docker/grafana/dashboards/podgen.json exists');
my $d = eval { $JSON->decode($text // '') };
ok(ref $d eq 'HASH', 'the dashboard is JSON') or diag $@;
$d ||= {};
is($d->{uid}, 'podgen', 'dashboard uid podgen');

my ($ds_uid) = (read_text("$G/provisioning/datasources/prometheus.yml") // '')
               =~ /^\s*uid:\s*(\S+)\s*$/m;
ok($ds_uid, "the provisioned datasource has a uid ($ds_uid)");
like(read_text("$G/provisioning/dashboards/podgen.yml") // '',
     qr{path:\s*/etc/grafana/dashboards}, 'the dashboard provider reads /etc/grafana/dashboards');
my $compose = read_text("$ROOT/docker/compose.yml") // '';
like($compose, qr{^  grafana:\n(?:    .*\n|\n)*?    image: grafana/grafana:}m,
     'docker/compose.yml has a grafana service');
like($compose, qr{\./grafana/provisioning:/etc/grafana/provisioning},
     'compose mounts the provisioning');
like($compose, qr{\./grafana/dashboards:/etc/grafana/dashboards},
     'compose mounts the dashboards');

my @q = dashboard_queries($d);
cmp_ok(scalar(@q), '>=', 15, scalar(@q) . ' queries on the dashboard');
my @bad;
for my $q (@q) {
    my ($title, $expr, $p, $t) = @$q;
    push @bad, "$title: no query" unless defined $expr && length $expr;
    push @bad, "$title: panel datasource is not $ds_uid"
        unless ($p->{datasource}{uid} // '') eq ($ds_uid // '');
    push @bad, "$title: target datasource is not $ds_uid"
        if $t && $t->{datasource} && ($t->{datasource}{uid} // '') ne ($ds_uid // '');
}
ok(!@bad, 'every panel has queries on the provisioned datasource')
    or diag join "\n", @bad;

# the queries as Prometheus sees them: Grafana's variables replaced
my @exprs = map { my $e = $_->[1] // '';
                  $e =~ s/\$__rate_interval/1m/g;
                  $e =~ s/\$instance/.*/g;
                  $e } @q;

# PromQL syntax: promtool parses the rules of a rule file
SKIP: {
    my $pt = which('promtool');
    skip 'promtool is not installed', 1 unless $pt;
    my $dir = tempdir(CLEANUP => 1);
    open my $fh, '>', "$dir/rules.yml" or die;
    print $fh "groups:\n  - name: dashboard\n    rules:\n";
    my $i = 0;
    for my $e (@exprs) {
        $i++;
        (my $y = $e) =~ s/'/''/g;
        print $fh "      - record: podgen_dashboard_query_$i\n        expr: '$y'\n";
    }
    close $fh;
    my $out = `$pt check rules $dir/rules.yml 2>&1`;
    is($?, 0, 'promtool parses every query of the dashboard') or diag $out;
}

# the metric names against what /metrics serves, after traffic of each kind
my $store = tempdir('podgen-grafana-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $store;
my $ng = Podgen::Test::Nginx->new(
    http_config => "podgen_store $store;",
    config => 'location = /v1/audio/speech { podgen_speech; }
               location /v1/podcasts { podgen_podcasts; }
               location = /metrics { podgen_metrics; }');
$ng->start;
my %CT = ('Content-Type' => 'application/json');
request($ng, 'POST', '/v1/audio/speech', headers => \%CT,
        body => speech_body(input => 'Grafana, this is podgen.')) for 1 .. 2;
my $page = request($ng, 'GET', '/metrics')->{body} // '';
my %served = map { $_ => 1 } $page =~ /^(podgen_\w+)[{ ]/mg;
cmp_ok(scalar(keys %served), '>', 30, scalar(keys %served) . ' names served');

my (%used, @unknown);
for my $i (0 .. $#exprs) {
    for my $name ($exprs[$i] =~ /\b(podgen_[a-z0-9_]+)\b/g) {
        $used{$name}++;
        push @unknown, "$q[$i][0]: $name" unless $served{$name};
    }
}
ok(!@unknown, 'every metric the dashboard queries is served by /metrics')
    or diag join "\n", @unknown;

# what an operator looks for
my $all = join "\n", @exprs;
for my $c (['hit rates per kind and tier',
            qr/podgen_cache_requests_total.*by \(kind, tier\)|by \(kind, tier\).*podgen_cache_requests_total/],
           ['p50 latency per endpoint',
            qr/histogram_quantile\(0\.5, sum by \(le, endpoint\) \(rate\(podgen_request_duration_seconds_bucket/],
           ['p95 latency per endpoint', qr/histogram_quantile\(0\.95, sum by \(le, endpoint\)/],
           ['p99 latency per endpoint', qr/histogram_quantile\(0\.99, sum by \(le, endpoint\)/],
           ['first audio', qr/podgen_speech_first_audio_seconds_bucket/],
           ['active connections', qr/podgen_active_connections/],
           ['error rates', qr/podgen_requests_total\{[^}]*code=~"4\.\.\|5\.\./],
           ['jobs', qr/podgen_jobs_completed_total.*podgen_jobs_failed_total/s],
           ['Redis up', qr/podgen_redis_up/])
{
    like($all, $c->[1], "the dashboard shows $c->[0]");
}

$ng->stop;
my @err = $ng->check_error_log;
ok(!@err, 'error log clean') or diag join "\n", @err;

done_testing;
