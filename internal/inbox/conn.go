// Package inbox is a receive-side NATS connection for one subscription,
// whose messages are views into the connection's read buffers.
//
// nats.go allocates a message, copies its payload and parses its headers
// into a map for every delivery: on a backlog drain that was a seventh of
// iocd's CPU and more than half of the bytes it allocated. Here a
// goroutine reads the socket into large blocks, answers the server's
// PINGs, and hands the messages of each read over as one chunk; a block
// goes back to a pool once every chunk in it has been consumed. The
// protocol is the NATS client protocol (INFO, CONNECT, SUB, PUB, MSG,
// HMSG, PING, PONG, -ERR), with TLS and the authentications nats-server
// knows (user and password, token, NKey, JWT): the caller passes what its
// nats.go connection uses.
package inbox

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("inbox: connection closed")

// ErrStale means the server answered none of two PINGs.
var ErrStale = errors.New("inbox: no answer from the server to two PINGs")

// Options are how to connect and authenticate.
type Options struct {
	Name, Lang, Version string // sent in CONNECT, shown by the server's monitoring
	User, Password      string
	Token               string
	NKey                string // a user's public NKey; Sign signs the server's nonce with its seed
	// UserJWT returns the user's JWT (credentials files); Sign signs the
	// server's nonce with the user's seed.
	UserJWT func() (string, error)
	Sign    func(nonce []byte) ([]byte, error)
	// Secure asks for TLS; the server may require it anyway. TLS is the
	// configuration then used (nil: the system's roots).
	Secure bool
	TLS    *tls.Config
	// PingInterval is how long the connection may stay silent before a
	// PING is sent (default 20 s); two unanswered close it.
	PingInterval time.Duration
	// OnError gets the server's errors that leave the connection open (a
	// permissions violation on a publish); nil ignores them.
	OnError func(error)
}

// Msg is one message of the subscription. Its fields are views into the
// connection's buffers, valid until the next call to Next: copy what must
// outlive that.
type Msg struct {
	Subject string
	Reply   string
	Header  []byte // the raw header block, empty for a message without headers
	Data    []byte
}

const (
	blockSize        = 256 << 10
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 5 * time.Second
	subID            = 1
	// maxChunks is how many chunks may wait for Next. The reader must
	// not stop reading while the consumer is busy (a ClickHouse outage
	// holds the pipeline for minutes): the server would drop the
	// connection as a slow consumer. What waits is bounded by the pull
	// requests (the prefetch), and a chunk has at least one message.
	maxChunks = 1 << 14
)

// Conn is a connection with one subscription. Next is for one goroutine;
// Publish and Close may be called from any.
type Conn struct {
	conn net.Conn
	opts Options

	wmu  sync.Mutex
	wbuf []byte

	// The reader goroutine's state.
	blk      *block
	r, w     int // parsed up to r; filled up to w
	pend     *chunk
	pingsOut int

	chunks     chan *chunk
	freeBlocks chan *block
	freeChunks chan *chunk
	quit       chan struct{} // closed by Close
	done       chan struct{} // closed when the reader has ended
	err        error         // why it ended; read only after done
	closed     atomic.Bool

	// Next's state.
	cur *chunk
	i   int
}

// block is a read buffer shared by the chunks parsed from it.
type block struct {
	buf  []byte
	refs atomic.Int32 // the reader's while current, and one per chunk
}

type chunk struct {
	blk  *block
	msgs []Msg
}

type serverInfo struct {
	TLSRequired  bool   `json:"tls_required"`
	TLSAvailable bool   `json:"tls_available"`
	Nonce        string `json:"nonce"`
	Headers      bool   `json:"headers"`
}

type connectInfo struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	JWT          string `json:"jwt,omitempty"`
	NKey         string `json:"nkey,omitempty"`
	Sig          string `json:"sig,omitempty"`
	User         string `json:"user,omitempty"`
	Pass         string `json:"pass,omitempty"`
	Token        string `json:"auth_token,omitempty"`
	TLS          bool   `json:"tls_required"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	Echo         bool   `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
}

