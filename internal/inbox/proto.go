package inbox

import (
	"bytes"
	"errors"
	"fmt"
)

// opKind is the kind of a server operation of the NATS client protocol.
type opKind uint8

const (
	opMsg  opKind = iota + 1 // MSG or HMSG
	opPing                   // PING: the server checks we are alive
	opPong                   // PONG: the answer to our PING
	opOK                     // +OK (only in verbose mode, which we do not ask for)
	opErr                    // -ERR 'text'
	opInfo                   // INFO {json}
)

// op is one parsed server operation. Its slices are views into the buffer
// given to parse.
type op struct {
	kind    opKind
	sid     uint64
	subject []byte
	reply   []byte
	hdr     []byte // the header block of an HMSG, "NATS/1.0…\r\n\r\n"
	data    []byte
	text    []byte // the argument of -ERR or INFO
}

// maxControlLine bounds a control line; nats-server's default is 4 KiB
// and it never sends more than a subject, a reply and two numbers.
const maxControlLine = 16 << 10

// maxPayload bounds a message's declared size, so a corrupt size cannot
// ask for an absurd buffer. nats-server's max_payload is at most 64 MiB.
const maxPayload = 64 << 20

var errProtocol = errors.New("inbox: NATS protocol error")

// parse reads the server operation at the front of buf. It returns how
// many bytes the operation took, or 0 when buf holds only its beginning;
// need is then the length the whole operation will have, when the control
// line tells it (0 otherwise).
func parse(buf []byte) (o op, n, need int, err error) {
	eol := bytes.IndexByte(buf, '\n')
	if eol < 0 {
		if len(buf) > maxControlLine {
			return op{}, 0, 0, fmt.Errorf("%w: control line longer than %d bytes", errProtocol, maxControlLine)
		}
		return op{}, 0, 0, nil
	}
	line := buf[:eol]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	name, rest := cut(line)
	switch {
	case equalFold(name, "MSG"), equalFold(name, "HMSG"):
		return parseMsg(buf, eol+1, len(name) == 4, rest)
	case equalFold(name, "PING"):
		return op{kind: opPing}, eol + 1, 0, nil
	case equalFold(name, "PONG"):
		return op{kind: opPong}, eol + 1, 0, nil
	case equalFold(name, "+OK"):
		return op{kind: opOK}, eol + 1, 0, nil
	case equalFold(name, "-ERR"):
		return op{kind: opErr, text: bytes.Trim(bytes.TrimSpace(rest), "'")}, eol + 1, 0, nil
	case equalFold(name, "INFO"):
		return op{kind: opInfo, text: bytes.TrimSpace(rest)}, eol + 1, 0, nil
	}
	return op{}, 0, 0, fmt.Errorf("%w: unknown operation %q", errProtocol, clip(line))
}

// parseMsg reads "MSG <subject> <sid> [reply] <size>" or "HMSG <subject>
// <sid> [reply] <header size> <total size>", then the payload and its
// "\r\n"; body is where the payload starts in buf.
func parseMsg(buf []byte, body int, headers bool, args []byte) (op, int, int, error) {
	var f [5][]byte
	nf := 0
	for nf < len(f) {
		var a []byte
		if a, args = cut(args); len(a) == 0 {
			break
		}
		f[nf] = a
		nf++
	}
	if a, _ := cut(args); len(a) > 0 {
		nf++ // one too many
	}
	sizes := 1
	if headers {
		sizes = 2
	}
	if nf != 2+sizes && nf != 3+sizes {
		return op{}, 0, 0, fmt.Errorf("%w: %d arguments in %q", errProtocol, nf, clip(buf[:body]))
	}
	o := op{kind: opMsg, subject: f[0]}
	sid, ok := number(f[1])
	if !ok {
		return op{}, 0, 0, fmt.Errorf("%w: subscription id %q", errProtocol, clip(f[1]))
	}
	o.sid = uint64(sid)
	if nf == 3+sizes {
		o.reply = f[2]
	}
	total, ok := number(f[nf-1])
	hsize := 0
	if headers && ok {
		hsize, ok = number(f[nf-2])
		ok = ok && hsize <= total
	}
	if !ok || total > maxPayload {
		return op{}, 0, 0, fmt.Errorf("%w: sizes in %q", errProtocol, clip(buf[:body]))
	}
	end := body + total + 2
	if len(buf) < end {
		return op{}, 0, end, nil
	}
	if buf[end-2] != '\r' || buf[end-1] != '\n' {
		return op{}, 0, 0, fmt.Errorf("%w: payload of %d bytes not followed by CRLF", errProtocol, total)
	}
	o.hdr = buf[body : body+hsize]
	o.data = buf[body+hsize : body+total]
	return o, end, 0, nil
}

// cut returns the first field of s (separated by spaces or tabs) and what
// follows it.
func cut(s []byte) (field, rest []byte) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	return s[i:j], s[j:]
}

// number parses a decimal size or id of at most 18 digits.
func number(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// clip shortens protocol text quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
