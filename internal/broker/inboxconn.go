package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/nats-io/nats.go"

	"github.com/iocstream/iocstream/internal/inbox"
)

// errNATSAway means nats.go's connection is not connected (reconnecting):
// its server is the one to dial, so there is none to dial yet.
var errNATSAway = errors.New("broker: the NATS connection is reconnecting")

// dialInbox opens a delivery connection for subject to the server nc is
// connected to, authenticated as nc is.
func dialInbox(ctx context.Context, nc *nats.Conn, subject string, onError func(error)) (*inbox.Conn, error) {
	raw := nc.ConnectedUrl()
	if raw == "" {
		return nil, errNATSAway
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("broker: NATS url: %w", err)
	}
	o, err := inboxOptions(nc.Opts, u)
	if err != nil {
		return nil, err
	}
	o.OnError = onError
	c, err := inbox.Dial(ctx, u.Host, subject, o)
	if err != nil {
		return nil, fmt.Errorf("broker: delivery connection: %w", err)
	}
	return c, nil
}

// inboxOptions mirrors how nats.go authenticates (its connectProto and
// makeTLSConn): credentials in the URL win over the options.
func inboxOptions(no nats.Options, u *url.URL) (inbox.Options, error) {
	o := inbox.Options{Name: no.Name + " (delivery)", Lang: nats.LangString, Version: nats.Version,
		Secure: no.Secure || u.Scheme == "tls", UserJWT: no.UserJWT, Sign: no.SignatureCB}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			o.User, o.Password = u.User.Username(), pw
		} else {
			o.Token = u.User.Username()
		}
	} else {
		o.User, o.Password, o.Token, o.NKey = no.User, no.Password, no.Token, no.Nkey
		if no.UserInfo != nil {
			o.User, o.Password = no.UserInfo()
		}
	}
	if no.UserJWT != nil {
		o.NKey = ""
	}
	if no.TokenHandler != nil {
		o.Token = no.TokenHandler()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if no.TLSConfig != nil {
		cfg = no.TLSConfig.Clone()
	}
	if no.TLSCertCB != nil {
		cert, err := no.TLSCertCB()
		if err != nil {
			return o, fmt.Errorf("broker: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if no.RootCAsCB != nil {
		pool, err := no.RootCAsCB()
		if err != nil {
			return o, fmt.Errorf("broker: TLS roots: %w", err)
		}
		cfg.RootCAs = pool
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(u.Host)
	}
	o.TLS = cfg
	return o, nil
}
