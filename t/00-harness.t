# Self-test of the test harness (t/lib/Podgen/Test.pm) using only core
# nginx features, so the harness is exercised independently of podgen's own
# directives (the module is still loaded: load_module is always written).

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Test::More;
use IO::Socket::IP;
use File::Temp ();

# --- imperative API -------------------------------------------------------

{
    my $ng = Podgen::Test::Nginx->new(
        workers => 2,
        http_config => 'gzip off;',
        config => <<'EOF',
location = /hi { return 200 "hi"; }
location = /echo { return 200 "x-foo=$http_x_foo body-len=$content_length"; }
location /big {
    default_type text/plain;
    root html;
    # sub_filter drops Content-Length, so the response is chunked
    sub_filter_types *;
    sub_filter_once off;
    sub_filter 'QQQ' 'qqq';
    output_buffers 1 4k;
    postpone_output 0;
}
location = /pid { return 200 "$pid"; }
location = /status { stub_status; }
EOF
    );
    my $big = join '', map { sprintf "line %06d QQQ\n", $_ } 1 .. 20000;
    open my $fh, '>', $ng->prefix . '/html/big' or die $!;
    print $fh $big;
    close $fh;

    ok(eval { $ng->start; 1 }, 'nginx starts') or diag $@;
    like($ng->port, qr/^\d+$/, 'port is a number');
    like($ng->url('/hi'), qr{^http://127\.0\.0\.1:\d+/hi$}, 'url');
    ok($ng->master_pid, 'master pid');
    my @w = $ng->worker_pids;
    is(scalar @w, 2, 'two worker processes') or diag "@w";

    my $r = request($ng, 'GET', '/hi');
    is($r->{status}, 200, 'GET /hi status');
    is($r->{body}, 'hi', 'GET /hi body');
    is($r->{headers}{'content-type'}, 'text/plain', 'lowercased header keys');

    $r = request($ng, 'POST', '/echo', body => 'abcdef',
                 headers => { 'X-Foo' => 'bar' });
    is($r->{body}, 'x-foo=bar body-len=6', 'headers and body are sent');

    $r = request($ng, 'GET', '/big');
    is($r->{status}, 200, 'big status');
    ok($r->{chunked}, 'big response is chunked');
    (my $want = $big) =~ s/QQQ/qqq/g;
    ok($r->{body} eq $want, 'chunked body decoded');

    # raw socket and pipelining
    my $raw = raw_request($ng,
        "GET /hi HTTP/1.1\r\nHost: x\r\n\r\n"
        . "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
        . "HEAD /hi HTTP/1.1\r\nHost: x\r\n\r\n"
        . "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    my @res = parse_responses($raw, methods => [qw(GET GET HEAD GET)]);
    is(scalar @res, 4, 'four pipelined responses');
    is($res[0]{body}, 'hi', 'pipelined 1');
    ok($res[1]{chunked} && $res[1]{body} eq $want, 'pipelined 2 (chunked)');
    is($res[2]{status}, 200, 'pipelined 3 (HEAD)');
    is($res[2]{body}, '', 'HEAD has no body');
    is($res[3]{status}, 404, 'pipelined 4 (404)');

    # streaming reader
    my @chunks;
    my $sr = stream_request($ng, 'GET', '/big', undef, {},
                            on_chunk => sub { push @chunks, [@_] });
    is($sr->{status}, 200, 'stream status');
    ok($sr->{chunked}, 'stream chunked');
    ok($sr->{complete}, 'stream complete');
    cmp_ok(scalar @chunks, '>', 5, 'several chunks reported');
    is(join('', map { $_->[0] } @chunks), $want, 'chunks concatenate to body');
    ok(defined $sr->{first_byte_time}
       && $sr->{first_byte_time} <= $sr->{last_byte_time},
       'first_byte_time <= last_byte_time');
    my $mono = 1;
    for my $i (1 .. $#chunks) { $mono = 0 if $chunks[$i][1] < $chunks[$i - 1][1] }
    ok($mono, 'chunk times are monotonic');

    my $ab = stream_request($ng, 'GET', '/big', undef, {},
                            abort_after_chunks => 1);
    is($ab->{aborted}, 'chunks', 'abort after the first chunk');
    is(scalar @{ $ab->{chunks} }, 1, 'one chunk read before abort');

    # reload
    my %old = map { $_ => 1 } $ng->worker_pids;
    my @new = eval { $ng->reload };
    ok(!$@, 'reload') or diag $@;
    is(scalar(grep { $old{$_} } $ng->worker_pids), 0, 'old workers gone');
    is(scalar $ng->worker_pids, 2, 'two new workers');
    $r = request($ng, 'GET', '/hi');
    is($r->{body}, 'hi', 'works after reload');

    # reload with a new config
    eval { $ng->reload(config => 'location = /hi { return 200 "hello"; }') };
    ok(!$@, 'reload with a new config') or diag $@;
    is(request($ng, 'GET', '/hi')->{body}, 'hello', 'new config in effect');

    # a bad config on reload is reported, the old one keeps serving
    eval { $ng->reload(config => 'location = /hi { no_such_directive; }') };
    like($@, qr/no_such_directive/, 'failed reload is reported');
    is(request($ng, 'GET', '/hi')->{body}, 'hello', 'old config still serves');

    # error log checks
    my @bad = $ng->check_error_log;
    ok(scalar(grep { /no_such_directive/ } @bad), 'the [emerg] of the failed reload is a bad line');
    $ng->mark_error_log;
    is_deeply([ $ng->check_error_log(1) ], [], 'nothing bad since mark');
    open my $lf, '>>', $ng->prefix . '/logs/error.log' or die $!;
    print $lf "2024/01/01 00:00:00 [alert] 1#1: fake alert\n";
    print $lf "==1==ERROR: AddressSanitizer: heap-use-after-free\n";
    print $lf "x.c:1:2: runtime error: signed integer overflow\n";
    close $lf;
    @bad = $ng->check_error_log(1);
    is(scalar @bad, 3, 'alert, ASan and UBSan lines are found') or diag explain \@bad;
    like($ng->error_log, qr/fake alert/, 'error_log returns the text');

    my $master = $ng->master_pid;
    my @workers = $ng->worker_pids;
    ok($ng->stop, 'stop');
    ok(!Podgen::Test::_pid_alive($master), 'master gone');
    ok(!grep({ Podgen::Test::_pid_alive($_) } @workers), 'workers gone');
}

# json_subset
{
    my $j = sub { $JSON->decode($_[0]) };
    ok(!defined json_subset($j->('{"a":1,"b":{"c":[1,2,3]},"d":null}'),
                            $j->('{"b":{"c":[1,2]},"d":null}')), 'subset ok');
    ok(defined json_subset($j->('{"a":1}'), $j->('{"a":2}')), 'value differs');
    ok(defined json_subset($j->('{"a":1}'), $j->('{"b":1}')), 'missing key');
    ok(defined json_subset($j->('{"a":"x"}'), $j->('{"a":null}')), 'null must be null');
    ok(defined json_subset($j->('{"a":null}'), $j->('{"a":"x"}')), 'null is not a string');
    ok(defined json_subset($j->('{"a":1}'), $j->('{"a":true}')), '1 is not true');
    ok(!defined json_subset($j->('{"a":true}'), $j->('{"a":true}')), 'true is true');
    ok(defined json_subset($j->('[1]'), $j->('[1,2]')), 'array too short');
}

# sanitizer report filtering
{
    my $bin = Podgen::Test::nginx_binary();
    my $core = <<"EOF";
=================================================================
==1==ERROR: LeakSanitizer: detected memory leaks

Indirect leak of 245760 byte(s) in 1 object(s) allocated from:
    #0 0x7fce982b89cf in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x55562b67fcfe in ngx_alloc ($bin+0x4ccfe)
    #2 0x55562b67aaf7  ($bin+0x47af7)
    #9 0x7fce97245249 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58
    #11 0x55562b658430 in _start ($bin+0x25430)

SUMMARY: AddressSanitizer: 245760 byte(s) leaked in 1 allocation(s).
EOF
    my $ours = <<"EOF";
=================================================================
==2==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 64 byte(s) in 1 object(s) allocated from:
    #0 0x7f in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x7f in pg_buf_grow /work/main/lib/pg_buf.c:40
    #2 0x55 in ngx_http_core_content_phase ($bin+0x4ccfe)

Indirect leak of 8 byte(s) in 1 object(s) allocated from:
    #0 0x7f in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x55 in ngx_alloc ($bin+0x4ccfe)

SUMMARY: AddressSanitizer: 72 byte(s) leaked in 2 allocation(s).
EOF
    my $uaf = "=================================================================\n"
            . "==3==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n";
    is(Podgen::Test::sanitizer_findings($core), '', 'nginx core leaks are ignored');
    my $f = Podgen::Test::sanitizer_findings($ours);
    like($f, qr/pg_buf_grow/, 'a leak with a podgen frame counts');
    unlike($f, qr/8 byte/, 'the nginx-only record of the same report does not');
    like(Podgen::Test::sanitizer_findings($uaf), qr/heap-use-after-free/,
         'ASan errors count');
    like(Podgen::Test::sanitizer_findings("x.c:1:2: runtime error: shift\n"),
         qr/runtime error/, 'UBSan reports count');
}

# redis (when installed)
SKIP: {
    skip 'redis-server is not installed', 3 unless which('redis-server');
    my $redis = start_redis();
    like($redis->port, qr/^\d+$/, 'redis: port');
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                PeerPort => $redis->port, Timeout => 5);
    my $pong = '';
    if ($s) {
        print $s "PING\r\n";
        sysread $s, $pong, 100;
        close $s;
    }
    is($pong, "+PONG\r\n", 'redis: PING');
    my $pid = $redis->pid;
    $redis->stop;
    ok(!Podgen::Test::_pid_alive($pid), 'redis: stopped');
}

# free ports differ
{
    my %p = map { free_port() => 1 } 1 .. 5;
    is(scalar keys %p, 5, 'free_port gives distinct ports');
}

# Jobs and errors, mocked with return: a job that completes (its URL in
# Location), one that fails (at the default /v1/podcasts/{id}), one that
# never ends, an answer without an id, and two errors.
my $JOB_MOCKS = <<'EOF';
default_type application/json;
location = /jobs {
    add_header Location http://localhost/jobs/job-ok always;
    return 202 '{"id":"job-ok","status":"queued"}';
}
location = /jobs/job-ok {
    return 200 '{"id":"job-ok","status":"completed","progress":{"done":2,"total":2}}';
}
# exact locations, not a regex: nginx's PCRE2 context leaks at start under
# ASan (make test-asan); the URL names the job, so {id} must have been put in
location = /jobs/job-ok/echo {
    return 200 '{"job":"job-ok","method":"$request_method","length":"$content_length"}';
}
location = /jobs/job-failed/echo {
    return 200 '{"job":"job-failed","method":"$request_method","length":"$content_length"}';
}
location = /failing { return 202 '{"id":"job-failed"}'; }
location = /v1/podcasts/job-failed {
    return 200 '{"id":"job-failed","status":"failed","error":{"code":"x","message":"y"}}';
}
location = /stuck {
    add_header Location /jobs/stuck always;
    return 202 '{"id":"stuck","status":"queued"}';
}
location = /jobs/stuck { return 200 '{"id":"stuck","status":"running"}'; }
location = /no-id { return 202 '{"status":"queued"}'; }
location = /error {
    return 400 '{"error":{"message":"bad","type":"invalid_request_error","param":"voice","code":"invalid_value"}}';
}
location = /half-error { return 400 '{"error":{"message":"bad","type":"t","code":"c"}}'; }
EOF

# The job and error sections fail when they should.  The blocks run in a
# child perl; its TAP says which assertions failed, and those must be
# exactly the ones named here.
{
    my $config = "--- config\n$JOB_MOCKS";
    # block => the assertion of it that must fail
    my %fails = (
        'wait_status completed, the job fails' => 'job status',
        'wait_status, the job never ends' => 'job status',
        'then with {id}, no id' => 'the request made a job (an id)',
        'request_code 201, got 202' => 'request status',
        'api_error: another code' => 'code invalid_json',
        'api_error: another param' => 'param input',
        'api_error: no param key' => 'JSON {error: {message, type, param, code}}',
        'api_error: another status' => '404',
        'max_time too short' => 'answered in',
        'response_body_unlike matches' => 'response body unlike',
    );
    my $blocks = <<"EOF";
=== the control: passes
$config
--- request
POST /jobs
--- request_code: 202
--- wait_status: completed

=== wait_status completed, the job fails
$config
--- request
POST /failing
--- wait_status: completed

=== wait_status, the job never ends
$config
--- request
POST /stuck
--- wait_status: completed
--- wait_timeout: 1

=== then with {id}, no id
$config
--- request
POST /no-id
--- then
GET /jobs/{id}

=== request_code 201, got 202
$config
--- request
POST /jobs
--- request_code: 201
--- then
GET /jobs/job-ok

=== api_error: another code
$config
--- request
GET /error
--- api_error: 400 code=invalid_json

=== api_error: another param
$config
--- request
GET /error
--- api_error: 400 param=input

=== api_error: no param key
$config
--- request
GET /half-error
--- api_error: 400

=== api_error: another status
$config
--- request
GET /error
--- api_error: 404 code=invalid_value

=== max_time too short
$config
--- request
GET /error
--- max_time: 0.00001

=== response_body_unlike matches
$config
--- request
GET /error
--- response_body_unlike: "param":"voice"
EOF
    my $dir = File::Temp::tempdir('podgen-harness-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $root = repo_root();
    open my $fh, '>', "$dir/child.t" or die "$dir/child.t: $!";
    print $fh "use lib '$root/t/lib';\nuse Podgen::Test;\nrun_blocks();\n"
            . "__DATA__\n$blocks";
    close $fh;
    my $out = `$^X $dir/child.t 2>&1`;
    my $rc = $? >> 8;
    my @not_ok = $out =~ /^not ok \d+ - (.*)$/mg;
    my @want = sort map { "$_: $fails{$_}" } keys %fails;
    my @missed = grep { my $w = $_; !grep { index($_, $w) == 0 } @not_ok } @want;
    my @extra = grep { my $g = $_; !grep { index($g, $_) == 0 } @want } @not_ok;
    ok(!@missed, 'failing blocks: each fails on the assertion it must')
        or diag "did not fail: @missed\n$out";
    ok(!@extra, 'failing blocks: nothing else fails (the control passes)')
        or diag join("\n", 'also failed:', @extra) . "\n$out";
    is($rc, scalar @not_ok, 'failing blocks: the child exits with its number '
                            . 'of failures') or diag $out;
}

run_blocks(defaults => { config => $JOB_MOCKS });

__DATA__

=== TEST 1: plain return
--- config
location = /hi { return 200 "hi"; }
--- request
GET /hi
--- error_code: 200
--- response_body: hi
--- response_headers
Content-Type: text/plain
!X-Podgen-Cache
--- no_error_log
[error]

=== TEST 2: same config: the running nginx is reused; body and headers sent
--- config
location = /hi { return 200 "hi"; }
--- request
POST /hi
some body
--- more_headers
X-Test: 1
--- error_code: 200
--- response_body_like: ^h.$

=== TEST 3: JSON 404 and headers
--- http_config
default_type application/json;
--- config
location / {
    add_header X-Request-Id 0123456789abcdef0123456789abcdef always;
    return 404 '{"error":{"message":"x","param":null,"code":"nope","list":[1,2,3]}}';
}
--- request
GET /whatever
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$
--- response_json
{"error":{"param":null,"code":"nope","list":[1,2]}}

=== TEST 4: reload before the request, two workers
--- workers: 2
--- main_config
thread_pool default threads=2;
--- config
location = /hi { return 200 "reloaded"; }
--- reload
--- request
GET /hi
--- error_code: 200
--- response_body: reloaded

=== TEST 5: request eval with a binary body
--- config
location = /len { return 200 "$content_length"; }
--- request eval
"POST /len\n" . ("\x00\xff" x 1000)
--- error_code: 200
--- response_body: 2000

=== TEST 6: error_log regex
--- config
location = /e { return 200 "ok"; }
--- request
GET /missing-file
--- error_code: 404
--- error_log
open\(\) ".*missing-file" failed

=== TEST 7: a config nginx rejects
--- config
location = /x { no_such_directive; }
--- must_die
--- error_log
unknown directive "no_such_directive"

=== TEST 8: skipped block
--- skip: demonstrates skip
--- config
location = /x { return 200; }
--- request
GET /x
--- error_code: 200

=== TEST 9: more_headers eval and response_body eval
--- config
location = /h { return 200 "[$http_x_a]"; }
--- request
GET /h
--- more_headers eval
"X-A: " . ("a" x 5)
--- response_body eval
"[" . ("a" x 5) . "]"

=== TEST 10: wait_status: the job's URL from Location; its final status is the response checked
--- request
POST /jobs
{"topic":"x"}
--- request_code: 202
--- wait_status: completed
--- wait_timeout: 10
--- error_code: 200
--- response_json
{"id":"job-ok","status":"completed","progress":{"done":2}}

=== TEST 11: then: {id} in the follow-up's URL and body is the job's id
--- request
POST /jobs
--- then
POST /jobs/{id}/echo
{"about":"{id}"}
--- error_code: 200
--- response_json
{"job":"job-ok","method":"POST","length":"18"}

=== TEST 12: wait_status failed, then: without Location the job is /v1/podcasts/{id}
--- request
POST /failing
--- wait_status: failed
--- then
GET /jobs/{id}/echo
--- response_json
{"job":"job-failed","method":"GET"}

=== TEST 13: api_error, response_body_unlike, max_time
--- request
GET /error
--- api_error: 400 code=/^invalid_(?:value|json)$/ param=voice type=invalid_request_error
--- response_body_unlike: root:
--- max_time: 5