// Dial connects to the server at addr (host:port), authenticates and
// subscribes to subject. It returns once the server has accepted all of
// it, so a request published afterwards can be answered on subject.
func Dial(ctx context.Context, addr, subject string, o Options) (*Conn, error) {
	if o.PingInterval <= 0 {
		o.PingInterval = 20 * time.Second
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("inbox: dial %s: %w", addr, err)
	}
	c := &Conn{conn: raw, opts: o,
		chunks: make(chan *chunk, maxChunks), freeBlocks: make(chan *block, 8), freeChunks: make(chan *chunk, 64),
		quit: make(chan struct{}), done: make(chan struct{})}
	c.blk = c.newBlock(blockSize)
	c.pend = &chunk{}
	if err := c.handshake(ctx, addr, subject); err != nil {
		_ = c.conn.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

func (c *Conn) handshake(ctx context.Context, addr, subject string) error {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	o, err := c.readOp()
	if err != nil {
		return fmt.Errorf("inbox: reading the server's INFO from %s: %w", addr, err)
	}
	if o.kind != opInfo {
		return fmt.Errorf("%w: %s sent something other than INFO first", errProtocol, addr)
	}
	var info serverInfo
	if err := json.Unmarshal(o.text, &info); err != nil {
		return fmt.Errorf("%w: INFO from %s: %v", errProtocol, addr, err)
	}
	secure := c.opts.Secure || info.TLSRequired
	if c.opts.Secure && !info.TLSRequired && !info.TLSAvailable {
		return fmt.Errorf("inbox: TLS is configured but %s does not offer it", addr)
	}
	if secure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.opts.TLS != nil {
			cfg = c.opts.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c.conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("inbox: TLS with %s: %w", addr, err)
		}
		c.conn = tc
	}
	connect, err := c.connectInfo(info, secure)
	if err != nil {
		return err
	}
	c.wbuf = append(c.wbuf[:0], "CONNECT "...)
	c.wbuf = append(c.wbuf, connect...)
	c.wbuf = append(c.wbuf, "\r\nSUB "...)
	c.wbuf = append(c.wbuf, subject...)
	c.wbuf = append(c.wbuf, " "+strconv.Itoa(subID)+"\r\nPING\r\n"...)
	if _, err := c.conn.Write(c.wbuf); err != nil {
		return fmt.Errorf("inbox: connect to %s: %w", addr, err)
	}
	for {
		o, err := c.readOp()
		if err != nil {
			return fmt.Errorf("inbox: connect to %s: %w", addr, err)
		}
		switch o.kind {
		case opPong:
			return c.conn.SetDeadline(time.Time{})
		case opErr:
			return fmt.Errorf("inbox: %s refused the connection or the subscription: %s", addr, o.text)
		case opPing:
			if _, err := c.conn.Write([]byte("PONG\r\n")); err != nil {
				return fmt.Errorf("inbox: connect to %s: %w", addr, err)
			}
		}
	}
}

func (c *Conn) connectInfo(info serverInfo, secure bool) ([]byte, error) {
	o := c.opts
	ci := connectInfo{User: o.User, Pass: o.Password, Token: o.Token, NKey: o.NKey, TLS: secure,
		Name: o.Name, Lang: o.Lang, Version: o.Version, Protocol: 1, Echo: true, Headers: info.Headers}
	if o.UserJWT != nil {
		jwt, err := o.UserJWT()
		if err != nil {
			return nil, fmt.Errorf("inbox: user JWT: %w", err)
		}
		ci.JWT = jwt
	}
	if ci.JWT != "" || ci.NKey != "" {
		if o.Sign == nil {
			return nil, errors.New("inbox: an NKey or JWT needs a signer for the server's nonce")
		}
		sig, err := o.Sign([]byte(info.Nonce))
		if err != nil {
			return nil, fmt.Errorf("inbox: signing the server's nonce: %w", err)
		}
		ci.Sig = base64.RawURLEncoding.EncodeToString(sig)
	}
	return json.Marshal(ci)
}

// readOp reads the next operation synchronously (during the handshake,
// before the reader goroutine starts).
func (c *Conn) readOp() (op, error) {
	for {
		o, n, need, err := parse(c.blk.buf[c.r:c.w])
		if err != nil {
			return op{}, err
		}
		if n > 0 {
			c.r += n
			return o, nil
		}
		c.room(need)
		m, err := c.conn.Read(c.blk.buf[c.w:])
		c.w += m
		if m == 0 && err != nil {
			return op{}, err
		}
	}
}

// readLoop reads and parses until the connection fails or is closed.
func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		o, n, need, err := parse(c.blk.buf[c.r:c.w])
		if err != nil {
			c.end(err)
			return
		}
		if n > 0 {
			c.r += n
			if err := c.handle(o); err != nil {
				c.end(err)
				return
			}
			continue
		}
		if !c.ship() {
			c.end(ErrClosed)
			return
		}
		c.room(need)
		_ = c.conn.SetReadDeadline(time.Now().Add(c.opts.PingInterval))
		m, err := c.conn.Read(c.blk.buf[c.w:])
		c.w += m
		switch {
		case m > 0:
			c.pingsOut = 0
		case isTimeout(err):
			if c.pingsOut >= 2 {
				c.end(ErrStale)
				return
			}
			c.pingsOut++
			if err := c.write([]byte("PING\r\n")); err != nil {
				c.end(err)
				return
			}
		default:
			c.end(err)
			return
		}
	}
}

