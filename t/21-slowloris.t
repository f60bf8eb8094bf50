# Slowloris against the shipped configuration.
#
# nginx runs conf/podgen.conf itself (its paths and its listen address
# rewritten into the test's prefix; one worker, the least headroom), so
# this test fails when the directives that hold go from the shipped file.
# From 127.0.0.2 (Linux routes all of 127/8 to lo):
#
#   - 2,100 connections that send a request header a byte a second, never
#     ending it, opened 100 every 0.1 s, and 100 that send nothing (the
#     audit's case).  limit_conn does not count a connection before its
#     header has arrived: worker_connections must hold them all, and
#     client_header_timeout must end them.  Like slowloris, the abuser
#     opens again any the server closes while the good clients run: under
#     the old configuration (1024 connections, 60 s) nginx closed most as
#     they came, to make room, and the good clients' connections with them;
#   - limit_conn + 50 requests that send their header and then hold the
#     body back: limit_conn holds them, the 50 over it get 429 (JSON),
#     client_body_timeout ends the rest;
#
# and while all of them are open, clients from 127.0.0.1 are served within
# a few seconds: GET /v1/voices six times, half a second apart, and a small
# POST /v1/audio/speech.  The error log must show no alert, crit, emerg or
# crash.  Then a static check: the four shipped configurations carry the
# same limits.  PODGEN_T21_VERBOSE=1 prints the numbers.
#
# PODGEN_TEST_CONF=FILE runs another configuration instead, e.g. the one
# before these limits, to see the test fail:
#   git show 65e74cc:conf/podgen.conf > /tmp/old.conf

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_ERROR inet_aton
              pack_sockaddr_in);
use IO::Poll qw(POLLIN POLLOUT);
use Errno qw(EINPROGRESS EAGAIN EINTR);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use POSIX ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my $T0 = time;
my $ROOT = repo_root();
my $CONF = $ENV{PODGEN_TEST_CONF} || "$ROOT/conf/podgen.conf";
my $N_SLOW = 2100;           # trickling connections (the audit's number)
my $N_SILENT = 100;          # connections that send nothing
my $OVER = 50;               # body-phase requests beyond limit_conn
my $BAD = '127.0.0.2';       # the abuser
my $GOOD_WITHIN = 5;         # seconds a good request may take
my $GOOD_GETS = 6;           # good GETs, half a second apart

# ---------------------------------------------------------------------------
# file descriptors: the slow connections are sockets of this process

my $need = $N_SLOW + $N_SILENT + 400 + 200;  # + body-phase, good, slack
my $soft = `sh -c 'ulimit -n'`;
chomp $soft;
if ($soft ne 'unlimited' && $soft < $need) {
    my $hard = `sh -c 'ulimit -Hn'`;
    chomp $hard;
    plan skip_all => "needs $need open files, the hard limit is $hard "
                   . "(raise it: ulimit -Hn)"
        if $hard ne 'unlimited' && $hard < $need;
    plan skip_all => "cannot raise the open-file limit to $need"
        if $ENV{PODGEN_T21_REEXEC}++;
    # Perl's core has no setrlimit: run this file again under a shell
    # that raises it
    exec 'sh', '-c', 'ulimit -Sn "$0" && exec "$@"', $need, $^X, $0, @ARGV;
    die "exec sh: $!";
}

# the abuser's address must exist (it does on Linux: 127.0.0.0/8 on lo)
{
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    plan skip_all => "cannot bind to $BAD: $!"
        unless bind($s, pack_sockaddr_in(0, inet_aton($BAD)));
    close $s;
}

# ---------------------------------------------------------------------------
# the shipped configuration

sub strip_comments {
    my ($t) = @_;
    $t =~ s/#[^\n]*//g;
    return $t;
}

# The arguments of the first "name ...;" in a configuration text (comments
# removed), as one string with single spaces; undef when it is not there.
sub directive {
    my ($text, $name) = @_;
    my $t = strip_comments($text);
    return undef unless $t =~ /(?:^|[\s;{}])\Q$name\E\s+([^;{}]*);/;
    my $v = $1;
    $v =~ s/\s+/ /g;
    $v =~ s/^ | $//g;
    return $v;
}

