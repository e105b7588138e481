package inbox

import (
	"bytes"
	"strings"
)

// Status returns the status code and its description from a message's
// header block ("NATS/1.0 408 Request Timeout\r\n…"); empty strings when
// the block has no status.
func Status(hdr []byte) (code, description string) {
	line, _, _ := bytes.Cut(hdr, []byte("\r\n"))
	rest, ok := bytes.CutPrefix(line, []byte("NATS/1.0"))
	if !ok {
		return "", ""
	}
	c, d := cut(rest)
	return string(c), string(bytes.TrimSpace(d))
}

// HeaderValue returns the first value of the header key (compared without
// regard to case) in a message's header block, or "".
func HeaderValue(hdr []byte, key string) string {
	_, rest, _ := bytes.Cut(hdr, []byte("\r\n")) // the version and status line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), key) {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}
