# t/mock-llm, the mock OpenAI chat-completions server used by the script
# generation tests: every mode, the HTTP/1.1 details (keep-alive, pipelining,
# chunked bodies, 100-continue, errors), concurrency on its IO::Poll loop
# (200 slow requests at once, 1100 idle connections), client aborts, and a
# clean exit on TERM/INT.  Core modules only; no nginx needed.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use IO::Socket::IP;
use IO::Select;
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP);
use Socket qw(SOL_SOCKET SO_LINGER);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use File::Temp qw(tempfile);
use FindBin;

$SIG{PIPE} = 'IGNORE';

my $BIN = "$FindBin::Bin/mock-llm";
plan skip_all => "$BIN is missing or not executable" unless -x $BIN;

my $J = JSON::PP->new->utf8->canonical;

# --- process control ---------------------------------------------------------

my @KIDS;
END { local $?; for (@KIDS) { kill 'KILL', $_->{pid} if $_->{pid} } }

# Start the mock; returns {pid, port, log}.  Without --port, --port 0 is
# passed and the port is read from the banner.
sub start_mock {
    my @args = @_;
    push @args, '--port', 0 unless grep { $_ eq '--port' } @args;
    pipe(my $r, my $w) or die "pipe: $!";
    my ($lfh, $log) = tempfile('mock-llm-XXXXXX', TMPDIR => 1, UNLINK => 1);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $w or POSIX::_exit(126);
        open STDERR, '>', $log or POSIX::_exit(126);
        { exec $BIN, @args; }
        POSIX::_exit(127);
    }
    close $w;
    my $line = '';
    my $sel = IO::Select->new($r);
    my $deadline = time + 10;
    while ($line !~ /\n/ && time < $deadline) {
        last unless $sel->can_read($deadline - time);
        sysread($r, $line, 1024, length $line) or last;
    }
    my $m = { pid => $pid, log => $log, out => $r };
    push @KIDS, $m;
    my ($port) = $line =~ /\Amock-llm listening on 127\.0\.0\.1:(\d+)\n/
        or die "no banner from mock-llm: '$line'\n" . slurp($log);
    $m->{port} = $port;
    return $m;
}

sub slurp { open my $f, '<', $_[0] or return ''; local $/; <$f> }

sub wait_exit {
    my ($m, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid $m->{pid}, WNOHANG;
        if ($r == $m->{pid}) { $m->{pid} = 0; return $? }
        sleep 0.02;
    }
    return undef;
}

# --- HTTP helpers ------------------------------------------------------------

my $mock = start_mock();
my $PORT = $mock->{port};
my $URL  = "http://127.0.0.1:$PORT";
ok $PORT > 0, "banner gives the port ($PORT)";

my $ht = HTTP::Tiny->new(timeout => 10);

sub schema_rf {
    my @names = @_;
    return { type => 'json_schema', json_schema => {
        name => 'podcast_script', strict => JSON::PP::true, schema => {
            type => 'object', required => [qw(title dialogue)],
            properties => {
                title => { type => 'string' },
                dialogue => { type => 'array', items => {
                    type => 'object', required => [qw(speaker text)],
                    properties => {
                        speaker => { type => 'string', enum => [@names] },
                        text => { type => 'string' } } } } } } } };
}

my $TOPIC = 'The history of lighthouses and the keepers who ran them';