sub seconds {
    my ($v) = @_;
    return undef unless defined $v && $v =~ /^(\d+)(ms|s|m)?$/;
    return $1 / 1000 if ($2 // 's') eq 'ms';
    return $1 * 60 if ($2 // 's') eq 'm';
    return $1;
}

my $SHIPPED = slurp($CONF) // die "cannot read $CONF\n";
note "configuration: $CONF";

my %D = map { $_ => directive($SHIPPED, $_) }
    qw(worker_connections worker_rlimit_nofile client_header_timeout
       client_body_timeout send_timeout keepalive_timeout
       reset_timedout_connection limit_conn_zone limit_conn
       limit_conn_status limit_conn_log_level);
note join "\n", map { sprintf "  %-26s %s", $_, $D{$_} // '(not set)' }
                sort keys %D;

my $LIMIT = (($D{limit_conn} // '') =~ /^\S+ (\d+)$/) ? $1 : undef;
# nginx's defaults when a directive is not there
my $HEADER_TIMEOUT = seconds($D{client_header_timeout} // '60s');
my $BODY_TIMEOUT = seconds($D{client_body_timeout} // '60s');
# how long the slow connections are watched: their timeout and a margin,
# bounded so that a configuration without short timeouts fails quickly
my $WATCH = $HEADER_TIMEOUT > $BODY_TIMEOUT ? $HEADER_TIMEOUT : $BODY_TIMEOUT;
$WATCH = 15 if $WATCH > 15;
$WATCH += 5;

# the shipped file with its paths in the prefix (-p) of the test's nginx
package ShippedNginx {
    our @ISA = ('Podgen::Test::Nginx');

    sub config_text {
        my ($self) = @_;
        my $p = $self->prefix;
        my $port = $self->port;
        my $module = Podgen::Test::module_path();
        my $t = $SHIPPED;
        $t =~ s{^(\s*load_module\s+)[^;]+;}{$1$module;}m
            or die "no load_module in $CONF\n";
        $t =~ s{^(\s*worker_processes\s+)[^;]+;}{${1}1;}m
            or $t = "worker_processes 1;\n$t";
        $t =~ s{\bvar/logs/}{$p/logs/}g;
        $t =~ s{\bvar/nginx\.pid\b}{$p/logs/nginx.pid}g;
        $t =~ s{\bvar/tmp/}{$p/tmp/}g;
        $t =~ s{\bvar/store\b}{$p/store}g;
        my $n = ($t =~ s{^(\s*listen\s+)[^;]+;}{${1}127.0.0.1:$port;}mg);
        die "$CONF: expected one listen, found $n\n" unless $n == 1;
        die "$CONF: a path under var/ left after rewriting: $&\n"
            if main::strip_comments($t) =~ m{\bvar/\S*};
        return "daemon on;\n$t";
    }
}

my $ng = ShippedNginx->new(workers => 1);
mkdir $ng->prefix . "/store";
chmod 0777, $ng->prefix . "/store";
eval { $ng->start; 1 } or do {
    fail("nginx starts with $CONF");
    diag $@;
    done_testing();
    exit 1;
};
pass("nginx runs $CONF (rewritten into " . $ng->prefix . ")");

my %JSON_CT = ('Content-Type' => 'application/json');
my $SPEECH = $JSON->encode({ model => 'tts-1', input => 'Hello there.',
                             voice => 'kal', response_format => 'wav' });
{
    my $r = request($ng, 'GET', '/v1/voices', timeout => 10);
    is($r->{status}, 200, 'before: GET /v1/voices 200');
}

# ---------------------------------------------------------------------------
# the slow connections

my $port = $ng->port;
my $peer = pack_sockaddr_in($port, inet_aton('127.0.0.1'));

# A non-blocking socket from $BAD, connecting.
sub slow_socket {
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_in(0, inet_aton($BAD))) or die "bind $BAD: $!";
    my $fl = fcntl($s, F_GETFL, 0);
    fcntl($s, F_SETFL, $fl | O_NONBLOCK) or die "fcntl: $!";
    binmode $s;
    connect($s, $peer) or $! == EINPROGRESS or die "connect: $!";
    return $s;
}

# kinds: "trickle" sends a header byte by byte, never ending it; "silent"
# sends nothing; "body" sends a whole speech request header and holds the
# body back
my $TRICKLE = "GET /v1/voices HTTP/1.1\r\nHost: localhost\r\n"
            . "User-Agent: slowloris\r\nX-Slow: ";
my $BODY_REQ = "POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Type: application/json\r\nContent-Length: 200\r\n"
             . "\r\n{\"model\":";

my @conns;    # {s, kind, state: connecting|open|closed, sent, got, t_closed}

# Opens $n connections of a kind, 100 at a time, one batch every 0.1 s (as
# an attacker ramps up: nginx has read the first bytes of a batch before
# the next comes, so those connections are in the header phase, no longer
# idle ones it could close to make room), waiting at most $secs in all;
# returns how many are connected.
sub open_slow {
    my ($n, $kind, $secs) = @_;
    my $deadline = time + $secs;
    my @mine;
    while (@mine < $n && time < $deadline) {
        my @batch = map { { s => slow_socket(), kind => $kind,
                            state => 'connecting', sent => 0, got => '' } }
                    1 .. ($n - @mine > 100 ? 100 : $n - @mine);
        push @mine, @batch;
        my $end = time + 1;
        while (time < $end && grep { $_->{state} eq 'connecting' } @batch) {
            poll_conns(\@batch, 0.05);
        }
        $end = time + 0.1;
        poll_conns([ @conns, @mine ], 0.05) while time < $end;
    }
    while (time < $deadline && grep { $_->{state} eq 'connecting' } @mine) {
        poll_conns(\@mine, 0.05);
    }
    push @conns, @mine;
    return scalar grep { $_->{state} ne 'connecting' } @mine;
}

# One poll over $list: completes connects (sending what the kind sends
# first), reads answers, notes closes.
sub poll_conns {
    my ($list, $secs) = @_;
    my $poll = IO::Poll->new;
    for my $c (@$list) {
        next if $c->{state} eq 'closed';
        $poll->mask($c->{s} => $c->{state} eq 'connecting' ? POLLOUT : POLLIN);
    }
    $poll->poll($secs);
    for my $c (@$list) {
        next if $c->{state} eq 'closed';
        my $ev = $poll->events($c->{s}) or next;
        if ($c->{state} eq 'connecting') {
            my $err = unpack 'i', getsockopt($c->{s}, SOL_SOCKET, SO_ERROR);
            if ($err) { close_conn($c, "connect: $err"); next }
            $c->{state} = 'open';
            $c->{t_open} = time;
            if ($c->{kind} eq 'body') {
                syswrite $c->{s}, $BODY_REQ;
            } elsif ($c->{kind} eq 'trickle') {
                send_byte($c);
            }
            next;
        }
        my $k = sysread $c->{s}, $c->{got}, 65536, length $c->{got};
        next if !defined $k && ($! == EAGAIN || $! == EINTR);
        close_conn($c, defined $k ? 'eof' : "$!") unless $k;
    }
}

sub close_conn {
    my ($c, $why) = @_;
    $c->{state} = 'closed';
    $c->{why} = $why;
    $c->{t_closed} = time;
    close $c->{s};
}

sub send_byte {
    my ($c) = @_;
    my $b = $c->{sent} < length $TRICKLE ? substr($TRICKLE, $c->{sent}, 1)
                                         : 'a';
    my $k = syswrite $c->{s}, $b;
    $c->{sent}++ if $k;
}

my $n_body = ($LIMIT // 100) + $OVER;
my $t_start = time;
my $body_open = open_slow($n_body, 'body', 5);
my $trickle_open = open_slow($N_SLOW, 'trickle', 5);
my $silent_open = open_slow($N_SILENT, 'silent', 5);
my $t_opened = time;
note sprintf "from %s: %d/%d body-phase, %d/%d trickling, %d/%d silent "
           . "connections open in %.1f s", $BAD, $body_open, $n_body,
           $trickle_open, $N_SLOW, $silent_open, $N_SILENT,
           $t_opened - $t_start;

# the good clients, in a child, while this process keeps trickling (and
# reopening: they start after a second of it)
my $res_file = $ng->prefix . "/good.txt";
my $kid = fork // die "fork: $!";
if (!$kid) {
    my @out;
    sleep 1;
    # GET /v1/voices every half second for 3 s: the worst of them counts
    # (timed from before the connect: a full accept queue shows there)
    my ($worst, $worst_t, $fails) = (200, 0, 0);
    for my $i (1 .. $GOOD_GETS) {
        my $t = time;
        my $r = request($ng, 'GET', '/v1/voices', timeout => $GOOD_WITHIN);
        my $took = time - $t;
        $fails++ if $r->{status} != 200;
        $worst = $r->{status} if $r->{status} != 200;
        $worst_t = $took if $took > $worst_t;
        sleep 0.5 - $took if $took < 0.5;
    }
    push @out, sprintf "voices %d %.3f %d", $worst, $worst_t, $fails;
    my $t = time;
    my $r = request($ng, 'POST', '/v1/audio/speech', body => $SPEECH,
                 headers => \%JSON_CT, timeout => $GOOD_WITHIN);
    push @out, sprintf "speech %d %.3f %d", $r->{status}, time - $t,
                       length $r->{body};
    # a new request from the abuser while its limit is taken
    my $probe = '';
    my $s;
    if (socket($s, PF_INET, SOCK_STREAM, 0)
        && bind($s, pack_sockaddr_in(0, inet_aton($BAD)))) {
        eval {
            local $SIG{ALRM} = sub { die "timeout\n" };
            alarm $GOOD_WITHIN;
            connect($s, $peer) or die "connect: $!\n";
            syswrite $s, "GET /v1/voices HTTP/1.1\r\nHost: localhost\r\n"
                       . "Connection: close\r\n\r\n";
            while (sysread $s, $probe, 65536, length $probe) {}
            alarm 0;
            1;
        };
        alarm 0;
    }
    open my $fh, '>', "$res_file.tmp" or POSIX::_exit(1);
    print $fh "$_\n" for @out;
    print $fh "probe ", unpack('H*', $probe), "\n";
    close $fh;
    rename "$res_file.tmp", $res_file;
    POSIX::_exit(0);
}

# trickle a byte a second to every open "trickle" connection, read what
# comes back, until the watch is over (or everything is closed).  While
# the good clients run, a trickling connection the server closed is opened
# again, as slowloris keeps its number up.
my $next_byte = time + 1;
my ($open_when_served, $kid_done);
my $reopened = 0;
while (time < $t_opened + $WATCH) {
    poll_conns(\@conns, 0.1);
    if (!$kid_done) {
        my @gone = grep { $_->{kind} eq 'trickle' && $_->{state} eq 'closed'
                          && !$_->{replaced} } @conns;
        @gone = @gone[0 .. 99] if @gone > 100;
        for my $c (@gone) {
            $c->{replaced} = 1;
            push @conns, { s => slow_socket(), kind => 'trickle',
                           state => 'connecting', sent => 0, got => '' };
            $reopened++;
        }
    }
    if (time >= $next_byte) {
        send_byte($_) for grep { $_->{kind} eq 'trickle'
                                 && $_->{state} eq 'open' } @conns;
        $next_byte += 1;
    }
    if (!$kid_done && waitpid($kid, POSIX::WNOHANG()) == $kid) {
        $kid_done = 1;
        $open_when_served = scalar grep { $_->{state} eq 'open' } @conns;
    }
    last if $kid_done && !grep { $_->{state} ne 'closed' } @conns;
}
if (!$kid_done) { waitpid $kid, 0; $kid_done = 1 }

# ---------------------------------------------------------------------------
# what happened

my %good;
for (split /\n/, slurp($res_file) // '') {
    my ($what, @f) = split ' ';
    $good{$what} = \@f;
}

my $v = $good{voices} || [0, -1, $GOOD_GETS];
my $sp = $good{speech} || [0, -1, 0];
ok($v->[0] == 200 && $v->[1] < $GOOD_WITHIN,
   "from 127.0.0.1 while the slow connections are open: GET /v1/voices "
   . "$GOOD_GETS times, each 200 within ${GOOD_WITHIN}s")
    or diag "$v->[2] of $GOOD_GETS failed (e.g. status $v->[0]); the "
          . "slowest took $v->[1] s";
ok($sp->[0] == 200 && $sp->[1] < $GOOD_WITHIN && $sp->[2] > 1000,
   "from 127.0.0.1 meanwhile: POST /v1/audio/speech 200 with audio within "
   . "${GOOD_WITHIN}s") or diag "status $sp->[0] after $sp->[1] s, "
                              . "$sp->[2] bytes";
my $slow_total = $N_SLOW + $N_SILENT + $n_body;
ok(($open_when_served // 0) >= 0.9 * $slow_total,
   "... and they were served while the slow connections were open")
    or diag "" . ($open_when_served // 0) . " of $slow_total slow connections "
          . "were open when the good clients were done";

# slowloris: held (not dropped for want of a connection slot) until the
# header timeout, then closed by the server
my @hdr = grep { $_->{kind} ne 'body' } @conns;
my $n_hdr = @hdr;
my @hdr_connected = grep { $_->{t_open} } @hdr;
my @hdr_closed = grep { $_->{state} eq 'closed' && $_->{t_open} } @hdr;
my @life = sort { $a <=> $b } map { $_->{t_closed} - $_->{t_open} }
           @hdr_closed;
my $median = @life ? $life[$#life / 2] : -1;
my $hold = ($HEADER_TIMEOUT < $WATCH - 5 ? $HEADER_TIMEOUT : $WATCH - 5) - 1;
my $early = grep { $_ < $hold } @life;
ok(@hdr_connected == $n_hdr && $early <= 0.05 * $n_hdr,
   "worker_connections holds the $n_hdr slow connections: "
   . scalar(@hdr_connected) . " connected, $early closed before ${hold}s");
my $timed_out = grep { $_ >= $hold } @life;
ok($timed_out >= 0.9 * $n_hdr,
   "client_header_timeout closes them: $timed_out of $n_hdr after "
   . "${hold} to ${WATCH}s (median lifetime " . sprintf('%.1f', $median)
   . " s)");

# limit_conn: the requests over the limit get 429 (JSON); the others are
# held until the body timeout
my @body = grep { $_->{kind} eq 'body' } @conns;
my @r429 = grep { $_->{got} =~ m{^HTTP/1\.1 429 } } @body;
my @held = grep { $_->{got} !~ m{^HTTP/1\.1 429 } } @body;
ok(defined $LIMIT, "limit_conn is set: " . ($D{limit_conn} // 'no'));
ok(@r429 >= $OVER && @r429 <= $OVER + 5,
   "limit_conn: $n_body body-phase requests from $BAD, the $OVER over the "
   . "limit get 429: " . scalar(@r429));
my @held_closed = grep { $_->{state} eq 'closed' } @held;
ok(@held && @held_closed == @held,
   "the requests limit_conn let in are closed by client_body_timeout: "
   . scalar(@held_closed) . " of " . scalar(@held));
if (@r429) {
    my ($res) = parse_responses($r429[0]{got});
    error_ok($res, 'limit_conn 429 on /v1/audio/speech', status => 429);
    my $e = eval { $JSON->decode($res->{body})->{error} } || {};
    note "the 429's JSON: " . ($res->{body} // '');
    is($e->{code}, 'rate_limit_exceeded', '429: code rate_limit_exceeded');
}
{
    my $probe = pack 'H*', ($good{probe} || [''])->[0];
    my ($res) = parse_responses($probe);
    is($res && $res->{status}, 429,
       "a new request from $BAD while its limit is taken: 429")
        or diag "got: " . substr($probe, 0, 200);
}

# nginx is fine: serves, and its log has no alert/crit/emerg or crash
for my $c (grep { $_->{state} ne 'closed' } @conns) { close_conn($c, 'end') }
{
    my $r = request($ng, 'GET', '/v1/voices', timeout => 10);
    is($r->{status}, 200, 'after: GET /v1/voices 200');
}
$ng->stop;
my $log = $ng->error_log;
my @bad = ($ng->check_error_log,
           grep { /exited on signal|core dumped|\[alert\]/ } split /\n/, $log);
ok(!@bad, 'error log: no alert, crit, emerg or crash')
    or diag join "\n", @bad[0 .. ($#bad > 10 ? 10 : $#bad)];
my $n_limited = () = $log =~ /limiting connections by zone/g;
my $n_timedout = () = $log =~ /client timed out/g;
note "error log: $n_limited \"limiting connections\", $n_timedout "
   . "\"client timed out\"";

diag sprintf "slowloris: %d/%d slow connections connected, %d closed by "
  . "the server, %d of them before %d s (median after %.1f s); good "
  . "clients: voices %s (%d of $GOOD_GETS failed) in at most %.2f s, "
  . "speech %s in %.2f s, with %d slow connections open; limit_conn: %d "
  . "\"429\" of %d, %d held then closed; %d reopened; %.0f s in all",
  scalar(@hdr_connected), $n_hdr, scalar(@hdr_closed), $early, $hold,
  $median,
  $v->[0], $v->[2], $v->[1], $sp->[0], $sp->[1], $open_when_served // 0,
  scalar(@r429), $n_body, scalar(@held_closed), $reopened, time - $T0
  if $ENV{PODGEN_T21_VERBOSE} || !Test::More->builder->is_passing;

# ---------------------------------------------------------------------------
# the four shipped configurations carry the same limits

{
    my @files = map { "$ROOT/$_" } qw(conf/podgen.conf conf/podgen-redis.conf
                                      conf/podgen-llm.conf
                                      docker/podgen-docker.conf);
    my $ref = slurp($files[0]) // '';
    my @unset = grep { !defined directive($ref, $_) } sort keys %D;
    ok(!@unset, "conf/podgen.conf sets " . join(', ', sort keys %D))
        or diag "not set: @unset";
    for my $f (@files[1 .. $#files]) {
        (my $short = $f) =~ s{^\Q$ROOT\E/}{};
        my $text = slurp($f) // '';
        my @differ = map { "$_: " . (directive($text, $_) // '(not set)')
                           . " (podgen.conf: " . (directive($ref, $_) // '-')
                           . ")" }
                     grep { (directive($text, $_) // '')
                            ne (directive($ref, $_) // '') } sort keys %D;
        ok(!@differ, "$short: the same limits as conf/podgen.conf")
            or diag join "\n", @differ;
    }
}

done_testing();
