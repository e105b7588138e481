package inbox

import (
	"bytes"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     op
		n, need  int
		err      bool
	}{
		{name: "msg", in: "MSG a.b 1 5\r\nhello\r\n", want: op{kind: opMsg, sid: 1, subject: []byte("a.b"), data: []byte("hello")}, n: 20},
		{name: "msg with reply", in: "MSG a.b 7 r.1 2\r\nhi\r\nPING\r\n",
			want: op{kind: opMsg, sid: 7, subject: []byte("a.b"), reply: []byte("r.1"), data: []byte("hi")}, n: 21},
		{name: "hmsg", in: "HMSG s 1 $JS.ACK.x 12 14\r\nNATS/1.0\r\n\r\nok\r\n",
			want: op{kind: opMsg, sid: 1, subject: []byte("s"), reply: []byte("$JS.ACK.x"), hdr: []byte("NATS/1.0\r\n\r\n"), data: []byte("ok")}, n: 42},
		{name: "hmsg status, no reply, no body", in: "HMSG _INBOX.x 1 31 31\r\nNATS/1.0 100 Idle Heartbeat\r\n\r\n\r\n",
			want: op{kind: opMsg, sid: 1, subject: []byte("_INBOX.x"), hdr: []byte("NATS/1.0 100 Idle Heartbeat\r\n\r\n"), data: []byte{}}, n: 56},
		{name: "empty payload", in: "MSG s 1 0\r\n\r\n", want: op{kind: opMsg, sid: 1, subject: []byte("s"), data: []byte{}}, n: 13},
		{name: "lower case and tabs", in: "msg\ts\t2\t1\r\nx\r\n", want: op{kind: opMsg, sid: 2, subject: []byte("s"), data: []byte("x")}, n: 14},
		{name: "payload with CRLF inside", in: "MSG s 1 4\r\n\r\n\r\n\r\n", want: op{kind: opMsg, sid: 1, subject: []byte("s"), data: []byte("\r\n\r\n")}, n: 17},
		{name: "partial control line", in: "MSG s 1 4"},
		{name: "partial payload", in: "MSG s 1 10\r\nabc", need: 24},
		{name: "payload without its CRLF yet", in: "MSG s 1 3\r\nabc", need: 16},
		{name: "ping", in: "PING\r\n", want: op{kind: opPing}, n: 6},
		{name: "pong", in: "PONG\r\n", want: op{kind: opPong}, n: 6},
		{name: "ok", in: "+OK\r\n", want: op{kind: opOK}, n: 5},
		{name: "err", in: "-ERR 'Authorization Violation'\r\n", want: op{kind: opErr, text: []byte("Authorization Violation")}, n: 32},
		{name: "info", in: "INFO {\"a\":1}\r\n", want: op{kind: opInfo, text: []byte(`{"a":1}`)}, n: 14},
		{name: "bare LF", in: "PING\n", want: op{kind: opPing}, n: 5},
		{name: "unknown op", in: "HELLO x\r\n", err: true},
		{name: "too few arguments", in: "MSG s 5\r\nhello\r\n", err: true},
		{name: "too many arguments", in: "MSG s 1 r x 5\r\nhello\r\n", err: true},
		{name: "size not a number", in: "MSG s 1 5x\r\nhello\r\n", err: true},
		{name: "negative size", in: "MSG s 1 -5\r\nhello\r\n", err: true},
		{name: "header larger than total", in: "HMSG s 1 10 5\r\nhello\r\n", err: true},
		{name: "size past the limit", in: "MSG s 1 99999999999\r\n", err: true},
		{name: "sid not a number", in: "MSG s one 5\r\nhello\r\n", err: true},
		{name: "payload longer than declared", in: "MSG s 1 3\r\nhello\r\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, n, need, err := parse([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, errProtocol) {
					t.Fatalf("parse(%q): %v, want a protocol error", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tc.in, err)
			}
			if n != tc.n || need != tc.need {
				t.Fatalf("parse(%q): n=%d need=%d, want n=%d need=%d", tc.in, n, need, tc.n, tc.need)
			}
			if n == 0 {
				return
			}
			if o.kind != tc.want.kind || o.sid != tc.want.sid || !bytes.Equal(o.subject, tc.want.subject) ||
				!bytes.Equal(o.reply, tc.want.reply) || !bytes.Equal(o.hdr, tc.want.hdr) ||
				!bytes.Equal(o.data, tc.want.data) || !bytes.Equal(o.text, tc.want.text) {
				t.Fatalf("parse(%q) = %+v, want %+v", tc.in, o, tc.want)
			}
		})
	}
}

