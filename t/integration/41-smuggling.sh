#!/usr/bin/env bash
# 41-smuggling: request framing is strict on every request of a
# connection (SPEC section 8, RFC 9112): field names that are not tokens,
# CR / LF / NUL or control bytes in values, obs-fold, listed or
# conflicting Content-Length, Transfer-Encoding other than chunked or with
# Content-Length, a NUL in the method, bad chunk framing: 400, and nothing
# goes upstream. Against an origin that parses leniently (it trims field
# names and lets Transfer-Encoding win), "Transfer-Encoding : chunked"
# used to let an anonymous client's body become the next client's request,
# run with the next client's credential. Slow clients: a header deadline
# for every request, a minimum body rate.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# The lenient origin.
rm -f "$TMP/lenient.port"
timeout -k 5 300 "$PYTHON" "$LIB_DIR/lenient_origin.py" \
	--port-file "$TMP/lenient.port" --pid-file "$TMP/lenient.pid" \
	--log "$TMP/lenient.requests" 2> "$TMP/lenient.stderr" &
echo $! > "$TMP/lenient-timeout.pid"
wait_file "$TMP/lenient.port" || error "lenient origin did not start"
L=http://127.0.0.1:$(cat "$TMP/lenient.port")
H="Host: 127.0.0.1"

write_config - <<'EOF'
client_timeout: 1s
min_body_rate: 100
EOF
start_sluiced

# conv NAME PART...: one connection; each PART is bytes (Python escapes:
# \r \n \x00) sent as one write, or "sleep:S". Then reads until EOF or 3 s
# of silence. $TMP/NAME.raw gets the answer; prints the status codes of
# every response in it, space-separated ("" for none), then "eof",
# "open" (the connection was still open after 3 s of silence) or "early"
# (the daemon closed it before every PART was sent).
conv() {
	local name=$1
	shift
	timeout 90 "$PYTHON" - "$PROXY_PORT" "$TMP/$name.raw" "$@" <<'EOF'
import codecs, re, select, socket, sys, time
port, out, parts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
got = b""
state = "open"
try:
    for p in parts:
        if p.startswith("sleep:"):
            # Read what comes meanwhile; the daemon closing now is "early".
            end = time.monotonic() + float(p[6:])
            while state == "open" and time.monotonic() < end:
                r, _, _ = select.select([s], [], [], end - time.monotonic())
                if r:
                    b = s.recv(65536)
                    if not b:
                        state = "early"
                    got += b
            if state != "open":
                break
        else:
            s.sendall(codecs.escape_decode(p.encode())[0])
except OSError:
    state = "early"
if state == "open":
    s.settimeout(3)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                state = "eof"
                break
            got += b
    except socket.timeout:
        pass
    except OSError:
        state = "eof"
open(out, "wb").write(got)
codes = re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)
print(" ".join(c.decode() for c in codes), state)
EOF
}

# seen REGEX: how many requests the lenient origin got whose target or any
# field value matches REGEX.
seen() {
	"$PYTHON" -c '
import json, re, sys
n = 0
try:
    for l in open(sys.argv[1]):
        r = json.loads(l)
        text = r["target"] + "\n" + "\n".join(v for _, v in r["headers"])
        if re.search(sys.argv[2], text):
            n += 1
except FileNotFoundError:
    pass
print(n)
' "$TMP/lenient.requests" "$1"
}

# error_of NAME: the "error" code of the last JSON body in NAME.raw.
error_of() {
	"$PYTHON" -c '
import json, sys
d = open(sys.argv[1], "rb").read()
i = d.rfind(b"\r\n\r\n")
try:
    print(json.loads(d[i + 4:])["error"])
except Exception:
    print("not-json")
' "$TMP/$1.raw"
}

# refused NAME WHAT PART...: PART... on one connection must get exactly one
# answer, 400 bad_request JSON, and the connection closed.
refused() {
	local name=$1 what=$2 r
	shift 2
	r=$(conv "$name" "$@")
	assert_eq "400 eof" "$r" "$what: one 400, then close"
	assert_eq bad_request "$(error_of "$name")" "$what: error code"
}

say "the attack: 'Transfer-Encoding : chunked' smuggles a request into the next client's"
smuggled='0\r\n\r\nGET /admin/delete-account HTTP/1.1\r\nX-Ignore: '
len=$("$PYTHON" -c 'import codecs,sys; print(len(codecs.escape_decode(sys.argv[1].encode())[0]))' "$smuggled")
r=$(conv attack "POST $L/anon HTTP/1.1\r\n$H\r\nContent-Length: $len\r\nTransfer-Encoding : chunked\r\n\r\n$smuggled")
assert_eq "400 eof" "$r" "space before the colon: refused"
assert_eq bad_request "$(error_of attack)" "space before the colon: error code"
r=$(conv victim "GET $L/mine HTTP/1.1\r\n$H\r\nAuthorization: Bearer VICTIM-TOKEN\r\nConnection: close\r\n\r\n")
assert_eq "200 eof" "$r" "the victim's request"
assert_grep '"target": "/mine"' "$TMP/victim.raw" "the victim got its own answer"
assert_eq 0 "$(seen 'delete-account')" "no smuggled request reached the origin"
assert_eq 0 "$(seen '^/anon')" "the attacker's request did not reach the origin"

