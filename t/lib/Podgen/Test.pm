package Podgen::Test;

# Test harness for the podgen nginx module, in the style of Test::Nginx and
# nginx-tests, using Perl core modules only.
#
# Data-driven use:
#
#     use lib 't/lib';
#     use Podgen::Test;
#     run_blocks();
#     __DATA__
#     === TEST 1: name
#     --- config
#     location = /v1/audio/speech { podgen_speech; }
#     --- request
#     POST /v1/audio/speech
#     {"model":"tts-1","input":"Hi.","voice":"alloy"}
#     --- more_headers
#     Content-Type: application/json
#     --- error_code: 200
#
# Sections: main_config http_config config workers request more_headers
# error_code error_code_like response_headers response_headers_like
# response_body response_body_like response_body_unlike response_json
# api_error max_time no_error_log error_log reload skip timeout must_die
# wait, and for jobs request_code wait_status wait_timeout then.  Any
# section takes the "eval" modifier ("--- request eval"): its text is Perl
# code whose value is used.  run_blocks(defaults => {section => value})
# gives every block the sections it does not have.
#
#   --- api_error: 400 code=invalid_value param=segments[0].text
#       An OpenAI-shaped error (Podgen::API::error_ok): this status,
#       Content-Type application/json, {"error":{message, type, param,
#       code}} with a non-empty message and a type and a code.  Optional
#       tokens, no spaces in them: code=CODE or code=/REGEX/, param=PARAM
#       (param=null: JSON null), type=TYPE.
#   --- response_body_unlike: root:
#       The body does not match this regex.
#   --- max_time: 3
#       The response came within this many seconds (connect to last byte).
#
# Jobs.  A block whose request makes a job (a podcast, an async batch) can
# follow it:
#
#     === TEST 1: a job that completes, then its audio
#     --- request
#     POST /v1/podcasts
#     {"segments":[{"speaker":"A","text":"Hello there."}]}
#     --- request_code: 202
#     --- wait_status: completed
#     --- wait_timeout: 60
#     --- then
#     GET /v1/podcasts/{id}/audio
#     --- error_code: 200
#
#   --- request_code: 202
#       The status of the request itself (without it: any 2xx).
#   --- wait_status: completed
#       Long-poll the job the request made (its JSON "id"; its URL is the
#       Location header, else /v1/podcasts/{id}) until it is completed or
#       failed, and check which (one assertion, "<name>: job status").
#   --- wait_timeout: 60
#       Seconds wait_status waits at most (default 60).
#   --- then
#       One follow-up request, written like the request section, sent
#       after the request (and after wait_status); "{id}" in it is the id
#       of the job the request made.
#   The response sections (error_code ... api_error, max_time) check the
#   block's last response: the follow-up's when there is a then section,
#   else the job's final status (a GET of the job after wait_status), else
#   the request's.  The request's own response is checked by request_code.
#
# t/00-harness.t tests the sections, and that blocks which must fail do
# (it runs them in a child perl and reads its TAP).
#
# Imperative use: Podgen::Test::Nginx->new(...), request(), raw_request(),
# stream_request(), parse_responses(), start_redis(), start_mock_llm(),
# audio_duration().  See the POD-less comments above each function.
# Requests against a running podgen (post, speech, metrics, error_ok,
# wait_job, ...) are in Podgen::API (t/lib/Podgen/API.pm).
#
# Environment:
#   PODGEN_MODULE     the .so to load (default <repo>/objs/ngx_podgen_module.so)
#   PODGEN_NGINX      the nginx binary (default /usr/sbin/nginx)
#   PODGEN_PRELOAD    LD_PRELOAD for nginx (sanitizer runtimes); turns on
#                     ASAN_OPTIONS=detect_leaks=1:log_path=<prefix>/logs/asan
#   PODGEN_TEST_KEEP  1: keep the temporary prefixes
#   PODGEN_TEST_LOG_LEVEL  error_log level (default info; "debug" for a trace)
#   PODGEN_TEST_RELOAD 1: HUP-reload nginx before every block's request
#   PODGEN_TEST_VERBOSE 1: print each nginx.conf

use strict;
use warnings;

use Test::More ();
use Test::Builder;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use File::Path qw(make_path);
use IO::Socket::IP;
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER);
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Scalar::Util qw(blessed weaken refaddr looks_like_number);
use Exporter 'import';

our @EXPORT = qw(
    run_blocks request raw_request stream_request parse_responses
    start_redis start_mock_llm free_port repo_root module_path
    json_subset audio_duration decode_audio which skip_rest
    wait_for_port wait_for slurp in_parallel slow_client slow_finish
    all_at_once $JSON
);

our $VERSION = '0.1';

our $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

# A test killed by SIGTERM/SIGINT/SIGHUP still runs END blocks, which stop
# the nginx instances and helper processes it started.
for my $sig (qw(TERM INT HUP)) {
    $SIG{$sig} = sub { Test::More::diag("caught SIG$sig"); exit 1 }
        unless $SIG{$sig};
}

my $ROOT = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)),
                                       File::Spec->updir, File::Spec->updir,
                                       File::Spec->updir));

sub repo_root { $ROOT }

sub module_path {
    return $ENV{PODGEN_MODULE} || "$ROOT/objs/ngx_podgen_module.so";
}

sub nginx_binary { $ENV{PODGEN_NGINX} || '/usr/sbin/nginx' }

# Every test file needs the module: without it, fail clearly right away.
{
    my $checked;
    sub _require_module {
        return if $checked++;
        my $m = module_path();
        return if -f $m;
        my $tb = Test::Builder->new;
        $tb->plan(tests => 1) unless $tb->has_plan;
        $tb->ok(0, "build the module first: make build ($m not found)");
        $tb->diag("build the module first: make build\n"
                  . "(looked for $m; set PODGEN_MODULE to override)");
        exit 1;
    }
}

sub which {
    my ($prog) = @_;
    return $prog if $prog =~ m{/} && -x $prog;
    for my $d (split /:/, $ENV{PATH} // '') {
        my $p = "$d/$prog";
        return $p if -f $p && -x _;
    }
    return undef;
}

# Skip the remainder of a test file, whether or not tests have run.
sub skip_rest {
    my ($reason) = @_;
    my $tb = Test::Builder->new;
    if (!$tb->has_plan && $tb->current_test == 0) {
        Test::More::plan(skip_all => $reason);   # exits
    }
    $tb->note("skipping the rest: $reason");
    Test::More::done_testing() unless $tb->has_plan;
    exit 0;
}

# ---------------------------------------------------------------------------
# ports and processes

sub free_port {
    for (1 .. 50) {
        my $s = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0,
                                    Proto => 'tcp', Listen => 1,
                                    ReuseAddr => 0)
            or next;
        my $port = $s->sockport;
        close $s;
        # guard against handing out the same port twice in one process
        our %GIVEN;
        next if $GIVEN{$port}++;
        return $port;
    }
    die "cannot find a free port: $!";
}

sub wait_for_port {
    my ($port, $timeout, $alive) = @_;
    my $deadline = time + ($timeout // 10);
    while (time < $deadline) {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                    Proto => 'tcp', Timeout => 1);
        if ($s) { close $s; return 1 }
        return 0 if $alive && !$alive->();
        sleep 0.05;
    }
    return 0;
}

# True while a process exists and is not a zombie.
sub _pid_alive {
    my ($pid) = @_;
    return 0 unless $pid && $pid > 1;
    return 0 unless kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $st = <$fh> // '';
        close $fh;
        return 0 if $st =~ /\)\s+([ZX])\s/;
    }
    return 1;
}

sub _children_of {
    my ($ppid) = @_;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $st = <$fh> // '';
        close $fh;
        my $r = rindex $st, ')';
        next if $r < 0;
        my @f = split ' ', substr($st, $r + 2);
        # f[0] state, f[1] ppid
        next unless @f > 1 && $f[1] == $ppid;
        next if $f[0] eq 'Z' || $f[0] eq 'X';
        my $cmd = '';
        if (open my $ch, '<', "/proc/$pid/cmdline") {
            local $/;
            $cmd = <$ch> // '';
            close $ch;
            $cmd =~ s/\0+$//;
            $cmd =~ s/\0/ /g;
        }
        push @kids, { pid => $pid, cmd => $cmd };
    }
    closedir $dh;
    return @kids;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d // '';
}

# A whole file as bytes; undef when it cannot be read.
sub slurp { _slurp(@_) }