func TestParseLongControlLine(t *testing.T) {
	long := bytes.Repeat([]byte("x"), maxControlLine+1)
	if _, _, _, err := parse(long); !errors.Is(err, errProtocol) {
		t.Fatalf("a control line of %d bytes without its end: %v, want a protocol error", len(long), err)
	}
	if _, n, _, err := parse(long[:maxControlLine]); err != nil || n != 0 {
		t.Fatalf("%d bytes without a line end: n=%d err=%v, want to wait for more", maxControlLine, n, err)
	}
}

// TestParseEveryPrefix: every prefix of a stream of operations is either
// an operation or a wait for more, never an error or a wrong operation.
func TestParseEveryPrefix(t *testing.T) {
	stream := []byte("INFO {}\r\nMSG a 1 3\r\nabc\r\nHMSG b 1 r 12 13\r\nNATS/1.0\r\n\r\nx\r\nPING\r\n")
	ops := 0
	for off := 0; off < len(stream); {
		_, n, _, err := parse(stream[off:])
		if err != nil || n == 0 {
			t.Fatalf("at %d: n=%d err=%v", off, n, err)
		}
		for k := range n {
			if _, pn, _, err := parse(stream[off : off+k]); err != nil || pn != 0 {
				t.Fatalf("prefix %q: n=%d err=%v", stream[off:off+k], pn, err)
			}
		}
		off += n
		ops++
	}
	if ops != 4 {
		t.Fatalf("%d operations, want 4", ops)
	}
}

func TestStatusAndHeaderValue(t *testing.T) {
	hdr := []byte("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 7\r\nnats-pending-bytes:0\r\n\r\n")
	if code, d := Status(hdr); code != "408" || d != "Request Timeout" {
		t.Fatalf("Status = %q %q", code, d)
	}
	if v := HeaderValue(hdr, "nats-pending-messages"); v != "7" {
		t.Fatalf("Nats-Pending-Messages = %q", v)
	}
	if v := HeaderValue(hdr, "Nats-Pending-Bytes"); v != "0" {
		t.Fatalf("Nats-Pending-Bytes = %q", v)
	}
	if v := HeaderValue(hdr, "Nats-Msg-Id"); v != "" {
		t.Fatalf("absent header = %q", v)
	}
	if code, d := Status([]byte("NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n")); code != "" || d != "" {
		t.Fatalf("Status without one = %q %q", code, d)
	}
	if code, _ := Status(nil); code != "" {
		t.Fatalf("Status of no header = %q", code)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"MSG a 1 3\r\nabc\r\n", "HMSG b 1 r 12 13\r\nNATS/1.0\r\n\r\nx\r\n", "PING\r\n", "-ERR 'x'\r\n", "MSG a 1 99\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, n, need, err := parse(b)
		if err != nil {
			return
		}
		if n < 0 || n > len(b) || (n == 0 && need != 0 && need <= len(b)) {
			t.Fatalf("parse(%q): n=%d need=%d", b, n, need)
		}
		if o.kind == opMsg && len(o.hdr)+len(o.data) > n {
			t.Fatalf("parse(%q): payload longer than the operation", b)
		}
	})
}