say "field names that are not tokens: 400"
refused name-tab "tab before the colon" "GET $L/x HTTP/1.1\r\n$H\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n"
refused name-space "space inside a name" "GET $L/x HTTP/1.1\r\n$H\r\nFoo Bar: x\r\n\r\n"
refused name-8bit "a non-ASCII name" "GET $L/x HTTP/1.1\r\n$H\r\nF\xc3\xb6o: x\r\n\r\n"
refused name-empty "an empty name" "GET $L/x HTTP/1.1\r\n$H\r\n: x\r\n\r\n"
refused name-nul "a NUL in a name" "GET $L/x HTTP/1.1\r\n$H\r\nX-A\x00B: x\r\n\r\n"

say "CR, LF, NUL and control bytes in values: 400"
refused bare-cr "a bare CR in a value" "GET $L/x HTTP/1.1\r\n$H\r\nX-A: y\rX-Injected: 1\r\n\r\n"
refused cr-cl "a bare CR hiding Content-Length" "POST $L/x HTTP/1.1\r\n$H\r\nX-A: y\rContent-Length: abc\r\n\r\n"
refused nul-value "a NUL in a value" "GET $L/x HTTP/1.1\r\n$H\r\nX-A: y\x00Content-Length: 5\r\n\r\n"
refused ctl-value "a control byte in a value" "GET $L/x HTTP/1.1\r\n$H\r\nX-A: y\x01z\r\n\r\n"
refused del-value "DEL in a value" "GET $L/x HTTP/1.1\r\n$H\r\nX-A: y\x7fz\r\n\r\n"

say "obs-fold: 400 (refused, not joined)"
refused fold "obs-fold" "GET $L/x HTTP/1.1\r\n$H\r\nX-A: first\r\n second\r\n\r\n"
refused fold-tab "obs-fold with a tab" "GET $L/x HTTP/1.1\r\n$H\r\nX-A: first\r\n\tsecond\r\n\r\n"
refused first-ws "whitespace before the first field" "GET $L/x HTTP/1.1\r\n $H\r\n\r\n"

say "the method: a NUL or a control byte is refused"
refused nul-method "G\\0T" "G\x00T $L/x HTTP/1.1\r\n$H\r\n\r\n"
refused ctl-method "a control byte in the method" "G\x01T $L/x HTTP/1.1\r\n$H\r\n\r\n"
refused nul-target "a NUL in the target" "GET $L/x\x00y HTTP/1.1\r\n$H\r\n\r\n"
refused two-spaces "two spaces after the method" "GET  $L/x HTTP/1.1\r\n$H\r\n\r\n"
assert_eq 0 "$(seen '^/x')" "none of the refused requests reached the origin"