func (c *Conn) handle(o op) error {
	switch o.kind {
	case opMsg:
		if o.sid == subID {
			c.pend.msgs = append(c.pend.msgs, Msg{Subject: view(o.subject), Reply: view(o.reply), Header: o.hdr, Data: o.data})
		}
	case opPing:
		return c.write([]byte("PONG\r\n"))
	case opErr:
		err := fmt.Errorf("inbox: server error: %s", o.text)
		if strings.HasPrefix(strings.ToLower(string(o.text)), "permissions violation") {
			if c.opts.OnError != nil {
				c.opts.OnError(err)
			}
			return nil
		}
		return err // the server closes the connection after any other
	}
	return nil
}

// view is a string sharing b's bytes: valid only while b is.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// ship hands the messages parsed so far to Next, as one chunk. It returns
// false if the connection was closed meanwhile.
func (c *Conn) ship() bool {
	if len(c.pend.msgs) == 0 {
		return true
	}
	ch := c.pend
	ch.blk = c.blk
	c.blk.refs.Add(1)
	select {
	case c.chunks <- ch:
	case <-c.quit:
		return false
	}
	select {
	case c.pend = <-c.freeChunks:
	default:
		c.pend = &chunk{msgs: make([]Msg, 0, 64)}
	}
	return true
}

// room makes the current block able to take more bytes and, when need is
// set, an operation of need bytes from r. Unparsed bytes move to the
// front of the block, or of a new one when chunks still use this one.
func (c *Conn) room(need int) {
	size := len(c.blk.buf)
	if c.w < size && need <= size-c.r {
		return
	}
	if need <= size && c.blk.refs.Load() == 1 {
		// Only the reader holds this block: no chunk can gain a reference
		// but from here, so moving the bytes within it is safe.
		c.w = copy(c.blk.buf, c.blk.buf[c.r:c.w])
		c.r = 0
		return
	}
	nb := c.newBlock(max(need, blockSize))
	c.w = copy(nb.buf, c.blk.buf[c.r:c.w])
	c.r = 0
	c.release(c.blk)
	c.blk = nb
}

func (c *Conn) newBlock(size int) *block {
	if size == blockSize {
		select {
		case b := <-c.freeBlocks:
			b.refs.Store(1)
			return b
		default:
		}
	}
	b := &block{buf: make([]byte, size)}
	b.refs.Store(1)
	return b
}

func (c *Conn) release(b *block) {
	if b.refs.Add(-1) == 0 && len(b.buf) == blockSize {
		select {
		case c.freeBlocks <- b:
		default:
		}
	}
}

func (c *Conn) end(err error) {
	if c.closed.Load() {
		err = ErrClosed
	}
	c.err = err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Next returns the next message, or ctx's error when ctx ends first, or
// why the connection ended (ErrClosed after Close). The message is valid
// until the next call.
func (c *Conn) Next(ctx context.Context) (*Msg, error) {
	for c.cur == nil || c.i == len(c.cur.msgs) {
		c.recycle()
		select {
		case ch := <-c.chunks:
			c.cur, c.i = ch, 0
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			select {
			case ch := <-c.chunks: // what was read before the end
				c.cur, c.i = ch, 0
				continue
			default:
			}
			return nil, c.err
		}
	}
	m := &c.cur.msgs[c.i]
	c.i++
	return m, nil
}

func (c *Conn) recycle() {
	ch := c.cur
	if ch == nil {
		return
	}
	c.cur = nil
	c.release(ch.blk)
	ch.blk = nil
	clear(ch.msgs)
	ch.msgs = ch.msgs[:0]
	select {
	case c.freeChunks <- ch:
	default:
	}
}

// Publish sends a message; reply may be empty.
func (c *Conn) Publish(subject, reply string, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], "PUB "...)
	b = append(b, subject...)
	if reply != "" {
		b = append(b, ' ')
		b = append(b, reply...)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, "\r\n"...)
	b = append(b, data...)
	b = append(b, "\r\n"...)
	c.wbuf = b
	return c.writeLocked(b)
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked writes b; a failed write closes the connection, so that the
// reader ends and Next reports it.
func (c *Conn) writeLocked(b []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.conn.Write(b); err != nil {
		_ = c.conn.Close()
		return fmt.Errorf("inbox: write: %w", err)
	}
	return nil
}

// Close ends the connection and waits for its reader to stop.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		<-c.done
		return nil
	}
	close(c.quit)
	err := c.conn.Close()
	<-c.done
	return err
}
