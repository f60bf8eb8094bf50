# One truth per job record: two nodes with their own stores on one Redis.
# Every record write is a compare-and-set on the record's version (the
# higher version wins, a final record is never overwritten by an
# unfinished one, a deleted job's tombstone by nothing), and each node
# keeps what the fleet may not have (sync marks, the jobs it accepted) and
# shares it again when Redis is back or has lost its data.
#
#   (a) Redis paused (SIGSTOP) as a job is posted: the accepting node runs
#       it itself; once Redis is back, Redis and both nodes say completed.
#       Before: Redis kept "queued" v1, the other node answered queued for
#       ever.
#   (b) Redis killed while jobs are posted on both nodes, restarted empty:
#       every job is completed on both nodes and in the fleet's library.
#   (c) Redis killed and restarted empty right after jobs were accepted
#       (most still queued): none is lost.  Before: the queued ones lived
#       only in Redis.
#   (d) a deleted job stays deleted: its accepted copy does not bring it
#       back.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);

skip_rest('redis-server is not installed') unless which('redis-server');

my $redis = start_redis();
my $rport = $redis->port;

sub node {
    my ($name) = @_;
    my $n = Podgen::Test::Nginx->new(
        workers => 1,
        http_config => "podgen_redis 127.0.0.1:$rport prefix=t25: "
                       . "timeout=300ms;
                        podgen_store store;
                        podgen_jobs 1;",
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

sub body {
    my ($text, $title) = @_;
    return { title => $title // $text, format => 'wav',
             hosts => [ { name => 'Ann', voice => 'slt' } ],
             segments => [ { speaker => 'Ann', text => $text } ] };
}

sub redis_state {
    my ($id) = @_;
    my $v = `redis-cli -p $rport GET t25:job:$id 2>/dev/null`;
    chomp $v;
    return '' if $v eq '';
    return $v if $v eq '-';
    my $j = eval { decode_json($v) };
    return ref $j eq 'HASH' ? "$j->{status} v$j->{version}" : '?';
}

sub states {
    my ($id) = @_;
    return sprintf('A %s, B %s, Redis %s', job_state($A, $id),
                   job_state($B, $id), redis_state($id));
}

# every id completed on both nodes and in Redis
sub all_completed {
    my (@ids) = @_;
    for my $id (@ids) {
        return 0 unless job_state($A, $id) eq 'completed'
                        && job_state($B, $id) eq 'completed'
                        && redis_state($id) =~ /^completed /;
    }
    return 1;
}

sub library {
    my ($n) = @_;
    my $j = jdecode(get($n, '/v1/podcasts?limit=100', timeout => 5)->{body});
    return map { $_->{id} } @{ ref $j eq 'HASH' ? $j->{data} // [] : [] };
}

sub restart_redis_empty {
    kill 'KILL', $redis->pid;
    $redis->stop;
    $redis = start_redis(port => $rport);
}

# ---- (a) Redis paused as a job is posted -----------------------------------

kill 'STOP', $redis->pid;
my ($r, $j) = post_podcast($A, body('Posted while Redis was paused.'),
                           timeout => 20);
is($r->{status}, 202, '(a) POST with Redis paused: 202');
my $a_id = $j->{id} // '';
sleep 2;
kill 'CONT', $redis->pid;

ok(wait_for(sub { all_completed($a_id) }, 30),
   '(a) Redis back: Redis and both nodes say completed')
    or diag states($a_id);
like($A->error_log, qr/could not be queued in redis, run here/,
     '(a) node A ran it itself');

# ---- (b) Redis killed while jobs are posted on both nodes -------------------

kill 'KILL', $redis->pid;
$redis->stop;
ok(wait_for(sub { (metric($A, 'podgen_redis_up') // 1) == 0
                  && (metric($B, 'podgen_redis_up') // 1) == 0 }, 10),
   '(b) Redis killed: both nodes know');

my @b_ids;
for my $n ($A, $B, $A, $B) {
    ($r, $j) = post_podcast($n, body("Posted on $n->{name} with Redis down, "
                                     . scalar(@b_ids) . '.'));
    is($r->{status}, 202, "(b) POST on $n->{name} with Redis down: 202");
    push @b_ids, $j->{id} // '';
}
for my $id (@b_ids) {
    my ($n) = $id eq $b_ids[0] || $id eq $b_ids[2] ? $A : $B;
    is(wait_job($n, $id, 60)->{status}, 'completed',
       "(b) $id completed on the node that accepted it");
}

$redis = start_redis(port => $rport);
ok(wait_for(sub { all_completed(@b_ids) }, 30),
   '(b) Redis back, empty: every job completed on both nodes and in Redis')
    or diag join "\n", map { "$_: " . states($_) } @b_ids;
for my $n ($A, $B) {
    my %in = map { $_ => 1 } library($n);
    is(scalar(grep { $in{$_} } @b_ids), scalar @b_ids,
       "(b) the library on $n->{name} lists every job");
}

# ---- (c) Redis restarted empty with jobs queued ----------------------------

my $long = join ' ', ('Each node runs one job at a time, so most of these '
                      . 'wait in the queue for a while.') x 3;
my @c_ids;
for my $i (1 .. 6) {
    my $n = $i % 2 ? $A : $B;
    ($r, $j) = post_podcast($n, body("$long Job $i.", "Job $i"));
    is($r->{status}, 202, "(c) POST $i on $n->{name}: 202")
        or diag $r->{body};
    push @c_ids, $j->{id} // '';
}
my $queued = grep { job_state($A, $_) eq 'queued' } @c_ids;
ok($queued >= 2, "(c) $queued of 6 still queued when Redis is killed");

restart_redis_empty();

ok(wait_for(sub { all_completed(@c_ids) }, 90),
   '(c) Redis restarted empty: no accepted job lost, all completed on '
   . 'both nodes and in Redis')
    or diag join "\n", map { "$_: " . states($_) } @c_ids;
like($A->error_log . $B->error_log, qr/redis lost its data/,
     '(c) the nodes noticed that Redis lost its data');

# the accepted copies go once the fleet holds the jobs finished
ok(wait_for(sub { !grep { -e "$_->{prefix}/store/accepted/$c_ids[0].json"
                          || -e "$_->{prefix}/store/sync/$c_ids[0]" }
                        $A, $B }, 15),
   '(c) the accepting node let its copy go once the fleet held it final');

# ---- (d) a deleted job stays deleted ----------------------------------------

my $d_id = new_podcast($A, body('Deleted soon after.'), '(d) POST on A');
is(wait_job($A, $d_id, 60)->{status}, 'completed', '(d) completed');
is(request($B, 'DELETE', "/v1/podcasts/$d_id", timeout => 10)->{status}, 204,
   '(d) DELETE on B: 204');
is(redis_state($d_id), '-', '(d) Redis holds its tombstone');
sleep 3;    # a sync pass of A
for my $n ($A, $B) {
    is(get($n, "/v1/podcasts/$d_id", timeout => 5)->{status}, 404,
       "(d) $n->{name}: 404 after the delete");
}
ok(!(grep { $_ eq $d_id } library($A)), '(d) not in the library');

$A->stop;
$B->stop;
for my $n ($A, $B) {
    my @bad = grep { !/redis|Connection refused|timed out|run here/i }
              $n->check_error_log;
    ok(!@bad, "$n->{name}: error log clean but for Redis going away")
        or diag join "\n", @bad;
}

done_testing();