say "framing on a keep-alive connection's second request: one 400, not two"
ok="GET $L/first HTTP/1.1\r\n$H\r\n\r\n"
r=$(conv ka-cl-list "$ok" "sleep:0.3" "POST $L/second HTTP/1.1\r\n$H\r\nContent-Length: 5, 5\r\n\r\nhello")
assert_eq "200 400 eof" "$r" "Content-Length: 5, 5 on the second request"
assert_eq bad_request "$(error_of ka-cl-list)" "listed Content-Length: error code"
r=$(conv ka-cl-te "$ok" "sleep:0.3" "POST $L/second HTTP/1.1\r\n$H\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
assert_eq "200 400 eof" "$r" "Content-Length with Transfer-Encoding on the second request"
r=$(conv ka-cl-two "$ok" "sleep:0.3" "POST $L/second HTTP/1.1\r\n$H\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
assert_eq "200 400 eof" "$r" "two different Content-Length fields on the second request"
r=$(conv ka-te-gzip "$ok" "sleep:0.3" "POST $L/second HTTP/1.1\r\n$H\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
assert_eq "200 400 eof" "$r" "Transfer-Encoding: gzip, chunked on the second request"
r=$(conv ka-te-space "$ok" "sleep:0.3" "POST $L/second HTTP/1.1\r\n$H\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")
assert_eq "200 400 eof" "$r" "'Transfer-Encoding :' on the second request"
r=$(conv ka-fold "$ok" "sleep:0.3" "GET $L/second HTTP/1.1\r\n$H\r\nX-A: first\r\n second\r\n\r\n")
assert_eq "200 400 eof" "$r" "obs-fold on the second request"
assert_eq 0 "$(seen '^/second')" "no second request reached the origin"

say "pipelined: a good request, then a bad one, in one write"
r=$(conv pipelined "GET $L/piped-ok HTTP/1.1\r\n${H}\r\n\r\nGET $L/piped-bad HTTP/1.1\r\n$H\r\nX-A: y\rX-B: z\r\n\r\n")
assert_eq "200 400 eof" "$r" "pipelined good + bad"
assert_eq 1 "$(seen '^/piped-ok')" "the good one reached the origin"
assert_eq 0 "$(seen '^/piped-bad')" "the bad one did not"
r=$(conv pipelined-body "GET $L/pb-first HTTP/1.1\r\n$H\r\n\r\nPOST $L/pb-second HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n")
assert_eq "200 400 eof" "$r" "pipelined good + broken chunked body: answered in order"
assert_eq 1 "$(seen '^/pb-first')" "the good one reached the origin"
assert_eq 0 "$(seen '^/pb-second')" "the broken one did not"

say "chunked bodies: malformed framing is refused, good ones pass"
r=$(conv chunk-space "POST $L/chunk-bad HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n")
assert_eq "400 eof" "$r" "whitespace after a chunk size"
r=$(conv chunk-long "POST $L/chunk-bad HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n")
assert_eq "400 eof" "$r" "chunk data longer than its size"
r=$(conv chunk-fold "POST $L/chunk-bad HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n")
assert_eq "400 eof" "$r" "obs-fold in the trailer"
assert_eq 0 "$(seen '^/chunk-bad')" "no malformed chunked body reached the origin"
r=$(conv chunk-ok "POST $L/chunk-ok HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
assert_eq "200 eof" "$r" "a chunked body with an extension and a trailer"
assert_eq "hello world" "$("$PYTHON" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["target"] == "/chunk-ok":
        print(r["body"])' "$TMP/lenient.requests")" "the chunked body arrived whole"

say "what clients really send still passes"
r=$(conv leading-crlf "\r\n\r\nGET $L/lead HTTP/1.1\r\n$H\r\nConnection: close\r\n\r\n")
assert_eq "200 eof" "$r" "empty lines before the request line"
r=$(conv lf-only "GET $L/lf HTTP/1.1\n$H\nConnection: close\n\n")
assert_eq "200 eof" "$r" "LF line ends"
r=$(conv tiny-pieces "G" "E" "T $L/pie" "ces HTTP/1.1\r" "\n$H\r\n" "Connection: close\r\n\r" "\n")
assert_eq "200 eof" "$r" "a head in many small writes"
r=$(conv obs-text "GET $L/obs HTTP/1.1\r\n$H\r\nX-Latin: caf\xe9\r\nX-Tab: a\tb\r\nConnection: close\r\n\r\n")
assert_eq "200 eof" "$r" "obs-text and a tab in a value"
big=$(head -c 6000 /dev/zero | tr '\0' a)
r=$(conv big-split "GET $L/big HTTP/1.1\r\n$H\r\nX-Big: ${big:0:3000}" "sleep:0.2" "${big:3000}\r\nConnection: close\r\n\r\n")
assert_eq "200 eof" "$r" "a 6000-byte field in two writes"
assert_eq 1 "$(seen '^/big')" "the big field reached the origin"

say "slow clients: a header deadline for every request of a connection"
parts=("GET $L/slow-first HTTP/1.1\r\n$H\r\n\r\n" "sleep:0.2")
for c in G E T ' ' / s l o w ' ' H T T P / 1 . 1; do
	parts+=("$c" "sleep:0.3")
done
r=$(conv slow-head "${parts[@]}")
assert_eq "200 early" "$r" "a second request trickled a byte every 0.3 s (client_timeout 1s): closed while trickling"
assert_eq 0 "$(seen '^/slow$')" "the trickled request never reached the origin"

parts=("GET $L/slow-lines HTTP/1.1\r\n$H\r\n\r\n" "sleep:0.2")
for _ in $(seq 15); do parts+=("\r\n" "sleep:0.3"); done
r=$(conv slow-lines "${parts[@]}")
assert_eq "200 early" "$r" "stray empty lines every 0.3 s do not keep a connection open"

say "slow clients: a body slower than min_body_rate gets 408"
parts=("POST $L/slow-body HTTP/1.1\r\n$H\r\nContent-Length: 100\r\n\r\n")
for _ in $(seq 30); do parts+=("x" "sleep:0.2"); done
r=$(conv slow-body "${parts[@]}")
assert_eq "408 early" "$r" "a body at 5 bytes/s with min_body_rate 100: 408 while trickling"
assert_eq request_timeout "$(error_of slow-body)" "slow body: error code"
assert_eq 0 "$(seen '^/slow-body')" "the slow body never reached the origin"

assert_no_grep 'VICTIM-TOKEN' "$TMP/sluiced.log" "no credential in the log"
r=$(conv last "GET $L/last HTTP/1.1\r\n$H\r\nConnection: close\r\n\r\n")
assert_eq "200 eof" "$r" "the daemon still serves"
sluiced_alive || fail "sluiced died"