# wait_for(sub { ... }, $secs): 1 as soon as the sub returns true (looked
# at every 0.1 s), 0 if it has not after $secs.
sub wait_for {
    my ($what, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) { return 1 if $what->(); sleep 0.1 }
    return 0;
}

# in_parallel($n, sub { my ($i) = @_; ...; return @fields })
# Runs the sub in $n forked clients at once (i = 1..n) and returns their
# fields, one array ref per client in order of i (fields hold no spaces;
# a client that died returns nothing).  stagger => seconds between forks.
sub in_parallel {
    my ($n, $code, %o) = @_;
    my $dir = tempdir('podgen-par-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @kids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my @f = eval { $code->($i) };
            if (open my $fh, '>', "$dir/$i") {
                print $fh join(' ', map { $_ // '-' } @f), "\n";
                close $fh;
            }
            POSIX::_exit(0);
        }
        push @kids, $pid;
        sleep $o{stagger} if $o{stagger};
    }
    waitpid $_, 0 for @kids;
    my @res;
    for my $i (1 .. $n) {
        my $line = _slurp("$dir/$i");
        push @res, [ split ' ', $line ] if defined $line;
    }
    return @res;
}

# all_at_once($n, $raw_request, port => $port | sub { $i -> $port })
# $n forked clients connect (client i to the port given), and once every one
# of them is connected they all send the request and read the whole
# response.  Returns (how many were connected, then one
# [status, X-Podgen-Cache, body length, body md5] per client, in order).
sub all_at_once {
    my ($n, $req, %o) = @_;
    my $port = $o{port};
    require Digest::MD5;
    my $dir = tempdir('podgen-once-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    pipe my $go_r, my $go_w or die "pipe: $!";
    pipe my $ready_r, my $ready_w or die "pipe: $!";
    my @kids;
    for my $i (1 .. $n) {
        my $p = ref $port ? $port->($i) : $port;
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            close $ready_r;
            my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                        PeerPort => $p, Proto => 'tcp',
                                        Timeout => 10);
            syswrite $ready_w, 'r';
            sysread $go_r, my $x, 1;    # returns when the parent closes it
            my $line = "0 - 0 -";
            if ($s) {
                binmode $s;
                syswrite $s, $req;
                my $buf = '';
                my $t0 = time;
                while (time - $t0 < 60) {
                    my $k = sysread $s, $buf, 65536, length $buf;
                    last unless $k;
                }
                my ($res) = parse_responses($buf, methods => ['POST']);
                $line = join ' ', $res->{status} || 0,
                    $res->{headers}{'x-podgen-cache'} // '-',
                    length $res->{body}, Digest::MD5::md5_hex($res->{body})
                    if $res;
            }
            if (open my $fh, '>', "$dir/$i") { print $fh "$line\n"; close $fh }
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    close $go_r;
    close $ready_w;
    # every child is connected before any sends
    my $ready = 0;
    my $deadline = time + 30;
    while ($ready < $n && time < $deadline) {
        my $k = sysread $ready_r, my $b, 1024;
        last unless $k;
        $ready += $k;
    }
    close $go_w;
    waitpid $_, 0 for @kids;
    my @res;
    for my $i (1 .. $n) {
        my $line = _slurp("$dir/$i");
        push @res, defined $line ? [ split ' ', $line ] : [ 0, '-', 0, '-' ];
    }
    return ($ready, @res);
}

# A client that reads slowly: connects with a small receive buffer, sends
# the raw request and reads its first $o{first} bytes (8192).  Returns the
# socket and what it read; slow_finish() reads the rest (up to 30 s) and
# returns all of it.
sub slow_client {
    my ($t, $req, %o) = @_;
    socket(my $s, Socket::PF_INET(), Socket::SOCK_STREAM(), 0) or die $!;
    setsockopt($s, SOL_SOCKET, Socket::SO_RCVBUF(), $o{rcvbuf} // 4096);
    connect($s, Socket::pack_sockaddr_in($t->port,
                                         Socket::inet_aton('127.0.0.1')))
        or die "connect: $!";
    binmode $s;
    syswrite $s, $req;
    my $got = '';
    while (length $got < ($o{first} // 8192)) {
        my $n = sysread $s, $got, 4096, length $got;
        last unless $n;
    }
    return ($s, $got);
}

sub slow_finish {
    my ($s, $got) = @_;
    my $t0 = time;
    while (time - $t0 < 30) {
        my $n = sysread $s, $got, 65536, length $got;
        last unless $n;
    }
    close $s;
    return $got;
}

sub _spew {
    my ($file, $data) = @_;
    open my $fh, '>:raw', $file or die "cannot write $file: $!";
    print {$fh} $data;
    close $fh or die "cannot write $file: $!";
}

# Lines that always fail a test when they appear in error.log.
our $BAD_LOG_RE = qr/\[(?:alert|crit|emerg)\]|AddressSanitizer|runtime error:|LeakSanitizer|ERROR: \w+Sanitizer/;

# ---------------------------------------------------------------------------
# nginx instances

package Podgen::Test::Nginx;

use strict;
use warnings;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);
use File::Temp qw(tempdir);
use File::Path qw(make_path);
use Scalar::Util qw(weaken refaddr);

my %LIVE;    # refaddr => weak ref, for END

sub new {
    my ($class, %a) = @_;
    Podgen::Test::_require_module();
    my $keep = $ENV{PODGEN_TEST_KEEP} ? 1 : 0;
    my $prefix = tempdir('podgen-nginx-XXXXXX', TMPDIR => 1,
                         CLEANUP => !$keep);
    # workers may run as an unprivileged user when the tests run as root
    chmod 0755, $prefix;
    for my $d (qw(conf logs html tmp)) { make_path("$prefix/$d") }
    chmod 01777, "$prefix/logs";
    chmod 0755, "$prefix/conf", "$prefix/html";
    chmod 01777, "$prefix/tmp";
    my $self = bless {
        config      => $a{config} // '',
        http_config => $a{http_config} // '',
        main_config => $a{main_config} // '',
        workers     => $a{workers} // 1,
        worker_connections => $a{worker_connections} // 1024,
        listen_options => $a{listen_options} // '',
        env         => $a{env} // {},
        port        => $a{port} // Podgen::Test::free_port(),
        prefix      => $prefix,
        keep        => $keep,
        owner       => $$,
        log_mark    => 0,
        start_timeout => $a{start_timeout} // ($ENV{PODGEN_VALGRIND} ? 120 : 30),
    }, $class;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};
    $self->write_config;
    return $self;
}

sub port        { $_[0]{port} }
sub prefix      { $_[0]{prefix} }
sub url         { my ($s, $p) = @_; $p //= '/'; "http://127.0.0.1:$s->{port}$p" }
sub conf_file   { "$_[0]{prefix}/conf/nginx.conf" }
sub error_log_file { "$_[0]{prefix}/logs/error.log" }
sub running     { my $s = shift; $s->{master} && Podgen::Test::_pid_alive($s->{master}) }

sub config_text {
    my ($self) = @_;
    my $p = $self->{prefix};
    my $module = Podgen::Test::module_path();
    my $user = '';
    my $level = $ENV{PODGEN_TEST_LOG_LEVEL} || 'info';
    return <<"EOF";
load_module $module;
worker_processes $self->{workers};
daemon on;
master_process on;
error_log $p/logs/error.log $level;
pid $p/logs/nginx.pid;

$self->{main_config}

events {
    worker_connections $self->{worker_connections};
}

http {
    access_log $p/logs/access.log;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;

$self->{http_config}

    server {
        listen 127.0.0.1:$self->{port}$self->{listen_options};
        server_name localhost;

$self->{config}
    }
}
EOF
}

sub write_config {
    my ($self) = @_;
    my $text = $self->config_text;
    Podgen::Test::_spew($self->conf_file, $text);
    Test::More::note("nginx.conf:\n$text") if $ENV{PODGEN_TEST_VERBOSE};
}

sub _nginx_env {
    my ($self) = @_;
    my %env = %{ $self->{env} };
    if ($ENV{PODGEN_PRELOAD}) {
        $env{LD_PRELOAD} = $ENV{PODGEN_PRELOAD};
        # the caller's ASAN_OPTIONS/UBSAN_OPTIONS are kept; log_path is ours
        my $log = "$self->{prefix}/logs/asan";
        my $user = $env{ASAN_OPTIONS} // $ENV{ASAN_OPTIONS};
        $env{ASAN_OPTIONS} = "detect_leaks=1"
            . (defined $user && $user ne '' ? ":$user" : '') . ":log_path=$log";
        $user = $env{UBSAN_OPTIONS} // $ENV{UBSAN_OPTIONS};
        $env{UBSAN_OPTIONS} = "print_stacktrace=1"
            . (defined $user && $user ne '' ? ":$user" : '') . ":log_path=$log";
        # leaks that are not podgen's: OpenSSL's one-time initialisation
        # (nginx links it; libcurl loads it again); more lines can come from
        # a file named by PODGEN_LSAN_SUPP
        my $supp = "$self->{prefix}/conf/lsan.supp";
        my $extra = $ENV{PODGEN_LSAN_SUPP}
                  ? (Podgen::Test::_slurp($ENV{PODGEN_LSAN_SUPP}) // '') : '';
        Podgen::Test::_spew($supp, "leak:libssl.so\nleak:libcrypto.so\n$extra");
        $user = $env{LSAN_OPTIONS} // $ENV{LSAN_OPTIONS};
        $env{LSAN_OPTIONS} = "suppressions=$supp:print_suppressions=0"
            . (defined $user && $user ne '' ? ":$user" : '') . ":log_path=$log";
    }
    return \%env;
}

# Run nginx with @args; returns (exit status, combined output).
sub _run_nginx {
    my ($self, $timeout, @args) = @_;
    my $out = "$self->{prefix}/logs/nginx-cmd.out";
    my $env = $self->_nginx_env;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        $ENV{$_} = $env->{$_} for keys %$env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        # PODGEN_VALGRIND=1: nginx and its workers under memcheck (memory
        # errors, not leaks: nginx leaves its pools to exit)
        my @vg = $ENV{PODGEN_VALGRIND}
            ? ('valgrind', '--tool=memcheck', '--leak-check=no',
               '--trace-children=no', '--num-callers=20',
               "--log-file=$self->{prefix}/logs/asan.valgrind.%p")
            : ();
        { exec @vg, Podgen::Test::nginx_binary(),
               '-p', "$self->{prefix}/", '-c', $self->conf_file, @args; }
        print STDERR "cannot exec nginx: $!\n";
        POSIX::_exit(127);
    }
    my $deadline = time + $timeout;
    my $status;
    while (1) {
        my $r = waitpid $pid, WNOHANG;
        if ($r == $pid) { $status = $?; last }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            $status = -1;
            last;
        }
        sleep 0.02;
    }
    my $text = Podgen::Test::_slurp($out) // '';
    return ($status, $text);
}

# nginx -t: returns (ok, output)
sub test_config {
    my ($self) = @_;
    local $?;
    $self->write_config;
    my ($st, $out) = $self->_run_nginx(60, '-t');
    # nginx -t exits without freeing its cycle: under PODGEN_PRELOAD
    # (ASan) LeakSanitizer then turns a good test into exit status 1, so
    # nginx's own verdict line decides there
    my $ok = $st == 0
             || ($ENV{PODGEN_PRELOAD}
                 && $out =~ /configuration file \S+ test is successful/);
    return ($ok ? 1 : 0, $out);
}

sub start {
    my ($self) = @_;
    local $?;
    die "nginx already running\n" if $self->running;
    $self->write_config;
    unlink "$self->{prefix}/logs/nginx.pid";
    my ($st, $out) = $self->_run_nginx($self->{start_timeout});
    if ($st != 0) {
        my $log = $self->error_log;
        die "nginx failed to start (status $st):\n$out"
            . ($log ne '' ? "error.log:\n$log" : '') . "\n";
    }
    my $deadline = time + $self->{start_timeout};
    my $pidfile = "$self->{prefix}/logs/nginx.pid";
    my $master;
    while (time < $deadline) {
        my $p = Podgen::Test::_slurp($pidfile);
        if (defined $p && $p =~ /^(\d+)/) { $master = $1; last }
        sleep 0.02;
    }
    die "nginx started but wrote no pid file\n" . $self->error_log . "\n"
        unless $master;
    $self->{master} = $master;
    if (!Podgen::Test::wait_for_port($self->{port},
            $self->{start_timeout}, sub { $self->running })) {
        die "nginx does not accept connections on port $self->{port}\n"
            . $self->error_log . "\n";
    }
    # wait for the workers too
    $self->_wait_workers({}, $self->{start_timeout});
    $self->{workers_seen} = [ $self->worker_pids ];
    return $self;
}

sub master_pid { $_[0]{master} }

sub _worker_procs {
    my ($self) = @_;
    return () unless $self->{master};
    # (under valgrind a worker's command line is valgrind's: every child)
    return grep { $_->{cmd} =~ /worker process/ || $ENV{PODGEN_VALGRIND} }
           Podgen::Test::_children_of($self->{master});
}

# pids of the current (not shutting down) worker processes
sub worker_pids {
    my ($self) = @_;
    my @p = sort { $a <=> $b } map { $_->{pid} }
            grep { $_->{cmd} !~ /shutting down/ } $self->_worker_procs;
    return wantarray ? @p : scalar @p;
}

sub _wait_workers {
    my ($self, $old, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        die "nginx master exited\n" . $self->error_log . "\n"
            unless $self->running;
        my $log = $self->error_log;
        die "worker processes cannot start:\n$log\n"
            if $log =~ /exited with fatal code|cannot be respawned/;
        my @w = grep { !$old->{$_} } $self->worker_pids;
        my @stale = grep { $old->{$_} } $self->worker_pids;
        return @w if @w >= $self->{workers} && !@stale;
        sleep 0.02;
    }
    die "timed out waiting for $self->{workers} new worker process(es)\n"
        . $self->error_log . "\n";
}

# HUP reload; optional new config parts: reload(config => ...).
sub reload {
    my ($self, %a) = @_;
    die "nginx is not running\n" unless $self->running;
    my $changed;
    for my $k (qw(config http_config main_config)) {
        next unless exists $a{$k};
        $self->{$k} = $a{$k};
        $changed = 1;
    }
    $self->write_config if $changed;
    my %old = map { $_ => 1 } $self->worker_pids;
    my $log_before = length($self->error_log);
    kill 'HUP', $self->{master} or die "cannot HUP $self->{master}: $!\n";
    my $deadline = time + ($a{timeout} // 30);
    while (time < $deadline) {
        my $log = substr($self->error_log, $log_before);
        if ($log =~ /\[emerg\][^\n]*/) {
            die "reload failed: $&\n";
        }
        my @new = grep { !$old{$_} } $self->worker_pids;
        my @stale = grep { $old{$_} } $self->worker_pids;
        if (@new >= $self->{workers} && !@stale) {
            $self->{workers_seen} = [ @{ $self->{workers_seen} || [] }, @new ];
            return @new;
        }
        sleep 0.02;
    }
    die "timed out waiting for new workers after reload\n"
        . $self->error_log . "\n";
}

sub stop {
    my ($self, %a) = @_;
    local ($?, $!, $@);
    return unless $$ == $self->{owner};
    my $m = $self->{master};
    return unless $m;
    my @workers = map { $_->{pid} } $self->_worker_procs;
    my $grace = $a{timeout} // 15;
    if (Podgen::Test::_pid_alive($m)) {
        kill 'QUIT', $m;
        my $deadline = time + $grace;
        sleep 0.01 while Podgen::Test::_pid_alive($m) && time < $deadline;
        if (Podgen::Test::_pid_alive($m)) {
            Test::More::diag("nginx $m did not quit in ${grace}s; TERM");
            kill 'TERM', $m;
            $deadline = time + 5;
            sleep 0.02 while Podgen::Test::_pid_alive($m) && time < $deadline;
        }
        if (Podgen::Test::_pid_alive($m)) {
            Test::More::diag("nginx $m did not terminate; KILL");
            kill 'KILL', $m;
        }
    }
    # stray workers (after a KILL of the master, or a crash)
    my $deadline = time + 5;
    while (time < $deadline && grep { Podgen::Test::_pid_alive($_) } @workers) {
        sleep 0.02;
    }
    for my $w (grep { Podgen::Test::_pid_alive($_) } @workers) {
        kill 'KILL', $w;
    }
    $self->{master} = undef;
    return 1;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    return unless $$ == ($self->{owner} // 0);
    $self->stop if $self->{master};
    delete $LIVE{refaddr $self};
}

END {
    local ($?, $!, $@);
    for my $ng (grep { defined } values %LIVE) {
        eval { $ng->stop if $ng->{master} && $$ == $ng->{owner} };
    }
}

sub error_log {
    my ($self) = @_;
    return Podgen::Test::_slurp($self->error_log_file) // '';
}

# Remember the current end of error.log; error_log_since_mark() reads on.
sub mark_error_log {
    my ($self) = @_;
    $self->{log_mark} = length $self->error_log;
    my %seen = map { $_ => 1 } $self->_asan_files;
    $self->{asan_seen} = \%seen;
}

sub error_log_since_mark {
    my ($self) = @_;
    my $l = $self->error_log;
    return length($l) >= $self->{log_mark} ? substr($l, $self->{log_mark}) : $l;
}

# Sanitizer report files that hold something to fail on (see
# Podgen::Test::sanitizer_findings).
sub _asan_files {
    my ($self) = @_;
    return grep { -s $_ && Podgen::Test::sanitizer_findings(
                      Podgen::Test::_slurp($_) // '') ne '' }
           glob("$self->{prefix}/logs/asan*");
}

sub _asan_text {
    my ($self, $f) = @_;
    return Podgen::Test::sanitizer_findings(Podgen::Test::_slurp($f) // '');
}

# Lines of error.log (since the mark when $since is true) that always mean a
# failure, plus the text of any sanitizer report file.
sub check_error_log {
    my ($self, $since) = @_;
    my $log = $since ? $self->error_log_since_mark : $self->error_log;
    # nginx's own alerts; sanitizer output that reached error.log (stderr of
    # the daemon) goes through the same filter as the report files
    my @bad = grep { /\[(?:alert|crit|emerg)\]/ } split /\n/, $log;
    push @bad, split /\n/, Podgen::Test::sanitizer_findings($log)
        if $log =~ /Sanitizer|runtime error:/;
    for my $f ($self->_asan_files) {
        next if $since && $self->{asan_seen} && $self->{asan_seen}{$f};
        push @bad, "$f:", split /\n/, $self->_asan_text($f);
    }
    return @bad;
}

sub diag_state {
    my ($self, $since) = @_;
    my $log = $since ? $self->error_log_since_mark : $self->error_log;
    my @l = grep { !/\[notice\]/ } split /\n/, $log;
    @l = @l[-40 .. -1] if @l > 40;
    Test::More::diag("nginx prefix: $self->{prefix}"
        . ($self->{keep} ? '' : ' (removed at exit; set PODGEN_TEST_KEEP=1 to keep it)'));
    Test::More::diag("error.log (tail):\n" . join("\n", @l)) if @l;
    for my $f ($self->_asan_files) {
        Test::More::diag("$f:\n" . $self->_asan_text($f));
    }
}

# ---------------------------------------------------------------------------
# redis and the mock LLM

package Podgen::Test::Process;

use strict;
use warnings;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);

sub spawn {
    my ($class, %a) = @_;
    my $log = $a{log};
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        POSIX::setpgid(0, 0);
        chdir $a{dir} if $a{dir};
        $ENV{$_} = $a{env}{$_} for keys %{ $a{env} || {} };
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec @{ $a{cmd} } or POSIX::_exit(127);
    }
    my $self = bless { %a, pid => $pid, owner => $$ }, $class;
    if (!Podgen::Test::wait_for_port($a{port}, $a{timeout} // 15,
                                     sub { $self->alive })) {
        my $out = Podgen::Test::_slurp($log) // '';
        $self->stop;
        die "@{ $a{cmd} } did not start listening on port $a{port}:\n$out\n";
    }
    return $self;
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub url  { my ($s, $p) = @_; "http://127.0.0.1:$s->{port}" . ($p // '') }
sub log  { Podgen::Test::_slurp($_[0]{log}) // '' }

sub alive {
    my ($self) = @_;
    return 0 unless $self->{pid};
    my $r = waitpid $self->{pid}, WNOHANG;
    if ($r == $self->{pid}) { $self->{status} = $?; $self->{pid} = undef; return 0 }
    return 1;
}

sub stop {
    my ($self) = @_;
    local ($?, $!, $@);
    return unless $self->{pid} && $$ == $self->{owner};
    my $pid = $self->{pid};
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        my $r = waitpid $pid, WNOHANG;
        if ($r == $pid || $r == -1) { $self->{pid} = undef; return 1 }
        sleep 0.02;
    }
    kill 'KILL', -$pid;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    $self->{pid} = undef;
    return 1;
}

sub DESTROY { local ($?, $!, $@); $_[0]->stop }

package Podgen::Test;

my @PROCS;    # stopped at END
END {
    local ($?, $!, $@);
    $_->stop for grep { defined } @PROCS;
}

sub start_redis {
    my (%a) = @_;
    my $bin = which('redis-server')
        or skip_rest('redis-server is not installed');
    my $dir = tempdir('podgen-redis-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{PODGEN_TEST_KEEP});
    my $port = $a{port} // free_port();
    my $p = Podgen::Test::Process->spawn(
        cmd => [ $bin, '--port', $port, '--bind', '127.0.0.1',
                 '--save', '', '--appendonly', 'no', '--dir', $dir,
                 @{ $a{args} || [] } ],
        port => $port, dir => $dir, log => "$dir/redis.log");
    push @PROCS, $p;
    weaken $PROCS[-1];
    return $p;
}

sub start_mock_llm {
    my (%a) = @_;
    my $bin = "$ROOT/t/mock-llm";
    skip_rest("t/mock-llm does not exist yet (the mock LLM server); "
              . "cannot run these tests")
        unless -f $bin;
    skip_rest("t/mock-llm is not executable") unless -x $bin;
    my $dir = tempdir('podgen-mockllm-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{PODGEN_TEST_KEEP});
    my $port = $a{port} // free_port();
    my @args = @{ $a{args} || [] };
    for my $k (sort keys %a) {
        next if $k =~ /^(?:port|args|env|timeout)$/;
        (my $opt = $k) =~ tr/_/-/;
        push @args, "--$opt", $a{$k};
    }
    my $p = Podgen::Test::Process->spawn(
        cmd => [ $bin, '--port', $port, @args ], env => $a{env},
        port => $port, log => "$dir/mock-llm.log", timeout => $a{timeout});
    push @PROCS, $p;
    weaken $PROCS[-1];
    return $p;
}

# ---------------------------------------------------------------------------
# HTTP client

sub _port_of {
    my ($t) = @_;
    return $t if !ref $t;
    return $t->port if blessed $t && $t->can('port');
    return $t->{port} if ref $t eq 'HASH';
    die "cannot find a port in $t";
}

sub _connect {
    my ($port, $timeout) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port,
                                Proto => 'tcp', Timeout => $timeout // 10)
        or die "cannot connect to 127.0.0.1:$port: $@\n";
    binmode $s;
    $s->autoflush(1);
    return $s;
}

sub _build_request {
    my ($method, $path, $body, $headers, %o) = @_;
    my @h;
    my %have;
    my @hl = ref $headers eq 'ARRAY' ? @$headers
           : map { ($_, $headers->{$_}) } sort keys %{ $headers || {} };
    while (@hl) {
        my ($k, $v) = splice @hl, 0, 2;
        $have{lc $k} = 1;
        push @h, "$k: $v";
    }
    unshift @h, "Host: localhost" unless $have{host};
    push @h, "Connection: " . ($o{keepalive} ? 'keep-alive' : 'close')
        unless $have{connection};
    if (defined $body && !$have{'content-length'}
        && !$have{'transfer-encoding'}) {
        push @h, "Content-Length: " . length $body;
    }
    my $req = "$method $path HTTP/1.1\r\n" . join('', map { "$_\r\n" } @h)
            . "\r\n";
    $req .= $body if defined $body;
    return $req;
}

sub _send_all {
    my ($s, $data, $deadline) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    my $sel = IO::Select->new($s);
    while ($off < length $data) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite $s, $data, 65536, $off;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            return 0;    # the peer may have answered early and closed
        }
        $off += $n;
    }
    return 1;
}

sub _read_all {
    my ($s, $deadline) = @_;
    my $buf = '';
    my $sel = IO::Select->new($s);
    while (1) {
        my $left = $deadline - time;
        return ($buf, 'timeout') if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $s, $buf, 65536, length $buf;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            return ($buf, "read error: $!");
        }
        return ($buf, undef) if $n == 0;
    }
}

# Send raw bytes; read until the server closes (or timeout).
sub raw_request {
    my ($t, $bytes, %o) = @_;
    my $timeout = $o{timeout} // 30;
    my $deadline = time + $timeout;
    my $s = _connect(_port_of($t), $timeout);
    if (ref $bytes eq 'ARRAY') {
        # pieces sent with a pause between them
        for my $i (0 .. $#$bytes) {
            _send_all($s, $bytes->[$i], $deadline);
            sleep($o{pause} // 0.05) if $i < $#$bytes;
        }
    } else {
        _send_all($s, $bytes, $deadline);
    }
    shutdown $s, 1 if $o{half_close};
    my ($buf, $err) = _read_all($s, $deadline);
    close $s;
    return wantarray ? ($buf, $err) : $buf;
}

# Parse one response starting at $$bufref/$pos.  Returns (res, new pos) or
# (undef, pos) when incomplete.
sub _parse_one {
    my ($buf, $pos, $method, $eof) = @_;
    my $hend = index $buf, "\r\n\r\n", $pos;
    return (undef, $pos, 'incomplete headers') if $hend < 0;
    my $head = substr $buf, $pos, $hend - $pos;
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines;
    my ($proto, $status, $reason) = $sl =~ m{^(HTTP/\d\.\d)\s+(\d{3})(?:\s+(.*))?$}
        or return (undef, $pos, "bad status line: $sl");
    my (%h, @hl);
    for my $l (@lines) {
        my ($k, $v) = $l =~ /^([^:]+):\s*(.*?)\s*$/ or next;
        push @hl, [ $k, $v ];
        my $lk = lc $k;
        $h{$lk} = exists $h{$lk} ? "$h{$lk}, $v" : $v;
    }
    my $p = $hend + 4;
    my $res = { status => $status + 0, reason => $reason // '',
                protocol => $proto, headers => \%h, header_list => \@hl,
                body => '', chunked => 0, raw_headers => $head };
    if ($status >= 100 && $status < 200) {
        $res->{informational} = 1;
        return ($res, $p);
    }
    if (($method // '') eq 'HEAD' || $status == 204 || $status == 304) {
        return ($res, $p);
    }
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        $res->{chunked} = 1;
        my @sizes;
        while (1) {
            my $le = index $buf, "\r\n", $p;
            return (undef, $pos, 'incomplete chunk size') if $le < 0;
            my $line = substr $buf, $p, $le - $p;
            my ($hex) = $line =~ /^([0-9a-fA-F]+)/
                or return (undef, $pos, "bad chunk size line: $line");
            my $n = hex $hex;
            $p = $le + 2;
            if ($n == 0) {
                # trailers
                while (1) {
                    my $te = index $buf, "\r\n", $p;
                    return (undef, $pos, 'incomplete trailers') if $te < 0;
                    my $tl = substr $buf, $p, $te - $p;
                    $p = $te + 2;
                    last if $tl eq '';
                }
                last;
            }
            return (undef, $pos, 'incomplete chunk') if length($buf) < $p + $n + 2;
            $res->{body} .= substr $buf, $p, $n;
            push @sizes, $n;
            $p += $n;
            return (undef, $pos, 'chunk not followed by CRLF')
                unless substr($buf, $p, 2) eq "\r\n";
            $p += 2;
        }
        $res->{chunk_sizes} = \@sizes;
        return ($res, $p);
    }
    if (defined $h{'content-length'}) {
        my $n = $h{'content-length'} + 0;
        return (undef, $pos, 'incomplete body') if length($buf) < $p + $n;
        $res->{body} = substr $buf, $p, $n;
        return ($res, $p + $n);
    }
    # read until close
    $res->{body} = substr $buf, $p;
    $res->{until_close} = 1;
    return ($res, length $buf);
}

# Parse every response in a raw byte string (pipelined responses).
# methods => [...] says which requests were HEAD.  Returns a list of
# response hashes; an incomplete trailing response has {incomplete => why}.
sub parse_responses {
    my ($buf, %o) = @_;
    my @methods = @{ $o{methods} || [] };
    my @res;
    my $pos = 0;
    while ($pos < length $buf) {
        my ($r, $np, $err) = _parse_one($buf, $pos, $methods[0], 1);
        if (!$r) {
            push @res, { incomplete => $err, rest => substr($buf, $pos),
                         status => 0, headers => {}, body => '' };
            last;
        }
        $pos = $np;
        next if $r->{informational};
        shift @methods;
        push @res, $r;
    }
    return @res;
}

# request($ng, METHOD, PATH, body => ..., headers => {...}, timeout => N)
# Returns {status, headers (lowercased keys), body, chunked, ...}; status 0
# and {error} when no complete response arrived.
sub request {
    my ($t, $method, $path, %o) = @_;
    my $timeout = $o{timeout} // 30;
    my $deadline = time + $timeout;
    my $body = $o{body};
    $body = '' if !defined $body && $method =~ /^(?:POST|PUT|PATCH)$/;
    my $s = eval { _connect(_port_of($t), $timeout) };
    return { status => 0, headers => {}, body => '', error => $@ } unless $s;
    my $req = _build_request($method, $path, $body, $o{headers});
    my $t0 = time;
    _send_all($s, $req, $deadline);
    my ($buf, $err) = _read_all($s, $deadline);
    close $s;
    my ($res) = parse_responses($buf, methods => [$method]);
    $res //= { status => 0, headers => {}, body => '',
               incomplete => 'no response' };
    $res->{error} = $err if $err;
    $res->{error} //= "incomplete response: $res->{incomplete}"
        if $res->{incomplete};
    $res->{time} = time - $t0;
    $res->{raw} = $buf if $o{keep_raw};
    return $res;
}

# stream_request($ng, METHOD, PATH, $body, \%headers,
#                on_chunk => sub { my ($bytes, $t) = @_ },
#                abort_after_chunks => N, abort_after_bytes => N,
#                timeout => N)
# Reads the response incrementally; every chunk of a chunked body is handed
# to on_chunk with its arrival time (seconds since the request was sent).
# Returns {status, headers, body, chunked, chunks => [[len, t], ...],
#          header_time, first_byte_time, last_byte_time, complete, aborted}.
sub stream_request {
    my ($t, $method, $path, $body, $headers, %o) = @_;
    my $timeout = $o{timeout} // 60;
    my $deadline = time + $timeout;
    $body = '' if !defined $body && $method =~ /^(?:POST|PUT|PATCH)$/;
    my $s = _connect(_port_of($t), $timeout);
    my $req = _build_request($method, $path, $body, $headers);
    _send_all($s, $req, $deadline);
    my $t0 = time;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my %r = (status => 0, headers => {}, body => '', chunks => [],
             chunked => 0, complete => 0, aborted => 0);
    my $state = 'head';
    my $clen;
    my $nbytes = 0;
    my $abort = sub {
        my $why = shift;
        # close with RST semantics is not needed: a plain close is what a
        # disconnecting client does.
        $r{aborted} = $why;
    };
    my $deliver = sub {
        my ($data, $tt) = @_;
        return if $r{aborted};
        $r{first_byte_time} //= $tt if length $data;
        $r{last_byte_time} = $tt;
        $r{body} .= $data unless $o{discard_body};
        $nbytes += length $data;
        push @{ $r{chunks} }, [ length $data, $tt ];
        $o{on_chunk}->($data, $tt) if $o{on_chunk};
        $abort->('chunks')
            if $o{abort_after_chunks} && @{ $r{chunks} } >= $o{abort_after_chunks};
        $abort->('bytes')
            if $o{abort_after_bytes} && $nbytes >= $o{abort_after_bytes};
    };
    READ: while (!$r{aborted}) {
        my $left = $deadline - time;
        if ($left <= 0) { $r{error} = 'timeout'; last }
        next unless $sel->can_read($left);
        my $n = sysread $s, $buf, 65536, length $buf;
        my $tt = time - $t0;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            $r{error} = "read error: $!";
            last;
        }
        if ($n == 0) {
            if ($state eq 'eof') {
                $deliver->($buf, $tt) if length $buf;
                $buf = '';
                $r{complete} = 1;
            } else {
                $r{error} = "connection closed in state $state";
            }
            last;
        }
        while (1) {
            if ($state eq 'head') {
                my $he = index $buf, "\r\n\r\n";
                last if $he < 0;
                my ($res) = _parse_one(substr($buf, 0, $he + 4), 0, 'HEAD');
                if (!$res) { $r{error} = 'bad response head'; last READ }
                $buf = substr $buf, $he + 4;
                next if $res->{informational};
                $r{$_} = $res->{$_} for qw(status reason headers header_list raw_headers);
                $r{header_time} = $tt;
                if ($method eq 'HEAD' || $res->{status} == 204
                    || $res->{status} == 304) {
                    $r{complete} = 1;
                    last READ;
                }
                if (($r{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
                    $state = 'size';
                    $r{chunked} = 1;
                } elsif (defined $r{headers}{'content-length'}) {
                    $clen = $r{headers}{'content-length'} + 0;
                    $state = 'length';
                    if ($clen == 0) { $r{complete} = 1; last READ }
                } else {
                    $state = 'eof';
                }
            } elsif ($state eq 'size') {
                my $le = index $buf, "\r\n";
                last if $le < 0;
                my ($hex) = substr($buf, 0, $le) =~ /^([0-9a-fA-F]+)/;
                if (!defined $hex) { $r{error} = 'bad chunk size'; last READ }
                $buf = substr $buf, $le + 2;
                my $cn = hex $hex;
                if ($cn == 0) { $state = 'trailer'; next }
                $clen = $cn;
                $state = 'data';
            } elsif ($state eq 'data') {
                last if length($buf) < $clen + 2;
                my $data = substr $buf, 0, $clen;
                if (substr($buf, $clen, 2) ne "\r\n") {
                    $r{error} = 'chunk not followed by CRLF';
                    last READ;
                }
                $buf = substr $buf, $clen + 2;
                $state = 'size';
                $deliver->($data, $tt);
                last READ if $r{aborted};
            } elsif ($state eq 'trailer') {
                my $le = index $buf, "\r\n";
                last if $le < 0;
                my $line = substr $buf, 0, $le;
                $buf = substr $buf, $le + 2;
                if ($line eq '') {
                    $r{complete} = 1;
                    $r{end_time} = $tt;
                    last READ;
                }
            } elsif ($state eq 'length') {
                last unless length $buf;
                my $take = length($buf) < $clen ? length($buf) : $clen;
                my $data = substr $buf, 0, $take;
                $buf = substr $buf, $take;
                $clen -= $take;
                $deliver->($data, $tt);
                last READ if $r{aborted};
                if ($clen == 0) { $r{complete} = 1; last READ }
            } elsif ($state eq 'eof') {
                last unless length $buf;
                $deliver->($buf, $tt);
                $buf = '';
                last READ if $r{aborted};
            }
        }
    }
    if ($o{rst}) {
        setsockopt $s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0);
    }
    close $s;
    return \%r;
}

# ---------------------------------------------------------------------------
# sanitizer reports

# The part of a sanitizer log file worth failing on.  Every ASan error and
# UBSan report counts.  A LeakSanitizer record (one "Direct/Indirect leak"
# with its stack) counts unless every frame of its stack lies in the nginx
# binary itself or in the C runtime: the distribution nginx is not built
# for leak checking and leaves, for example, its worker connection arrays
# and its "nginx -t" pool unfreed at exit; a leak by podgen or a library it
# uses has a frame outside the nginx binary (or an "<unknown module>" one).
sub sanitizer_findings {
    my ($text) = @_;
    return '' unless defined $text && $text =~ /\S/;
    my $bin = nginx_binary();
    my $out = '';
    if ($text =~ /^==\d+== Memcheck/m) {
        # valgrind: each error is a block of "==pid== " lines that starts
        # with its kind and ends with a blank "==pid==" line
        my @err;
        for my $block (split /^==\d+== \n/m, $text) {
            next unless $block =~ /^==\d+== (?:Invalid (?:read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function)/m;
            next if $block =~ /HEAP SUMMARY|ERROR SUMMARY/;
            push @err, $block;
        }
        return join '', @err;
    }
    # one report per "=====" separator
    for my $rep (split /^=+\n/m, $text) {
        next unless $rep =~ /\S/;
        if ($rep !~ /ERROR: LeakSanitizer/) {
            next unless $rep =~ /ERROR:|runtime error:/;
            # the report's own lines, not nginx log lines around it
            $out .= join '', map { "$_\n" } grep {
                /ERROR:|runtime error:|^\s+#\d+ |SUMMARY:|^\S.*(?:READ|WRITE) of size|is located|allocated by|freed by|previously allocated/
            } split /\n/, $rep;
            next;
        }
        my @rec = split /\n(?=(?:Direct|Indirect) leak of )/, $rep;
        shift @rec;    # the header
        for my $r (@rec) {
            $r =~ s/\nSUMMARY:.*//s;
            my @frames = $r =~ /^\s*#\d+ (.*)$/mg;
            my $core = @frames && !grep {
                !( /\(\Q$bin\E\+0x/
                   || /libsanitizer|\blib(?:asan|ubsan|lsan)\.so/
                   || /\b(?:__libc_start|_start\b|__interceptor_)/
                   || m{\.\./(?:sysdeps|csu)/}
                   || /\blibc\.so/ )
            } @frames;
            $out .= $r . "\n" unless $core;
        }
    }
    return $out;
}

# ---------------------------------------------------------------------------
# JSON subset

# json_subset($got, $want) -> undef when $want is a deep subset of $got,
# else a string saying where they differ.  Hashes by key, arrays element by
# element (the got array may be longer), scalars by value (numbers
# numerically), null must be null, booleans must be booleans.
sub json_subset {
    my ($got, $want, $path) = @_;
    $path //= '$';
    if (!defined $want) {
        return defined $got ? "$path: expected null, got " . _show($got) : undef;
    }
    if (JSON::PP::is_bool($want)) {
        return "$path: expected " . ($want ? 'true' : 'false') . ", got " . _show($got)
            unless JSON::PP::is_bool($got) && (!!$got == !!$want);
        return undef;
    }
    if (ref $want eq 'HASH') {
        return "$path: expected an object, got " . _show($got)
            unless ref $got eq 'HASH';
        for my $k (sort keys %$want) {
            return "$path: missing key \"$k\"" unless exists $got->{$k};
            my $e = json_subset($got->{$k}, $want->{$k}, "$path.$k");
            return $e if defined $e;
        }
        return undef;
    }
    if (ref $want eq 'ARRAY') {
        return "$path: expected an array, got " . _show($got)
            unless ref $got eq 'ARRAY';
        return "$path: expected at least " . @$want . " elements, got " . @$got
            if @$got < @$want;
        for my $i (0 .. $#$want) {
            my $e = json_subset($got->[$i], $want->[$i], "$path\[$i\]");
            return $e if defined $e;
        }
        return undef;
    }
    return "$path: expected " . _show($want) . ", got null" unless defined $got;
    return "$path: expected " . _show($want) . ", got " . _show($got)
        if ref $got;
    if (looks_like_number($want) && looks_like_number($got)
        && !_is_string_value($want)) {
        return $got == $want ? undef
             : "$path: expected $want, got $got";
    }
    return $got eq $want ? undef
         : "$path: expected " . _show($want) . ", got " . _show($got);
}

sub _is_string_value {
    my ($v) = @_;
    require B;
    my $f = B::svref_2object(\$v)->FLAGS;
    return ($f & B::SVp_POK()) && !($f & (B::SVp_IOK() | B::SVp_NOK()));
}

sub _show {
    my ($v) = @_;
    return 'null' unless defined $v;
    my $s = eval { $JSON->encode($v) } // "$v";
    $s = substr($s, 0, 200) . '...' if length $s > 200;
    return $s;
}

# ---------------------------------------------------------------------------
# audio

# decode_audio($bytes, $format) -> (s16le mono 16 kHz samples as a string,
# ffmpeg's stderr).  $format 'pcm' means raw s16le mono 24 kHz input.
sub decode_audio {
    my ($bytes, $format) = @_;
    my $ff = which('ffmpeg') or die "ffmpeg is not installed\n";
    my $dir = tempdir('podgen-audio-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $in = "$dir/in." . ($format // 'bin');
    _spew($in, $bytes);
    my @in = ($format // '') eq 'pcm'
           ? ('-f', 's16le', '-ar', '24000', '-ac', '1', '-i', $in)
           : ('-i', $in);
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>', "$dir/err";
        { exec $ff, '-nostdin', '-v', 'error', @in, '-f', 's16le',
               '-ac', '1', '-ar', '16000', '-'; }
        POSIX::_exit(127);
    }
    binmode $fh;
    local $/;
    my $pcm = <$fh> // '';
    close $fh;
    my $st = $?;
    my $err = _slurp("$dir/err") // '';
    return (undef, "ffmpeg exit status $st: $err") if $st != 0;
    return ($pcm, $err);
}

# Duration in seconds of encoded audio, via ffmpeg; undef when it does not
# decode.  In list context also returns ffmpeg's messages.
sub audio_duration {
    my ($bytes, $format) = @_;
    my ($pcm, $err) = decode_audio($bytes, $format);
    my $d = defined $pcm ? length($pcm) / 2 / 16000 : undef;
    return wantarray ? ($d, $err) : $d;
}

# ---------------------------------------------------------------------------
# blocks

sub _read_data {
    no strict 'refs';
    my $fh = \*{'main::DATA'};
    return '' unless defined fileno $fh;
    binmode $fh;
    local $/;
    return <$fh> // '';
}

sub parse_blocks {
    my ($text) = @_;
    my @blocks;
    my @parts = split /^===[ \t]*(.*?)[ \t]*\n/m, $text;
    shift @parts;    # before the first block
    my $n = 0;
    while (@parts) {
        my ($name, $body) = splice @parts, 0, 2;
        $n++;
        my %b = (name => $name, seq => $n, sections => {}, filters => {});
        my @s = split /^---[ \t]+(\w+)((?:[ \t]+\w+)*)[ \t]*(?::[ \t]*(.*?))?[ \t]*\n/m,
                      $body . "\n";
        shift @s;
        while (@s) {
            my ($sec, $filters, $inline, $val) = splice @s, 0, 4;
            my @f = grep { length } split ' ', $filters // '';
            if (defined $inline && length $inline) {
                $val = $inline;
            } else {
                $val //= '';
                $val =~ s/\n+\z//;     # trailing newlines of the section
            }
            $b{sections}{$sec} = $val;
            $b{filters}{$sec} = { map { $_ => 1 } @f };
        }
        # evaluate eval filters now, in package main
        for my $sec (keys %{ $b{sections} }) {
            next unless $b{filters}{$sec}{eval};
            my $code = $b{sections}{$sec};
            my $v = eval "package main; no strict; $code";
            die "block \"$name\": eval of section $sec failed: $@" if $@;
            $b{sections}{$sec} = $v;
        }
        push @blocks, \%b;
    }
    return @blocks;
}

sub _block_key {
    my ($b) = @_;
    my $s = $b->{sections};
    return join "\0", map { $s->{$_} // '' }
        qw(main_config http_config config workers);
}

sub _parse_header_lines {
    my ($text) = @_;
    my @h;
    for my $l (split /\n/, $text // '') {
        next if $l =~ /^\s*$/;
        my ($k, $v) = $l =~ /^\s*([^:\s]+)\s*:\s?(.*?)\r?$/
            or die "bad header line: $l\n";
        push @h, $k, $v;
    }
    return \@h;
}

sub _parse_request {
    my ($text) = @_;
    my ($line, $body);
    my $nl = index $text, "\n";
    if ($nl < 0) { $line = $text } else {
        $line = substr $text, 0, $nl;
        $body = substr $text, $nl + 1;
    }
    $line =~ s/\r$//;
    my ($method, $uri) = $line =~ /^\s*(\S+)\s+(\S+)/
        or die "bad request line: $line\n";
    $body = '' if !defined $body && $method =~ /^(?:POST|PUT|PATCH)$/;
    return ($method, $uri, $body);
}

# run_blocks(defaults => { section => value, ... })
sub run_blocks {
    my (%opt) = @_;
    _require_module();
    my @blocks = parse_blocks(_read_data());
    my $tb = Test::Builder->new;
    if (!@blocks) {
        Test::More::fail('no blocks found after __DATA__');
        Test::More::done_testing();
        return;
    }
    my $defaults = $opt{defaults} || {};
    for my $b (@blocks) {
        for my $k (keys %$defaults) {
            $b->{sections}{$k} = $defaults->{$k}
                unless exists $b->{sections}{$k};
        }
    }
    my $ng;
    for my $i (0 .. $#blocks) {
        my $b = $blocks[$i];
        my $next = $blocks[$i + 1];
        my $s = $b->{sections};
        my $name = $b->{name};
        if (exists $s->{skip}) {
            my $why = $s->{skip} ne '' ? $s->{skip} : 'skipped';
            $tb->skip("$name: $why");
            next;
        }
        if (exists $s->{must_die}) {
            if ($ng) { $ng->stop; _final_log_check($ng, "$name (previous nginx)"); undef $ng }
            _run_must_die($b);
            next;
        }
        my $key = _block_key($b);
        if ($ng && ($ng->{block_key} ne $key || !$ng->running)) {
            $ng->stop;
            undef $ng;
        }
        my $fails_before = _failures();
        my $fresh = 0;
        if (!$ng) {
            $ng = Podgen::Test::Nginx->new(
                config      => $s->{config} // '',
                http_config => $s->{http_config} // '',
                main_config => $s->{main_config} // '',
                workers     => $s->{workers} || 1,
            );
            $ng->{block_key} = $key;
            $ng->mark_error_log;
            if (!eval { $ng->start; 1 }) {
                Test::More::fail("$name: nginx starts");
                Test::More::diag($@);
                $ng->diag_state;
                $ng->stop;
                undef $ng;
                next;
            }
            $fresh = 1;
        } else {
            $ng->mark_error_log;
        }
        if (exists $s->{reload} || $ENV{PODGEN_TEST_RELOAD}) {
            if (!eval { $ng->reload; 1 }) {
                Test::More::fail("$name: reload");
                Test::More::diag($@);
            }
        }
        my $res = _run_block_request($ng, $b);
        # after a request that got no answer the nginx may be wedged: the
        # next block gets a fresh one
        my $wedged = defined $s->{request} && (!$res || !$res->{status});
        my $reuse = !$wedged && $next && !exists $next->{sections}{must_die}
                 && !exists $next->{sections}{skip}
                 && _block_key($next) eq $key;
        if ($s->{wait}) { sleep $s->{wait} }
        if (!$reuse) {
            $ng->stop;
        } else {
            # give log lines written after the response a moment
            sleep 0.05;
        }
        _check_block_log($ng, $b);
        if (_failures() > $fails_before) {
            Test::More::diag("block failed: $name");
            $ng->diag_state(1);
        }
        undef $ng unless $reuse;
    }
    Test::More::done_testing() unless $opt{no_done_testing} || $tb->has_plan;
}

sub _failures {
    my @d = Test::Builder->new->details;
    return scalar grep { !$_->{ok} } @d;
}

sub _final_log_check {
    my ($ng, $name) = @_;
    my @bad = $ng->check_error_log(1);
    Test::More::ok(!@bad, "$name: error log clean")
        or Test::More::diag(join "\n", @bad);
}

sub _check_block_log {
    my ($ng, $b) = @_;
    my $s = $b->{sections};
    my $name = $b->{name};
    my $log = $ng->error_log_since_mark;
    if (defined $s->{error_log}) {
        for my $re (grep { length } split /\n/, $s->{error_log}) {
            my $deadline = time + 2;
            while ($log !~ /$re/ && time < $deadline && $ng->running) {
                sleep 0.05;
                $log = $ng->error_log_since_mark;
            }
            Test::More::like($log, qr/$re/, "$name: error log matches /$re/");
        }
    }
    if (defined $s->{no_error_log}) {
        for my $pat (grep { length } split /\n/, $s->{no_error_log}) {
            my @hits = grep { index($_, $pat) >= 0 } split /\n/, $log;
            Test::More::ok(!@hits, "$name: no \"$pat\" in error log")
                or Test::More::diag(join "\n", @hits);
        }
    }
    my @bad = $ng->check_error_log(1);
    Test::More::ok(!@bad, "$name: no alert/crit/emerg/sanitizer reports")
        or Test::More::diag(join "\n", @bad);
}

sub _run_must_die {
    my ($b) = @_;
    my $s = $b->{sections};
    my $name = $b->{name};
    my $ng = Podgen::Test::Nginx->new(
        config      => $s->{config} // '',
        http_config => $s->{http_config} // '',
        main_config => $s->{main_config} // '',
        workers     => $s->{workers} || 1,
    );
    my ($ok, $out) = $ng->test_config;
    $out .= $ng->error_log;
    Test::More::ok(!$ok, "$name: nginx -t fails")
        or Test::More::diag("nginx -t output:\n$out");
    if (defined $s->{error_log}) {
        for my $re (grep { length } split /\n/, $s->{error_log}) {
            Test::More::like($out, qr/$re/, "$name: nginx -t output matches /$re/");
        }
    }
    my @bad = grep { /AddressSanitizer|runtime error:|LeakSanitizer/ }
              split /\n/, $out;
    for my $f ($ng->_asan_files) {
        push @bad, "$f:", split /\n/, $ng->_asan_text($f);
    }
    Test::More::ok(!@bad, "$name: no sanitizer reports")
        or Test::More::diag(join "\n", @bad);
}

sub _run_block_request {
    my ($ng, $b) = @_;
    my $s = $b->{sections};
    my $name = $b->{name};
    if (!defined $s->{request}) {
        Test::More::note("$name: no request");
        return;
    }
    my $headers = eval { _parse_header_lines($s->{more_headers}) };
    if (!$headers) {
        Test::More::fail("$name: more_headers section");
        Test::More::diag($@);
        return;
    }
    my $res = _send_block_request($ng, $b, 'request', $s->{request}, $headers)
        or return;
    my $last = $res;
    if (defined $s->{wait_status} || defined $s->{then}) {
        # a failure here is reported; the nginx answered, it is not wedged
        $last = _follow_block_job($ng, $b, $res, $headers) or return $res;
    }
    check_response($last, $b);
    return $res;
}

# Sends the request of a request or then section; the response (with
# {elapsed}, the seconds from connect to the last byte), or undef after a
# failure is reported.
sub _send_block_request {
    my ($ng, $b, $what, $text, $headers) = @_;
    my $name = $b->{name};
    my ($method, $uri, $body) = eval { _parse_request($text) };
    if (!$method) {
        Test::More::fail("$name: $what section");
        Test::More::diag($@);
        return;
    }
    my $t0 = time;
    my $res = request($ng, $method, $uri, body => $body, headers => $headers,
                      timeout => $b->{sections}{timeout} || 30);
    $res->{elapsed} = time - $t0;
    if ($res->{error} && !$res->{status}) {
        Test::More::fail("$name: got a response" . ($what eq 'request' ? ''
                                                   : " to $what"));
        Test::More::diag("error: $res->{error}");
        return;
    }
    return $res;
}

# The job sections.  The request must be accepted (request_code, else any
# 2xx); wait_status long-polls the job it made until it is completed or
# failed and checks which; then sends the follow-up request with {id}
# replaced by the job's id.  Returns the response the response sections
# check: the follow-up's, else the job's final status (GET of the job),
# or undef after a failure is reported.
sub _follow_block_job {
    my ($ng, $b, $res, $headers) = @_;
    require Podgen::API;
    my $s = $b->{sections};
    my $name = $b->{name};
    my $show = sub { Test::More::diag('response: ' . Podgen::API::show($_[0])) };
    my $want = $s->{request_code};
    my $ok = defined $want
        ? Test::More::is($res->{status}, $want, "$name: request status")
        : Test::More::like($res->{status}, qr/^2\d\d$/,
                           "$name: the request is accepted (2xx)");
    if (!$ok) { $show->($res); return }
    my $j = Podgen::API::jdecode($res->{body});
    my $id = ref $j eq 'HASH' ? $j->{id} : undef;
    if ((defined $s->{wait_status} || ($s->{then} // '') =~ /\{id\}/)
        && !Test::More::ok(defined $id && !ref $id && $id ne '',
                           "$name: the request made a job (an id)"))
    {
        $show->($res);
        return;
    }
    my $last;
    if (defined $s->{wait_status}) {
        # the job's own URL, as Location gives it (a batch job's differs)
        my $job = $res->{headers}{location} // $id;
        my $st = Podgen::API::wait_job($ng, $job, $s->{wait_timeout} || 60);
        Test::More::is($st->{status}, $s->{wait_status}, "$name: job status")
            or return;
        my $t0 = time;
        $last = request($ng, 'GET', Podgen::API::job_path($job), timeout => 30);
        $last->{elapsed} = time - $t0;
    }
    if (defined $s->{then}) {
        my $text = $s->{then};
        $text =~ s/\{id\}/$id/g if defined $id;
        $last = _send_block_request($ng, $b, 'then', $text, $headers) or return;
    }
    return $last;
}

# api_error: STATUS [code=CODE|code=/RE/] [param=PARAM|param=null] [type=TYPE]
sub _api_error_want {
    my ($spec) = @_;
    my ($status, @t) = split ' ', $spec // '';
    die "api_error: a status first, got \"" . ($status // '') . "\"\n"
        unless defined $status && $status =~ /^\d{3}$/;
    my %w = (status => $status);
    for my $t (@t) {
        my ($k, $v) = $t =~ /^(code|param|type)=(.+)$/
            or die "api_error: not code=, param= or type=: $t\n";
        $v = qr/$1/ if $k eq 'code' && $v =~ m{^/(.*)/$};
        $v = undef if $k eq 'param' && $v eq 'null';
        $w{$k} = $v;
    }
    return %w;
}

# Check a response against a block's response sections.
sub check_response {
    my ($res, $b) = @_;
    my $s = $b->{sections};
    my $name = $b->{name};
    my $h = $res->{headers};
    my $ct = $h->{'content-type'} // '';
    my $show_body = sub {
        my $bd = $res->{body} // '';
        my $t = $ct =~ m{json|text} ? $bd : substr($bd, 0, 200);
        $t =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
        $t = substr($t, 0, 2000) . '...' if length $t > 2000;
        Test::More::diag("response: $res->{status}\n$res->{raw_headers}\n\n$t");
    };
    my $ok = 1;
    if (defined $s->{error_code}) {
        $ok &= Test::More::is($res->{status}, $s->{error_code}, "$name: status");
    }
    if (defined $s->{error_code_like}) {
        $ok &= Test::More::like($res->{status}, qr/$s->{error_code_like}/,
                                "$name: status like");
    }
    if (defined $s->{response_headers}) {
        for my $l (grep { /\S/ } split /\n/, $s->{response_headers}) {
            if ($l =~ /^\s*!\s*(\S+)\s*$/) {
                $ok &= Test::More::ok(!exists $h->{lc $1},
                    "$name: no header $1")
                    || Test::More::diag("$1: $h->{lc $1}");
                next;
            }
            my ($k, $v) = $l =~ /^\s*([^:\s]+)\s*:\s?(.*?)\s*$/ or do {
                Test::More::fail("$name: bad response_headers line: $l");
                next;
            };
            $ok &= Test::More::is($h->{lc $k}, $v, "$name: header $k");
        }
    }
    if (defined $s->{response_headers_like}) {
        for my $l (grep { /\S/ } split /\n/, $s->{response_headers_like}) {
            if ($l =~ /^\s*!\s*(\S+)\s*$/) {
                $ok &= Test::More::ok(!exists $h->{lc $1}, "$name: no header $1");
                next;
            }
            my ($k, $v) = $l =~ /^\s*([^:\s]+)\s*:\s?(.*?)\s*$/ or do {
                Test::More::fail("$name: bad response_headers_like line: $l");
                next;
            };
            $ok &= Test::More::like($h->{lc $k} // '(absent)',
                                    qr/$v/, "$name: header $k like /$v/");
        }
    }
    if (defined $s->{response_body}) {
        $ok &= Test::More::ok($res->{body} eq $s->{response_body},
                              "$name: response body");
    }
    if (defined $s->{response_body_like}) {
        $ok &= Test::More::like($res->{body}, qr/$s->{response_body_like}/s,
                                "$name: response body like");
    }
    if (defined $s->{response_body_unlike}) {
        $ok &= Test::More::unlike($res->{body}, qr/$s->{response_body_unlike}/s,
                                  "$name: response body unlike");
    }
    if (defined $s->{max_time}) {
        my $t = $res->{elapsed} // $res->{time} // 0;
        $ok &= Test::More::ok($t < $s->{max_time},
                              sprintf("%s: answered in %.2f s (< %s s)",
                                      $name, $t, $s->{max_time}));
    }
    if (defined $s->{response_json}) {
        my $want = ref $s->{response_json} ? $s->{response_json}
                 : eval { $JSON->decode($s->{response_json}) };
        if (!defined $want && !ref $s->{response_json}) {
            Test::More::fail("$name: response_json section is not JSON: $@");
            $ok = 0;
        } else {
            my $got = eval { $JSON->decode($res->{body}) };
            if ($@) {
                $ok &= Test::More::fail("$name: response body is JSON");
                Test::More::diag("decode error: $@");
            } else {
                my $err = json_subset($got, $want);
                $ok &= Test::More::ok(!defined $err, "$name: response json")
                    || Test::More::diag($err);
            }
        }
    }
    $show_body->() unless $ok;
    if (defined $s->{api_error}) {
        require Podgen::API;
        my %w = eval { _api_error_want($s->{api_error}) };
        if ($@) {
            $ok = Test::More::fail("$name: api_error section");
            Test::More::diag($@);
        } else {
            # (error_ok shows the response when it fails)
            $ok &= Podgen::API::error_ok($res, $name, %w);
        }
    }
    return $ok;
}

1;