sub chat_body {
    my ($model, %o) = @_;
    my %b = (model => $model, messages => [
        { role => 'system', content => 'You write podcast scripts.' },
        { role => 'user', content => $o{topic} // $TOPIC } ]);
    $b{response_format} = schema_rf(@{ $o{names} }) if $o{names};
    return $J->encode(\%b);
}

sub chat {
    my ($model, %o) = @_;
    my $client = $o{ht} || $ht;
    my $port = $o{port} || $PORT;
    my $res = $client->request('POST',
        "http://127.0.0.1:$port" . ($o{path} // '/v1/chat/completions'), {
            headers => { 'Content-Type' => 'application/json',
                         %{ $o{headers} || {} } },
            content => $o{body} // chat_body($model, %o) });
    my $env = eval { $J->decode($res->{content}) };
    my $script = eval { $J->decode(
        Encode::encode_utf8($env->{choices}[0]{message}{content})) };
    return ($res, $env, $script);
}
use Encode ();

sub stats { $J->decode($ht->get("$URL/stats")->{content}) }

# Send raw bytes on a new connection, read until EOF or $timeout.  Returns
# (data, got_eof).
sub raw {
    my ($bytes, %o) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                PeerPort => $o{port} || $PORT, Timeout => 5)
        or die "connect: $@";
    $s->blocking(0);
    my $sel = IO::Select->new($s);
    my $off = 0;
    while ($off < length $bytes) {
        $sel->can_write(5) or last;
        my $n = syswrite $s, $bytes, 65536, $off;
        last if !defined $n && $! != EAGAIN;
        $off += $n // 0;
    }
    my ($buf, $eof) = ('', 0);
    my $deadline = time + ($o{timeout} // 5);
    while (time < $deadline) {
        last if $o{until} && $buf =~ $o{until};
        $sel->can_read($deadline - time) or last;
        my $n = sysread $s, $buf, 65536, length $buf;
        if (!defined $n) { next if $! == EAGAIN; $eof = 1; last }
        if ($n == 0) { $eof = 1; last }
    }
    return ($buf, $eof, $s);
}

# Split a byte stream into responses [status, {headers}, body].
sub parse_responses {
    my ($buf) = @_;
    my @r;
    while ($buf =~ s/\AHTTP\/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n//s) {
        my ($st, $hd) = ($1, $2);
        my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1, $2) : () } split /\r\n/, $hd;
        next if $st == 100;
        my $len = $h{'content-length'} // 0;
        my $body = substr $buf, 0, $len, '';
        push @r, [ $st, \%h, $body ];
    }
    return @r;
}

sub req_bytes {
    my ($model, %o) = @_;
    my $body = $o{body} // chat_body($model, %o);
    my $conn = $o{close} ? "Connection: close\r\n" : '';
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n$conn"
         . "Content-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

sub is_error_json {
    my ($res, $status, $name) = @_;
    is $res->{status}, $status, "$name: status $status";
    my $e = eval { $J->decode($res->{content}) } || {};
    ok ref $e->{error} eq 'HASH' && length $e->{error}{message}
       && exists $e->{error}{type} && exists $e->{error}{code}
       && exists $e->{error}{param},
       "$name: OpenAI error JSON" or diag $res->{content};
    like $res->{headers}{'content-type'}, qr{^application/json}, "$name: JSON type";
    return $e;
}

# --- the valid completion ----------------------------------------------------

{
    my ($res, $env, $script) = chat('mock-ok', names => [qw(Ada Linus Grace)]);
    is $res->{status}, 200, 'mock-ok: 200';
    like $res->{headers}{'content-type'}, qr{^application/json}, 'content type';
    like $env->{id}, qr/\Achatcmpl-mock-\d+\z/, 'id';
    is $env->{object}, 'chat.completion', 'object';
    like $env->{created}, qr/\A\d+\z/, 'created is an integer';
    ok abs($env->{created} - time) < 60, 'created is now';
    is $env->{model}, 'mock-ok', 'model echoed';
    is scalar @{ $env->{choices} }, 1, 'one choice';
    my $ch = $env->{choices}[0];
    is $ch->{index}, 0, 'index 0';
    is $ch->{message}{role}, 'assistant', 'assistant role';
    is $ch->{finish_reason}, 'stop', 'finish_reason stop';
    ok !ref $ch->{message}{content}, 'content is a string';
    my $u = $env->{usage};
    ok $u->{prompt_tokens} > 5 && $u->{completion_tokens} > 20,
       'usage counts are plausible';
    is $u->{total_tokens}, $u->{prompt_tokens} + $u->{completion_tokens},
       'total = prompt + completion';

    ok ref $script eq 'HASH', 'content is a JSON object';
    is $script->{title}, 'Mock: The history of lighthouses and the',
       'title from the first 6 words';
    my @d = @{ $script->{dialogue} || [] };
    ok @d >= 8 && @d <= 12, 'dialogue has 8-12 turns (' . @d . ')';
    my @sp = map { $_->{speaker} } @d;
    is_deeply [ @sp[0 .. 5] ], [qw(Ada Linus Grace Ada Linus Grace)],
        'speakers follow the enum, alternating';
    ok !(grep { !/\A(?:Ada|Linus|Grace)\z/ } @sp), 'only enum speakers';
    ok !(grep { !defined $_->{text} || $_->{text} !~ /\S/ } @d),
       'every turn has text';
    ok !(grep { keys(%$_) != 2 } @d), 'turns have exactly speaker and text';
    like $d[0]{text}, qr/Welcome to the show\. Today we talk about The history of lighthouses and the keepers who\./,
       'first turn mentions the topic';
    like join(' ', map { $_->{text} } @d), qr/lighthouses/i,
       'keywords of the topic recur';

    my (undef, undef, $again) = chat('mock-ok', names => [qw(Ada Linus Grace)]);
    is_deeply $again, $script, 'deterministic';

    # to length: "Length: about N words" in a system message
    my $sys = { role => 'system',
                content => 'Rules. Length: about 600 words in all.' };
    my $usr = { role => 'user', content => 'Topic: lighthouses and keepers' };
    my $again_msg = { role => 'user', content => 'Too short: write again.' };
    my $words = sub {
        my ($sc) = @_;
        my $n = 0;
        $n += () = $_->{text} =~ /\S+/g for @{ $sc->{dialogue} || [] };
        return $n;
    };
    my (undef, undef, $long) = chat('mock-ok',
        body => $J->encode({ model => 'mock-ok', messages => [ $sys, $usr ] }));
    my $lw = $words->($long);
    ok $lw >= 570 && $lw <= 660, "mock-ok writes to the stated length ($lw of 600)";
    is $long->{title}, 'Mock: Topic: lighthouses and keepers',
       'the title comes from the first user message';
    like $long->{dialogue}[-1]{text}, qr/Thanks for listening/, 'and still ends with the outro';
    my (undef, undef, $short) = chat('mock-short',
        body => $J->encode({ model => 'mock-short', messages => [ $sys, $usr, $again_msg ] }));
    my $sw = $words->($short);
    ok $sw < 200, "mock-short ignores the length ($sw words)";
    my (undef, undef, $once1) = chat('mock-short-once',
        body => $J->encode({ model => 'mock-short-once', messages => [ $sys, $usr ] }));
    my (undef, undef, $once2) = chat('mock-short-once',
        body => $J->encode({ model => 'mock-short-once',
                             messages => [ $sys, $usr, $again_msg ] }));
    ok $words->($once1) < 200 && $words->($once2) >= 570,
       'mock-short-once: short, then to length when asked again ('
       . $words->($once1) . ', ' . $words->($once2) . ')';

    my (undef, undef, $def) = chat('gpt-4o-mini');
    is_deeply [ map { $_->{speaker} } @{ $def->{dialogue} }[0 .. 3] ],
        [qw(Alex Sam Alex Sam)], 'unknown model, no schema: Alex/Sam, ok';

    my ($r2, undef, $s2) = chat('mock-ok', path => '/chat/completions',
                                names => ['Solo']);
    is $r2->{status}, 200, '/chat/completions works too';
    ok !(grep { $_->{speaker} ne 'Solo' } @{ $s2->{dialogue} }),
       'a one-name enum is honoured';

    my $parts = $J->encode({ model => 'mock-ok', messages => [
        { role => 'user', content => [ { type => 'text',
                                         text => 'Volcanoes of Iceland' } ] } ] });
    my (undef, undef, $s3) = chat('mock-ok', body => $parts);
    is $s3->{title}, 'Mock: Volcanoes of Iceland', 'array content parts';
}

# --- error modes -----------------------------------------------------------

{
    my ($res) = chat('mock-500');
    my $e = is_error_json($res, 500, 'mock-500');
    is $e->{error}{type}, 'server_error', 'mock-500: server_error';
    ($res) = chat('mock-503');
    is_error_json($res, 503, 'mock-503');
    ($res) = chat('mock-429');
    $e = is_error_json($res, 429, 'mock-429');
    is $res->{headers}{'retry-after'}, '1', 'mock-429: Retry-After: 1';
    is $e->{error}{code}, 'rate_limit_exceeded', 'mock-429: code';
    ($res) = chat('mock-429');
    is $res->{status}, 429, 'mock-429: always 429';

    ($res) = chat('mock-429-then-ok', topic => 'Rate limits A');
    is $res->{status}, 429, 'mock-429-then-ok: first attempt 429';
    is $res->{headers}{'retry-after'}, '1', '... with Retry-After: 1';
    ($res, my $env, my $script) = chat('mock-429-then-ok', topic => 'Rate limits A');
    is $res->{status}, 200, '... second attempt 200';
    ok @{ $script->{dialogue} } >= 8, '... with a script';
    ($res) = chat('mock-429-then-ok', topic => 'Rate limits A');
    is $res->{status}, 200, '... third attempt 200';
    ($res) = chat('mock-429-then-ok', topic => 'Rate limits B');
    is $res->{status}, 429, '... a different body starts over';

    my @st = map { (chat('mock-fail-2', topic => 'Retry me'))[0]{status} } 1 .. 4;
    is_deeply \@st, [500, 500, 200, 200], 'mock-fail-2: 500, 500, then ok';
    ($res) = chat('mock-fail-2', topic => 'Retry me too');
    is $res->{status}, 500, 'mock-fail-2: per distinct body';
    is $res->{headers}{'x-mock-attempt'}, 1, 'X-Mock-Attempt header';
    @st = map { (chat('mock-fail-0'))[0]{status} } 1 .. 2;
    is_deeply \@st, [200, 200], 'mock-fail-0: always ok';

    ($res, $env) = chat('mock-invalid-json');
    is $res->{status}, 200, 'mock-invalid-json: 200';
    my $c = $env->{choices}[0]{message}{content};
    like $c, qr/\ASure! Here is your script: /, '... prose content';
    ok !eval { $J->decode(Encode::encode_utf8($c)); 1 }, '... which is not JSON';

    ($res) = chat('mock-bad-envelope');
    is $res->{status}, 200, 'mock-bad-envelope: 200';
    like $res->{headers}{'content-type'}, qr{^application/json}, '... claims JSON';
    ok !eval { $J->decode($res->{content}); 1 }, '... body is not JSON';
    is length $res->{content}, $res->{headers}{'content-length'},
       '... but is complete';

    ($res, $env, $script) = chat('mock-wrong-speakers', names => [qw(Alex Sam)]);
    is $res->{status}, 200, 'mock-wrong-speakers: 200';
    my %sp = map { $_->{speaker} => 1 } @{ $script->{dialogue} };
    is_deeply [ sort keys %sp ], [qw(Alice Bob)], '... speakers Bob and Alice';

    (undef, undef, $script) = chat('mock-empty');
    is_deeply $script->{dialogue}, [], 'mock-empty: dialogue []';
    like $script->{title}, qr/^Mock: /, '... with a title';

    (undef, undef, $script) = chat('mock-empty-text');
    ok @{ $script->{dialogue} } > 0
       && !(grep { $_->{text} ne '' } @{ $script->{dialogue} }),
       'mock-empty-text: every text is ""';

    ($res, $env) = chat('mock-fenced', names => [qw(Alex Sam)]);
    $c = $env->{choices}[0]{message}{content};
    like $c, qr/\A```json\n\{.*\}\n```\z/s, 'mock-fenced: ```json fences';
    my ($inner) = $c =~ /\A```json\n(.*)\n```\z/s;
    my $s = eval { $J->decode(Encode::encode_utf8($inner)) };
    ok $s && @{ $s->{dialogue} } >= 8, '... around a valid script';

    my $t0 = time;
    ($res) = chat('mock-slow-300');
    my $dt = time - $t0;
    is $res->{status}, 200, 'mock-slow-300: 200';
    ok $dt >= 0.29 && $dt < 2, sprintf 'mock-slow-300 took %.2f s', $dt;

    my ($buf, $eof) = raw(req_bytes('mock-truncated'));
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    like $head, qr{\AHTTP/1\.1 200 }, 'mock-truncated: 200';
    my ($cl) = $head =~ /^Content-Length: (\d+)/mi;
    ok $cl && length($body) < $cl && length($body) > 0,
       sprintf 'mock-truncated: %d of %d body bytes', length $body, $cl // 0;
    ok $eof, 'mock-truncated: then the connection is closed';
    ($res) = chat('mock-truncated');
    is $res->{status}, 599, 'HTTP::Tiny sees a truncated response';
}

# --- request validation, routing --------------------------------------------

{
    my ($res) = chat('mock-ok', body => '{"model": "mock-ok", "messages": [');
    is_error_json($res, 400, 'bad JSON body');
    ($res) = chat('mock-ok', body => '{"messages":[{"role":"user","content":"x"}]}');
    is_error_json($res, 400, 'no model');
    ($res) = chat('mock-ok', body => '{"model":"mock-ok"}');
    my $e = is_error_json($res, 400, 'no messages');
    is $e->{error}{param}, 'messages', '... param messages';
    ($res) = chat('mock-ok', body => '{"model":"mock-ok","messages":[{"content":"x"}]}');
    is_error_json($res, 400, 'message without a role');
    ($res) = chat('mock-ok', body => '{"model":"mock-ok","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}');
    is_error_json($res, 400, 'bad response_format type');

    $res = $ht->get("$URL/v1/chat/completions");
    is $res->{status}, 405, 'GET chat: 405';
    is $res->{headers}{allow}, 'POST', '... Allow: POST';
    $res = $ht->get("$URL/nope");
    is_error_json($res, 404, 'unknown path');
    $res = $ht->get("$URL/v1/models");
    ok $res->{status} == 200
       && grep({ $_->{id} eq 'mock-hang' } @{ $J->decode($res->{content})->{data} }),
       'GET /v1/models';
    $res = $ht->get("$URL/requests");
    my $rq = $J->decode($res->{content});
    is $rq->[-1]{body}{response_format}{type}, 'yaml', 'GET /requests records bodies';
    is $rq->[-1]{headers}{'content-type'}, 'application/json', '... and headers';
}

# --- HTTP/1.1 ------------------------------------------------------------

{
    # keep-alive with HTTP::Tiny: reset on the same connection, so anything
    # new would have to be a new TCP connection
    my $h2 = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
    is $h2->post("$URL/reset")->{status}, 200, 'POST /reset';
    my @st = map { (chat('mock-ok', ht => $h2))[0]{status} } 1 .. 2;
    is_deeply \@st, [200, 200], 'two requests on one HTTP::Tiny';
    my $s = $J->decode($h2->get("$URL/stats")->{content});
    is $s->{requests}, 2, 'stats: 2 requests';
    is $s->{connections}, 1, 'stats: 1 connection carried them (keep-alive)';
    is $s->{accepted}, 0, 'stats: no TCP connection accepted since the reset';
    is $s->{by_model}{'mock-ok'}, 2, 'stats: by_model';
    is $s->{by_status}{200}, 2, 'stats: by_status';
    ok $s->{open} >= 1, "stats: open ($s->{open})";

    # /reset forgets attempts
    my ($res) = chat('mock-429-then-ok', topic => 'Rate limits A');
    is $res->{status}, 429, 'after /reset, attempts are forgotten';

    # pipelining: slow first, then fast, then close
    my ($buf, $eof) = raw(req_bytes('mock-slow-100') . req_bytes('mock-ok')
                          . req_bytes('mock-500', close => 1));
    my @r = parse_responses($buf);
    is_deeply [ map { $_->[0] } @r ], [200, 200, 500],
        'three pipelined requests answered in order';
    is $J->decode($r[0][2])->{model}, 'mock-slow-100', '... the slow one first';
    is $r[2][1]{connection}, 'close', '... Connection: close on the last';
    ok $eof, 'Connection: close honoured';

    # HTTP/1.0 without keep-alive closes
    my $b = chat_body('mock-ok');
    ($buf, $eof) = raw("POST /v1/chat/completions HTTP/1.0\r\nContent-Length: "
                       . length($b) . "\r\n\r\n$b");
    @r = parse_responses($buf);
    ok @r == 1 && $r[0][0] == 200 && $eof, 'HTTP/1.0: answered and closed';

    # chunked request body, with an extension and a trailer
    my @ch = (substr($b, 0, 10), substr($b, 10, 50), substr($b, 60));
    my $chunked = join('', map { sprintf("%x;ext=1\r\n%s\r\n", length $_, $_) } @ch)
                . "0\r\nX-Trailer: yes\r\n\r\n";
    ($buf, $eof) = raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                       . $chunked);
    @r = parse_responses($buf);
    ok @r == 1 && $r[0][0] == 200, 'chunked request body';
    my $env = eval { $J->decode($r[0][2]) };
    like $env->{choices}[0]{message}{content}, qr/lighthouses/,
        '... decoded correctly';

    # Expect: 100-continue
    my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $PORT)
        or die;
    print $sock "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              . "Expect: 100-continue\r\nConnection: close\r\n"
              . "Content-Length: " . length($b) . "\r\n\r\n";
    my $line = '';
    IO::Select->new($sock)->can_read(3) and sysread $sock, $line, 100;
    is $line, "HTTP/1.1 100 Continue\r\n\r\n", '100 Continue';
    print $sock $b;
    local $/;
    my $rest = <$sock>;
    like $rest, qr{\AHTTP/1\.1 200 }, '... then 200';
    close $sock;
}

# --- malformed HTTP --------------------------------------------------------

{
    my @cases = (
        [ "GARBAGE\r\n\r\n", 400, 'garbage request line' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
          400, 'HTTP/1.1 without Host' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
          400, 'bad Content-Length' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
          . "Content-Length: 3\r\n\r\n{}", 400, 'conflicting Content-Lengths' ],
        [ "GET /stats HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n", 400,
          'header line without a colon' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
          . "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, 'bad chunk size' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
          . "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX", 400,
          'missing CRLF after chunk' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
          . "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, 'gzip coding' ],
        [ "GET /stats HTTP/2.0\r\nHost: x\r\n\r\n", 505, 'HTTP/2.0' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
          . "Content-Length: 20000000\r\n\r\n", 413, 'Content-Length > 10 MB' ],
        [ "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
          . "Transfer-Encoding: chunked\r\n\r\n1000000\r\n", 413,
          '16 MB chunk' ],
    );
    for my $c (@cases) {
        my ($buf, $eof) = raw($c->[0], timeout => 5);
        my @r = parse_responses($buf);
        ok @r == 1 && $r[0][0] == $c->[1] && $eof,
           "$c->[2]: $c->[1] and close" or diag $buf;
    }

    # a 10 MB+ body actually sent is drained, so the client sees the 413
    my $big = 'x' x (11 * 1024 * 1024);
    my $res = $ht->post("$URL/v1/chat/completions", { content => $big });
    is $res->{status}, 413, 'HTTP::Tiny posting 11 MB gets 413';
}

# --- concurrency -------------------------------------------------------

# Open $n connections; send $req on each; read every answer to EOF.
sub concurrent {
    my ($n, $req, $timeout) = @_;
    my (@socks, %buf);
    my $poll = IO::Poll->new;
    for (1 .. $n) {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $PORT,
                                    Timeout => 5) or die "connect $_: $@";
        push @socks, $s;
    }
    for my $s (@socks) {
        syswrite($s, $req) == length $req or die "short write";
        $s->blocking(0);
        $poll->mask($s => POLLIN);
        $buf{$s} = '';
    }
    my $left = $n;
    my $deadline = time + $timeout;
    while ($left && time < $deadline) {
        $poll->poll($deadline - time) > 0 or next;
        for my $s ($poll->handles(POLLIN | POLLHUP | POLLERR)) {
            my $r = sysread $s, $buf{$s}, 65536, length $buf{$s};
            next if !defined $r && $! == EAGAIN;
            if (!$r) { $poll->remove($s); $left-- }
        }
    }
    my @out = map { $buf{$_} } @socks;
    close $_ for @socks;
    return @out;
}

{
    my $n = 200;
    my $t0 = time;
    my @out = concurrent($n, req_bytes('mock-slow-500', close => 1), 15);
    my $dt = time - $t0;
    my $good = grep {
        my @r = parse_responses($_);
        @r == 1 && $r[0][0] == 200
            && eval { $J->decode($r[0][2])->{choices}[0]{message}{content} }
    } @out;
    is $good, $n, "$n concurrent mock-slow-500 requests all answered";
    ok $dt >= 0.49 && $dt < 3, sprintf "... in %.2f s (< 3 s)", $dt;

    # hold 1100 idle connections and still answer
    my $fdmax = POSIX::sysconf(POSIX::_SC_OPEN_MAX()) // 0;
    SKIP: {
        skip "ulimit -n is $fdmax (< 2500)", 3 if $fdmax < 2500;
        my @idle;
        for (1 .. 1100) {
            my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                        PeerPort => $PORT, Timeout => 5)
                or last;
            push @idle, $s;
        }
        is scalar @idle, 1100, '1100 connections opened';
        # the server accepts them as it gets to them; wait for /stats
        my $s;
        my $deadline = time + 5;
        do { $s = stats() } until $s->{open} > 1100 || time > $deadline;
        ok $s->{open} > 1100, "server holds them (open: $s->{open})";
        my ($res) = chat('mock-ok');
        is $res->{status}, 200, 'and still answers';
        close $_ for @idle;
    }
}

# --- mock-hang and client aborts --------------------------------------------

{
    my $hs = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $PORT)
        or die;
    print $hs req_bytes('mock-hang');
    my $t0 = time;
    my ($res) = chat('mock-ok');
    my $dt = time - $t0;
    is $res->{status}, 200, 'a request during mock-hang is answered';
    ok $dt < 1, sprintf '... at once (%.2f s)', $dt;
    sleep 0.2;
    ok !IO::Select->new($hs)->can_read(0.3), 'mock-hang sends nothing';
    is stats()->{hanging}, 1, 'stats: 1 hanging';
    close $hs;
    my $deadline = time + 3;
    my $h;
    do { sleep 0.05; $h = stats()->{hanging} } until !$h || time > $deadline;
    is $h, 0, 'the hanging connection closes when the client closes';

    # clients that go away at every stage
    my @abort = (
        "POST /v1/chat/completions HTTP/1.1\r\nHo",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"mo",
        req_bytes('mock-slow-200'),
        req_bytes('mock-ok') x 50,
        req_bytes('mock-hang'),
    );
    for my $i (0 .. $#abort) {
        for my $rst (0, 1) {
            my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                        PeerPort => $PORT) or die;
            print $s $abort[$i];
            # SO_LINGER 0: close with a reset instead of a FIN
            setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $rst;
            close $s;
        }
    }
    sleep 0.4;
    my $st = stats();
    ok $st && defined $st->{requests}, 'server survives clients that go away';
    ok waitpid($mock->{pid}, WNOHANG) == 0, '... and is still running';
    $deadline = time + 3;
    do { sleep 0.05; $st = stats() } until $st->{open} <= 1 || time > $deadline;
    is $st->{open}, 1, "... and has closed their connections (open: only ours)";
    is $st->{pending}, 0, '... and cancelled their timers';
}

