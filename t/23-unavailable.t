# Honest unavailability: in Redis mode the fleet's job records live in
# Redis, so while Redis is away a node that has no copy of a job cannot
# tell whether it exists.  It answers 503 with Retry-After (never 404, which
# a client reads as "deleted"); the node that ran the job answers from its
# own store; once Redis is back, the other node answers 200 and an unknown
# id is 404 again.  Before: 404 "no such podcast" for every such status,
# file and DELETE request.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use Time::HiRes qw(time sleep);

skip_rest('redis-server is not installed') unless which('redis-server');

my $redis = start_redis();
my $rport = $redis->port;

sub node {
    my ($name) = @_;
    my $n = Podgen::Test::Nginx->new(
        workers => 1,
        http_config => "podgen_redis 127.0.0.1:$rport prefix=t23: "
                       . "timeout=300ms;
                        podgen_store store;",
        config => 'location /v1/podcasts { podgen_podcasts; }
                   location = /metrics { podgen_metrics; }');
    $n->{name} = $name;
    $n->start;
    return $n;
}

my $A = node('A');
my $B = node('B');
ok(wait_for(sub { (metric($A, 'podgen_redis_up') // 0) == 1
                  && (metric($B, 'podgen_redis_up') // 0) == 1 }, 10),
   'both nodes are connected to Redis');

my $id = new_podcast($A, { title => 'Kept through an outage', format => 'wav',
                           hosts => [ { name => 'Ann', voice => 'slt' } ],
                           segments => [ { speaker => 'Ann',
                                           text => 'A short episode.' } ] },
                     'POST on A');
my $done = wait_job($A, $id, 60);
is($done->{status}, 'completed', 'the job completed');

# which node ran it (its store has the record)?
my ($runner) = grep { -e "$_->{prefix}/store/jobs/$id.json" } $A, $B;
ok($runner, 'a node ran it: ' . ($runner ? $runner->{name} : 'none'));
$runner //= $A;
my $other = $runner == $A ? $B : $A;

my $r = get($other, "/v1/podcasts/$id");
is($r->{status}, 200, "$other->{name} (no copy) reads it from Redis: 200");

my $unknown = 'pod_0123456789ab01234567';
is(get($other, "/v1/podcasts/$unknown")->{status}, 404,
   'an unknown id with Redis up: 404');

# ---- Redis away ------------------------------------------------------------

kill 'STOP', $redis->pid;

for my $path ("/v1/podcasts/$id", "/v1/podcasts/$id/audio",
              "/v1/podcasts/$id/transcript.json",
              "/v1/podcasts/$unknown") {
    my $t0 = time;
    my $x = get($other, $path, timeout => 10);
    error_ok($x, "Redis paused: GET $path on $other->{name}",
             status => 503, code => 'unavailable', type => 'server_error');
    is($x->{headers}{'retry-after'}, '1', "Redis paused: $path: Retry-After");
    ok(time - $t0 < 3, sprintf('Redis paused: %s answered in %.1f s',
                               $path, time - $t0));
}

$r = request($other, 'DELETE', "/v1/podcasts/$unknown", timeout => 10);
is($r->{status}, 503, 'Redis paused: DELETE of an id this node has not: 503');

is(get($runner, "/v1/podcasts/$id", timeout => 10)->{status}, 200,
   "Redis paused: $runner->{name} answers from its own store: 200");

kill 'CONT', $redis->pid;

ok(wait_for(sub { get($other, "/v1/podcasts/$id", timeout => 5)->{status}
                  == 200 }, 15),
   "Redis back: $other->{name} reads it again: 200");
is(get($other, "/v1/podcasts/$unknown", timeout => 5)->{status}, 404,
   'Redis back: an unknown id is 404 again');

# ---- Redis killed ------------------------------------------------------------

kill 'KILL', $redis->pid;
$redis->stop;
ok(wait_for(sub { (metric($other, 'podgen_redis_up') // 1) == 0 }, 10),
   "Redis killed: $other->{name} knows");
error_ok(scalar get($other, "/v1/podcasts/$id", timeout => 10),
         'Redis killed: the status on the node without a copy',
         status => 503, code => 'unavailable');

$A->stop;
$B->stop;
for my $n ($A, $B) {
    my @bad = grep { !/redis|Connection refused|timed out/i }
              $n->check_error_log;
    ok(!@bad, "$n->{name}: error log clean but for Redis going away")
        or diag join "\n", @bad;
}

done_testing();
