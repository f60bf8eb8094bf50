# Reload and binary upgrade under continuous load: zero failed requests and
# no lost job.
#
# Two forked clients loop for a few seconds over new connections: a cached
# GET /v1/voices and a small POST /v1/audio/speech.  Meanwhile nginx is
# reloaded (HUP) twice, then upgraded in place the way an operator does it:
# USR2 to the master (a new master starts with the same binary and the
# inherited sockets; the pid file becomes nginx.pid.oldbin), WINCH to the
# old master (its workers finish and leave), QUIT to the old master.  Every
# response must be a 200, and podcast jobs accepted before, during and after
# each step must complete.

use strict;
use warnings;
use lib 't/lib';
use Podgen::Test;
use Podgen::API;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my %CT = ('Content-Type' => 'application/json');
my $T0 = time;

my $store = tempdir('podgen-t20-store-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0777, $store;

my $ng = Podgen::Test::Nginx->new(
    workers => 2,
    # a binary upgrade execs nginx with only the environment `env` names:
    # the sanitizer runtime must stay preloaded in the new master
    main_config => 'thread_pool default threads=4;'
                 . ($ENV{PODGEN_PRELOAD} ? "\nenv LD_PRELOAD;\nenv ASAN_OPTIONS;\nenv UBSAN_OPTIONS;" : ''),
    http_config => "podgen_store $store/s;",
    config => <<'EOF');
        location = /v1/audio/speech { podgen_speech; }
        location /v1/podcasts { podgen_podcasts; }
        location /v1/audio/ { podgen_audio; }
        location = /v1/voices { podgen_voices; }
        location = /metrics { podgen_metrics; }
EOF
$ng->start;

my $SPEECH = $JSON->encode({ model => 'tts-1', voice => 'alloy', response_format => 'mp3',
                             input => 'Reloads lose nothing.' });

# Forked clients that loop for $secs seconds; each writes one line per
# request: "status error-or-dash what".
sub start_load {
    my ($secs, $dir) = @_;
    my @pids;
    for my $c (1 .. 2) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $out, '>', "$dir/load.$c" or POSIX::_exit(1);
            my $end = time + $secs;
            my $i = 0;
            while (time < $end) {
                my ($what, $r);
                if ($i++ % 2) {
                    $what = 'voices';
                    $r = request($ng->port, 'GET', '/v1/voices', timeout => 10);
                } else {
                    $what = 'speech';
                    $r = request($ng->port, 'POST', '/v1/audio/speech', body => $SPEECH,
                                 headers => \%CT, timeout => 10);
                }
                my $ok = $r->{status} == 200 && !$r->{error} && length $r->{body};
                printf $out "%d %s %s %.3f\n", $r->{status},
                    $ok ? '-' : ($r->{error} // 'empty') =~ s/\s+/_/gr, $what, time;
            }
            close $out;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return @pids;
}

sub collect_load {
    my ($dir, @pids) = @_;
    waitpid $_, 0 for @pids;
    my ($n, @bad) = (0);
    for my $c (1 .. 2) {
        for my $l (split /\n/, slurp("$dir/load.$c") // '') {
            $n++;
            push @bad, $l unless $l =~ /^200 - /;
        }
    }
    return ($n, @bad);
}

# A podcast of a few segments, accepted: it runs for a moment.
my $pn = 0;
sub podcast {
    my ($big) = @_;
    $pn++;
    my $more = $big ? ' Then a third sentence, and a fourth one, so that the '
                    . 'job is still at work when its worker is told to leave.' : '';
    return new_podcast($ng->port, { format => 'mp3', title => "Reload $pn",
            segments => [ map { { speaker => $_ % 2 ? 'A' : 'B',
                text => "Podcast $pn, segment $_: a sentence of some length to "
                      . "keep the job busy. And a second one for good measure.$more" } }
                      1 .. ($big ? 12 : 6) ] }, "podcast $pn") // 'none';
}

# warm: the speech is cached, so the load is the cheap path
is(request($ng, 'POST', '/v1/audio/speech', body => $SPEECH, headers => \%CT)->{status},
   200, 'warm-up speech');

# ---- two reloads under load ---------------------------------------------------

{
    my $dir = tempdir(CLEANUP => 1);
    my @pids = start_load(6, $dir);
    sleep 0.7;
    my @jobs = (podcast(1));
    # long polls held by the old workers while they are told to leave
    my @pollers;
    for my $i (1 .. 3) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my ($st, $bad, $end) = ('', '', time + 40);
            while (time < $end) {
                my $w = request($ng->port, 'GET', "/v1/podcasts/$jobs[0]?wait=30", timeout => 35);
                if ($w->{status} != 200) { $bad = "HTTP $w->{status} " . ($w->{error} // ''); last }
                $st = (jdecode($w->{body}) // {})->{status} // '?';
                last if $st =~ /^(?:completed|failed)$/;
            }
            open my $fh, '>', "$dir/poll.$i" or POSIX::_exit(1);
            print $fh $bad || $st;
            close $fh;
            POSIX::_exit(0);
        }
        push @pollers, $pid;
    }
    sleep 0.3;
    my $st = job_state($ng->port, $jobs[0]);
    like($st, qr/^(?:queued|running)$/, "job $jobs[0] is unfinished ($st) at the first reload");
    my @w1 = eval { $ng->reload };
    ok(@w1, 'first reload: new workers') or diag $@;
    push @jobs, podcast();
    sleep 1.2;
    push @jobs, podcast();
    my @w2 = eval { $ng->reload };
    ok(@w2, 'second reload: new workers') or diag $@;
    push @jobs, podcast();
    my ($n, @bad) = collect_load($dir, @pids);
    waitpid $_, 0 for @pollers;
    is(join(' ', map { slurp("$dir/poll.$_") // 'nothing' } 1 .. 3),
       'completed completed completed',
       'reloads: long polls on a job held across the reload end with its completion');
    cmp_ok($n, '>', 50, "reloads: the clients made $n requests");
    is(scalar(@bad), 0, 'reloads: every request under load got a whole 200')
        or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    for my $id (@jobs) {
        my $j = wait_job($ng->port, $id, 40);
        is($j && $j->{status}, 'completed', "reloads: job $id completes")
            or diag explain $j;
    }
}

# ---- binary upgrade under load ---------------------------------------------------

{
    my $pidfile = $ng->prefix . '/logs/nginx.pid';
    my $old = $ng->master_pid;
    my $dir = tempdir(CLEANUP => 1);
    my @pids = start_load(7, $dir);
    sleep 0.7;
    my @jobs = (podcast());

    kill 'USR2', $old or die "USR2: $!";
    my $new;
    my $deadline = time + 15;
    while (time < $deadline) {
        my $p = slurp($pidfile) // '';
        if (-e "$pidfile.oldbin" && $p =~ /^(\d+)/ && $1 != $old) { $new = $1; last }
        sleep 0.05;
    }
    ok($new, 'USR2: a new master runs, the old pid file is nginx.pid.oldbin')
        or diag $ng->error_log;
    is((slurp("$pidfile.oldbin") // '') =~ /^(\d+)/ ? $1 : 0, $old,
       'nginx.pid.oldbin holds the old master');
    # the new master's workers are up
    my $up = 0;
    if ($new) {
        $ng->{master} = $new;
        $deadline = time + 15;
        while (time < $deadline) {
            last if ($up = () = $ng->worker_pids) >= 2;
            sleep 0.05;
        }
    }
    cmp_ok($up, '>=', 2, 'the new master has its workers');
    push @jobs, podcast();    # old and new workers both accept now
    push @jobs, podcast(1);
    sleep 0.3;
    my $st = job_state($ng->port, $jobs[-1]);
    like($st, qr/^(?:queued|running)$/, "job $jobs[-1] is unfinished ($st) at the WINCH");

    kill 'WINCH', $old;
    $deadline = time + 30;
    my @left;
    while (time < $deadline) {
        @left = grep { $_->{cmd} =~ /worker process/ } Podgen::Test::_children_of($old);
        last unless @left;
        sleep 0.05;
    }
    is(scalar(@left), 0, 'WINCH: the old workers finish and leave');
    push @jobs, podcast();

    kill 'QUIT', $old;
    $deadline = time + 15;
    sleep 0.05 while kill(0, $old) && time < $deadline;
    ok(!kill(0, $old), 'QUIT: the old master leaves');
    ok(!-e "$pidfile.oldbin", 'and removes nginx.pid.oldbin');
    push @jobs, podcast();

    my ($n, @bad) = collect_load($dir, @pids);
    cmp_ok($n, '>', 50, "upgrade: the clients made $n requests");
    is(scalar(@bad), 0, 'upgrade: every request under load got a whole 200')
        or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    for my $id (@jobs) {
        my $j = wait_job($ng->port, $id, 40);
        is($j && $j->{status}, 'completed', "upgrade: job $id completes")
            or diag explain $j;
    }
    is(request($ng, 'GET', '/v1/voices')->{status}, 200, 'the new nginx serves');
}

$ng->stop;
my @bad = $ng->check_error_log;
ok(!@bad, 'error log has no alert/crit/emerg/sanitizer report')
    or diag join "\n", @bad[0 .. ($#bad > 30 ? 30 : $#bad)];

note sprintf 'ran in %.1f s', time - $T0;
done_testing;