# --- API key, --port N, SIGINT ------------------------------------------------

{
    my $p = do {
        my $s = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0,
                                    Listen => 1) or die;
        my $port = $s->sockport;
        close $s;
        $port;
    };
    my $m2 = start_mock('--port', $p, '--api-key', 'sk-test-123', '--quiet');
    is $m2->{port}, $p, '--port N is used';
    my ($res) = chat('mock-ok', port => $p);
    my $e = is_error_json($res, 401, 'no API key');
    ($res) = chat('mock-ok', port => $p,
                  headers => { Authorization => 'Bearer wrong-key-0000' });
    $e = is_error_json($res, 401, 'wrong API key');
    is $e->{error}{code}, 'invalid_api_key', '... code invalid_api_key';
    unlike $res->{content}, qr/wrong-key-0000/, '... key masked';
    ($res, my $env) = chat('mock-ok', port => $p,
                           headers => { Authorization => 'Bearer sk-test-123' });
    is $res->{status}, 200, 'right API key: 200';
    is $ht->get("http://127.0.0.1:$p/stats")->{status}, 200,
       '/stats needs no key';
    kill 'INT', $m2->{pid};
    my $rc = wait_exit($m2, 5);
    is $rc, 0, 'exits 0 on SIGINT';
    is slurp($m2->{log}), '', '--quiet: nothing on stderr';
}

# --- TERM ------------------------------------------------------------------

{
    my $keep = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $PORT);
    print $keep req_bytes('mock-hang');
    sleep 0.1;
    kill 'TERM', $mock->{pid};
    my $rc = wait_exit($mock, 5);
    is $rc, 0, 'exits 0 on SIGTERM, even with a hanging connection open';
    my $log = slurp($mock->{log});
    like $log, qr/model=mock-ok -> 200/, 'requests are logged to stderr';
    unlike $log, qr/(?:uninitialized|line \d+\.)/, 'no Perl warnings in the log'
        or diag $log;
    ok !IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $PORT,
                            Timeout => 1), 'port closed';
}

done_testing;
